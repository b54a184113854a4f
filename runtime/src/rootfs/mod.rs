//! A container's root filesystem: the overlayfs stack (image layers as
//! read-only lowerdirs, a per-container upperdir and workdir), and the two
//! operations on its upper layer that `bay diff` and `bay commit` need.
//!
//! The overlay itself is mounted only inside the container's own mount
//! namespace (see `linux::init`), so it disappears with the container and
//! never shows up in the host's mount table. [`diff`] and [`commit`] read the
//! upper directory directly, walking it with descriptor-relative calls that
//! never follow the symlinks a container may have planted there.

mod commit;
mod diff;

use std::path::{Path, PathBuf};

pub use commit::{CommitInfo, commit, commit_except};
pub use diff::{Change, ChangeKind, diff};

/// Errors of rootfs operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootfsError {
    /// A path cannot be given to overlayfs (it contains `:`, `,`, `\` or a
    /// newline, which the mount option syntax cannot carry).
    #[error("path {path} cannot be used as an overlay layer")]
    BadLayerPath {
        /// The path.
        path: PathBuf,
    },
    /// The overlay needs at least one lower layer.
    #[error("an overlay needs at least one image layer")]
    NoLayers,
    /// The overlay option string exceeds the one page `mount(2)` accepts.
    #[error("overlay options are {len} bytes, more than mount(2) accepts (4095)")]
    OptionsTooLong {
        /// The length.
        len: usize,
    },
    /// Reading the upper or a lower directory failed.
    #[error("{op} {path}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path (relative to the layer root for walked entries).
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the committed layer failed.
    #[error("writing the committed layer")]
    Write {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The overlay stack of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// Image layer directories, **top first** (overlayfs `lowerdir` order).
    pub lowers: Vec<PathBuf>,
    /// The container's upper dir.
    pub upper: PathBuf,
    /// The container's work dir (same filesystem as `upper`).
    pub work: PathBuf,
    /// Mount with `volatile`: overlayfs skips every sync of the upper
    /// filesystem. Unmounting a non-volatile overlay syncs the whole upper
    /// filesystem (~40-130 ms here, paid when the container's last process
    /// exits); the price is that a *host crash* may lose a container's
    /// recent writes. See [`Overlay::prepare_workdir`].
    pub volatile: bool,
}

fn check_path(p: &Path) -> Result<&str, RootfsError> {
    match p.to_str() {
        Some(s) if p.is_absolute() && !s.contains([':', ',', '\\', '\n']) && !s.is_empty() => Ok(s),
        _ => Err(RootfsError::BadLayerPath {
            path: p.to_path_buf(),
        }),
    }
}

impl Overlay {
    /// The `mount(2)` data string for this stack.
    pub fn mount_options(&self) -> Result<String, RootfsError> {
        if self.lowers.is_empty() {
            return Err(RootfsError::NoLayers);
        }
        let lowers = self
            .lowers
            .iter()
            .map(|l| check_path(l))
            .collect::<Result<Vec<_>, _>>()?
            .join(":");
        let mut opts = format!(
            "lowerdir={lowers},upperdir={},workdir={}",
            check_path(&self.upper)?,
            check_path(&self.work)?
        );
        if self.volatile {
            opts.push_str(",volatile");
        }
        if opts.len() > 4095 {
            return Err(RootfsError::OptionsTooLong { len: opts.len() });
        }
        Ok(opts)
    }
}

impl Overlay {
    /// Clears the work dir before a mount. A volatile mount leaves
    /// `work/work/incompat/volatile` behind and overlayfs refuses to mount
    /// again while it exists; it is safe to clear because the previous mount
    /// is gone (it lived only in the stopped container's mount namespace)
    /// and all its writes went through the page cache.
    pub fn prepare_workdir(&self) -> Result<(), RootfsError> {
        let inner = self.work.join("work");
        match std::fs::remove_dir_all(&inner) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RootfsError::Io {
                op: "clear",
                path: inner.display().to_string(),
                source,
            }),
        }
    }
}

/// `trusted.overlay.opaque`.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// True if the stat describes an overlay whiteout (char device 0/0).
pub(crate) fn is_whiteout(st: &nix::sys::stat::FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == 0
}

#[cfg(test)]
mod tests;
