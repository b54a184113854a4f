//! Streaming, digest-verified, escape-proof unpacking of one layer tar.
//!
//! Rules, in the order they are checked for every entry:
//! - paths are normalised; an absolute path or a `..` component is refused;
//! - the entry's parent directory is opened with `openat2(RESOLVE_BENEATH)`
//!   from the layer root, so a parent that is (or goes through) a symlink
//!   leaving the layer is refused with [`LayerError::Escape`]; missing parents
//!   are created;
//! - the last component is created with `*at()` calls that never follow it;
//! - `.wh.NAME` becomes an overlayfs whiteout (char device 0/0) named `NAME`,
//!   `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory, other
//!   `.wh..wh.*` (aufs metadata) are skipped;
//! - hard links must name a path inside the layer, resolved the same way;
//! - character and block devices are refused; FIFOs are allowed;
//! - `trusted.overlay.*` xattrs in the archive are dropped: overlay metadata
//!   only ever comes from whiteout conversion;
//! - owners, modes (set-id bits included), xattrs and mtimes are kept.
//!
//! The digest is computed over the raw blob bytes (to EOF), and the diff_id
//! over the whole uncompressed stream; a mismatch fails the unpack.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use oci_types::{Digest, Hasher};
use serde::{Deserialize, Serialize};
use xattr::FileExt;

use super::LayerError;
use crate::fsutil::{self, AsFdRef, RelPath};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
}

/// What an unpack produced.
#[derive(Debug, Clone)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Detected compression.
    pub compression: Compression,
    /// Bytes of the blob.
    pub blob_size: u64,
    /// Entries unpacked (whiteouts included).
    pub entries: u64,
}

/// A reader that hashes and counts everything read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R, hasher: Hasher) -> Self {
        Self {
            inner,
            hasher,
            count: 0,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";
const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

/// Unpacks `blob` into the (empty) directory `dest`, verifying `digest`.
pub fn unpack(digest: &Digest, blob: impl Read, dest: &Path) -> Result<UnpackStats, LayerError> {
    let read_err = |source| LayerError::Read {
        digest: digest.clone(),
        source,
    };
    let root = fsutil::open_beneath(
        std::fs::File::open(dest)
            .map_err(|source| LayerError::Io {
                op: "open",
                path: dest.to_path_buf(),
                source,
            })?
            .as_fd_ref_file(),
        Path::new(""),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    )
    .map_err(|e| LayerError::Io {
        op: "open",
        path: dest.to_path_buf(),
        source: e.into(),
    })?;

    let raw = HashingReader::new(blob, digest.algorithm().hasher());
    let mut buffered = BufReader::with_capacity(128 * 1024, raw);
    let head = buffered.fill_buf().map_err(read_err)?;
    let compression = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(LayerError::UnsupportedCompression {
            digest: digest.clone(),
            kind: "zstd",
        });
    } else if head.starts_with(b"BZh") {
        return Err(LayerError::UnsupportedCompression {
            digest: digest.clone(),
            kind: "bzip2",
        });
    } else {
        Compression::None
    };
    let sha256 = || oci_types::Algorithm::Sha256.hasher();
    let (mut buffered, diff_id, entries) = match compression {
        Compression::Gzip => {
            let tar_stream =
                HashingReader::new(flate2::bufread::GzDecoder::new(buffered), sha256());
            let (tar_stream, entries) = unpack_tar(tar_stream, root.as_fd_ref(), digest)?;
            let mut tar_stream = drain(tar_stream).map_err(read_err)?;
            let diff_id = std::mem::replace(&mut tar_stream.hasher, sha256()).finish();
            (tar_stream.inner.into_inner(), diff_id, entries)
        }
        Compression::None => {
            let tar_stream = HashingReader::new(buffered, sha256());
            let (tar_stream, entries) = unpack_tar(tar_stream, root.as_fd_ref(), digest)?;
            let mut tar_stream = drain(tar_stream).map_err(read_err)?;
            let diff_id = std::mem::replace(&mut tar_stream.hasher, sha256()).finish();
            (tar_stream.inner, diff_id, entries)
        }
    };
    io::copy(&mut buffered, &mut io::sink()).map_err(read_err)?;
    let raw = buffered.into_inner();
    let blob_size = raw.count;
    let actual = raw.hasher.finish();
    if &actual != digest {
        return Err(LayerError::DigestMismatch {
            expected: digest.clone(),
            actual,
        });
    }
    Ok(UnpackStats {
        diff_id,
        compression,
        blob_size,
        entries,
    })
}

fn drain<R: Read>(mut r: R) -> io::Result<R> {
    io::copy(&mut r, &mut io::sink())?;
    Ok(r)
}

trait AsFdRefFile {
    fn as_fd_ref_file(&self) -> BorrowedFd<'_>;
}

impl AsFdRefFile for std::fs::File {
    fn as_fd_ref_file(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// A numeric header field that is empty (only NULs and spaces) reads as 0,
/// as GNU tar and containerd's archive reader take it; the `tar` crate
/// refuses such a field ("numeric field was not a number"), and some image
/// builders write owner and time fields that way. Anything else keeps the
/// crate's verdict (octal or base-256).
fn numeric_or_zero(field: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    if field.iter().all(|b| *b == 0 || *b == b' ') {
        Ok(0)
    } else {
        parsed
    }
}

/// Metadata of one entry, with PAX overrides applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

fn entry_meta<R: Read>(entry: &mut tar::Entry<'_, R>, path: &str) -> Result<Meta, LayerError> {
    let bad = |source: io::Error| LayerError::Entry {
        path: path.to_owned(),
        op: "read header",
        source,
    };
    let h = entry.header();
    let old = h.as_old();
    let mut meta = Meta {
        mode: h.mode().map_err(bad)? & 0o7777,
        uid: u32::try_from(numeric_or_zero(&old.uid, h.uid()).map_err(bad)?).unwrap_or(u32::MAX),
        gid: u32::try_from(numeric_or_zero(&old.gid, h.gid()).map_err(bad)?).unwrap_or(u32::MAX),
        mtime: i64::try_from(numeric_or_zero(&old.mtime, h.mtime()).map_err(bad)?).unwrap_or(0),
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions().map_err(bad)? {
        for ext in pax {
            let ext = ext.map_err(bad)?;
            let Ok(key) = ext.key() else { continue };
            let num = || {
                ext.value()
                    .ok()
                    .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
            };
            match key {
                "uid" => {
                    if let Some(v) = num().and_then(|v| u32::try_from(v).ok()) {
                        meta.uid = v;
                    }
                }
                "gid" => {
                    if let Some(v) = num().and_then(|v| u32::try_from(v).ok()) {
                        meta.gid = v;
                    }
                }
                "mtime" => {
                    if let Some(v) = num() {
                        meta.mtime = v;
                    }
                }
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        if name.starts_with("trusted.overlay.") {
                            tracing::warn!(path, xattr = name, "dropping overlay xattr from layer");
                            continue;
                        }
                        meta.xattrs
                            .push((OsString::from(name), ext.value_bytes().to_vec()));
                    }
                }
            }
        }
    }
    Ok(meta)
}

fn unpack_tar<R: Read>(
    stream: R,
    root: BorrowedFd<'_>,
    digest: &Digest,
) -> Result<(R, u64), LayerError> {
    let mut archive = tar::Archive::new(stream);
    let mut count = 0u64;
    let mut dirs: Vec<(RelPath, i64)> = Vec::new();
    {
        let entries = archive.entries().map_err(|source| LayerError::Read {
            digest: digest.clone(),
            source,
        })?;
        for entry in entries {
            let mut entry = entry.map_err(|source| LayerError::Read {
                digest: digest.clone(),
                source,
            })?;
            let raw_path = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw_path).into_owned();
            let rel = RelPath::parse(&raw_path).map_err(|reason| LayerError::UnsafePath {
                path: shown.clone(),
                reason,
            })?;
            let kind = entry.header().entry_type();
            if matches!(
                kind,
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
            ) {
                continue;
            }
            let meta = entry_meta(&mut entry, &shown)?;
            count += 1;
            let Some((parent_comps, name)) = rel.split_last() else {
                // The root entry ("./"): nothing to create.
                continue;
            };
            let parent = open_parent(root, parent_comps, &shown)?;
            let e = |op: &'static str| {
                let path = shown.clone();
                move |err: Errno| LayerError::Entry {
                    path,
                    op,
                    source: err.into(),
                }
            };
            let name_bytes = name.as_bytes();
            if name_bytes == OPAQUE_MARKER {
                let dir = reopen_dir(parent.as_fd_ref()).map_err(e("open"))?;
                fsutil::into_file(dir)
                    .set_xattr(OVERLAY_OPAQUE, b"y")
                    .map_err(|source| LayerError::Entry {
                        path: shown.clone(),
                        op: "set opaque xattr",
                        source,
                    })?;
                continue;
            }
            if name_bytes.starts_with(AUFS_META_PREFIX) {
                tracing::debug!(path = %shown, "skipping aufs metadata entry");
                continue;
            }
            if let Some(target) = name_bytes.strip_prefix(WHITEOUT_PREFIX) {
                let target = OsStr::from_bytes(target);
                if target.is_empty() || target == "." || target == ".." {
                    return Err(LayerError::UnsafePath {
                        path: shown,
                        reason: crate::fsutil::PathRefusal::ParentDir,
                    });
                }
                fsutil::remove_all_at(parent.as_fd_ref(), target).map_err(e("remove"))?;
                mknodat(
                    Some(parent.as_raw_fd()),
                    target,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    nix::sys::stat::makedev(0, 0),
                )
                .map_err(e("create whiteout"))?;
                continue;
            }
            let pfd = parent.as_fd_ref();
            match kind {
                tar::EntryType::Directory => {
                    match fsutil::lstat_at(pfd, name).map_err(e("stat"))? {
                        Some(st) if fsutil::is_dir(&st) => {}
                        Some(_) => {
                            fsutil::remove_all_at(pfd, name).map_err(e("remove"))?;
                            mkdir(pfd, name).map_err(e("mkdir"))?;
                        }
                        None => mkdir(pfd, name).map_err(e("mkdir"))?,
                    }
                    let fd = nix::fcntl::openat(
                        Some(pfd.as_raw_fd()),
                        name,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map(crate::sys::own_fd)
                    .map_err(e("open dir"))?;
                    apply_meta(fd, &meta, &shown, false)?;
                    dirs.push((rel.clone(), meta.mtime));
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    fsutil::remove_all_at(pfd, name).map_err(e("remove"))?;
                    let fd = nix::fcntl::openat(
                        Some(pfd.as_raw_fd()),
                        name,
                        OFlag::O_WRONLY
                            | OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )
                    .map(crate::sys::own_fd)
                    .map_err(e("create"))?;
                    let mut file = fsutil::into_file(fd);
                    io::copy(&mut entry, &mut file).map_err(|source| LayerError::Entry {
                        path: shown.clone(),
                        op: "write",
                        source,
                    })?;
                    apply_meta(OwnedFd::from(file), &meta, &shown, true)?;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|c| c.into_owned())
                        .unwrap_or_default();
                    if target.is_empty() || target.contains(&0) {
                        return Err(LayerError::UnsupportedEntry {
                            path: shown,
                            kind: b'2',
                        });
                    }
                    fsutil::remove_all_at(pfd, name).map_err(e("remove"))?;
                    nix::unistd::symlinkat(OsStr::from_bytes(&target), Some(pfd.as_raw_fd()), name)
                        .map_err(e("symlink"))?;
                    if can_chown() {
                        nix::unistd::fchownat(
                            Some(pfd.as_raw_fd()),
                            name,
                            Some(Uid::from_raw(meta.uid)),
                            Some(Gid::from_raw(meta.gid)),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .map_err(e("chown"))?;
                    }
                    let t = TimeSpec::new(meta.mtime, 0);
                    nix::sys::stat::utimensat(
                        Some(pfd.as_raw_fd()),
                        name,
                        &t,
                        &t,
                        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                    )
                    .map_err(e("utimes"))?;
                }
                tar::EntryType::Link => {
                    let target_raw = entry
                        .link_name_bytes()
                        .map(|c| c.into_owned())
                        .unwrap_or_default();
                    let target_shown = String::from_utf8_lossy(&target_raw).into_owned();
                    let target = RelPath::parse(&target_raw).map_err(|reason| {
                        LayerError::HardLinkOutside {
                            path: shown.clone(),
                            target: target_shown.clone(),
                            reason,
                        }
                    })?;
                    let Some((tparent, tname)) = target.split_last() else {
                        return Err(LayerError::HardLinkOutside {
                            path: shown,
                            target: target_shown,
                            reason: crate::fsutil::PathRefusal::ParentDir,
                        });
                    };
                    let tparent_fd = open_existing_dir(root, tparent, &shown)?;
                    if target == rel {
                        continue;
                    }
                    fsutil::remove_all_at(pfd, name).map_err(e("remove"))?;
                    nix::unistd::linkat(
                        Some(tparent_fd.as_raw_fd()),
                        tname,
                        Some(pfd.as_raw_fd()),
                        name,
                        AtFlags::empty(),
                    )
                    .map_err(e("link"))?;
                }
                tar::EntryType::Fifo => {
                    fsutil::remove_all_at(pfd, name).map_err(e("remove"))?;
                    mknodat(
                        Some(pfd.as_raw_fd()),
                        name,
                        SFlag::S_IFIFO,
                        Mode::from_bits_truncate(0o600),
                        0,
                    )
                    .map_err(e("mkfifo"))?;
                    let fd = nix::fcntl::openat(
                        Some(pfd.as_raw_fd()),
                        name,
                        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map(crate::sys::own_fd)
                    .map_err(e("open fifo"))?;
                    // chown/chmod through the O_PATH descriptor's magic link.
                    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
                    if can_chown() {
                        std::os::unix::fs::chown(&link, Some(meta.uid), Some(meta.gid)).map_err(
                            |source| LayerError::Entry {
                                path: shown.clone(),
                                op: "chown",
                                source,
                            },
                        )?;
                    }
                    nix::sys::stat::fchmodat(
                        None,
                        link.as_str(),
                        Mode::from_bits_truncate(meta.mode),
                        nix::sys::stat::FchmodatFlags::FollowSymlink,
                    )
                    .map_err(e("chmod"))?;
                }
                tar::EntryType::Char | tar::EntryType::Block => {
                    return Err(LayerError::DeviceNode { path: shown });
                }
                other => {
                    return Err(LayerError::UnsupportedEntry {
                        path: shown,
                        kind: other.as_byte(),
                    });
                }
            }
        }
    }
    // Later entries changed directory mtimes; restore them, deepest first.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0.components().len()));
    for (rel, mtime) in dirs {
        if let Ok(fd) = fsutil::open_beneath(
            root,
            &rel.to_path_buf(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
        ) {
            let t = TimeSpec::new(mtime, 0);
            let _ = nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t);
        }
    }
    Ok((archive.into_inner(), count))
}

fn mkdir(dir: BorrowedFd<'_>, name: &OsStr) -> nix::Result<()> {
    nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755))
}

fn reopen_dir(dir: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(crate::sys::own_fd)
}

fn open_parent(
    root: BorrowedFd<'_>,
    comps: &[OsString],
    shown: &str,
) -> Result<OwnedFd, LayerError> {
    fsutil::mkdir_all_beneath(root, comps).map_err(|err| match err {
        Errno::EXDEV | Errno::ELOOP | Errno::ENOTDIR => LayerError::Escape {
            path: shown.to_owned(),
        },
        other => LayerError::Entry {
            path: shown.to_owned(),
            op: "open parent",
            source: other.into(),
        },
    })
}

/// Opens an existing directory of the layer (a hard link's target parent:
/// nothing is created for it).
fn open_existing_dir(
    root: BorrowedFd<'_>,
    comps: &[OsString],
    shown: &str,
) -> Result<OwnedFd, LayerError> {
    let rel: std::path::PathBuf = comps.iter().collect();
    fsutil::open_beneath(root, &rel, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(|err| match err {
        Errno::EXDEV | Errno::ELOOP | Errno::ENOTDIR => LayerError::Escape {
            path: shown.to_owned(),
        },
        other => LayerError::Entry {
            path: shown.to_owned(),
            op: "open hard link target",
            source: other.into(),
        },
    })
}

/// Owners are kept when we may set them (root); otherwise, like `tar`
/// run by a user, files are owned by the unpacking user.
fn can_chown() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Owner first (chown clears set-id bits and file capabilities), then mode,
/// xattrs and times.
fn apply_meta(fd: OwnedFd, meta: &Meta, shown: &str, set_times: bool) -> Result<(), LayerError> {
    let e = |op: &'static str| {
        move |err: Errno| LayerError::Entry {
            path: shown.to_owned(),
            op,
            source: err.into(),
        }
    };
    if can_chown() {
        nix::unistd::fchown(
            fd.as_raw_fd(),
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(e("chown"))?;
    }
    nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(meta.mode))
        .map_err(e("chmod"))?;
    let file = fsutil::into_file(fd);
    for (name, value) in &meta.xattrs {
        file.set_xattr(name, value)
            .map_err(|source| LayerError::Entry {
                path: shown.to_owned(),
                op: "set xattr",
                source,
            })?;
    }
    if set_times {
        let t = TimeSpec::new(meta.mtime, 0);
        nix::sys::stat::futimens(std::os::fd::AsRawFd::as_raw_fd(&file), &t, &t)
            .map_err(e("utimes"))?;
    }
    Ok(())
}
