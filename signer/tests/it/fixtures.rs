//! Static interop fixtures: a repository published by Debian's notary 0.7
//! CLI through notary-server (tests/data/notary-repo), so these checks run
//! even where notary is not installed. It carries the HTML-escape trap
//! (target `a<b>&c-é`, served as `a\u003cb\u003e\u0026c-é`), sha256+sha512
//! target hashes, and a `targets/releases` delegation keyed by an x509 cert.

use std::path::PathBuf;

use bay_signer::names::{Gun, RoleName};
use bay_signer::verify::{FetchedRepo, VerifyError, VerifyOptions, verify_repository};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest as _, Sha256};

fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/notary-repo")
        .join(name);
    std::fs::read(p).unwrap()
}

fn load() -> (Gun, Vec<u8>, FetchedRepo, DateTime<Utc>) {
    let gun = Gun::new(String::from_utf8(data("gun.txt")).unwrap().trim()).unwrap();
    let at =
        DateTime::parse_from_rfc3339(String::from_utf8(data("fetched-at.txt")).unwrap().trim())
            .unwrap()
            .with_timezone(&Utc);
    let fetched = FetchedRepo {
        newer_roots: vec![],
        timestamp: data("timestamp.json"),
        snapshot: data("snapshot.json"),
        targets: data("targets.json"),
        delegations: Default::default(),
    };
    (gun, data("root.json"), fetched, at)
}

#[test]
fn notary_made_repository_verifies() {
    let (gun, root, fetched, at) = load();
    let opts = VerifyOptions {
        now: Some(at),
        ..Default::default()
    };
    let repo = verify_repository(gun, &root, &fetched, opts).unwrap();
    let digest: [u8; 32] = Sha256::digest(b"hello\n").into();
    for tag in ["v1", "a<b>&c-é"] {
        let t = repo.lookup(tag).unwrap();
        assert_eq!(
            (t.sha256, t.length, t.role.clone()),
            (digest, 6, RoleName::targets())
        );
    }
    let d = &repo.targets().unwrap().signed.delegations;
    assert_eq!(d.roles[0].name, RoleName::releases());
    // The snapshot lists root, and the trusted root is that exact file.
    assert!(!repo.needs_root_update());
    // Root key: x509 TUF ID differs from its canonical ID.
    let ids = repo.root_key_ids();
    assert_eq!(ids.len(), 1);
    assert_ne!(ids[0].0, ids[0].1);
}

/// expired-repository: the same files 15 days later (timestamp lasts 14).
#[test]
fn notary_made_repository_expires_like_notary_says() {
    let (gun, root, fetched, at) = load();
    let opts = VerifyOptions {
        now: Some(at + Duration::days(15)),
        ..Default::default()
    };
    match verify_repository(gun, &root, &fetched, opts).unwrap_err() {
        VerifyError::Expired { role, .. } => assert_eq!(role, RoleName::timestamp()),
        other => panic!("{other:?}"),
    }
}

/// Any single flipped byte inside `signed` of notary's targets breaks it.
#[test]
fn notary_made_targets_with_one_changed_byte_is_refused() {
    let (gun, root, mut fetched, at) = load();
    let text = String::from_utf8(fetched.targets.clone()).unwrap();
    fetched.targets = text
        .replacen("\"length\":6", "\"length\":7", 1)
        .into_bytes();
    let opts = VerifyOptions {
        now: Some(at),
        ..Default::default()
    };
    // The snapshot's hash catches it before the signature does.
    assert!(matches!(
        verify_repository(gun, &root, &fetched, opts).unwrap_err(),
        VerifyError::HashMismatch { .. }
    ));
}
