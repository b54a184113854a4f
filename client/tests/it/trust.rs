//! The content-trust hook, exercised with stand-in policies: a pinned digest
//! wins over what the tag points at, a refusal stops the pull, a registry
//! serving other bytes for the pinned digest is caught, and after_push sees
//! the pushed digest; and a hostile registry cannot make us buffer a huge manifest.

use std::sync::{Arc, Mutex};

use bay_client::progress::{Progress, ProgressMode};
use bay_client::reference::ImageRef;
use bay_client::registry::{ClientOptions, RegistryClient, RegistryError};
use bay_client::trust::{Resolution, TrustError, TrustPolicy};
use oci_types::Digest;

use crate::common::*;

#[derive(Default)]
struct Recorder {
    pin: Option<Digest>,
    refuse: bool,
    resolved: Mutex<Vec<String>>,
    signed: Mutex<Vec<(String, Digest)>>,
}

#[async_trait::async_trait]
impl TrustPolicy for Recorder {
    async fn resolve(
        &self,
        _r: &RegistryClient,
        image: &ImageRef,
    ) -> Result<Resolution, TrustError> {
        self.resolved.lock().unwrap().push(image.to_string());
        if self.refuse {
            return Err(TrustError::Refused {
                reference: image.to_string(),
                reason: "image is not signed; see `bay trust` or set DOCKER_CONTENT_TRUST=0".into(),
            });
        }
        Ok(self
            .pin
            .clone()
            .map_or(Resolution::Unverified, Resolution::Pinned))
    }

    async fn after_push(
        &self,
        _r: &RegistryClient,
        image: &ImageRef,
        digest: &Digest,
        _size: u64,
        _mt: &str,
    ) -> Result<(), TrustError> {
        self.signed
            .lock()
            .unwrap()
            .push((image.to_string(), digest.clone()));
        Ok(())
    }
}

fn quiet() -> Arc<Progress> {
    Arc::new(Progress::new(
        ProgressMode::Quiet,
        Box::new(std::io::sink()),
    ))
}

#[test]
fn policies_pin_refuse_and_sign() {
    let Some(reg) = distribution() else { return };
    let bay = Bay::new();
    let layout = bay.root.path().join("a");
    let a = oci_layout(&layout, &[random_layer_tar("a", 1000, 1)], "1");
    let t = bay.root.path().join("a.tar");
    tar_dir(&layout, &t);
    let id_a = bay
        .ok(&["load", "-i", t.to_str().unwrap()])
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let Some(rootfs) = busybox_rootfs(bay.root.path()) else {
        return;
    };
    let id_b = bay
        .ok(&["import", rootfs.to_str().unwrap(), "b:1"])
        .trim()
        .to_owned();
    let v1 = format!("{}/team/app:v1", reg.addr);
    let v2 = format!("{}/team/app:v2", reg.addr);
    bay.ok(&["tag", &id_a, &v1]);
    bay.ok(&["tag", &id_b, &v2]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = Arc::new(
            RegistryClient::connect(&reg.addr, ClientOptions::default())
                .await
                .unwrap(),
        );
        let signer = Recorder::default();
        for r in [&v1, &v2] {
            bay_client::registry::push::push(
                &bay.store(),
                client.clone(),
                &ImageRef::parse(r).unwrap(),
                &signer,
                &Default::default(),
                quiet(),
            )
            .await
            .unwrap();
        }
        let signed = signer.signed.lock().unwrap().clone();
        assert_eq!(
            signed[0],
            (v1.clone(), a.clone()),
            "after_push sees the pushed digest"
        );
        assert_eq!(signed.len(), 2);

        // The policy says v2 is signed as A's digest: bay pulls A, whatever the tag says.
        let pin = Recorder {
            pin: Some(a.clone()),
            ..Default::default()
        };
        let fresh = Bay::new();
        let out = bay_client::registry::pull::pull(
            &fresh.store(),
            client.clone(),
            &ImageRef::parse(&v2).unwrap(),
            &pin,
            &Default::default(),
            quiet(),
        )
        .await
        .unwrap();
        assert_eq!(out.digest, a);
        assert_eq!(out.id.to_string(), id_a);
        assert_eq!(*pin.resolved.lock().unwrap(), vec![v2.clone()]);
        assert_eq!(fresh.ok(&["inspect", "-f", "{{.Id}}", &v2]).trim(), id_a);

        // Pulls by digest never consult the policy.
        let by_digest = ImageRef::parse(&format!("{}/team/app@{a}", reg.addr)).unwrap();
        let refuse = Recorder {
            refuse: true,
            ..Default::default()
        };
        bay_client::registry::pull::pull(
            &fresh.store(),
            client.clone(),
            &by_digest,
            &refuse,
            &Default::default(),
            quiet(),
        )
        .await
        .unwrap();
        assert!(refuse.resolved.lock().unwrap().is_empty());

        // A refusal stops the pull before anything is stored.
        let empty = Bay::new();
        let e = bay_client::registry::pull::pull(
            &empty.store(),
            client.clone(),
            &ImageRef::parse(&v1).unwrap(),
            &refuse,
            &Default::default(),
            quiet(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, RegistryError::Trust(TrustError::Refused { .. })),
            "{e:?}"
        );
        assert!(e.to_string().starts_with("image is not signed"), "{e}");
        assert!(empty.store().read_index().unwrap().images.is_empty());
    });
}

#[tokio::test]
async fn a_registry_lying_about_a_pinned_digest_is_caught() {
    use axum::Router;
    use axum::http::header;
    use axum::response::IntoResponse;
    use axum::routing::get;

    const OTHER: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    // Serves the same manifest for every reference, without a digest header.
    let app = Router::new().route("/v2/", get(|| async { "{}" })).route(
        "/v2/team/app/manifests/{reference}",
        get(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    "application/vnd.oci.image.manifest.v1+json",
                )],
                OTHER,
            )
                .into_response()
        }),
    );
    tokio::spawn(async move { axum::serve(l, app).await });
    let client = Arc::new(
        RegistryClient::connect(&addr, ClientOptions::default())
            .await
            .unwrap(),
    );
    let signed = Digest::sha256_of(b"the manifest that was signed");
    let pin = Recorder {
        pin: Some(signed.clone()),
        ..Default::default()
    };
    let bay = Bay::new();
    let e = bay_client::registry::pull::pull(
        &bay.store(),
        client,
        &ImageRef::parse(&format!("{addr}/team/app:v1")).unwrap(),
        &pin,
        &Default::default(),
        quiet(),
    )
    .await
    .unwrap_err();
    match e {
        RegistryError::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, signed);
            assert_eq!(actual, Digest::sha256_of(OTHER.as_bytes()));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn oversized_manifests_are_refused_without_buffering_them() {
    use axum::Router;
    use axum::http::header;
    use axum::response::IntoResponse;
    use axum::routing::get;

    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let app = Router::new().route("/v2/", get(|| async { "{}" })).route(
        "/v2/team/app/manifests/{reference}",
        get(|| async {
            let huge = vec![b' '; (bay_client::registry::MAX_MANIFEST + 1) as usize];
            (
                [(
                    header::CONTENT_TYPE,
                    "application/vnd.oci.image.manifest.v1+json",
                )],
                huge,
            )
                .into_response()
        }),
    );
    tokio::spawn(async move { axum::serve(l, app).await });
    let client = RegistryClient::connect(&addr, ClientOptions::default())
        .await
        .unwrap();
    let e = client
        .get_manifest(&oci_types::RepoName::parse("team/app").unwrap(), "v1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::TooLarge {
                what: "manifest",
                ..
            }
        ),
        "{e:?}"
    );
}
