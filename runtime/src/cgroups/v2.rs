//! cgroup v2: one directory in the unified hierarchy.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{
    CgroupError, CgroupManager, CgroupStats, CgroupVersion, keyed, kill_and_rmdir, mkdir, procs,
    read, read_u64, write,
};

/// The v2 manager.
#[derive(Debug, Clone)]
pub struct CgroupV2 {
    root: PathBuf,
}

/// runc's conversion of v1 `cpu.shares` (2–262144) to v2 `cpu.weight`
/// (1–10000), as in runc ≥ 1.3.2 and crun ≥ 1.23 (opencontainers/cgroups
/// `ConvertCPUSharesToCgroupV2Value`): a quadratic in log2(shares) that
/// maps the minimum, docker's default 1024 and the maximum onto 1, 100 and
/// 10000 (the older linear formula turned the default into 39). `0` means
/// unset and stays `0`.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

impl CgroupV2 {
    /// A manager over the unified hierarchy mounted at `root`.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn dir(&self, name: &Path) -> PathBuf {
        self.root.join(name)
    }

    /// Enables the controllers we need for the children of `dir`.
    fn delegate(dir: &Path) {
        let available = read(&dir.join("cgroup.controllers")).unwrap_or_default();
        let wanted: Vec<String> = ["cpu", "cpuset", "memory", "pids", "io"]
            .iter()
            .filter(|c| available.split_whitespace().any(|a| a == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if !wanted.is_empty()
            && let Err(e) = write(&dir.join("cgroup.subtree_control"), &wanted.join(" "))
        {
            tracing::warn!(dir = %dir.display(), error = %e, "could not delegate cgroup controllers");
        }
    }
}

impl CgroupManager for CgroupV2 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(&self, name: &Path, resources: Option<&LinuxResources>) -> Result<(), CgroupError> {
        let mut cur = self.root.clone();
        for comp in name.components() {
            Self::delegate(&cur);
            cur.push(comp);
            mkdir(&cur)?;
        }
        let dir = cur;
        let Some(r) = resources else { return Ok(()) };
        if let Some(m) = r.memory() {
            if let Some(limit) = m.limit() {
                write(&dir.join("memory.max"), &limit.to_string())?;
            }
            if let Some(swap) = m.swap() {
                // OCI gives memory+swap; v2 wants swap alone.
                let v = match (swap, m.limit()) {
                    (s, _) if s < 0 => "max".to_owned(),
                    (s, Some(l)) => s.saturating_sub(l).max(0).to_string(),
                    (s, None) => s.to_string(),
                };
                let f = dir.join("memory.swap.max");
                if f.exists() {
                    write(&f, &v)?;
                } else {
                    tracing::warn!("swap accounting is disabled; --memory-swap not applied");
                }
            }
            // The soft limit: memory below it is protected from reclaim
            // (runc maps the OCI reservation to memory.low too).
            if let Some(low) = m.reservation() {
                write(&dir.join("memory.low"), &low.to_string())?;
            }
        }
        if let Some(c) = r.cpu() {
            if c.quota().is_some() || c.period().is_some() {
                let quota = c
                    .quota()
                    .filter(|q| *q > 0)
                    .map_or("max".to_owned(), |q| q.to_string());
                write(
                    &dir.join("cpu.max"),
                    &format!("{quota} {}", c.period().unwrap_or(100_000)),
                )?;
            }
            if let Some(s) = c.shares().filter(|s| *s != 0) {
                write(&dir.join("cpu.weight"), &shares_to_weight(s).to_string())?;
            }
            if let Some(cpus) = c.cpus() {
                write(&dir.join("cpuset.cpus"), cpus)?;
            }
            if let Some(mems) = c.mems() {
                write(&dir.join("cpuset.mems"), mems)?;
            }
        }
        if let Some(p) = r.pids() {
            let v = if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".to_owned()
            };
            write(&dir.join("pids.max"), &v)?;
        }
        Ok(())
    }

    fn add_task(&self, name: &Path, pid: i32) -> Result<(), CgroupError> {
        write(&self.dir(name).join("cgroup.procs"), &pid.to_string())
    }

    fn clone_into_dir(&self, name: &Path) -> Option<PathBuf> {
        Some(self.dir(name))
    }

    fn enforces_devices(&self) -> bool {
        // Device access on v2 needs a BPF_CGROUP_DEVICE program, which we do
        // not load yet; the runtime compensates with nodev mounts.
        false
    }

    fn pids(&self, name: &Path) -> Result<Vec<i32>, CgroupError> {
        procs(&self.dir(name))
    }

    fn oom_kills(&self, name: &Path) -> Result<u64, CgroupError> {
        let text = read(&self.dir(name).join("memory.events")).unwrap_or_default();
        Ok(keyed(&text, "oom_kill").unwrap_or(0))
    }

    fn stats(&self, name: &Path) -> Result<CgroupStats, CgroupError> {
        let dir = self.dir(name);
        let mut s = CgroupStats::default();
        if dir.join("memory.current").exists() {
            s.memory_usage = read_u64(&dir.join("memory.current"))?;
            s.memory_limit = read(&dir.join("memory.max"))?.trim().parse().ok();
        }
        let cpu = read(&dir.join("cpu.stat")).unwrap_or_default();
        s.cpu_usage_ns = keyed(&cpu, "usage_usec").unwrap_or(0) * 1000;
        if dir.join("pids.current").exists() {
            s.pids_current = read_u64(&dir.join("pids.current"))?;
            s.pids_limit = read(&dir.join("pids.max"))?.trim().parse().ok();
        }
        s.oom_kills = self.oom_kills(name)?;
        Ok(s)
    }

    fn destroy(&self, name: &Path) -> Result<(), CgroupError> {
        let dir = self.dir(name);
        let kill = dir.join("cgroup.kill");
        if kill.exists() {
            let _ = write(&kill, "1");
        }
        kill_and_rmdir(&dir)
    }

    fn freeze(&self, name: &Path, frozen: bool) -> Result<(), CgroupError> {
        let dir = self.dir(name);
        write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        let events = dir.join("cgroup.events");
        let want = u64::from(frozen);
        super::wait_until(&events, || {
            Ok(keyed(&read(&events)?, "frozen") == Some(want))
        })
    }

    fn v1_mounts(&self) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }
}
