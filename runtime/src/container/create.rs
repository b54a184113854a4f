//! `create`: the container's directory, spec and initial state.

use std::path::PathBuf;

use oci_types::Digest;

use super::{Container, ContainerError, ContainerStatus, Runtime, State, Storage, io_err, now};
use crate::id::ContainerId;

impl Runtime {
    /// Creates a container from a spec and its image layers (base first,
    /// as listed in the manifest; all must be unpacked).
    pub fn create(
        &self,
        id: ContainerId,
        spec: &oci_spec::runtime::Spec,
        layers: &[Digest],
    ) -> Result<Container<'_>, ContainerError> {
        self.create_with(id, spec, layers, Storage::Persistent)
    }

    /// [`Runtime::create`] with a choice of where the container's files go.
    pub fn create_with(
        &self,
        id: ContainerId,
        spec: &oci_spec::runtime::Spec,
        layers: &[Digest],
        storage: Storage,
    ) -> Result<Container<'_>, ContainerError> {
        // A start usually follows: get the slow part of joining v1 cgroups
        // going now (see `CgroupManager::prewarm`).
        self.cgroups.prewarm();
        self.layer_paths(layers)?;
        if self.layout.container_dir(id.as_str()).exists() {
            return Err(ContainerError::Exists { id });
        }
        let dir = self
            .layout
            .new_container_dir(id.as_str(), storage == Storage::Ephemeral);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ContainerError::Exists { id });
            }
            Err(e) => return Err(io_err("create", &dir)(e)),
        }
        for d in [
            self.layout.container_upper(id.as_str()),
            self.layout.container_work(id.as_str()),
            self.layout.container_rootfs(id.as_str()),
        ] {
            std::fs::create_dir(&d).map_err(io_err("create", &d))?;
        }
        let cfg = self.layout.container_config(id.as_str());
        let bytes = serde_json::to_vec(spec).map_err(|source| ContainerError::Json {
            path: cfg.clone(),
            source,
        })?;
        std::fs::write(&cfg, bytes).map_err(io_err("write", &cfg))?;
        let cgroup = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().clone())
            .unwrap_or_else(|| PathBuf::from(format!("bay/{id}")));
        let c = Container {
            rt: self,
            state: State {
                id,
                status: ContainerStatus::Created,
                layers: layers.to_vec(),
                pid: None,
                pid_start: None,
                created: now(),
                started: None,
                finished: None,
                exit_code: None,
                oom_killed: false,
                cgroup,
                name: None,
                restart_count: 0,
                restarting: false,
                manually_stopped: false,
                monitor_pid: None,
                monitor_start: None,
                lifecycle: Default::default(),
                error: None,
            },
            child: None,
            spec: Some(spec.clone()),
        };
        c.save()?;
        tracing::info!(id = %c.state.id, "container created");
        Ok(c)
    }
}
