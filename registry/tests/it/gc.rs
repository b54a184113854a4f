//! Online garbage collection: unreferenced links and orphaned blobs go,
//! everything a manifest uses stays, and a dry run changes nothing.

use std::time::Duration;

use bay_registry::gc;
use bay_registry::storage::BlobStore;
use oci_types::{Digest, MediaType};
use reqwest::{Client, StatusCode};

use crate::support;

async fn push(http: &Client, url: &str, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::sha256_of(data);
    let r = http
        .post(format!("{url}/v2/{repo}/blobs/uploads/?digest={d}"))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    d
}

async fn status(http: &Client, url: &str, repo: &str, d: &Digest) -> StatusCode {
    http.head(format!("{url}/v2/{repo}/blobs/{d}"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collects_only_what_no_manifest_uses() {
    let reg = support::spawn().await;
    let http = Client::new();
    let u = &reg.url;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"shared layer bytes".repeat(100);
    let cd = push(&http, u, "gc/a", config).await;
    let ld = push(&http, u, "gc/a", &layer).await;
    let m = serde_json::json!({"schemaVersion":2,"mediaType":MediaType::OCI_MANIFEST,
        "config":{"mediaType":MediaType::OCI_CONFIG,"digest":cd.to_string(),"size":config.len()},
        "layers":[{"mediaType":MediaType::OCI_LAYER_GZIP,"digest":ld.to_string(),"size":layer.len()}]});
    let r = http
        .put(format!("{u}/v2/gc/a/manifests/v1"))
        .header("content-type", MediaType::OCI_MANIFEST)
        .json(&m)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // The same layer pushed to b, but no manifest in b uses it.
    push(&http, u, "gc/b", &layer).await;
    // A blob nobody uses at all.
    let junk = push(&http, u, "gc/a", b"junk that no manifest references").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let meta = bay_registry::admin::open(&reg.root).await.unwrap();
    let blobs = BlobStore::local(&reg.root).unwrap();
    let opts = |dry_run| gc::Options {
        grace: Duration::ZERO,
        dry_run,
    };

    let dry = gc::run(&meta, &blobs, opts(true)).await.unwrap();
    assert_eq!(dry.links.len(), 2, "{dry:?}");
    assert_eq!(
        dry.blobs.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        vec![junk.clone()]
    );
    assert_eq!(
        status(&http, u, "gc/a", &junk).await,
        StatusCode::OK,
        "a dry run deletes nothing"
    );
    assert_eq!(status(&http, u, "gc/b", &ld).await, StatusCode::OK);

    // A grace period protects recent pushes.
    let young = gc::run(
        &meta,
        &blobs,
        gc::Options {
            grace: Duration::from_secs(3600),
            dry_run: false,
        },
    )
    .await
    .unwrap();
    assert!(young.links.is_empty() && young.blobs.is_empty());

    let done = gc::run(&meta, &blobs, opts(false)).await.unwrap();
    assert_eq!(done.blobs.len(), 1);
    assert_eq!(status(&http, u, "gc/a", &junk).await, StatusCode::NOT_FOUND);
    assert!(
        !reg.root
            .join(format!("blobs/sha256/{}/{}", &junk.hex()[..2], junk.hex()))
            .exists(),
        "bytes removed"
    );
    assert_eq!(
        status(&http, u, "gc/b", &ld).await,
        StatusCode::NOT_FOUND,
        "unused link dropped"
    );
    // What the manifest uses is intact.
    assert_eq!(status(&http, u, "gc/a", &ld).await, StatusCode::OK);
    let r = http
        .get(format!("{u}/v2/gc/a/blobs/{ld}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), layer);
    let r = http
        .get(format!("{u}/v2/gc/a/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The junk can be pushed again after collection.
    push(&http, u, "gc/a", b"junk that no manifest references").await;
    assert_eq!(status(&http, u, "gc/a", &junk).await, StatusCode::OK);

    // After the manifest is deleted, its blobs go on the next run.
    let md = Digest::sha256_of(&serde_json::to_vec(&m).unwrap());
    let r = http
        .delete(format!("{u}/v2/gc/a/manifests/{md}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = gc::run(&meta, &blobs, opts(false)).await.unwrap();
    assert!(after.blobs.iter().any(|(d, _)| *d == ld), "{after:?}");
}
