use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

#[test]
fn names_follow_docker() {
    for ok in ["ab", "my-vol_1.x", "0abc"] {
        assert!(VolumeName::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["a", "", "-x", ".x", "a/b", "a b", "ü"] {
        let e = VolumeName::parse(bad).unwrap_err().to_string();
        assert!(e.contains("includes invalid characters"), "{bad}: {e}");
    }
    let r = VolumeName::random().unwrap();
    assert_eq!(r.as_str().len(), 64);
    assert!(VolumeName::parse(r.as_str()).is_ok());
}

#[test]
fn create_is_idempotent_and_remove_removes() {
    let t = tempfile::tempdir().unwrap();
    let store = VolumeStore::new(t.path());
    assert!(store.list().unwrap().is_empty(), "no volumes dir yet");
    let name = VolumeName::parse("data").unwrap();
    let labels = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
    let (v, new) = store.create(Some(&name), labels.clone()).unwrap();
    assert!(new && !v.anonymous);
    assert_eq!(v.labels, labels);
    assert!(v.mountpoint.is_dir());
    std::fs::write(v.mountpoint.join("f"), "x").unwrap();
    let (again, new) = store.create(Some(&name), BTreeMap::new()).unwrap();
    assert!(!new);
    assert_eq!(again, v, "the existing volume, data untouched");
    assert!(v.mountpoint.join("f").exists());
    let (anon, _) = store.create(None, BTreeMap::new()).unwrap();
    assert!(anon.anonymous);
    let names: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|v| v.name.to_string())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"data".to_owned()));
    assert_eq!(store.size(&v), 1);
    store.remove("data").unwrap();
    assert!(store.get("data").unwrap().is_none());
    assert!(!v.mountpoint.exists());
    assert_eq!(
        store.remove("data").unwrap_err().to_string(),
        "get data: no such volume"
    );
}

#[test]
fn resolve_creates_and_fills_from_the_image_once() {
    let t = tempfile::tempdir().unwrap();
    // A one-layer "image" with /srv holding a file, a subdir and links.
    let layer = t.path().join("layer");
    std::fs::create_dir_all(layer.join("srv/sub")).unwrap();
    std::fs::write(layer.join("srv/a.txt"), "from image").unwrap();
    std::fs::set_permissions(
        layer.join("srv/sub"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", layer.join("srv/abs-link")).unwrap();
    std::os::unix::fs::symlink("../../etc", layer.join("srv/escape")).unwrap();
    std::fs::create_dir_all(layer.join("etc")).unwrap();
    std::os::unix::fs::symlink("/srv", layer.join("etc/jump")).unwrap();

    let store = VolumeStore::new(&t.path().join("root"));
    let mut opts = RunOptions {
        mounts: vec![
            MountSpec::parse_volume("v1:/srv").unwrap(),
            MountSpec::parse_volume("/nothing/here").unwrap(),
            MountSpec::parse_volume("v3:/srv:nocopy").unwrap(),
        ],
        ..Default::default()
    };
    let created = store
        .resolve(&mut opts, std::slice::from_ref(&layer))
        .unwrap();
    assert_eq!(created.len(), 3);
    let v1 = store.get("v1").unwrap().unwrap();
    assert_eq!(
        opts.mounts[0],
        MountSpec::Bind {
            source: v1.mountpoint.clone(),
            target: "/srv".into(),
            read_only: false
        }
    );
    let d = &v1.mountpoint;
    assert_eq!(
        std::fs::read_to_string(d.join("a.txt")).unwrap(),
        "from image"
    );
    assert_eq!(
        std::fs::metadata(d.join("sub")).unwrap().mode() & 0o7777,
        0o750
    );
    assert_eq!(
        std::fs::read_link(d.join("abs-link")).unwrap(),
        Path::new("/etc/passwd"),
        "symlinks are copied, not followed"
    );
    assert!(
        std::fs::symlink_metadata(d.join("escape"))
            .unwrap()
            .is_symlink()
    );
    assert!(
        matches!(&opts.mounts[1], MountSpec::Bind { source, .. } if std::fs::read_dir(source).unwrap().next().is_none()),
        "an anonymous volume, empty: nothing in the image there"
    );
    let v3 = store.get("v3").unwrap().unwrap();
    assert!(
        std::fs::read_dir(&v3.mountpoint).unwrap().next().is_none(),
        "nocopy"
    );

    // Not empty any more: a second use does not copy again.
    std::fs::remove_file(d.join("a.txt")).unwrap();
    let mut again = RunOptions {
        mounts: vec![MountSpec::parse_volume("v1:/srv").unwrap()],
        ..Default::default()
    };
    assert!(
        store
            .resolve(&mut again, std::slice::from_ref(&layer))
            .unwrap()
            .is_empty()
    );
    assert!(!d.join("a.txt").exists());

    // A path through a symlink out of the image copies nothing.
    let mut jump = RunOptions {
        mounts: vec![MountSpec::parse_volume("v4:/etc/jump").unwrap()],
        ..Default::default()
    };
    store.resolve(&mut jump, &[layer]).unwrap();
    let v4 = store.get("v4").unwrap().unwrap();
    assert!(std::fs::read_dir(&v4.mountpoint).unwrap().next().is_none());
}

#[test]
fn copy_never_follows_what_is_already_in_the_destination() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst, outside) = (t.path().join("s"), t.path().join("d"), t.path().join("o"));
    for d in [&src, &dst, &outside] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(src.join("f"), "new").unwrap();
    std::fs::write(outside.join("f"), "keep").unwrap();
    // A planted link where the copy will write.
    std::os::unix::fs::symlink(outside.join("f"), dst.join("f")).unwrap();
    let open = |p: &Path| {
        crate::sys::own_fd(
            nix::fcntl::open(
                p,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
                nix::sys::stat::Mode::empty(),
            )
            .unwrap(),
        )
    };
    let (s, d) = (open(&src), open(&dst));
    use crate::fsutil::AsFdRef;
    assert_eq!(
        copy::copy_dir(s.as_fd_ref(), d.as_fd_ref()),
        Err(nix::errno::Errno::EEXIST)
    );
    assert_eq!(std::fs::read_to_string(outside.join("f")).unwrap(), "keep");
}

#[test]
fn copy_up_sees_the_merged_layers() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP copy_up_sees_the_merged_layers: mounting an overlay needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (base, top) = (t.path().join("base"), t.path().join("top"));
    std::fs::create_dir_all(base.join("srv")).unwrap();
    std::fs::create_dir_all(top.join("srv")).unwrap();
    std::fs::write(base.join("srv/a"), "a").unwrap();
    std::fs::write(base.join("srv/gone"), "deleted above").unwrap();
    std::fs::write(base.join("srv/b"), "old").unwrap();
    std::fs::write(top.join("srv/b"), "new").unwrap();
    // An overlay whiteout: a 0:0 character device.
    nix::sys::stat::mknod(
        &top.join("srv/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    let store = VolumeStore::new(&t.path().join("root"));
    let mut opts = RunOptions {
        mounts: vec![MountSpec::parse_volume("merged:/srv").unwrap()],
        ..Default::default()
    };
    store.resolve(&mut opts, &[top, base]).unwrap();
    let v = store.get("merged").unwrap().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&v.mountpoint)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        std::fs::read_to_string(v.mountpoint.join("b")).unwrap(),
        "new"
    );
    assert!(
        !v.mountpoint.parent().unwrap().join("image").exists(),
        "scratch removed"
    );
    // The overlay lived in the copying thread's own mount namespace.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(t.path().to_str().unwrap()), "{mounts}");
}
