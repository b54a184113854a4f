//! Descriptor-relative file operations that never follow a path string out
//! of a tree.
//!
//! Hand-rolled on `openat2` rather than taken from `cap-std` or `pathrs`:
//! `cap-std` has no `mknod`, `chown` or xattr calls (we need all three for
//! layers), and `pathrs` is MPL/LGPL-licensed. What we need is small: resolve
//! a *parent directory* with `RESOLVE_BENEATH` (so `..`, absolute symlinks and
//! symlinks climbing out all fail with `EXDEV`), then act on the last
//! component with `*at(…, AT_SYMLINK_NOFOLLOW)` calls.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// Why a path from an archive was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRefusal {
    /// The path is absolute.
    Absolute,
    /// The path has a `..` component.
    ParentDir,
    /// The path contains a NUL byte.
    Nul,
}

impl std::fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathRefusal::Absolute => "absolute path",
            PathRefusal::ParentDir => "path contains `..`",
            PathRefusal::Nul => "path contains a NUL byte",
        })
    }
}

/// A normalised path relative to a tree's root: no `..`, not absolute, `.`
/// components dropped. The empty path is the root itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath {
    comps: Vec<OsString>,
}

impl RelPath {
    /// Parses raw archive path bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, PathRefusal> {
        if bytes.contains(&0) {
            return Err(PathRefusal::Nul);
        }
        let path = Path::new(OsStr::from_bytes(bytes));
        let mut comps = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => comps.push(n.to_os_string()),
                Component::CurDir => {}
                Component::ParentDir => return Err(PathRefusal::ParentDir),
                Component::RootDir | Component::Prefix(_) => return Err(PathRefusal::Absolute),
            }
        }
        Ok(Self { comps })
    }

    /// Builds a path from already-trusted components (one per element).
    pub fn from_components(comps: Vec<OsString>) -> Self {
        Self { comps }
    }

    /// True for the root itself.
    pub fn is_root(&self) -> bool {
        self.comps.is_empty()
    }

    /// The components.
    pub fn components(&self) -> &[OsString] {
        &self.comps
    }

    /// Parent components and the last component, unless this is the root.
    pub fn split_last(&self) -> Option<(&[OsString], &OsStr)> {
        self.comps
            .split_last()
            .map(|(last, parent)| (parent, last.as_os_str()))
    }

    /// The path as a relative `PathBuf` (for messages and for `openat2`).
    pub fn to_path_buf(&self) -> PathBuf {
        self.comps.iter().collect()
    }

    /// A child path.
    pub fn join(&self, name: &OsStr) -> Self {
        let mut comps = self.comps.clone();
        comps.push(name.to_os_string());
        Self { comps }
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}", self.to_path_buf().display())
    }
}

fn beneath_how(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_MAGICLINKS
            | ResolveFlag::RESOLVE_NO_XDEV,
    )
}

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // `fd` was just returned by a successful open call and is owned by
    // nobody else; the unsafe conversion lives in `sys`.
    crate::sys::own_fd(fd)
}

/// Opens `rel` under `root`, failing with `EXDEV` if resolution would leave
/// the tree (through `..`, an absolute symlink or a symlink climbing out).
/// Symlinks that stay inside are followed; the last component too unless
/// `flags` has `O_NOFOLLOW`.
pub fn open_beneath(root: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    openat2(root.as_raw_fd(), rel, beneath_how(flags)).map(owned)
}

/// Opens a directory `comps` under `root`, creating missing directories
/// (mode 0755, owned by the caller) on the way, never leaving the tree.
pub fn mkdir_all_beneath(root: BorrowedFd<'_>, comps: &[OsString]) -> nix::Result<OwnedFd> {
    let whole: PathBuf = comps.iter().collect();
    match open_beneath(root, &whole, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mut prefix = PathBuf::new();
    for comp in comps {
        prefix.push(comp);
        match open_beneath(root, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(_) => continue,
            Err(Errno::ENOENT) => {
                let parent = prefix.parent().unwrap_or(Path::new(""));
                let pfd = open_beneath(root, parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
                match mkdirat(
                    Some(pfd.as_raw_fd()),
                    comp.as_os_str(),
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    open_beneath(root, &whole, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// What kind of inode `name` in `dir` is, without following symlinks.
pub fn lstat_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
) -> nix::Result<Option<nix::sys::stat::FileStat>> {
    match nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// True if the mode is a directory.
pub fn is_dir(st: &nix::sys::stat::FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Removes `name` in `dir` and, if it is a directory, everything below it,
/// without following symlinks. A missing `name` is not an error.
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if !is_dir(&st) {
        return unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir);
    }
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(owned)?;
    let children = list_dir(fd.as_fd_ref())?;
    for child in children {
        remove_all_at(fd.as_fd_ref(), &child)?;
    }
    unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir)
}

/// The names in a directory (without `.` and `..`), sorted bytewise.
pub fn list_dir(dir: BorrowedFd<'_>) -> nix::Result<Vec<OsString>> {
    // Dir takes ownership of the fd it reads, so give it a duplicate.
    let dup = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = Dir::from_fd(dup)?;
    let mut names = Vec::new();
    for entry in d.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        names.push(OsStr::from_bytes(name).to_os_string());
    }
    names.sort();
    Ok(names)
}

/// Borrowing helper so call sites read `fd.as_fd_ref()`.
pub trait AsFdRef {
    /// Borrows the descriptor.
    fn as_fd_ref(&self) -> BorrowedFd<'_>;
}

impl AsFdRef for OwnedFd {
    fn as_fd_ref(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// Wraps an owned fd into a `File` (for reads, writes and xattrs).
pub fn into_file(fd: OwnedFd) -> std::fs::File {
    std::fs::File::from(fd)
}
