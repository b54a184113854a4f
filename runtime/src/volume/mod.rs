//! docker's named volumes (`docker volume`, `-v NAME:/path`): directories
//! the runtime owns outside any container, so data outlives containers.
//!
//! ```text
//! <runtime root>/volumes
//! └── <name>/
//!     ├── meta.json   created time, labels, anonymous flag
//!     └── _data/      what containers bind-mount
//! ```
//! This module is the only place that builds these paths.
//!
//! - Names follow docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`; anonymous
//!   volumes (`-v /path`) get a random 64-hex name.
//! - `-v NAME:/path` creates the volume on first use, and a volume that is
//!   still empty is first filled with what the image holds at `/path`
//!   (docker's copy-up, ownership and modes kept). The image is mounted
//!   read-only as an overlay in a private mount namespace of a short-lived
//!   thread, and the copy runs descriptor-relative with `O_NOFOLLOW`/
//!   `O_EXCL`, so a container that shares the volume cannot redirect the
//!   copy out of it with planted symlinks.
//! - A volume is in use while any container (running or not) has it among
//!   its mounts; [`VolumeStore::users`] finds them from the containers'
//!   specs, and removal is refused with docker's message.

mod copy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::{MountSpec, RunOptions};

/// Errors of volume operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VolumeError {
    /// The name breaks docker's naming rule (docker's message).
    #[error(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// No volume has this name (docker's message for `volume rm`).
    #[error("get {name}: no such volume")]
    NotFound {
        /// The name given.
        name: String,
    },
    /// Containers still use the volume (docker's message).
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// The containers using it.
        containers: Vec<String>,
    },
    /// A file operation failed.
    #[error("{op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A volume's metadata is malformed.
    #[error("malformed volume metadata {path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// Filling a new volume from the image failed.
    #[error("copying the image's {path} into volume {name}: {errno}")]
    CopyUp {
        /// The volume.
        name: String,
        /// The container path.
        path: String,
        /// The cause.
        errno: nix::errno::Errno,
    },
    /// Listing containers to find a volume's users failed.
    #[cfg(target_os = "linux")]
    #[error(transparent)]
    Containers(#[from] Box<crate::ContainerError>),
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError {
    let path = path.to_path_buf();
    move |source| VolumeError::Io { op, path, source }
}

/// A volume name checked against docker's rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VolumeName(String);

impl VolumeName {
    /// Checks `s` (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
    pub fn parse(s: &str) -> Result<Self, VolumeError> {
        let b = s.as_bytes();
        let ok = b.len() >= 2
            && b[0].is_ascii_alphanumeric()
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(VolumeError::InvalidName { name: s.to_owned() })
        }
    }

    /// A random name for an anonymous volume (64 hex digits, like docker).
    pub fn random() -> Result<Self, VolumeError> {
        let mut buf = [0u8; 32];
        let path = Path::new("/dev/urandom");
        std::io::Read::read_exact(
            &mut std::fs::File::open(path).map_err(io("open", path))?,
            &mut buf,
        )
        .map_err(io("read", path))?;
        Ok(Self(hex::encode(buf)))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for VolumeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    created: u64,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    anonymous: bool,
}

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Its name.
    pub name: VolumeName,
    /// The host directory containers mount.
    pub mountpoint: PathBuf,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
    /// Created for `-v /path` without a name.
    pub anonymous: bool,
}

impl Serialize for VolumeName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// The volumes of one runtime root.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    dir: PathBuf,
}

impl VolumeStore {
    /// The volumes under runtime root `root` (created on first use).
    pub fn new(root: &Path) -> Self {
        Self {
            dir: root.join("volumes"),
        }
    }

    fn vol_dir(&self, name: &VolumeName) -> PathBuf {
        self.dir.join(name.as_str())
    }

    fn meta_path(&self, name: &VolumeName) -> PathBuf {
        self.vol_dir(name).join("meta.json")
    }

    fn data(&self, name: &VolumeName) -> PathBuf {
        self.vol_dir(name).join("_data")
    }

    /// Creates `name` (a random anonymous one when `None`); an existing
    /// volume is returned as it is (docker's `volume create` is
    /// idempotent). The flag says whether it was created now.
    pub fn create(
        &self,
        name: Option<&VolumeName>,
        labels: BTreeMap<String, String>,
    ) -> Result<(Volume, bool), VolumeError> {
        let (name, anonymous) = match name {
            Some(n) => (n.clone(), false),
            None => (VolumeName::random()?, true),
        };
        if let Some(v) = self.get(name.as_str())? {
            return Ok((v, false));
        }
        std::fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let dir = self.vol_dir(&name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            // Created concurrently: theirs wins.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Some(v) = self.get(name.as_str())? {
                    return Ok((v, false));
                }
            }
            Err(e) => return Err(io("create", &dir)(e)),
        }
        let data = self.data(&name);
        std::fs::create_dir(&data).map_err(io("create", &data))?;
        let meta = Meta {
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            labels,
            anonymous,
        };
        let path = self.meta_path(&name);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&meta).map_err(|source| VolumeError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))?;
        tracing::info!(volume = %name, anonymous, "volume created");
        Ok((self.volume(name, meta), true))
    }

    fn volume(&self, name: VolumeName, meta: Meta) -> Volume {
        Volume {
            mountpoint: self.data(&name),
            name,
            created: meta.created,
            labels: meta.labels,
            anonymous: meta.anonymous,
        }
    }

    /// The volume called `name`, if any (a malformed name is simply absent).
    pub fn get(&self, name: &str) -> Result<Option<Volume>, VolumeError> {
        let Ok(name) = VolumeName::parse(name) else {
            return Ok(None);
        };
        let path = self.meta_path(&name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let meta: Meta =
            serde_json::from_slice(&bytes).map_err(|source| VolumeError::Json { path, source })?;
        Ok(Some(self.volume(name, meta)))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("list", &self.dir)(e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(io("list", &self.dir))?;
            if let Some(v) = e.file_name().to_str().map(|n| self.get(n)).transpose()? {
                out.extend(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes a volume and its data. The caller checks [`Self::users`]
    /// first (the runtime cannot know about containers being created).
    pub fn remove(&self, name: &str) -> Result<Volume, VolumeError> {
        let vol = self.get(name)?.ok_or_else(|| VolumeError::NotFound {
            name: name.to_owned(),
        })?;
        let dir = self.vol_dir(&vol.name);
        // Make it disappear first (one rename), then delete at leisure.
        let gone = self.dir.join(format!(".removing-{}", vol.name));
        std::fs::rename(&dir, &gone).map_err(io("rename", &dir))?;
        std::fs::remove_dir_all(&gone).map_err(io("remove", &gone))?;
        tracing::info!(volume = %vol.name, "volume removed");
        Ok(vol)
    }

    /// Bytes used by a volume's files (for `prune`'s reclaimed space).
    pub fn size(&self, vol: &Volume) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(md) = std::fs::symlink_metadata(p) else {
                return 0;
            };
            if !md.is_dir() {
                return md.len();
            }
            std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0)
        }
        walk(&vol.mountpoint)
    }

    /// Ids of the containers whose mounts include `vol`, in any status.
    #[cfg(target_os = "linux")]
    pub fn users(&self, rt: &crate::Runtime, vol: &Volume) -> Result<Vec<String>, VolumeError> {
        let mut out = Vec::new();
        // list_ids also covers `--rm` containers kept under a run dir.
        for id in rt.list_ids().map_err(Box::new)? {
            let spec = match rt.load(&id).and_then(|c| c.spec()) {
                Ok(s) => s,
                // Removed meanwhile.
                Err(crate::ContainerError::NotFound { .. }) => continue,
                Err(e) => return Err(Box::new(e).into()),
            };
            let uses = spec
                .mounts()
                .iter()
                .flatten()
                .any(|m| m.source().as_deref() == Some(vol.mountpoint.as_path()));
            if uses {
                out.push(id.to_string());
            }
        }
        Ok(out)
    }

    /// Turns the volume mounts of `opts` into bind mounts of their
    /// directories: creates missing (and anonymous) volumes and fills each
    /// still-empty one from the image (`lowers`: its layer directories, top
    /// first) at the mount's path, as docker does. Returns the volumes
    /// created now.
    pub fn resolve(
        &self,
        opts: &mut RunOptions,
        lowers: &[PathBuf],
    ) -> Result<Vec<VolumeName>, VolumeError> {
        let mut created = Vec::new();
        for m in &mut opts.mounts {
            let MountSpec::Volume {
                name,
                target,
                read_only,
                no_copy,
            } = m
            else {
                continue;
            };
            let name = name.as_deref().map(VolumeName::parse).transpose()?;
            let (vol, new) = self.create(name.as_ref(), BTreeMap::new())?;
            if new {
                created.push(vol.name.clone());
            }
            if !*no_copy {
                copy::populate(&vol, lowers, target)?;
            }
            *m = MountSpec::Bind {
                source: vol.mountpoint.clone(),
                target: target.clone(),
                read_only: *read_only,
            };
        }
        Ok(created)
    }
}

#[cfg(test)]
mod tests;
