//! import → tag → push → rmi → pull → images, multi-layer images and mounts.

use std::sync::Arc;

use bay_client::progress::{Progress, ProgressMode};
use bay_client::reference::ImageRef;
use bay_client::registry::{ClientOptions, RegistryClient};

use crate::common::*;

fn digest_from_push(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.contains(": digest: "))
        .unwrap_or_else(|| panic!("{out}"));
    line.split_whitespace().nth(2).unwrap().to_owned()
}

fn push_pull(reg: &Registry) {
    eprintln!("== push/pull against {}", reg.name);
    let bay = Bay::new();
    let Some(rootfs) = busybox_rootfs(bay.root.path()) else {
        return;
    };
    let id = bay
        .ok(&[
            "import",
            "-c",
            r#"CMD ["sh"]"#,
            rootfs.to_str().unwrap(),
            "busybox:1",
        ])
        .trim()
        .to_owned();
    let remote = format!("{}/team/app:v1", reg.addr);
    bay.ok(&["tag", "busybox:1", &remote]);
    let out = bay.ok(&["push", &remote]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/team/app]",
            reg.addr
        )),
        "{out}"
    );
    let digest = digest_from_push(&out);
    // Pushing again: every blob is already there.
    bay.ok(&["push", &remote]);

    let out = bay.ok(&["rmi", &remote, "busybox:1"]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(bay.ok(&["images", "-q"]).trim(), "");
    assert!(
        bay.store().read_index().unwrap().blob_repos.is_empty(),
        "mount hints for deleted blobs are dropped"
    );

    let out = bay.ok(&["pull", &remote]);
    assert!(out.contains("v1: Pulling from team/app"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {remote}")),
        "{out}"
    );
    assert_eq!(out.lines().last().unwrap(), remote);
    let images = bay.ok(&["images", "--digests"]);
    let row = images.lines().nth(1).unwrap();
    for part in [
        format!("{}/team/app", reg.addr),
        "v1".into(),
        digest.clone(),
        id[7..19].to_owned(),
    ] {
        assert!(row.contains(&part), "{row} lacks {part}");
    }
    assert_eq!(bay.ok(&["inspect", "-f", "{{.Id}}", &remote]).trim(), id);
    let out = bay.ok(&["pull", &remote]);
    assert!(out.contains("Status: Image is up to date"), "{out}");
    assert_eq!(bay.ok(&["pull", "-q", &remote]).trim(), remote);

    let e = bay.fails(&["pull", &format!("{}/team/app:v2", reg.addr)], 1);
    assert!(e.contains("manifest unknown: no tag v2 in team/app"), "{e}");
    let e = bay.fails(&["pull", &format!("{}/team/nothing:v1", reg.addr)], 1);
    assert!(e.contains("team/nothing"), "{e}");

    // Pull by digest into an empty store.
    let fresh = Bay::new();
    let by_digest = format!("{}/team/app@{digest}", reg.addr);
    let out = fresh.ok(&["pull", &by_digest]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {by_digest}")),
        "{out}"
    );
    assert_eq!(
        fresh.ok(&["inspect", "-f", "{{.Id}}", &by_digest]).trim(),
        id
    );
    let images = fresh.ok(&["images"]);
    assert!(
        images.lines().nth(1).unwrap().contains("<none>"),
        "{images}"
    );

    // --all-tags both ways.
    let repo = format!("{}/team/all", reg.addr);
    bay.ok(&["tag", &remote, &format!("{repo}:a")]);
    bay.ok(&["tag", &remote, &format!("{repo}:b")]);
    let out = bay.ok(&["push", "--all-tags", &repo]);
    assert!(
        out.contains("a: digest: ") && out.contains("b: digest: "),
        "{out}"
    );
    let e = bay.fails(&["push", "-a", &format!("{repo}:a")], 1);
    assert!(e.contains("tag can't be used with --all-tags"), "{e}");
    let fresh = Bay::new();
    fresh.ok(&["pull", "-a", &repo]);
    let tags = fresh.ok(&["images", "--format", "{{.Tag}}", &repo]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort_unstable();
    assert_eq!(tags, ["a", "b"]);
}

#[test]
fn push_pull_distribution() {
    if let Some(r) = distribution() {
        push_pull(&r);
    }
}

#[test]
fn push_pull_bay_registry() {
    if let Some(r) = bay_registry() {
        push_pull(&r);
    }
}

fn multi_layer_and_mount(reg: &Registry) {
    eprintln!("== multi-layer/mount against {}", reg.name);
    let bay = Bay::new();
    let layout = bay.root.path().join("layout");
    let layers: Vec<Vec<u8>> = (0..3)
        .map(|i| random_layer_tar(&format!("f{i}"), 300_000 + i * 1000, i as u64))
        .collect();
    let md = oci_layout(&layout, &layers, "1");
    let tarball = bay.root.path().join("layout.tar");
    tar_dir(&layout, &tarball);
    let out = bay.ok(&["load", "-i", tarball.to_str().unwrap()]);
    assert!(out.starts_with("Loaded image ID: sha256:"), "{out}");
    let id = out.trim().rsplit(' ').next().unwrap().to_owned();
    let a = format!("{}/a/multi:1", reg.addr);
    let b = format!("{}/b/multi:1", reg.addr);
    bay.ok(&["tag", &id, &a]);
    bay.ok(&["tag", &id, &b]);
    let out = bay.ok(&["push", &a]);
    assert_eq!(
        digest_from_push(&out),
        md.to_string(),
        "the loaded OCI manifest is pushed unchanged"
    );

    // The second repository gets every blob by cross-repo mount.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let client = Arc::new(
            RegistryClient::connect(&reg.addr, ClientOptions::default())
                .await
                .unwrap(),
        );
        let progress = Arc::new(Progress::new(
            ProgressMode::Quiet,
            Box::new(std::io::sink()),
        ));
        bay_client::registry::push::push(
            &bay.store(),
            client,
            &ImageRef::parse(&b).unwrap(),
            &bay_client::trust::NoTrust,
            &Default::default(),
            progress,
        )
        .await
        .unwrap()
    });
    assert_eq!(
        (outcome.mounted, outcome.uploaded),
        (4, 0),
        "3 layers + config mounted"
    );

    let fresh = Bay::new();
    fresh.ok(&["pull", &b]);
    assert_eq!(
        fresh
            .ok(&["inspect", "-f", "{{len .RootFS.Layers}}", &b])
            .trim(),
        "3"
    );
    assert_eq!(fresh.ok(&["inspect", "-f", "{{.Id}}", &b]).trim(), id);
    let hist = fresh.ok(&["history", &b]);
    assert_eq!(hist.lines().count(), 4, "{hist}");
    assert!(hist.contains("layer 2"), "{hist}");
}

#[test]
fn multi_layer_and_mount_distribution() {
    if let Some(r) = distribution() {
        multi_layer_and_mount(&r);
    }
}

#[test]
fn multi_layer_and_mount_bay_registry() {
    if let Some(r) = bay_registry() {
        multi_layer_and_mount(&r);
    }
}
