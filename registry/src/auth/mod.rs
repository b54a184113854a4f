//! Authentication and access control: accounts, access rules, Docker token
//! spec (`/token`), personal access tokens and refresh tokens.
//!
//! Requests to `/v2/` carry a short-lived JWT (see [`jwt`]), checked offline
//! on every request. Passwords (argon2id) and token secrets (SHA-256 of 256
//! random bits) are only checked at `/token`, which is rate limited (see
//! [`ratelimit`]). A token carries the intersection of what was asked for
//! and what the rules ([`acl`]) allow at the time it is issued, so
//! revocations and deleted users take effect at the next token issue and
//! the token lifetime bounds the rest.

pub mod acl;
pub mod jwt;
pub mod ratelimit;
pub mod scope;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;

use crate::config::{AuthConfig, AuthMode};
use crate::error::{ApiError, Code};
use crate::meta::{Meta, MetaError, PersonalToken, RuleSubject, StoredRule, User};
use acl::Subject;
use scope::{Action, Scope};

/// Prefix of personal access tokens: `bay_pat_<id>_<secret>`.
pub const PAT_PREFIX: &str = "bay_pat_";
/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "bay_rt_";

/// Errors of the auth layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The signing key file could not be read or written.
    #[error("token key file {path}")]
    KeyFile {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The signing key file is not a PKCS#8 Ed25519 key.
    #[error("token key is invalid: {0}")]
    KeyFormat(String),
    /// Signing failed.
    #[error("token signing failed: {0}")]
    Sign(String),
    /// A presented token failed verification.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Metadata.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// One access a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// `repository` or `registry`.
    pub kind: &'static str,
    /// Resource name.
    pub name: String,
    /// Action.
    pub action: Action,
}

impl Need {
    /// `repository:<name>:<action>`.
    pub fn repo(name: &str, action: Action) -> Self {
        Need {
            kind: "repository",
            name: name.to_owned(),
            action,
        }
    }
}

/// A successful login at `/token`.
#[derive(Debug, Clone)]
pub struct Login {
    /// The account.
    pub user: User,
    /// The personal access token used instead of a password, if any.
    pub pat: Option<PersonalToken>,
}

/// Why a login failed.
#[derive(Debug)]
pub enum LoginError {
    /// Wrong credentials (same answer for unknown users).
    Invalid,
    /// Too many failures: retry after this long.
    RateLimited(Duration),
    /// Internal failure.
    Internal(AuthError),
}

impl From<MetaError> for LoginError {
    fn from(e: MetaError) -> Self {
        LoginError::Internal(e.into())
    }
}

/// Hash a password with argon2id (default parameters).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(phc) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// SHA-256 hex of a token secret.
pub fn secret_hash(secret: &str) -> String {
    hex_encode(&<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()))
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// A new personal access token: the stored record and the secret string
/// shown once to the user.
pub fn new_personal_token(
    user: &str,
    name: &str,
    scopes: Vec<String>,
    expires_at: Option<i64>,
) -> (PersonalToken, String) {
    let mut idb = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut idb);
    let id = hex_encode(&idb);
    let secret = random_secret();
    let token = format!("{PAT_PREFIX}{id}_{secret}");
    (
        PersonalToken {
            id,
            user: user.to_owned(),
            name: name.to_owned(),
            scopes,
            secret_hash: secret_hash(&secret),
            created_at: chrono::Utc::now().timestamp(),
            expires_at,
            last_used_at: None,
            revoked_at: None,
        },
        token,
    )
}

/// The authenticator shared by all requests.
pub struct Auth {
    keys: jwt::TokenKeys,
    meta: Meta,
    cfg: AuthConfig,
    enforced: AtomicBool,
    limiter: ratelimit::Limiter,
    dummy_hash: String,
    config_rules: Vec<StoredRule>,
    tls: bool,
}

/// Credentials presented on a request.
enum Presented<'a> {
    None,
    Bearer(&'a str),
    Other,
}

fn presented(headers: &HeaderMap) -> Presented<'_> {
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => Presented::None,
        Some(v) => match v.split_once(' ') {
            Some((scheme, tok)) if scheme.eq_ignore_ascii_case("bearer") => {
                Presented::Bearer(tok.trim())
            }
            _ => Presented::Other,
        },
    }
}

/// Decode `Authorization: Basic` into (user, secret).
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

impl Auth {
    /// Set up from config, loading or creating the signing key under `root`.
    pub async fn new(
        cfg: AuthConfig,
        meta: Meta,
        root: &Path,
        tls: bool,
    ) -> Result<Self, AuthError> {
        let keys = jwt::TokenKeys::load_or_generate(
            &root.join("token-signing-key.der"),
            &cfg.issuer,
            &cfg.service,
            cfg.token_ttl_secs,
        )?;
        let dummy_hash = tokio::task::spawn_blocking(|| hash_password("not a real password"))
            .await
            .map_err(|e| AuthError::Hash(e.to_string()))??;
        let mut config_rules = Vec::new();
        for r in &cfg.rules {
            let mut subjects: Vec<RuleSubject> =
                r.users.iter().cloned().map(RuleSubject::User).collect();
            subjects.extend(r.groups.iter().cloned().map(RuleSubject::Group));
            if r.anonymous {
                subjects.push(RuleSubject::Anonymous);
            }
            for s in subjects {
                for p in &r.repos {
                    config_rules.push(StoredRule {
                        id: 0,
                        subject: s.clone(),
                        pattern: p.clone(),
                        actions: r.actions.clone(),
                    });
                }
            }
        }
        let limiter = ratelimit::Limiter::new(ratelimit::Limits {
            per_addr: cfg.max_failures_per_addr,
            per_user: cfg.max_failures_per_user,
            window: Duration::from_secs(cfg.failure_window_secs),
        });
        let auth = Auth {
            keys,
            meta,
            cfg,
            enforced: AtomicBool::new(false),
            limiter,
            dummy_hash,
            config_rules,
            tls,
        };
        auth.refresh().await?;
        Ok(auth)
    }

    /// Re-read whether authentication is enforced (it turns on, never off,
    /// once the first user exists).
    pub async fn refresh(&self) -> Result<bool, MetaError> {
        if self.enforced.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let on = self.cfg.mode == AuthMode::Required || self.meta.has_users().await?;
        if on {
            self.enforced.store(true, Ordering::Relaxed);
            tracing::info!("authentication is enforced");
        }
        Ok(on)
    }

    /// Whether requests must be authenticated.
    pub fn enforced(&self) -> bool {
        self.enforced.load(Ordering::Relaxed)
    }

    /// The token keys (for the JWKS endpoint).
    pub fn keys(&self) -> &jwt::TokenKeys {
        &self.keys
    }

    /// The configured service name.
    pub fn service(&self) -> &str {
        &self.cfg.service
    }

    async fn rules(&self) -> Result<Vec<StoredRule>, MetaError> {
        let mut r = self.config_rules.clone();
        r.extend(self.meta.rules().await?);
        Ok(r)
    }

    fn realm(&self, headers: &HeaderMap) -> String {
        if let Some(r) = &self.cfg.realm {
            return r.clone();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or("localhost");
        format!("{}://{host}/token", if self.tls { "https" } else { "http" })
    }

    fn challenge(&self, headers: &HeaderMap, needs: &[Need], error: Option<&str>) -> ApiError {
        let mut value = format!(
            r#"Bearer realm="{}",service="{}""#,
            self.realm(headers),
            self.cfg.service
        );
        let mut scopes: Vec<Scope> = Vec::new();
        for n in needs {
            match scopes
                .iter_mut()
                .find(|s| s.kind == n.kind && s.name == n.name)
            {
                Some(s) => {
                    s.actions.insert(n.action);
                }
                None => scopes.push(Scope {
                    kind: n.kind.to_owned(),
                    name: n.name.clone(),
                    actions: [n.action].into_iter().collect(),
                }),
            }
        }
        if !scopes.is_empty() {
            let list: Vec<String> = scopes.iter().map(ToString::to_string).collect();
            value.push_str(&format!(r#",scope="{}""#, list.join(" ")));
        }
        if let Some(e) = error {
            value.push_str(&format!(r#",error="{e}""#));
        }
        let detail: Vec<serde_json::Value> = needs
            .iter()
            .map(|n| serde_json::json!({"Type": n.kind, "Class": "", "Name": n.name, "Action": n.action.as_str()}))
            .collect();
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthorized,
            "authentication required",
        )
        .with_detail(serde_json::Value::Array(detail))
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer")),
        )
    }

    /// Check that the request may do everything in `needs`. An empty list
    /// means "any authenticated client" (the `/v2/` ping).
    pub async fn authorize(&self, headers: &HeaderMap, needs: &[Need]) -> Result<(), ApiError> {
        if !self.enforced() {
            return Ok(());
        }
        match presented(headers) {
            Presented::Bearer(tok) => {
                let claims = match self.keys.verify(tok) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::info!(target: "audit", event = "denied", reason = %e, "invalid token");
                        return Err(self.challenge(headers, needs, Some("invalid_token")));
                    }
                };
                let missing: Vec<Need> = needs
                    .iter()
                    .filter(|n| {
                        !claims
                            .access
                            .iter()
                            .any(|s| s.allows(n.kind, &n.name, n.action))
                    })
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                // The token lacks a scope. If the rules would not grant it
                // either, say so (403); otherwise ask for a better token.
                let rules = self.rules().await?;
                let user = if claims.sub.is_empty() {
                    None
                } else {
                    self.meta.user(&claims.sub).await?
                };
                let who = match &user {
                    Some(u) => Subject::User(u),
                    None => Subject::Anonymous,
                };
                let denied = missing.iter().any(|n| !self.rule_allows(&rules, &who, n));
                tracing::info!(target: "audit", event = "denied", user = %claims.sub, need = ?missing, denied, "insufficient scope");
                if denied && user.is_some() {
                    return Err(ApiError::new(StatusCode::FORBIDDEN, Code::Denied, "requested access to the resource is denied")
                        .with_detail(serde_json::json!(missing.iter().map(|n| serde_json::json!({"Type": n.kind, "Name": n.name, "Action": n.action.as_str()})).collect::<Vec<_>>())));
                }
                Err(self.challenge(headers, needs, Some("insufficient_scope")))
            }
            Presented::None if !needs.is_empty() => {
                // Anonymous access where rules allow it, without a token.
                let rules = self.rules().await?;
                if needs
                    .iter()
                    .all(|n| self.rule_allows(&rules, &Subject::Anonymous, n))
                {
                    return Ok(());
                }
                Err(self.challenge(headers, needs, None))
            }
            Presented::None => Err(self.challenge(headers, needs, None)),
            Presented::Other => Err(self.challenge(headers, needs, Some("invalid_token"))),
        }
    }

    fn rule_allows(&self, rules: &[StoredRule], who: &Subject<'_>, n: &Need) -> bool {
        match n.kind {
            "repository" => {
                let acts = acl::allowed(rules, who, &n.name);
                acts.contains(&n.action) || acts.contains(&Action::All)
            }
            // Only admins reach the catalog.
            _ => matches!(who, Subject::User(u) if u.admin),
        }
    }

    /// The verified claims of a Bearer token on the request, if any.
    pub fn bearer_claims(&self, headers: &HeaderMap) -> Option<std::sync::Arc<jwt::Claims>> {
        match presented(headers) {
            Presented::Bearer(t) => self.keys.verify(t).ok(),
            _ => None,
        }
    }

    /// Check a user name and password (or personal access token) at `/token`.
    pub async fn login(&self, user: &str, secret: &str, addr: IpAddr) -> Result<Login, LoginError> {
        if let Some(wait) = self.limiter.check(addr, Some(user)) {
            tracing::warn!(target: "audit", event = "login", user, client = %addr, outcome = "rate-limited");
            return Err(LoginError::RateLimited(wait));
        }
        let outcome = self.check_credentials(user, secret).await?;
        match outcome {
            Some(login) => {
                tracing::info!(target: "audit", event = "login", user, client = %addr, pat = ?login.pat.as_ref().map(|p| &p.id), outcome = "ok");
                Ok(login)
            }
            None => {
                self.limiter.failed(addr, Some(user));
                tracing::warn!(target: "audit", event = "login", user, client = %addr, outcome = "failed");
                Err(LoginError::Invalid)
            }
        }
    }

    async fn check_credentials(
        &self,
        user: &str,
        secret: &str,
    ) -> Result<Option<Login>, LoginError> {
        let account = self.meta.user(user).await?;
        if let Some(rest) = secret.strip_prefix(PAT_PREFIX) {
            let Some((id, sec)) = rest.split_once('_') else {
                return Ok(None);
            };
            let Some(pat) = self.meta.personal_token(id).await? else {
                return Ok(None);
            };
            let now = chrono::Utc::now().timestamp();
            let live = pat.revoked_at.is_none() && pat.expires_at.is_none_or(|e| e > now);
            let matches = secret_hash(sec) == pat.secret_hash;
            return match account {
                Some(u) if live && matches && pat.user == u.name => {
                    self.meta.touch_personal_token(&pat.id).await?;
                    Ok(Some(Login {
                        user: u,
                        pat: Some(pat),
                    }))
                }
                _ => Ok(None),
            };
        }
        // Unknown users are checked against a dummy hash so both failures
        // take the same time.
        let phc = account
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let pw = secret.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc))
            .await
            .map_err(|e| LoginError::Internal(AuthError::Hash(e.to_string())))?;
        Ok(match (ok, account) {
            (true, Some(u)) => Some(Login { user: u, pat: None }),
            _ => None,
        })
    }

    /// Exchange a refresh token for the login it stands for.
    pub async fn login_refresh(&self, token: &str, addr: IpAddr) -> Result<Login, LoginError> {
        if let Some(wait) = self.limiter.check(addr, None) {
            return Err(LoginError::RateLimited(wait));
        }
        let found = match token.strip_prefix(REFRESH_PREFIX) {
            Some(sec) => self.meta.refresh_token(&secret_hash(sec)).await?,
            None => None,
        };
        let login = match found {
            Some(rt) if rt.service == self.cfg.service => {
                let user = self.meta.user(&rt.user).await?;
                let pat = match &rt.pat_id {
                    Some(id) => self.meta.personal_token(id).await?,
                    None => None,
                };
                let now = chrono::Utc::now().timestamp();
                let pat_ok = match (&rt.pat_id, &pat) {
                    (None, _) => true,
                    (Some(_), Some(p)) => {
                        p.revoked_at.is_none() && p.expires_at.is_none_or(|e| e > now)
                    }
                    (Some(_), None) => false,
                };
                match user {
                    Some(u) if pat_ok => Some(Login { user: u, pat }),
                    _ => None,
                }
            }
            _ => None,
        };
        match login {
            Some(l) => {
                tracing::info!(target: "audit", event = "refresh", user = %l.user.name, client = %addr, outcome = "ok");
                Ok(l)
            }
            None => {
                self.limiter.failed(addr, None);
                tracing::warn!(target: "audit", event = "refresh", client = %addr, outcome = "failed");
                Err(LoginError::Invalid)
            }
        }
    }

    /// Record a failed anonymous-looking attempt (bad Basic header etc.).
    pub fn note_failure(&self, addr: IpAddr) {
        self.limiter.failed(addr, None);
    }

    /// The scopes to grant: requested ∩ rules (∩ the PAT's own scopes).
    pub async fn grant(
        &self,
        login: Option<&Login>,
        requested: &[Scope],
    ) -> Result<Vec<Scope>, MetaError> {
        let rules = self.rules().await?;
        let who = match login {
            Some(l) => Subject::User(&l.user),
            None => Subject::Anonymous,
        };
        let pat_scopes: Option<Vec<Scope>> = login
            .and_then(|l| l.pat.as_ref())
            .map(|p| p.scopes.iter().filter_map(|s| Scope::parse(s)).collect());
        let mut out = Vec::new();
        for asked in requested {
            // Trust clients (docker, notary) name repositories by GUN,
            // `host:port/team/app`: grant on the repository it maps to.
            let mut req = asked.clone();
            if req.kind == "repository"
                && oci_types::RepoName::parse(&req.name).is_err()
                && let Some(repo) = crate::api::route::gun_repository(&req.name)
            {
                req.name = repo.to_string();
            }
            let req = &req;
            let mut granted = std::collections::BTreeSet::new();
            for &a in &req.actions {
                let need = Need {
                    kind: if req.kind == "registry" {
                        "registry"
                    } else {
                        "repository"
                    },
                    name: req.name.clone(),
                    action: a,
                };
                if req.kind != "repository" && req.kind != "registry" {
                    continue;
                }
                if req.kind == "registry" && req.name != "catalog" {
                    continue;
                }
                if !self.rule_allows(&rules, &who, &need) {
                    continue;
                }
                if let Some(ps) = &pat_scopes {
                    let ok = ps.iter().any(|p| {
                        p.kind == req.kind
                            && acl::pattern_matches(&p.name, &req.name)
                            && (p.actions.contains(&a) || p.actions.contains(&Action::All))
                    });
                    if !ok {
                        continue;
                    }
                }
                granted.insert(a);
            }
            if !granted.is_empty() {
                out.push(Scope {
                    kind: req.kind.clone(),
                    name: req.name.clone(),
                    actions: granted,
                });
            }
        }
        Ok(out)
    }

    /// Issue an access token.
    pub fn issue(&self, sub: &str, access: Vec<Scope>) -> Result<(String, jwt::Claims), AuthError> {
        self.keys.issue(sub, access)
    }

    /// Issue and store a refresh token for `login`.
    pub async fn issue_refresh(&self, login: &Login, client_id: &str) -> Result<String, MetaError> {
        let secret = random_secret();
        self.meta
            .add_refresh_token(
                &secret_hash(&secret),
                &login.user.name,
                &self.cfg.service,
                client_id,
                login.pat.as_ref().map(|p| p.id.as_str()),
            )
            .await?;
        Ok(format!("{REFRESH_PREFIX}{secret}"))
    }
}
