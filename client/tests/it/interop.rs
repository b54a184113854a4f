//! skopeo interop: skopeo pushes, bay pulls; bay pushes, skopeo pulls; and
//! `bay save` archives are readable by skopeo.

use crate::common::*;

fn index_digest(dir: &std::path::Path) -> String {
    let ix: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    ix["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

fn with_skopeo(reg: &Registry) {
    eprintln!("== skopeo interop against {}", reg.name);
    let bay = Bay::new();
    let layout = bay.root.path().join("layout");
    let layers: Vec<Vec<u8>> = (0..2)
        .map(|i| random_layer_tar(&format!("s{i}"), 100_000, 40 + i))
        .collect();
    let md = oci_layout(&layout, &layers, "y");

    // skopeo → registry → bay
    let dest = format!("docker://{}/x:y", reg.addr);
    let o = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:y", layout.display()),
        &dest,
    ]);
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = format!("{}/x:y", reg.addr);
    let out = bay.ok(&["pull", &r]);
    assert!(out.contains(&format!("Digest: {md}")), "{out}");
    assert_eq!(
        bay.ok(&["inspect", "-f", "{{len .RootFS.Layers}}", &r])
            .trim(),
        "2"
    );

    // bay save --format oci → skopeo reads it as an oci-archive, manifest unchanged
    let oci_archive = bay.root.path().join("x-oci.tar");
    bay.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci_archive.to_str().unwrap(),
        &r,
    ]);
    let oci_dir = bay.root.path().join("from-oci-archive");
    let o = skopeo(&[
        "copy",
        &format!("oci-archive:{}:y", oci_archive.display()),
        &format!("oci:{}:z", oci_dir.display()),
    ]);
    assert!(
        o.status.success(),
        "skopeo oci-archive: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(index_digest(&oci_dir), md.to_string());

    // Docker schema-2 media types survive a pull and a push.
    let dk = format!("{}/dk/img:1", reg.addr);
    let o = skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:y", layout.display()),
        &format!("docker://{dk}"),
    ]);
    assert!(
        o.status.success(),
        "skopeo copy v2s2: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    bay.ok(&["pull", &dk]);
    let docker_type = "application/vnd.docker.distribution.manifest.v2+json";
    assert_eq!(
        bay.ok(&["inspect", "-f", "{{.Descriptor.mediaType}}", &dk])
            .trim(),
        docker_type
    );
    let dk2 = format!("{}/dk/copy:1", reg.addr);
    bay.ok(&["tag", &dk, &dk2]);
    bay.ok(&["push", &dk2]);
    let o = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{dk2}"),
    ]);
    assert!(
        o.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let raw: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(raw["mediaType"], docker_type);
    // One image ID now has two manifests (OCI from x:y, Docker from dk/img):
    // re-pushing either repository sends back the manifest it gave us.
    let digest_of = |out: &str| {
        out.lines()
            .find(|l| l.contains(": digest: "))
            .unwrap()
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_owned()
    };
    assert_eq!(digest_of(&bay.ok(&["push", &r])), md.to_string());
    let dk_digest = digest_of(&bay.ok(&["push", &dk]));
    assert_ne!(dk_digest, md.to_string());
    let o = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{dk}"),
    ]);
    assert_eq!(
        oci_types::Digest::sha256_of(&o.stdout).to_string(),
        dk_digest
    );
    // Untagging the Docker names leaves x:y intact and pushable.
    bay.ok(&["rmi", &dk, &dk2]);
    bay.ok(&["push", &r]);

    // Saved as OCI, a Docker-typed image is converted so OCI readers accept it.
    let dk_archive = bay.root.path().join("dk-oci.tar");
    let fresh = Bay::new();
    fresh.ok(&["pull", &dk2]);
    fresh.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        dk_archive.to_str().unwrap(),
        &dk2,
    ]);
    let dk_dir = bay.root.path().join("from-dk-archive");
    let o = skopeo(&[
        "copy",
        &format!("oci-archive:{}:1", dk_archive.display()),
        &format!("oci:{}:z", dk_dir.display()),
    ]);
    assert!(
        o.status.success(),
        "skopeo oci-archive of a converted image: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // bay save → skopeo reads the docker-archive
    let archive = bay.root.path().join("x.tar");
    bay.ok(&["save", "-o", archive.to_str().unwrap(), &r]);
    let out_dir = bay.root.path().join("from-archive");
    let o = skopeo(&[
        "copy",
        &format!("docker-archive:{}", archive.display()),
        &format!("oci:{}:z", out_dir.display()),
    ]);
    assert!(
        o.status.success(),
        "skopeo docker-archive: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let blob = |d: &str| std::fs::read(out_dir.join("blobs/sha256").join(&d[7..])).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&blob(&index_digest(&out_dir))).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&blob(m["config"]["digest"].as_str().unwrap())).unwrap();
    // skopeo re-serialises the config when converting to OCI; the layers must be ours.
    let ours = bay.ok(&["inspect", "-f", "{{json .RootFS.Layers}}", &r]);
    let ours: serde_json::Value = serde_json::from_str(&ours).unwrap();
    assert_eq!(
        cfg["rootfs"]["diff_ids"], ours,
        "same layers through the archive"
    );

    // bay → registry → skopeo
    let Some(rootfs) = busybox_rootfs(bay.root.path()) else {
        return;
    };
    bay.ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
    let pushed = format!("{}/r/bb:1", reg.addr);
    bay.ok(&["tag", "bb:1", &pushed]);
    let out = bay.ok(&["push", &pushed]);
    let digest = out
        .lines()
        .find(|l| l.contains(": digest: "))
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_owned();
    let got = bay.root.path().join("skopeo-pulled");
    let o = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{pushed}"),
        &format!("oci:{}:t", got.display()),
    ]);
    assert!(
        o.status.success(),
        "skopeo pull: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(index_digest(&got), digest);
}

#[test]
fn skopeo_interop_distribution() {
    if !have_skopeo() {
        return;
    }
    if let Some(r) = distribution() {
        with_skopeo(&r);
    }
}

#[test]
fn skopeo_interop_bay_registry() {
    if !have_skopeo() {
        return;
    }
    if let Some(r) = bay_registry() {
        with_skopeo(&r);
    }
}

fn multi_arch(reg: &Registry) {
    eprintln!("== multi-arch index against {}", reg.name);
    let bay = Bay::new();
    let layout = bay.root.path().join("multi");
    let host = bay_client::image::Platform::host().architecture;
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let (index, configs) = oci_index_layout(&layout, &[other, &host], "m");
    let o = skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:m", layout.display()),
        &format!("docker://{}/multi/app:1", reg.addr),
    ]);
    assert!(
        o.status.success(),
        "skopeo copy --all: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = format!("{}/multi/app:1", reg.addr);
    let out = bay.ok(&["pull", &r]);
    assert!(
        out.contains(&format!("Digest: {index}")),
        "the index digest is reported: {out}"
    );
    assert_eq!(
        bay.ok(&["inspect", "-f", "{{.Id}}", &r]).trim(),
        configs[1].to_string(),
        "host platform chosen"
    );
    assert_eq!(
        bay.ok(&["inspect", "-f", "{{.Architecture}}", &r]).trim(),
        host
    );
    let fresh = Bay::new();
    fresh.ok(&["pull", "--platform", &format!("linux/{other}"), &r]);
    assert_eq!(
        fresh.ok(&["inspect", "-f", "{{.Id}}", &r]).trim(),
        configs[0].to_string()
    );
    let e = fresh.fails(&["pull", "--platform", "linux/s390x", &r], 1);
    assert!(e.contains("no image for platform linux/s390x"), "{e}");
}

#[test]
fn multi_arch_distribution() {
    if !have_skopeo() {
        return;
    }
    if let Some(r) = distribution() {
        multi_arch(&r);
    }
}

#[test]
fn multi_arch_bay_registry() {
    if !have_skopeo() {
        return;
    }
    if let Some(r) = bay_registry() {
        multi_arch(&r);
    }
}
