//! One test per attack of issue 4, each named after it and refused with a
//! typed error.

use bay_signer::cert::{default_cert_validity, generate_root_certificate};
use bay_signer::editor::sign_metadata;
use bay_signer::key::{KeyAlgorithm, PrivateKey, Sign};
use bay_signer::names::RoleName;
use bay_signer::schema::{FileMeta, RoleType, Root, Targets};
use bay_signer::verify::{
    ExpirationEnforcement, Rejection, TrustedRepo, VerifyError, VerifyOptions,
};
use chrono::Duration;

use crate::support::{Fixture, digest, tamper, version_of};

/// A fixture published twice (tags v1, then v2), and the versions a client
/// trusted after the second publish.
fn published_twice() -> (Fixture, VerifyOptions) {
    let mut f = Fixture::new();
    f.add_tag(&RoleName::targets(), "v1", 1);
    f.publish(&[]);
    f.add_tag(&RoleName::targets(), "v2", 2);
    f.publish(&[]);
    let repo = f.verify(VerifyOptions::default()).unwrap();
    let opts = VerifyOptions {
        previous: Some(repo.versions()),
        ..Default::default()
    };
    (f, opts)
}

fn assert_rollback(err: VerifyError, want: &str) {
    match err {
        VerifyError::Rollback { role, trusted, new } => {
            assert_eq!(role.as_str(), want);
            assert!(new < trusted);
        }
        other => panic!("expected rollback of {want}, got {other:?}"),
    }
}

#[test]
fn rollback_of_timestamp() {
    let (f, opts) = published_twice();
    // Replay the whole older (validly signed, unexpired) repository.
    let old = Fixture::fetched_from(&f.history[1]);
    assert_rollback(f.verify_files(&old, opts).unwrap_err(), "timestamp");
}

#[test]
fn rollback_of_snapshot() {
    let (f, opts) = published_twice();
    // The timestamp key holder points a new timestamp at an old snapshot.
    let mut files = f.history[1].clone();
    let ts = bay_signer::editor::build_timestamp(
        50,
        f.now + Duration::days(1),
        &files[&RoleName::snapshot()],
        &f.timestamp,
    )
    .unwrap();
    files.insert(RoleName::timestamp(), ts.bytes);
    assert_rollback(
        f.verify_files(&Fixture::fetched_from(&files), opts)
            .unwrap_err(),
        "snapshot",
    );
}

#[test]
fn rollback_of_targets() {
    let (f, opts) = published_twice();
    // Stolen snapshot and timestamp keys re-point at old targets.
    let mut files = f.files.clone();
    files.insert(
        RoleName::targets(),
        f.history[1][&RoleName::targets()].clone(),
    );
    f.resnapshot(&mut files, 50, 50);
    assert_rollback(
        f.verify_files(&Fixture::fetched_from(&files), opts)
            .unwrap_err(),
        "targets",
    );
}

#[test]
fn freeze_expired_timestamp() {
    let (f, _) = published_twice();
    let later = VerifyOptions {
        now: Some(f.now + Duration::days(15)),
        ..Default::default()
    };
    match f.verify(later).unwrap_err() {
        VerifyError::Expired { role, .. } => assert_eq!(role, RoleName::timestamp()),
        other => panic!("{other:?}"),
    }
    // Unsafe enforcement exists for inspection only.
    let unsafe_opts = VerifyOptions {
        now: Some(f.now + Duration::days(15)),
        expiration: ExpirationEnforcement::Unsafe,
        ..Default::default()
    };
    f.verify(unsafe_opts).unwrap();
}

#[test]
fn freeze_expired_root() {
    let (f, _) = published_twice();
    let later = VerifyOptions {
        now: Some(f.now + Duration::days(365 * 11)),
        ..Default::default()
    };
    match f.verify(later).unwrap_err() {
        VerifyError::Expired { role, .. } => assert_eq!(role, RoleName::root()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mix_and_match_snapshot_with_older_targets() {
    let (f, _) = published_twice();
    // Current timestamp and snapshot, but the targets file of the first publish.
    let mut fetched = f.fetched();
    fetched.targets = f.history[1][&RoleName::targets()].clone();
    match f
        .verify_files(&fetched, VerifyOptions::default())
        .unwrap_err()
    {
        VerifyError::LengthMismatch { role, .. } | VerifyError::HashMismatch { role, .. } => {
            assert_eq!(role, RoleName::targets())
        }
        other => panic!("{other:?}"),
    }
    // Same length, other bytes: the hash catches it.
    let mut fetched = f.fetched();
    let mut t = fetched.targets.clone();
    let last = t.len() - 2;
    t[last] = if t[last] == b' ' { b'\n' } else { b' ' };
    fetched.targets = t;
    assert!(matches!(
        f.verify_files(&fetched, VerifyOptions::default())
            .unwrap_err(),
        VerifyError::HashMismatch { .. } | VerifyError::Malformed { .. }
    ));
}

#[test]
fn tampered_target_hash() {
    let (f, _) = published_twice();
    let forged = base64_of(&digest(0xee));
    let mut files = f.files.clone();
    let bytes = tamper(&files[&RoleName::targets()], |v| {
        v["signed"]["targets"]["v1"]["hashes"]["sha256"] = serde_json::json!(forged);
    });
    files.insert(RoleName::targets(), bytes);
    // Even with a consistent snapshot/timestamp, the targets signature fails.
    f.resnapshot(&mut files, 50, 50);
    match f
        .verify_files(&Fixture::fetched_from(&files), VerifyOptions::default())
        .unwrap_err()
    {
        VerifyError::ThresholdNotMet {
            role,
            valid,
            rejected,
            ..
        } => {
            assert_eq!(role, RoleName::targets());
            assert_eq!(valid, 0);
            assert_eq!(rejected[0].reason, Rejection::BadSignature);
        }
        other => panic!("{other:?}"),
    }
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A repository whose targets role needs 2 of {targets, second}.
fn two_of_two() -> (Fixture, PrivateKey) {
    let mut f = Fixture::new();
    let second = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    f.editor
        .set_role_keys(
            RoleType::Targets,
            &[f.targets.public_key().clone(), second.public_key().clone()],
            2,
        )
        .unwrap();
    f.add_tag(&RoleName::targets(), "v1", 1);
    f.publish(&[&second]);
    f.verify(VerifyOptions::default()).unwrap();
    (f, second)
}

#[test]
fn threshold_not_met() {
    let (f, _) = two_of_two();
    let mut files = f.files.clone();
    let bytes = tamper(&files[&RoleName::targets()], |v| {
        v["signatures"].as_array_mut().unwrap().truncate(1);
    });
    files.insert(RoleName::targets(), bytes);
    f.resnapshot(&mut files, 50, 50);
    match f
        .verify_files(&Fixture::fetched_from(&files), VerifyOptions::default())
        .unwrap_err()
    {
        VerifyError::ThresholdNotMet {
            valid, threshold, ..
        } => assert_eq!((valid, threshold), (1, 2)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn repeated_signature_counted_twice() {
    let (f, _) = two_of_two();
    let mut files = f.files.clone();
    // Keep one key's signature and repeat it: still one key.
    let bytes = tamper(&files[&RoleName::targets()], |v| {
        let sigs = v["signatures"].as_array_mut().unwrap();
        sigs.truncate(1);
        let again = sigs[0].clone();
        sigs.push(again);
    });
    files.insert(RoleName::targets(), bytes);
    f.resnapshot(&mut files, 50, 50);
    match f
        .verify_files(&Fixture::fetched_from(&files), VerifyOptions::default())
        .unwrap_err()
    {
        VerifyError::ThresholdNotMet {
            valid,
            threshold,
            rejected,
            ..
        } => {
            assert_eq!((valid, threshold), (1, 2));
            assert_eq!(rejected[0].reason, Rejection::Duplicate);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn signature_by_unknown_key() {
    let (f, _) = published_twice();
    let mallory = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let v: serde_json::Value = serde_json::from_slice(&f.files[&RoleName::targets()]).unwrap();
    let mut body: Targets = serde_json::from_value(v["signed"].clone()).unwrap();
    body.targets
        .insert("evil".into(), FileMeta::docker(digest(9), 9));
    body.version += 1;
    let forged = sign_metadata(
        &RoleName::targets(),
        body.version,
        &body,
        &[(&mallory, mallory.public_key().key_id())],
    )
    .unwrap();
    let mut files = f.files.clone();
    files.insert(RoleName::targets(), forged.bytes);
    f.resnapshot(&mut files, 50, 50);
    match f
        .verify_files(&Fixture::fetched_from(&files), VerifyOptions::default())
        .unwrap_err()
    {
        VerifyError::ThresholdNotMet { role, rejected, .. } => {
            assert_eq!(role, RoleName::targets());
            assert_eq!(rejected[0].reason, Rejection::UnknownKey);
            assert_eq!(rejected[0].keyid, mallory.public_key().key_id().as_str());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn key_listed_under_a_wrong_id() {
    // mismatched-root-json-keyids: root lists the targets key under another
    // key's ID, so a signature by "that ID" must not count.
    let (f, _) = published_twice();
    let v: serde_json::Value = serde_json::from_slice(&f.files[&RoleName::targets()]).unwrap();
    let body: Targets = serde_json::from_value(v["signed"].clone()).unwrap();
    let fake_id = bay_signer::key::KeyId::from_hex("00".repeat(32));
    let mut root: Root = {
        let r: serde_json::Value = serde_json::from_slice(&f.files[&RoleName::root()]).unwrap();
        serde_json::from_value(r["signed"].clone()).unwrap()
    };
    let key = root.keys.remove(&f.targets.public_key().key_id()).unwrap();
    root.keys.insert(fake_id.clone(), key);
    root.roles.get_mut("targets").unwrap().keyids = vec![fake_id.clone()];
    root.version += 1;
    let root_tuf_id = root.roles["root"].keyids[0].clone();
    let new_root = sign_metadata(
        &RoleName::root(),
        root.version,
        &root,
        &[(&f.root, root_tuf_id)],
    )
    .unwrap();
    let targets = sign_metadata(
        &RoleName::targets(),
        body.version + 1,
        &body,
        &[(&f.targets, fake_id)],
    )
    .unwrap();
    let mut files = f.files.clone();
    files.insert(RoleName::root(), new_root.bytes.clone());
    files.insert(RoleName::targets(), targets.bytes);
    f.resnapshot(&mut files, 50, 50);
    let mut fetched = Fixture::fetched_from(&files);
    fetched.newer_roots.push(new_root.bytes);
    match f
        .verify_files(&fetched, VerifyOptions::default())
        .unwrap_err()
    {
        VerifyError::ThresholdNotMet { role, rejected, .. } => {
            assert_eq!(role, RoleName::targets());
            assert_eq!(rejected[0].reason, Rejection::KeyIdMismatch);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn root_rotation_not_signed_by_the_old_root() {
    let f = Fixture::new();
    let old_root = f.files[&RoleName::root()].clone();
    // The attacker makes a root with only their own key and signs it.
    let mallory = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let cert = generate_root_certificate(&mallory, &f.gun, f.now, default_cert_validity()).unwrap();
    let r: serde_json::Value = serde_json::from_slice(&old_root).unwrap();
    let mut root: Root = serde_json::from_value(r["signed"].clone()).unwrap();
    let old_id = root.roles["root"].keyids[0].clone();
    root.keys.remove(&old_id);
    root.keys.insert(cert.key_id(), cert.clone());
    root.roles.get_mut("root").unwrap().keyids = vec![cert.key_id()];
    root.version = 2;
    let evil = sign_metadata(&RoleName::root(), 2, &root, &[(&mallory, cert.key_id())]).unwrap();
    let mut repo = TrustedRepo::new(f.gun.clone(), &old_root, VerifyOptions::default()).unwrap();
    match repo.update_root(&evil.bytes).unwrap_err() {
        VerifyError::RotationNotSignedByOldRoot {
            trusted,
            new,
            source,
        } => {
            assert_eq!((trusted, new), (1, 2));
            assert!(matches!(*source, VerifyError::ThresholdNotMet { .. }));
        }
        other => panic!("{other:?}"),
    }
    // Signed by the old key only, the new root does not verify under its own keys.
    let half = sign_metadata(&RoleName::root(), 2, &root, &[(&f.root, old_id)]).unwrap();
    assert!(matches!(
        repo.update_root(&half.bytes).unwrap_err(),
        VerifyError::ThresholdNotMet { .. }
    ));
    assert_eq!(repo.root().signed.version, 1);
    // After a real rotation to v2, the old v1 root is a rollback.
    let mut f = f;
    let new_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let cert = generate_root_certificate(&new_key, &f.gun, f.now, default_cert_validity()).unwrap();
    f.editor.set_role_keys(RoleType::Root, &[cert], 1).unwrap();
    f.publish(&[&new_key]);
    repo.update_root(&f.files[&RoleName::root()]).unwrap();
    assert_rollback(repo.update_root(&old_root).unwrap_err(), "root");
}

#[test]
fn delegation_signing_outside_its_paths() {
    let mut f = Fixture::new();
    let alice = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let role = RoleName::new("targets/alice").unwrap();
    f.editor
        .add_delegation(
            &role,
            &[alice.public_key().clone()],
            1,
            vec!["alice-".into()],
        )
        .unwrap();
    f.add_tag(&role, "alice-1", 1);
    f.publish(&[&alice]);
    f.verify(VerifyOptions::default()).unwrap();
    // Alice signs a tag outside her prefix, bypassing the editor.
    let body = Targets {
        targets: [("latest".to_owned(), FileMeta::docker(digest(6), 6))].into(),
        version: 9,
        ..Targets::new(9, f.now + Duration::days(30))
    };
    let forged = sign_metadata(&role, 9, &body, &[(&alice, alice.public_key().key_id())]).unwrap();
    let mut files = f.files.clone();
    files.insert(role.clone(), forged.bytes);
    f.resnapshot(&mut files, 50, 50);
    match f
        .verify_files(&Fixture::fetched_from(&files), VerifyOptions::default())
        .unwrap_err()
    {
        VerifyError::DelegationPathViolation {
            role: r,
            target,
            paths,
        } => {
            assert_eq!(r, role);
            assert_eq!(target, "latest");
            assert_eq!(paths, vec!["alice-".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversized_metadata() {
    let mut f = Fixture::new();
    for i in 0..50u8 {
        f.add_tag(&RoleName::targets(), &format!("tag-{i}"), i);
    }
    f.publish(&[]);
    let size = f.files[&RoleName::targets()].len() as u64;
    let opts = VerifyOptions {
        max_metadata_size: size - 1,
        ..Default::default()
    };
    match f.verify(opts).unwrap_err() {
        VerifyError::TooLarge { role, size: s, max } => {
            assert_eq!(role, RoleName::targets());
            assert_eq!((s, max), (size, size - 1));
        }
        other => panic!("{other:?}"),
    }
    // An endless timestamp is cut off before parsing.
    let mut fetched = f.fetched();
    fetched.timestamp = vec![b' '; 64 << 20];
    assert!(matches!(
        f.verify_files(&fetched, VerifyOptions::default())
            .unwrap_err(),
        VerifyError::TooLarge { .. }
    ));
}

#[test]
fn gun_not_matching_certificate_cn() {
    // Metadata whose root certificate names another repository.
    let f = Fixture::with_gun("example.com/test/repo", "example.com/other/repo");
    match f.verify(VerifyOptions::default()).unwrap_err() {
        VerifyError::RootCertificate { source, .. } => {
            assert!(
                matches!(source, bay_signer::cert::CertError::CnMismatch { .. }),
                "{source:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // And a correct repository moved to another GUN is refused too.
    let good = Fixture::new();
    let other = bay_signer::names::Gun::new("example.com/elsewhere").unwrap();
    assert!(matches!(
        TrustedRepo::new(
            other,
            &good.files[&RoleName::root()],
            VerifyOptions::default()
        )
        .unwrap_err(),
        VerifyError::RootCertificate { .. }
    ));
}

#[test]
fn steps_out_of_order_are_refused() {
    let f = Fixture::new();
    let mut repo = TrustedRepo::new(
        f.gun.clone(),
        &f.files[&RoleName::root()],
        VerifyOptions::default(),
    )
    .unwrap();
    assert!(matches!(
        repo.update_snapshot(&f.files[&RoleName::snapshot()])
            .unwrap_err(),
        VerifyError::OutOfOrder { .. }
    ));
    // A file of the wrong role fails its signature check.
    assert!(
        repo.update_timestamp(&f.files[&RoleName::snapshot()])
            .is_err()
    );
    assert!(version_of(&f.files[&RoleName::timestamp()]) >= 1);
}

#[test]
fn server_side_upload_checks() {
    use bay_signer::verify::{DEFAULT_MAX_METADATA_SIZE, verify_root, verify_signed};
    let mut f = Fixture::new();
    let v1: Root = {
        let r: serde_json::Value = serde_json::from_slice(&f.files[&RoleName::root()]).unwrap();
        serde_json::from_value(r["signed"].clone()).unwrap()
    };
    // Initial root: self-signed, cert CN = GUN.
    verify_root(
        &f.gun,
        &f.files[&RoleName::root()],
        None,
        Some(f.now),
        DEFAULT_MAX_METADATA_SIZE,
    )
    .unwrap();
    // Re-uploading the same version is not an increment.
    assert!(matches!(
        verify_root(
            &f.gun,
            &f.files[&RoleName::root()],
            Some(&v1),
            None,
            DEFAULT_MAX_METADATA_SIZE
        ),
        Err(VerifyError::Rollback { .. })
    ));
    // Targets checked against root's targets keys only.
    let rk = &v1.roles["targets"];
    let t: bay_signer::verify::Verified<Targets> = verify_signed(
        &RoleName::targets(),
        &f.files[&RoleName::targets()],
        &v1.keys,
        &rk.keyids,
        rk.threshold,
        DEFAULT_MAX_METADATA_SIZE,
    )
    .unwrap();
    assert_eq!(t.signers, vec![f.targets.public_key().key_id()]);
    let sk = &v1.roles["snapshot"];
    assert!(matches!(
        verify_signed::<Targets>(
            &RoleName::targets(),
            &f.files[&RoleName::targets()],
            &v1.keys,
            &sk.keyids,
            1,
            DEFAULT_MAX_METADATA_SIZE
        ),
        Err(VerifyError::ThresholdNotMet { .. })
    ));
    // A rotation signed by old and new keys passes against the previous root.
    let new_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let cert = generate_root_certificate(&new_key, &f.gun, f.now, default_cert_validity()).unwrap();
    f.editor
        .set_role_keys(RoleType::Root, std::slice::from_ref(&cert), 1)
        .unwrap();
    f.publish(&[&new_key]);
    verify_root(
        &f.gun,
        &f.files[&RoleName::root()],
        Some(&v1),
        Some(f.now),
        DEFAULT_MAX_METADATA_SIZE,
    )
    .unwrap();
    // Pinning: both IDs of the new root key are exposed.
    let repo = f.verify(VerifyOptions::default()).unwrap();
    assert_eq!(repo.root_key_ids(), vec![(cert.key_id(), new_key.key_id())]);
}

/// Random corruption of any served file must give an error (or, for bytes
/// outside `signed` such as whitespace, a verified result), never a panic,
/// and never a different digest for a tag.
#[test]
fn random_corruption_is_refused_without_panics() {
    use rand::{Rng as _, SeedableRng as _};
    let mut f = Fixture::new();
    let alice = PrivateKey::generate(KeyAlgorithm::Ed25519);
    f.editor
        .add_signer("alice", &[alice.public_key().clone()])
        .unwrap();
    f.add_tag(&RoleName::releases(), "v1", 1);
    f.add_tag(&RoleName::targets(), "v2", 2);
    f.publish(&[&alice]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    // verify_files starts from the fixture's own root; root.json is
    // corrupted separately below, as a trust anchor.
    let roles: Vec<RoleName> = f
        .files
        .keys()
        .filter(|r| r.as_str() != "root")
        .cloned()
        .collect();
    let mut refused = 0;
    for i in 0..400 {
        let role = &roles[i % roles.len()];
        let mut files = f.files.clone();
        let bytes = files.get_mut(role).unwrap();
        let n = rng.gen_range(1..4);
        for _ in 0..n {
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = rng.r#gen();
        }
        match f.verify_files(&Fixture::fetched_from(&files), VerifyOptions::default()) {
            Err(_) => refused += 1,
            Ok(repo) => {
                assert_eq!(repo.lookup("v1").map(|t| t.sha256), Some(digest(1)));
                assert_eq!(repo.lookup("v2").map(|t| t.sha256), Some(digest(2)));
            }
        }
        // The root is also parsed as a trust anchor.
        let _ = TrustedRepo::new(
            f.gun.clone(),
            &files[&RoleName::root()],
            VerifyOptions::default(),
        );
    }
    assert!(refused > 350, "only {refused} of 400 corruptions refused");
}
