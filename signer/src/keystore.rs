//! Private keys at rest: one file per key, encrypted under a passphrase, and
//! import of Notary/docker encrypted PEM keys.
//!
//! Layout: `<dir>/<canonical key id>.key`, mode 0600, in a 0700 directory.
//! The root ("offline") key and each repository's targets ("tagging") key
//! are separate files; each file names its `role` and, for per-repository
//! keys, its `gun`. A file is JSON:
//!
//! ```text
//! {"bay_key":1,"role":"targets","gun":"example.com/app","algorithm":"ecdsa",
//!  "public":"<base64 of the public key JSON>",
//!  "kdf":{"name":"argon2id","m_cost":19456,"t_cost":2,"p_cost":1,"salt":"…"},
//!  "cipher":"xchacha20poly1305","nonce":"…","ciphertext":"…"}
//! ```
//!
//! The key is derived with Argon2id and the 32-byte secret sealed with
//! XChaCha20-Poly1305; everything but the ciphertext is authenticated as
//! associated data, so a file whose role or gun was edited does not decrypt.
//!
//! Notary's own files (`ENCRYPTED PRIVATE KEY` PEM with `role:`/`gun:`
//! headers, PKCS#8 PBES2 with PBKDF2-HMAC-SHA1 and AES-256-CBC) are read by
//! [`decrypt_notary_pem`] and [`KeyStore::import_notary_pem`], never written.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::key::{
    KeyAlgorithm, KeyError, KeyId, PrivateKey, PublicKey, Sign as _, pem_body, pem_headers,
};
use crate::names::Gun;
use crate::passphrase::{PassphraseError, PassphraseRequest, PassphraseSource, Purpose};

/// How many times a passphrase source is asked again after a wrong answer.
const MAX_ATTEMPTS: u32 = 3;

/// Errors of the key store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// Filesystem error.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No file for this key ID.
    #[error("no private key {key_id} in {dir}")]
    NotFound {
        /// Key.
        key_id: KeyId,
        /// Store directory.
        dir: PathBuf,
    },
    /// The file does not parse.
    #[error("key file {path} is malformed: {reason}")]
    Malformed {
        /// File.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// The passphrase did not decrypt the key.
    #[error("wrong passphrase for the {role} key")]
    WrongPassphrase {
        /// Role.
        role: String,
    },
    /// No passphrase could be obtained.
    #[error("no passphrase for the {role} key")]
    Passphrase {
        /// Role.
        role: String,
        /// Cause.
        #[source]
        source: PassphraseError,
    },
    /// A key file readable by group or others (docker refuses these too).
    #[error(
        "key file {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)"
    )]
    InsecurePermissions {
        /// File.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key material is invalid.
    #[error("invalid key material")]
    Key {
        /// Cause.
        #[source]
        source: KeyError,
    },
    /// A role header that is empty or holds line breaks or colons.
    #[error("invalid key role {role:?}")]
    InvalidRole {
        /// The role.
        role: String,
    },
    /// A sealed key (file or blob) that is malformed or inconsistent.
    #[error("sealed key is invalid: {reason}")]
    Sealed {
        /// Why.
        reason: &'static str,
    },
    /// Key derivation failed (bad parameters in the file).
    #[error("key derivation failed")]
    Kdf,
    /// The Notary PEM is not an encrypted PKCS#8 key this crate can read.
    #[error("unsupported notary key file: {reason}")]
    UnsupportedNotaryKey {
        /// Why.
        reason: &'static str,
    },
}

/// The role a key file is for: `root`, `targets`, `snapshot`, a delegation
/// (`targets/releases`) or a docker signer name (`alice`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyRole(String);

impl KeyRole {
    /// Validates a role header value.
    pub fn new(role: impl Into<String>) -> Result<Self, KeyStoreError> {
        let role = role.into();
        if role.is_empty()
            || role.len() > 255
            || role
                .chars()
                .any(|c| c.is_control() || c == ':' || c.is_whitespace())
        {
            return Err(KeyStoreError::InvalidRole { role });
        }
        Ok(KeyRole(role))
    }
    /// `root`.
    pub fn root() -> Self {
        KeyRole("root".into())
    }
    /// `targets`.
    pub fn targets() -> Self {
        KeyRole("targets".into())
    }
    /// Whether this is the root key.
    pub fn is_root(&self) -> bool {
        self.0 == "root"
    }
    /// The role as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for KeyRole {
    type Error = KeyStoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        KeyRole::new(s)
    }
}

impl From<KeyRole> for String {
    fn from(r: KeyRole) -> String {
        r.0
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// OWASP's Argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        KdfParams {
            m_cost: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KdfJson {
    name: String,
    #[serde(flatten)]
    params: KdfParams,
    #[serde(with = "crate::schema::base64_bytes")]
    salt: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    bay_key: u32,
    role: KeyRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gun: Option<String>,
    algorithm: KeyAlgorithm,
    public: PublicKey,
    kdf: KdfJson,
    cipher: String,
    #[serde(with = "crate::schema::base64_bytes")]
    nonce: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyFile {
    #[serde(flatten)]
    header: Header,
    #[serde(with = "crate::schema::base64_bytes")]
    ciphertext: Vec<u8>,
}

/// What a key file says about its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Canonical key ID (also the file name).
    pub key_id: KeyId,
    /// Role header.
    pub role: KeyRole,
    /// Repository, for per-repository keys.
    pub gun: Option<String>,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// The public key.
    pub public: PublicKey,
    /// The file.
    pub path: PathBuf,
}

/// *Where* keys live (tough's `KeySource`): load, store and generate by
/// role. Implemented by the file-based [`KeyStore`]; a KMS could be another.
pub trait KeySource {
    /// Loads and decrypts a key.
    fn load(
        &self,
        key_id: &KeyId,
        pass: &dyn PassphraseSource,
    ) -> Result<(PrivateKey, KeyInfo), KeyStoreError>;
    /// Encrypts and stores a key.
    fn store(
        &self,
        key: &PrivateKey,
        role: &KeyRole,
        gun: Option<&Gun>,
        pass: &dyn PassphraseSource,
    ) -> Result<KeyInfo, KeyStoreError>;
    /// Generates and stores a key.
    fn generate(
        &self,
        alg: KeyAlgorithm,
        role: &KeyRole,
        gun: Option<&Gun>,
        pass: &dyn PassphraseSource,
    ) -> Result<(PrivateKey, KeyInfo), KeyStoreError> {
        let key = PrivateKey::generate(alg);
        let info = self.store(&key, role, gun, pass)?;
        Ok((key, info))
    }
}

/// A directory of encrypted key files; see the module docs.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
    kdf: KdfParams,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> KeyStoreError + 'a {
    move |source| KeyStoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn derive_key(
    pass: &[u8],
    salt: &[u8],
    p: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
    let params = argon2::Params::new(p.m_cost, p.t_cost, p.p_cost, Some(32))
        .map_err(|_| KeyStoreError::Kdf)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(pass, salt, out.as_mut())
        .map_err(|_| KeyStoreError::Kdf)?;
    Ok(out)
}

fn ask(
    pass: &dyn PassphraseSource,
    role: &KeyRole,
    gun: Option<&Gun>,
    key_id: Option<&KeyId>,
    purpose: Purpose,
    attempt: u32,
) -> Result<Zeroizing<String>, KeyStoreError> {
    pass.passphrase(&PassphraseRequest {
        role,
        gun,
        key_id,
        purpose,
        attempt,
    })
    .map_err(|source| {
        if attempt > 0 {
            KeyStoreError::WrongPassphrase {
                role: role.to_string(),
            }
        } else {
            KeyStoreError::Passphrase {
                role: role.to_string(),
                source,
            }
        }
    })
}

impl KeyStore {
    /// Opens (creating, mode 0700) a key directory, e.g. `~/.bay/trust/private`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<KeyStore, KeyStoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io("chmod", &dir))?;
        Ok(KeyStore {
            dir,
            kdf: KdfParams::default(),
        })
    }

    /// Uses other Argon2id costs for new files (existing files carry theirs).
    pub fn with_kdf_params(mut self, kdf: KdfParams) -> Self {
        self.kdf = kdf;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, key_id: &KeyId) -> PathBuf {
        self.dir.join(format!("{}.key", key_id.as_str()))
    }

    /// Lists the keys (headers only; nothing is decrypted).
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyStoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io("read", &self.dir))? {
            let entry = entry.map_err(io("read", &self.dir))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("key") {
                continue;
            }
            match read_key_file(&path) {
                Ok(file) => out.push(info_of(&file.header, path)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable key file")
                }
            }
        }
        out.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(out)
    }

    /// Keys for a role (and, when given, a GUN).
    pub fn find(&self, role: &KeyRole, gun: Option<&Gun>) -> Result<Vec<KeyInfo>, KeyStoreError> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|k| &k.role == role && gun.is_none_or(|g| k.gun.as_deref() == Some(g.as_str())))
            .collect())
    }

    /// Deletes a key file.
    pub fn remove(&self, key_id: &KeyId) -> Result<(), KeyStoreError> {
        let path = self.path_of(key_id);
        fs::remove_file(&path).map_err(io("remove", &path))
    }

    /// Imports a Notary/docker `ENCRYPTED PRIVATE KEY` PEM (`bay trust key
    /// load`): decrypts it with a passphrase from `pass_in` ([`Purpose::Import`]),
    /// then stores it in our format under `pass_out`. `role` overrides the
    /// file's `role:` header; the `gun:` header is kept.
    pub fn import_notary_pem(
        &self,
        pem: &str,
        role: Option<KeyRole>,
        pass_in: &dyn PassphraseSource,
        pass_out: &dyn PassphraseSource,
    ) -> Result<KeyInfo, KeyStoreError> {
        let header_role = pem_headers(pem, "ENCRYPTED PRIVATE KEY")
            .into_iter()
            .find(|(k, _)| k == "role")
            .map(|(_, v)| v);
        let role = match (role, header_role) {
            (Some(r), _) => r,
            (None, Some(h)) => KeyRole::new(h)?,
            (None, None) => KeyRole::new("unknown")?,
        };
        let mut attempt = 0;
        let key = loop {
            let pass = ask(pass_in, &role, None, None, Purpose::Import, attempt)?;
            match decrypt_notary_pem(pem, &pass) {
                Ok(k) => break k,
                Err(KeyStoreError::WrongPassphrase { .. }) if attempt + 1 < MAX_ATTEMPTS => {
                    attempt += 1
                }
                Err(e) => return Err(e),
            }
        };
        let gun = key.gun.as_deref().map(Gun::new).transpose().ok().flatten();
        self.store(&key.key, &role, gun.as_ref(), pass_out)
    }

    /// [`import_notary_pem`](Self::import_notary_pem) from a file, which must
    /// not be readable by group or others.
    pub fn import_notary_file(
        &self,
        path: &Path,
        role: Option<KeyRole>,
        pass_in: &dyn PassphraseSource,
        pass_out: &dyn PassphraseSource,
    ) -> Result<KeyInfo, KeyStoreError> {
        let meta = fs::metadata(path).map_err(io("stat", path))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyStoreError::InsecurePermissions {
                path: path.to_owned(),
                mode,
            });
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io("read", path))?);
        self.import_notary_pem(&text, role, pass_in, pass_out)
    }
}

fn info_of(h: &Header, path: PathBuf) -> KeyInfo {
    KeyInfo {
        key_id: h.public.key_id(),
        role: h.role.clone(),
        gun: h.gun.clone(),
        algorithm: h.algorithm,
        public: h.public.clone(),
        path,
    }
}

fn read_key_file(path: &Path) -> Result<KeyFile, KeyStoreError> {
    let bytes = Zeroizing::new(fs::read(path).map_err(io("read", path))?);
    serde_json::from_slice(&bytes).map_err(|_| KeyStoreError::Malformed {
        path: path.to_owned(),
        reason: "not a bay key file",
    })
}

fn aad(h: &Header) -> Result<Vec<u8>, KeyStoreError> {
    crate::canonical::to_canonical(h).map_err(|_| KeyStoreError::Sealed {
        reason: "header cannot be canonicalized",
    })
}

/// Encrypts `key` into a sealed blob without touching the filesystem
/// (e.g. a server keeping its timestamp keys in a database).
fn seal_file(
    key: &PrivateKey,
    role: &KeyRole,
    gun: Option<&Gun>,
    passphrase: &str,
    kdf: KdfParams,
) -> Result<KeyFile, KeyStoreError> {
    let mut salt = vec![0u8; 16];
    let mut nonce = vec![0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let header = Header {
        bay_key: 1,
        role: role.clone(),
        gun: gun.map(|g| g.as_str().to_owned()),
        algorithm: key.algorithm(),
        public: key.public_key().clone(),
        kdf: KdfJson {
            name: "argon2id".into(),
            params: kdf,
            salt,
        },
        cipher: "xchacha20poly1305".into(),
        nonce,
    };
    let aad = aad(&header)?;
    let k = derive_key(passphrase.as_bytes(), &header.kdf.salt, kdf)?;
    let cipher = XChaCha20Poly1305::new(k.as_ref().into());
    let secret = key.secret_bytes();
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&header.nonce),
            Payload {
                msg: &secret,
                aad: &aad,
            },
        )
        .map_err(|_| KeyStoreError::Kdf)?;
    Ok(KeyFile { header, ciphertext })
}

/// Decrypts a sealed key; `Ok(None)` means the passphrase is wrong.
fn open_file(file: &KeyFile, passphrase: &str) -> Result<Option<PrivateKey>, KeyStoreError> {
    let h = &file.header;
    if h.bay_key != 1
        || h.kdf.name != "argon2id"
        || h.cipher != "xchacha20poly1305"
        || h.nonce.len() != 24
    {
        return Err(KeyStoreError::Sealed {
            reason: "unsupported version, kdf or cipher",
        });
    }
    let aad = aad(h)?;
    let k = derive_key(passphrase.as_bytes(), &h.kdf.salt, h.kdf.params)?;
    let cipher = XChaCha20Poly1305::new(k.as_ref().into());
    let Ok(secret) = cipher.decrypt(
        XNonce::from_slice(&h.nonce),
        Payload {
            msg: &file.ciphertext,
            aad: &aad,
        },
    ) else {
        return Ok(None);
    };
    let secret = Zeroizing::new(secret);
    let key = PrivateKey::from_secret_bytes(h.algorithm, &secret)
        .map_err(|source| KeyStoreError::Key { source })?;
    if key.public_key() != &h.public {
        return Err(KeyStoreError::Sealed {
            reason: "private key does not match its public key",
        });
    }
    Ok(Some(key))
}

/// Encrypts a key into the key-file format (Argon2id + XChaCha20-Poly1305,
/// role and gun authenticated), for storage outside a [`KeyStore`], such as
/// a server's database.
pub fn seal_key(
    key: &PrivateKey,
    role: &KeyRole,
    gun: Option<&Gun>,
    passphrase: &str,
    kdf: KdfParams,
) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
    let file = seal_file(key, role, gun, passphrase, kdf)?;
    serde_json::to_vec(&file)
        .map(Zeroizing::new)
        .map_err(|_| KeyStoreError::Sealed {
            reason: "cannot serialize",
        })
}

/// Decrypts what [`seal_key`] made; returns the key and its role and gun.
pub fn unseal_key(
    sealed: &[u8],
    passphrase: &str,
) -> Result<(PrivateKey, KeyRole, Option<String>), KeyStoreError> {
    let file: KeyFile = serde_json::from_slice(sealed).map_err(|_| KeyStoreError::Sealed {
        reason: "not a sealed bay key",
    })?;
    match open_file(&file, passphrase)? {
        Some(key) => Ok((key, file.header.role, file.header.gun)),
        None => Err(KeyStoreError::WrongPassphrase {
            role: file.header.role.to_string(),
        }),
    }
}

impl KeySource for KeyStore {
    fn load(
        &self,
        key_id: &KeyId,
        pass: &dyn PassphraseSource,
    ) -> Result<(PrivateKey, KeyInfo), KeyStoreError> {
        let path = self.path_of(key_id);
        if !path.exists() {
            return Err(KeyStoreError::NotFound {
                key_id: key_id.clone(),
                dir: self.dir.clone(),
            });
        }
        let file = read_key_file(&path)?;
        let h = &file.header;
        let gun = h.gun.as_deref().and_then(|g| Gun::new(g).ok());
        let mut attempt = 0;
        let key = loop {
            let p = ask(
                pass,
                &h.role,
                gun.as_ref(),
                Some(key_id),
                Purpose::Unlock,
                attempt,
            )?;
            match open_file(&file, &p)? {
                Some(key) => break key,
                None if attempt + 1 < MAX_ATTEMPTS => attempt += 1,
                None => {
                    return Err(KeyStoreError::WrongPassphrase {
                        role: h.role.to_string(),
                    });
                }
            }
        };
        Ok((key, info_of(h, path)))
    }

    fn store(
        &self,
        key: &PrivateKey,
        role: &KeyRole,
        gun: Option<&Gun>,
        pass: &dyn PassphraseSource,
    ) -> Result<KeyInfo, KeyStoreError> {
        let key_id = key.key_id();
        let p = ask(pass, role, gun, Some(&key_id), Purpose::Create, 0)?;
        let file = seal_file(key, role, gun, &p, self.kdf)?;
        let path = self.path_of(&key_id);
        let json = serde_json::to_vec_pretty(&file).map_err(|_| KeyStoreError::Malformed {
            path: path.clone(),
            reason: "cannot serialize",
        })?;
        let tmp = self.dir.join(format!(".{}.key.tmp", key_id.as_str()));
        {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io("create", &tmp))?;
            f.write_all(&json).map_err(io("write", &tmp))?;
            f.sync_all().map_err(io("sync", &tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
        Ok(info_of(&file.header, path))
    }
}

/// A key decrypted from a Notary PEM file, with its headers.
#[derive(Debug)]
pub struct NotaryKey {
    /// The key.
    pub key: PrivateKey,
    /// `role:` header.
    pub role: Option<String>,
    /// `gun:` header.
    pub gun: Option<String>,
}

const EC_PUBLIC_KEY_OID: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const GO_ED25519_OID: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11591.15.1");

/// Decrypts a Notary/docker `ENCRYPTED PRIVATE KEY` PEM (PKCS#8 PBES2,
/// PBKDF2-HMAC-SHA1, AES-256-CBC). The inner key may be a SEC1
/// `ECPrivateKey` (what Notary 0.7 writes for ECDSA), a standard PKCS#8
/// key, a PKCS#8 `PrivateKeyInfo` with version 1 and no public key (which
/// RustCrypto's `pkcs8` refuses), or Notary's ed25519 form (OID
/// 1.3.6.1.4.1.11591.15.1, 32 public ‖ 64 private bytes).
pub fn decrypt_notary_pem(pem: &str, passphrase: &str) -> Result<NotaryKey, KeyStoreError> {
    let body =
        pem_body(pem, "ENCRYPTED PRIVATE KEY").ok_or(KeyStoreError::UnsupportedNotaryKey {
            reason: "no ENCRYPTED PRIVATE KEY block",
        })?;
    let der = B64
        .decode(body.as_bytes())
        .map_err(|_| KeyStoreError::UnsupportedNotaryKey {
            reason: "body is not base64",
        })?;
    let enc = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|_| {
        KeyStoreError::UnsupportedNotaryKey {
            reason: "not an EncryptedPrivateKeyInfo",
        }
    })?;
    let headers = pem_headers(pem, "ENCRYPTED PRIVATE KEY");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let role = header("role");
    // CBC padding failure is how a wrong passphrase shows up.
    let inner = enc
        .decrypt(passphrase)
        .map_err(|_| KeyStoreError::WrongPassphrase {
            role: role.clone().unwrap_or_else(|| "imported".into()),
        })?;
    let key = parse_inner_key(inner.as_bytes()).map_err(|_| KeyStoreError::WrongPassphrase {
        role: role.clone().unwrap_or_else(|| "imported".into()),
    })?;
    Ok(NotaryKey {
        key,
        role,
        gun: header("gun"),
    })
}

fn parse_inner_key(der: &[u8]) -> Result<PrivateKey, KeyError> {
    if let Ok(k) = PrivateKey::from_sec1_der(der) {
        return Ok(k);
    }
    if let Ok(k) = PrivateKey::from_pkcs8_der(der) {
        return Ok(k);
    }
    // A loose PrivateKeyInfo: SEQUENCE { INTEGER, AlgorithmIdentifier, OCTET STRING, ... }.
    use der::Reader as _;
    let malformed = || KeyError::MalformedPrivateKey {
        keytype: crate::key::KeyType::Ecdsa,
    };
    let mut reader = der::SliceReader::new(der).map_err(|_| malformed())?;
    let (oid, key): (der::oid::ObjectIdentifier, Vec<u8>) = reader
        .sequence(|r| {
            let _version: der::asn1::Int = r.decode()?;
            let alg: spki::AlgorithmIdentifierOwned = r.decode()?;
            let key: der::asn1::OctetString = r.decode()?;
            // Skip optional attributes / public key.
            while !r.is_finished() {
                let _: der::asn1::Any = r.decode()?;
            }
            Ok((alg.oid, key.into_bytes()))
        })
        .map_err(|_| malformed())?;
    let key = Zeroizing::new(key);
    if oid == EC_PUBLIC_KEY_OID {
        return PrivateKey::from_sec1_der(&key);
    }
    if oid == GO_ED25519_OID {
        // 32 public ‖ 64 private (seed ‖ public), possibly wrapped once more.
        let raw: &[u8] = if key.len() == 96 {
            &key
        } else if key.len() == 98 && key[0] == 0x04 && key[1] == 96 {
            &key[2..]
        } else {
            return Err(malformed());
        };
        let k = PrivateKey::from_secret_bytes(KeyAlgorithm::Ed25519, &raw[32..64])?;
        if k.public_key().public_bytes() != &raw[..32] {
            return Err(malformed());
        }
        return Ok(k);
    }
    Err(malformed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passphrase::FixedPassphrase;

    fn fast(dir: &Path) -> KeyStore {
        KeyStore::open(dir).unwrap().with_kdf_params(KdfParams {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
        })
    }

    #[test]
    fn store_then_load_both_algorithms_with_headers_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = fast(dir.path());
        let gun = Gun::new("example.com/app").unwrap();
        let pass = FixedPassphrase::new("correct horse");
        let (root, root_info) = store
            .generate(KeyAlgorithm::EcdsaP256, &KeyRole::root(), None, &pass)
            .unwrap();
        let (tk, t_info) = store
            .generate(
                KeyAlgorithm::Ed25519,
                &KeyRole::targets(),
                Some(&gun),
                &pass,
            )
            .unwrap();
        assert_ne!(
            root_info.path, t_info.path,
            "root and targets keys are separate files"
        );
        for info in [&root_info, &t_info] {
            let mode = fs::metadata(&info.path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(
            fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let text = fs::read_to_string(&t_info.path).unwrap();
        assert!(text.contains("\"role\": \"targets\"") && text.contains("example.com/app"));
        assert!(
            !text.contains(&B64.encode(tk.secret_bytes().as_slice())),
            "secret is not in clear"
        );
        let (loaded, info) = store.load(&root.key_id(), &pass).unwrap();
        assert_eq!(loaded.public_key(), root.public_key());
        assert_eq!(info.role, KeyRole::root());
        let (loaded, _) = store.load(&tk.key_id(), &pass).unwrap();
        assert_eq!(loaded.public_key(), tk.public_key());
        assert_eq!(
            store.find(&KeyRole::targets(), Some(&gun)).unwrap().len(),
            1
        );
        assert_eq!(
            store
                .find(&KeyRole::targets(), Some(&Gun::new("x/y").unwrap()))
                .unwrap()
                .len(),
            0
        );
        assert_eq!(store.list().unwrap().len(), 2);
        assert!(matches!(
            store.load(&tk.key_id(), &FixedPassphrase::new("wrong")),
            Err(KeyStoreError::WrongPassphrase { .. })
        ));
        store.remove(&tk.key_id()).unwrap();
        assert!(matches!(
            store.load(&tk.key_id(), &pass),
            Err(KeyStoreError::NotFound { .. })
        ));
    }

    #[test]
    fn sealed_blobs_round_trip_for_server_storage() {
        let k = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let gun = Gun::new("g/app").unwrap();
        let params = KdfParams {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
        };
        let blob = seal_key(
            &k,
            &KeyRole::new("timestamp").unwrap(),
            Some(&gun),
            "server secret",
            params,
        )
        .unwrap();
        let (back, role, g) = unseal_key(&blob, "server secret").unwrap();
        assert_eq!(back.public_key(), k.public_key());
        assert_eq!((role.as_str(), g.as_deref()), ("timestamp", Some("g/app")));
        assert!(matches!(
            unseal_key(&blob, "nope"),
            Err(KeyStoreError::WrongPassphrase { .. })
        ));
        assert!(matches!(
            unseal_key(b"{}", "x"),
            Err(KeyStoreError::Sealed { .. })
        ));
    }

    #[test]
    fn editing_the_role_header_breaks_decryption() {
        let dir = tempfile::tempdir().unwrap();
        let store = fast(dir.path());
        let pass = FixedPassphrase::new("pw");
        let (k, info) = store
            .generate(KeyAlgorithm::EcdsaP256, &KeyRole::targets(), None, &pass)
            .unwrap();
        let text = fs::read_to_string(&info.path).unwrap();
        fs::write(
            &info.path,
            text.replace("\"role\": \"targets\"", "\"role\": \"root\""),
        )
        .unwrap();
        assert!(matches!(
            store.load(&k.key_id(), &pass),
            Err(KeyStoreError::WrongPassphrase { .. })
        ));
    }

    #[test]
    fn a_prompt_is_asked_again_after_a_wrong_passphrase() {
        use std::cell::Cell;
        let dir = tempfile::tempdir().unwrap();
        let store = fast(dir.path());
        let (k, _) = store
            .generate(
                KeyAlgorithm::Ed25519,
                &KeyRole::targets(),
                None,
                &FixedPassphrase::new("right"),
            )
            .unwrap();
        let calls = Cell::new(0);
        let prompt = crate::passphrase::PromptPassphrase(|r: &PassphraseRequest<'_>| {
            calls.set(calls.get() + 1);
            Ok(Zeroizing::new(if r.attempt == 0 {
                "wrong".into()
            } else {
                "right".into()
            }))
        });
        store.load(&k.key_id(), &prompt).unwrap();
        assert_eq!(calls.get(), 2);
    }

    /// Builds a Notary-format file around `inner` DER, as Notary does
    /// (PBKDF2-SHA1, 2048 iterations, 8-byte salt, AES-256-CBC).
    fn notary_pem(inner: &[u8], pass: &str, headers: &str) -> String {
        use pkcs5::pbes2;
        let salt = [7u8; 8];
        let iv = [9u8; 16];
        let params = pbes2::Parameters {
            kdf: pbes2::Pbkdf2Params {
                salt: &salt,
                iteration_count: 2048,
                key_length: None,
                prf: pbes2::Pbkdf2Prf::HmacWithSha1,
            }
            .into(),
            encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &iv },
        };
        let ct = params.encrypt(pass, inner).unwrap();
        let alg = pkcs5::EncryptionScheme::Pbes2(params);
        let info = pkcs8::EncryptedPrivateKeyInfo {
            encryption_algorithm: alg,
            encrypted_data: &ct,
        };
        use der::Encode as _;
        let der = info.to_der().unwrap();
        format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{headers}\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
            crate::key::wrap64(&B64.encode(der))
        )
    }

    #[test]
    fn notary_ed25519_and_loose_ecdsa_forms_decrypt() {
        // ed25519: OID 1.3.6.1.4.1.11591.15.1, 32 public || 64 private.
        let k = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let mut payload = k.public_key().public_bytes().to_vec();
        payload.extend_from_slice(&k.secret_bytes());
        payload.extend_from_slice(k.public_key().public_bytes());
        let info = pkcs8::PrivateKeyInfo {
            algorithm: spki::AlgorithmIdentifierRef {
                oid: GO_ED25519_OID,
                parameters: None,
            },
            private_key: &payload,
            public_key: None,
        };
        use der::Encode as _;
        let pem = notary_pem(
            &info.to_der().unwrap(),
            "pw",
            "role: targets/releases\ngun: a/b\n",
        );
        let got = decrypt_notary_pem(&pem, "pw").unwrap();
        assert_eq!(got.key.public_key(), k.public_key());
        assert_eq!(got.role.as_deref(), Some("targets/releases"));
        assert_eq!(got.gun.as_deref(), Some("a/b"));
        assert!(matches!(
            decrypt_notary_pem(&pem, "nope"),
            Err(KeyStoreError::WrongPassphrase { .. })
        ));

        // ECDSA PrivateKeyInfo with version byte 1 and no public key.
        let e = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let sec1 = {
            let sk = p256::SecretKey::from_slice(&e.secret_bytes()).unwrap();
            sk.to_sec1_der().unwrap()
        };
        let mut der = pkcs8::PrivateKeyInfo {
            algorithm: spki::AlgorithmIdentifierRef {
                oid: EC_PUBLIC_KEY_OID,
                parameters: Some(der::asn1::AnyRef::from(
                    &der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7"),
                )),
            },
            private_key: &sec1,
            public_key: None,
        }
        .to_der()
        .unwrap();
        // Patch INTEGER 0 -> 1 (the version) right after the outer header.
        let at = der
            .windows(3)
            .position(|w| w == [0x02, 0x01, 0x00])
            .unwrap();
        der[at + 2] = 1;
        let pem = notary_pem(&der, "pw", "role: root\n");
        assert_eq!(
            decrypt_notary_pem(&pem, "pw").unwrap().key.public_key(),
            e.public_key()
        );
    }
}
