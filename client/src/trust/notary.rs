//! [`NotaryTrust`]: Docker Content Trust against the registry's own Notary v1
//! endpoints (`/v2/<gun>/_trust/tuf/…`), with the GUN `host:port/repo`.
//!
//! # Pull
//! `resolve` fetches `root.json`, then `timestamp.json`, the snapshot and
//! targets by the checksums their parents name, and every delegation the
//! snapshot lists, verifying each with [`bay_signer::verify::TrustedRepo`]
//! in TUF order. The first root seen for a GUN is pinned (trust on first
//! use); afterwards a served root must be the pinned one or chain to it.
//! The versions trusted last time are recorded, so older metadata served
//! later is a rollback. The tag is then looked up in `targets/releases`, then
//! `targets`, and the pull is pinned to that digest.
//!
//! # Push
//! `after_push` signs the pushed tag. On a repository's first signed push it
//! creates the root key when the key store has none (passphrase from
//! `DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE` or the prompt, asked twice) and the
//! repository's targets key, and publishes root and targets; the server
//! signs snapshot and timestamp with its own keys. Later pushes verify the
//! current trust data first, then add the tag: through `targets/releases`
//! when that delegation exists and we hold one of its keys (see
//! [`NotaryTrust::add_signer`]), else with the stored targets key.
//!
//! # Layout under `$BAY_HOME/trust`
//! ```text
//! trust/
//! ├── private/<key id>.key           encrypted keys (bay_signer::keystore)
//! └── tuf/<gun>/metadata/
//!         ├── root.json              the pinned root
//!         ├── timestamp.json, snapshot.json, targets.json, targets/<name>.json
//!         └── versions.json          versions trusted last (rollback check)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bay_signer::cert::{default_cert_validity, generate_root_certificate};
use bay_signer::editor::{EditorError, NewRepoKeys, RepoEditor, SignedRole};
use bay_signer::key::{KeyAlgorithm, KeyId, PrivateKey, PublicKey, Sign};
use bay_signer::keystore::{KeyRole, KeySource, KeyStore, KeyStoreError};
use bay_signer::names::{Gun, NameError, RoleName};
use bay_signer::passphrase::PassphraseSource;
use bay_signer::schema::{FileMeta, RoleType};
use bay_signer::verify::{
    DEFAULT_MAX_METADATA_SIZE, TrustedRepo, TrustedVersions, VerifyError, VerifyOptions,
};
use bytes::Bytes;
use oci_types::Digest;
use reqwest::{Method, StatusCode};

use super::{Resolution, TrustError, TrustPolicy};
use crate::reference::ImageRef;
use crate::registry::{RegistryClient, RegistryError, Scope};

/// The message docker users know for an unsigned tag.
pub const NOT_SIGNED: &str = "image is not signed; see `bay trust` or set DOCKER_CONTENT_TRUST=0";

/// Failures of the Notary backend (wrapped in [`TrustError::Failed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotaryError {
    /// The image name does not make a valid GUN.
    #[error("{gun:?} is not a valid trust repository name")]
    Gun {
        /// The name.
        gun: String,
        /// Why.
        #[source]
        source: NameError,
    },
    /// The trust server could not be reached or refused us.
    #[error("cannot {op} trust data {file} of {gun}")]
    Registry {
        /// GET or POST.
        op: &'static str,
        /// The file.
        file: String,
        /// The GUN.
        gun: Gun,
        /// The transport error (boxed: it is large).
        #[source]
        source: Box<RegistryError>,
    },
    /// Reading a response body failed.
    #[error("cannot read trust data {file} of {gun}")]
    Body {
        /// The file.
        file: String,
        /// The GUN.
        gun: Gun,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The trust server answered with an unexpected status.
    #[error("trust server answered {status} to {op} {file} of {gun}: {body}")]
    Status {
        /// GET or POST.
        op: &'static str,
        /// The file.
        file: String,
        /// The GUN.
        gun: Gun,
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A metadata file is bigger than we accept.
    #[error("trust data {file} of {gun} exceeds {max} bytes")]
    TooLarge {
        /// The file.
        file: String,
        /// The GUN.
        gun: Gun,
        /// The limit.
        max: u64,
    },
    /// The server's snapshot/timestamp key did not parse.
    #[error("the trust server's {role} key for {gun} is malformed")]
    ServerKey {
        /// Role.
        role: &'static str,
        /// The GUN.
        gun: Gun,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The local trust cache.
    #[error("cannot {op} {path}")]
    Cache {
        /// What we tried.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The recorded versions file is damaged.
    #[error("trust cache {path} is corrupt")]
    CacheCorrupt {
        /// The file.
        path: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Keys.
    #[error("signing key problem for {gun}")]
    Keys {
        /// The GUN.
        gun: Gun,
        /// Key store error.
        #[source]
        source: KeyStoreError,
    },
    /// The root lists a targets key that is not in our key store.
    #[error(
        "no targets key of {gun} in {dir} (the repository was signed elsewhere; import its key)"
    )]
    NoTargetsKey {
        /// The GUN.
        gun: Gun,
        /// The key directory.
        dir: PathBuf,
    },
    /// Building or signing metadata failed.
    #[error("cannot sign trust data for {gun}")]
    Sign {
        /// The GUN.
        gun: Gun,
        /// Editor error.
        #[source]
        source: EditorError,
    },
    /// The root certificate could not be made.
    #[error("cannot create the root certificate for {gun}")]
    Cert {
        /// The GUN.
        gun: Gun,
        /// Cert error.
        #[source]
        source: bay_signer::cert::CertError,
    },
    /// The signed target is not a valid digest (cannot happen for sha256 bytes).
    #[error("signed target of {gun} is not a valid digest")]
    Digest {
        /// The GUN.
        gun: Gun,
        /// Parse error.
        #[source]
        source: oci_types::DigestError,
    },
    /// The pushed manifest digest is not sha256, which Notary targets need.
    #[error("cannot sign {digest}: docker trust data records sha256 digests only")]
    NotSha256 {
        /// The digest.
        digest: Digest,
    },
    /// A blocking key operation panicked or was cancelled.
    #[error("key operation for {gun} did not finish")]
    Join {
        /// The GUN.
        gun: Gun,
    },
    /// `DOCKER_CONTENT_TRUST_SERVER` is not a usable URL.
    #[error("DOCKER_CONTENT_TRUST_SERVER={url:?} is not a trust server URL: {reason}")]
    TrustServerUrl {
        /// The value.
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// The trust server named by `DOCKER_CONTENT_TRUST_SERVER` is unreachable.
    #[error("cannot reach the trust server {host} (DOCKER_CONTENT_TRUST_SERVER)")]
    TrustServer {
        /// `host:port`.
        host: String,
        /// The connection error (boxed: it is large).
        #[source]
        source: Box<RegistryError>,
    },
    /// The root pinning configuration.
    #[error(transparent)]
    Pinning(#[from] super::pinning::PinningError),
    /// A key of the local key store (not tied to a repository).
    #[error("signing key problem")]
    LocalKeys {
        /// Key store error.
        #[source]
        source: KeyStoreError,
    },
}

/// Passphrases for keys: shared with blocking key work.
pub type Passphrases = Arc<dyn PassphraseSource + Send + Sync>;

/// The environment variable naming a trust server other than the registry.
pub const TRUST_SERVER_ENV: &str = "DOCKER_CONTENT_TRUST_SERVER";

/// Content trust through the registry's Notary v1 endpoints (or those of
/// the server `DOCKER_CONTENT_TRUST_SERVER` names).
pub struct NotaryTrust {
    pub(crate) dir: PathBuf,
    pub(crate) passphrases: Passphrases,
    now: Option<chrono::DateTime<chrono::Utc>>,
    /// `DOCKER_CONTENT_TRUST_SERVER` as given; None: the registry itself.
    pub(crate) server: Option<String>,
    server_client: tokio::sync::OnceCell<RegistryClient>,
    /// Delegations the last verification of each GUN skipped, with the
    /// version stored on the server (editing continues above it).
    invalid: std::sync::Mutex<std::collections::HashMap<Gun, Vec<(RoleName, u64)>>>,
}

impl std::fmt::Debug for NotaryTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotaryTrust")
            .field("dir", &self.dir)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

pub(crate) fn refused(image: &ImageRef, reason: String) -> TrustError {
    TrustError::Refused {
        reference: image.to_string(),
        reason,
    }
}

pub(crate) fn failed(image: &ImageRef, e: NotaryError) -> TrustError {
    TrustError::Failed {
        reference: image.to_string(),
        source: Box::new(e),
    }
}

/// Why a verification failed, in words a person understands.
fn explain(gun: &Gun, e: &VerifyError) -> String {
    match e {
        VerifyError::Expired { .. } => format!("trust data for {gun} is expired: {e}"),
        VerifyError::Rollback { .. } => format!("trust data for {gun} was rolled back: {e}"),
        VerifyError::ThresholdNotMet { .. } | VerifyError::RotationNotSignedByOldRoot { .. } => {
            format!("trust data for {gun} is signed by an unknown key: {e}")
        }
        VerifyError::HashMismatch { .. } | VerifyError::LengthMismatch { .. } => {
            format!("trust data for {gun} was tampered with: {e}")
        }
        _ => format!("trust data for {gun} is invalid: {e}"),
    }
}

pub(crate) enum Outcome {
    /// The server has no trust data for the GUN.
    Missing,
    /// Verified.
    Repo(Box<TrustedRepo>),
}

pub(crate) enum Failure {
    Refused(String),
    Failed(NotaryError),
}

impl From<NotaryError> for Failure {
    fn from(e: NotaryError) -> Self {
        Failure::Failed(e)
    }
}

impl Failure {
    pub(crate) fn into_trust(self, image: &ImageRef) -> TrustError {
        match self {
            Failure::Refused(r) => refused(image, r),
            Failure::Failed(e) => failed(image, e),
        }
    }
}

impl NotaryTrust {
    /// Trust state under `dir` (normally `$BAY_HOME/trust`), key passphrases
    /// from `passphrases` (env first, then a prompt, in the CLI). The trust
    /// server is the one `DOCKER_CONTENT_TRUST_SERVER` names when it is set
    /// (docker's variable), else the registry of each image.
    pub fn new(dir: impl Into<PathBuf>, passphrases: Passphrases) -> Self {
        let server = std::env::var(TRUST_SERVER_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty());
        NotaryTrust {
            dir: dir.into(),
            passphrases,
            now: None,
            server,
            server_client: tokio::sync::OnceCell::new(),
            invalid: std::sync::Mutex::default(),
        }
    }

    /// Uses the trust server at `url` (`https://host[:port]`), or with None
    /// the registry itself, whatever the environment says.
    pub fn with_server(mut self, url: Option<&str>) -> Self {
        self.server = url.map(str::to_owned);
        self.server_client = tokio::sync::OnceCell::new();
        self
    }

    /// An editor over a verified repository that continues the versions of
    /// the delegations its verification skipped.
    pub(crate) fn editor(&self, repo: &TrustedRepo) -> Result<RepoEditor, EditorError> {
        let mut ed = RepoEditor::from_trusted(repo, chrono::Utc::now())?;
        let skipped = self
            .invalid
            .lock()
            .ok()
            .and_then(|m| m.get(repo.gun()).cloned())
            .unwrap_or_default();
        for (role, version) in skipped {
            ed.continue_invalid_role(&role, version)?;
        }
        Ok(ed)
    }

    /// The trust directory (keys, trust cache, pinning configuration).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `host[:port]` of `DOCKER_CONTENT_TRUST_SERVER`: an `https://` (or
    /// `http://`, for loopback hosts) URL without path, query or credentials.
    pub fn parse_server_url(url: &str) -> Result<String, NotaryError> {
        let bad = |reason| NotaryError::TrustServerUrl {
            url: url.to_owned(),
            reason,
        };
        let u = url::Url::parse(url.trim()).map_err(|_| bad("not a URL"))?;
        if !matches!(u.scheme(), "https" | "http") {
            return Err(bad("the scheme must be https"));
        }
        if u.path() != "/" && !u.path().is_empty() {
            return Err(bad("a path is not supported"));
        }
        if u.query().is_some() || !u.username().is_empty() || u.password().is_some() {
            return Err(bad("query strings and credentials are not supported"));
        }
        let host = u.host_str().ok_or_else(|| bad("no host"))?;
        Ok(match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        })
    }

    /// The client to send trust requests to: `registry` itself, or a
    /// connection (same credentials source and CAs) to the trust server.
    pub(crate) async fn trust_client<'a>(
        &'a self,
        registry: &'a RegistryClient,
    ) -> Result<&'a RegistryClient, NotaryError> {
        let Some(url) = &self.server else {
            return Ok(registry);
        };
        let host = Self::parse_server_url(url)?;
        if host == registry.host() {
            return Ok(registry);
        }
        self.server_client
            .get_or_try_init(|| async {
                tracing::debug!(%host, "using the trust server of DOCKER_CONTENT_TRUST_SERVER");
                RegistryClient::connect(&host, registry.options().clone())
                    .await
                    .map_err(|source| NotaryError::TrustServer {
                        host: host.clone(),
                        source: Box::new(source),
                    })
            })
            .await
    }

    /// Checks expiry against `now` instead of the clock (to see how trust
    /// data will fare later, or to test expiry).
    pub fn with_now(mut self, now: chrono::DateTime<chrono::Utc>) -> Self {
        self.now = Some(now);
        self
    }

    pub(crate) fn gun_of(image: &ImageRef) -> Result<Gun, NotaryError> {
        let name = image.repository();
        Gun::new(name.clone()).map_err(|source| NotaryError::Gun { gun: name, source })
    }

    fn metadata_dir(&self, gun: &Gun) -> PathBuf {
        // A Gun is validated (no `..`, no leading `/`), so it nests safely.
        self.dir.join("tuf").join(gun.as_str()).join("metadata")
    }

    pub(crate) fn keystore(&self, gun: &Gun) -> Result<KeyStore, NotaryError> {
        KeyStore::open(self.dir.join("private")).map_err(|source| NotaryError::Keys {
            gun: gun.clone(),
            source,
        })
    }

    async fn fetch(
        registry: &RegistryClient,
        gun: &Gun,
        file: &str,
    ) -> Result<Option<Vec<u8>>, NotaryError> {
        let scopes = [Scope::repository(gun.as_str(), "pull")];
        let mut resp = registry
            .request(
                Method::GET,
                &format!("v2/{gun}/_trust/tuf/{file}"),
                &scopes,
                None,
            )
            .await
            .map_err(|source| NotaryError::Registry {
                op: "fetch",
                file: file.to_owned(),
                gun: gun.clone(),
                source: Box::new(source),
            })?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            s => {
                let body = resp.text().await.unwrap_or_default();
                return Err(NotaryError::Status {
                    op: "GET",
                    file: file.to_owned(),
                    gun: gun.clone(),
                    status: s.as_u16(),
                    body: body.chars().take(300).collect(),
                });
            }
        }
        let too_large = || NotaryError::TooLarge {
            file: file.to_owned(),
            gun: gun.clone(),
            max: DEFAULT_MAX_METADATA_SIZE,
        };
        let mut out = Vec::new();
        loop {
            let chunk = resp.chunk().await.map_err(|source| NotaryError::Body {
                file: file.to_owned(),
                gun: gun.clone(),
                source,
            })?;
            let Some(chunk) = chunk else { break };
            if (out.len() + chunk.len()) as u64 > DEFAULT_MAX_METADATA_SIZE {
                return Err(too_large());
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }

    async fn require(registry: &RegistryClient, gun: &Gun, file: &str) -> Result<Vec<u8>, Failure> {
        Self::fetch(registry, gun, file).await?.ok_or_else(|| {
            Failure::Refused(format!(
                "trust data for {gun} is incomplete: the server has no {file}"
            ))
        })
    }

    fn read_cache(&self, gun: &Gun) -> Result<(Option<Vec<u8>>, Option<TrustedVersions>), Failure> {
        let dir = self.metadata_dir(gun);
        let root = read_opt(&dir.join("root.json"))?;
        let vpath = dir.join("versions.json");
        let versions =
            match read_opt(&vpath)? {
                Some(b) => Some(serde_json::from_slice(&b).map_err(|source| {
                    NotaryError::CacheCorrupt {
                        path: vpath,
                        source,
                    }
                })?),
                None => None,
            };
        Ok((root, versions))
    }

    fn write_cache(&self, repo: &TrustedRepo) -> Result<(), NotaryError> {
        let dir = self.metadata_dir(repo.gun());
        write_atomic(&dir.join("root.json"), &repo.root().bytes)?;
        if let Some(t) = repo.timestamp() {
            write_atomic(&dir.join("timestamp.json"), &t.bytes)?;
        }
        if let Some(s) = repo.snapshot() {
            write_atomic(&dir.join("snapshot.json"), &s.bytes)?;
        }
        if let Some(t) = repo.targets() {
            write_atomic(&dir.join("targets.json"), &t.bytes)?;
        }
        for name in repo.delegation_names() {
            if let Some(d) = repo.delegation(&name) {
                write_atomic(&dir.join(format!("{name}.json")), &d.bytes)?;
            }
        }
        let versions = serde_json::to_vec_pretty(&repo.versions()).unwrap_or_default();
        write_atomic(&dir.join("versions.json"), &versions)
    }

    /// Fetches and verifies the GUN's trust data in TUF order against the
    /// pinned root (or pins the served one), and records what was trusted.
    pub(crate) async fn verify(
        &self,
        registry: &RegistryClient,
        gun: &Gun,
    ) -> Result<Outcome, Failure> {
        let (pinned, previous) = self.read_cache(gun)?;
        let pins = super::pinning::Pinning::load(&self.dir).map_err(NotaryError::from)?;
        if pinned.is_none() && pins.disable_tofu && !pins.covers(gun) {
            return Err(Failure::Refused(format!(
                "trust on first use is disabled (trust_pinning.disable_tofu) and no root is pinned for {gun} in {}",
                self.dir.join(super::pinning::CONFIG_FILE).display()
            )));
        }
        let Some(served_root) = Self::fetch(registry, gun, "root.json").await? else {
            if pinned.is_some() {
                return Err(Failure::Refused(format!(
                    "trust data for {gun} was removed from the server although this client trusted it before"
                )));
            }
            return Ok(Outcome::Missing);
        };
        let opts = VerifyOptions {
            previous,
            now: self.now,
            ..VerifyOptions::default()
        };
        let bad = |e: VerifyError| Failure::Refused(explain(gun, &e));
        let mut repo = match &pinned {
            Some(p) => {
                let mut repo = TrustedRepo::new(gun.clone(), p, opts).map_err(|e| {
                    Failure::Refused(format!("the pinned root of {gun} is unusable: {e}"))
                })?;
                let not_chained = |e: VerifyError| match e {
                    VerifyError::Rollback { .. } => bad(e),
                    other => Failure::Refused(format!(
                        "trust data for {gun} is signed by an unknown key: the served root does not chain to the pinned root ({other})"
                    )),
                };
                // Walk the intermediate roots (`<n>.root.json`): each must be
                // signed by the one before, so skipping versions is not allowed.
                let served_version = root_version(&served_root);
                let mut next = repo.root().signed.version + 1;
                while next < served_version {
                    let Some(b) = Self::fetch(registry, gun, &format!("{next}.root.json")).await?
                    else {
                        break;
                    };
                    repo.update_root(&b).map_err(not_chained)?;
                    next += 1;
                }
                repo.update_root(&served_root).map_err(|e| match e {
                    VerifyError::Rollback { .. } => bad(e),
                    other => Failure::Refused(format!(
                        "trust data for {gun} is signed by an unknown key: the served root does not chain to the pinned root ({other})"
                    )),
                })?;
                repo
            }
            None => {
                tracing::info!(%gun, "trusting the root of {gun} on first use");
                TrustedRepo::new(gun.clone(), &served_root, opts).map_err(bad)?
            }
        };
        self.check_pins(&pins, gun, &repo.root().signed)?;
        repo.update_timestamp(&Self::require(registry, gun, "timestamp.json").await?)
            .map_err(bad)?;
        let by_sum = |role: &str, meta: &FileMeta| {
            let hex = meta.hashes.sha256().map(hex::encode).unwrap_or_default();
            format!("{role}.{hex}.json")
        };
        let snap_meta = repo
            .timestamp()
            .and_then(|t| t.signed.meta.get("snapshot").cloned());
        let snap_file =
            snap_meta.map_or_else(|| "snapshot.json".to_owned(), |m| by_sum("snapshot", &m));
        repo.update_snapshot(&Self::require(registry, gun, &snap_file).await?)
            .map_err(bad)?;
        if repo.needs_root_update() {
            // The snapshot names another root than the one we fetched.
            return Err(Failure::Refused(format!(
                "trust data for {gun} was tampered with: the snapshot names a different root than the server serves"
            )));
        }
        let targets_meta = repo
            .snapshot()
            .and_then(|s| s.signed.meta.get("targets").cloned());
        let targets_file =
            targets_meta.map_or_else(|| "targets.json".to_owned(), |m| by_sum("targets", &m));
        repo.update_targets(&Self::require(registry, gun, &targets_file).await?)
            .map_err(bad)?;
        // Like Notary's client, a delegation that does not verify (below
        // threshold, e.g. still signed by a key no longer delegated to, or
        // expired) is skipped: it contributes no targets. Tampering (bytes
        // that differ from the snapshot) and rollbacks stay fatal.
        let mut invalid: Vec<(RoleName, u64)> = Vec::new();
        loop {
            let todo: Vec<_> = repo
                .delegations_to_fetch()
                .into_iter()
                .filter(|(r, _)| !invalid.iter().any(|(i, _)| i == r))
                .collect();
            if todo.is_empty() {
                break;
            }
            for (role, meta) in todo {
                let b = Self::require(registry, gun, &by_sum(role.as_str(), &meta)).await?;
                match repo.update_delegation(&role, &b) {
                    Ok(()) => {}
                    Err(
                        e @ (VerifyError::ThresholdNotMet { .. } | VerifyError::Expired { .. }),
                    ) => {
                        tracing::warn!(%gun, %role, error = %e, "skipping a delegation that does not verify");
                        invalid.push((role, role_version(&b)));
                    }
                    Err(e) => return Err(bad(e)),
                }
            }
        }
        if let Ok(mut m) = self.invalid.lock() {
            m.insert(gun.clone(), invalid);
        }
        self.write_cache(&repo)?;
        Ok(Outcome::Repo(Box::new(repo)))
    }

    /// Refuses a root that a pin for `gun` does not allow.
    pub(crate) fn check_pins(
        &self,
        pins: &super::pinning::Pinning,
        gun: &Gun,
        root: &bay_signer::schema::Root,
    ) -> Result<(), Failure> {
        match pins.check(gun, root).map_err(NotaryError::from)? {
            super::pinning::PinCheck::Mismatch(why) => Err(Failure::Refused(format!(
                "the root of {gun} does not match the pinned root: {why}; refusing its trust data"
            ))),
            super::pinning::PinCheck::Matched | super::pinning::PinCheck::Unpinned => Ok(()),
        }
    }

    /// Loads the pinning configuration and checks `root` against it.
    pub(crate) fn check_pinned_root(
        &self,
        gun: &Gun,
        root: &bay_signer::schema::Root,
    ) -> Result<(), Failure> {
        let pins = super::pinning::Pinning::load(&self.dir).map_err(NotaryError::from)?;
        self.check_pins(&pins, gun, root)
    }

    pub(crate) async fn upload(
        registry: &RegistryClient,
        gun: &Gun,
        files: &[SignedRole],
    ) -> Result<(), NotaryError> {
        // RegistryClient::request sends bytes with our tokens, so the
        // multipart body (Notary: parts name="files", filename=<role>) is
        // written here rather than through reqwest's Form.
        let boundary = format!("bay-{}", uuid::Uuid::new_v4().simple());
        let mut body = Vec::new();
        for f in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                    f.role
                )
                .as_bytes(),
            );
            body.extend_from_slice(&f.bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let scopes = [Scope::repository(gun.as_str(), "pull,push")];
        let resp = registry
            .request(
                Method::POST,
                &format!("v2/{gun}/_trust/tuf/"),
                &scopes,
                Some((
                    Bytes::from(body),
                    format!("multipart/form-data; boundary={boundary}"),
                )),
            )
            .await
            .map_err(|source| NotaryError::Registry {
                op: "publish",
                file: "metadata".to_owned(),
                gun: gun.clone(),
                source: Box::new(source),
            })?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            return Err(NotaryError::Status {
                op: "POST",
                file: "metadata".to_owned(),
                gun: gun.clone(),
                status,
                body: body.chars().take(300).collect(),
            });
        }
        Ok(())
    }

    pub(crate) async fn server_key(
        registry: &RegistryClient,
        gun: &Gun,
        role: &'static str,
    ) -> Result<PublicKey, Failure> {
        let b = Self::require(registry, gun, &format!("{role}.key")).await?;
        serde_json::from_slice(&b).map_err(|source| {
            Failure::Failed(NotaryError::ServerKey {
                role,
                gun: gun.clone(),
                source,
            })
        })
    }

    /// Creates the keys of a new repository off the async threads (Argon2
    /// and prompts block): the root key (reused when the store has one) and
    /// a new targets key for `gun`.
    pub(crate) async fn new_repo_keys(
        &self,
        gun: &Gun,
    ) -> Result<(PrivateKey, PrivateKey), NotaryError> {
        let store = self.keystore(gun)?;
        let pass = self.passphrases.clone();
        let g = gun.clone();
        tokio::task::spawn_blocking(move || {
            let err = |source| NotaryError::Keys {
                gun: g.clone(),
                source,
            };
            let root = match store.find(&KeyRole::root(), None).map_err(err)?.first() {
                Some(info) => store.load(&info.key_id, pass.as_ref()).map_err(err)?.0,
                None => {
                    tracing::info!("creating a new root key");
                    store
                        .generate(
                            KeyAlgorithm::EcdsaP256,
                            &KeyRole::root(),
                            None,
                            pass.as_ref(),
                        )
                        .map_err(err)?
                        .0
                }
            };
            let (targets, _) = store
                .generate(
                    KeyAlgorithm::EcdsaP256,
                    &KeyRole::targets(),
                    Some(&g),
                    pass.as_ref(),
                )
                .map_err(err)?;
            Ok((root, targets))
        })
        .await
        .map_err(|_| NotaryError::Join { gun: gun.clone() })?
    }

    /// Loads the first stored key whose public key ID is in `wanted` (in
    /// that order), or None.
    pub(crate) async fn load_key(
        &self,
        gun: &Gun,
        wanted: Vec<KeyId>,
    ) -> Result<Option<PrivateKey>, NotaryError> {
        let store = self.keystore(gun)?;
        let pass = self.passphrases.clone();
        let g = gun.clone();
        tokio::task::spawn_blocking(move || {
            let err = |source| NotaryError::Keys {
                gun: g.clone(),
                source,
            };
            let stored = store.list().map_err(err)?;
            let Some(info) = wanted
                .iter()
                .find_map(|id| stored.iter().find(|k| &k.public.key_id() == id))
            else {
                return Ok(None);
            };
            Ok(Some(
                store.load(&info.key_id, pass.as_ref()).map_err(err)?.0,
            ))
        })
        .await
        .map_err(|_| NotaryError::Join { gun: gun.clone() })?
    }

    /// The targets key the root of `repo` names, from our key store.
    pub(crate) async fn targets_key(&self, repo: &TrustedRepo) -> Result<PrivateKey, NotaryError> {
        let gun = repo.gun();
        let ids = repo
            .root()
            .signed
            .role(RoleType::Targets)
            .map(|rk| rk.keyids.clone())
            .unwrap_or_default();
        self.load_key(gun, ids)
            .await?
            .ok_or_else(|| NotaryError::NoTargetsKey {
                gun: gun.clone(),
                dir: self.dir.join("private"),
            })
    }

    /// docker's `trust signer add NAME REPO`: creates a delegation key for
    /// `targets/NAME` (stored encrypted under `trust/private`) and adds it to
    /// `targets/NAME` and `targets/releases`, signed with the repository's
    /// targets key. Later signed pushes from a holder of that key sign
    /// through `targets/releases`. Returns the new public key.
    pub async fn add_signer(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
        name: &str,
    ) -> Result<PublicKey, TrustError> {
        let gun = Self::gun_of(image).map_err(|e| failed(image, e))?;
        let registry = self
            .trust_client(registry)
            .await
            .map_err(|e| failed(image, e))?;
        let repo = match self.verify(registry, &gun).await {
            Ok(Outcome::Repo(r)) => r,
            Ok(Outcome::Missing) => {
                return Err(refused(
                    image,
                    format!("{gun} has no trust data yet: push a signed tag first"),
                ));
            }
            Err(f) => return Err(f.into_trust(image)),
        };
        let targets = self
            .targets_key(&repo)
            .await
            .map_err(|e| failed(image, e))?;
        let store = self.keystore(&gun).map_err(|e| failed(image, e))?;
        let pass = self.passphrases.clone();
        let g = gun.clone();
        let role = KeyRole::new(format!("targets/{name}")).map_err(|source| {
            failed(
                image,
                NotaryError::Keys {
                    gun: gun.clone(),
                    source,
                },
            )
        })?;
        let key = tokio::task::spawn_blocking(move || {
            store
                .generate(KeyAlgorithm::EcdsaP256, &role, Some(&g), pass.as_ref())
                .map_err(|source| NotaryError::Keys { gun: g, source })
        })
        .await
        .map_err(|_| failed(image, NotaryError::Join { gun: gun.clone() }))?
        .map_err(|e| failed(image, e))?
        .0;
        let sign_err = |source| {
            failed(
                image,
                NotaryError::Sign {
                    gun: gun.clone(),
                    source,
                },
            )
        };
        let mut ed = self.editor(&repo).map_err(sign_err)?;
        ed.add_signer(name, std::slice::from_ref(key.public_key()))
            .map_err(sign_err)?;
        let signers: [&dyn Sign; 1] = [&targets];
        let files = ed.sign(&signers).map_err(sign_err)?;
        Self::upload(registry, &gun, &files)
            .await
            .map_err(|e| failed(image, e))?;
        match self.verify(registry, &gun).await {
            Ok(_) => Ok(key.public_key().clone()),
            Err(f) => Err(f.into_trust(image)),
        }
    }

    async fn sign_tag(
        &self,
        registry: &RegistryClient,
        gun: &Gun,
        tag: &str,
        meta: FileMeta,
    ) -> Result<(), Failure> {
        let now = chrono::Utc::now();
        let sign_err = |source| {
            Failure::Failed(NotaryError::Sign {
                gun: gun.clone(),
                source,
            })
        };
        let files = match self.verify(registry, gun).await? {
            Outcome::Missing => {
                let timestamp = Self::server_key(registry, gun, "timestamp").await?;
                let snapshot = Self::server_key(registry, gun, "snapshot").await?;
                let (root, targets) = self.new_repo_keys(gun).await?;
                let cert = generate_root_certificate(&root, gun, now, default_cert_validity())
                    .map_err(|source| NotaryError::Cert {
                        gun: gun.clone(),
                        source,
                    })?;
                let mut ed = RepoEditor::create(
                    gun.clone(),
                    NewRepoKeys {
                        root: cert,
                        targets: targets.public_key().clone(),
                        snapshot,
                        timestamp,
                    },
                    now,
                )
                .map_err(sign_err)?;
                ed.add_target(&RoleName::targets(), tag, meta)
                    .map_err(sign_err)?;
                self.check_pinned_root(gun, ed.root())?;
                let signers: [&dyn Sign; 2] = [&root, &targets];
                ed.sign(&signers).map_err(sign_err)?
            }
            Outcome::Repo(repo) => {
                let mut ed = self.editor(&repo).map_err(sign_err)?;
                let releases = RoleName::releases();
                let release_keys: Vec<KeyId> = ed
                    .delegation_keys(&releases)
                    .iter()
                    .map(PublicKey::key_id)
                    .collect();
                let delegated = if release_keys.is_empty() {
                    None
                } else {
                    self.load_key(gun, release_keys).await?
                };
                match delegated {
                    // docker: where delegations exist, sign through targets/releases.
                    Some(key) => {
                        ed.add_target(&releases, tag, meta).map_err(sign_err)?;
                        let signers: [&dyn Sign; 1] = [&key];
                        ed.sign(&signers).map_err(sign_err)?
                    }
                    None => {
                        let targets = self.targets_key(&repo).await?;
                        ed.add_target(&RoleName::targets(), tag, meta)
                            .map_err(sign_err)?;
                        let signers: [&dyn Sign; 1] = [&targets];
                        ed.sign(&signers).map_err(sign_err)?
                    }
                }
            }
        };
        Self::upload(registry, gun, &files).await?;
        tracing::info!(%gun, tag, "signed and published");
        // Re-read what the server now serves: pins our root and records versions.
        match self.verify(registry, gun).await? {
            Outcome::Repo(_) => Ok(()),
            Outcome::Missing => Err(Failure::Refused(format!(
                "the trust server did not keep the trust data published for {gun}"
            ))),
        }
    }
}

/// The `signed.version` of a metadata file, 0 when it does not parse.
fn role_version(bytes: &[u8]) -> u64 {
    root_version(bytes)
}

/// The `signed.version` of a root file, 0 when it does not parse (the
/// verifier reports why).
fn root_version(bytes: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("signed")?.get("version")?.as_u64())
        .unwrap_or(0)
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, NotaryError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(NotaryError::Cache {
            op: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NotaryError> {
    let cache = |op, source| NotaryError::Cache {
        op,
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| cache("create", e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| cache("create", e))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(|e| cache("write", e))?;
    tmp.persist(path).map_err(|e| cache("rename", e.error))?;
    Ok(())
}

#[async_trait::async_trait]
impl TrustPolicy for NotaryTrust {
    async fn resolve(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
    ) -> Result<Resolution, TrustError> {
        let gun = Self::gun_of(image).map_err(|e| failed(image, e))?;
        let tag = image.tag_or_default().map_or_else(
            || crate::reference::DEFAULT_TAG.to_owned(),
            |t| t.to_string(),
        );
        let registry = self
            .trust_client(registry)
            .await
            .map_err(|e| failed(image, e))?;
        let repo = match self.verify(registry, &gun).await {
            Ok(Outcome::Repo(r)) => r,
            Ok(Outcome::Missing) => {
                return Err(refused(
                    image,
                    format!("{NOT_SIGNED} (no trust data for {gun})"),
                ));
            }
            Err(f) => return Err(f.into_trust(image)),
        };
        let Some(target) = repo.lookup(&tag) else {
            return Err(refused(
                image,
                format!("{NOT_SIGNED} (no signed tag {tag} in {gun})"),
            ));
        };
        let digest = Digest::parse(&target.digest()).map_err(|source| {
            failed(
                image,
                NotaryError::Digest {
                    gun: gun.clone(),
                    source,
                },
            )
        })?;
        tracing::info!(%gun, tag, %digest, role = %target.role, "tag verified by content trust");
        Ok(Resolution::Pinned(digest))
    }

    async fn after_push(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
        digest: &Digest,
        size: u64,
        _media_type: &str,
    ) -> Result<(), TrustError> {
        let gun = Self::gun_of(image).map_err(|e| failed(image, e))?;
        let tag = image.tag_or_default().map_or_else(
            || crate::reference::DEFAULT_TAG.to_owned(),
            |t| t.to_string(),
        );
        let sha: [u8; 32] = (digest.algorithm() == oci_types::Algorithm::Sha256)
            .then(|| hex::decode(digest.hex()).ok())
            .flatten()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                failed(
                    image,
                    NotaryError::NotSha256 {
                        digest: digest.clone(),
                    },
                )
            })?;
        let registry = self
            .trust_client(registry)
            .await
            .map_err(|e| failed(image, e))?;
        self.sign_tag(registry, &gun, &tag, FileMeta::docker(sha, size))
            .await
            .map_err(|f| f.into_trust(image))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gun() -> Gun {
        Gun::new("127.0.0.1:5000/team/app").unwrap()
    }

    #[test]
    fn verify_errors_are_explained_by_attack() {
        let g = gun();
        let rollback = VerifyError::Rollback {
            role: RoleName::timestamp(),
            trusted: 5,
            new: 3,
        };
        let m = explain(&g, &rollback);
        assert!(
            m.starts_with("trust data for 127.0.0.1:5000/team/app was rolled back"),
            "{m}"
        );
        assert!(
            m.contains("version 3 is lower than trusted version 5"),
            "{m}"
        );
        let expired = VerifyError::Expired {
            role: RoleName::targets(),
            expires: chrono::Utc::now(),
            now: chrono::Utc::now(),
        };
        assert!(explain(&g, &expired).contains("is expired"));
        let conflict = VerifyError::RootVersionConflict { version: 1 };
        assert!(explain(&g, &conflict).contains("is invalid"));
    }

    #[test]
    fn cache_writes_are_atomic_and_reads_tolerate_absence() {
        let dir = tempfile::tempdir().unwrap();
        let trust = NotaryTrust::new(
            dir.path(),
            Arc::new(bay_signer::passphrase::FixedPassphrase::new("x")),
        );
        let g = gun();
        let (root, versions) = match trust.read_cache(&g) {
            Ok(v) => v,
            Err(_) => panic!("an empty cache is not an error"),
        };
        assert!(root.is_none() && versions.is_none());
        let meta = trust.metadata_dir(&g);
        assert!(meta.ends_with("tuf/127.0.0.1:5000/team/app/metadata"));
        write_atomic(&meta.join("versions.json"), b"{not json").unwrap();
        match trust.read_cache(&g) {
            Err(Failure::Failed(NotaryError::CacheCorrupt { path, .. })) => {
                assert!(path.ends_with("versions.json"));
            }
            _ => panic!("a corrupt versions file must be reported"),
        }
        write_atomic(&meta.join("root.json"), b"root").unwrap();
        write_atomic(&meta.join("root.json"), b"root2").unwrap();
        assert_eq!(
            read_opt(&meta.join("root.json")).unwrap().unwrap(),
            b"root2"
        );
        let leftovers = std::fs::read_dir(&meta).unwrap().count();
        assert_eq!(leftovers, 2, "no temp files left behind");
    }
}
