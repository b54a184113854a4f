//! The on-disk layout of the runtime's state root. This is the only module
//! that builds paths inside the root; everything else asks it.
//!
//! ```text
//! <root>/
//! ├── layers/
//! │   ├── sha256/<hex>/        one unpacked layer, named by the digest it was verified against
//! │   │   ├── fs/              the layer's files: an overlayfs lowerdir
//! │   │   └── layer.json       digest, diff_id, sizes
//! │   └── tmp/<hex>.<pid>.<n>  unpacking in progress (renamed into place when verified)
//! ├── containers/<id>/
//! │   ├── config.json          the OCI runtime spec
//! │   ├── state.json           status, pid, exit code, OOM flag, name, restart count
//! │   ├── state.lock           flock'd around every read-modify-write of state.json
//! │   ├── <id>-json.log[.N]    docker's json-file log (detached containers), rotated
//! │   ├── upper/  work/        the container's overlayfs upper and work dirs
//! │   └── rootfs/              the overlay mount point (mounted only in the container's mount ns)
//! ├── names/<name>            the id owning a container name (created O_EXCL: names are unique)
//! └── seccomp/<sha256>.bpf     compiled seccomp filters, keyed by the profile's hash
//!
//! <run_dir>/containers/<id>/   (optional, a tmpfs like /run/bay) ephemeral
//!                              containers (`run --rm`): same files, never on disk
//! ```

use std::path::{Path, PathBuf};

use oci_types::Digest;

/// Paths inside one runtime state root.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    run_dir: Option<PathBuf>,
}

impl Layout {
    /// A layout rooted at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            run_dir: None,
        }
    }

    /// Also keeps ephemeral containers under `run_dir` (meant to be a tmpfs).
    pub fn with_run_dir(mut self, run_dir: impl Into<PathBuf>) -> Self {
        self.run_dir = Some(run_dir.into());
        self
    }

    /// `<run_dir>/containers`, if a run dir is configured.
    pub fn ephemeral_containers_dir(&self) -> Option<PathBuf> {
        self.run_dir.as_ref().map(|r| r.join("containers"))
    }

    /// Where a new container's directory goes.
    pub fn new_container_dir(&self, id: &str, ephemeral: bool) -> PathBuf {
        match self.ephemeral_containers_dir() {
            Some(dir) if ephemeral => dir.join(id),
            _ => self.containers_dir().join(id),
        }
    }

    /// The state root itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/layers`.
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// The directory of one unpacked layer.
    pub fn layer_dir(&self, digest: &Digest) -> PathBuf {
        self.layers_dir()
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    /// The files of one unpacked layer (an overlayfs lowerdir).
    pub fn layer_fs(&self, digest: &Digest) -> PathBuf {
        self.layer_dir(digest).join("fs")
    }

    /// The metadata file of one unpacked layer.
    pub fn layer_meta(&self, digest: &Digest) -> PathBuf {
        self.layer_dir(digest).join("layer.json")
    }

    /// A fresh temporary directory name for unpacking `digest`.
    pub fn layer_tmp(&self, digest: &Digest, nonce: u64) -> PathBuf {
        self.layers_dir().join("tmp").join(format!(
            "{}.{}.{nonce}",
            digest.hex(),
            std::process::id()
        ))
    }

    /// `<root>/containers`.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// The state directory of one container (the ephemeral one if it
    /// exists, else the persistent one).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        if let Some(dir) = self.ephemeral_containers_dir() {
            let d = dir.join(id);
            if d.exists() {
                return d;
            }
        }
        self.containers_dir().join(id)
    }

    /// The OCI runtime spec of one container.
    pub fn container_config(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("config.json")
    }

    /// The persisted state of one container.
    pub fn container_state(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("state.json")
    }

    /// The overlayfs upperdir of one container.
    pub fn container_upper(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("upper")
    }

    /// The overlayfs workdir of one container.
    pub fn container_work(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("work")
    }

    /// The overlay mount point of one container.
    pub fn container_rootfs(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }

    /// `<root>/seccomp`.
    pub fn seccomp_dir(&self) -> PathBuf {
        self.root.join("seccomp")
    }

    /// A cached compiled seccomp filter.
    pub fn seccomp_cache(&self, profile_hash: &str) -> PathBuf {
        self.seccomp_dir().join(format!("{profile_hash}.bpf"))
    }

    /// The lock file guarding one container's state.
    pub fn container_lock(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("state.lock")
    }

    /// docker's json-file log of one container (rotated files get `.1`, `.2`, …).
    pub fn container_log(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// `<root>/names`: one file per container name, holding the owner's id.
    pub fn names_dir(&self) -> PathBuf {
        self.root.join("names")
    }
}
