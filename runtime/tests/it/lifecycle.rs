use bay_runtime::spec::RunOptions;
use bay_runtime::{ContainerError, ContainerStatus, Stdio, StdioConfig};

use crate::support::{env, new_id, require_env, run, sh, spec};

fn run_in(env: &crate::support::Env, script: &str) -> String {
    sh(env, script, RunOptions::default()).stdout
}

#[test]
fn exit_codes_follow_docker() {
    require_env!("exit_codes_follow_docker");
    let env = env();
    assert_eq!(sh(&env, "exit 3", RunOptions::default()).status.code, 3);
    let killed = sh(&env, "kill -9 $$", RunOptions::default()).status;
    // PID 1 ignores signals it has no handler for, except from its parent
    // namespace; so kill a child instead and propagate.
    let _ = killed;
    let s = sh(&env, "sh -c 'kill -9 $$'; exit $?", RunOptions::default()).status;
    assert_eq!(s.code, 137);
    assert!(!s.oom_killed);
    // A missing command is docker's 127, a non-executable one 126.
    let id = new_id();
    let sp = spec(
        &env,
        &id,
        &RunOptions {
            cmd: vec!["/nope".into()],
            ..Default::default()
        },
    );
    let err = env
        .rt
        .run(id, &sp, &env.image, StdioConfig::default(), true)
        .unwrap_err();
    assert!(matches!(err, ContainerError::Exec { .. }), "{err}");
    assert_eq!(err.exit_code(), 127);
    let id = new_id();
    let sp = spec(
        &env,
        &id,
        &RunOptions {
            cmd: vec!["/etc/hello".into()],
            ..Default::default()
        },
    );
    let err = env
        .rt
        .run(id, &sp, &env.image, StdioConfig::default(), true)
        .unwrap_err();
    assert_eq!(err.exit_code(), 126, "{err}");
    // PATH lookup inside the container.
    let out = run(&env, &["echo", "found"], RunOptions::default());
    assert_eq!(out.stdout, "found\n");
    assert!(env.rt.list().unwrap().is_empty(), "--rm removed everything");
    if let Some(run) = &env._run {
        // While running, a --rm container lives in the run dir (tmpfs).
        let out = run_in(&env, "ls /proc/1/root >/dev/null; echo ok");
        assert_eq!(out, "ok\n");
        assert_eq!(
            std::fs::read_dir(run.path().join("containers"))
                .unwrap()
                .count(),
            0
        );
    }
}

#[test]
fn kill_stop_and_state_machine() {
    require_env!("kill_stop_and_state_machine");
    let env = env();
    let id = new_id();
    let sp = spec(
        &env,
        &id,
        &RunOptions {
            cmd: vec!["sleep".into(), "30".into()],
            ..Default::default()
        },
    );
    let mut c = env.rt.create(id.clone(), &sp, &env.image).unwrap();
    assert_eq!(c.status(), ContainerStatus::Created);
    assert!(c.kill(15).is_err(), "cannot kill a created container");
    c.start(StdioConfig {
        stdin: Stdio::Null,
        stdout: Stdio::Null,
        stderr: Stdio::Null,
    })
    .unwrap();
    assert_eq!(c.status(), ContainerStatus::Running);
    assert!(matches!(
        c.start(StdioConfig::default()),
        Err(ContainerError::IncorrectStatus { .. })
    ));
    let listed = env.rt.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, ContainerStatus::Running);
    let procs = c.processes().unwrap();
    assert_eq!(
        procs,
        vec![c.state().pid.unwrap()],
        "bay top: just the init"
    );
    let stats = c.stats().unwrap();
    assert!(stats.pids_current >= 1, "{stats:?}");
    // PID 1 has no SIGTERM handler: docker stop falls back to SIGKILL.
    c.kill(libc::SIGKILL).unwrap();
    let st = c.wait().unwrap();
    assert_eq!((st.code, st.signal), (137, Some(9)));
    assert_eq!(env.rt.load(&id).unwrap().status(), ContainerStatus::Stopped);
    assert_eq!(env.rt.load(&id).unwrap().state().exit_code, Some(137));
    // Restart a stopped container, then force-remove it while running.
    let mut c = env.rt.load(&id).unwrap();
    c.start(StdioConfig {
        stdin: Stdio::Null,
        stdout: Stdio::Null,
        stderr: Stdio::Null,
    })
    .unwrap();
    let cg = c.state().cgroup.clone();
    c.delete(true).unwrap();
    assert!(matches!(
        env.rt.load(&id),
        Err(ContainerError::NotFound { .. })
    ));
    assert!(
        env.rt.cgroups().pids(&cg).unwrap().is_empty(),
        "cgroup removed"
    );
}

#[test]
fn terminal_and_session() {
    require_env!("terminal_and_session");
    let env = env();
    let pty = nix::pty::openpty(None, None).unwrap();
    let id = new_id();
    let script = "[ -t 0 ] && echo tty; cut -d' ' -f6 /proc/1/stat; echo $TERM";
    let sp = spec(
        &env,
        &id,
        &RunOptions {
            cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
            tty: true,
            ..Default::default()
        },
    );
    let slave = || Stdio::Fd(pty.slave.try_clone().unwrap());
    let mut c = env.rt.create(id, &sp, &env.image).unwrap();
    c.start(StdioConfig {
        stdin: slave(),
        stdout: slave(),
        stderr: slave(),
    })
    .unwrap();
    let status = c.wait().unwrap();
    c.delete(false).unwrap();
    drop(pty.slave);
    let mut out = Vec::new();
    let mut master = std::fs::File::from(pty.master);
    let mut buf = [0u8; 4096];
    // EIO once the slave side is closed everywhere.
    while let Ok(n @ 1..) = std::io::Read::read(&mut master, &mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    let out = String::from_utf8_lossy(&out).replace('\r', "");
    assert_eq!(status.code, 0, "{out}");
    assert_eq!(
        out, "tty\n1\nxterm\n",
        "stdin is a tty, PID 1 leads session 1, TERM is set"
    );
}

#[test]
fn exec_joins_the_container_with_the_same_confinement() {
    require_env!("exec_joins_the_container_with_the_same_confinement");
    let env = env();
    let id = new_id();
    let sp = spec(
        &env,
        &id,
        &RunOptions {
            cmd: vec!["sleep".into(), "30".into()],
            hostname: Some("inner".into()),
            ..Default::default()
        },
    );
    let mut c = env.rt.create(id, &sp, &env.image).unwrap();
    c.start(StdioConfig {
        stdin: Stdio::Null,
        stdout: Stdio::Null,
        stderr: Stdio::Null,
    })
    .unwrap();
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let p = c
        .exec(
            bay_runtime::ExecOptions {
                args: vec![
                    "sh".into(),
                    "-c".into(),
                    "tr '\\0' ' ' < /proc/1/cmdline; echo; hostname; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
                     unshare -U true 2>/dev/null && echo userns-ok; echo $X; exit 7"
                        .into(),
                ],
                env: vec!["X=from-exec".into()],
                ..Default::default()
            },
            StdioConfig { stdin: Stdio::Null, stdout: Stdio::Fd(w), stderr: Stdio::Inherit },
        )
        .unwrap();
    let status = p.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out).unwrap();
    // A missing command fails like docker exec (127).
    let err = c
        .exec(
            bay_runtime::ExecOptions {
                args: vec!["/nope".into()],
                ..Default::default()
            },
            StdioConfig::default(),
        )
        .unwrap_err();
    c.delete(true).unwrap();
    assert_eq!(status.code, 7, "{out}");
    assert_eq!(
        out,
        "sleep 30 \ninner\nCapEff:\t00000000a80425fb\nNoNewPrivs:\t0\nSeccomp:\t2\nfrom-exec\n",
        "exec sees the init as PID 1, its hostname, the same caps and seccomp"
    );
    assert_eq!(err.exit_code(), 127, "{err}");
}

#[test]
fn pause_and_unpause_freeze_the_processes() {
    require_env!("pause_and_unpause_freeze_the_processes");
    let env = env();
    let host = tempfile::tempdir().unwrap();
    let id = new_id();
    let sp = spec(
        &env,
        &id,
        &RunOptions {
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "while :; do echo x >> /data/n; done".into(),
            ],
            mounts: vec![
                bay_runtime::spec::MountSpec::parse_volume(&format!(
                    "{}:/data",
                    host.path().display()
                ))
                .unwrap(),
            ],
            ..Default::default()
        },
    );
    let mut c = env.rt.create(id.clone(), &sp, &env.image).unwrap();
    c.start(StdioConfig {
        stdin: Stdio::Null,
        stdout: Stdio::Null,
        stderr: Stdio::Null,
    })
    .unwrap();
    // The file only grows while the loop runs.
    let count = || std::fs::metadata(host.path().join("n")).map_or(0, |m| m.len());
    std::thread::sleep(std::time::Duration::from_millis(100));
    c.pause().unwrap();
    assert_eq!(c.status(), ContainerStatus::Paused);
    assert_eq!(env.rt.load(&id).unwrap().status(), ContainerStatus::Paused);
    let a = count();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let b = count();
    assert!(matches!(
        c.pause(),
        Err(ContainerError::IncorrectStatus { .. })
    ));
    c.resume().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let d = count();
    c.pause().unwrap();
    // kill on a paused container thaws it so the signal lands.
    c.kill(libc::SIGKILL).unwrap();
    let st = c.wait().unwrap();
    c.delete(false).unwrap();
    assert!(a > 0, "the loop ran before the pause");
    assert_eq!(a, b, "nothing ran while paused");
    assert!(d > b, "it ran again after unpause ({b} -> {d})");
    assert_eq!(st.code, 137);
}
