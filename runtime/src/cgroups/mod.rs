//! Per-container cgroups behind one small trait, [`CgroupManager`], with a
//! v1 (one directory per controller hierarchy) and a v2 (one unified
//! directory) implementation. [`detect`] picks the one this host mounts:
//! cgroup2 at `/sys/fs/cgroup` means v2; otherwise the v1 controller
//! hierarchies (on a hybrid host the near-empty `unified` tree is ignored).
//!
//! Both take their root directories as values, so their file writes are
//! unit-tested against a temporary directory.

mod v1;
mod v2;

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

pub use v1::CgroupV1;
pub use v2::CgroupV2;

/// Which cgroup version a manager drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CgroupVersion {
    /// Legacy per-controller hierarchies.
    V1,
    /// The unified hierarchy.
    V2,
}

/// Errors of cgroup operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// No usable cgroup hierarchy is mounted.
    #[error("no usable cgroup hierarchy is mounted")]
    NotMounted,
    /// A cgroup file operation failed.
    #[error("cgroup {op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A cgroup still has processes after being killed.
    #[error("cgroup {path} still busy after killing its processes")]
    Busy {
        /// The directory.
        path: PathBuf,
    },
    /// A value in a cgroup file did not parse.
    #[error("unexpected content in {path}")]
    Parse {
        /// The file.
        path: PathBuf,
    },
}

/// Resource usage read from a container's cgroup (`bay stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CgroupStats {
    /// Memory in use, bytes.
    pub memory_usage: u64,
    /// Memory limit, bytes (`None`: unlimited).
    pub memory_limit: Option<u64>,
    /// CPU time consumed, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Number of tasks.
    pub pids_current: u64,
    /// Task limit (`None`: unlimited).
    pub pids_limit: Option<u64>,
    /// OOM kills in this cgroup.
    pub oom_kills: u64,
}

/// What a container needs from cgroups. `name` is the relative cgroup path
/// from the spec (`bay/<id>`).
pub trait CgroupManager: std::fmt::Debug + Send + Sync {
    /// The version driven.
    fn version(&self) -> CgroupVersion;
    /// Creates the cgroup and applies the limits.
    fn create(&self, name: &Path, resources: Option<&LinuxResources>) -> Result<(), CgroupError>;
    /// Moves a process into the cgroup.
    fn add_task(&self, name: &Path, pid: i32) -> Result<(), CgroupError>;
    /// The directory to pass to `clone3(CLONE_INTO_CGROUP)`, if supported.
    fn clone_into_dir(&self, name: &Path) -> Option<PathBuf>;
    /// Whether device access is enforced by this cgroup (v1 `devices`).
    /// Without it the runtime makes the rootfs and `/dev` `nodev`-safe.
    fn enforces_devices(&self) -> bool;
    /// The processes in the cgroup.
    fn pids(&self, name: &Path) -> Result<Vec<i32>, CgroupError>;
    /// How many OOM kills happened in the cgroup.
    fn oom_kills(&self, name: &Path) -> Result<u64, CgroupError>;
    /// Usage numbers.
    fn stats(&self, name: &Path) -> Result<CgroupStats, CgroupError>;
    /// Kills what is left and removes the cgroup (missing is fine).
    fn destroy(&self, name: &Path) -> Result<(), CgroupError>;
    /// Freezes (`true`) or thaws the cgroup, waiting until the kernel
    /// reports the new state (`pause`/`unpause`).
    fn freeze(&self, name: &Path, frozen: bool) -> Result<(), CgroupError>;
    /// The v1 hierarchies to mount read-only in the container
    /// (directory name, mount options); empty for v2.
    fn v1_mounts(&self) -> Vec<(String, Vec<String>)>;
    /// Starts, in the background, what makes the next [`Self::add_task`]
    /// slow, so that it overlaps with other work; a no-op where nothing is
    /// slow (v2 clones straight into the cgroup).
    fn prewarm(&self) {}
}

/// One mounted cgroup filesystem from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// `cgroup` or `cgroup2`.
    pub fs_type: String,
    /// Super options (for v1 the controllers, e.g. `rw,cpu,cpuacct`).
    pub super_options: Vec<String>,
}

/// Parses mountinfo text into the cgroup mounts.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        if r[0] != "cgroup" && r[0] != "cgroup2" {
            continue;
        }
        out.push(CgroupMount {
            mount_point: PathBuf::from(unescape(l[4])),
            fs_type: r[0].to_owned(),
            super_options: r[2].split(',').map(str::to_owned).collect(),
        });
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Picks the manager for this host.
pub fn detect() -> Result<Box<dyn CgroupManager>, CgroupError> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| CgroupError::Io {
            op: "read",
            path: PathBuf::from("/proc/self/mountinfo"),
            source,
        })?;
    from_mounts(&parse_mountinfo(&text))
}

/// [`CgroupManager::prewarm`] for this host's manager, for callers that
/// know a container start is coming before they open a runtime (`bay run`
/// calls it first thing). `BAY_CGROUP_PREWARM=0` turns prewarming off, to
/// measure what it saves.
pub fn prewarm() {
    if prewarm_enabled()
        && let Ok(m) = detect()
    {
        m.prewarm();
    }
}

pub(crate) fn prewarm_enabled() -> bool {
    std::env::var_os("BAY_CGROUP_PREWARM").is_none_or(|v| v != "0")
}

/// Picks the manager for a set of mounts.
pub fn from_mounts(mounts: &[CgroupMount]) -> Result<Box<dyn CgroupManager>, CgroupError> {
    if let Some(m) = mounts
        .iter()
        .find(|m| m.fs_type == "cgroup2" && m.mount_point == Path::new("/sys/fs/cgroup"))
    {
        return Ok(Box::new(CgroupV2::new(m.mount_point.clone())));
    }
    let v1: Vec<CgroupMount> = mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup")
        .cloned()
        .collect();
    if !v1.is_empty() {
        return Ok(Box::new(CgroupV1::new(v1)));
    }
    if let Some(m) = mounts.iter().find(|m| m.fs_type == "cgroup2") {
        return Ok(Box::new(CgroupV2::new(m.mount_point.clone())));
    }
    Err(CgroupError::NotMounted)
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    read(path)?.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
    })
}

/// A `key value` line from a flat-keyed file (`memory.events`, `cpu.stat`).
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

pub(crate) fn mkdir(path: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(CgroupError::Io {
            op: "mkdir",
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => Ok(t.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(CgroupError::Io {
            op: "read",
            path: dir.join("cgroup.procs"),
            source,
        }),
    }
}

/// Kills every process in `dir` and removes it, retrying while the kernel
/// still reports it busy.
pub(crate) fn kill_and_rmdir(dir: &Path) -> Result<(), CgroupError> {
    for attempt in 0..50 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    || e.kind() == std::io::ErrorKind::DirectoryNotEmpty =>
            {
                for pid in procs(dir)? {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(if attempt < 10 {
                    1
                } else {
                    10
                }));
            }
            Err(source) => {
                return Err(CgroupError::Io {
                    op: "rmdir",
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
    Err(CgroupError::Busy {
        path: dir.to_path_buf(),
    })
}

/// Polls `check` until it is true (up to ~1 s).
pub(crate) fn wait_until(
    path: &Path,
    mut check: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<(), CgroupError> {
    for attempt in 0..200u32 {
        if check()? {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_micros(if attempt < 20 {
            100
        } else {
            5000
        }));
    }
    Err(CgroupError::Busy {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests;
