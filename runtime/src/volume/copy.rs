//! docker's copy-up: a new, empty volume first gets what the image holds at
//! the mount's path. Hand-rolled (no crate copies descriptor-relative with
//! ownership kept): directories, regular files, symlinks and fifos, with
//! owner, mode and modification time; device nodes and sockets are skipped
//! (overlay whiteouts are 0:0 character devices, and a volume is no place
//! for devices).

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};

use super::{Volume, VolumeError};
use crate::fsutil::{AsFdRef, list_dir, open_beneath};

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    crate::sys::own_fd(fd)
}

fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(owned)
}

fn times(st: &FileStat) -> [nix::sys::time::TimeSpec; 2] {
    use nix::sys::time::TimeSpec;
    [
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    ]
}

/// Owner, mode and times of `fd` from `st` (chown first: it clears setuid).
fn finish(fd: BorrowedFd<'_>, st: &FileStat) -> nix::Result<()> {
    nix::unistd::fchown(
        fd.as_raw_fd(),
        Some(nix::unistd::Uid::from_raw(st.st_uid)),
        Some(nix::unistd::Gid::from_raw(st.st_gid)),
    )?;
    nix::sys::stat::fchmod(
        fd.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )?;
    let [a, m] = times(st);
    nix::sys::stat::futimens(fd.as_raw_fd(), &a, &m)
}

/// Copies the contents of directory `src` into directory `dst`. Every
/// entry is created with `O_EXCL`/`mkdirat` and reopened with `O_NOFOLLOW`,
/// so nothing already in `dst` (or planted there meanwhile) is followed.
pub(super) fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> nix::Result<()> {
    for name in list_dir(src)? {
        let st = nix::sys::stat::fstatat(
            Some(src.as_raw_fd()),
            name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                nix::sys::stat::mkdirat(
                    Some(dst.as_raw_fd()),
                    name.as_os_str(),
                    Mode::from_bits_truncate(0o700),
                )?;
                let (s, d) = (open_dir_at(src, &name)?, open_dir_at(dst, &name)?);
                copy_dir(s.as_fd_ref(), d.as_fd_ref())?;
                finish(d.as_fd_ref(), &st)?;
            }
            libc::S_IFREG => {
                let s = nix::fcntl::openat(
                    Some(src.as_raw_fd()),
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map(owned)?;
                let d = nix::fcntl::openat(
                    Some(dst.as_raw_fd()),
                    name.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map(owned)?;
                let (mut r, mut w) = (std::fs::File::from(s), std::fs::File::from(d));
                std::io::copy(&mut r, &mut w)
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
                finish(std::os::fd::AsFd::as_fd(&w), &st)?;
            }
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(src.as_raw_fd()), name.as_os_str())?;
                nix::unistd::symlinkat(
                    target.as_os_str(),
                    Some(dst.as_raw_fd()),
                    name.as_os_str(),
                )?;
                nix::unistd::fchownat(
                    Some(dst.as_raw_fd()),
                    name.as_os_str(),
                    Some(nix::unistd::Uid::from_raw(st.st_uid)),
                    Some(nix::unistd::Gid::from_raw(st.st_gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )?;
            }
            libc::S_IFIFO => {
                nix::sys::stat::mknodat(
                    Some(dst.as_raw_fd()),
                    name.as_os_str(),
                    nix::sys::stat::SFlag::S_IFIFO,
                    Mode::from_bits_truncate(st.st_mode & 0o7777),
                    0,
                )?;
                nix::unistd::fchownat(
                    Some(dst.as_raw_fd()),
                    name.as_os_str(),
                    Some(nix::unistd::Uid::from_raw(st.st_uid)),
                    Some(nix::unistd::Gid::from_raw(st.st_gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )?;
            }
            _ => tracing::debug!(?name, "not copying a device node or socket into a volume"),
        }
    }
    Ok(())
}

fn is_empty(dir: &Path) -> Result<bool, VolumeError> {
    let mut rd = std::fs::read_dir(dir).map_err(super::io("list", dir))?;
    Ok(rd.next().is_none())
}

/// The image's directory at `target` copied into `dst` (with the
/// directory's own owner and mode); nothing when the image has none there.
fn copy_from_image(root: &Path, target: &str, dst: &Path) -> nix::Result<()> {
    let rootfd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(owned)?;
    let rel = Path::new(target.trim_start_matches('/'));
    let src = match open_beneath(
        rootfd.as_fd_ref(),
        rel,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
    ) {
        Ok(fd) => fd,
        // Nothing (or no directory) there, or a symlink out of the image:
        // docker copies nothing then either.
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::EXDEV | Errno::ELOOP) => return Ok(()),
        Err(e) => return Err(e),
    };
    let dstfd = nix::fcntl::open(
        dst,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(owned)?;
    copy_dir(src.as_fd_ref(), dstfd.as_fd_ref())?;
    let st = nix::sys::stat::fstat(src.as_raw_fd())?;
    finish(dstfd.as_fd_ref(), &st)
}

/// In a thread with its own mount namespace (so the mount can never leak
/// into the host's, and vanishes with the thread): the image's layers as a
/// read-only overlay, or the only layer itself.
fn with_image_root<T>(
    lowers: &[PathBuf],
    scratch: &Path,
    f: impl FnOnce(&Path) -> nix::Result<T> + Send,
) -> nix::Result<T>
where
    T: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            if lowers.len() == 1 {
                return f(&lowers[0]);
            }
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            let list: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
            nix::mount::mount(
                Some("overlay"),
                scratch,
                Some("overlay"),
                nix::mount::MsFlags::MS_RDONLY,
                Some(format!("lowerdir={}", list.join(":")).as_str()),
            )?;
            let out = f(scratch);
            let _ = nix::mount::umount2(scratch, nix::mount::MntFlags::MNT_DETACH);
            out
        })
        .join()
        .unwrap_or(Err(Errno::EIO))
    })
}

/// Fills `vol` from the image at `target` if the volume is empty.
pub(super) fn populate(
    vol: &Volume,
    lowers: &[PathBuf],
    target: &str,
) -> Result<bool, VolumeError> {
    if lowers.is_empty() || !is_empty(&vol.mountpoint)? {
        return Ok(false);
    }
    let fail = |errno| VolumeError::CopyUp {
        name: vol.name.to_string(),
        path: target.to_owned(),
        errno,
    };
    let scratch = vol
        .mountpoint
        .parent()
        .unwrap_or(Path::new("/"))
        .join("image");
    match std::fs::create_dir(&scratch) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(super::io("create", &scratch)(e)),
    }
    let dst = vol.mountpoint.clone();
    let copied = with_image_root(lowers, &scratch, |root| copy_from_image(root, target, &dst));
    let _ = std::fs::remove_dir(&scratch);
    copied.map_err(fail)?;
    tracing::debug!(volume = %vol.name, target, "volume filled from the image");
    Ok(true)
}
