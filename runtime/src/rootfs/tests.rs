use std::path::PathBuf;

use super::*;
use crate::layers::{Compression, LayerStore};
use crate::layout::Layout;
use crate::testutil::{self, E, digest, tar};

#[test]
fn overlay_options_top_first_and_checked() {
    let o = Overlay {
        lowers: vec![PathBuf::from("/l/top"), PathBuf::from("/l/base")],
        upper: PathBuf::from("/c/upper"),
        work: PathBuf::from("/c/work"),
        volatile: false,
    };
    assert_eq!(
        o.mount_options().unwrap(),
        "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work"
    );
    let v = Overlay {
        volatile: true,
        ..o.clone()
    };
    assert!(
        v.mount_options()
            .unwrap()
            .ends_with(",workdir=/c/work,volatile")
    );
    let bad = Overlay {
        lowers: vec![PathBuf::from("/l/a:b")],
        ..o.clone()
    };
    assert!(matches!(
        bad.mount_options(),
        Err(RootfsError::BadLayerPath { .. })
    ));
    let none = Overlay {
        lowers: vec![],
        ..o
    };
    assert!(matches!(none.mount_options(), Err(RootfsError::NoLayers)));
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: LayerStore,
    lowers: Vec<PathBuf>,
    upper: PathBuf,
}

/// Two image layers and an upper dir shaped the way overlayfs leaves it
/// after: editing /etc/hostname, adding /etc/new, deleting /etc/passwd,
/// replacing /var/cache wholesale (opaque) and adding /opt/app/bin.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(Layout::new(dir.path().join("root"))).unwrap();
    let base = tar(&[
        E::Dir("etc/", 0o755),
        E::File("etc/hostname", 0o644, b"base\n"),
        E::File("etc/passwd", 0o644, b"root:x:0:0\n"),
        E::File("etc/gone", 0o644, b"x"),
        E::Dir("var/cache/", 0o755),
        E::File("var/cache/a", 0o644, b"a"),
        E::File("var/cache/b", 0o644, b"b"),
    ]);
    let top = tar(&[
        E::File("etc/.wh.gone", 0o644, b""),
        E::File("var/cache/c", 0o644, b"c"),
    ]);
    let base = store.unpack(&digest(&base), &base[..]).unwrap();
    let top = store.unpack(&digest(&top), &top[..]).unwrap();
    let upper = dir.path().join("upper");
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::write(upper.join("etc/hostname"), b"changed\n").unwrap();
    std::fs::write(upper.join("etc/new"), b"new\n").unwrap();
    std::fs::hard_link(upper.join("etc/new"), upper.join("etc/new-link")).unwrap();
    std::os::unix::fs::symlink("/etc/new", upper.join("etc/new-sym")).unwrap();
    nix::sys::stat::mknod(
        &upper.join("etc/passwd"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    std::fs::create_dir_all(upper.join("var/cache")).unwrap();
    xattr::set(upper.join("var/cache"), OPAQUE_XATTR, b"y").unwrap();
    std::fs::write(upper.join("var/cache/b"), b"b2").unwrap();
    std::fs::create_dir_all(upper.join("opt/app")).unwrap();
    std::fs::write(upper.join("opt/app/bin"), b"bin").unwrap();
    Fixture {
        _dir: dir,
        store,
        lowers: vec![top.path, base.path],
        upper,
    }
}

#[test]
fn diff_lists_added_changed_deleted() {
    if testutil::skip_unless_root("diff_lists_added_changed_deleted") {
        return;
    }
    let f = fixture();
    let lines: Vec<String> = diff(&f.upper, &f.lowers)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        vec![
            "C /etc",
            "C /etc/hostname",
            "A /etc/new",
            "A /etc/new-link",
            "A /etc/new-sym",
            "D /etc/passwd",
            "A /opt",
            "A /opt/app",
            "A /opt/app/bin",
            "C /var",
            "C /var/cache",
            "D /var/cache/a",
            "C /var/cache/b",
            "D /var/cache/c",
        ]
    );
}

#[test]
fn whiteout_of_something_the_image_lacks_is_not_listed() {
    if testutil::skip_unless_root("whiteout_of_something_the_image_lacks_is_not_listed") {
        return;
    }
    let f = fixture();
    // /etc/gone is already whited out by the top image layer.
    nix::sys::stat::mknod(
        &f.upper.join("etc/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    let changes = diff(&f.upper, &f.lowers).unwrap();
    assert!(
        !changes.iter().any(|c| c.path == "/etc/gone"),
        "{changes:?}"
    );
}

#[test]
fn commit_round_trips_through_the_layer_store() {
    if testutil::skip_unless_root("commit_round_trips_through_the_layer_store") {
        return;
    }
    let f = fixture();
    for compression in [Compression::None, Compression::Gzip] {
        let mut blob = Vec::new();
        let info = commit(&f.upper, &mut blob, compression).unwrap();
        assert_eq!(info.digest, digest(&blob));
        assert_eq!(info.size, blob.len() as u64);
        let layer = f.store.unpack(&info.digest, &blob[..]).unwrap();
        assert_eq!(layer.diff_id, info.diff_id);
        assert_eq!(layer.compression, compression);
        // Unpacking the committed layer reproduces the upper dir, so a diff
        // of it against the same image is identical.
        assert_eq!(
            diff(&layer.path, &f.lowers).unwrap(),
            diff(&f.upper, &f.lowers).unwrap()
        );
        assert_eq!(
            std::fs::read(layer.path.join("etc/hostname")).unwrap(),
            b"changed\n"
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(layer.path.join("etc/new")).unwrap().ino(),
            std::fs::metadata(layer.path.join("etc/new-link"))
                .unwrap()
                .ino()
        );
    }
    // Plain tar: entries are sorted and use OCI whiteout names.
    let mut blob = Vec::new();
    commit(&f.upper, &mut blob, Compression::None).unwrap();
    let mut ar = ::tar::Archive::new(&blob[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"etc/.wh.passwd".to_owned()), "{names:?}");
    assert!(
        names.contains(&"var/cache/.wh..wh..opq".to_owned()),
        "{names:?}"
    );
    let etc = names.iter().position(|n| n == "etc").unwrap();
    let hostname = names.iter().position(|n| n == "etc/hostname").unwrap();
    assert!(etc < hostname);
}
