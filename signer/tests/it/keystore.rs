//! Key files: a real key written by Debian's notary 0.7 CLI, loaded.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;

use bay_signer::key::Sign;
use bay_signer::keystore::{
    KdfParams, KeyRole, KeySource as _, KeyStore, KeyStoreError, decrypt_notary_pem,
};
use bay_signer::passphrase::FixedPassphrase;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/notary-keys")
        .join(name)
}

/// `notary key generate ecdsa` (root, passphrase "rootpass"); the file is
/// named after the canonical key ID, which we must compute the same way.
#[test]
fn real_notary_root_key_decrypts_to_its_file_name_id() {
    let path = fixture("root-ecdsa-rootpass.key");
    let text = fs::read_to_string(&path).unwrap();
    let key = decrypt_notary_pem(&text, "rootpass").unwrap();
    assert_eq!(key.role.as_deref(), Some("root"));
    assert_eq!(key.gun, None);
    assert_eq!(
        key.key.key_id().as_str(),
        "a37b9b8d47af1c849d35e6c7645648eb5a60457e5e236cff5f5ab0d80aa225f4"
    );
    let (method, sig) = key.key.sign(b"msg").unwrap();
    key.key.public_key().verify(method, b"msg", &sig).unwrap();
    assert!(matches!(
        decrypt_notary_pem(&text, "wrong"),
        Err(KeyStoreError::WrongPassphrase { .. })
    ));
}

#[test]
fn key_load_refuses_group_readable_files_then_imports() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("private"))
        .unwrap()
        .with_kdf_params(KdfParams {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
        });
    let src = dir.path().join("root.key");
    fs::copy(fixture("root-ecdsa-rootpass.key"), &src).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o644)).unwrap();
    let pin = FixedPassphrase::new("rootpass");
    let pout = FixedPassphrase::new("new passphrase");
    assert!(matches!(
        store.import_notary_file(&src, None, &pin, &pout),
        Err(KeyStoreError::InsecurePermissions { mode: 0o644, .. })
    ));
    fs::set_permissions(&src, fs::Permissions::from_mode(0o600)).unwrap();
    let info = store.import_notary_file(&src, None, &pin, &pout).unwrap();
    assert_eq!(info.role, KeyRole::root());
    let (key, _) = store.load(&info.key_id, &pout).unwrap();
    assert_eq!(key.key_id(), info.key_id);
    // Role override (docker `key load --name alice`).
    let info = store
        .import_notary_file(&src, Some(KeyRole::new("alice").unwrap()), &pin, &pout)
        .unwrap();
    assert_eq!(info.role.as_str(), "alice");
}
