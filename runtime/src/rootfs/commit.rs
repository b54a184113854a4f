//! `bay commit`: turn a container's upper layer into an OCI layer tar.
//!
//! Overlay whiteouts become `.wh.NAME` entries and opaque directories get a
//! `.wh..wh..opq` entry, so the result unpacks (with [`crate::LayerStore`])
//! back into the same upper layer. Entries are sorted, hard links inside the
//! layer are kept as tar hard links, `trusted.overlay.*` xattrs are dropped.
//! Device nodes a container created are left out (image layers may not
//! carry them), as are sockets; each is logged.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_types::{Algorithm, Digest, Hasher};

use super::diff::{is_opaque, open_root, open_subdir};
use super::{RootfsError, is_whiteout};
use crate::fsutil::{self, AsFdRef};
use crate::layers::Compression;

/// The layer a commit produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Digest of the bytes written (the manifest's layer digest).
    pub digest: Digest,
    /// Digest of the uncompressed tar (the image config's diff_id).
    pub diff_id: Digest,
    /// Bytes written.
    pub size: u64,
    /// Compression used.
    pub compression: Compression,
}

struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hashing<W: Write>(inner: W) -> HashingWriter<W> {
    HashingWriter {
        inner,
        hasher: Algorithm::Sha256.hasher(),
        count: 0,
    }
}

/// Writes the upper directory `upper` as a layer tar to `out`.
pub fn commit(
    upper: &Path,
    out: impl Write,
    compression: Compression,
) -> Result<CommitInfo, RootfsError> {
    commit_except(upper, out, compression, &|_| false)
}

/// [`commit`], leaving out every path (relative, like `etc/hosts`) for
/// which `skip` is true, with everything below it.
pub fn commit_except(
    upper: &Path,
    out: impl Write,
    compression: Compression,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<CommitInfo, RootfsError> {
    let w = |source| RootfsError::Write { source };
    let outer = hashing(out);
    let (diff_id, outer) = match compression {
        Compression::None => {
            let inner = hashing(outer);
            let inner = write_tar(upper, inner, skip)?;
            (inner.hasher.finish(), inner.inner)
        }
        Compression::Gzip => {
            let gz = flate2::write::GzEncoder::new(outer, flate2::Compression::default());
            let inner = write_tar(upper, hashing(gz), skip)?;
            let diff_id = inner.hasher.finish();
            (diff_id, inner.inner.finish().map_err(w)?)
        }
    };
    let mut outer = outer;
    outer.flush().map_err(w)?;
    Ok(CommitInfo {
        digest: outer.hasher.finish(),
        diff_id,
        size: outer.count,
        compression,
    })
}

fn write_tar<W: Write>(
    upper: &Path,
    out: W,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<W, RootfsError> {
    let root = open_root(upper)?;
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    let mut links = HashMap::new();
    walk(root.as_fd_ref(), &mut Vec::new(), &mut b, &mut links, skip)?;
    b.into_inner()
        .map_err(|source| RootfsError::Write { source })
}

fn rel(comps: &[OsString]) -> PathBuf {
    comps.iter().collect()
}

fn header_from(st: &nix::sys::stat::FileStat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

fn xattrs_of(fd: BorrowedFd<'_>) -> Vec<(String, Vec<u8>)> {
    use xattr::FileExt;
    let Ok(dup) = nix::unistd::dup(fd.as_raw_fd()) else {
        return Vec::new();
    };
    let f = std::fs::File::from(crate::sys::own_fd(dup));
    let mut out = Vec::new();
    if let Ok(names) = f.list_xattr() {
        for name in names {
            let Some(n) = name.to_str() else { continue };
            if n.starts_with("trusted.overlay.") {
                continue;
            }
            if let Ok(Some(v)) = f.get_xattr(n) {
                out.push((format!("SCHILY.xattr.{n}"), v));
            }
        }
    }
    out.sort();
    out
}

fn walk<W: Write>(
    dir: BorrowedFd<'_>,
    prefix: &mut Vec<OsString>,
    b: &mut tar::Builder<W>,
    links: &mut HashMap<(u64, u64), PathBuf>,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<(), RootfsError> {
    let io_err = |op: &'static str, comps: &[OsString]| {
        let path = format!("/{}", rel(comps).display());
        move |source: io::Error| RootfsError::Io { op, path, source }
    };
    let nix_err = |op: &'static str, comps: &[OsString]| {
        let f = io_err(op, comps);
        move |e: nix::Error| f(e.into())
    };
    let names = fsutil::list_dir(dir).map_err(nix_err("list", prefix))?;
    for name in names {
        prefix.push(name.clone());
        let path = rel(prefix);
        if skip(&path) {
            prefix.pop();
            continue;
        }
        let Some(st) = fsutil::lstat_at(dir, &name).map_err(nix_err("stat", prefix))? else {
            prefix.pop();
            continue;
        };
        let fmt = st.st_mode & libc::S_IFMT;
        let add = |b: &mut tar::Builder<W>,
                   h: &mut tar::Header,
                   p: &Path,
                   data: &mut dyn io::Read| { b.append_data(h, p, data) };
        if is_whiteout(&st) {
            let mut wh = path.clone();
            let mut n = OsString::from(".wh.");
            n.push(&name);
            wh.set_file_name(n);
            let mut h = header_from(&st, tar::EntryType::Regular);
            h.set_mode(0o644);
            add(b, &mut h, &wh, &mut io::empty()).map_err(io_err("write", prefix))?;
        } else if fmt == libc::S_IFDIR {
            let sub = open_subdir(dir, &name).map_err(nix_err("open", prefix))?;
            let x = xattrs_of(sub.as_fd_ref());
            if !x.is_empty() {
                b.append_pax_extensions(x.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                    .map_err(io_err("write", prefix))?;
            }
            let mut h = header_from(&st, tar::EntryType::Directory);
            add(b, &mut h, &path, &mut io::empty()).map_err(io_err("write", prefix))?;
            if is_opaque(&sub) {
                let mut h = header_from(&st, tar::EntryType::Regular);
                h.set_mode(0o644);
                add(b, &mut h, &path.join(".wh..wh..opq"), &mut io::empty())
                    .map_err(io_err("write", prefix))?;
            }
            walk(sub.as_fd_ref(), prefix, b, links, skip)?;
        } else if fmt == libc::S_IFREG {
            let key = (st.st_dev, st.st_ino);
            if st.st_nlink > 1
                && let Some(first) = links.get(&key)
            {
                let mut h = header_from(&st, tar::EntryType::Link);
                b.append_link(&mut h, &path, first)
                    .map_err(io_err("write", prefix))?;
            } else {
                if st.st_nlink > 1 {
                    links.insert(key, path.clone());
                }
                let fd = nix::fcntl::openat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map(crate::sys::own_fd)
                .map_err(nix_err("open", prefix))?;
                let x = xattrs_of(fd.as_fd_ref());
                if !x.is_empty() {
                    b.append_pax_extensions(x.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                        .map_err(io_err("write", prefix))?;
                }
                let mut file = std::fs::File::from(fd);
                let mut h = header_from(&st, tar::EntryType::Regular);
                h.set_size(u64::try_from(st.st_size).unwrap_or(0));
                add(b, &mut h, &path, &mut file).map_err(io_err("write", prefix))?;
            }
        } else if fmt == libc::S_IFLNK {
            let target = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name.as_os_str())
                .map_err(nix_err("readlink", prefix))?;
            let mut h = header_from(&st, tar::EntryType::Symlink);
            b.append_link(
                &mut h,
                &path,
                Path::new(std::ffi::OsStr::from_bytes(target.as_bytes())),
            )
            .map_err(io_err("write", prefix))?;
        } else if fmt == libc::S_IFIFO {
            let mut h = header_from(&st, tar::EntryType::Fifo);
            add(b, &mut h, &path, &mut io::empty()).map_err(io_err("write", prefix))?;
        } else {
            tracing::warn!(path = %path.display(), mode = st.st_mode, "not committing device node or socket");
        }
        prefix.pop();
    }
    Ok(())
}
