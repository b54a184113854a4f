//! Stored registry logins: bay's `$BAY_HOME/config.json` and docker's
//! `config.json` (with its credential helpers), read through one
//! [`AuthProvider`].
//!
//! # File format
//! bay writes docker's shape so either tool can read the other's file:
//!
//! ```json
//! {"auths": {"127.0.0.1:5000": {"identitytoken": "bay_rt_…", "username": "alice"}}}
//! ```
//!
//! An `identitytoken` is an OAuth2 refresh token: a revocable secret bound to
//! one user and registry, which the registry trades for short-lived scoped
//! access tokens. bay stores a password (`auth` = base64 `user:password`, as
//! docker does) only when a registry cannot issue such a token, and
//! `bay login` says so when it happens. Base64 is not encryption: anybody who
//! can read the file has the password, which is why the file is created with
//! mode 0600 and replaced atomically (temp file + rename), never rewritten in
//! place.
//!
//! # Lookup order ([`ConfigAuth`])
//! 1. bay's own file — what `bay login` wrote wins;
//! 2. docker's file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
//!    `credHelpers[host]`, then `credsStore`, then the plain `auths` entry.
//!    Helpers are run as `docker-credential-<name> get` with the server on
//!    stdin; a `Username` of `<token>` means the secret is an identity token.
//!
//! Keys may be written as `host:port`, `https://host:port` or with a path
//! (`https://host/v1/`); all match the host.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::reference::ReferenceError;
use crate::registry::{AuthProvider, Credentials};

/// Errors reading or writing a credentials file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The file or its directory could not be read or written.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What we tried.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a docker-style config.json.
    #[error("{} is not a valid config file: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The server name is not `host[:port]`.
    #[error(transparent)]
    Server(#[from] ReferenceError),
}

/// One `auths` entry of a config.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthEntry {
    /// base64 of `user:password` (docker's password fallback; `user:` next to an identity token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// The refresh token `bay login` / `docker login` obtained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identitytoken: Option<String>,
    /// The user the entry belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Fields bay does not use, kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl AuthEntry {
    /// The credentials this entry holds, if any.
    pub fn credentials(&self) -> Option<Credentials> {
        let decoded = self.auth.as_deref().and_then(decode_auth);
        let (auth_user, password) = match &decoded {
            Some((u, p)) => (Some(u.clone()), Some(p.clone())),
            None => (None, None),
        };
        let username = self
            .username
            .clone()
            .filter(|u| !u.is_empty())
            .or(auth_user)
            .unwrap_or_default();
        if let Some(t) = self.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Some(Credentials::RefreshToken {
                username,
                token: Zeroizing::new(t.to_owned()),
            });
        }
        let password = password.filter(|p| !p.is_empty())?;
        Some(Credentials::Basic { username, password })
    }
}

fn decode_auth(b64: &str) -> Option<(String, Zeroizing<String>)> {
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?,
    );
    let text = std::str::from_utf8(&bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), Zeroizing::new(p.to_owned())))
}

/// A docker-compatible `config.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigFile {
    /// Server → stored login.
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    /// Credential helper for every server (`docker-credential-<name>`).
    #[serde(
        rename = "credsStore",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub creds_store: Option<String>,
    /// Credential helper per server.
    #[serde(
        rename = "credHelpers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub cred_helpers: BTreeMap<String, String>,
    /// Everything else (docker's other settings), kept as it was.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ConfigFile {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(CredentialsError::Io {
                    op: "read",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(&bytes).map_err(|source| CredentialsError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the file atomically with mode 0600: a temp file (created 0600)
    /// in the same directory, fsynced, then renamed over `path`.
    pub fn save(&self, path: &Path) -> Result<(), CredentialsError> {
        let dir = config_dir(path);
        let io = |op: &'static str, p: &Path| {
            let p = p.to_owned();
            move |source| CredentialsError::Io {
                op,
                path: p,
                source,
            }
        };
        create_private_dir(dir)?;
        let json = Zeroizing::new(serde_json::to_vec_pretty(self).map_err(|source| {
            CredentialsError::Parse {
                path: path.to_owned(),
                source,
            }
        })?);
        // tempfile creates its files with mode 0600 on unix.
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json.")
            .tempfile_in(dir)
            .map_err(io("create a temp file in", dir))?;
        tmp.write_all(&json).map_err(io("write", tmp.path()))?;
        tmp.write_all(b"\n").map_err(io("write", tmp.path()))?;
        tmp.as_file().sync_all().map_err(io("sync", tmp.path()))?;
        tmp.persist(path).map_err(|e| CredentialsError::Io {
            op: "replace",
            path: path.to_owned(),
            source: e.error,
        })?;
        if let Ok(d) = std::fs::File::open(dir) {
            // Make the rename durable; a failure here loses nothing already written.
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Read-modify-write of `path` under an exclusive `flock` on
    /// `.config.json.lock` next to it, so two `bay login`s for different
    /// hosts at once both keep their entry.
    pub fn update<R>(
        path: &Path,
        f: impl FnOnce(&mut ConfigFile) -> R,
    ) -> Result<R, CredentialsError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let dir = config_dir(path);
        create_private_dir(dir)?;
        let lock_path = dir.join(".config.json.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| CredentialsError::Io {
                op: "open",
                path: lock_path.clone(),
                source,
            })?;
        let _lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(
            |(_, errno)| CredentialsError::Io {
                op: "lock",
                path: lock_path.clone(),
                source: std::io::Error::from(errno),
            },
        )?;
        let mut cfg = Self::load(path)?;
        let r = f(&mut cfg);
        cfg.save(path)?;
        Ok(r)
    }

    /// The `auths` key matching `host`, whatever form it was written in.
    pub fn auth_key(&self, host: &str) -> Option<&str> {
        self.auths
            .keys()
            .find(|k| key_host(k) == host)
            .map(String::as_str)
    }

    /// The entry for `host`.
    pub fn entry(&self, host: &str) -> Option<&AuthEntry> {
        self.auth_key(host).and_then(|k| self.auths.get(k))
    }

    /// Removes every entry for `host`; true when there was one.
    pub fn remove(&mut self, host: &str) -> bool {
        let before = self.auths.len();
        self.auths.retain(|k, _| key_host(k) != host);
        self.auths.len() != before
    }

    fn helper_for(&self, host: &str) -> Option<&str> {
        self.cred_helpers
            .iter()
            .find(|(k, _)| key_host(k) == host)
            .map(|(_, v)| v.as_str())
    }
}

fn config_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates `dir` (and parents) with mode 0700 when missing.
fn create_private_dir(dir: &Path) -> Result<(), CredentialsError> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| CredentialsError::Io {
            op: "create",
            path: dir.to_owned(),
            source,
        })
}

/// The host part of a config key (`https://host:port/v1/` → `host:port`).
fn key_host(key: &str) -> &str {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    k.split('/').next().unwrap_or(k)
}

/// Parses what a user typed as `bay login SERVER` (`host[:port]`, optionally
/// with a scheme or path) into the `host[:port]` bay uses as the key.
pub fn parse_server(input: &str) -> Result<String, CredentialsError> {
    let host = key_host(input);
    crate::reference::validate_host(host)?;
    Ok(host.to_owned())
}

/// `$BAY_HOME/config.json`.
pub fn bay_config_path() -> PathBuf {
    crate::commands::bay_home().join("config.json")
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// What a `docker-credential-*` helper prints for `get`.
#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<helper> get` for `server`. A helper that is
/// missing, fails ("credentials not found") or prints garbage yields `None`
/// (logged), so a broken helper means anonymous access, not a crash.
pub fn run_helper(helper: &str, server: &str) -> Option<Credentials> {
    use std::process::{Command, Stdio};
    if helper.is_empty() || helper.contains('/') {
        tracing::warn!(
            helper,
            "ignoring a credential helper name with a path in it"
        );
        return None;
    }
    let program = format!("docker-credential-{helper}");
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%program, error = %e, "cannot run credential helper");
            return None;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(%program, error = %e, "credential helper failed");
            return None;
        }
    };
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        tracing::debug!(%program, server, stderr = %String::from_utf8_lossy(&out.stderr).trim(), "credential helper has nothing");
        return None;
    }
    let reply: HelperReply = match serde_json::from_slice(&stdout) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%program, error = %e, "credential helper printed something that is not credentials JSON");
            return None;
        }
    };
    let secret = Zeroizing::new(reply.secret);
    if secret.is_empty() {
        return None;
    }
    if reply.username == "<token>" {
        Some(Credentials::RefreshToken {
            username: String::new(),
            token: secret,
        })
    } else {
        Some(Credentials::Basic {
            username: reply.username,
            password: secret,
        })
    }
}

/// The [`AuthProvider`] of every `bay` command: bay's config first, then
/// docker's (see the module docs). Each host is looked up once per process,
/// so a credential helper runs at most once per host.
#[derive(Debug)]
pub struct ConfigAuth {
    bay: PathBuf,
    docker: Option<PathBuf>,
    cache: Mutex<HashMap<String, Option<Credentials>>>,
}

impl ConfigAuth {
    /// A provider over these two files (either may be missing).
    pub fn new(bay: PathBuf, docker: Option<PathBuf>) -> Self {
        ConfigAuth {
            bay,
            docker,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `$BAY_HOME/config.json` and docker's config.
    pub fn from_env() -> Self {
        Self::new(bay_config_path(), docker_config_path())
    }

    fn lookup(&self, host: &str) -> Option<Credentials> {
        match ConfigFile::load(&self.bay) {
            Ok(cfg) => {
                if let Some(c) = cfg.entry(host).and_then(AuthEntry::credentials) {
                    tracing::debug!(host, file = %self.bay.display(), "using bay's stored login");
                    return Some(c);
                }
            }
            Err(e) => tracing::warn!(error = %e, "ignoring bay's credentials file"),
        }
        let path = self.docker.as_ref()?;
        let cfg = match ConfigFile::load(path) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring docker's credentials file");
                return None;
            }
        };
        let server = cfg.auth_key(host).unwrap_or(host).to_owned();
        if let Some(helper) = cfg.helper_for(host) {
            return run_helper(helper, &server);
        }
        if let Some(store) = cfg.creds_store.as_deref()
            && let Some(c) = run_helper(store, &server)
        {
            return Some(c);
        }
        let c = cfg.entry(host).and_then(AuthEntry::credentials);
        if c.is_some() {
            tracing::debug!(host, file = %path.display(), "using docker's stored login");
        }
        c
    }
}

impl AuthProvider for ConfigAuth {
    fn credentials(&self, host: &str) -> Option<Credentials> {
        if let Ok(cache) = self.cache.lock()
            && let Some(c) = cache.get(host)
        {
            return c.clone();
        }
        let c = self.lookup(host);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(host.to_owned(), c.clone());
        }
        c
    }
}

/// Base64 of `user:password`, docker's `auth` field.
pub fn encode_auth(username: &str, password: &str) -> String {
    let plain = Zeroizing::new(format!("{username}:{password}"));
    base64::engine::general_purpose::STANDARD.encode(plain.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_in_any_form() {
        let cfg: ConfigFile = serde_json::from_str(
            r#"{"auths":{"https://reg.example:5000/v1/":{"auth":"YWxpY2U6c2VjcmV0"}},"credHelpers":{"h.example":"x"},"detachKeys":"ctrl-p"}"#,
        )
        .unwrap();
        assert!(cfg.entry("reg.example:5000").is_some());
        assert!(cfg.entry("reg.example").is_none());
        assert_eq!(cfg.helper_for("h.example"), Some("x"));
        match cfg.entry("reg.example:5000").unwrap().credentials() {
            Some(Credentials::Basic { username, password }) => {
                assert_eq!(username, "alice");
                assert_eq!(password.as_str(), "secret");
            }
            other => panic!("{other:?}"),
        }
        // Unknown settings survive a round trip.
        let back = serde_json::to_value(&cfg).unwrap();
        assert_eq!(back["detachKeys"], "ctrl-p");
    }

    #[test]
    fn identity_tokens_win_and_empty_passwords_are_nothing() {
        let e = AuthEntry {
            auth: Some(encode_auth("alice", "")),
            identitytoken: Some("rt".into()),
            ..AuthEntry::default()
        };
        assert!(matches!(
            e.credentials(),
            Some(Credentials::RefreshToken { username, token }) if username == "alice" && token.as_str() == "rt"
        ));
        let e = AuthEntry {
            auth: Some(encode_auth("alice", "")),
            ..AuthEntry::default()
        };
        assert!(e.credentials().is_none());
        let e = AuthEntry {
            auth: Some("!!not base64".into()),
            ..AuthEntry::default()
        };
        assert!(e.credentials().is_none());
    }

    #[test]
    fn servers_are_normalised_and_validated() {
        assert_eq!(parse_server("127.0.0.1:5000").unwrap(), "127.0.0.1:5000");
        assert_eq!(
            parse_server("https://reg.example:443/v2/").unwrap(),
            "reg.example:443"
        );
        assert!(parse_server("").is_err());
        assert!(parse_server("bad host").is_err());
        assert!(parse_server("a:b").is_err());
    }

    #[test]
    fn concurrent_updates_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/config.json");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for j in 0..10 {
                        ConfigFile::update(&path, |c| {
                            c.auths.insert(format!("h{i}-{j}:1"), AuthEntry::default());
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ConfigFile::load(&path).unwrap().auths.len(), 80);
    }

    #[test]
    fn save_is_0600_and_bay_wins_over_docker() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let bay = dir.path().join("home/config.json");
        let docker = dir.path().join("docker.json");
        let mut cfg = ConfigFile::default();
        cfg.auths.insert(
            "h:1".into(),
            AuthEntry {
                identitytoken: Some("mine".into()),
                username: Some("alice".into()),
                ..AuthEntry::default()
            },
        );
        cfg.save(&bay).unwrap();
        let mode = std::fs::metadata(&bay).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(
            &docker,
            r#"{"auths":{"h:1":{"identitytoken":"docker's"},"h:2":{"identitytoken":"d2"}}}"#,
        )
        .unwrap();
        let p = ConfigAuth::new(bay, Some(docker));
        let tok = |h: &str| match p.credentials(h) {
            Some(Credentials::RefreshToken { token, .. }) => Some(token.to_string()),
            _ => None,
        };
        assert_eq!(tok("h:1").as_deref(), Some("mine"));
        assert_eq!(tok("h:2").as_deref(), Some("d2"));
        assert_eq!(tok("h:3"), None);
    }
}
