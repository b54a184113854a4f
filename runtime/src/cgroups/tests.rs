use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResourcesBuilder,
};

use super::v2::shares_to_weight;
use super::*;

const MOUNTINFO: &str = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/pids rw,relatime shared:13 - cgroup cgroup rw,pids
30 25 0:27 / /sys/fs/cgroup/systemd rw,relatime shared:14 - cgroup cgroup rw,xattr,name=systemd
31 25 0:28 / /sys/fs/cgroup/devices rw,relatime shared:15 - cgroup cgroup rw,devices
32 25 0:29 / /sys/fs/cgroup/cpuset rw,relatime shared:16 - cgroup cgroup rw,cpuset
";

fn resources() -> oci_spec::runtime::LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(32i64 << 20)
                .swap(64i64 << 20)
                .reservation(16i64 << 20)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .quota(50_000i64)
                .period(100_000u64)
                .shares(512u64)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(20i64).build().unwrap())
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1i64)
                .minor(3i64)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(136i64)
                .access("rwm")
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap()
}

#[test]
fn detects_hybrid_as_v1_and_pure_v2_as_v2() {
    let mounts = parse_mountinfo(MOUNTINFO);
    assert_eq!(mounts.len(), 7);
    let m = from_mounts(&mounts).unwrap();
    assert_eq!(m.version(), CgroupVersion::V1);
    let dirs: Vec<String> = m.v1_mounts().into_iter().map(|(d, _)| d).collect();
    assert_eq!(
        dirs,
        ["memory", "cpu,cpuacct", "pids", "devices", "cpuset"],
        "systemd is not joined"
    );
    let v2 =
        parse_mountinfo("24 1 0:21 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
    assert_eq!(from_mounts(&v2).unwrap().version(), CgroupVersion::V2);
    assert!(matches!(from_mounts(&[]), Err(CgroupError::NotMounted)));
}

fn fake_v1(root: &Path) -> CgroupV1 {
    let mounts: Vec<CgroupMount> = parse_mountinfo(MOUNTINFO)
        .into_iter()
        .filter(|m| m.fs_type == "cgroup")
        .map(|mut m| {
            m.mount_point = root.join(m.mount_point.file_name().unwrap());
            std::fs::create_dir_all(&m.mount_point).unwrap();
            m
        })
        .collect();
    std::fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
    std::fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
    CgroupV1::new(mounts)
}

#[test]
fn v1_writes_limits_where_the_kernel_reads_them() {
    let t = tempfile::tempdir().unwrap();
    let m = fake_v1(t.path());
    // memsw exists only with swap accounting: pretend it does.
    std::fs::create_dir_all(t.path().join("memory/bay/c1")).unwrap();
    std::fs::write(
        t.path().join("memory/bay/c1/memory.memsw.limit_in_bytes"),
        "",
    )
    .unwrap();
    let name = PathBuf::from("bay/c1");
    m.create(&name, Some(&resources())).unwrap();
    let rd = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
    assert_eq!(
        rd("memory/bay/c1/memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(
        rd("memory/bay/c1/memory.memsw.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(rd("cpu,cpuacct/bay/c1/cpu.cfs_quota_us"), "50000");
    assert_eq!(rd("cpu,cpuacct/bay/c1/cpu.cfs_period_us"), "100000");
    assert_eq!(rd("cpu,cpuacct/bay/c1/cpu.shares"), "512");
    assert_eq!(
        rd("memory/bay/c1/memory.soft_limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    assert_eq!(rd("cpuset/bay/c1/cpuset.mems"), "0");
    assert_eq!(rd("pids/bay/c1/pids.max"), "20");
    assert_eq!(
        rd("cpuset/bay/cpuset.cpus"),
        "0-1",
        "intermediate cpuset inherits"
    );
    assert_eq!(rd("cpuset/bay/cpuset.mems"), "0");
    assert_eq!(rd("cpuset/bay/c1/cpuset.cpus"), "0");
    // Files are overwritten per write; the last allow rule is what's left.
    assert_eq!(rd("devices/bay/c1/devices.deny"), "a");
    assert_eq!(rd("devices/bay/c1/devices.allow"), "c 136:* rwm");
    m.add_task(&name, 4242).unwrap();
    assert_eq!(rd("pids/bay/c1/cgroup.procs"), "4242");
    assert_eq!(rd("memory/bay/c1/cgroup.procs"), "4242");
    std::fs::write(
        t.path().join("memory/bay/c1/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    )
    .unwrap();
    assert_eq!(m.oom_kills(&name).unwrap(), 1);
    assert!(m.enforces_devices());
    assert!(m.clone_into_dir(&name).is_none());
}

#[test]
fn v2_writes_limits_where_the_kernel_reads_them() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .unwrap();
    let m = CgroupV2::new(t.path().to_path_buf());
    let name = PathBuf::from("bay/c2");
    std::fs::create_dir_all(t.path().join("bay/c2")).unwrap();
    std::fs::write(t.path().join("bay/c2/memory.swap.max"), "").unwrap();
    m.create(&name, Some(&resources())).unwrap();
    let rd = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
    assert_eq!(
        rd("cgroup.subtree_control"),
        "+cpu +cpuset +memory +pids +io"
    );
    assert_eq!(rd("bay/c2/memory.max"), (32u64 << 20).to_string());
    assert_eq!(
        rd("bay/c2/memory.swap.max"),
        (32u64 << 20).to_string(),
        "swap alone = memsw - mem"
    );
    assert_eq!(rd("bay/c2/cpu.max"), "50000 100000");
    assert_eq!(rd("bay/c2/cpu.weight"), "59", "512 shares, runc's formula");
    assert_eq!(rd("bay/c2/memory.low"), (16u64 << 20).to_string());
    assert_eq!(rd("bay/c2/cpuset.mems"), "0");
    assert_eq!(rd("bay/c2/pids.max"), "20");
    assert_eq!(rd("bay/c2/cpuset.cpus"), "0");
    assert_eq!(m.clone_into_dir(&name), Some(t.path().join("bay/c2")));
    std::fs::write(
        t.path().join("bay/c2/memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
    )
    .unwrap();
    assert_eq!(m.oom_kills(&name).unwrap(), 2);
    // runc >= 1.3.2: min, docker's default and max land on 1, 100, 10000.
    assert_eq!(shares_to_weight(1024), 100);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(3), 2);
    assert_eq!(shares_to_weight(2048), 174);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1 << 30), 10_000);
    assert_eq!(shares_to_weight(0), 0, "unset");
}

#[test]
fn real_hierarchy_create_and_destroy() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP real_hierarchy_create_and_destroy: needs root");
        return;
    }
    let m = match detect() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("SKIP real_hierarchy_create_and_destroy: {e}");
            return;
        }
    };
    let name = PathBuf::from(format!("bay/test-{}", std::process::id()));
    m.create(&name, Some(&resources())).unwrap();
    let stats = m.stats(&name).unwrap();
    if m.version() == CgroupVersion::V1 || stats.memory_limit.is_some() {
        assert_eq!(stats.memory_limit, Some(32 << 20));
    }
    assert_eq!(stats.pids_current, 0);
    m.destroy(&name).unwrap();
    m.destroy(&name).unwrap();
}

#[test]
fn unlimited_swap_and_quota_on_both_versions() {
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(32i64 << 20)
                .swap(-1i64)
                .build()
                .unwrap(),
        )
        .cpu(LinuxCpuBuilder::default().quota(-1i64).build().unwrap())
        .build()
        .unwrap();
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("bay/c3")).unwrap();
    std::fs::write(t.path().join("bay/c3/memory.swap.max"), "").unwrap();
    CgroupV2::new(t.path().to_path_buf())
        .create(Path::new("bay/c3"), Some(&r))
        .unwrap();
    let rd = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
    assert_eq!(rd("bay/c3/memory.swap.max"), "max");
    assert_eq!(rd("bay/c3/cpu.max"), "max 100000");
    assert!(
        !t.path().join("bay/c3/cpu.weight").exists(),
        "no shares, no weight"
    );

    let t = tempfile::tempdir().unwrap();
    let m = fake_v1(t.path());
    std::fs::create_dir_all(t.path().join("memory/bay/c3")).unwrap();
    std::fs::write(
        t.path().join("memory/bay/c3/memory.memsw.limit_in_bytes"),
        "",
    )
    .unwrap();
    m.create(Path::new("bay/c3"), Some(&r)).unwrap();
    let rd = |p: &str| std::fs::read_to_string(t.path().join(p)).unwrap();
    assert_eq!(rd("memory/bay/c3/memory.memsw.limit_in_bytes"), "-1");
    assert_eq!(rd("cpu,cpuacct/bay/c3/cpu.cfs_quota_us"), "-1");
}

#[test]
fn v1_prewarm_targets_our_own_cgroup() {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let v1: Vec<CgroupMount> = parse_mountinfo(&text)
        .into_iter()
        .filter(|m| m.fs_type == "cgroup")
        .collect();
    if v1.is_empty() || !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP v1_prewarm_targets_our_own_cgroup: needs root and cgroup v1");
        return;
    }
    let m = CgroupV1::new(v1);
    let tasks = m.own_tasks_file().unwrap();
    let tid = nix::unistd::gettid().to_string();
    let listed = std::fs::read_to_string(&tasks).unwrap();
    assert!(
        listed.lines().any(|l| l == tid),
        "{} lists this thread",
        tasks.display()
    );
    // The no-op move itself succeeds and leaves us where we were.
    m.prewarm();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let again = std::fs::read_to_string(&tasks).unwrap();
    assert!(again.lines().any(|l| l == tid));
}
