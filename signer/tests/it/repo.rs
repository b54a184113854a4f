//! Sign-then-verify of whole repositories: targets, delegations, rotation.

use bay_signer::editor::RepoEditor;
use bay_signer::key::{KeyAlgorithm, PrivateKey, Sign};
use bay_signer::names::RoleName;
use bay_signer::schema::{FileMeta, RoleType};
use bay_signer::verify::{TrustedRepo, VerifyOptions};

use crate::support::{Fixture, digest, version_of};

#[test]
fn new_repository_signs_every_role_and_verifies() {
    let mut f = Fixture::new();
    assert_eq!(
        f.files.keys().map(RoleName::as_str).collect::<Vec<_>>(),
        ["root", "snapshot", "targets", "timestamp"]
    );
    f.add_tag(&RoleName::targets(), "v1", 1);
    let out = f.publish(&[]);
    let names: Vec<&str> = out.iter().map(|r| r.role.as_str()).collect();
    assert_eq!(
        names,
        ["targets", "snapshot", "timestamp"],
        "root unchanged is not re-signed"
    );
    let repo = f.verify(VerifyOptions::default()).unwrap();
    let t = repo.lookup("v1").unwrap();
    assert_eq!(t.sha256, digest(1));
    assert_eq!(t.length, 101);
    assert_eq!(t.role, RoleName::targets());
    assert_eq!(t.signers, vec![f.targets.public_key().key_id()]);
    assert_eq!(t.digest(), format!("sha256:{}", hex::encode(digest(1))));
    assert!(repo.lookup("v2").is_none());
    assert!(!repo.needs_root_update());
    assert_eq!(repo.versions().targets, 2);
    // The upload bytes hash to what the snapshot lists.
    let snap = repo.snapshot().unwrap();
    assert_eq!(
        snap.signed.meta["targets"],
        FileMeta::of_bytes(&f.files[&RoleName::targets()])
    );
    assert!(snap.signed.meta.contains_key("root"));
}

#[test]
fn wire_format_matches_notary_shapes() {
    let f = Fixture::new();
    let root: serde_json::Value = serde_json::from_slice(&f.files[&RoleName::root()]).unwrap();
    let s = &root["signed"];
    assert_eq!(s["_type"], "Root");
    assert_eq!(s["consistent_snapshot"], false);
    assert!(s["expires"].as_str().unwrap().ends_with('Z'));
    let root_id = s["roles"]["root"]["keyids"][0].as_str().unwrap();
    assert_eq!(s["keys"][root_id]["keytype"], "ecdsa-x509");
    assert!(s["keys"][root_id]["keyval"]["private"].is_null());
    let sig = &root["signatures"][0];
    assert_eq!(sig["method"], "ecdsa");
    assert_eq!(sig["keyid"].as_str().unwrap(), root_id);
    let targets: serde_json::Value =
        serde_json::from_slice(&f.files[&RoleName::targets()]).unwrap();
    assert_eq!(
        targets["signed"]["delegations"],
        serde_json::json!({"keys":{},"roles":[]})
    );
    let ts: serde_json::Value = serde_json::from_slice(&f.files[&RoleName::timestamp()]).unwrap();
    assert_eq!(ts["signatures"][0]["method"], "eddsa");
    let meta = &ts["signed"]["meta"]["snapshot"];
    assert!(meta["hashes"]["sha256"].is_string() && meta["hashes"]["sha512"].is_string());
    assert!(meta.get("version").is_none(), "Notary meta has no version");
}

#[test]
fn releases_is_preferred_over_targets_and_reports_its_signer() {
    let mut f = Fixture::new();
    let alice = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let alice_role = RoleName::new("targets/alice").unwrap();
    // docker's `signer add`: targets/alice and the same key on targets/releases.
    f.editor
        .add_delegation(
            &alice_role,
            &[alice.public_key().clone()],
            1,
            vec!["".into()],
        )
        .unwrap();
    f.editor
        .add_delegation(
            &RoleName::releases(),
            &[alice.public_key().clone()],
            1,
            vec!["".into()],
        )
        .unwrap();
    f.add_tag(&RoleName::targets(), "v1", 1);
    f.add_tag(&RoleName::releases(), "v1", 2);
    f.add_tag(&alice_role, "v1", 3);
    f.add_tag(&alice_role, "only-alice", 4);
    f.publish(&[&alice]);
    let repo = f.verify(VerifyOptions::default()).unwrap();
    let t = repo.lookup("v1").unwrap();
    assert_eq!(t.role, RoleName::releases());
    assert_eq!(t.sha256, digest(2));
    assert_eq!(t.signers, vec![alice.public_key().key_id()]);
    assert!(
        repo.lookup("only-alice").is_none(),
        "docker trusts only releases and targets"
    );
    assert_eq!(
        repo.lookup_in("only-alice", std::slice::from_ref(&alice_role))
            .unwrap()
            .sha256,
        digest(4)
    );
    assert_eq!(repo.all_targets().len(), 4);

    // Revoke: remove the tag from every role; then remove the signer.
    for role in [
        RoleName::targets(),
        RoleName::releases(),
        alice_role.clone(),
    ] {
        assert!(f.editor.remove_target(&role, "v1").unwrap());
    }
    assert!(f.editor.remove_delegation(&alice_role).unwrap());
    assert!(!f.editor.remove_delegation(&alice_role).unwrap());
    f.publish(&[&alice]);
    let repo = f.verify(VerifyOptions::default()).unwrap();
    assert!(repo.lookup("v1").is_none());
    assert!(repo.delegation(&alice_role).is_none());
    let targets = &repo.targets().unwrap().signed;
    assert_eq!(targets.delegations.roles.len(), 1);
    assert_eq!(
        targets.delegations.keys.len(),
        1,
        "alice's key is still used by releases"
    );
}

#[test]
fn editor_refuses_targets_outside_delegated_paths_and_short_thresholds() {
    let mut f = Fixture::new();
    let k = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let role = RoleName::new("targets/ci").unwrap();
    f.editor
        .add_delegation(&role, &[k.public_key().clone()], 1, vec!["nightly-".into()])
        .unwrap();
    assert!(
        f.editor
            .add_target(&role, "v1", FileMeta::docker(digest(1), 1))
            .is_err()
    );
    f.editor
        .add_target(&role, "nightly-1", FileMeta::docker(digest(1), 1))
        .unwrap();
    assert!(
        f.editor
            .add_delegation(&role, &[k.public_key().clone()], 2, vec![])
            .is_err()
    );
    // Without the delegation key, signing fails and nothing changes.
    let before = f.editor.clone();
    let signers: Vec<&dyn Sign> = vec![&f.root, &f.targets, &f.snapshot, &f.timestamp];
    assert!(f.editor.sign(&signers).is_err());
    assert_eq!(
        format!("{:?}", f.editor.root()),
        format!("{:?}", before.root())
    );
    f.publish(&[&k]);
    let repo = f.verify(VerifyOptions::default()).unwrap();
    assert_eq!(
        repo.lookup_in("nightly-1", &[role]).unwrap().signers,
        vec![k.public_key().key_id()]
    );
}

#[test]
fn continue_editing_from_a_verified_repository() {
    let mut f = Fixture::new();
    f.add_tag(&RoleName::targets(), "v1", 1);
    f.publish(&[]);
    let repo = f.verify(VerifyOptions::default()).unwrap();
    let mut ed = RepoEditor::from_trusted(&repo, f.now).unwrap();
    ed.add_target(&RoleName::targets(), "v2", FileMeta::docker(digest(2), 2))
        .unwrap();
    // A client without the snapshot key: only targets comes out.
    let out = ed.sign(&[&f.targets]).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].version, repo.targets().unwrap().signed.version + 1);
    // The "server" makes snapshot and timestamp.
    let mut files = f.files.clone();
    files.insert(RoleName::targets(), out[0].bytes.clone());
    let snap_v = version_of(&files[&RoleName::snapshot()]) + 1;
    let ts_v = version_of(&files[&RoleName::timestamp()]) + 1;
    f.resnapshot(&mut files, snap_v, ts_v);
    let opts = VerifyOptions {
        previous: Some(repo.versions()),
        ..Default::default()
    };
    let repo2 = f
        .verify_files(&crate::support::Fixture::fetched_from(&files), opts)
        .unwrap();
    assert_eq!(repo2.lookup("v1").unwrap().sha256, digest(1));
    assert_eq!(repo2.lookup("v2").unwrap().sha256, digest(2));
}

#[test]
fn root_rotation_signed_by_old_and_new_keys_is_followed() {
    let mut f = Fixture::new();
    let old_root = f.files[&RoleName::root()].clone();
    let new_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let cert = bay_signer::cert::generate_root_certificate(
        &new_key,
        &f.gun,
        f.now,
        bay_signer::cert::default_cert_validity(),
    )
    .unwrap();
    f.editor
        .set_role_keys(RoleType::Root, std::slice::from_ref(&cert), 1)
        .unwrap();
    let out = f.publish(&[&new_key]);
    let root = out.iter().find(|r| r.role == RoleName::root()).unwrap();
    assert_eq!(root.version, 2);
    let v: serde_json::Value = serde_json::from_slice(&root.bytes).unwrap();
    assert_eq!(
        v["signatures"].as_array().unwrap().len(),
        2,
        "old and new root keys sign"
    );
    assert_eq!(
        v["signed"]["roles"]["root"]["keyids"],
        serde_json::json!([cert.key_id().as_str()])
    );
    // A client pinned to the old root walks to the new one.
    let mut fetched = f.fetched();
    fetched.newer_roots.push(root.bytes.clone());
    let repo = bay_signer::verify::verify_repository(
        f.gun.clone(),
        &old_root,
        &fetched,
        VerifyOptions::default(),
    )
    .unwrap();
    assert_eq!(repo.root().signed.version, 2);
    // A client that skipped the rotation notices the snapshot's root hash.
    let mut stale = TrustedRepo::new(f.gun.clone(), &old_root, VerifyOptions::default()).unwrap();
    stale
        .update_timestamp(&f.files[&RoleName::timestamp()])
        .unwrap();
    stale
        .update_snapshot(&f.files[&RoleName::snapshot()])
        .unwrap();
    assert!(stale.needs_root_update());
    stale.update_root(&root.bytes).unwrap();
    // Later, the old key alone can no longer sign root.
    f.editor.touch(&RoleName::root()).unwrap();
    let signers: Vec<&dyn Sign> = vec![&f.root, &f.targets, &f.snapshot, &f.timestamp];
    assert!(f.editor.sign(&signers).is_err());
}

/// trust-facts §2.3: Go HTML-escapes on the wire; signatures cover the
/// unescaped canonical form, hashes the served bytes.
#[test]
fn html_escaped_wire_bytes_still_verify() {
    let mut f = Fixture::new();
    f.add_tag(&RoleName::targets(), "a<b>&c-é", 7);
    f.publish(&[]);
    // We write what Go writes: HTML-escaped.
    let raw = String::from_utf8(f.files[&RoleName::targets()].clone()).unwrap();
    assert!(raw.contains(r"a\u003cb\u003e\u0026c-é"), "{raw}");
    f.verify(VerifyOptions::default()).unwrap();
    // Another writer may not escape; the signature still holds.
    let escaped = raw
        .replace("\\u003c", "<")
        .replace("\\u003e", ">")
        .replace("\\u0026", "&");
    assert_ne!(escaped, raw);
    let mut files = f.files.clone();
    files.insert(RoleName::targets(), escaped.into_bytes());
    let sv = version_of(&files[&RoleName::snapshot()]) + 1;
    let tv = version_of(&files[&RoleName::timestamp()]) + 1;
    f.resnapshot(&mut files, sv, tv);
    let repo = f
        .verify_files(&Fixture::fetched_from(&files), VerifyOptions::default())
        .unwrap();
    assert_eq!(repo.lookup("a<b>&c-é").unwrap().sha256, digest(7));
}

#[test]
fn unknown_fields_survive_signing_verification_and_editing() {
    use bay_signer::editor::sign_metadata;
    use bay_signer::schema::Targets;
    let mut f = Fixture::new();
    f.add_tag(&RoleName::targets(), "v1", 1);
    f.publish(&[]);
    // A future Notary writes a field we do not know, and signs over it.
    let mut v: serde_json::Value = serde_json::from_slice(&f.files[&RoleName::targets()]).unwrap();
    v["signed"]["future_field"] = serde_json::json!({"nested": [1, 2]});
    v["signed"]["version"] = serde_json::json!(5);
    let body: Targets = serde_json::from_value(v["signed"].clone()).unwrap();
    let signed = sign_metadata(
        &RoleName::targets(),
        5,
        &body,
        &[(&f.targets, f.targets.public_key().key_id())],
    )
    .unwrap();
    // Served pretty-printed: signatures cover canonical bytes, not the wire.
    let pretty = serde_json::to_vec_pretty(
        &serde_json::from_slice::<serde_json::Value>(&signed.bytes).unwrap(),
    )
    .unwrap();
    assert_ne!(pretty, signed.bytes);
    let mut files = f.files.clone();
    files.insert(RoleName::targets(), pretty);
    f.resnapshot(&mut files, 10, 10);
    let repo = f
        .verify_files(&Fixture::fetched_from(&files), VerifyOptions::default())
        .unwrap();
    // Editing and re-signing keeps the unknown field.
    let mut ed = RepoEditor::from_trusted(&repo, f.now).unwrap();
    ed.add_target(&RoleName::targets(), "v2", FileMeta::docker(digest(2), 2))
        .unwrap();
    let out = ed.sign(&[&f.targets]).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out[0].bytes).unwrap();
    assert_eq!(
        v["signed"]["future_field"],
        serde_json::json!({"nested": [1, 2]})
    );
    assert_eq!(v["signed"]["version"], 6);
    // And a verifier accepts the re-signed file with the field in it.
    files.insert(RoleName::targets(), out[0].bytes.clone());
    f.resnapshot(&mut files, 11, 11);
    let repo = f
        .verify_files(&Fixture::fetched_from(&files), VerifyOptions::default())
        .unwrap();
    assert!(
        repo.targets()
            .unwrap()
            .signed
            .extra
            .contains_key("future_field")
    );
}

#[test]
fn docker_signer_add_sign_revoke_and_remove() {
    let mut f = Fixture::new();
    let alice = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let bob = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let alice_role = f
        .editor
        .add_signer("alice", &[alice.public_key().clone()])
        .unwrap();
    f.editor
        .add_signer("bob", &[bob.public_key().clone()])
        .unwrap();
    assert!(f.editor.add_signer("releases", &[]).is_err());
    assert!(f.editor.add_signer("Bad/Name", &[]).is_err());
    assert_eq!(f.editor.delegation_keys(&RoleName::releases()).len(), 2);
    // Alice signs into every direct delegation she can: releases and her own.
    let roles = f.editor.signable_roles(&[&alice]);
    assert_eq!(roles, vec![alice_role.clone(), RoleName::releases()]);
    for role in &roles {
        f.add_tag(role, "v1", 1);
    }
    // Without delegation keys, the repository owner signs into targets.
    assert_eq!(
        f.editor.signable_roles(&[&f.targets]),
        vec![RoleName::targets()]
    );
    assert!(f.editor.signable_roles(&[&f.snapshot]).is_empty());
    // Bob's role has no metadata yet, so alice alone can publish.
    f.publish(&[&alice]);
    let repo = f.verify(VerifyOptions::default()).unwrap();
    let t = repo.lookup("v1").unwrap();
    assert_eq!(
        (t.role.clone(), t.signers.clone()),
        (RoleName::releases(), vec![alice.public_key().key_id()])
    );

    // Revoke removes the tag everywhere.
    let mut changed = f.editor.revoke_tag("v1");
    changed.sort();
    assert_eq!(changed, vec![alice_role.clone(), RoleName::releases()]);
    // Remove alice: her role goes, her key leaves releases, bob's stays.
    assert!(f.editor.remove_signer("alice").unwrap());
    assert!(!f.editor.remove_signer("alice").unwrap());
    assert_eq!(
        f.editor.delegation_keys(&RoleName::releases()),
        vec![bob.public_key().clone()]
    );
    f.publish(&[&bob]);
    let repo = f.verify(VerifyOptions::default()).unwrap();
    assert!(repo.lookup("v1").is_none());
    assert!(repo.delegation(&alice_role).is_none());
    // Removing the last signer removes releases too.
    assert!(f.editor.remove_signer("bob").unwrap());
    assert!(f.editor.delegation(&RoleName::releases()).is_none());
    f.publish(&[]);
    let repo = f.verify(VerifyOptions::default()).unwrap();
    assert!(repo.targets().unwrap().signed.delegations.roles.is_empty());
}
