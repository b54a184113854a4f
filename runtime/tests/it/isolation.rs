use bay_runtime::spec::{RunOptions, SeccompProfile, SecurityOpts};

use bay_runtime::{Stdio, StdioConfig};

use crate::support::{env, new_id, require_env, sh, spec};

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("{key} missing in {out}"))
}

#[test]
fn docker_default_isolation_facts() {
    require_env!("docker_default_isolation_facts");
    let env = env();
    let out = sh(
        &env,
        "cat /proc/self/status; echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline); \
         echo host=$(hostname); echo nets=$(ls /sys/class/net | tr '\\n' ' '); \
         echo kcore=$([ -e /proc/kcore ] && wc -c < /proc/kcore || echo 0); echo lo=$(cat /sys/class/net/lo/operstate /sys/class/net/lo/flags)",
        RunOptions {
            hostname: Some("boxy".into()),
            network: "none".parse().unwrap(),
            ..Default::default()
        },
    );
    assert_eq!(out.status.code, 0, "{}", out.stderr);
    let o = &out.stdout;
    assert_eq!(status_field(o, "CapEff"), "00000000a80425fb");
    assert_eq!(status_field(o, "CapBnd"), "00000000a80425fb");
    assert_eq!(status_field(o, "CapPrm"), "00000000a80425fb");
    assert_eq!(status_field(o, "CapAmb"), "0000000000000000");
    assert_eq!(status_field(o, "Seccomp"), "2");
    assert_eq!(status_field(o, "NoNewPrivs"), "0");
    assert_eq!(
        status_field(o, "SigIgn"),
        "0000000000000000",
        "no ignored signal leaks in"
    );
    assert_eq!(status_field(o, "SigBlk"), "0000000000000000");
    assert!(o.contains("pid1=/bin/sh -c cat /proc/self/status"), "{o}");
    assert!(o.contains("host=boxy"), "{o}");
    assert!(o.contains("nets=lo \n") || o.contains("nets=lo\n"), "{o}");
    assert!(o.contains("kcore=0"), "{o}");
    assert!(
        o.contains("lo=unknown 0x9") || o.contains("lo=unknown 0x49"),
        "lo must be up: {o}"
    );
}

/// `mknod` + open of a device outside docker's allowlist (`/dev/kmsg`,
/// c 1:11; this sandbox forbids opening its disk even to the host): the
/// devices cgroup (v1) or the nodev mounts (v2) must stop it.
const DEVICE_SCRIPT: &str = "mknod /tmp/kmsg c 1 11 2>/dev/null; (true < /tmp/kmsg) 2>/dev/null && echo chardev-ok; \
     mknod /dev/kmsg2 c 1 11 2>/dev/null; (true < /dev/kmsg2) 2>/dev/null && echo devdir-ok; echo end";

#[test]
fn privileged_operations_fail() {
    require_env!("privileged_operations_fail");
    let env = env();
    // Positive control: the same device read works when privileged.
    let out = sh(
        &env,
        DEVICE_SCRIPT,
        RunOptions {
            privileged: true,
            ..Default::default()
        },
    );
    assert!(
        out.stdout.contains("chardev-ok"),
        "control: {} {}",
        out.stdout,
        out.stderr
    );
    let out = sh(&env, DEVICE_SCRIPT, RunOptions::default());
    assert_eq!(
        out.stdout, "end\n",
        "a denied device opened: {}",
        out.stdout
    );
    let out = sh(
        &env,
        "mkdir -p /mnt; mount -t tmpfs none /mnt 2>/dev/null && echo mount-ok; \
         unshare -m true 2>/dev/null && echo unshare-ok; \
         unshare -U true 2>/dev/null && echo userns-ok; \
         (echo h > /proc/sysrq-trigger) 2>/dev/null && echo sysrq-ok; \
         (echo 1 > /proc/sys/kernel/panic) 2>/dev/null && echo sysctl-ok; \
         (echo 1 > /sys/kernel/profiling) 2>/dev/null && echo sysfs-ok; \
         for f in /sys/fs/cgroup/*/pids.max /sys/fs/cgroup/pids.max; do [ -e $f ] && { (echo 5 > $f) 2>/dev/null && echo cgroup-ok; }; done; \
         insmod /nonexistent.ko 2>/dev/null; modprobe dummy 2>/dev/null && echo module-ok; \
         echo done",
        RunOptions::default(),
    );
    assert_eq!(
        out.stdout.trim(),
        "done",
        "a privileged operation succeeded: {}",
        out.stdout
    );
}

#[test]
fn host_is_invisible_and_no_fds_leak() {
    require_env!("host_is_invisible_and_no_fds_leak");
    let env = env();
    let marker = format!("/tmp/bay-host-marker-{}", std::process::id());
    std::fs::write(&marker, "secret").unwrap();
    let out = sh(
        &env,
        &format!("cat {marker} 2>/dev/null && echo visible; ls / | tr '\\n' ' '; echo"),
        RunOptions::default(),
    );
    std::fs::remove_file(&marker).unwrap();
    assert!(!out.stdout.contains("visible"), "{}", out.stdout);
    assert_eq!(
        out.stdout.trim(),
        "bin dev etc home proc root sys tmp usr var"
    );

    // A descriptor without O_CLOEXEC, as a careless caller might leak; the
    // container's init must still hold only 0, 1 and 2 after exec. Read from
    // the host: inside, any lister (a shell, `ls`) holds fds of its own.
    let leak = nix::fcntl::open(
        "/etc/hostname",
        nix::fcntl::OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let id = new_id();
    let sp = spec(
        &env,
        &id,
        &RunOptions {
            cmd: vec!["sleep".into(), "30".into()],
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
    nix::unistd::close(leak).unwrap();
    let pid = c.state().pid.unwrap();
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    c.delete(true).unwrap();
    assert_eq!(
        fds,
        ["0", "1", "2"],
        "only stdio may be open in the container"
    );
}

#[test]
fn seccomp_unconfined_no_new_privs_and_privileged() {
    require_env!("seccomp_unconfined_no_new_privs_and_privileged");
    let env = env();
    let out = sh(
        &env,
        "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status",
        RunOptions {
            security: SecurityOpts {
                seccomp: SeccompProfile::Unconfined,
                no_new_privileges: true,
            },
            ..Default::default()
        },
    );
    assert!(out.stdout.contains("Seccomp:\t0"), "{}", out.stdout);
    assert!(out.stdout.contains("NoNewPrivs:\t1"), "{}", out.stdout);
    let out = sh(
        &env,
        "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status",
        RunOptions {
            security: SecurityOpts {
                seccomp: SeccompProfile::Default,
                no_new_privileges: true,
            },
            ..Default::default()
        },
    );
    assert!(
        out.stdout.contains("Seccomp:\t2") && out.stdout.contains("NoNewPrivs:\t1"),
        "{}",
        out.stdout
    );
    let out = sh(
        &env,
        "grep CapEff /proc/self/status; mkdir -p /mnt; mount -t tmpfs none /mnt && echo mount-ok",
        RunOptions {
            privileged: true,
            ..Default::default()
        },
    );
    assert!(
        out.stdout.contains("mount-ok"),
        "{} {}",
        out.stdout,
        out.stderr
    );
    assert!(!out.stdout.contains("a80425fb"), "{}", out.stdout);
    let out = sh(
        &env,
        "mkdir -p /mnt; mount -t tmpfs none /mnt && echo mount-ok",
        RunOptions {
            cap_add: vec!["SYS_ADMIN".into()],
            ..Default::default()
        },
    );
    assert!(
        out.stdout.contains("mount-ok"),
        "cap-add SYS_ADMIN opens mount in the filter: {} {}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn user_workdir_env_and_read_only_root() {
    require_env!("user_workdir_env_and_read_only_root");
    let env = env();
    let out = sh(
        &env,
        "id -u; id -g; pwd; echo $GREETING; grep CapEff /proc/self/status; touch /x 2>/dev/null && echo wrote-root; touch /dev/shm/ok && echo wrote-shm",
        RunOptions {
            user: Some("app".into()),
            workdir: Some("/work/dir".into()),
            env: vec!["GREETING=hi".into()],
            read_only: true,
            ..Default::default()
        },
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        &lines[..4],
        ["1000", "1000", "/work/dir", "hi"],
        "{}",
        out.stderr
    );
    assert!(
        lines[4].ends_with("0000000000000000"),
        "a non-root user has no effective caps: {}",
        lines[4]
    );
    assert!(!out.stdout.contains("wrote-root"));
    assert!(out.stdout.contains("wrote-shm"));
}

#[test]
fn volumes_and_tmpfs_mounts() {
    require_env!("volumes_and_tmpfs_mounts");
    use bay_runtime::spec::MountSpec;
    let env = env();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in"), "from host\n").unwrap();
    let ro = tempfile::tempdir().unwrap();
    std::fs::write(ro.path().join("keep"), "ro\n").unwrap();
    let vol = format!("{}:/data", host.path().display());
    let ro_vol = format!("{}:/conf:ro", ro.path().display());
    let out = sh(
        &env,
        "cat /data/in; echo from-ctr > /data/out; cat /conf/keep; \
         (echo x > /conf/keep) 2>/dev/null && echo ro-writable; \
         grep ' /scratch ' /proc/self/mountinfo | cut -d' ' -f6,8; echo t > /scratch/f && cat /scratch/f",
        RunOptions {
            mounts: vec![
                MountSpec::parse_volume(&vol).unwrap(),
                MountSpec::parse_volume(&ro_vol).unwrap(),
                MountSpec::parse_tmpfs("/scratch:size=1m").unwrap(),
            ],
            ..Default::default()
        },
    );
    assert_eq!(out.status.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "from host");
    assert_eq!(lines[1], "ro");
    assert!(
        lines[2].contains("nosuid,nodev,noexec") && lines[2].ends_with("tmpfs"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3], "t");
    assert!(!out.stdout.contains("ro-writable"));
    assert_eq!(
        std::fs::read_to_string(host.path().join("out")).unwrap(),
        "from-ctr\n"
    );
    assert_eq!(
        std::fs::read_to_string(ro.path().join("keep")).unwrap(),
        "ro\n"
    );
}
