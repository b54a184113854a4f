//! Containers and their lifecycle, one verb per file (`create`, `start`,
//! `wait`, `kill`, `delete`, plus `changes` for diff/commit/stats), over an
//! explicit state machine: every verb checks [`ContainerStatus`] first.
//!
//! State lives in `containers/<id>/state.json` next to the spec
//! (`config.json`), so another `bay` process can list and inspect
//! containers; a container whose process is gone is reported as stopped.

mod changes;
mod create;
mod delete;
mod exec;
mod fs;
mod kill;
mod names;
mod pause;
mod start;
mod wait;

use std::path::{Path, PathBuf};

use oci_types::Digest;
use serde::{Deserialize, Serialize};

use crate::cgroups::{CgroupError, CgroupManager};
use crate::id::ContainerId;
use crate::layers::{LayerError, LayerStore};
use crate::layout::Layout;
use crate::seccomp::{FilterCache, SeccompError};

pub use exec::{ExecOptions, ExecProcess};
pub use fs::RootfsView;
pub use names::ContainerName;
pub use start::{Stdio, StdioConfig};
pub use wait::ExitStatus;

/// Where a container's files live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Storage {
    /// Under the state root (survives reboots).
    #[default]
    Persistent,
    /// Under the run dir if one is configured (a tmpfs: gone at reboot,
    /// and no disk journal on the start/remove path); else like `Persistent`.
    Ephemeral,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Created, never started (or state prepared for a start).
    Created,
    /// Its init process is running.
    Running,
    /// Its processes are frozen (`pause`).
    Paused,
    /// Its process exited.
    Stopped,
}

impl ContainerStatus {
    /// `start` is allowed (docker restarts stopped containers too).
    pub fn can_start(self) -> bool {
        matches!(self, Self::Created | Self::Stopped)
    }
    /// `kill` is allowed (a paused container is thawed after the signal).
    pub fn can_kill(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
    /// `wait` is allowed.
    pub fn can_wait(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
    /// `pause` is allowed.
    pub fn can_pause(self) -> bool {
        self == Self::Running
    }
    /// `unpause` is allowed.
    pub fn can_resume(self) -> bool {
        self == Self::Paused
    }
    /// `delete` without force is allowed.
    pub fn can_delete(self) -> bool {
        matches!(self, Self::Created | Self::Stopped)
    }
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "exited",
        })
    }
}

/// The persisted state of a container (`bay ps`, `bay inspect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The id.
    pub id: ContainerId,
    /// The status.
    pub status: ContainerStatus,
    /// Image layers, base first (manifest order).
    pub layers: Vec<Digest>,
    /// The host pid of the init process while running.
    pub pid: Option<i32>,
    /// The init process's start time (clock ticks, `/proc/<pid>/stat`
    /// field 22), to tell it apart from a reused pid.
    pub pid_start: Option<u64>,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Last start, Unix seconds.
    pub started: Option<u64>,
    /// Last exit, Unix seconds.
    pub finished: Option<u64>,
    /// Docker-convention exit code of the last run.
    pub exit_code: Option<i32>,
    /// Whether the last run hit the memory limit's OOM killer.
    pub oom_killed: bool,
    /// The cgroup (relative path).
    pub cgroup: PathBuf,
    /// The container's unique name (`--name`, or generated).
    #[serde(default)]
    pub name: Option<String>,
    /// How often the monitor restarted it (docker's `RestartCount`).
    #[serde(default)]
    pub restart_count: u32,
    /// The monitor is waiting out a restart delay.
    #[serde(default)]
    pub restarting: bool,
    /// `stop`/`kill` asked for the exit: no restart policy applies
    /// (docker's `HasBeenManuallyStopped`); cleared by `start`.
    #[serde(default)]
    pub manually_stopped: bool,
    /// The detached monitor owning the container's stdio, while alive.
    #[serde(default)]
    pub monitor_pid: Option<i32>,
    /// The monitor's start time (`/proc/<pid>/stat` field 22).
    #[serde(default)]
    pub monitor_start: Option<u64>,
    /// Restart policy, log driver options and terminal settings.
    #[serde(default)]
    pub lifecycle: crate::monitor::Lifecycle,
    /// Why the last start failed, if it did (docker's `State.Error`).
    #[serde(default)]
    pub error: Option<String>,
}

impl State {
    /// The monitor recorded in the state is still that process.
    pub fn monitor_alive(&self) -> bool {
        match (self.monitor_pid, self.monitor_start) {
            (Some(pid), Some(start)) => proc_start_time(pid) == Some(start),
            _ => false,
        }
    }
}

/// Errors of container operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// No such container.
    #[error("no such container: {id}")]
    NotFound {
        /// The id.
        id: ContainerId,
    },
    /// No container has this name, id or id prefix.
    #[error("No such container: {query}")]
    NoSuchContainer {
        /// What the user typed.
        query: String,
    },
    /// An id prefix matches several containers.
    #[error("multiple containers found with provided prefix: {prefix}")]
    AmbiguousPrefix {
        /// The prefix.
        prefix: String,
    },
    /// A name is not docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    #[error("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// The name belongs to another container (docker's wording).
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse {
        /// The name.
        name: String,
        /// Its owner.
        id: ContainerId,
    },
    /// The id is taken.
    #[error("container {id} already exists")]
    Exists {
        /// The id.
        id: ContainerId,
    },
    /// The verb is not allowed in the current status.
    #[error("cannot {action} container {id}: it is {status}")]
    IncorrectStatus {
        /// The id.
        id: ContainerId,
        /// The status.
        status: ContainerStatus,
        /// The refused verb.
        action: &'static str,
    },
    /// A layer is not in the store.
    #[error("layer {digest} is not unpacked")]
    MissingLayer {
        /// The layer.
        digest: Digest,
    },
    /// A state file operation failed.
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
    /// A state or spec file is malformed.
    #[error("malformed {path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The spec cannot be run.
    #[error(transparent)]
    Plan(#[from] crate::linux::PlanError),
    /// The rootfs cannot be assembled, diffed or committed.
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    /// Layer store failure.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Cgroup failure.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// Seccomp compilation failure.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// The bridge network could not be set up.
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// A kernel call in the runtime failed.
    #[error("{op} failed")]
    Sys {
        /// The call.
        op: &'static str,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// The container's init failed before exec.
    #[error("container init failed while {}: {errno}", step.describe())]
    Init {
        /// The step.
        step: crate::linux::init::Step,
        /// The error.
        errno: nix::errno::Errno,
    },
    /// The command could not be executed (docker exits 127 / 126).
    #[error("exec {command:?} failed: {errno}")]
    Exec {
        /// argv\[0\].
        command: String,
        /// ENOENT (127) or EACCES and others (126).
        errno: nix::errno::Errno,
    },
}

impl ContainerError {
    /// The exit code docker uses when `run` fails this way.
    pub fn exit_code(&self) -> i32 {
        match self {
            ContainerError::Exec {
                errno: nix::errno::Errno::ENOENT,
                ..
            } => 127,
            ContainerError::Exec { .. } => 126,
            _ => 125,
        }
    }
}

pub(crate) fn io_err(
    op: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.to_path_buf();
    move |source| ContainerError::Io { op, path, source }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The runtime: a state root with its layer store, the host's cgroup
/// manager and the seccomp filter cache.
#[derive(Debug)]
pub struct Runtime {
    layout: Layout,
    layers: LayerStore,
    cgroups: Box<dyn CgroupManager>,
    filters: FilterCache,
    network: crate::network::Network,
}

impl Runtime {
    /// Opens (creating) a runtime rooted at `root`, detecting cgroups.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ContainerError> {
        Self::with_cgroups(root, crate::cgroups::detect()?)
    }

    /// Keeps ephemeral containers (see [`Storage::Ephemeral`], used by
    /// `run` with `remove`) under `run_dir`, which should be a tmpfs such as
    /// `/run/bay`: creating and deleting their upper dirs then never waits
    /// for a disk journal.
    pub fn with_run_dir(mut self, run_dir: impl Into<PathBuf>) -> Result<Self, ContainerError> {
        self.layout = self.layout.clone().with_run_dir(run_dir);
        if let Some(dir) = self.layout.ephemeral_containers_dir() {
            std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        Ok(self)
    }

    /// Opens a runtime with an explicit cgroup manager.
    pub fn with_cgroups(
        root: impl Into<PathBuf>,
        cgroups: Box<dyn CgroupManager>,
    ) -> Result<Self, ContainerError> {
        let layout = Layout::new(root);
        std::fs::create_dir_all(layout.containers_dir())
            .map_err(io_err("create", &layout.containers_dir()))?;
        let layers = LayerStore::open(layout.clone())?;
        let filters = FilterCache::new(layout.seccomp_dir());
        Ok(Self {
            layout,
            layers,
            cgroups,
            filters,
            network: crate::network::Network::default(),
        })
    }

    /// The layout of the state root (logs, names, container directories).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Uses this bridge network configuration (default: `bay0`, see
    /// [`crate::network`]).
    pub fn with_network(mut self, cfg: crate::network::NetworkConfig) -> Self {
        self.network = crate::network::Network::new(cfg);
        self
    }

    /// The bridge network.
    pub fn network(&self) -> &crate::network::Network {
        &self.network
    }

    /// The layer store.
    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    /// The cgroup manager.
    pub fn cgroups(&self) -> &dyn CgroupManager {
        self.cgroups.as_ref()
    }

    /// The directories of `layers` (base first), **top first**, as overlay
    /// lowerdirs and for [`crate::SpecInput::layers`].
    pub fn layer_paths(&self, layers: &[Digest]) -> Result<Vec<PathBuf>, ContainerError> {
        layers
            .iter()
            .rev()
            .map(|d| match self.layers.get(d)? {
                Some(l) => Ok(l.path),
                None => Err(ContainerError::MissingLayer { digest: d.clone() }),
            })
            .collect()
    }

    /// Loads an existing container.
    pub fn load(&self, id: &ContainerId) -> Result<Container<'_>, ContainerError> {
        let path = self.layout.container_state(id.as_str());
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContainerError::NotFound { id: id.clone() });
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let state: State = serde_json::from_slice(&bytes)
            .map_err(|source| ContainerError::Json { path, source })?;
        let mut c = Container {
            rt: self,
            state,
            child: None,
            spec: None,
        };
        c.refresh()?;
        Ok(c)
    }

    /// Every container's state, sorted by creation time.
    pub fn list(&self) -> Result<Vec<State>, ContainerError> {
        let dir = self.layout.containers_dir();
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let e = e.map_err(io_err("list", &dir))?;
            let Some(id) = e
                .file_name()
                .to_str()
                .and_then(|s| ContainerId::parse(s).ok())
            else {
                continue;
            };
            match self.load(&id) {
                Ok(c) => out.push(c.state),
                Err(ContainerError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        out.sort_by_key(|s| (s.created, s.id.clone()));
        Ok(out)
    }

    /// `docker run` in the foreground: create, start, wait and (if
    /// `remove`) delete.
    pub fn run(
        &self,
        id: ContainerId,
        spec: &oci_spec::runtime::Spec,
        layers: &[Digest],
        stdio: StdioConfig,
        remove: bool,
    ) -> Result<ExitStatus, ContainerError> {
        let storage = if remove {
            Storage::Ephemeral
        } else {
            Storage::Persistent
        };
        let mut c = self.create_with(id, spec, layers, storage)?;
        let result = c.start(stdio).and_then(|()| c.wait());
        if remove {
            let del = c.delete(true);
            let status = result?;
            del?;
            Ok(status)
        } else {
            result
        }
    }
}

/// One container, bound to its runtime.
#[derive(Debug)]
pub struct Container<'rt> {
    rt: &'rt Runtime,
    state: State,
    child: Option<crate::linux::spawn::Child>,
    /// The spec as created by this handle (saves re-reading config.json).
    spec: Option<oci_spec::runtime::Spec>,
}

impl Container<'_> {
    /// The persisted state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The id.
    pub fn id(&self) -> &ContainerId {
        &self.state.id
    }

    /// The status.
    pub fn status(&self) -> ContainerStatus {
        self.state.status
    }

    /// The runtime spec (`bay inspect`).
    pub fn spec(&self) -> Result<oci_spec::runtime::Spec, ContainerError> {
        if let Some(spec) = &self.spec {
            return Ok(spec.clone());
        }
        let path = self.rt.layout.container_config(self.state.id.as_str());
        let bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| ContainerError::Json { path, source })
    }

    /// The pidfd of a process started by this handle.
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.child
            .as_ref()
            .map(|c| std::os::fd::AsFd::as_fd(&c.pidfd))
    }

    /// Re-reads the state from disk (another process may have changed it).
    pub fn reload(&mut self) -> Result<(), ContainerError> {
        let _lock = self.lock()?;
        if let Some(s) = self.read_disk()? {
            self.state = s;
        }
        self.refresh()
    }

    /// Changes the persisted state under the container's lock: re-reads it
    /// first, so concurrent updates of different fields (a monitor recording
    /// an exit, `stop` marking a manual stop, `rename`) compose.
    pub fn update(&mut self, f: impl FnOnce(&mut State)) -> Result<(), ContainerError> {
        let _lock = self.lock()?;
        if let Some(s) = self.read_disk()? {
            self.state = s;
        }
        f(&mut self.state);
        self.save()
    }

    fn lock(&self) -> Result<nix::fcntl::Flock<std::fs::File>, ContainerError> {
        let path = self.rt.layout.container_lock(self.state.id.as_str());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
            ContainerError::Sys {
                op: "flock",
                source: e,
            }
        })
    }

    fn read_disk(&self) -> Result<Option<State>, ContainerError> {
        let path = self.rt.layout.container_state(self.state.id.as_str());
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| ContainerError::Json { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ContainerError::NotFound {
                id: self.state.id.clone(),
            }),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    fn save(&self) -> Result<(), ContainerError> {
        let path = self.rt.layout.container_state(self.state.id.as_str());
        let tmp = path.with_extension("json.tmp");
        let bytes =
            serde_json::to_vec_pretty(&self.state).map_err(|source| ContainerError::Json {
                path: path.clone(),
                source,
            })?;
        std::fs::write(&tmp, bytes).map_err(io_err("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))
    }

    /// Marks a "running" container whose process is gone as stopped.
    fn refresh(&mut self) -> Result<(), ContainerError> {
        if !matches!(
            self.state.status,
            ContainerStatus::Running | ContainerStatus::Paused
        ) || self.child.is_some()
        {
            return Ok(());
        }
        let alive = |s: &State| match (s.pid, s.pid_start) {
            (Some(pid), Some(start)) => proc_start_time(pid) == Some(start),
            _ => false,
        };
        // A live monitor records the exit itself (with the exit code).
        if !alive(&self.state) && !self.state.monitor_alive() {
            tracing::info!(id = %self.state.id, "container process is gone; marking it stopped");
            self.release_network();
            let oom = self.rt.cgroups.oom_kills(&self.state.cgroup).unwrap_or(0) > 0;
            let path = self.rt.layout.container_state(self.state.id.as_str());
            if let Ok(b) = std::fs::read(&path)
                && let Ok(s) = serde_json::from_slice::<State>(&b)
            {
                self.state = s;
            }
            if matches!(
                self.state.status,
                ContainerStatus::Running | ContainerStatus::Paused
            ) && !alive(&self.state)
            {
                self.state.status = ContainerStatus::Stopped;
                self.state.pid = None;
                self.state.restarting = false;
                self.state.finished.get_or_insert_with(now);
                self.state.oom_killed = oom;
                self.save()?;
            }
        }
        Ok(())
    }

    /// Gives back the container's address, port rules and veth (its process
    /// is gone); failures are logged, a later start reclaims what is left.
    fn release_network(&self) {
        if let Err(e) = self.rt.network.release(&self.state.id) {
            tracing::warn!(id = %self.state.id, error = %e, "could not release the network");
        }
    }

    fn require(&self, ok: bool, action: &'static str) -> Result<(), ContainerError> {
        if ok {
            Ok(())
        } else {
            tracing::error!(status = %self.state.status, id = %self.state.id, action, "refused by container status");
            Err(ContainerError::IncorrectStatus {
                id: self.state.id.clone(),
                status: self.state.status,
                action,
            })
        }
    }
}

/// Field 22 of `/proc/<pid>/stat`.
pub(crate) fn proc_start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = s.rsplit_once(')')?.1;
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        fn sendable<T: Send>() {}
        shared::<Runtime>();
        sendable::<Container<'static>>();
    }

    #[test]
    fn state_machine() {
        use ContainerStatus::*;
        assert!(Created.can_start() && Stopped.can_start() && !Running.can_start());
        assert!(
            Running.can_kill() && Paused.can_kill() && !Created.can_kill() && !Stopped.can_kill()
        );
        assert!(
            Running.can_pause()
                && !Paused.can_pause()
                && Paused.can_resume()
                && !Running.can_resume()
        );
        assert!(Created.can_delete() && Stopped.can_delete() && !Running.can_delete());
        assert_eq!(Stopped.to_string(), "exited");
    }
}
