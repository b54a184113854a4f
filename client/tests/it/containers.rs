//! The container lifecycle through the `bay` CLI, docker-style: `run -d`
//! under a monitor process, logs (follow, tail, timestamps, since,
//! rotation), restart policies, stop/kill/rm, exec, diff/commit, cp/export,
//! pause, names and id prefixes, and state that outlives every `bay`
//! process. Needs root (namespaces, cgroups, overlayfs).

use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::*;

fn with_busybox() -> Option<Bay> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: container lifecycle tests need root (namespaces, cgroups, overlayfs)");
        return None;
    }
    let bay = Bay::new();
    let rootfs = busybox_rootfs(bay.root.path())?;
    bay.ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
    Some(bay)
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Polls `f` every 20 ms until it returns true; panics after `secs`.
fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn inspect(bay: &Bay, c: &str, fmt: &str) -> String {
    bay.ok(&["inspect", "-f", fmt, c]).trim().to_owned()
}

/// Removes every container (stops the monitors) when a test ends.
struct Cleanup<'a>(&'a Bay);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let ids = self.0.run(&["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.0.run(&["rm", "-f", id]);
        }
    }
}

#[test]
fn detached_run_logs_follow_stop_and_rm() {
    let Some(bay) = with_busybox() else { return };
    let _c = Cleanup(&bay);
    let script = "echo one; echo two >&2; trap 'echo bye; exit 0' TERM; while true; do busybox sleep 0.05; done";
    let id = bay.ok(&["run", "-d", "--name", "web", "bb:1", "sh", "-c", script]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "the full id: {id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");

    // The `bay run -d` process is gone: a fresh one sees the container running.
    let ps = bay.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    let row = ps.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with(&id[..12])
            && row.contains("bb:1")
            && row.contains("Up ")
            && row.ends_with("web"),
        "{ps}"
    );
    assert_eq!(inspect(&bay, "web", "{{.State.Status}}"), "running");
    let pid: i32 = inspect(&bay, "web", "{{.State.Pid}}").parse().unwrap();
    assert!(pid > 1 && std::path::Path::new(&format!("/proc/{pid}")).exists());

    // logs -f follows until the container is done.
    let follower = bay
        .cmd(&["logs", "-f", "web"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually(5, "the first lines in the log", || {
        bay.ok(&["logs", "web"]) == "one\n"
    });
    let t = Instant::now();
    assert_eq!(bay.ok(&["stop", "web"]).trim(), "web");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "SIGTERM stopped it: {:?}",
        t.elapsed()
    );
    let o = follower.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "one\nbye\n",
        "{}",
        text(&o)
    );
    assert_eq!(String::from_utf8_lossy(&o.stderr), "two\n", "{}", text(&o));

    assert_eq!(
        inspect(
            &bay,
            "web",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}"
        ),
        "exited 0 false"
    );
    assert_eq!(bay.ok(&["ps", "-q"]).trim(), "", "not running any more");
    let all = bay.ok(&["ps", "-a"]);
    assert!(all.contains("Exited (0)"), "{all}");
    // Stopping a stopped container is a no-op; `wait` prints its code.
    assert_eq!(bay.ok(&["stop", "web"]).trim(), "web");
    assert_eq!(bay.ok(&["wait", "web"]).trim(), "0");
    // The raw log is docker's json-file.
    let raw = std::fs::read_to_string(
        bay.data_root()
            .join(format!("runtime/containers/{id}/{id}-json.log")),
    )
    .unwrap();
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "one\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().ends_with('Z'), "{first}");

    assert_eq!(bay.ok(&["rm", "web"]).trim(), "web");
    assert_eq!(bay.ok(&["ps", "-aq"]).trim(), "");
    let e = bay.fails(&["logs", "web"], 1);
    assert!(e.contains("No such container: web"), "{e}");
    // The name is free again.
    bay.ok(&["run", "--name", "web", "bb:1", "true"]);
}

#[test]
fn restart_on_failure_restarts_exactly_twice() {
    let Some(bay) = with_busybox() else { return };
    let _c = Cleanup(&bay);
    let id = bay.ok(&[
        "run",
        "-d",
        "--restart",
        "on-failure:2",
        "bb:1",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    let id = id.trim();
    eventually(10, "the last restart to finish", || {
        inspect(&bay, id, "{{.State.Status}} {{.RestartCount}}") == "exited 2"
            && bay.ok(&["logs", id]).lines().count() == 3
    });
    // Done for good: no further run turns up.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(bay.ok(&["logs", id]), "run\nrun\nrun\n");
    assert_eq!(
        inspect(
            &bay,
            id,
            "{{.RestartCount}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "2 3 on-failure 2"
    );
    assert_eq!(bay.ok(&["wait", id]).trim(), "3");

    // `always` restarts a clean exit too, until it is stopped by hand.
    let id = bay.ok(&[
        "run",
        "-d",
        "--restart",
        "always",
        "bb:1",
        "sh",
        "-c",
        "echo go; busybox sleep 0.2",
    ]);
    let id = id.trim();
    eventually(10, "two restarts", || {
        inspect(&bay, id, "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap()
            >= 2
    });
    bay.ok(&["stop", "-t", "1", id]);
    let n = inspect(&bay, id, "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        inspect(&bay, id, "{{.RestartCount}} {{.State.Status}}"),
        format!("{n} exited")
    );
    let e = bay.fails(
        &["run", "-d", "--restart", "sometimes", "bb:1", "true"],
        125,
    );
    assert!(e.contains("invalid restart policy"), "{e}");
}

#[test]
fn exec_sees_the_container_and_exit_codes_follow_docker() {
    let Some(bay) = with_busybox() else { return };
    let _c = Cleanup(&bay);
    bay.ok(&[
        "run", "-d", "--name", "box", "bb:1", "busybox", "sleep", "30",
    ]);
    let ps = bay.ok(&["exec", "box", "busybox", "ps"]);
    let init = ps
        .lines()
        .find(|l| l.contains("sleep 30"))
        .unwrap_or_else(|| panic!("{ps}"));
    assert_eq!(
        init.split_whitespace().next(),
        Some("1"),
        "the init is PID 1 in its namespace: {ps}"
    );
    assert_eq!(
        bay.ok(&[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/bin",
            "box",
            "sh",
            "-c",
            "echo $X $(busybox pwd) $(busybox hostname)"
        ])
        .trim(),
        format!("1 /bin {}", &inspect(&bay, "box", "{{.Id}}")[..12])
    );
    let o = bay.run(&["exec", "box", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    let o = bay.run(&["exec", "box", "/no/such"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
    // exec -i forwards stdin.
    let mut c = bay.cmd(&["exec", "-i", "box", "cat"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"through stdin\n").unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "through stdin\n");
    // -t gives the process a terminal.
    assert!(
        bay.ok(&["exec", "-t", "box", "sh", "-c", "[ -t 1 ] && echo tty"])
            .contains("tty")
    );
    // top lists the container's processes.
    let top = bay.ok(&["top", "box"]);
    assert!(top.starts_with("UID") && top.contains("sleep 30"), "{top}");
    // stats reads the cgroup.
    let stats = bay.ok(&["stats", "--no-stream", "box"]);
    assert!(
        stats.starts_with("CONTAINER ID") && stats.contains("box"),
        "{stats}"
    );
    assert_eq!(
        bay.ok(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "box"
        ])
        .trim(),
        "box 1"
    );

    // A stopped container cannot be exec'd into.
    bay.ok(&["kill", "box"]);
    eventually(5, "the kill", || {
        inspect(&bay, "box", "{{.State.Status}}") == "exited"
    });
    assert_eq!(inspect(&bay, "box", "{{.State.ExitCode}}"), "137");
    let e = bay.fails(&["exec", "box", "true"], 1);
    assert!(e.contains("is not running"), "{e}");
}

#[test]
fn diff_commit_and_copy_on_write_isolation() {
    let Some(bay) = with_busybox() else { return };
    let _c = Cleanup(&bay);
    bay.ok(&[
        "run",
        "--name",
        "dd",
        "bb:1",
        "sh",
        "-c",
        "echo x > /new && busybox rm /bin/ls",
    ]);
    let diff = bay.ok(&["diff", "dd"]);
    let mut lines: Vec<&str> = diff.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["A /new", "C /bin", "D /bin/ls"], "{diff}");
    // A second container of the same image sees none of it.
    assert_eq!(
        bay.ok(&[
            "run",
            "--rm",
            "bb:1",
            "sh",
            "-c",
            "cat /new 2>/dev/null || echo none; [ -e /bin/ls ] && echo ls"
        ]),
        "none\nls\n"
    );
    let out = bay.ok(&["commit", "-m", "snap", "-c", "ENV FOO=bar", "dd", "snap:1"]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    assert_eq!(
        bay.ok(&[
            "run",
            "--rm",
            "snap:1",
            "sh",
            "-c",
            "cat /new; [ -e /bin/ls ] || echo gone; echo $FOO"
        ]),
        "x\ngone\nbar\n"
    );
    assert_eq!(
        bay.ok(&["inspect", "-f", "{{len .RootFS.Layers}}", "snap:1"])
            .trim(),
        "2"
    );
    // The new layer holds the changes only, not the runtime's mount points.
    let store = bay.store();
    let ix = store.read_index().unwrap();
    let rec = ix.record(&ix.lookup("snap:1").unwrap()).unwrap().clone();
    let manifest = store.manifest_of(&rec).unwrap();
    let blob = store
        .open_blob(&manifest.layers.last().unwrap().digest)
        .unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    let mut names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    // (`etc` is the directory the network files needed; it stays, empty.)
    assert_eq!(names, ["bin", "bin/.wh.ls", "etc", "new"], "{names:?}");
    // The base image is untouched.
    assert_eq!(
        bay.ok(&[
            "run",
            "--rm",
            "bb:1",
            "sh",
            "-c",
            "[ -e /new ] || echo clean"
        ]),
        "clean\n"
    );
}

#[test]
fn names_ids_and_prefixes() {
    let Some(bay) = with_busybox() else { return };
    let _c = Cleanup(&bay);
    bay.ok(&["run", "--name", "n1", "bb:1", "true"]);
    let id = inspect(&bay, "n1", "{{.Id}}");
    let e = bay.fails(&["run", "--name", "n1", "bb:1", "true"], 125);
    assert!(
        e.contains(&format!(
            "Conflict. The container name \"/n1\" is already in use by container \"{id}\""
        )),
        "{e}"
    );
    let e = bay.fails(&["run", "--name", "bad name", "bb:1", "true"], 125);
    assert!(e.contains("Invalid container name"), "{e}");
    // Full id, unique prefix and name all resolve; an unknown one does not.
    assert_eq!(inspect(&bay, &id, "{{.Name}}"), "/n1");
    assert_eq!(inspect(&bay, &id[..5], "{{.Name}}"), "/n1");
    assert_eq!(
        bay.ok(&["container", "inspect", "-f", "{{.State.Status}}", "n1"])
            .trim(),
        "exited"
    );
    let e = bay.fails(&["inspect", "--type", "container", "bb:1"], 1);
    assert!(e.contains("No such container: bb:1"), "{e}");
    bay.fails(&["rm", "nosuch"], 1);
    bay.ok(&["rename", "n1", "n2"]);
    assert_eq!(inspect(&bay, "n2", "{{.Id}}"), id);
    bay.fails(&["inspect", "n1"], 1);
    // Without --name a docker-style name is generated.
    bay.ok(&["run", "bb:1", "true"]);
    let names = bay.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let generated = names.lines().find(|n| *n != "n2").unwrap();
    let (l, r) = generated
        .split_once('_')
        .unwrap_or_else(|| panic!("{names}"));
    assert!(
        l.bytes().all(|b| b.is_ascii_lowercase()) && !r.is_empty(),
        "{generated}"
    );
    assert_eq!(bay.ok(&["ps", "-aq"]).lines().count(), 2);
    let t = bay.ok(&["ps", "-a", "--format", "table {{.Names}}\t{{.State}}"]);
    let mut rows = t.lines();
    assert_eq!(
        rows.next()
            .map(str::split_whitespace)
            .map(Iterator::collect::<Vec<_>>),
        Some(vec!["NAMES", "STATE"]),
        "{t}"
    );
    assert!(
        rows.any(|r| r.starts_with("n2 ") && r.ends_with("exited")),
        "{t}"
    );
    assert_eq!(
        bay.ok(&["ps", "-aq", "--no-trunc"])
            .lines()
            .next()
            .unwrap()
            .len(),
        64
    );
    // rm refuses a running container without -f.
    bay.ok(&[
        "run", "-d", "--name", "live", "bb:1", "busybox", "sleep", "30",
    ]);
    let e = bay.fails(&["rm", "live"], 1);
    assert!(
        e.contains("container is running: stop the container before removing or force remove"),
        "{e}"
    );
    assert_eq!(bay.ok(&["rm", "-f", "live"]).trim(), "live");
    assert!(!bay.ok(&["ps", "-a"]).contains("live"));
}

#[test]
fn logs_tail_timestamps_since_and_rotation() {
    let Some(bay) = with_busybox() else { return };
    let _c = Cleanup(&bay);
    bay.ok(&[
        "run",
        "-d",
        "--name",
        "lg",
        "bb:1",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo $i; done",
    ]);
    assert_eq!(bay.ok(&["wait", "lg"]).trim(), "0");
    eventually(5, "the monitor to finish", || {
        bay.ok(&["logs", "lg"]) == "1\n2\n3\n4\n5\n"
    });
    assert_eq!(bay.ok(&["logs", "--tail", "2", "lg"]), "4\n5\n");
    assert_eq!(bay.ok(&["logs", "-n", "0", "lg"]), "");
    let stamped = bay.ok(&["logs", "-t", "--tail", "1", "lg"]);
    let (ts, rest) = stamped.split_once(' ').unwrap();
    assert_eq!(rest, "5\n");
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
        "{stamped}"
    );
    assert_eq!(bay.ok(&["logs", "--since", "1h", "lg"]).lines().count(), 5);
    assert_eq!(bay.ok(&["logs", "--since", ts, "lg"]), "5\n");
    let later = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339();
    assert_eq!(bay.ok(&["logs", "--since", &later, "lg"]), "");
    bay.fails(&["logs", "--since", "yesterday", "lg"], 1);

    // A small max-size rotates into max-file files; reading spans them.
    let id = bay.ok(&[
        "run",
        "-d",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "bb:1",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done",
    ]);
    let id = id.trim();
    bay.ok(&["wait", id]);
    let dir = bay.data_root().join(format!("runtime/containers/{id}"));
    let log = dir.join(format!("{id}-json.log"));
    eventually(5, "rotated files", || {
        std::path::Path::new(&format!("{}.2", log.display())).exists()
    });
    assert!(!std::path::Path::new(&format!("{}.3", log.display())).exists());
    for f in [
        log.display().to_string(),
        format!("{}.1", log.display()),
        format!("{}.2", log.display()),
    ] {
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(len < 1200, "{f}: {len}");
    }
    let all = bay.ok(&["logs", id]);
    let nums: Vec<u32> = all
        .lines()
        .map(|l| l.trim_start_matches("line").parse().unwrap())
        .collect();
    assert_eq!(nums.last(), Some(&299), "{all}");
    assert!(
        nums.len() < 300 && nums.windows(2).all(|w| w[1] == w[0] + 1),
        "{all}"
    );
    assert_eq!(
        inspect(
            &bay,
            id,
            "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-file\"}}"
        ),
        "json-file 3"
    );
    let e = bay.fails(
        &["run", "-d", "--log-opt", "max-file=2", "bb:1", "true"],
        125,
    );
    assert!(e.contains("max-size"), "{e}");
}

#[test]
fn stop_timeout_pause_and_stale_state() {
    let Some(bay) = with_busybox() else { return };
    let _c = Cleanup(&bay);
    // As PID 1 without a handler, sleep ignores SIGTERM: stop waits -t, then kills.
    bay.ok(&[
        "run", "-d", "--name", "slow", "bb:1", "busybox", "sleep", "60",
    ]);
    let t = Instant::now();
    bay.ok(&["stop", "-t", "1", "slow"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(inspect(&bay, "slow", "{{.State.ExitCode}}"), "137");
    // restart runs it again.
    bay.ok(&["restart", "-t", "0", "slow"]);
    assert_eq!(inspect(&bay, "slow", "{{.State.Status}}"), "running");
    bay.ok(&["kill", "-s", "KILL", "slow"]);

    bay.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "bb:1",
        "sh",
        "-c",
        "while true; do echo tick; busybox sleep 0.05; done",
    ]);
    eventually(5, "ticks", || {
        bay.ok(&["logs", "ticker"]).lines().count() > 2
    });
    assert_eq!(bay.ok(&["pause", "ticker"]).trim(), "ticker");
    assert!(bay.ok(&["ps"]).contains("(Paused)"));
    assert_eq!(
        inspect(&bay, "ticker", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    let e = bay.fails(&["pause", "ticker"], 1);
    assert!(e.contains("already paused"), "{e}");
    std::thread::sleep(Duration::from_millis(100));
    let frozen = bay.ok(&["logs", "ticker"]).lines().count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        bay.ok(&["logs", "ticker"]).lines().count(),
        frozen,
        "no ticks while paused"
    );
    bay.ok(&["unpause", "ticker"]);
    eventually(5, "ticks again", || {
        bay.ok(&["logs", "ticker"]).lines().count() > frozen
    });
    bay.fails(&["unpause", "ticker"], 1);

    // A monitor and container that die behind bay's back are reported as exited.
    let pid: i32 = inspect(&bay, "ticker", "{{.State.Pid}}").parse().unwrap();
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bay.data_root().join(format!(
            "runtime/containers/{}/state.json",
            inspect(&bay, "ticker", "{{.Id}}")
        )))
        .unwrap(),
    )
    .unwrap();
    let monitor = state["monitor_pid"].as_i64().unwrap() as i32;
    for p in [monitor, pid] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    eventually(5, "the stale state to be noticed", || {
        inspect(&bay, "ticker", "{{.State.Status}}") == "exited"
    });
    assert_eq!(bay.ok(&["ps", "-q"]).trim(), "");
}

#[test]
fn cp_both_ways_and_export() {
    let Some(bay) = with_busybox() else { return };
    let _c = Cleanup(&bay);
    let host = bay.root.path().join("host");
    std::fs::create_dir_all(host.join("dir/sub")).unwrap();
    std::fs::write(host.join("file.txt"), b"from the host\n").unwrap();
    std::fs::write(host.join("dir/sub/deep"), b"deep\n").unwrap();
    bay.ok(&[
        "run", "-d", "--name", "cpbox", "bb:1", "busybox", "sleep", "30",
    ]);
    bay.ok(&[
        "cp",
        host.join("file.txt").to_str().unwrap(),
        "cpbox:/copied.txt",
    ]);
    bay.ok(&["cp", host.join("dir").to_str().unwrap(), "cpbox:/bin"]);
    assert_eq!(
        bay.ok(&["exec", "cpbox", "cat", "/copied.txt", "/bin/dir/sub/deep"]),
        "from the host\ndeep\n"
    );
    // Back out, into a new name and into a directory.
    let back = bay.root.path().join("back.txt");
    bay.ok(&["cp", "cpbox:/copied.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from the host\n");
    let out_dir = bay.root.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    bay.ok(&["cp", "cpbox:/bin/dir", out_dir.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("dir/sub/deep")).unwrap(),
        "deep\n"
    );
    // A symlink is copied as a link, not followed out of the container.
    bay.ok(&[
        "exec",
        "cpbox",
        "busybox",
        "ln",
        "-s",
        "/etc/shadow",
        "/escape",
    ]);
    bay.ok(&[
        "cp",
        "cpbox:/escape",
        bay.root.path().join("link").to_str().unwrap(),
    ]);
    let l = std::fs::symlink_metadata(bay.root.path().join("link")).unwrap();
    assert!(l.file_type().is_symlink());
    let e = bay.fails(&["cp", "cpbox:/nope", out_dir.to_str().unwrap()], 1);
    assert!(
        e.contains("Could not find the file /nope in container cpbox"),
        "{e}"
    );
    // `-` streams a tar.
    let o = bay.run(&["cp", "cpbox:/copied.txt", "-"]);
    let mut a = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["copied.txt"]);

    // Stopped containers work too, and export has image plus changes.
    bay.ok(&["stop", "-t", "0", "cpbox"]);
    bay.ok(&[
        "cp",
        host.join("file.txt").to_str().unwrap(),
        "cpbox:/later.txt",
    ]);
    let tarball = bay.root.path().join("c.tar");
    bay.ok(&["export", "-o", tarball.to_str().unwrap(), "cpbox"]);
    let mut a = tar::Archive::new(std::fs::File::open(&tarball).unwrap());
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .unwrap()
                .display()
                .to_string()
                .trim_start_matches("./")
                .to_owned()
        })
        .collect();
    for want in [
        "bin/busybox",
        "copied.txt",
        "later.txt",
        "bin/dir/sub/deep",
        "escape",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    // The restarted container sees what was copied while it was stopped.
    bay.ok(&["start", "cpbox"]);
    assert_eq!(
        bay.ok(&["exec", "cpbox", "cat", "/later.txt"]),
        "from the host\n"
    );
}

#[test]
fn foreground_terminal_stdin_and_start_attach() {
    let Some(bay) = with_busybox() else { return };
    let _c = Cleanup(&bay);
    let out = bay.ok(&[
        "run",
        "--rm",
        "-t",
        "bb:1",
        "sh",
        "-c",
        "[ -t 0 ] && [ -t 1 ] && echo tty",
    ]);
    assert_eq!(out.replace('\r', ""), "tty\n");
    assert_eq!(
        bay.ok(&["run", "--rm", "bb:1", "sh", "-c", "[ -t 0 ] || echo notty"]),
        "notty\n"
    );
    let mut c = bay.cmd(&["run", "--rm", "-i", "bb:1", "cat"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"hello stdin\n").unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello stdin\n",
        "{}",
        text(&o)
    );
    // Without -i the container's stdin is empty.
    let mut c = bay.cmd(&["run", "--rm", "bb:1", "cat"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.stdout, b"");

    // Attached containers are logged too, stream by stream.
    let o = bay.run(&[
        "run",
        "--name",
        "fg",
        "bb:1",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n", "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n", "{}", text(&o));
    let o = bay.run(&["logs", "fg"]);
    assert_eq!(
        (&o.stdout[..], &o.stderr[..]),
        (&b"out\n"[..], &b"err\n"[..]),
        "{}",
        text(&o)
    );
    assert_eq!(
        bay.ok(&["run", "-t", "--name", "fgt", "bb:1", "echo", "term"])
            .replace('\r', ""),
        "term\n"
    );
    assert_eq!(bay.ok(&["logs", "fgt"]).replace('\r', ""), "term\n");

    // start -a re-runs a stopped container and returns its status.
    let o = bay.run(&[
        "run",
        "--name",
        "once",
        "bb:1",
        "sh",
        "-c",
        "echo hi; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4));
    let o = bay.run(&["start", "-a", "once"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
    // create makes it, start runs it.
    let id = bay.ok(&["create", "--name", "made", "bb:1", "sh", "-c", "echo made"]);
    assert_eq!(id.trim().len(), 64);
    assert_eq!(inspect(&bay, "made", "{{.State.Status}}"), "created");
    assert!(bay.ok(&["ps", "-a"]).contains("Created"));
    let o = bay.run(&["start", "-a", "made"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "made\n", "{}", text(&o));
    // `bay container` groups the verbs.
    assert!(bay.ok(&["container", "ls", "-a"]).contains("once"));
    assert_eq!(bay.ok(&["container", "rm", "once"]).trim(), "once");
}
