//! Public keys, key IDs, signatures and in-memory private keys.
//!
//! | keytype | `public` is base64 of | signature `method` |
//! |---|---|---|
//! | `ed25519` | 32 raw bytes | `eddsa`, 64 bytes |
//! | `ecdsa` | PKIX SubjectPublicKeyInfo DER (P-256) | `ecdsa`, SHA-256, raw r‖s, 64 bytes |
//! | `ecdsa-x509` | a PEM certificate (leaf first) | as `ecdsa` |
//!
//! A key ID is `hex(sha256(canonical({"keytype":T,"keyval":{"private":null,"public":B64}})))`.
//! X.509 keys have two IDs: the TUF ID above (over the certificate) and the
//! *canonical* ID, the ID of the bare `ecdsa` key inside the certificate,
//! which names the private key file.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use spki::{DecodePublicKey as _, EncodePublicKey as _};

use crate::canonical::to_canonical;
use crate::cert::{self, CertError};
use crate::schema::SignatureMethod;

/// Errors about keys and signatures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The `public` value does not decode for its key type.
    #[error("malformed {keytype} public key")]
    MalformedPublicKey {
        /// Key type.
        keytype: KeyType,
    },
    /// This crate cannot verify with this key type (RSA).
    #[error("unsupported key type {keytype}")]
    UnsupportedKeyType {
        /// Key type.
        keytype: KeyType,
    },
    /// The signature method does not belong to the key type.
    #[error("signature method {method:?} does not match key type {keytype}")]
    MethodMismatch {
        /// Key type.
        keytype: KeyType,
        /// Method found.
        method: SignatureMethod,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// An X.509 key whose certificate does not parse.
    #[error("bad certificate in x509 key")]
    Certificate {
        /// Cause.
        #[source]
        source: CertError,
    },
    /// A PEM public key file that does not parse.
    #[error("malformed PEM public key: {reason}")]
    MalformedPem {
        /// What was wrong.
        reason: &'static str,
    },
    /// A private key that does not decode.
    #[error("malformed {keytype} private key")]
    MalformedPrivateKey {
        /// Key type.
        keytype: KeyType,
    },
    /// A signer failed to sign.
    #[error("signing failed")]
    Signing,
}

/// A key ID: lowercase hex SHA-256 (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// Wraps a key ID read from elsewhere (a file name, a config pin).
    pub fn from_hex(id: impl Into<String>) -> Self {
        KeyId(id.into().to_ascii_lowercase())
    }
    /// The ID as hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Key types Notary writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    /// Ed25519.
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA P-256, PKIX DER.
    #[serde(rename = "ecdsa")]
    Ecdsa,
    /// ECDSA P-256 in a PEM certificate (root keys).
    #[serde(rename = "ecdsa-x509")]
    EcdsaX509,
    /// RSA, PKIX DER (parsed, not verified).
    #[serde(rename = "rsa")]
    Rsa,
    /// RSA in a PEM certificate (parsed, not verified).
    #[serde(rename = "rsa-x509")]
    RsaX509,
}

impl KeyType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Ecdsa => "ecdsa",
            KeyType::EcdsaX509 => "ecdsa-x509",
            KeyType::Rsa => "rsa",
            KeyType::RsaX509 => "rsa-x509",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public key as it appears in root or delegation `keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    keytype: KeyType,
    public: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KeyVal {
    #[serde(default)]
    private: Option<serde_json::Value>,
    #[serde(with = "crate::schema::base64_bytes")]
    public: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KeyJson {
    keytype: KeyType,
    keyval: KeyVal,
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        KeyJson {
            keytype: self.keytype,
            keyval: KeyVal {
                private: None,
                public: self.public.clone(),
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let k = KeyJson::deserialize(d)?;
        Ok(PublicKey {
            keytype: k.keytype,
            public: k.keyval.public,
        })
    }
}

impl PublicKey {
    /// A key from its type and the raw (base64-decoded) `public` bytes.
    pub fn new(keytype: KeyType, public: Vec<u8>) -> Self {
        PublicKey { keytype, public }
    }

    /// The key type.
    pub fn keytype(&self) -> KeyType {
        self.keytype
    }

    /// The raw `public` bytes (32 bytes, SPKI DER or PEM text).
    pub fn public_bytes(&self) -> &[u8] {
        &self.public
    }

    /// The TUF key ID.
    pub fn key_id(&self) -> KeyId {
        // Serializing a struct of strings and bytes cannot fail; fall back to
        // hashing nothing rather than panicking if it ever did.
        let canon = to_canonical(self).unwrap_or_default();
        KeyId(hex::encode(Sha256::digest(&canon)))
    }

    /// The canonical key ID: for X.509 keys the ID of the bare key inside the
    /// certificate (private key files are named after it); otherwise the
    /// TUF ID.
    pub fn canonical_id(&self) -> Result<KeyId, KeyError> {
        match self.keytype {
            KeyType::EcdsaX509 => {
                let spki = cert::leaf_spki_der(&self.public)
                    .map_err(|source| KeyError::Certificate { source })?;
                Ok(PublicKey::new(KeyType::Ecdsa, spki).key_id())
            }
            KeyType::RsaX509 => {
                let spki = cert::leaf_spki_der(&self.public)
                    .map_err(|source| KeyError::Certificate { source })?;
                Ok(PublicKey::new(KeyType::Rsa, spki).key_id())
            }
            _ => Ok(self.key_id()),
        }
    }

    /// The plain (non-certificate) form of this key: itself, or for X.509
    /// keys the `ecdsa` key inside the leaf certificate.
    pub fn plain(&self) -> Result<PublicKey, KeyError> {
        match self.keytype {
            KeyType::EcdsaX509 => {
                let spki = cert::leaf_spki_der(&self.public)
                    .map_err(|source| KeyError::Certificate { source })?;
                Ok(PublicKey::new(KeyType::Ecdsa, spki))
            }
            _ => Ok(self.clone()),
        }
    }

    /// Verifies `sig` by `method` over `msg` (the canonical bytes).
    pub fn verify(&self, method: SignatureMethod, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        match self.keytype {
            KeyType::Ed25519 => {
                if method != SignatureMethod::Eddsa {
                    return Err(self.mismatch(method));
                }
                let bytes: [u8; 32] = self
                    .public
                    .as_slice()
                    .try_into()
                    .map_err(|_| self.malformed())?;
                let vk = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| self.malformed())?;
                let sig = ed25519_dalek::Signature::from_slice(sig)
                    .map_err(|_| KeyError::BadSignature)?;
                vk.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
            }
            KeyType::Ecdsa | KeyType::EcdsaX509 => {
                if method != SignatureMethod::Ecdsa {
                    return Err(self.mismatch(method));
                }
                let spki = if self.keytype == KeyType::Ecdsa {
                    self.public.clone()
                } else {
                    cert::leaf_spki_der(&self.public)
                        .map_err(|source| KeyError::Certificate { source })?
                };
                let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&spki)
                    .map_err(|_| self.malformed())?;
                let sig =
                    p256::ecdsa::Signature::from_slice(sig).map_err(|_| KeyError::BadSignature)?;
                vk.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
            }
            KeyType::Rsa | KeyType::RsaX509 => Err(KeyError::UnsupportedKeyType {
                keytype: self.keytype,
            }),
        }
    }

    /// Parses a PKIX `PUBLIC KEY` PEM, optionally with PEM headers such as
    /// `role: alice` (the `.pub` files `docker trust key generate` writes).
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        let body = pem_body(text, "PUBLIC KEY").ok_or(KeyError::MalformedPem {
            reason: "no PUBLIC KEY block",
        })?;
        let der = B64
            .decode(body.as_bytes())
            .map_err(|_| KeyError::MalformedPem {
                reason: "body is not base64",
            })?;
        Self::from_spki_der(&der)
    }

    /// A key from PKIX SubjectPublicKeyInfo DER (P-256 or Ed25519).
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        if let Ok(vk) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            let der = vk.to_public_key_der().map_err(|_| KeyError::MalformedPem {
                reason: "cannot re-encode P-256 key",
            })?;
            return Ok(PublicKey::new(KeyType::Ecdsa, der.as_bytes().to_vec()));
        }
        let spki =
            spki::SubjectPublicKeyInfoRef::try_from(der).map_err(|_| KeyError::MalformedPem {
                reason: "not a SubjectPublicKeyInfo",
            })?;
        if spki.algorithm.oid == ED25519_OID {
            let raw = spki.subject_public_key.raw_bytes();
            if raw.len() == 32 {
                return Ok(PublicKey::new(KeyType::Ed25519, raw.to_vec()));
            }
        }
        Err(KeyError::MalformedPem {
            reason: "only P-256 and Ed25519 public keys are supported",
        })
    }

    /// Writes the key as a PKIX `PUBLIC KEY` PEM with a `role:` header, as
    /// docker writes `NAME.pub` (X.509 keys write their bare key).
    pub fn to_pem(&self, role: &str) -> Result<String, KeyError> {
        let plain = self.plain()?;
        let der = match plain.keytype {
            KeyType::Ecdsa => plain.public.clone(),
            KeyType::Ed25519 => {
                let mut der = ED25519_SPKI_PREFIX.to_vec();
                der.extend_from_slice(&plain.public);
                der
            }
            other => return Err(KeyError::UnsupportedKeyType { keytype: other }),
        };
        Ok(format!(
            "-----BEGIN PUBLIC KEY-----\nrole: {role}\n\n{}\n-----END PUBLIC KEY-----\n",
            wrap64(&B64.encode(der))
        ))
    }

    fn malformed(&self) -> KeyError {
        KeyError::MalformedPublicKey {
            keytype: self.keytype,
        }
    }

    fn mismatch(&self, method: SignatureMethod) -> KeyError {
        KeyError::MethodMismatch {
            keytype: self.keytype,
            method,
        }
    }
}

const ED25519_OID: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.3.101.112");
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Wraps base64 at 64 columns like PEM writers do.
pub(crate) fn wrap64(b64: &str) -> String {
    b64.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The base64 body of the first `label` PEM block, skipping `Key: value`
/// header lines.
pub(crate) fn pem_body(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(':'))
        .collect();
    Some(body)
}

/// `Key: value` PEM headers of the first `label` block.
pub(crate) fn pem_headers(text: &str, label: &str) -> Vec<(String, String)> {
    let begin = format!("-----BEGIN {label}-----");
    let Some(start) = text.find(&begin).map(|i| i + begin.len()) else {
        return Vec::new();
    };
    text[start..]
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| l.contains(':') && !l.starts_with("-----"))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// *How* a key signs (tough's `Sign`): implemented by [`PrivateKey`], and by
/// anything else that can sign canonical bytes (a KMS, an HSM).
pub trait Sign: Send + Sync {
    /// The plain public key (`ed25519` or `ecdsa`, never a certificate).
    fn public_key(&self) -> &PublicKey;
    /// Signs the canonical bytes; returns the method and the raw signature.
    fn sign(&self, msg: &[u8]) -> Result<(SignatureMethod, Vec<u8>), KeyError>;
}

/// Supported private key algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// Ed25519.
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA P-256 (docker's and Notary's client default).
    #[serde(rename = "ecdsa")]
    EcdsaP256,
}

enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    Ecdsa(p256::ecdsa::SigningKey),
}

/// A private key held in memory; the secret is zeroized on drop (both
/// backing types implement `ZeroizeOnDrop`).
pub struct PrivateKey {
    secret: Secret,
    public: PublicKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generates a fresh key.
    pub fn generate(alg: KeyAlgorithm) -> PrivateKey {
        let mut rng = rand::rngs::OsRng;
        match alg {
            KeyAlgorithm::Ed25519 => {
                Self::from_ed25519(ed25519_dalek::SigningKey::generate(&mut rng))
            }
            KeyAlgorithm::EcdsaP256 => Self::from_p256(p256::ecdsa::SigningKey::random(&mut rng)),
        }
    }

    fn from_ed25519(sk: ed25519_dalek::SigningKey) -> PrivateKey {
        let public = PublicKey::new(KeyType::Ed25519, sk.verifying_key().to_bytes().to_vec());
        PrivateKey {
            secret: Secret::Ed25519(sk),
            public,
        }
    }

    fn from_p256(sk: p256::ecdsa::SigningKey) -> PrivateKey {
        // Encoding a valid point as SPKI cannot fail.
        let der = sk
            .verifying_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        PrivateKey {
            secret: Secret::Ecdsa(sk),
            public: PublicKey::new(KeyType::Ecdsa, der),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.secret {
            Secret::Ed25519(_) => KeyAlgorithm::Ed25519,
            Secret::Ecdsa(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    /// The raw 32-byte secret (Ed25519 seed or P-256 scalar).
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        match &self.secret {
            Secret::Ed25519(sk) => zeroize::Zeroizing::new(sk.to_bytes().to_vec()),
            Secret::Ecdsa(sk) => zeroize::Zeroizing::new(sk.to_bytes().to_vec()),
        }
    }

    /// Rebuilds a key from [`secret_bytes`](Self::secret_bytes).
    pub fn from_secret_bytes(alg: KeyAlgorithm, bytes: &[u8]) -> Result<PrivateKey, KeyError> {
        match alg {
            KeyAlgorithm::Ed25519 => {
                let seed: zeroize::Zeroizing<[u8; 32]> =
                    zeroize::Zeroizing::new(bytes.try_into().map_err(|_| {
                        KeyError::MalformedPrivateKey {
                            keytype: KeyType::Ed25519,
                        }
                    })?);
                Ok(Self::from_ed25519(ed25519_dalek::SigningKey::from_bytes(
                    &seed,
                )))
            }
            KeyAlgorithm::EcdsaP256 => {
                let sk = p256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| {
                    KeyError::MalformedPrivateKey {
                        keytype: KeyType::Ecdsa,
                    }
                })?;
                Ok(Self::from_p256(sk))
            }
        }
    }

    /// Parses a SEC1 `ECPrivateKey` DER (what Notary's encrypted files hold
    /// for ECDSA keys).
    pub fn from_sec1_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        let sk =
            p256::SecretKey::from_sec1_der(der).map_err(|_| KeyError::MalformedPrivateKey {
                keytype: KeyType::Ecdsa,
            })?;
        Ok(Self::from_p256(sk.into()))
    }

    /// Parses a standard PKCS#8 `PrivateKeyInfo` DER (P-256 or RFC 8410
    /// Ed25519).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        use p256::pkcs8::DecodePrivateKey as _;
        if let Ok(sk) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            return Ok(Self::from_p256(sk));
        }
        let info =
            pkcs8::PrivateKeyInfo::try_from(der).map_err(|_| KeyError::MalformedPrivateKey {
                keytype: KeyType::Ecdsa,
            })?;
        if info.algorithm.oid == ED25519_OID {
            // RFC 8410: the private key is an OCTET STRING holding the seed.
            let inner = info.private_key;
            if inner.len() == 34 && inner[0] == 0x04 && inner[1] == 0x20 {
                return Self::from_secret_bytes(KeyAlgorithm::Ed25519, &inner[2..]);
            }
        }
        Err(KeyError::MalformedPrivateKey {
            keytype: KeyType::Ed25519,
        })
    }

    /// The PKCS#8 DER of a P-256 key (used to build certificates).
    pub(crate) fn p256_pkcs8_der(&self) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        use p256::pkcs8::EncodePrivateKey as _;
        match &self.secret {
            Secret::Ecdsa(sk) => sk
                .to_pkcs8_der()
                .ok()
                .map(|d| zeroize::Zeroizing::new(d.as_bytes().to_vec())),
            Secret::Ed25519(_) => None,
        }
    }

    /// The key ID of the plain public key (the canonical ID).
    pub fn key_id(&self) -> KeyId {
        self.public.key_id()
    }
}

impl Sign for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<(SignatureMethod, Vec<u8>), KeyError> {
        match &self.secret {
            Secret::Ed25519(sk) => {
                let sig: ed25519_dalek::Signature = sk.sign(msg);
                Ok((SignatureMethod::Eddsa, sig.to_bytes().to_vec()))
            }
            Secret::Ecdsa(sk) => {
                let sig: p256::ecdsa::Signature =
                    sk.try_sign(msg).map_err(|_| KeyError::Signing)?;
                Ok((SignatureMethod::Ecdsa, sig.to_bytes().to_vec()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// trust-facts §2.4 test vector.
    #[test]
    fn key_id_matches_notary_vector() {
        let k: PublicKey = serde_json::from_str(
            r#"{"keytype":"ed25519","keyval":{"private":null,"public":"LPZwVEFkcD+5U3Ct2WGmhKJO5K2aT52TMZ14H8QrolA="}}"#,
        )
        .unwrap();
        assert_eq!(
            k.key_id().as_str(),
            "22d124070740b316e150d30c204ab072586aea7c1b4267da7f7360a0c420ee54"
        );
        assert_eq!(k.canonical_id().unwrap(), k.key_id());
    }

    #[test]
    fn key_json_shape() {
        let k = PublicKey::new(KeyType::Ed25519, vec![1, 2, 3]);
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            r#"{"keytype":"ed25519","keyval":{"private":null,"public":"AQID"}}"#
        );
    }

    #[test]
    fn sign_then_verify_both_algorithms() {
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let k = PrivateKey::generate(alg);
            let (method, sig) = k.sign(b"hello").unwrap();
            assert_eq!(sig.len(), 64, "raw r||s or ed25519 is 64 bytes");
            k.public_key().verify(method, b"hello", &sig).unwrap();
            assert!(matches!(
                k.public_key().verify(method, b"hellO", &sig),
                Err(KeyError::BadSignature)
            ));
            let other = match method {
                SignatureMethod::Ecdsa => SignatureMethod::Eddsa,
                _ => SignatureMethod::Ecdsa,
            };
            assert!(matches!(
                k.public_key().verify(other, b"hello", &sig),
                Err(KeyError::MethodMismatch { .. })
            ));
            let again = PrivateKey::from_secret_bytes(alg, &k.secret_bytes()).unwrap();
            assert_eq!(again.public_key(), k.public_key());
        }
    }

    #[test]
    fn pem_public_key_round_trip() {
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let k = PrivateKey::generate(alg);
            let pem = k.public_key().to_pem("alice").unwrap();
            assert!(pem.contains("role: alice"));
            assert_eq!(&PublicKey::from_pem(&pem).unwrap(), k.public_key());
            assert_eq!(
                pem_headers(&pem, "PUBLIC KEY"),
                vec![("role".into(), "alice".into())]
            );
        }
        assert!(PublicKey::from_pem("nothing").is_err());
    }
}
