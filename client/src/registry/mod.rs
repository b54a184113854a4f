//! The registry client: distribution-spec v1.1 over HTTPS (plain HTTP only for
//! loopback hosts and hosts the user marked insecure), with Docker token auth.
//!
//! [`RegistryClient`] owns one host's connection pool and auth state. Every
//! request goes through [`RegistryClient::send`], which
//! - attaches the cached `Authorization` for the request's scopes,
//! - answers a 401 challenge once (Bearer: fetch a token from the realm with the
//!   scopes asked; Basic: send the provider's credentials), then retries,
//! - retries transport failures, 429 and 5xx with exponential backoff before
//!   reporting a [`RegistryError::Network`].
//!
//! [`pull`] and [`push`] build the docker-style workflows on top.

pub mod auth;
pub mod error;
pub mod pull;
pub mod push;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt as _;
use oci_types::{Digest, RepoName};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;
use zeroize::Zeroizing;

pub use auth::{Anonymous, AuthProvider, Challenge, Credentials, Scope, StaticAuth};
pub use error::{RegistryError, SpecError};

use crate::image::MANIFEST_ACCEPT;
use crate::reference::is_loopback_host;

/// How the client connects.
#[derive(Clone)]
pub struct ClientOptions {
    /// Hosts (`name[:port]`) that may be reached over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
    /// Credentials source.
    pub auth: Arc<dyn AuthProvider>,
    /// Attempts per request before a network failure is reported (at least 1).
    pub attempts: u32,
    /// First backoff delay; doubles per attempt.
    pub backoff: Duration,
    /// Directories holding `<host[:port]>/*.crt` CA certificates to trust for
    /// that host (docker's `certs.d` layout), e.g. `/etc/bay/certs.d`.
    pub certs_dirs: Vec<std::path::PathBuf>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            auth: Arc::new(Anonymous),
            attempts: 5,
            backoff: Duration::from_millis(200),
            certs_dirs: Vec::new(),
        }
    }
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    /// Access tokens by scope set (this client is one host, so the key is
    /// effectively (host, scopes)), each with the instant it stops being sent.
    tokens: HashMap<String, CachedToken>,
}

struct CachedToken {
    token: String,
    expires: Instant,
}

/// Tokens are dropped from the cache this long before they expire, so a
/// request is never sent with a token about to die in flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// How long a token may be used from now: `issued_at + expires_in` (the
/// spec's default lifetime 60 s when absent or smaller), minus
/// [`TOKEN_MARGIN`]. If the clocks disagree so much that the token looks
/// already expired, trust `expires_in` from now rather than refetch forever.
fn token_lifetime(
    expires_in: Option<u64>,
    issued_at: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Duration {
    let life = expires_in.unwrap_or(60).max(60);
    let age = issued_at
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(0, |t| {
            (now - t.with_timezone(&chrono::Utc)).num_seconds().max(0)
        });
    let age = u64::try_from(age).unwrap_or(0);
    let left = life.saturating_sub(age);
    let left = if left <= TOKEN_MARGIN.as_secs() {
        life
    } else {
        left
    };
    Duration::from_secs(left).saturating_sub(TOKEN_MARGIN)
}

/// A connection to one registry host.
pub struct RegistryClient {
    http: reqwest::Client,
    host: String,
    base: Url,
    opts: ClientOptions,
    state: Mutex<AuthState>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Response of a manifest GET.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The exact bytes.
    pub bytes: Bytes,
    /// `Content-Type` without parameters.
    pub media_type: Option<String>,
    /// The digest of `bytes` (checked against `Docker-Content-Digest` when sent).
    pub digest: Digest,
}

/// Outcome of a cross-repository mount attempt.
#[derive(Debug)]
pub enum MountOutcome {
    /// The registry linked the blob (201).
    Mounted,
    /// It could not; here is a fresh upload session instead (202).
    Upload(Url),
}

/// The largest manifest we accept (the spec's common limit, as Distribution and zot).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// The largest image config we accept.
pub const MAX_CONFIG: u64 = 16 << 20;

fn pull_scope(repo: &RepoName) -> Vec<Scope> {
    vec![Scope::repository(repo.as_str(), "pull")]
}

fn push_scope(repo: &RepoName) -> Vec<Scope> {
    vec![Scope::repository(repo.as_str(), "pull,push")]
}

impl RegistryClient {
    /// Connects to `host`: HTTPS, or for loopback/insecure hosts HTTPS first and
    /// plain HTTP when the TLS attempt fails (docker's behaviour), then pings `/v2/`.
    pub async fn connect(host: &str, opts: ClientOptions) -> Result<Self, RegistryError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("bay/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(16);
        for path in host_cas(&opts.certs_dirs, host) {
            let pem = std::fs::read(&path).map_err(|source| RegistryError::Io {
                op: "read",
                path: path.clone(),
                source,
            })?;
            let cert =
                reqwest::Certificate::from_pem(&pem).map_err(|source| RegistryError::BadCa {
                    path: path.clone(),
                    source,
                })?;
            tracing::debug!(host, ca = %path.display(), "trusting CA certificate");
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(RegistryError::Client)?;
        let plain_ok = is_loopback_host(host) || opts.insecure_registries.iter().any(|h| h == host);
        let https = parse_url(&format!("https://{host}/"))?;
        let mut client = RegistryClient {
            http,
            host: host.to_owned(),
            base: https,
            opts,
            state: Mutex::new(AuthState::default()),
        };
        if plain_ok {
            match client.ping_once().await {
                Ok(()) => return Ok(client),
                // The host speaks TLS but we do not trust it: say so rather
                // than retry in plain HTTP.
                Err(RegistryError::Network { source, .. }) if is_cert_error(&source) => {
                    return Err(client.untrusted(source));
                }
                Err(RegistryError::Network { source, .. }) => {
                    tracing::debug!(host, error = %source, "HTTPS failed; trying plain HTTP");
                    client.base = parse_url(&format!("http://{host}/"))?;
                }
                Err(e) => return Err(e),
            }
            client.ping().await?;
        } else {
            match client.ping().await {
                Err(RegistryError::Network { source, .. }) if is_cert_error(&source) => {
                    return Err(client.untrusted(source));
                }
                Err(RegistryError::Network { source, .. }) if source.is_connect() => {
                    return Err(RegistryError::Insecure {
                        host: host.to_owned(),
                        source,
                    });
                }
                other => other?,
            }
        }
        Ok(client)
    }

    fn untrusted(&self, source: reqwest::Error) -> RegistryError {
        let dir = self
            .opts
            .certs_dirs
            .first()
            .map_or_else(|| "certs.d".to_owned(), |d| d.display().to_string());
        RegistryError::Untrusted {
            host: self.host.clone(),
            hint: format!("{dir}/{}/ca.crt", self.host),
            source,
        }
    }

    /// The options this client was made with (e.g. to reach a second host
    /// with the same credentials source and CAs).
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// The host this client talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `scheme://host/`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    async fn ping_once(&self) -> Result<(), RegistryError> {
        let url = self.url("v2/")?;
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|source| RegistryError::Network {
                host: self.host.clone(),
                attempts: 1,
                source,
            })?;
        self.note_ping(&resp)
    }

    async fn ping(&self) -> Result<(), RegistryError> {
        let url = self.url("v2/")?;
        let resp = self.with_retries(|| self.http.get(url.clone())).await?;
        self.note_ping(&resp)
    }

    fn note_ping(&self, resp: &Response) -> Result<(), RegistryError> {
        match resp.status() {
            StatusCode::OK => Ok(()),
            StatusCode::UNAUTHORIZED => {
                let ch = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(auth::parse_challenge);
                if let Ok(mut st) = self.state.lock() {
                    st.challenge = ch;
                }
                Ok(())
            }
            s => Err(RegistryError::NotARegistry {
                host: self.host.clone(),
                status: s.as_u16(),
            }),
        }
    }

    fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|source| RegistryError::Url {
            url: path.to_owned(),
            source,
        })
    }

    /// Resolves a `Location` header (absolute or relative) against the registry.
    pub fn resolve_location(&self, loc: &str) -> Result<Url, RegistryError> {
        self.url(loc)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.opts.backoff * 2u32.saturating_pow(attempt.min(6))
    }

    /// Sends a request with retries on transport errors, 429 and 5xx; no auth.
    async fn with_retries(
        &self,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.with_attempts(self.opts.attempts.max(1), build).await
    }

    async fn with_attempts(
        &self,
        attempts: u32,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        loop {
            match build().send().await {
                Ok(r) if retryable_status(r.status()) && attempt + 1 < attempts => {
                    tracing::debug!(status = %r.status(), attempt, "retrying");
                }
                Ok(r) => return Ok(r),
                Err(e) if retryable_error(&e) && attempt + 1 < attempts => {
                    tracing::debug!(error = %e, attempt, "retrying");
                }
                Err(source) => {
                    return Err(RegistryError::Network {
                        host: self.host.clone(),
                        attempts: attempt + 1,
                        source,
                    });
                }
            }
            tokio::time::sleep(self.backoff(attempt)).await;
            attempt += 1;
        }
    }

    fn auth_header(&self, scopes: &[Scope]) -> Option<String> {
        let st = self.state.lock().ok()?;
        match st.challenge.as_ref()? {
            Challenge::Basic => match self.opts.auth.credentials(&self.host)? {
                Credentials::Basic { username, password } => Some(basic(&username, &password)),
                Credentials::RefreshToken { .. } => None,
            },
            Challenge::Bearer { .. } => st
                .tokens
                .get(&scope_key(scopes))
                .filter(|t| t.expires > Instant::now())
                .map(|t| format!("Bearer {}", t.token)),
        }
    }

    /// Sends an authenticated request for `scopes`, answering one 401 challenge
    /// and retrying transient failures. `build` is called once per attempt.
    pub async fn send(
        &self,
        scopes: &[Scope],
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.send_with(scopes, self.opts.attempts.max(1), build)
            .await
    }

    /// Like [`Self::send`] without transport retries, for upload requests that
    /// must not be replayed blindly: a cut body may have left bytes on the
    /// registry, so the caller asks the registry where to resume instead.
    pub async fn send_once(
        &self,
        scopes: &[Scope],
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.send_with(scopes, 1, build).await
    }

    async fn send_with(
        &self,
        scopes: &[Scope],
        attempts: u32,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.prefetch_token(scopes).await?;
        let mut challenged = false;
        loop {
            let auth = self.auth_header(scopes);
            let resp = self
                .with_attempts(attempts, || {
                    let rb = build(&self.http);
                    match &auth {
                        Some(a) => rb.header(header::AUTHORIZATION, a),
                        None => rb,
                    }
                })
                .await?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if challenged {
                // A token was issued but still refused: the credentials are
                // fine, the rights are missing.
                if self.opts.auth.credentials(&self.host).is_some() {
                    let repo = scopes
                        .first()
                        .and_then(|s| s.as_str().strip_prefix("repository:"))
                        .and_then(|s| s.rsplit_once(':'))
                        .map_or_else(String::new, |(r, _)| r.to_owned());
                    return Err(RegistryError::Denied {
                        host: self.host.clone(),
                        repo,
                    });
                }
                return Err(RegistryError::Unauthorized {
                    host: self.host.clone(),
                });
            }
            challenged = true;
            let ch = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(auth::parse_challenge)
                .ok_or_else(|| RegistryError::Unauthorized {
                    host: self.host.clone(),
                })?;
            self.answer_challenge(ch, scopes).await?;
        }
    }

    /// Against a token registry, gets the token for `scopes` before sending
    /// when none is cached (or it expired), instead of after a 401: one round
    /// trip less per scope, and an upload body is never sent only to be
    /// refused. Refused credentials are final (asking again after a 401 would
    /// only count one more failed login); any other failure lets the request
    /// go out and the registry's own challenge be answered as usual.
    async fn prefetch_token(&self, scopes: &[Scope]) -> Result<(), RegistryError> {
        if scopes.is_empty() || self.auth_header(scopes).is_some() {
            return Ok(());
        }
        let ch = self.state.lock().ok().and_then(|s| s.challenge.clone());
        let Some(Challenge::Bearer { realm, service, .. }) = ch else {
            return Ok(());
        };
        let ch = Challenge::Bearer {
            realm,
            service,
            scope: None,
        };
        match self.answer_challenge(ch, scopes).await {
            Ok(()) => Ok(()),
            Err(
                e @ (RegistryError::Unauthorized { .. }
                | RegistryError::TooManyRequests { .. }
                | RegistryError::InsecureRealm { .. }),
            ) => Err(e),
            Err(e) => {
                tracing::debug!(host = %self.host, error = %e, "token prefetch failed; the request will be challenged");
                Ok(())
            }
        }
    }

    async fn answer_challenge(&self, ch: Challenge, scopes: &[Scope]) -> Result<(), RegistryError> {
        let creds = self.opts.auth.credentials(&self.host);
        match &ch {
            Challenge::Basic => {
                if !matches!(creds, Some(Credentials::Basic { .. })) {
                    return Err(RegistryError::Unauthorized {
                        host: self.host.clone(),
                    });
                }
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut wanted: Vec<String> =
                    scopes.iter().map(|s| s.as_str().to_owned()).collect();
                if let Some(extra) = scope {
                    for s in extra.split(' ').filter(|s| !s.is_empty()) {
                        if !wanted.iter().any(|w| w == s) {
                            wanted.push(s.to_owned());
                        }
                    }
                }
                let token = self
                    .fetch_token(realm, service.as_deref(), &wanted, creds.as_ref())
                    .await?;
                if let Ok(mut st) = self.state.lock() {
                    let now = Instant::now();
                    st.tokens.retain(|_, t| t.expires > now);
                    st.tokens.insert(scope_key(scopes), token);
                }
            }
        }
        if let Ok(mut st) = self.state.lock() {
            st.challenge = Some(ch);
        }
        Ok(())
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> Result<CachedToken, RegistryError> {
        let mut url = parse_url(realm)?;
        let realm_host = url.host_str().unwrap_or("").to_owned();
        if creds.is_some() {
            self.check_realm(&url, realm)?;
        }
        let bad = |detail: String| RegistryError::BadToken {
            realm: realm.to_owned(),
            detail,
        };
        let resp = match creds {
            Some(Credentials::RefreshToken { token, .. }) => {
                let mut form: Vec<(&str, String)> = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", token.to_string()),
                    ("client_id", "bay".to_owned()),
                    ("scope", scopes.join(" ")),
                ];
                if let Some(s) = service {
                    form.push(("service", s.to_owned()));
                }
                self.with_retries(|| self.http.post(url.clone()).form(&form))
                    .await?
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                    if let Some(Credentials::Basic { username, .. }) = other {
                        q.append_pair("account", username);
                    }
                }
                let auth = match other {
                    Some(Credentials::Basic { username, password }) => {
                        Some(basic(username, password))
                    }
                    _ => None,
                };
                self.with_retries(|| {
                    let rb = self.http.get(url.clone());
                    match &auth {
                        Some(a) => rb.header(header::AUTHORIZATION, a),
                        None => rb,
                    }
                })
                .await?
            }
        };
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(RegistryError::Unauthorized {
                    host: self.host.clone(),
                });
            }
            StatusCode::TOO_MANY_REQUESTS => return Err(self.too_many()),
            s => return Err(bad(format!("status {s}"))),
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
            issued_at: Option<String>,
        }
        let body = resp
            .bytes()
            .await
            .map_err(|source| RegistryError::Network {
                host: realm_host.clone(),
                attempts: 1,
                source,
            })?;
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
        let lifetime = token_lifetime(t.expires_in, t.issued_at.as_deref(), chrono::Utc::now());
        let token = t
            .token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("no token field".to_owned()))?;
        tracing::debug!(realm, scopes = ?scopes, lifetime_s = lifetime.as_secs(), "got an access token");
        Ok(CachedToken {
            token,
            expires: Instant::now() + lifetime,
        })
    }

    /// Turns a failed response into the most specific error we can name.
    pub async fn error_for(
        &self,
        method: &'static str,
        repo: &RepoName,
        reference: Option<&str>,
        resp: Response,
    ) -> RegistryError {
        let status = resp.status();
        let url = resp.url().to_string();
        let body = resp.bytes().await.unwrap_or_default();
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default)]
            errors: Vec<SpecError>,
        }
        let errors = serde_json::from_slice::<Body>(&body)
            .map(|b| b.errors)
            .unwrap_or_default();
        let code = errors.first().map(|e| e.code.as_str()).unwrap_or("");
        match (status, code) {
            (StatusCode::UNAUTHORIZED, _) | (_, "UNAUTHORIZED") => RegistryError::Unauthorized {
                host: self.host.clone(),
            },
            (StatusCode::FORBIDDEN, _) | (_, "DENIED") => RegistryError::Denied {
                host: self.host.clone(),
                repo: repo.to_string(),
            },
            (_, "NAME_UNKNOWN") => RegistryError::NameUnknown {
                host: self.host.clone(),
                repo: repo.to_string(),
            },
            (_, "MANIFEST_UNKNOWN") | (StatusCode::NOT_FOUND, "")
                if method == "GET manifest" || method == "HEAD manifest" =>
            {
                let r = reference.unwrap_or("?").to_owned();
                RegistryError::ManifestUnknown {
                    what: if r.contains(':') { "manifest" } else { "tag" },
                    reference: r,
                    repo: repo.to_string(),
                }
            }
            _ => RegistryError::Status {
                method,
                url,
                status: status.as_u16(),
                errors,
            },
        }
    }

    /// `GET /v2/<repo>/manifests/<reference>` with every supported `Accept` type.
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(&pull_scope(repo), |c| {
                c.get(url.clone()).header(header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .error_for("GET manifest", repo, Some(reference), resp)
                .await);
        }
        let media_type = content_type(resp.headers());
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| Digest::parse(s).ok());
        let bytes = self.read_limited(resp, MAX_MANIFEST, "manifest").await?;
        let alg = header_digest
            .as_ref()
            .map_or(oci_types::Algorithm::Sha256, Digest::algorithm);
        let digest = Digest::of(alg, &bytes);
        if let Some(h) = header_digest
            && h != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: "manifest",
                host: self.host.clone(),
                expected: h,
                actual: digest,
            });
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Reads a whole (small) body, refusing more than `limit` bytes, so a
    /// hostile registry cannot make us buffer gigabytes.
    pub async fn read_limited(
        &self,
        resp: Response,
        limit: u64,
        what: &'static str,
    ) -> Result<Bytes, RegistryError> {
        let too_big = |size: u64| RegistryError::TooLarge {
            what,
            host: self.host.clone(),
            size,
            limit,
        };
        if let Some(n) = resp.content_length().filter(|n| *n > limit) {
            return Err(too_big(n));
        }
        let mut buf = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
            let chunk = chunk.map_err(|source| RegistryError::Network {
                host: self.host.clone(),
                attempts: 1,
                source,
            })?;
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(too_big((buf.len() + chunk.len()) as u64));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    }

    /// `GET` a blob, from `offset` onwards when non-zero (a `Range` request).
    pub async fn get_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        offset: u64,
    ) -> Result<Response, RegistryError> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let resp = self
            .send(&pull_scope(repo), |c| {
                let rb = c.get(url.clone());
                if offset > 0 {
                    rb.header(header::RANGE, format!("bytes={offset}-"))
                } else {
                    rb
                }
            })
            .await?;
        if resp.status().is_success() {
            Ok(resp)
        } else if resp.status() == StatusCode::NOT_FOUND {
            Err(RegistryError::BlobUnknown {
                repo: repo.to_string(),
                digest: digest.clone(),
            })
        } else {
            Err(self.error_for("GET blob", repo, None, resp).await)
        }
    }

    /// Whether the registry has `digest` in `repo` (`HEAD`).
    pub async fn blob_exists(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let url = self.url(&format!("v2/{repo}/blobs/{digest}"))?;
        let resp = self
            .send(&push_scope(repo), |c| c.head(url.clone()))
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.error_for("HEAD blob", repo, None, resp).await),
        }
    }

    fn upload_location(
        &self,
        method: &'static str,
        repo: &RepoName,
        resp: &Response,
    ) -> Result<Url, RegistryError> {
        let loc = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::BadHeader {
                host: self.host.clone(),
                header: "Location",
                method,
                path: format!("/v2/{repo}/blobs/uploads/"),
            })?;
        self.resolve_location(loc)
    }

    /// `POST …/uploads/?mount=<d>&from=<repo>`.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: &RepoName,
    ) -> Result<MountOutcome, RegistryError> {
        let mut url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from.as_str());
        let mut scopes = push_scope(repo);
        scopes.push(Scope::repository(from.as_str(), "pull"));
        let resp = self.send(&scopes, |c| c.post(url.clone())).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Upload(
                self.upload_location("POST", repo, &resp)?,
            )),
            _ => Err(self.error_for("POST mount", repo, None, resp).await),
        }
    }

    /// `POST …/uploads/`: opens an upload session.
    pub async fn start_upload(&self, repo: &RepoName) -> Result<Url, RegistryError> {
        let url = self.url(&format!("v2/{repo}/blobs/uploads/"))?;
        let resp = self
            .send(&push_scope(repo), |c| c.post(url.clone()))
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.error_for("POST upload", repo, None, resp).await);
        }
        self.upload_location("POST", repo, &resp)
    }

    /// `GET <location>`: how many bytes the registry holds for an upload, and
    /// its current location; `None` if the upload is gone.
    pub async fn upload_status(
        &self,
        repo: &RepoName,
        location: &Url,
    ) -> Result<Option<(u64, Url)>, RegistryError> {
        let resp = self
            .send(&push_scope(repo), |c| c.get(location.clone()))
            .await?;
        match resp.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                let next = range_end(resp.headers()).map_or(0, |e| e + 1);
                let loc = match resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                {
                    Some(l) => self.resolve_location(l)?,
                    None => location.clone(),
                };
                Ok(Some((next, loc)))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.error_for("GET upload", repo, None, resp).await),
        }
    }

    /// `PATCH <location>` with `Content-Range: start-end`; returns the next location.
    pub async fn patch_chunk(
        &self,
        repo: &RepoName,
        location: &Url,
        start: u64,
        chunk: Bytes,
    ) -> Result<Url, RegistryError> {
        let len = chunk.len() as u64;
        let resp = self
            .send_once(&push_scope(repo), |c| {
                c.patch(location.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(
                        header::CONTENT_RANGE,
                        format!("{start}-{}", start + len - 1),
                    )
                    .header(header::CONTENT_LENGTH, len)
                    .body(chunk.clone())
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.error_for("PATCH upload", repo, None, resp).await);
        }
        self.upload_location("PATCH", repo, &resp)
    }

    /// `PUT <location>?digest=<d>`, with the final bytes (possibly the whole blob).
    pub async fn finish_upload(
        &self,
        repo: &RepoName,
        location: &Url,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), RegistryError> {
        let mut url = location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = self
            .send(&push_scope(repo), |c| {
                c.put(url.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, body.len())
                    .body(body.clone())
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.error_for("PUT upload", repo, None, resp).await);
        }
        Ok(())
    }

    /// `PUT <location>?digest=<d>` streaming the whole blob from `path` (monolithic upload).
    pub async fn put_blob_file(
        &self,
        repo: &RepoName,
        location: &Url,
        digest: &Digest,
        path: &std::path::Path,
        size: u64,
        progress: Option<&crate::progress::LayerProgress>,
    ) -> Result<(), RegistryError> {
        let mut url = location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = self
            .send_once(&push_scope(repo), |c| {
                // Opened here (the closure also runs again after an auth
                // challenge). The blob was just stat'ed; should it vanish, the
                // registry rejects the short body with a digest error.
                let body = match std::fs::File::open(path) {
                    Ok(f) => {
                        if let Some(p) = progress {
                            p.set(0);
                        }
                        let bar = progress.cloned();
                        let stream = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(f), 256 << 10)
                            .inspect(move |chunk| {
                                if let (Some(b), Ok(c)) = (&bar, chunk) {
                                    b.inc(c.len() as u64);
                                }
                            });
                        reqwest::Body::wrap_stream(stream)
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot reopen blob for upload");
                        reqwest::Body::from(Vec::new())
                    }
                };
                c.put(url.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, size)
                    .body(body)
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.error_for("PUT upload", repo, None, resp).await);
        }
        Ok(())
    }

    /// Every tag of `repo` (`GET /v2/<repo>/tags/list`, following `Link` pages).
    pub async fn list_tags(&self, repo: &RepoName) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut url = self.url(&format!("v2/{repo}/tags/list"))?;
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let resp = self.send(&pull_scope(repo), |c| c.get(url.clone())).await?;
            if !resp.status().is_success() {
                return Err(self.error_for("GET tags", repo, None, resp).await);
            }
            let next = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(';').next())
                .map(|l| {
                    l.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_owned()
                });
            let body = self.read_limited(resp, MAX_MANIFEST, "tag list").await?;
            let page: Page =
                serde_json::from_slice(&body).map_err(|e| RegistryError::BadResponse {
                    what: "tag list",
                    host: self.host.clone(),
                    detail: e.to_string(),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => url = self.resolve_location(&n)?,
                None => break,
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// `PUT /v2/<repo>/manifests/<reference>`; returns the digest the registry reports.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Option<Digest>, RegistryError> {
        let url = self.url(&format!("v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(&push_scope(repo), |c| {
                c.put(url.clone())
                    .header(header::CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self
                .error_for("PUT manifest", repo, Some(reference), resp)
                .await);
        }
        Ok(resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| Digest::parse(s).ok()))
    }

    /// Sends an arbitrary request (for callers such as a trust backend sharing our auth).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        scopes: &[Scope],
        body: Option<(Bytes, String)>,
    ) -> Result<Response, RegistryError> {
        let url = self.url(path)?;
        self.send(scopes, |c| {
            let rb = c.request(method.clone(), url.clone());
            match &body {
                Some((b, ct)) => rb.header(header::CONTENT_TYPE, ct).body(b.clone()),
                None => rb,
            }
        })
        .await
    }

    /// The challenge `/v2/` answered with, if any (None: an open registry).
    pub fn challenge(&self) -> Option<Challenge> {
        self.state.lock().ok().and_then(|s| s.challenge.clone())
    }

    /// Checks `username`/`password` the way `docker login` does and, when the
    /// token server offers one, returns a refresh token to store instead of
    /// the password (`GET <realm>?offline_token=true&client_id=bay`, no scope).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<Zeroizing<String>>, RegistryError> {
        let unauthorized = || RegistryError::Unauthorized {
            host: self.host.clone(),
        };
        match self.challenge() {
            None => Ok(None),
            Some(Challenge::Basic) => {
                let url = self.url("v2/")?;
                let auth = basic(username, password);
                let resp = self
                    .with_retries(|| {
                        self.http
                            .get(url.clone())
                            .header(header::AUTHORIZATION, &auth)
                    })
                    .await?;
                match resp.status() {
                    s if s.is_success() => Ok(None),
                    StatusCode::TOO_MANY_REQUESTS => Err(self.too_many()),
                    _ => Err(unauthorized()),
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let mut url = parse_url(&realm)?;
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("account", username);
                    q.append_pair("client_id", "bay");
                    q.append_pair("offline_token", "true");
                    if let Some(s) = &service {
                        q.append_pair("service", s);
                    }
                }
                self.check_realm(&url, &realm)?;
                let auth = basic(username, password);
                let resp = self
                    .with_retries(|| {
                        self.http
                            .get(url.clone())
                            .header(header::AUTHORIZATION, &auth)
                    })
                    .await?;
                match resp.status() {
                    s if s.is_success() => {}
                    StatusCode::TOO_MANY_REQUESTS => return Err(self.too_many()),
                    _ => return Err(unauthorized()),
                }
                #[derive(serde::Deserialize)]
                struct T {
                    refresh_token: Option<String>,
                }
                let body = resp
                    .bytes()
                    .await
                    .map_err(|source| RegistryError::Network {
                        host: self.host.clone(),
                        attempts: 1,
                        source,
                    })?;
                let t: T = serde_json::from_slice(&body).map_err(|e| RegistryError::BadToken {
                    realm: realm.clone(),
                    detail: e.to_string(),
                })?;
                Ok(t.refresh_token
                    .filter(|t| !t.is_empty())
                    .map(Zeroizing::new))
            }
        }
    }

    fn too_many(&self) -> RegistryError {
        RegistryError::TooManyRequests {
            host: self.host.clone(),
        }
    }

    fn check_realm(&self, url: &Url, realm: &str) -> Result<(), RegistryError> {
        let host = url.host_str().unwrap_or("");
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        if url.scheme() != "https"
            && !is_loopback_host(&authority)
            && !self.opts.insecure_registries.contains(&authority)
        {
            return Err(RegistryError::InsecureRealm {
                realm: realm.to_owned(),
            });
        }
        Ok(())
    }
}

/// `*.crt` files under `<dir>/<host>/` for every configured certs dir.
fn host_cas(dirs: &[std::path::PathBuf], host: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d.join(host)) else {
            continue;
        };
        let mut certs: Vec<_> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        certs.sort();
        out.extend(certs);
    }
    out
}

/// Whether a transport error is rustls refusing the server's certificate.
/// (io::Error hides its payload from `source()`, so look inside explicitly.)
fn is_cert_error(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        // Walk through nested io::Errors (hyper wraps rustls' io::Error in another).
        let mut inner: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(x) = inner {
            if let Some(rustls::Error::InvalidCertificate(_)) = x.downcast_ref::<rustls::Error>() {
                return true;
            }
            inner = x
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|e| e as &(dyn std::error::Error + 'static));
        }
        cur = err.source();
    }
    false
}

fn parse_url(s: &str) -> Result<Url, RegistryError> {
    Url::parse(s).map_err(|source| RegistryError::Url {
        url: s.to_owned(),
        source,
    })
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn scope_key(scopes: &[Scope]) -> String {
    let mut v: Vec<&str> = scopes.iter().map(Scope::as_str).collect();
    v.sort_unstable();
    v.join(" ")
}

fn retryable_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || matches!(s.as_u16(), 500 | 502 | 503 | 504)
}

fn retryable_error(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
}

fn content_type(h: &HeaderMap) -> Option<String> {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The inclusive end of a `Range: 0-<end>` header.
fn range_end(h: &HeaderMap) -> Option<u64> {
    let v = h.get(header::RANGE)?.to_str().ok()?;
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    let (_, end) = v.split_once('-')?;
    end.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header_parsing() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, "0-1023".parse().unwrap());
        assert_eq!(range_end(&h), Some(1023));
        h.insert(header::RANGE, "bytes=0-9".parse().unwrap());
        assert_eq!(range_end(&h), Some(9));
        h.insert(header::RANGE, "garbage".parse().unwrap());
        assert_eq!(range_end(&h), None);
    }

    #[test]
    fn token_lifetimes_honour_expires_in_and_issued_at() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let s = |d: Duration| d.as_secs();
        assert_eq!(s(token_lifetime(Some(300), None, now)), 290);
        // The spec's default and floor: 60 s.
        assert_eq!(s(token_lifetime(None, None, now)), 50);
        assert_eq!(s(token_lifetime(Some(5), None, now)), 50);
        // Issued two minutes ago: three minutes left.
        assert_eq!(
            s(token_lifetime(Some(300), Some("2026-01-01T00:08:00Z"), now)),
            170
        );
        // A clock far ahead of the issuer's does not make every token stale.
        assert_eq!(
            s(token_lifetime(Some(300), Some("2025-12-31T00:00:00Z"), now)),
            290
        );
        // Issued "in the future" (our clock behind): full lifetime.
        assert_eq!(
            s(token_lifetime(Some(300), Some("2026-01-01T01:00:00Z"), now)),
            290
        );
    }

    #[test]
    fn scope_keys_are_order_independent() {
        let a = Scope::repository("a", "pull");
        let b = Scope::repository("b", "pull,push");
        assert_eq!(scope_key(&[a.clone(), b.clone()]), scope_key(&[b, a]));
    }
}
