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

/// The values a container's own cgroup files hold, read from inside
/// (`name=value` lines), for cgroup v1 or v2.
fn cgroup_values(env: &crate::support::Env, opts: RunOptions) -> Vec<(String, String)> {
    let v2 = bay_runtime::cgroups::detect().unwrap().version()
        == bay_runtime::cgroups::CgroupVersion::V2;
    let script = if v2 {
        "cd /sys/fs/cgroup; echo swap=$(cat memory.swap.max); echo soft=$(cat memory.low); \
         echo weight=$(cat cpu.weight); echo cpumax=$(cat cpu.max); echo cpuset=$(cat cpuset.cpus); \
         echo allowed=$(grep Cpus_allowed_list /proc/self/status | cut -f2)"
    } else {
        "cd /sys/fs/cgroup; echo memsw=$(cat memory/memory.memsw.limit_in_bytes); \
         echo soft=$(cat memory/memory.soft_limit_in_bytes); \
         echo shares=$(cat cpu*/cpu.shares 2>/dev/null); echo quota=$(cat cpu*/cpu.cfs_quota_us 2>/dev/null); \
         echo period=$(cat cpu*/cpu.cfs_period_us 2>/dev/null); echo cpuset=$(cat cpuset/cpuset.cpus); \
         echo allowed=$(grep Cpus_allowed_list /proc/self/status | cut -f2)"
    };
    let out = sh(env, script, opts);
    assert_eq!(out.status.code, 0, "{} {}", out.stdout, out.stderr);
    out.stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn value<'a>(vals: &'a [(String, String)], key: &str) -> &'a str {
    vals.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{key} missing in {vals:?}"))
}

#[test]
fn swap_reservation_shares_quota_and_cpuset_reach_the_cgroup() {
    require_env!("swap_reservation_shares_quota_and_cpuset_reach_the_cgroup");
    let env = env();
    let v2 = bay_runtime::cgroups::detect().unwrap().version()
        == bay_runtime::cgroups::CgroupVersion::V2;
    // The highest online CPU, so the set is a real restriction on SMP.
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let cpu = bay_runtime::spec::resources::parse_cpu_list(online.trim())
        .unwrap()
        .into_iter()
        .next_back()
        .unwrap()
        .to_string();
    let vals = cgroup_values(
        &env,
        RunOptions {
            resources: Resources {
                memory: Some(64 << 20),
                memory_swap: Some(96 << 20),
                memory_reservation: Some(32 << 20),
                cpu_shares: Some(512),
                cpu_quota: Some(25_000),
                cpu_period: Some(50_000),
                cpuset_cpus: Some(cpu.clone()),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    if v2 {
        assert_eq!(
            value(&vals, "swap"),
            (32u64 << 20).to_string(),
            "swap alone"
        );
        assert_eq!(value(&vals, "soft"), (32u64 << 20).to_string());
        assert_eq!(value(&vals, "weight"), "59", "runc's shares -> weight");
        assert_eq!(value(&vals, "cpumax"), "25000 50000");
    } else {
        assert_eq!(value(&vals, "memsw"), (96u64 << 20).to_string());
        assert_eq!(value(&vals, "soft"), (32u64 << 20).to_string());
        assert_eq!(value(&vals, "shares"), "512");
        assert_eq!(value(&vals, "quota"), "25000");
        assert_eq!(value(&vals, "period"), "50000");
    }
    assert_eq!(value(&vals, "cpuset"), cpu);
    assert_eq!(value(&vals, "allowed"), cpu, "the scheduler obeys the set");

    // docker's default swap is twice -m; -1 lifts the swap limit.
    let swap = |memory_swap| {
        let vals = cgroup_values(
            &env,
            RunOptions {
                resources: Resources {
                    memory: Some(64 << 20),
                    memory_swap,
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        value(&vals, if v2 { "swap" } else { "memsw" }).to_owned()
    };
    if v2 {
        assert_eq!(swap(None), (64u64 << 20).to_string());
        assert_eq!(swap(Some(-1)), "max");
    } else {
        assert_eq!(swap(None), (128u64 << 20).to_string());
        let unlimited: u64 = swap(Some(-1)).parse().unwrap();
        assert!(unlimited > 1 << 60, "unlimited memsw: {unlimited}");
    }
}

#[test]
fn resource_flags_docker_refuses_never_start() {
    require_env!("resource_flags_docker_refuses_never_start");
    let env = env();
    let id = crate::support::new_id();
    let layers = env.rt.layer_paths(&env.image).unwrap();
    let refused = |resources: Resources| {
        bay_runtime::build_spec(
            bay_runtime::SpecInput {
                id: &id,
                image: None,
                layers: &layers,
            },
            &RunOptions {
                cmd: vec!["true".into()],
                resources,
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string()
    };
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    assert_eq!(
        refused(Resources {
            cpuset_cpus: Some("0-4095".into()),
            ..Default::default()
        }),
        format!(
            "Requested CPUs are not available - requested 0-4095, available: {}",
            online.trim()
        )
    );
    assert_eq!(
        refused(Resources {
            memory: Some(64 << 20),
            memory_swap: Some(32 << 20),
            ..Default::default()
        }),
        "Minimum memoryswap limit should be larger than memory limit, see usage"
    );
}
