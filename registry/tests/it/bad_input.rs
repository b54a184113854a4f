//! Bad input gets the spec's error JSON, never a 500 or a panic, and loses
//! nothing: the registry keeps serving afterwards.

use std::io::{Read, Write};

use oci_types::{Digest, MediaType};
use reqwest::{Client, StatusCode};

use crate::support;

const CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

/// The first error code of a spec error body.
fn code_of(status: u16, body: &[u8]) -> String {
    assert!(
        status < 500,
        "got {status}: {}",
        String::from_utf8_lossy(body)
    );
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "status {status}: body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        )
    });
    let code = v["errors"][0]["code"]
        .as_str()
        .expect("errors[0].code")
        .to_owned();
    assert!(CODES.contains(&code.as_str()), "{code} is not a spec code");
    code
}

/// Send a raw HTTP/1.1 request (paths are not normalised, unlike URL crates).
fn raw(host: &str, request_line: &str, extra_headers: &str) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "{request_line} HTTP/1.1\r\nHost: {host}\r\n{extra_headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = match text.find("\r\n\r\n") {
        Some(i) => out[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_and_traversal() {
    let reg = support::spawn().await;
    let host = reg.host.clone();
    let long = "a".repeat(256);
    let cases = [
        ("GET /v2/Upper/Case/tags/list", "NAME_INVALID"),
        ("GET /v2/a/../b/manifests/latest", "NAME_INVALID"),
        ("GET /v2/../../etc/passwd/manifests/latest", "NAME_INVALID"),
        ("GET /v2/%2e%2e/%2e%2e/etc/manifests/latest", "NAME_INVALID"),
        (
            "GET /v2/a/%2e%2e/b/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "NAME_INVALID",
        ),
        ("GET /v2/a%2f..%2fb/tags/list", "NAME_INVALID"),
        ("GET /v2/a//b/tags/list", "NAME_INVALID"),
        (
            "GET /v2/a/blobs/sha256:..%2f..%2fregistry.db",
            "DIGEST_INVALID",
        ),
    ];
    let long_case = format!("GET /v2/{long}/tags/list");
    for (line, want) in cases
        .iter()
        .copied()
        .chain([(long_case.as_str(), "NAME_INVALID")])
    {
        let h = host.clone();
        let l = line.to_owned();
        let (status, body) = tokio::task::spawn_blocking(move || raw(&h, &l, ""))
            .await
            .unwrap();
        assert_eq!(status, 400, "{line}");
        assert_eq!(code_of(status, &body), want, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_digests_json_and_sizes() {
    let reg = support::spawn().await;
    let http = Client::new();
    let u = &reg.url;
    for d in [
        "sha256:xyz",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    ] {
        let r = http
            .get(format!("{u}/v2/a/blobs/{d}"))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        assert_eq!(s, 400, "{d}");
        assert_eq!(code_of(s, &r.bytes().await.unwrap()), "DIGEST_INVALID");
        let r = http
            .get(format!("{u}/v2/a/manifests/{d}"))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        assert_eq!(code_of(s, &r.bytes().await.unwrap()), "DIGEST_INVALID");
        let r = http
            .post(format!("{u}/v2/a/blobs/uploads/?digest={d}"))
            .body("x")
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        assert_eq!(code_of(s, &r.bytes().await.unwrap()), "DIGEST_INVALID");
    }
    // A monolithic upload whose digest does not match its bytes.
    let wrong = Digest::sha256_of(b"something else");
    let r = http
        .post(format!("{u}/v2/a/blobs/uploads/?digest={wrong}"))
        .body("data")
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_eq!(code_of(s, &r.bytes().await.unwrap()), "DIGEST_INVALID");
    let r = http
        .head(format!("{u}/v2/a/blobs/{wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Invalid JSON, schema 1, and a wrong-shaped manifest.
    for body in [
        &b"{not json"[..],
        br#"{"schemaVersion":1,"fsLayers":[]}"#,
        br#"{"schemaVersion":2,"config":"x"}"#,
        b"\xff\xfe",
    ] {
        let r = http
            .put(format!("{u}/v2/a/manifests/v1"))
            .header("content-type", MediaType::OCI_MANIFEST)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        assert_eq!(s, 400);
        assert_eq!(code_of(s, &r.bytes().await.unwrap()), "MANIFEST_INVALID");
    }
    // A 5 MiB manifest.
    let big = format!(
        r#"{{"schemaVersion":2,"annotations":{{"x":"{}"}}}}"#,
        "a".repeat(5 * 1024 * 1024)
    );
    let r = http
        .put(format!("{u}/v2/a/manifests/big"))
        .header("content-type", MediaType::OCI_MANIFEST)
        .body(big)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_eq!(s, 413);
    code_of(s, &r.bytes().await.unwrap());
    // The same without a Content-Length (chunked body) is cut at the limit.
    let chunks =
        futures::stream::iter((0..6).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 1024 * 1024])));
    let r = http
        .put(format!("{u}/v2/a/manifests/big"))
        .header("content-type", MediaType::OCI_MANIFEST)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);

    // A manifest referencing a blob that is not there.
    let m = serde_json::json!({"schemaVersion":2,"mediaType":MediaType::OCI_MANIFEST,
        "config":{"mediaType":MediaType::OCI_CONFIG,"digest":wrong.to_string(),"size":3},"layers":[]});
    let r = http
        .put(format!("{u}/v2/a/manifests/v1"))
        .header("content-type", MediaType::OCI_MANIFEST)
        .json(&m)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_eq!(
        code_of(s, &r.bytes().await.unwrap()),
        "MANIFEST_BLOB_UNKNOWN"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_content_range_and_huge_header() {
    let reg = support::spawn().await;
    let http = Client::new();
    let u = &reg.url;
    let r = http
        .post(format!("{u}/v2/a/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    for cr in ["bytes=abc", "5-2", "10-19", "-", "0-1-2"] {
        let r = http
            .patch(format!("{u}{loc}"))
            .header("content-range", cr)
            .body(vec![0u8; 10])
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        assert_eq!(s, 416, "{cr}");
        assert!(r.headers().contains_key("range"));
        code_of(s, &r.bytes().await.unwrap());
    }
    // The upload is untouched by the refused chunks.
    let r = http.get(format!("{u}{loc}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], "0-0");

    // A 1 MiB header gets a JSON error, and the server keeps serving.
    let h = reg.host.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        raw(
            &h,
            "GET /v2/",
            &format!("X-Huge: {}\r\n", "a".repeat(1024 * 1024)),
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 431);
    assert_eq!(code_of(status, &body), "SIZE_INVALID");
    let r = http.get(format!("{u}/v2/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_size_limit_and_upload_lifetime() {
    let reg = support::spawn_with(|c| {
        c.limits.blob_max_bytes = 4096;
        c.limits.upload_ttl_secs = 2;
    })
    .await;
    let http = Client::new();
    let u = &reg.url;
    // Over the blob limit: 413, declared or streamed, and nothing is visible.
    let big = vec![7u8; 8192];
    let d = Digest::sha256_of(&big);
    let r = http
        .post(format!("{u}/v2/a/blobs/uploads/?digest={d}"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_eq!(s, 413);
    assert_eq!(code_of(s, &r.bytes().await.unwrap()), "SIZE_INVALID");
    let r = http
        .post(format!("{u}/v2/a/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let chunks = futures::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![1u8; 2048])));
    let r = http
        .patch(format!("{u}{loc}"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let r = http
        .head(format!("{u}/v2/a/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The refused chunk left the session as it was.
    let r = http.get(format!("{u}{loc}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], "0-0");

    // An idle session expires after upload_ttl_secs, staged bytes and all.
    let r = http
        .patch(format!("{u}{loc}"))
        .body(vec![1u8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = loc.rsplit('/').next().unwrap().to_owned();
    let staged = reg.root.join("uploads").join(&id);
    assert!(staged.exists());
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let r = http.get(format!("{u}{loc}")).send().await.unwrap();
    let s = r.status().as_u16();
    assert_eq!(s, 404);
    assert_eq!(code_of(s, &r.bytes().await.unwrap()), "BLOB_UPLOAD_UNKNOWN");
    assert!(!staged.exists(), "expired staging file removed");
}
