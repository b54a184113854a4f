//! Helpers shared by unit tests: building tar layers (including malicious
//! ones that the `tar` crate's safe setters would refuse to write).

use oci_types::Digest;

/// One entry of a test layer.
pub enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, &'a [u8]),
    /// A file with an owner and xattrs.
    FileOwned(&'a str, u32, u32, u32, &'a [u8], &'a [(&'a str, &'a [u8])]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Char(&'a str, u32, u32),
}

fn raw_header(name: &[u8], kind: tar::EntryType, link: &[u8], size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// Builds a plain tar from entries, writing names verbatim.
pub fn tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::Dir(p, m) => {
                let h = raw_header(p.as_bytes(), tar::EntryType::Directory, b"", 0, *m);
                b.append(&h, &[][..]).unwrap();
            }
            E::File(p, m, data) => {
                let h = raw_header(
                    p.as_bytes(),
                    tar::EntryType::Regular,
                    b"",
                    data.len() as u64,
                    *m,
                );
                b.append(&h, *data).unwrap();
            }
            E::FileOwned(p, m, uid, gid, data, xattrs) => {
                let pax: Vec<(String, &[u8])> = xattrs
                    .iter()
                    .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
                    .collect();
                b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
                    .unwrap();
                let mut h = raw_header(
                    p.as_bytes(),
                    tar::EntryType::Regular,
                    b"",
                    data.len() as u64,
                    *m,
                );
                h.set_uid(u64::from(*uid));
                h.set_gid(u64::from(*gid));
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::Symlink(p, t) => {
                let h = raw_header(
                    p.as_bytes(),
                    tar::EntryType::Symlink,
                    t.as_bytes(),
                    0,
                    0o777,
                );
                b.append(&h, &[][..]).unwrap();
            }
            E::HardLink(p, t) => {
                let h = raw_header(p.as_bytes(), tar::EntryType::Link, t.as_bytes(), 0, 0o644);
                b.append(&h, &[][..]).unwrap();
            }
            E::Char(p, maj, min) => {
                let mut h = raw_header(p.as_bytes(), tar::EntryType::Char, b"", 0, 0o666);
                h.set_device_major(*maj).unwrap();
                h.set_device_minor(*min).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// gzip-compresses bytes.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// The sha256 digest of bytes.
pub fn digest(data: &[u8]) -> Digest {
    Digest::sha256_of(data)
}

/// True when running as root (tests that need CAP_MKNOD / trusted xattrs
/// skip otherwise, printing why).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Prints a skip message and returns true if not root.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("SKIP {test}: needs root");
    true
}
