use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;
use crate::testutil::{self, E, digest, gzip, tar};

fn store() -> (tempfile::TempDir, LayerStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(Layout::new(dir.path().join("root"))).unwrap();
    (dir, store)
}

fn tmp_is_empty(dir: &tempfile::TempDir) -> bool {
    std::fs::read_dir(dir.path().join("root/layers/tmp"))
        .unwrap()
        .next()
        .is_none()
}

fn sample() -> Vec<u8> {
    tar(&[
        E::Dir("etc/", 0o755),
        E::File("etc/hello", 0o644, b"hello\n"),
        E::File("bin/tool", 0o4755, b"#!/bin/sh\n"),
        E::Symlink("bin/sh", "/bin/busybox"),
        E::Symlink("etc/rel", "../bin/tool"),
        E::HardLink("etc/hello2", "etc/hello"),
        E::FileOwned(
            "data/owned",
            0o640,
            1234,
            4321,
            b"x",
            &[("user.bay", b"v1")],
        ),
    ])
}

fn check_sample(layer: &Layer) {
    let p = &layer.path;
    assert_eq!(std::fs::read(p.join("etc/hello")).unwrap(), b"hello\n");
    let tool = std::fs::metadata(p.join("bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(
        std::fs::read_link(p.join("bin/sh")).unwrap(),
        std::path::Path::new("/bin/busybox"),
        "absolute symlink stored verbatim"
    );
    let h1 = std::fs::metadata(p.join("etc/hello")).unwrap();
    let h2 = std::fs::metadata(p.join("etc/hello2")).unwrap();
    assert_eq!(h1.ino(), h2.ino(), "hard link shares the inode");
    assert_eq!(h1.mtime(), 1_700_000_000);
    let owned = std::fs::metadata(p.join("data/owned")).unwrap();
    if testutil::is_root() {
        assert_eq!((owned.uid(), owned.gid()), (1234, 4321));
    }
    assert_eq!(owned.permissions().mode() & 0o7777, 0o640);
    assert_eq!(
        xattr::get(p.join("data/owned"), "user.bay")
            .unwrap()
            .as_deref(),
        Some(&b"v1"[..])
    );
}

#[test]
fn unpacks_plain_tar_and_verifies_digest() {
    let (_d, store) = store();
    let blob = sample();
    let d = digest(&blob);
    let layer = store.unpack(&d, &blob[..]).unwrap();
    assert_eq!(layer.compression, Compression::None);
    assert_eq!(
        layer.diff_id, d,
        "diff_id of an uncompressed layer is its digest"
    );
    assert_eq!(layer.blob_size, blob.len() as u64);
    check_sample(&layer);
    assert_eq!(store.get(&d).unwrap().unwrap(), layer);
    assert_eq!(store.list().unwrap(), vec![d]);
}

#[test]
fn unpacks_gzip_and_computes_diff_id() {
    let (d, store) = store();
    let plain = sample();
    let blob = gzip(&plain);
    let layer = store.unpack(&digest(&blob), &blob[..]).unwrap();
    assert_eq!(layer.compression, Compression::Gzip);
    assert_eq!(layer.diff_id, digest(&plain));
    check_sample(&layer);
    assert!(tmp_is_empty(&d));
}

#[test]
fn second_unpack_does_not_read() {
    struct Boom;
    impl std::io::Read for Boom {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("must not be read"))
        }
    }
    let (_d, store) = store();
    let blob = sample();
    let first = store.unpack(&digest(&blob), &blob[..]).unwrap();
    let again = store.unpack(&digest(&blob), Boom).unwrap();
    assert_eq!(first, again);
}

#[test]
fn digest_mismatch_keeps_nothing() {
    let (d, store) = store();
    let blob = sample();
    let wrong = digest(b"something else");
    let err = store.unpack(&wrong, &blob[..]).unwrap_err();
    assert!(matches!(err, LayerError::DigestMismatch { .. }), "{err}");
    assert!(store.get(&wrong).unwrap().is_none());
    assert!(store.list().unwrap().is_empty());
    assert!(tmp_is_empty(&d));
}

fn refused(entries: &[E<'_>]) -> (tempfile::TempDir, LayerError) {
    let (d, store) = store();
    let blob = tar(entries);
    let err = store.unpack(&digest(&blob), &blob[..]).unwrap_err();
    assert!(store.list().unwrap().is_empty());
    assert!(tmp_is_empty(&d));
    (d, err)
}

/// Nothing may appear next to the store root: every escape below aims there.
fn nothing_escaped(d: &tempfile::TempDir) {
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("root")],
        "escaped: {names:?}"
    );
}

#[test]
fn refuses_dotdot_entries() {
    let (d, err) = refused(&[E::File("../../../../pwned", 0o644, b"x")]);
    assert!(matches!(err, LayerError::UnsafePath { .. }), "{err}");
    nothing_escaped(&d);
    let (_d, err) = refused(&[E::File("a/../../b", 0o644, b"x")]);
    assert!(matches!(err, LayerError::UnsafePath { .. }), "{err}");
}

#[test]
fn refuses_absolute_entries() {
    let (_d, err) = refused(&[E::File("/etc/pwned", 0o644, b"x")]);
    assert!(matches!(err, LayerError::UnsafePath { .. }), "{err}");
}

#[test]
fn refuses_writes_through_escaping_symlinks() {
    // An absolute symlink to the host root, then a file through it.
    let (d, err) = refused(&[E::Symlink("evil", "/"), E::File("evil/pwned", 0o644, b"x")]);
    assert!(matches!(err, LayerError::Escape { .. }), "{err}");
    nothing_escaped(&d);
    // A relative symlink climbing out of the layer.
    let (d, err) = refused(&[
        E::Symlink("evil", "../../../../../../.."),
        E::File("evil/pwned", 0o644, b"x"),
    ]);
    assert!(matches!(err, LayerError::Escape { .. }), "{err}");
    nothing_escaped(&d);
    // Climbing to the directory that holds the store root.
    let (d, err) = refused(&[
        E::Dir("a/", 0o755),
        E::Symlink("a/up", "../../../../.."),
        E::File("a/up/pwned", 0o644, b"x"),
    ]);
    assert!(matches!(err, LayerError::Escape { .. }), "{err}");
    nothing_escaped(&d);
}

#[test]
fn follows_symlinks_that_stay_inside() {
    let (_d, store) = store();
    let blob = tar(&[
        E::Dir("usr/lib/", 0o755),
        E::Symlink("lib", "usr/lib"),
        E::File("lib/libc.so", 0o755, b"elf"),
    ]);
    let layer = store.unpack(&digest(&blob), &blob[..]).unwrap();
    assert_eq!(
        std::fs::read(layer.path.join("usr/lib/libc.so")).unwrap(),
        b"elf"
    );
}

#[test]
fn refuses_hard_links_out_of_the_tree() {
    let (_d, err) = refused(&[E::HardLink("passwd", "../../../../../../etc/passwd")]);
    assert!(matches!(err, LayerError::HardLinkOutside { .. }), "{err}");
    let (_d, err) = refused(&[E::HardLink("passwd", "/etc/passwd")]);
    assert!(matches!(err, LayerError::HardLinkOutside { .. }), "{err}");
    // Through a symlink to the host's /etc.
    let (_d, err) = refused(&[
        E::Symlink("hostetc", "/etc"),
        E::HardLink("passwd", "hostetc/passwd"),
    ]);
    assert!(matches!(err, LayerError::Escape { .. }), "{err}");
}

#[test]
fn hard_link_to_a_missing_target_creates_nothing() {
    let (_d, err) = refused(&[E::HardLink("x", "missing/dir/file")]);
    assert!(matches!(err, LayerError::Entry { .. }), "{err}");
}

#[test]
fn refuses_device_nodes() {
    let (_d, err) = refused(&[E::Char("dev/sda", 8, 0)]);
    assert!(matches!(err, LayerError::DeviceNode { .. }), "{err}");
}

#[test]
fn converts_whiteouts_and_opaque_dirs() {
    if testutil::skip_unless_root("converts_whiteouts_and_opaque_dirs") {
        return;
    }
    let (_d, store) = store();
    let blob = tar(&[
        E::Dir("etc/", 0o755),
        E::File("etc/.wh.passwd", 0o644, b""),
        E::Dir("var/cache/", 0o755),
        E::File("var/cache/.wh..wh..opq", 0o644, b""),
        E::File("var/cache/new", 0o644, b"n"),
        E::File(".wh..wh.plnk", 0o644, b""),
    ]);
    let layer = store.unpack(&digest(&blob), &blob[..]).unwrap();
    let wh = std::fs::symlink_metadata(layer.path.join("etc/passwd")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0, "whiteout is device 0/0");
    assert!(!layer.path.join("etc/.wh.passwd").exists());
    assert_eq!(
        xattr::get(layer.path.join("var/cache"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    assert!(!layer.path.join("var/cache/.wh..wh..opq").exists());
    assert!(!layer.path.join(".wh..wh.plnk").exists());
}

#[test]
fn drops_overlay_xattrs_from_the_archive() {
    if testutil::skip_unless_root("drops_overlay_xattrs_from_the_archive") {
        return;
    }
    let (_d, store) = store();
    let blob = tar(&[E::FileOwned(
        "f",
        0o644,
        0,
        0,
        b"x",
        &[
            ("trusted.overlay.redirect", b"/etc/shadow"),
            ("user.ok", b"1"),
        ],
    )]);
    let layer = store.unpack(&digest(&blob), &blob[..]).unwrap();
    let f = layer.path.join("f");
    assert!(
        xattr::get(&f, "trusted.overlay.redirect")
            .unwrap()
            .is_none()
    );
    assert_eq!(
        xattr::get(&f, "user.ok").unwrap().as_deref(),
        Some(&b"1"[..])
    );
}

/// A ustar entry whose uid/gid (and mtime) fields are empty: all NULs or
/// all spaces, as some image builders write them.
fn blank_owner_tar() -> Vec<u8> {
    let mut out = Vec::new();
    for (name, fill) in [("nul-owner", 0u8), ("space-owner", b' ')] {
        let data = b"data\n";
        let mut h = ::tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(::tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        let old = h.as_old_mut();
        old.uid = [fill; 8];
        old.gid = [fill; 8];
        old.mtime = [fill; 12];
        h.set_cksum();
        assert!(h.uid().is_err(), "the tar crate alone refuses this field");
        out.extend_from_slice(h.as_bytes());
        let mut block = [0u8; 512];
        block[..data.len()].copy_from_slice(data);
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn empty_numeric_owner_fields_read_as_zero() {
    let (_d, store) = store();
    let blob = blank_owner_tar();
    let layer = store.unpack(&digest(&blob), &blob[..]).unwrap();
    for name in ["nul-owner", "space-owner"] {
        let p = layer.path.join(name);
        assert_eq!(std::fs::read(&p).unwrap(), b"data\n");
        let md = std::fs::metadata(&p).unwrap();
        if testutil::is_root() {
            assert_eq!((md.uid(), md.gid()), (0, 0), "{name}");
        }
        assert_eq!(md.mtime(), 0, "{name}");
    }
}
