//! `bay diff`: the changes a container's upper layer makes to its image.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{OPAQUE_XATTR, RootfsError, is_whiteout};
use crate::fsutil::{self, AsFdRef};

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum ChangeKind {
    /// `A`: the path is new.
    Added,
    /// `C`: the path existed in the image and was changed (for a directory:
    /// something below it changed).
    Changed,
    /// `D`: the path existed in the image and was deleted.
    Deleted,
}

impl ChangeKind {
    /// Docker's one-letter code.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One line of `bay diff`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Change {
    /// The absolute path inside the container.
    pub path: String,
    /// What happened.
    pub kind: ChangeKind,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

fn io(op: &'static str, path: &[OsString]) -> impl FnOnce(nix::Error) -> RootfsError {
    let path = show(path);
    move |e| RootfsError::Io {
        op,
        path,
        source: e.into(),
    }
}

fn show(comps: &[OsString]) -> String {
    let p: PathBuf = comps.iter().collect();
    format!("/{}", p.display())
}

/// Lists the changes in `upper` relative to the image `lowers` (top first),
/// sorted by path. Whiteouts are deletions; an opaque directory that hides
/// image content lists each hidden image entry as deleted.
pub fn diff(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, RootfsError> {
    let root = open_root(upper)?;
    let mut out = Vec::new();
    walk(root.as_fd_ref(), &mut Vec::new(), lowers, &mut out)?;
    out.sort();
    Ok(out)
}

pub(crate) fn open_root(upper: &Path) -> Result<OwnedFd, RootfsError> {
    nix::fcntl::open(
        upper,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(crate::sys::own_fd)
    .map_err(|e| RootfsError::Io {
        op: "open",
        path: upper.display().to_string(),
        source: e.into(),
    })
}

pub(crate) fn open_subdir(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(crate::sys::own_fd)
}

pub(crate) fn is_opaque(dir: &OwnedFd) -> bool {
    use xattr::FileExt;
    let dup = match nix::unistd::dup(dir.as_raw_fd()) {
        Ok(fd) => std::fs::File::from(crate::sys::own_fd(fd)),
        Err(_) => return false,
    };
    matches!(dup.get_xattr(OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

fn walk(
    dir: BorrowedFd<'_>,
    prefix: &mut Vec<OsString>,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
) -> Result<(), RootfsError> {
    for name in fsutil::list_dir(dir).map_err(io("list", prefix))? {
        prefix.push(name.clone());
        let st = fsutil::lstat_at(dir, &name)
            .map_err(io("stat", prefix))?
            .ok_or_else(|| RootfsError::Io {
                op: "stat",
                path: show(prefix),
                source: std::io::ErrorKind::NotFound.into(),
            })?;
        let in_image = lower_visible(lowers, prefix);
        if is_whiteout(&st) {
            if in_image {
                out.push(Change {
                    path: show(prefix),
                    kind: ChangeKind::Deleted,
                });
            }
        } else {
            out.push(Change {
                path: show(prefix),
                kind: if in_image {
                    ChangeKind::Changed
                } else {
                    ChangeKind::Added
                },
            });
            if fsutil::is_dir(&st) {
                let sub = open_subdir(dir, &name).map_err(io("open", prefix))?;
                if in_image && is_opaque(&sub) {
                    let present = fsutil::list_dir(sub.as_fd_ref()).map_err(io("list", prefix))?;
                    for hidden in lower_children(lowers, prefix) {
                        if !present.contains(&hidden) {
                            let mut p = prefix.clone();
                            p.push(hidden);
                            out.push(Change {
                                path: show(&p),
                                kind: ChangeKind::Deleted,
                            });
                        }
                    }
                }
                walk(sub.as_fd_ref(), prefix, lowers, out)?;
            }
        }
        prefix.pop();
    }
    Ok(())
}

enum Found {
    Missing,
    Whiteout,
    Dir { opaque: bool },
    Other,
}

fn lookup(layer: &Path, comps: &[OsString]) -> Found {
    let p: PathBuf = layer.join(comps.iter().collect::<PathBuf>());
    let Ok(md) = std::fs::symlink_metadata(&p) else {
        return Found::Missing;
    };
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if md.file_type().is_char_device() && md.rdev() == 0 {
        Found::Whiteout
    } else if md.is_dir() {
        let opaque = matches!(xattr::get(&p, OPAQUE_XATTR), Ok(Some(v)) if v == b"y");
        Found::Dir { opaque }
    } else {
        Found::Other
    }
}

/// Resolves `comps` through the image layers with overlayfs's rules.
/// `None`: not visible. `Some((layers, true))`: a directory, merged from
/// those layers (indices into `lowers`). `Some((_, false))`: a non-directory.
///
/// Only store layers are walked here; each prefix is checked to be a real
/// directory before descending, so a symlink in a layer is never followed.
fn resolve(lowers: &[PathBuf], comps: &[OsString]) -> Option<(Vec<usize>, bool)> {
    let mut active: Vec<usize> = (0..lowers.len()).collect();
    for depth in 1..=comps.len() {
        let mut next = Vec::new();
        let mut found_other = false;
        for &i in &active {
            match lookup(&lowers[i], &comps[..depth]) {
                Found::Missing => continue,
                Found::Whiteout => break,
                Found::Dir { opaque } => {
                    next.push(i);
                    if opaque {
                        break;
                    }
                }
                Found::Other => {
                    if next.is_empty() {
                        found_other = true;
                    }
                    break;
                }
            }
        }
        if found_other {
            // A non-directory: visible only if it is the last component.
            return (depth == comps.len()).then(|| (Vec::new(), false));
        }
        if next.is_empty() {
            return None;
        }
        active = next;
    }
    Some((active, true))
}

fn lower_visible(lowers: &[PathBuf], comps: &[OsString]) -> bool {
    resolve(lowers, comps).is_some()
}

/// The names visible in image directory `comps`.
fn lower_children(lowers: &[PathBuf], comps: &[OsString]) -> Vec<OsString> {
    let Some((layers, true)) = resolve(lowers, comps) else {
        return Vec::new();
    };
    let mut names: Vec<OsString> = Vec::new();
    for i in layers {
        let p = lowers[i].join(comps.iter().collect::<PathBuf>());
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let mut visible: Vec<OsString> = names
        .into_iter()
        .filter(|n| {
            let mut c = comps.to_vec();
            c.push(n.clone());
            lower_visible(lowers, &c)
        })
        .collect();
    visible.sort();
    visible
}
