//! `bay run` in the foreground: exit statuses, docker's default security
//! profile, and content trust refusing an unsigned image before any
//! container exists. Needs root (namespaces, cgroups, overlayfs).

use std::path::Path;
use std::process::Output;

use crate::common::*;

fn root() -> bool {
    let ok = nix::unistd::geteuid().is_root();
    if !ok {
        eprintln!("SKIP: bay run needs root (namespaces, cgroups, overlayfs)");
    }
    ok
}

/// A bay with busybox imported as `bb:1`.
fn with_busybox() -> Option<Bay> {
    if !root() {
        return None;
    }
    let bay = Bay::new();
    let rootfs = busybox_rootfs(bay.root.path())?;
    bay.ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
    Some(bay)
}

/// Entries of the runtime's container directory (absent counts as empty).
fn containers(bay: &Bay) -> Vec<String> {
    let dir = bay.data_root().join("runtime/containers");
    match std::fs::read_dir(&dir) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn run_exits_with_the_container_status_under_the_default_profile() {
    let Some(bay) = with_busybox() else { return };
    let o = bay.run(&["run", "--rm", "bb:1", "/bin/sh", "-c", "echo hi; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n", "{}", text(&o));
    // Flags after IMAGE belong to the command; bay's own flags go before it.
    let o = bay.run(&[
        "run",
        "--rm",
        "-h",
        "box",
        "-e",
        "A=b c",
        "-w",
        "/bin",
        "bb:1",
        "sh",
        "-c",
        "echo $(hostname) \"$A\" $(pwd)",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "box b c /bin\n",
        "{}",
        text(&o)
    );

    let status = bay.ok(&["run", "--rm", "bb:1", "/bin/cat", "/proc/self/status"]);
    assert!(status.contains("CapEff:\t00000000a80425fb\n"), "{status}");
    assert!(status.contains("Seccomp:\t2\n"), "{status}");
    let privileged = bay.ok(&[
        "run",
        "--rm",
        "--privileged",
        "bb:1",
        "/bin/cat",
        "/proc/self/status",
    ]);
    assert!(privileged.contains("Seccomp:\t0\n"), "{privileged}");

    let e = bay.fails(&["run", "--rm", "bb:1", "/no/such/command"], 127);
    assert!(e.contains("/no/such/command"), "{e}");
    let e = bay.fails(&["run", "--rm", "nosuch:1", "true"], 125);
    assert!(e.contains("No such image: nosuch:1"), "{e}");
    let e = bay.fails(&["run", "--rm", "--network", "bogus", "bb:1", "true"], 125);
    assert!(e.contains("--network"), "{e}");
    assert!(
        containers(&bay).is_empty(),
        "--rm leaves nothing: {:?}",
        containers(&bay)
    );

    // Without --rm the container stays; the layer was unpacked once.
    bay.ok(&["run", "bb:1", "true"]);
    assert_eq!(containers(&bay).len(), 1);
    let layers = bay.data_root().join("runtime/layers/sha256");
    let n = std::fs::read_dir(&layers).unwrap().count();
    assert_eq!(n, 1, "one layer in {}", layers.display());
    // ... and it keeps its image from `rmi` and `image prune -a`.
    let kept = &containers(&bay)[0];
    let e = bay.fails(&["rmi", "bb:1"], 1);
    assert!(
        e.contains("must be forced") && e.contains(&format!("container {kept}")),
        "{e}"
    );
    bay.ok(&["image", "prune", "-a", "-f"]);
    assert!(bay.ok(&["images"]).contains("bb "));
    // An image no container came from goes, even with the same layers.
    let rootfs = busybox_rootfs(bay.root.path()).unwrap();
    bay.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        rootfs.to_str().unwrap(),
        "other:1",
    ]);
    bay.ok(&["rmi", "other:1"]);
}

/// A client against bay-registry with its own `$BAY_HOME` (keys, trust cache).
fn run_trust(bay: &Bay, home: &Path, trust: bool, args: &[&str]) -> Output {
    let mut c = bay.cmd(args);
    c.env("BAY_HOME", home)
        .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-1")
        .env("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-1");
    if trust {
        c.env("DOCKER_CONTENT_TRUST", "1");
    }
    c.output().unwrap()
}

#[test]
fn content_trust_refuses_unsigned_images_before_anything_runs() {
    let Some(bay) = with_busybox() else { return };
    let Some(reg) = bay_registry() else { return };
    let home = bay.root.path().join("home");
    let ok = |trust: bool, args: &[&str]| {
        let o = run_trust(&bay, &home, trust, args);
        assert!(o.status.success(), "bay {args:?}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let unsigned = format!("{}/team/run:unsigned", reg.addr);
    let signed = format!("{}/team/run:signed", reg.addr);
    ok(false, &["tag", "bb:1", &unsigned]);
    ok(false, &["push", &unsigned]);

    // Present locally by tag: trust still resolves it, and refuses.
    let o = run_trust(
        &bay,
        &home,
        true,
        &["run", "--rm", &unsigned, "/bin/echo", "ran"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not signed"),
        "{}",
        text(&o)
    );
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("ran"),
        "{}",
        text(&o)
    );
    assert!(containers(&bay).is_empty(), "{:?}", containers(&bay));

    // Absent locally: the pull is refused, nothing is stored or run.
    ok(false, &["rmi", &unsigned]);
    let o = run_trust(
        &bay,
        &home,
        true,
        &["run", "--rm", &unsigned, "/bin/echo", "ran"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not signed"),
        "{}",
        text(&o)
    );
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("ran"),
        "{}",
        text(&o)
    );
    assert!(containers(&bay).is_empty(), "{:?}", containers(&bay));
    assert!(!ok(false, &["images"]).contains("unsigned"));
    // --disable-content-trust (or trust off) pulls and runs it.
    let out = ok(
        true,
        &[
            "run",
            "--rm",
            "--disable-content-trust",
            &unsigned,
            "/bin/echo",
            "ran",
        ],
    );
    assert_eq!(out, "ran\n");

    // A signed tag runs with trust on, present locally and pulled afresh.
    ok(false, &["tag", "bb:1", &signed]);
    ok(true, &["push", &signed]);
    assert_eq!(
        ok(true, &["run", "--rm", &signed, "/bin/echo", "signed"]),
        "signed\n"
    );
    ok(false, &["rmi", &signed, &unsigned, "bb:1"]);
    assert_eq!(
        ok(true, &["run", "--rm", &signed, "/bin/echo", "signed"]),
        "signed\n"
    );
    assert!(containers(&bay).is_empty(), "{:?}", containers(&bay));
}

#[test]
fn run_flags_reach_the_container() {
    let Some(bay) = with_busybox() else { return };
    let vol = bay.root.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::fs::write(vol.join("f"), "data\n").unwrap();
    let mount = format!("{}:/mnt:ro", vol.display());
    let o = bay.run(&[
        "run",
        "--rm",
        "--read-only",
        "-v",
        &mount,
        "bb:1",
        "sh",
        "-c",
        "cat /mnt/f; echo x > /x || echo ro-root; echo y > /mnt/g || echo ro-vol",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "data\nro-root\nro-vol\n",
        "{}",
        text(&o)
    );
    assert!(!vol.join("g").exists());

    let caps = bay.ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "-u",
        "1000:1000",
        "bb:1",
        "sh",
        "-c",
        "grep CapEff /proc/self/status; /bin/busybox id",
    ]);
    assert_eq!(caps, "CapEff:\t0000000000000000\nuid=1000 gid=1000\n");

    // cgroup v2 or v1, whichever the host has.
    let limits = bay.ok(&[
        "run", "--rm", "-m", "64m", "--pids-limit", "20", "bb:1", "sh", "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
    ]);
    assert_eq!(limits, "67108864\n20\n");

    assert_eq!(
        bay.ok(&["run", "--rm", "--entrypoint", "/bin/echo", "bb:1", "hello"]),
        "hello\n"
    );
    let o = bay.run(&[
        "run",
        "--rm",
        "bb:1",
        "sh",
        "-c",
        "/bin/sh -c 'kill -9 $$'; exit $?",
    ]);
    assert_eq!(o.status.code(), Some(137), "{}", text(&o));
}

#[test]
fn signals_to_bay_run_reach_the_container_and_rm_still_cleans_up() {
    let Some(bay) = with_busybox() else { return };
    use std::io::{BufRead, Read};
    let mut child = bay
        .cmd(&[
            "run",
            "--rm",
            "bb:1",
            "sh",
            "-c",
            // Bounded (~5 s), so a failure cannot hang the test on the pipe.
            "trap 'echo got; exit 42' TERM; echo ready; i=0; \
             while [ $i -lt 100 ]; do /bin/busybox sleep 0.05; i=$((i+1)); done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // The trap is set; bay blocks its signals right after the start.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42), "{rest}");
    assert_eq!(rest, "got\n");
    assert!(containers(&bay).is_empty(), "{:?}", containers(&bay));
}
