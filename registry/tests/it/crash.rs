//! SIGKILL in the middle of a chunked upload, a monolithic upload and a
//! manifest PUT; after a restart nothing partial is visible, the upload
//! resumes, and everything acknowledged is intact.

use std::time::Duration;

use bytes::Bytes;
use oci_types::{Digest, MediaType};
use reqwest::{Client, StatusCode};

use crate::support::{ChildRegistry, tmp};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Start a request whose body sends `first` and then stalls until dropped.
fn stalled_request(
    rb: reqwest::RequestBuilder,
    first: Vec<u8>,
) -> (
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
    tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let body = reqwest::Body::wrap_stream(stream);
    let task = tokio::spawn(rb.body(body).send());
    let txc = tx.clone();
    tokio::spawn(async move {
        let _ = txc.send(Ok(Bytes::from(first))).await;
    });
    (task, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_and_manifest_put_loses_nothing_acknowledged() {
    let (_guard, root) = tmp();
    let http = Client::new();
    let reg = ChildRegistry::start(&root);
    let url = reg.url.clone();

    // 1. Acknowledged before the crash: a config blob, a layer, a manifest.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer = pattern(3 * 1024 * 1024 + 17, 1);
    for blob in [&config, &layer] {
        let d = Digest::sha256_of(blob);
        let r = http
            .post(format!("{url}/v2/crash/app/blobs/uploads/?digest={d}"))
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MediaType::OCI_MANIFEST,
        "config": {"mediaType": MediaType::OCI_CONFIG, "digest": Digest::sha256_of(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": MediaType::OCI_LAYER_GZIP, "digest": Digest::sha256_of(&layer).to_string(), "size": layer.len()}],
    }))
    .unwrap();
    let r = http
        .put(format!("{url}/v2/crash/app/manifests/v1"))
        .header("content-type", MediaType::OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // 2. A chunked upload: chunk 1 acknowledged, chunk 2 in flight at the kill.
    let big = pattern(4 * 1024 * 1024, 7);
    let big_digest = Digest::sha256_of(&big);
    let r = http
        .post(format!("{url}/v2/crash/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let half = big.len() / 2;
    let r = http
        .patch(format!("{url}{loc}"))
        .header("content-range", format!("0-{}", half - 1))
        .header("content-type", "application/octet-stream")
        .body(big[..half].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (chunk2, _keep_chunk2) = stalled_request(
        http.patch(format!("{url}{loc}"))
            .header("content-range", format!("{half}-{}", big.len() - 1))
            .header("content-type", "application/octet-stream"),
        big[half..half + 1024 * 1024].to_vec(),
    );

    // 3. A monolithic upload in flight.
    let mono = pattern(2 * 1024 * 1024, 9);
    let mono_digest = Digest::sha256_of(&mono);
    let (mono_req, _keep_mono) = stalled_request(
        http.post(format!(
            "{url}/v2/crash/app/blobs/uploads/?digest={mono_digest}"
        )),
        mono[..1024 * 1024].to_vec(),
    );

    // 4. A manifest PUT in flight (tag v2), half its bytes sent.
    let (put_req, _keep_put) = stalled_request(
        http.put(format!("{url}/v2/crash/app/manifests/v2"))
            .header("content-type", MediaType::OCI_MANIFEST),
        manifest[..manifest.len() / 2].to_vec(),
    );

    // Let the server read what was sent, then kill it without warning.
    tokio::time::sleep(Duration::from_millis(500)).await;
    reg.kill9();
    for t in [chunk2, mono_req, put_req] {
        let _ = t.await.unwrap();
    }

    // Restart on the same data root.
    let reg = ChildRegistry::start(&root);
    let url = reg.url.clone();

    // Nothing partial is visible.
    let r = http
        .head(format!("{url}/v2/crash/app/blobs/{mono_digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "half-uploaded monolithic blob is visible"
    );
    let r = http
        .head(format!("{url}/v2/crash/app/blobs/{big_digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "unfinished chunked blob is visible"
    );
    let r = http
        .get(format!("{url}/v2/crash/app/manifests/v2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "half-PUT manifest tag is visible"
    );
    let tags: serde_json::Value = http
        .get(format!("{url}/v2/crash/app/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));

    // Everything acknowledged is intact.
    let r = http
        .get(format!("{url}/v2/crash/app/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().to_vec(), manifest);
    let r = http
        .get(format!(
            "{url}/v2/crash/app/blobs/{}",
            Digest::sha256_of(&layer)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().to_vec(), layer);

    // The chunked upload resumes from its acknowledged (or received) range.
    let r = http.get(format!("{url}{loc}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let range = r.headers()["range"].to_str().unwrap().to_owned();
    let end: usize = range.split('-').nth(1).unwrap().parse().unwrap();
    let have = end + 1;
    assert!(
        have >= half && have <= big.len(),
        "range {range} after restart"
    );
    let r = http
        .patch(format!("{url}{loc}"))
        .header("content-range", format!("{have}-{}", big.len() - 1))
        .body(big[have..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = http
        .put(format!("{url}{loc}?digest={big_digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = http
        .get(format!("{url}/v2/crash/app/blobs/{big_digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), big);

    // The interrupted monolithic upload can simply be restarted.
    let r = http
        .post(format!(
            "{url}/v2/crash/app/blobs/uploads/?digest={mono_digest}"
        ))
        .body(mono.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // And so can the manifest PUT.
    let r = http
        .put(format!("{url}/v2/crash/app/manifests/v2"))
        .header("content-type", MediaType::OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}
