use bay_runtime::spec::{Resources, RunOptions};

use crate::support::{env, require_env, sh};

#[test]
fn memory_limit_oom_kills_with_137() {
    require_env!("memory_limit_oom_kills_with_137");
    let env = env();
    let started = std::time::Instant::now();
    // tmpfs pages are charged to the writer's memory cgroup and cannot be
    // reclaimed without swap: 64 MiB into /dev/shm under -m 32m must OOM.
    let out = sh(
        &env,
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>/dev/null; exit $?",
        RunOptions {
            resources: Resources {
                memory: Some(32 << 20),
                ..Default::default()
            },
            shm_size: Some(128 << 20),
            ..Default::default()
        },
    );
    assert!(
        out.status.oom_killed,
        "expected an OOM kill: {:?} {}",
        out.status, out.stdout
    );
    assert_eq!(
        out.status.code, 137,
        "{:?} {} {}",
        out.status, out.stdout, out.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // 16 MiB fits.
    let out = sh(
        &env,
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=16 2>/dev/null && echo fits",
        RunOptions {
            resources: Resources {
                memory: Some(32 << 20),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    assert_eq!(
        (out.status.code, out.status.oom_killed),
        (0, false),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.trim(), "fits");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    require_env!("pids_limit_stops_a_fork_bomb");
    let env = env();
    let started = std::time::Instant::now();
    let out = sh(
        &env,
        "(for i in $(seq 1 60); do sleep 2 & done) 2>/dev/null; set -- /proc/[0-9]*; echo $#",
        RunOptions {
            resources: Resources {
                pids_limit: Some(20),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let procs: u32 = out
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{:?} {}", out.stdout, out.stderr));
    assert!(procs <= 20, "{procs} processes under --pids-limit 20");
    assert!(
        procs >= 15,
        "the limit, not something else, stopped forking: {procs}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // The host is fine: we can still fork.
    assert!(
        std::process::Command::new("/bin/true")
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn cgroup_is_read_only_and_scoped_inside() {
    require_env!("cgroup_is_read_only_and_scoped_inside");
    let env = env();
    let out = sh(
        &env,
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; \
         (echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes) 2>&1 | grep -c 'Read-only'; \
         cat /proc/self/cgroup | grep -c ':/$'",
        RunOptions {
            resources: Resources {
                memory: Some(48 << 20),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        (48u64 << 20).to_string(),
        "the container sees its own limit: {}",
        out.stdout
    );
    if bay_runtime::cgroups::detect().unwrap().version() == bay_runtime::cgroups::CgroupVersion::V1
    {
        assert_eq!(
            lines[1], "1",
            "cgroup v1 mount must be read-only: {}",
            out.stdout
        );
    }
    assert_ne!(
        lines[2], "0",
        "the cgroup namespace is rooted at the container: {}",
        out.stdout
    );
}

#[test]
fn cpus_half_a_core() {
    require_env!("cpus_half_a_core");
    let env = env();
    let id = crate::support::new_id();
    let opts = RunOptions {
        cmd: vec![
            "/bin/sh".into(),
            "-c".into(),
            "timeout 2 sh -c 'while :; do :; done'; true".into(),
        ],
        resources: Resources {
            cpus: Some(0.5),
            ..Default::default()
        },
        ..Default::default()
    };
    let sp = crate::support::spec(&env, &id, &opts);
    let mut c = env.rt.create(id, &sp, &env.image).unwrap();
    let started = std::time::Instant::now();
    c.start(bay_runtime::StdioConfig::default()).unwrap();
    assert_eq!(c.wait().unwrap().code, 0);
    let wall = started.elapsed().as_secs_f64();
    let cpu = c.stats().unwrap().cpu_usage_ns as f64 / 1e9;
    c.delete(false).unwrap();
    let share = cpu / wall;
    eprintln!("--cpus 0.5: {cpu:.3} s CPU over {wall:.3} s = {share:.2} cores");
    // The quota caps it at half a core (+20%). The floor only means
    // something on a machine that is not saturated by other work.
    assert!(share <= 0.6, "{share:.2} cores under --cpus 0.5");
    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if load < cores {
        assert!(
            share >= 0.4,
            "{share:.2} cores on an idle machine (load {load})"
        );
    } else {
        eprintln!("load {load} on {cores} cores: not checking the floor");
    }
}
