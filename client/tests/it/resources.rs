//! `bay run`'s resource flags end to end: each reaches the container's own
//! cgroup files (read from inside, v1 or v2, whichever the host has), and
//! what docker refuses exits 125 with docker's message. Needs root.

use crate::common::*;

/// A bay with busybox imported as `bb:1` (None, after a SKIP line, when not root).
fn busybox_bay() -> Option<Bay> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: bay run needs root (namespaces, cgroups, overlayfs)");
        return None;
    }
    let bay = Bay::new();
    let rootfs = busybox_rootfs(bay.root.path())?;
    bay.ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
    Some(bay)
}

fn cgroup_v2() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "))
}

#[test]
fn run_resource_flags_reach_the_cgroup() {
    let Some(bay) = busybox_bay() else { return };
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let last_cpu = online.trim().rsplit([',', '-']).next().unwrap().to_owned();
    let script = if cgroup_v2() {
        "cd /sys/fs/cgroup; cat memory.swap.max memory.low cpu.weight cpu.max cpuset.cpus"
    } else {
        "cd /sys/fs/cgroup; c=cpu; [ -d cpu,cpuacct ] && c=cpu,cpuacct; \
         cat memory/memory.memsw.limit_in_bytes memory/memory.soft_limit_in_bytes \
         $c/cpu.shares $c/cpu.cfs_quota_us $c/cpu.cfs_period_us cpuset/cpuset.cpus"
    };
    let script = format!("{script}; grep Cpus_allowed_list /proc/self/status | cut -f2");
    let out = bay.ok(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--memory-swap",
        "96m",
        "--memory-reservation",
        "32m",
        "--cpu-shares",
        "512",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "--cpuset-cpus",
        &last_cpu,
        "bb:1",
        "sh",
        "-c",
        &script,
    ]);
    let want = if cgroup_v2() {
        format!("33554432\n33554432\n59\n25000 50000\n{last_cpu}\n{last_cpu}\n")
    } else {
        format!("100663296\n33554432\n512\n25000\n50000\n{last_cpu}\n{last_cpu}\n")
    };
    assert_eq!(out, want);

    // -m alone: docker's swap default is twice the memory limit.
    let swap = if cgroup_v2() {
        "cat /sys/fs/cgroup/memory.swap.max"
    } else {
        "cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"
    };
    let out = bay.ok(&["run", "--rm", "-m", "64m", "bb:1", "sh", "-c", swap]);
    assert_eq!(
        out.trim(),
        if cgroup_v2() { "67108864" } else { "134217728" }
    );
}

#[test]
fn run_refuses_resource_values_docker_refuses() {
    let Some(bay) = busybox_bay() else { return };
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    for (flags, msg) in [
        (
            vec!["--cpuset-cpus", "0-4095"],
            format!(
                "Requested CPUs are not available - requested 0-4095, available: {}",
                online.trim()
            ),
        ),
        (
            vec!["--cpuset-cpus", "one"],
            "Invalid value one for cpuset cpus: invalid format: one".to_owned(),
        ),
        (
            vec!["-m", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit, see usage".to_owned(),
        ),
        (
            vec!["--memory-swap", "64m"],
            "You should always set the Memory limit when using Memoryswap limit, see usage"
                .to_owned(),
        ),
        (
            vec!["-m", "32m", "--memory-reservation", "64m"],
            "Minimum memory limit can not be less than memory reservation limit, see usage"
                .to_owned(),
        ),
        (
            vec!["--cpus", "1", "--cpu-quota", "50000"],
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set".to_owned(),
        ),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.iter().copied());
        args.extend(["bb:1", "true"]);
        let e = bay.fails(&args, 125);
        assert!(e.contains(&msg), "{flags:?}: {e}");
    }
    let containers = bay.data_root().join("runtime/containers");
    let left = std::fs::read_dir(&containers).map_or(0, |d| d.count());
    assert_eq!(left, 0, "nothing was created");
}
