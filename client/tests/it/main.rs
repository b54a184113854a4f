//! End-to-end tests of the `bay` binary against real registries: CNCF
//! Distribution 2.8.2 (Debian's docker-registry) and, when built, the
//! workspace's bay-registry; plus interop with skopeo. Tests whose tools are
//! missing print `SKIP: …` and pass.

// Fixture helpers outside #[test] fns: a failed setup step should panic the test.
#![allow(clippy::unwrap_used)]

mod auth;
mod common;
mod containers;
mod flows;
mod interop;
mod login;
mod network;
mod resources;
mod resume;
mod run;
mod tls;
mod trust;
mod trust_cli;
mod trust_e2e;
mod volume;

use common::*;

#[test]
fn usage_errors_exit_125_and_failures_exit_1() {
    let bay = Bay::new();
    bay.fails(&["images", "--bogus"], 125);
    let e = bay.fails(&["rmi", "nosuch"], 1);
    assert!(e.contains("No such image: nosuch:latest"), "{e}");
    let e = bay.fails(&["push", "team/app:1"], 1);
    assert!(e.contains("bay has no default registry"), "{e}");
    let e = bay.fails(&["inspect", "nosuch"], 1);
    assert!(e.contains("Error: No such object: nosuch"), "{e}");
    let e = bay.fails(&["tag", "nosuch", "x:1"], 1);
    assert!(e.contains("No such image"), "{e}");
    let e = bay.fails(&["pull", "UPPER/x"], 1);
    assert!(e.contains("must be lowercase"), "{e}");
    // A damaged index is reported, never a panic.
    bay.ok(&["images"]);
    std::fs::write(bay.data_root().join("image/index.json"), b"{not json").unwrap();
    let e = bay.fails(&["images"], 1);
    assert!(e.contains("index") && e.contains("corrupt"), "{e}");
    std::fs::write(
        bay.data_root().join("image/index.json"),
        br#"{"version":1,"repositories":{"x":{"1":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}}"#,
    )
    .unwrap();
    let e = bay.fails(&["inspect", "x:1"], 1);
    assert!(e.contains("No such"), "{e}");
    std::fs::remove_file(bay.data_root().join("image/index.json")).unwrap();
    // A dead registry is retried, then reported.
    let e = bay.fails(&["pull", "127.0.0.1:1/x:1"], 1);
    assert!(e.contains("cannot reach 127.0.0.1:1 after"), "{e}");
}

#[test]
fn concurrent_bay_processes_lose_no_tags() {
    let bay = Bay::new();
    let Some(rootfs) = busybox_rootfs(bay.root.path()) else {
        return;
    };
    bay.ok(&["import", rootfs.to_str().unwrap(), "base:1"]);
    let children: Vec<_> = (0..4)
        .map(|p| {
            let script = (0..15)
                .map(|i| format!("\"$BAY\" tag base:1 p{p}/img:t{i} || exit 1"))
                .collect::<Vec<_>>()
                .join("\n");
            std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .env("BAY", env!("CARGO_BIN_EXE_bay"))
                .env("BAY_DATA_ROOT", bay.data_root())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let ix = bay.store().read_index().unwrap();
    let tags: usize = ix.repositories.values().map(|t| t.len()).sum();
    assert_eq!(tags, 61, "4×15 tags plus base:1");
}

#[test]
fn local_image_commands() {
    let bay = Bay::new();
    let Some(rootfs) = busybox_rootfs(bay.root.path()) else {
        return;
    };
    let id = bay
        .ok(&[
            "import",
            "-c",
            r#"CMD ["sh"]"#,
            "-c",
            "ENV A=1",
            rootfs.to_str().unwrap(),
            "bb:1",
        ])
        .trim()
        .to_owned();
    assert!(id.starts_with("sha256:"), "{id}");
    let short = &id[7..19];
    let images = bay.ok(&["images"]);
    let mut lines = images.lines();
    let header = lines.next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("bb ") && row.contains(" 1 ") && row.contains(short),
        "{row}"
    );
    assert_eq!(bay.ok(&["images", "-q"]).trim(), short);
    assert_eq!(bay.ok(&["images", "-q", "--no-trunc"]).trim(), id);

    bay.ok(&["tag", "bb:1", "bb:2"]);
    bay.ok(&["tag", short, "other/bb"]);
    assert_eq!(bay.ok(&["images", "-q"]).lines().count(), 3);
    assert_eq!(bay.ok(&["images", "-q", "bb"]).lines().count(), 2);
    let names = bay.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            format!("bb:1 {short}"),
            format!("bb:2 {short}"),
            format!("other/bb:latest {short}")
        ]
    );
    assert_eq!(
        bay.ok(&["images", "-q", "--filter", "reference=other/*"])
            .lines()
            .count(),
        1
    );
    assert_eq!(
        bay.ok(&["images", "-q", "--filter", "reference=bb:2"])
            .lines()
            .count(),
        1
    );
    assert_eq!(bay.ok(&["images", "-q", "-f", "dangling=true"]).trim(), "");
    bay.fails(&["images", "--filter", "label=x"], 1);

    assert_eq!(
        bay.ok(&["inspect", "--format", "{{.Os}}", "bb:1"]).trim(),
        "linux"
    );
    assert_eq!(
        bay.ok(&["inspect", "-f", "{{.Config.Cmd}}", "bb:2"]).trim(),
        "[sh]"
    );
    assert_eq!(
        bay.ok(&["image", "inspect", "-f", "{{json .Config.Env}}", "bb:2"])
            .trim(),
        r#"["A=1"]"#
    );
    let layers = bay.ok(&["inspect", "-f", "{{.RootFS.Layers}}", "bb:1"]);
    let diff = oci_types::Digest::sha256_of(&std::fs::read(&rootfs).unwrap());
    assert_eq!(layers.trim(), format!("[{diff}]"));
    let json: serde_json::Value = serde_json::from_str(&bay.ok(&["inspect", "bb:1"])).unwrap();
    assert_eq!(json[0]["Id"], id.as_str());
    assert_eq!(json[0]["RepoTags"].as_array().unwrap().len(), 3);

    let hist = bay.ok(&["history", "bb:1"]);
    assert!(hist.starts_with("IMAGE"), "{hist}");
    assert!(hist.lines().nth(1).unwrap().starts_with(short), "{hist}");

    // By ID with tags in two repositories: refused without -f.
    let e = bay.fails(&["rmi", short], 1);
    assert!(e.contains("must be forced"), "{e}");
    let out = bay.ok(&["rmi", "bb:2"]);
    assert_eq!(out.trim(), "Untagged: bb:2");
    let out = bay.ok(&["rmi", "-f", short]);
    assert!(
        out.contains("Untagged: bb:1") && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    assert_eq!(bay.ok(&["images", "-q"]).trim(), "");
    // Every blob went with the image.
    let blobs = std::fs::read_dir(bay.data_root().join("image/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);

    // prune: dangling only, then -a.
    bay.ok(&["import", rootfs.to_str().unwrap(), "keep:1"]);
    let out = bay.ok(&["image", "prune", "-f"]);
    assert_eq!(out.trim(), "Total reclaimed space: 0B");
    let out = bay.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\nuntagged: keep:1\ndeleted: sha256:"),
        "{out}"
    );
    assert!(!out.contains("Total reclaimed space: 0B"), "{out}");
}

#[test]
fn save_load_round_trip_both_formats() {
    let bay = Bay::new();
    let Some(rootfs) = busybox_rootfs(bay.root.path()) else {
        return;
    };
    let id = bay
        .ok(&["import", rootfs.to_str().unwrap(), "bb:1"])
        .trim()
        .to_owned();
    let manifest = bay
        .ok(&["inspect", "-f", "{{.Descriptor.digest}}", "bb:1"])
        .trim()
        .to_owned();
    let docker_tar = bay.root.path().join("docker.tar");
    let oci_tar = bay.root.path().join("oci.tar");
    bay.ok(&["save", "-o", docker_tar.to_str().unwrap(), "bb:1"]);
    bay.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci_tar.to_str().unwrap(),
        "bb:1",
    ]);
    for (tar, same_manifest) in [(&docker_tar, false), (&oci_tar, true)] {
        let fresh = Bay::new();
        let out = fresh.ok(&["load", "-i", tar.to_str().unwrap()]);
        assert_eq!(out.trim(), "Loaded image: bb:1");
        assert_eq!(fresh.ok(&["inspect", "-f", "{{.Id}}", "bb:1"]).trim(), id);
        let m = fresh.ok(&["inspect", "-f", "{{.Descriptor.digest}}", "bb:1"]);
        assert_eq!(m.trim() == manifest, same_manifest, "{tar:?}");
        // And it saves again.
        fresh.ok(&[
            "save",
            "-o",
            fresh.root.path().join("again.tar").to_str().unwrap(),
            "bb:1",
        ]);
    }
    // stdin/stdout forms: `save > f`, `load < f`, `import - name`.
    let piped = bay.root.path().join("piped.tar");
    let o = bay
        .cmd(&["save", "bb:1"])
        .stdout(std::fs::File::create(&piped).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fresh = Bay::new();
    let o = fresh
        .cmd(&["load"])
        .stdin(std::fs::File::open(&piped).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "Loaded image: bb:1"
    );
    let o = fresh
        .cmd(&["import", "-", "fromstdin:1"])
        .stdin(std::fs::File::open(&rootfs).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        fresh.ok(&["inspect", "-f", "{{.RootFS.Layers}}", "fromstdin:1"]),
        fresh.ok(&["inspect", "-f", "{{.RootFS.Layers}}", "bb:1"])
    );

    // A damaged archive is refused (a flipped byte inside the layer).
    let mut bytes = std::fs::read(&docker_tar).unwrap();
    let pos = bytes.windows(7).position(|w| w == b"busybox").unwrap() + 4096;
    bytes[pos] ^= 0xff;
    let bad = bay.root.path().join("bad.tar");
    std::fs::write(&bad, bytes).unwrap();
    let fresh = Bay::new();
    let e = fresh.fails(&["load", "-i", bad.to_str().unwrap()], 1);
    assert!(e.contains("does not match"), "{e}");
}
