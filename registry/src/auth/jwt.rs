//! Access tokens: short-lived EdDSA (Ed25519) JWTs signed with a key the
//! registry generates once and keeps in its data root (mode 0600).
//!
//! Verification is offline (no database, no password hash). Tokens that
//! verified once are cached until they expire, so a client reusing its
//! token for thousands of requests pays for one signature check.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;
use super::scope::Scope;

/// Leeway for `exp`/`nbf`, as Distribution allows.
const LEEWAY_SECS: u64 = 60;
/// Most verified tokens kept in the cache before it is cleared.
const CACHE_MAX: usize = 10_000;

/// JWT claims (Docker token spec).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user name, `""` for anonymous.
    pub sub: String,
    /// Audience: the service.
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Not before.
    pub nbf: i64,
    /// Issued at.
    pub iat: i64,
    /// Unique id.
    pub jti: String,
    /// Granted access.
    pub access: Vec<Scope>,
}

/// The registry's token signing key.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    public_x: String,
    issuer: String,
    service: String,
    ttl_secs: u64,
    cache: Mutex<HashMap<String, Arc<Claims>>>,
}

impl TokenKeys {
    /// Load the key at `path`, generating and storing it (mode 0600) if absent.
    pub fn load_or_generate(
        path: &Path,
        issuer: &str,
        service: &str,
        ttl_secs: u64,
    ) -> Result<Self, AuthError> {
        use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
        let io = |source| AuthError::KeyFile {
            path: path.to_owned(),
            source,
        };
        let signing = match std::fs::read(path) {
            Ok(der) => ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                .map_err(|e| AuthError::KeyFormat(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| AuthError::KeyFormat(e.to_string()))?;
                write_private(path, der.as_bytes()).map_err(io)?;
                tracing::info!(path = %path.display(), "generated token signing key");
                key
            }
            Err(e) => return Err(io(e)),
        };
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| AuthError::KeyFormat(e.to_string()))?;
        let public_x = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
        // RFC 7638 thumbprint of the OKP JWK: members in lexical order.
        let thumb_input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{public_x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(
            thumb_input.as_bytes(),
        ));
        Ok(TokenKeys {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_components(&public_x)
                .map_err(|e| AuthError::KeyFormat(e.to_string()))?,
            kid,
            public_x,
            issuer: issuer.to_owned(),
            service: service.to_owned(),
            ttl_secs,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The key id (RFC 7638 thumbprint) in every token header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": self.public_x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]})
    }

    /// Lifetime of issued tokens.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Issue a token for `sub` carrying `access`. Returns (token, claims).
    pub fn issue(&self, sub: &str, access: Vec<Scope>) -> Result<(String, Claims), AuthError> {
        self.issue_at(sub, access, chrono::Utc::now().timestamp())
    }

    /// Issue a token as if at unix time `now` (tests use a past time to get
    /// a genuinely expired token).
    pub fn issue_at(
        &self,
        sub: &str,
        access: Vec<Scope>,
        now: i64,
    ) -> Result<(String, Claims), AuthError> {
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: sub.to_owned(),
            aud: self.service.clone(),
            exp: now + self.ttl_secs as i64,
            nbf: now - 1,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("JWT".into());
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|e| AuthError::Sign(e.to_string()))?;
        Ok((token, claims))
    }

    /// Verify a token: EdDSA signature by our key, issuer, audience, time.
    /// Anything else (`alg=none`, HS256, another key, edits) is refused.
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        let now = chrono::Utc::now().timestamp();
        if let Some(c) = self.lock_cache().get(token).cloned()
            && c.exp + LEEWAY_SECS as i64 >= now
        {
            return Ok(c);
        }
        let mut v = Validation::new(Algorithm::EdDSA);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.service]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        let claims = Arc::new(data.claims);
        let mut cache = self.lock_cache();
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, c| c.exp + LEEWAY_SECS as i64 >= now);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Claims>>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Write a secret file readable by its owner only.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scope::Action;

    fn keys(dir: &Path) -> TokenKeys {
        TokenKeys::load_or_generate(&dir.join("k"), "iss", "svc", 300).unwrap()
    }

    #[test]
    fn issue_verify_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        let (t, _) = k
            .issue("alice", vec![Scope::repository("a/b", &[Action::Pull])])
            .unwrap();
        let c = k.verify(&t).unwrap();
        assert_eq!(c.sub, "alice");
        assert!(c.access[0].allows("repository", "a/b", Action::Pull));
        // The key persists: a reloaded registry accepts the same token.
        let k2 = keys(dir.path());
        assert_eq!(k.kid(), k2.kid());
        assert!(k2.verify(&t).is_ok());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("k"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn forged_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = keys(dir.path());
        let (t, claims) = k.issue("alice", vec![]).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        // alg=none
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert!(k.verify(&none).is_err());
        // HS256 signed with the public key as secret (key confusion).
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(k.public_x.as_bytes()).unwrap(),
        )
        .unwrap();
        assert!(k.verify(&hs).is_err());
        // Edited claims with the old signature.
        let mut evil = claims.clone();
        evil.sub = "root".into();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).unwrap());
        assert!(
            k.verify(&format!("{}.{}.{}", parts[0], body, parts[2]))
                .is_err()
        );
        // Flipped signature byte.
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[0] ^= 1;
        assert!(
            k.verify(&format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                URL_SAFE_NO_PAD.encode(sig)
            ))
            .is_err()
        );
        // Another registry's key.
        let other = tempfile::tempdir().unwrap();
        let (t2, _) = keys(other.path()).issue("alice", vec![]).unwrap();
        assert!(k.verify(&t2).is_err());
        assert!(k.verify("garbage").is_err());
        // Expired.
        let mut old = claims;
        old.exp = chrono::Utc::now().timestamp() - 3600;
        old.iat = old.exp - 300;
        old.nbf = old.iat;
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(k.kid.clone());
        let expired = jsonwebtoken::encode(&h, &old, &k.encoding).unwrap();
        assert!(k.verify(&expired).is_err());
    }
}
