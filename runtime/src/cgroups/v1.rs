//! cgroup v1: one directory per controller hierarchy.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{
    CgroupError, CgroupManager, CgroupMount, CgroupStats, CgroupVersion, kill_and_rmdir, mkdir,
    procs, read, read_u64, write,
};

/// Controllers whose hierarchies a container joins (and mounts read-only).
const JOINED: [&str; 8] = [
    "memory", "cpu", "cpuacct", "cpuset", "pids", "devices", "freezer", "blkio",
];

/// The v1 manager.
#[derive(Debug, Clone)]
pub struct CgroupV1 {
    /// (mount point, controllers in that hierarchy).
    hierarchies: Vec<(PathBuf, Vec<String>)>,
}

impl CgroupV1 {
    /// A manager over the given v1 mounts.
    pub fn new(mounts: Vec<CgroupMount>) -> Self {
        let hierarchies = mounts
            .into_iter()
            .filter_map(|m| {
                let ctrls: Vec<String> = m
                    .super_options
                    .iter()
                    .filter(|o| JOINED.contains(&o.as_str()))
                    .cloned()
                    .collect();
                (!ctrls.is_empty()).then_some((m.mount_point, ctrls))
            })
            .collect();
        Self { hierarchies }
    }

    fn dir_of(&self, controller: &str, name: &Path) -> Option<PathBuf> {
        self.hierarchies
            .iter()
            .find(|(_, c)| c.iter().any(|x| x == controller))
            .map(|(mp, _)| mp.join(name))
    }

    /// The `tasks` file of this thread's own cgroup in one of our
    /// hierarchies (from `/proc/thread-self/cgroup`).
    pub(crate) fn own_tasks_file(&self) -> Option<PathBuf> {
        let text = std::fs::read_to_string("/proc/thread-self/cgroup").ok()?;
        let (mp, ctrls) = self.hierarchies.first()?;
        let line = text.lines().find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|x| ctrls.iter().any(|w| w == x)))
        })?;
        let rel = line.splitn(3, ':').nth(2)?.trim_start_matches('/');
        Some(mp.join(rel).join("tasks"))
    }

    fn all_dirs(&self, name: &Path) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|(mp, _)| mp.join(name))
            .collect()
    }
}

fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let typ = match d.typ() {
        None | Some(LinuxDeviceType::A) => "a",
        Some(LinuxDeviceType::B) => "b",
        Some(_) => "c",
    };
    if typ == "a" && d.major().is_none() && d.minor().is_none() {
        return "a".to_owned();
    }
    let num = |n: Option<i64>| n.map_or("*".to_owned(), |v| v.to_string());
    format!(
        "{typ} {}:{} {}",
        num(d.major()),
        num(d.minor()),
        d.access().as_deref().unwrap_or("rwm")
    )
}

/// Creates `mp/<name>` with every intermediate directory, copying the
/// parent's `cpuset.cpus`/`cpuset.mems` into each new cpuset level (a v1
/// cpuset cgroup starts empty and refuses tasks until they are set).
fn mkdir_cpuset_aware(mp: &Path, name: &Path, is_cpuset: bool) -> Result<PathBuf, CgroupError> {
    let mut cur = mp.to_path_buf();
    for comp in name.components() {
        let parent = cur.clone();
        cur.push(comp);
        mkdir(&cur)?;
        if is_cpuset {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let mine = read(&cur.join(f)).unwrap_or_default();
                if mine.trim().is_empty() {
                    let theirs = read(&parent.join(f)).unwrap_or_default();
                    write(&cur.join(f), theirs.trim())?;
                }
            }
        }
    }
    Ok(cur)
}

impl CgroupManager for CgroupV1 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(&self, name: &Path, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        for (mp, ctrls) in &self.hierarchies {
            mkdir_cpuset_aware(mp, name, ctrls.iter().any(|c| c == "cpuset"))?;
        }
        let Some(r) = resources else { return Ok(()) };
        if let (Some(m), Some(dir)) = (r.memory(), self.dir_of("memory", name)) {
            if let Some(limit) = m.limit() {
                write(&dir.join("memory.limit_in_bytes"), &limit.to_string())?;
            }
            if let Some(swap) = m.swap() {
                let f = dir.join("memory.memsw.limit_in_bytes");
                // Swap accounting may be off in the kernel; then there is no file.
                if f.exists() {
                    write(&f, &swap.to_string())?;
                } else {
                    tracing::warn!("swap accounting is disabled; --memory-swap not applied");
                }
            }
            if let Some(soft) = m.reservation() {
                write(&dir.join("memory.soft_limit_in_bytes"), &soft.to_string())?;
            }
        }
        if let (Some(c), Some(dir)) = (r.cpu(), self.dir_of("cpu", name)) {
            if let Some(p) = c.period() {
                write(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
            }
            if let Some(q) = c.quota() {
                write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
            if let Some(s) = c.shares().filter(|s| *s != 0) {
                write(&dir.join("cpu.shares"), &s.to_string())?;
            }
        }
        if let (Some(c), Some(dir)) = (r.cpu(), self.dir_of("cpuset", name)) {
            if let Some(cpus) = c.cpus() {
                write(&dir.join("cpuset.cpus"), cpus)?;
            }
            if let Some(mems) = c.mems() {
                write(&dir.join("cpuset.mems"), mems)?;
            }
        }
        if let (Some(p), Some(dir)) = (r.pids(), self.dir_of("pids", name)) {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_owned()
            };
            write(&dir.join("pids.max"), &v)?;
        }
        if let (Some(rules), Some(dir)) = (r.devices(), self.dir_of("devices", name)) {
            for rule in rules {
                let f = if rule.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write(&dir.join(f), &device_rule(rule))?;
            }
        }
        Ok(())
    }

    fn add_task(&self, name: &Path, pid: i32) -> Result<(), CgroupError> {
        for dir in self.all_dirs(name) {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn clone_into_dir(&self, _name: &Path) -> Option<PathBuf> {
        None
    }

    fn enforces_devices(&self) -> bool {
        self.hierarchies
            .iter()
            .any(|(_, c)| c.iter().any(|x| x == "devices"))
    }

    fn pids(&self, name: &Path) -> Result<Vec<i32>, CgroupError> {
        match self
            .dir_of("pids", name)
            .or_else(|| self.all_dirs(name).into_iter().next())
        {
            Some(dir) => procs(&dir),
            None => Ok(Vec::new()),
        }
    }

    fn oom_kills(&self, name: &Path) -> Result<u64, CgroupError> {
        let Some(dir) = self.dir_of("memory", name) else {
            return Ok(0);
        };
        let text = read(&dir.join("memory.oom_control"))?;
        Ok(super::keyed(&text, "oom_kill").unwrap_or(0))
    }

    fn stats(&self, name: &Path) -> Result<CgroupStats, CgroupError> {
        let mut s = CgroupStats::default();
        if let Some(dir) = self.dir_of("memory", name) {
            s.memory_usage = read_u64(&dir.join("memory.usage_in_bytes"))?;
            let limit = read_u64(&dir.join("memory.limit_in_bytes"))?;
            // v1 reports "unlimited" as a huge page-aligned number.
            s.memory_limit = (limit < (1 << 62)).then_some(limit);
            s.oom_kills = self.oom_kills(name)?;
        }
        if let Some(dir) = self.dir_of("cpuacct", name) {
            s.cpu_usage_ns = read_u64(&dir.join("cpuacct.usage"))?;
        }
        if let Some(dir) = self.dir_of("pids", name) {
            s.pids_current = read_u64(&dir.join("pids.current"))?;
            let max = read(&dir.join("pids.max"))?;
            s.pids_limit = max.trim().parse().ok();
        }
        Ok(s)
    }

    fn destroy(&self, name: &Path) -> Result<(), CgroupError> {
        // Frozen tasks do not die: thaw first. Then SIGKILL whatever is
        // left and remove every hierarchy's directory.
        if let Some(dir) = self.dir_of("freezer", name) {
            let _ = write(&dir.join("freezer.state"), "THAWED");
        }
        for dir in self.all_dirs(name) {
            kill_and_rmdir(&dir)?;
        }
        Ok(())
    }

    fn freeze(&self, name: &Path, frozen: bool) -> Result<(), CgroupError> {
        let Some(dir) = self.dir_of("freezer", name) else {
            return Err(CgroupError::NotMounted);
        };
        let f = dir.join("freezer.state");
        let want = if frozen { "FROZEN" } else { "THAWED" };
        write(&f, want)?;
        super::wait_until(&f, || Ok(read(&f)?.trim() == want))
    }

    /// On v1 the first write to a `cgroup.procs` after a quiet spell waits
    /// for an RCU grace period (5–10 ms here, most of a container start):
    /// the kernel's `cgroup_threadgroup_rwsem` is a per-cpu rwsem whose
    /// writer must first switch every reader to the slow path. Later
    /// writers within the next grace period skip that wait, whatever the
    /// hierarchy. So a short-lived thread moves *itself* into the cgroup it
    /// already is in (a no-op migration that takes the same lock), and the
    /// grace period runs while the caller builds the spec, clones and
    /// mounts; the container's own moves then find the lock warm.
    fn prewarm(&self) {
        // Once per start: a second writer would only queue behind the
        // first one on cgroup_mutex (which the kernel holds through the
        // wait, so cgroup mkdirs queue too).
        static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
        if !super::prewarm_enabled() {
            return;
        }
        if let Ok(mut last) = LAST.lock() {
            let now = std::time::Instant::now();
            if last.is_some_and(|t| now.duration_since(t) < std::time::Duration::from_millis(50)) {
                return;
            }
            *last = Some(now);
        }
        let Some(tasks) = self.own_tasks_file() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("bay-cgroup-prewarm".into())
            .spawn(move || {
                let tid = nix::unistd::gettid();
                if let Err(e) = write(&tasks, &tid.to_string()) {
                    tracing::debug!(error = %e, "cgroup prewarm failed; starts just wait longer");
                }
            });
        if let Err(error) = spawned {
            tracing::debug!(%error, "no cgroup prewarm thread");
        }
    }

    fn v1_mounts(&self) -> Vec<(String, Vec<String>)> {
        self.hierarchies
            .iter()
            .filter_map(|(mp, ctrls)| {
                let dir = mp.file_name()?.to_str()?.to_owned();
                Some((dir, ctrls.clone()))
            })
            .collect()
    }
}
