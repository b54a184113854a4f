//! `--tls-cert/--tls-key`: the registry speaks HTTPS (rustls) and a client
//! trusting the certificate gets the API; plain HTTP to the TLS port fails.

use bay_registry::Registry;
use bay_registry::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut cfg = Config::default();
    cfg.storage.root = dir.path().join("data");
    cfg.server.tls_cert = Some(cert_path);
    cfg.server.tls_key = Some(key_path);
    let reg = Registry::open(cfg).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { reg.serve(listener, std::future::pending()).await.unwrap() });

    let ca = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let r = https
        .get(format!("https://localhost:{port}/v2/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    // The challenge realm (once auth is on) and everything else use https.
    let plain = reqwest::Client::new()
        .get(format!("http://localhost:{port}/v2/"))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // An untrusted client refuses the self-signed certificate.
    assert!(
        reqwest::Client::new()
            .get(format!("https://localhost:{port}/v2/"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn bad_tls_files_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("k.pem"), "not a key").unwrap();
    let mut cfg = Config::default();
    cfg.storage.root = dir.path().join("data");
    cfg.server.tls_cert = Some(dir.path().join("c.pem"));
    cfg.server.tls_key = Some(dir.path().join("k.pem"));
    let reg = Registry::open(cfg).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = reg
        .serve(listener, std::future::pending())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
}
