//! Address leases of one bridge, shared by every `bay` process on the host:
//! `<state_dir>/<bridge>/leases.json`, read and rewritten (write + rename)
//! only under an exclusive `flock` of `<state_dir>/<bridge>/lock`.
//!
//! ```text
//! <state_dir>/<bridge>/
//! ├── lock          flock'ed around every read-modify-write
//! └── leases.json   { "subnet": "172.31.0.0/16", "leases": [ … ] }
//! ```
//!
//! A lease names the process it belongs to (pid, start time, boot id):
//! while a container starts that is the starting `bay` itself, then the
//! container's init. A lease whose process is gone is stale.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::iptables::Rule;
use super::options::PortMapping;

/// How long a lease may stay pending (held by the starting process, before
/// the container's init takes it over) before it counts as stale even
/// though its process lives: a start that failed without releasing it.
pub const PENDING_GRACE_SECS: u64 = 60;

/// A leases-file failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// A file operation failed.
    #[error("{op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The leases file is corrupt.
    #[error("malformed leases file {path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// One container's claim on an address, its ports and its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The container id.
    pub id: String,
    /// Its address on the bridge.
    pub ip: Ipv4Addr,
    /// The host end of its veth.
    pub veth: String,
    /// The owning process.
    pub pid: i32,
    /// Its start time (`/proc/<pid>/stat` field 22).
    pub pid_start: Option<u64>,
    /// The boot the pid belongs to.
    pub boot_id: String,
    /// Still held by the starting process (Unix seconds of the claim).
    pub pending_since: Option<u64>,
    /// Published ports, with ephemeral host ports resolved.
    pub ports: Vec<PortMapping>,
    /// The iptables rules added for it (deleted with the lease).
    pub rules: Vec<Rule>,
}

/// The leases file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    /// The bridge's subnet when the file was written.
    pub subnet: Option<Ipv4Net>,
    /// Every lease.
    pub leases: Vec<Lease>,
}

/// The current boot's id.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat`.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.rsplit_once(')')?.1;
    after.split_whitespace().nth(19)?.parse().ok()
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Lease {
    /// Whether the lease's process still runs (and, while pending, the
    /// claim is recent).
    pub fn is_live(&self, boot: &str, now: u64) -> bool {
        if self.boot_id != boot {
            return false;
        }
        if let Some(since) = self.pending_since
            && now.saturating_sub(since) > PENDING_GRACE_SECS
        {
            return false;
        }
        match self.pid_start {
            Some(start) => proc_start_time(self.pid) == Some(start),
            None => false,
        }
    }
}

impl Leases {
    /// The lowest free address of `subnet` that is neither the network,
    /// the broadcast address nor `gateway`.
    pub fn free_address(&self, subnet: Ipv4Net, gateway: Ipv4Addr) -> Option<Ipv4Addr> {
        subnet
            .hosts()
            .find(|ip| *ip != gateway && !self.leases.iter().any(|l| l.ip == *ip))
    }

    /// Whether `(proto, port)` on `host_ip` clashes with a published port.
    pub fn port_taken(&self, m: &PortMapping, host_port: u16) -> bool {
        self.leases.iter().flat_map(|l| &l.ports).any(|p| {
            p.protocol == m.protocol
                && p.host_port == Some(host_port)
                && (p.host_ip.is_none() || m.host_ip.is_none() || p.host_ip == m.host_ip)
        })
    }
}

/// The leases of one bridge under one state directory.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    dir: PathBuf,
}

/// An exclusive hold on the leases file; released on drop.
#[derive(Debug)]
pub struct Locked<'a> {
    store: &'a LeaseStore,
    _lock: nix::fcntl::Flock<File>,
}

impl LeaseStore {
    /// The store in `dir` (created on first lock).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LeaseError {
        let path = path.to_path_buf();
        move |source| LeaseError::Io { op, path, source }
    }

    /// Takes the lock, waiting for other holders.
    pub fn lock(&self) -> Result<Locked<'_>, LeaseError> {
        std::fs::create_dir_all(&self.dir).map_err(Self::io("create", &self.dir))?;
        let path = self.dir.join("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Self::io("open", &path))?;
        let lock =
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
                LeaseError::Io {
                    op: "lock",
                    path: path.clone(),
                    source: e.into(),
                }
            })?;
        Ok(Locked {
            store: self,
            _lock: lock,
        })
    }

    /// Reads the leases without the lock (a snapshot, for inspection).
    pub fn snapshot(&self) -> Result<Leases, LeaseError> {
        read(&self.dir.join("leases.json"))
    }
}

fn read(path: &Path) -> Result<Leases, LeaseError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| LeaseError::Json {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Leases::default()),
        Err(e) => Err(LeaseStore::io("read", path)(e)),
    }
}

impl Locked<'_> {
    /// Reads the leases.
    pub fn load(&self) -> Result<Leases, LeaseError> {
        read(&self.store.dir.join("leases.json"))
    }

    /// Replaces the leases (write to a temporary file, then rename).
    pub fn save(&self, leases: &Leases) -> Result<(), LeaseError> {
        let path = self.store.dir.join("leases.json");
        let tmp = self.store.dir.join("leases.json.tmp");
        let bytes = serde_json::to_vec_pretty(leases).map_err(|source| LeaseError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, bytes).map_err(LeaseStore::io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(LeaseStore::io("rename", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(id: &str, ip: &str) -> Lease {
        Lease {
            id: id.into(),
            ip: ip.parse().unwrap(),
            veth: format!("bay{id}"),
            pid: std::process::id() as i32,
            pid_start: proc_start_time(std::process::id() as i32),
            boot_id: boot_id(),
            pending_since: None,
            ports: Vec::new(),
            rules: Vec::new(),
        }
    }

    #[test]
    fn allocation_skips_gateway_and_taken_addresses() {
        let net: Ipv4Net = "10.9.0.0/29".parse().unwrap();
        let gw = "10.9.0.1".parse().unwrap();
        let mut l = Leases::default();
        assert_eq!(l.free_address(net, gw), Some("10.9.0.2".parse().unwrap()));
        l.leases.push(lease("a", "10.9.0.2"));
        l.leases.push(lease("b", "10.9.0.4"));
        assert_eq!(l.free_address(net, gw), Some("10.9.0.3".parse().unwrap()));
        for (id, ip) in [("c", "10.9.0.3"), ("d", "10.9.0.5"), ("e", "10.9.0.6")] {
            l.leases.push(lease(id, ip));
        }
        // .7 is the broadcast address: the /29 is full.
        assert_eq!(l.free_address(net, gw), None);
    }

    #[test]
    fn liveness_follows_the_process_and_the_pending_grace() {
        let boot = boot_id();
        let mut l = lease("a", "10.0.0.2");
        assert!(l.is_live(&boot, now()));
        assert!(!l.is_live("another-boot", now()));
        l.pending_since = Some(now());
        assert!(l.is_live(&boot, now()));
        assert!(!l.is_live(&boot, now() + PENDING_GRACE_SECS + 1));
        l.pending_since = None;
        l.pid_start = l.pid_start.map(|s| s + 1);
        assert!(!l.is_live(&boot, now()), "a reused pid is not the owner");
    }

    #[test]
    fn ports_clash_by_protocol_port_and_overlapping_address() {
        let mut l = Leases::default();
        let mut a = lease("a", "10.0.0.2");
        a.ports.push("127.0.0.1:8080:80".parse().unwrap());
        l.leases.push(a);
        let m = |s: &str| s.parse::<PortMapping>().unwrap();
        assert!(l.port_taken(&m("127.0.0.1:8080:80"), 8080));
        assert!(
            l.port_taken(&m("8080:80"), 8080),
            "0.0.0.0 overlaps 127.0.0.1"
        );
        assert!(!l.port_taken(&m("127.0.0.2:8080:80"), 8080));
        assert!(!l.port_taken(&m("127.0.0.1:8080:80/udp"), 8080));
        assert!(!l.port_taken(&m("127.0.0.1:8081:80"), 8081));
    }

    #[test]
    fn store_round_trips_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = LeaseStore::new(dir.path().join("bay0"));
        let locked = store.lock().unwrap();
        assert_eq!(locked.load().unwrap(), Leases::default());
        let leases = Leases {
            subnet: Some("10.9.0.0/24".parse().unwrap()),
            leases: vec![lease("a", "10.9.0.2")],
        };
        locked.save(&leases).unwrap();
        drop(locked);
        assert_eq!(store.snapshot().unwrap(), leases);
    }
}
