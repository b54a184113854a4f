//! Configuration: a TOML file overridden by `BAY_REGISTRY__SECTION__KEY`
//! environment variables, with defaults that need no file at all.
//!
//! Unknown keys are an error at start-up (`deny_unknown_fields`), whether
//! they come from the file or the environment, so a typo never silently
//! falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Prefix of environment overrides: `BAY_REGISTRY__SERVER__ADDR=0.0.0.0:5000`.
pub const ENV_PREFIX: &str = "BAY_REGISTRY__";

/// Errors while loading configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The config file or an override is not valid TOML or has unknown keys.
    #[error("invalid configuration: {0}")]
    Parse(#[from] toml::de::Error),
    /// An environment override names no known section.
    #[error("environment variable {var} does not name a config key (use {ENV_PREFIX}SECTION__KEY)")]
    BadEnvKey {
        /// The variable.
        var: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listener settings.
    pub server: ServerConfig,
    /// Where data lives.
    pub storage: StorageConfig,
    /// Request limits.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
    /// Accounts and tokens.
    pub auth: AuthConfig,
}

/// When authentication is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Enforced as soon as any user exists. With no users the registry is
    /// open, and therefore refuses to listen on anything but loopback.
    #[default]
    Auto,
    /// Always enforced, even before the first user exists.
    Required,
}

/// One access rule in the config file (rules can also be managed with
/// `bay-registry acl`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConfig {
    /// Users granted.
    pub users: Vec<String>,
    /// Groups granted.
    pub groups: Vec<String>,
    /// Whether requests without credentials are granted.
    pub anonymous: bool,
    /// Repository patterns (`team/app`, `team/*`, `team/**`).
    pub repos: Vec<String>,
    /// Actions: `pull`, `push`, `delete`, `*`.
    pub actions: Vec<String>,
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// When to enforce authentication.
    pub mode: AuthMode,
    /// The `service` (JWT audience) clients ask tokens for.
    pub service: String,
    /// The JWT issuer.
    pub issuer: String,
    /// Token endpoint URL in challenges; default: `<scheme>://<Host>/token`.
    pub realm: Option<String>,
    /// Access-token lifetime.
    pub token_ttl_secs: u64,
    /// Failed logins allowed per client address per window.
    pub max_failures_per_addr: u32,
    /// Failed logins allowed per user per window (from all addresses).
    pub max_failures_per_user: u32,
    /// The failure-counting window.
    pub failure_window_secs: u64,
    /// Access rules.
    pub rules: Vec<RuleConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Auto,
            service: "bay-registry".into(),
            issuer: "bay-registry".into(),
            realm: None,
            token_ttl_secs: 300,
            max_failures_per_addr: 10,
            max_failures_per_user: 100,
            failure_window_secs: 300,
            rules: Vec::new(),
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// PEM certificate chain; enables TLS together with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Allow `POST …/uploads/?mount=<d>` without `from` to mount any blob the
    /// registry holds. Off by default: it reveals which blobs exist.
    pub automatic_mount: bool,
    /// Allow deleting manifests, tags and blobs.
    pub delete_enabled: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 5000)),
            tls_cert: None,
            tls_key: None,
            automatic_mount: false,
            delete_enabled: true,
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Data root: `registry.db`, `blobs/`, `uploads/`.
    pub root: PathBuf,
    /// fsync blob data and the database on every commit (power-loss
    /// durability). Process crashes are safe either way: blobs become visible
    /// only by an atomic rename after their digest is verified.
    pub sync: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            root: PathBuf::from("./bay-data"),
            sync: false,
        }
    }
}

/// `[limits]`: every limit is explicit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest manifest accepted (413 above it).
    pub manifest_max_bytes: u64,
    /// Largest blob accepted (413 above it).
    pub blob_max_bytes: u64,
    /// Largest total of request header bytes (431 above it).
    pub header_max_bytes: usize,
    /// An upload session untouched for this long expires.
    pub upload_ttl_secs: u64,
    /// Largest page of tags/catalog/referrers.
    pub page_max: usize,
    /// Most tags in one `PUT …/manifests/<digest>?tag=` request.
    pub tags_per_put_max: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            manifest_max_bytes: 4 * 1024 * 1024,
            blob_max_bytes: 64 * 1024 * 1024 * 1024,
            header_max_bytes: 64 * 1024,
            upload_ttl_secs: 24 * 3600,
            page_max: 10_000,
            tags_per_put_max: 100,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `EnvFilter` directive, overridden by `RUST_LOG`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

impl Config {
    /// Load from an optional TOML file, then apply environment overrides.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match file {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        Self::from_sources(&text, std::env::vars())
    }

    /// Build from TOML text and `(name, value)` environment pairs.
    pub fn from_sources(
        toml_text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = toml::from_str(toml_text)?;
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
            let [section, key] = parts.as_slice() else {
                return Err(ConfigError::BadEnvKey { var });
            };
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(sect) = entry else {
                return Err(ConfigError::BadEnvKey { var });
            };
            sect.insert(key.clone(), env_value(&value));
        }
        let cfg: Config = toml::Value::Table(table).try_into()?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "server.tls_cert and server.tls_key must be set together".into(),
            ));
        }
        if self.limits.manifest_max_bytes == 0 || self.limits.page_max == 0 {
            return Err(ConfigError::Invalid(
                "limits must be greater than zero".into(),
            ));
        }
        if self.auth.token_ttl_secs < 60 {
            return Err(ConfigError::Invalid(
                "auth.token_ttl_secs must be at least 60 (the token spec minimum)".into(),
            ));
        }
        for r in &self.auth.rules {
            if r.repos.is_empty() || r.actions.is_empty() {
                return Err(ConfigError::Invalid(
                    "every [[auth.rules]] entry needs repos and actions".into(),
                ));
            }
            if let Some(bad) = r
                .actions
                .iter()
                .find(|a| !matches!(a.as_str(), "pull" | "push" | "delete" | "*"))
            {
                return Err(ConfigError::Invalid(format!(
                    "unknown action {bad:?} in [[auth.rules]]"
                )));
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid(format!(
                "log.format must be text or json, not {:?}",
                self.log.format
            )));
        }
        Ok(())
    }
}

/// Environment values are TOML scalars when they parse as one (`true`, `42`),
/// otherwise plain strings (`0.0.0.0:5000`, paths).
fn env_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::from_sources("", env(&[])).unwrap();
        assert_eq!(c.limits.manifest_max_bytes, 4 * 1024 * 1024);
        assert_eq!(c.server.addr.port(), 5000);
    }

    #[test]
    fn env_overrides_file() {
        let c = Config::from_sources(
            "[server]\naddr = \"127.0.0.1:6000\"\n",
            env(&[
                ("BAY_REGISTRY__SERVER__ADDR", "0.0.0.0:7000"),
                ("BAY_REGISTRY__LIMITS__PAGE_MAX", "50"),
                ("BAY_REGISTRY__STORAGE__SYNC", "true"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.addr.port(), 7000);
        assert_eq!(c.limits.page_max, 50);
        assert!(c.storage.sync);
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(Config::from_sources("[server]\nadr = \"x\"\n", env(&[])).is_err());
        assert!(Config::from_sources("[nope]\n", env(&[])).is_err());
        assert!(Config::from_sources("", env(&[("BAY_REGISTRY__SERVER__PROT", "1")])).is_err());
        assert!(Config::from_sources("", env(&[("BAY_REGISTRY__SERVER", "1")])).is_err());
    }

    #[test]
    fn tls_needs_both_files() {
        assert!(Config::from_sources("[server]\ntls_cert = \"a\"\n", env(&[])).is_err());
    }
}
