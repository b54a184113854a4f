//! Root pinning: which root keys a client accepts for a GUN, instead of
//! trusting whatever root it sees first (TOFU).
//!
//! The pins live in `$BAY_HOME/trust/config.json` (the trust directory, so
//! `config.json` at `$BAY_HOME` stays tokens only), in the shape of Notary's
//! `trust_pinning` section:
//!
//! ```json
//! {"trust_pinning": {
//!   "certs": {"registry.example.com:5000/team/app": ["<root key id>", "…"]},
//!   "ca":    {"registry.example.com:5000/*": "/etc/bay/team-root.crt"},
//!   "disable_tofu": false
//! }}
//! ```
//!
//! - `certs` pins root key IDs: either ID docker prints (`docker trust
//!   inspect` shows the TUF ID of the root certificate; key files are named
//!   by the canonical ID) is accepted.
//! - `ca` pins a root certificate file (PEM, one or more certificates): a
//!   root key matches when its certificate carries the same public key as
//!   one of them (so a re-issued root certificate over the same key still
//!   matches). Chains to a CA are not evaluated.
//! - Keys of both maps are a GUN (`host:port/repo`), a prefix ending in `*`
//!   (`host:port/team/*`), or a bare registry host (`host:port`, every GUN
//!   of that registry). The most specific entry of each map applies; when
//!   both maps have one, both must match.
//! - `disable_tofu: true` refuses a GUN that no pin covers and whose root
//!   this client has not trusted before.
//!
//! A pin is checked against every root the client is about to trust (first
//! use, rotation, and every later verification), so a mismatch is a hard
//! failure, never a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bay_signer::key::KeyId;
use bay_signer::names::Gun;
use bay_signer::schema::{RoleType, Root};
use serde::Deserialize;

/// Errors reading the pinning configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinningError {
    /// The configuration file could not be read.
    #[error("cannot read the trust configuration {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid.
    #[error("the trust configuration {path} is invalid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A pinned certificate file could not be read.
    #[error("cannot read the pinned root certificate {path} (trust_pinning.ca {pattern:?})")]
    ReadCert {
        /// The pattern it is pinned for.
        pattern: String,
        /// The file.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// A pinned certificate file holds no certificate we can read.
    #[error(
        "the pinned root certificate {path} (trust_pinning.ca {pattern:?}) holds no PEM certificate"
    )]
    BadCert {
        /// The pattern it is pinned for.
        pattern: String,
        /// The file.
        path: PathBuf,
    },
}

/// The `trust_pinning` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinning {
    /// GUN pattern → accepted root key IDs.
    #[serde(default)]
    pub certs: BTreeMap<String, Vec<String>>,
    /// GUN pattern → pinned root certificate file.
    #[serde(default)]
    pub ca: BTreeMap<String, PathBuf>,
    /// Refuse trust on first use for GUNs no pin covers.
    #[serde(default)]
    pub disable_tofu: bool,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    trust_pinning: Pinning,
}

/// The decision for one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// No pin covers the GUN: trust on first use applies.
    Unpinned,
    /// A pin covers the GUN and the root matches it.
    Matched,
    /// A pin covers the GUN and the root does not match; the sentence says why.
    Mismatch(String),
}

/// The file name of the pinning configuration inside the trust directory.
pub const CONFIG_FILE: &str = "config.json";

impl Pinning {
    /// Reads `<trust dir>/config.json`; no file means no pins.
    pub fn load(trust_dir: &Path) -> Result<Pinning, PinningError> {
        let path = trust_dir.join(CONFIG_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Pinning::default()),
            Err(source) => return Err(PinningError::Read { path, source }),
        };
        let file: ConfigFile = serde_json::from_slice(&bytes)
            .map_err(|source| PinningError::Parse { path, source })?;
        Ok(file.trust_pinning)
    }

    /// True when some pin covers `gun`.
    pub fn covers(&self, gun: &Gun) -> bool {
        best_match(self.certs.keys(), gun).is_some() || best_match(self.ca.keys(), gun).is_some()
    }

    /// Checks the root keys of `root` against the pins for `gun`.
    pub fn check(&self, gun: &Gun, root: &Root) -> Result<PinCheck, PinningError> {
        let keys = root_keys(root);
        let mut matched = false;
        if let Some(pattern) = best_match(self.certs.keys(), gun) {
            let wanted = &self.certs[pattern];
            let ok = keys.iter().any(|k| {
                wanted.iter().any(|w| {
                    w == k.tuf.as_str() || k.canonical.as_ref().is_some_and(|c| c.as_str() == w)
                })
            });
            if !ok {
                return Ok(PinCheck::Mismatch(format!(
                    "its root key {} is not the pinned root key {} (trust_pinning.certs {pattern:?})",
                    describe(&keys),
                    wanted.join(", ")
                )));
            }
            matched = true;
        }
        if let Some(pattern) = best_match(self.ca.keys(), gun) {
            let path = &self.ca[pattern];
            let text = std::fs::read_to_string(path).map_err(|source| PinningError::ReadCert {
                pattern: pattern.clone(),
                path: path.clone(),
                source,
            })?;
            let pinned: Vec<Vec<u8>> = pem_certificates(&text)
                .iter()
                .filter_map(|c| bay_signer::cert::leaf_spki_der(c.as_bytes()).ok())
                .collect();
            if pinned.is_empty() {
                return Err(PinningError::BadCert {
                    pattern: pattern.clone(),
                    path: path.clone(),
                });
            }
            let ok = keys
                .iter()
                .any(|k| k.spki.as_ref().is_some_and(|s| pinned.contains(s)));
            if !ok {
                return Ok(PinCheck::Mismatch(format!(
                    "its root key {} is not the key of the pinned root certificate {} (trust_pinning.ca {pattern:?})",
                    describe(&keys),
                    path.display()
                )));
            }
            matched = true;
        }
        Ok(if matched {
            PinCheck::Matched
        } else {
            PinCheck::Unpinned
        })
    }
}

struct RootKey {
    tuf: KeyId,
    canonical: Option<KeyId>,
    spki: Option<Vec<u8>>,
}

fn root_keys(root: &Root) -> Vec<RootKey> {
    let Some(rk) = root.role(RoleType::Root) else {
        return Vec::new();
    };
    rk.keyids
        .iter()
        .filter_map(|id| {
            let key = root.keys.get(id)?;
            Some(RootKey {
                tuf: id.clone(),
                canonical: key.canonical_id().ok(),
                spki: bay_signer::cert::leaf_spki_der(key.public_bytes()).ok(),
            })
        })
        .collect()
}

fn describe(keys: &[RootKey]) -> String {
    if keys.is_empty() {
        return "(none)".to_owned();
    }
    keys.iter()
        .map(|k| k.tuf.as_str().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The PEM certificate blocks of a file.
fn pem_certificates(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let end = start + len + END.len();
        out.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    out
}

/// How specifically `pattern` names `gun`: None when it does not, else a
/// rank (exact GUN beats any prefix; longer prefixes beat shorter ones).
fn specificity(pattern: &str, gun: &str) -> Option<usize> {
    if pattern == gun {
        return Some(usize::MAX);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return gun.starts_with(prefix).then_some(prefix.len());
    }
    // A bare registry host covers every GUN of that registry.
    if !pattern.contains('/') && gun.split('/').next() == Some(pattern) {
        return Some(pattern.len());
    }
    None
}

fn best_match<'a>(patterns: impl Iterator<Item = &'a String>, gun: &Gun) -> Option<&'a String> {
    patterns
        .filter_map(|p| specificity(p, gun.as_str()).map(|s| (s, p)))
        .max_by_key(|(s, _)| *s)
        .map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_rank_exact_then_longest_prefix_then_host() {
        let gun = "reg:5000/team/app";
        assert_eq!(specificity("reg:5000/team/app", gun), Some(usize::MAX));
        assert_eq!(specificity("reg:5000/team/*", gun), Some(14));
        assert_eq!(specificity("reg:5000/*", gun), Some(9));
        assert_eq!(specificity("reg:5000", gun), Some(8));
        assert_eq!(specificity("reg:5001", gun), None);
        assert_eq!(specificity("reg:5000/team/ap", gun), None);
        assert_eq!(specificity("other/*", gun), None);
        let g = Gun::new(gun).unwrap();
        let pats = [
            "reg:5000".to_owned(),
            "reg:5000/team/*".to_owned(),
            "x/*".to_owned(),
        ];
        assert_eq!(
            best_match(pats.iter(), &g).map(String::as_str),
            Some("reg:5000/team/*")
        );
    }

    #[test]
    fn config_file_is_optional_and_strict() {
        let dir = tempfile::tempdir().unwrap();
        let p = Pinning::load(dir.path()).unwrap();
        assert!(p.certs.is_empty() && p.ca.is_empty() && !p.disable_tofu);
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            br#"{"trust_pinning":{"certs":{"reg:5000/app":["abc"]},"disable_tofu":true}}"#,
        )
        .unwrap();
        let p = Pinning::load(dir.path()).unwrap();
        assert_eq!(p.certs["reg:5000/app"], ["abc"]);
        assert!(p.disable_tofu);
        assert!(p.covers(&Gun::new("reg:5000/app").unwrap()));
        assert!(!p.covers(&Gun::new("reg:5000/other").unwrap()));
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            br#"{"trust_pinning":{"cert":{}}}"#,
        )
        .unwrap();
        assert!(matches!(
            Pinning::load(dir.path()),
            Err(PinningError::Parse { .. })
        ));
    }

    #[test]
    fn pem_blocks_are_split() {
        let two = "junk\n-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBB==\n-----END CERTIFICATE-----\n";
        let blocks = pem_certificates(two);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].contains("BB=="));
    }
}

#[cfg(test)]
mod root_tests {
    use super::*;
    use bay_signer::cert::{default_cert_validity, generate_root_certificate};
    use bay_signer::editor::{NewRepoKeys, RepoEditor};
    use bay_signer::key::{KeyAlgorithm, PrivateKey, PublicKey, Sign as _};

    fn root_for(gun: &Gun) -> (Root, PublicKey) {
        let now = chrono::Utc::now();
        let rk = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let cert = generate_root_certificate(&rk, gun, now, default_cert_validity()).unwrap();
        let k = || {
            PrivateKey::generate(KeyAlgorithm::Ed25519)
                .public_key()
                .clone()
        };
        let ed = RepoEditor::create(
            gun.clone(),
            NewRepoKeys {
                root: cert.clone(),
                targets: k(),
                snapshot: k(),
                timestamp: k(),
            },
            now,
        )
        .unwrap();
        (ed.root().clone(), cert)
    }

    #[test]
    fn root_keys_match_by_either_id_or_by_the_certificate_key() {
        let gun = Gun::new("reg:5000/app").unwrap();
        let (root, cert) = root_for(&gun);
        let by_ids = |ids: Vec<String>| Pinning {
            certs: [("reg:5000/app".to_owned(), ids)].into(),
            ..Pinning::default()
        };
        let tuf = cert.key_id().as_str().to_owned();
        let canonical = cert.canonical_id().unwrap().as_str().to_owned();
        assert_ne!(tuf, canonical);
        for id in [&tuf, &canonical] {
            assert_eq!(
                by_ids(vec![id.clone()]).check(&gun, &root).unwrap(),
                PinCheck::Matched
            );
        }
        match by_ids(vec!["00".repeat(32)]).check(&gun, &root).unwrap() {
            PinCheck::Mismatch(why) => assert!(why.contains(&tuf), "{why}"),
            other => panic!("{other:?}"),
        }
        // Another GUN is not covered by this pin.
        let other = Gun::new("reg:5000/other").unwrap();
        assert_eq!(
            by_ids(vec![tuf.clone()]).check(&other, &root).unwrap(),
            PinCheck::Unpinned
        );

        let dir = tempfile::tempdir().unwrap();
        let same = dir.path().join("same.crt");
        std::fs::write(&same, cert.public_bytes()).unwrap();
        let (_, stranger) = root_for(&gun);
        let wrong = dir.path().join("wrong.crt");
        std::fs::write(&wrong, stranger.public_bytes()).unwrap();
        let by_cert = |p: &Path| Pinning {
            ca: [("reg:5000".to_owned(), p.to_owned())].into(),
            ..Pinning::default()
        };
        assert_eq!(
            by_cert(&same).check(&gun, &root).unwrap(),
            PinCheck::Matched
        );
        assert!(matches!(
            by_cert(&wrong).check(&gun, &root).unwrap(),
            PinCheck::Mismatch(_)
        ));
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "nothing").unwrap();
        assert!(matches!(
            by_cert(&empty).check(&gun, &root),
            Err(PinningError::BadCert { .. })
        ));
    }
}
