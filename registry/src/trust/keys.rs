//! Server-held timestamp and snapshot keys.
//!
//! Like notary-server's `local` trust service, keys are **ed25519** (method
//! `eddsa`). Private keys are sealed with bay-signer's [`seal_key`]
//! (XChaCha20-Poly1305, role and GUN authenticated) under a random server
//! secret created once in `<root>/trust-key-secret` (mode 0600), and only
//! the sealed form is stored in the database.
//!
//! `GET {role}.key` returns the key the current root lists for the role;
//! without a root it returns the newest key made for the GUN, creating one
//! if there is none. `POST {role}.key` always creates a new *pending* key,
//! which becomes *active* when an uploaded root lists it.

use std::path::{Path, PathBuf};

use bay_signer::key::{KeyAlgorithm, PrivateKey, PublicKey, Sign as _};
use bay_signer::keystore::{KdfParams, KeyRole, KeyStoreError, seal_key, unseal_key};
use bay_signer::names::Gun;
use rand::RngCore as _;
use zeroize::Zeroizing;

use crate::meta::{Meta, MetaError, TrustKeyRow, now_nanos};

/// Argon2id cost for sealing server keys. The "passphrase" is a 256-bit
/// random secret, so stretching adds no strength; the minimum cost keeps
/// unsealing (once per server signature) cheap.
const KDF: KdfParams = KdfParams {
    m_cost: 64,
    t_cost: 1,
    p_cost: 1,
};

/// Errors with server keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret file cannot be read or written.
    #[error("trust key secret {path}")]
    Secret {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The secret file holds something else than 64 hex digits.
    #[error("trust key secret {path} is corrupt")]
    SecretCorrupt {
        /// File.
        path: PathBuf,
    },
    /// Sealing or unsealing failed.
    #[error("sealed trust key")]
    Seal {
        /// Cause.
        #[source]
        source: KeyStoreError,
    },
    /// A sealed key belongs to another GUN or role than its row says.
    #[error("sealed trust key {key_id} does not belong to {gun}/{role}")]
    Mismatch {
        /// Key.
        key_id: String,
        /// GUN of the row.
        gun: String,
        /// Role of the row.
        role: String,
    },
    /// A stored public key does not parse.
    #[error("stored public key {key_id} is corrupt")]
    PublicKey {
        /// Key.
        key_id: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// The file holding the server secret. (Kept here rather than in
/// `storage::layout`, which the trust module does not own; it is not an
/// object-store path.)
pub fn secret_file(root: &Path) -> PathBuf {
    root.join("trust-key-secret")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the server secret, creating it on first use. Two concurrent first
/// calls cannot end with different secrets: the file appears through a
/// hard link, which never replaces an existing file.
pub fn load_or_create_secret(root: &Path) -> Result<Zeroizing<String>, KeyError> {
    let path = secret_file(root);
    let err = |source| KeyError::Secret {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) => return check_secret(&path, s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    let secret = Zeroizing::new(hex(raw.as_ref()));
    let mut tag = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut tag);
    let tmp = root.join(format!(".trust-key-secret.{}", hex(&tag)));
    crate::auth::jwt::write_private(&tmp, secret.as_bytes()).map_err(err)?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(secret),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let s = std::fs::read_to_string(&path).map_err(err)?;
            check_secret(&path, s)
        }
        Err(e) => Err(err(e)),
    }
}

fn check_secret(path: &Path, s: String) -> Result<Zeroizing<String>, KeyError> {
    let s = Zeroizing::new(s);
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::SecretCorrupt {
            path: path.to_owned(),
        });
    }
    Ok(s)
}

/// Generates and stores a new pending key for `gun`/`role`.
pub async fn create_key(
    meta: &Meta,
    root: &Path,
    gun: &Gun,
    role: &str,
) -> Result<PublicKey, KeyError> {
    let secret = load_or_create_secret(root)?;
    let key = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let krole = KeyRole::new(role).map_err(|source| KeyError::Seal { source })?;
    let sealed = seal_key(&key, &krole, Some(gun), &secret, KDF)
        .map_err(|source| KeyError::Seal { source })?;
    let public = key.public_key().clone();
    let key_id = public.key_id().as_str().to_owned();
    let row = TrustKeyRow {
        role: role.to_owned(),
        key_id: key_id.clone(),
        public_key: serde_json::to_string(&public)
            .map_err(|source| KeyError::PublicKey { key_id, source })?,
        sealed: sealed.to_vec(),
        state: "pending".into(),
        created_at: now_nanos(),
    };
    meta.trust_insert_key(gun.as_str(), &row).await?;
    tracing::info!(gun = %gun, role, key_id = %row.key_id, "created server trust key");
    Ok(public)
}

/// The public key of a stored row.
pub fn public_of(row: &TrustKeyRow) -> Result<PublicKey, KeyError> {
    serde_json::from_str(&row.public_key).map_err(|source| KeyError::PublicKey {
        key_id: row.key_id.clone(),
        source,
    })
}

/// Unseals a stored key, checking it is the GUN's and role's key.
pub fn unseal(row: &TrustKeyRow, gun: &Gun, secret: &str) -> Result<PrivateKey, KeyError> {
    let (key, role, key_gun) =
        unseal_key(&row.sealed, secret).map_err(|source| KeyError::Seal { source })?;
    if role.as_str() != row.role
        || key_gun.as_deref() != Some(gun.as_str())
        || key.public_key().key_id().as_str() != row.key_id
    {
        return Err(KeyError::Mismatch {
            key_id: row.key_id.clone(),
            gun: gun.as_str().to_owned(),
            role: row.role.clone(),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_secret(dir.path()).unwrap();
        let b = load_or_create_secret(dir.path()).unwrap();
        assert_eq!(*a, *b);
        let mode = std::fs::metadata(secret_file(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(secret_file(dir.path()), "short").unwrap();
        assert!(matches!(
            load_or_create_secret(dir.path()),
            Err(KeyError::SecretCorrupt { .. })
        ));
    }

    #[tokio::test]
    async fn sealed_keys_round_trip_and_stay_bound_to_their_gun() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta::open_sqlite(&dir.path().join("db"), false)
            .await
            .unwrap();
        let gun = Gun::new("reg:5000/a/b").unwrap();
        let public = create_key(&meta, dir.path(), &gun, "timestamp")
            .await
            .unwrap();
        let rows = meta.trust_keys(gun.as_str(), "timestamp").await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state, "pending");
        assert_eq!(public_of(&rows[0]).unwrap(), public);
        let secret = load_or_create_secret(dir.path()).unwrap();
        let key = unseal(&rows[0], &gun, &secret).unwrap();
        assert_eq!(key.public_key(), &public);
        // The sealed bytes never contain the secret key in clear.
        let seed = key.secret_bytes();
        assert!(!rows[0].sealed.windows(32).any(|w| w == seed.as_slice()));
        let other = Gun::new("reg:5000/a/c").unwrap();
        assert!(matches!(
            unseal(&rows[0], &other, &secret),
            Err(KeyError::Mismatch { .. })
        ));
        assert!(unseal(&rows[0], &gun, &"0".repeat(64)).is_err());
    }
}
