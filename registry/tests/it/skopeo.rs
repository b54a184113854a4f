//! Round trips with the real skopeo: `oci:` → `docker://bay` → `oci:`,
//! comparing manifest digests and blobs.

use crate::support::{self, have, layout_digest, oci_layout, tmp};

async fn skopeo(args: &[&str]) {
    let out = tokio::process::Command::new("skopeo")
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn round_trip(layers: usize) {
    if !have("skopeo") {
        eprintln!("SKIP: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let reg = support::spawn().await;
    let (_a, src) = tmp();
    let (_b, back) = tmp();
    let pushed = oci_layout(&src, "v1", layers);
    let repo = format!("interop/img{layers}");
    let dest = format!("docker://{}/{repo}:v1", reg.host);
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &dest,
    ])
    .await;
    // The registry serves exactly the pushed manifest.
    let resp = reqwest::Client::new()
        .get(format!("{}/v2/{repo}/manifests/v1", reg.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["docker-content-digest"].to_str().unwrap(),
        pushed.to_string()
    );
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &dest,
        &format!("oci:{}:v1", back.display()),
    ])
    .await;
    assert_eq!(
        layout_digest(&back, "v1"),
        pushed,
        "digest changed in the round trip"
    );
    // Every blob came back byte-identical.
    for entry in std::fs::read_dir(src.join("blobs/sha256")).unwrap() {
        let name = entry.unwrap().file_name();
        let a = std::fs::read(src.join("blobs/sha256").join(&name)).unwrap();
        let b = std::fs::read(back.join("blobs/sha256").join(&name)).unwrap();
        assert_eq!(a, b, "blob {name:?} differs");
    }
    // A second repository reuses the blobs (cross-repo mount or dedup).
    let dest2 = format!("docker://{}/interop/copy{layers}:v1", reg.host);
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &dest,
        &dest2,
    ])
    .await;
    let out = tokio::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &dest2])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(oci_types::Digest::sha256_of(&out.stdout), pushed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trip_one_layer() {
    round_trip(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_round_trip_eight_layers() {
    round_trip(8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_docker_schema2_round_trip() {
    if !have("skopeo") {
        eprintln!("SKIP: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let reg = support::spawn().await;
    let (_a, src) = tmp();
    let (_b, back) = tmp();
    oci_layout(&src, "v1", 3);
    let dest = format!("docker://{}/interop/v2s2:v1", reg.host);
    skopeo(&[
        "copy",
        "-q",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &dest,
    ])
    .await;
    let resp = reqwest::Client::new()
        .get(format!("{}/v2/interop/v2s2/manifests/v1", reg.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        oci_types::MediaType::DOCKER_MANIFEST
    );
    let served = resp.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = resp.bytes().await.unwrap();
    assert_eq!(oci_types::Digest::sha256_of(&body).to_string(), served);
    skopeo(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        &dest,
        &format!("oci:{}:v1", back.display()),
    ])
    .await;
    assert!(back.join("index.json").exists());
}
