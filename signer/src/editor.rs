//! Creating and changing a repository; editing always ends in the exact
//! bytes to upload per role ([`SignedRole`]).
//!
//! [`RepoEditor::create`] starts a new repository (root v1 with a root
//! certificate, empty targets); [`RepoEditor::from_trusted`] continues from a
//! verified [`TrustedRepo`]. Changes mark roles dirty; [`RepoEditor::sign`]
//! then bumps each dirty role's version, signs its canonical form with the
//! signers whose keys the role lists, and returns the bytes. Snapshot and
//! timestamp are produced only when a signer for them is given (the client
//! usually leaves them to the server, which calls [`build_snapshot`] and
//! [`build_timestamp`] with its own keys).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::canonical::{CanonicalError, to_canonical};
use crate::key::{KeyError, KeyId, PublicKey, Sign};
use crate::names::{Gun, RoleName};
use crate::schema::{
    DelegatedRole, Extra, FileMeta, Role, RoleKeys, RoleType, Root, Signature, Snapshot, Targets,
    Timestamp, default_root_expiry, default_snapshot_expiry, default_targets_expiry,
    default_timestamp_expiry,
};
use crate::verify::TrustedRepo;

/// Errors while editing or signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditorError {
    /// The given signers hold fewer distinct role keys than the threshold.
    #[error("not enough keys to sign {role}: have {have}, threshold {threshold}")]
    NotEnoughSigners {
        /// Role.
        role: RoleName,
        /// Distinct matching signers.
        have: usize,
        /// Threshold.
        threshold: u64,
    },
    /// A signer failed.
    #[error("signing {role} failed")]
    Sign {
        /// Role.
        role: RoleName,
        /// Cause.
        #[source]
        source: KeyError,
    },
    /// The body cannot be canonicalized.
    #[error("{role} cannot be canonicalized")]
    Canonical {
        /// Role.
        role: RoleName,
        /// Cause.
        #[source]
        source: CanonicalError,
    },
    /// The role is not a targets role of this repository.
    #[error("{role} is not a known targets role")]
    UnknownRole {
        /// Role.
        role: RoleName,
    },
    /// The target is outside the delegation's paths.
    #[error("target {target:?} is outside the paths {paths:?} of {role}")]
    OutsidePaths {
        /// Role.
        role: RoleName,
        /// Target.
        target: String,
        /// Allowed prefixes.
        paths: Vec<String>,
    },
    /// Target names must be non-empty and free of control characters.
    #[error("invalid target name {name:?}")]
    InvalidTargetName {
        /// The name.
        name: String,
    },
    /// A threshold of 0, or above the number of keys.
    #[error("threshold {threshold} is invalid for {keys} keys")]
    InvalidThreshold {
        /// Threshold.
        threshold: u64,
        /// Number of keys.
        keys: usize,
    },
    /// Root keys must be `ecdsa-x509` certificates.
    #[error("root keys must be ecdsa-x509 certificates")]
    RootKeyNotCertificate,
    /// The trusted repository has no verified targets role to edit.
    #[error("the trusted repository has no verified {role}")]
    NotLoaded {
        /// Role.
        role: RoleName,
    },
    /// A docker signer name must be a single `[-a-z0-9_]+` segment other
    /// than `releases`.
    #[error("invalid signer name {name:?}")]
    InvalidSignerName {
        /// The name.
        name: String,
    },
    /// Base roles cannot be delegated to or removed.
    #[error("{role} is not a delegation")]
    NotADelegation {
        /// Role.
        role: RoleName,
    },
}

/// One role ready to upload: the exact bytes, and their meta.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedRole {
    /// Role name (the multipart `filename`).
    pub role: RoleName,
    /// Version written.
    pub version: u64,
    /// The exact file. This buffer is what must be uploaded and hashed.
    pub bytes: Vec<u8>,
    /// sha256 + sha512 + length of `bytes`.
    pub meta: FileMeta,
}

impl SignedRole {
    /// Hex sha256 of the bytes (the `{role}.{hex}.json` URL form).
    pub fn sha256_hex(&self) -> String {
        self.meta
            .hashes
            .sha256()
            .map(hex::encode)
            .unwrap_or_default()
    }
}

/// Expiry durations applied when a role is signed.
#[derive(Debug, Clone, Copy)]
pub struct Expiries {
    /// Root (default 10 years).
    pub root: Duration,
    /// Targets and delegations (default 3 years).
    pub targets: Duration,
    /// Snapshot (default 3 years).
    pub snapshot: Duration,
    /// Timestamp (default 14 days).
    pub timestamp: Duration,
}

impl Default for Expiries {
    fn default() -> Self {
        Expiries {
            root: default_root_expiry(),
            targets: default_targets_expiry(),
            snapshot: default_snapshot_expiry(),
            timestamp: default_timestamp_expiry(),
        }
    }
}

/// Signs `body` with explicit `(signer, keyid)` pairs, producing the file
/// `{"signed":…,"signatures":[…]}` in canonical form. The key ID is given
/// because an X.509 root key signs under its certificate's TUF ID; for other
/// keys it is `signer.public_key().key_id()`. Low-level: prefer
/// [`RepoEditor::sign`], [`build_snapshot`] and [`build_timestamp`].
pub fn sign_metadata<T: Role + Serialize>(
    role: &RoleName,
    version: u64,
    body: &T,
    signers: &[(&dyn Sign, KeyId)],
) -> Result<SignedRole, EditorError> {
    let canonical = body
        .canonical_form()
        .map_err(|source| EditorError::Canonical {
            role: role.clone(),
            source,
        })?;
    let mut signatures = Vec::with_capacity(signers.len());
    for (signer, keyid) in signers {
        let (method, sig) = signer
            .sign(&canonical)
            .map_err(|source| EditorError::Sign {
                role: role.clone(),
                source,
            })?;
        signatures.push(Signature {
            keyid: keyid.clone(),
            method,
            sig,
            extra: Extra::new(),
        });
    }
    let bytes = go_envelope(&canonical, &signatures).map_err(|source| EditorError::Canonical {
        role: role.clone(),
        source,
    })?;
    let meta = FileMeta::of_bytes(&bytes);
    Ok(SignedRole {
        role: role.clone(),
        version,
        bytes,
        meta,
    })
}

/// The file exactly as Notary (Go's `json.Marshal` of `data.Signed`)
/// writes it: `{"signed":<canonical body>,"signatures":[{"keyid","method","sig"}]}`
/// with Go's HTML escaping (`<`, `>`, `&`, U+2028, U+2029 as `\uXXXX`).
///
/// The exact form matters beyond signatures: notary-server re-marshals
/// parsed metadata when it builds the timestamp, so only bytes that are a
/// fixpoint of Go's marshalling keep the checksums it indexes consistent.
pub fn go_envelope(
    canonical_signed: &[u8],
    signatures: &[Signature],
) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(canonical_signed.len() + 160 * signatures.len() + 32);
    out.extend_from_slice(b"{\"signed\":");
    go_html_escape(&mut out, canonical_signed);
    out.extend_from_slice(b",\"signatures\":[");
    for (i, sig) in signatures.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // keyid, method, sig in Go's struct order, then any unknown fields.
        let mut fields = vec![
            (
                "keyid".to_owned(),
                serde_json::Value::String(sig.keyid.as_str().to_owned()),
            ),
            (
                "method".to_owned(),
                serde_json::to_value(sig.method)
                    .map_err(|source| CanonicalError::Serialize { source })?,
            ),
            (
                "sig".to_owned(),
                serde_json::Value::String(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    &sig.sig,
                )),
            ),
        ];
        fields.extend(sig.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.push(b'{');
        for (j, (k, v)) in fields.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            go_html_escape(&mut out, &to_canonical(k)?);
            out.push(b':');
            go_html_escape(&mut out, &to_canonical(v)?);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

fn go_html_escape(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                out.extend_from_slice(if bytes[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
}

/// Picks, for each key ID of a role, a signer holding that key (X.509 keys
/// match the bare key inside the certificate). Each key is used once.
fn match_signers<'a>(
    keys: &BTreeMap<KeyId, PublicKey>,
    keyids: &[KeyId],
    signers: &[&'a dyn Sign],
) -> Vec<(&'a dyn Sign, KeyId)> {
    let mut out: Vec<(&'a dyn Sign, KeyId)> = Vec::new();
    for id in keyids {
        if out.iter().any(|(_, k)| k == id) {
            continue;
        }
        let Some(key) = keys.get(id) else { continue };
        let Ok(plain) = key.plain() else { continue };
        if let Some(s) = signers.iter().find(|s| *s.public_key() == plain) {
            out.push((*s, id.clone()));
        }
    }
    out
}

fn threshold_signers<'a>(
    role: &RoleName,
    keys: &BTreeMap<KeyId, PublicKey>,
    rk_keyids: &[KeyId],
    threshold: u64,
    signers: &[&'a dyn Sign],
) -> Result<Vec<(&'a dyn Sign, KeyId)>, EditorError> {
    let matched = match_signers(keys, rk_keyids, signers);
    if threshold == 0 || (matched.len() as u64) < threshold {
        return Err(EditorError::NotEnoughSigners {
            role: role.clone(),
            have: matched.len(),
            threshold,
        });
    }
    Ok(matched)
}

/// Builds and signs a snapshot over the exact bytes of `roles` (root,
/// targets and every delegation), as a server holding the snapshot key does.
pub fn build_snapshot<'r>(
    version: u64,
    expires: DateTime<Utc>,
    roles: impl IntoIterator<Item = (&'r RoleName, &'r [u8])>,
    signer: &dyn Sign,
) -> Result<SignedRole, EditorError> {
    let meta = roles
        .into_iter()
        .map(|(name, bytes)| (name.as_str().to_owned(), FileMeta::of_bytes(bytes)))
        .collect();
    let body = Snapshot {
        kind: RoleType::Snapshot,
        expires,
        meta,
        version,
        extra: Extra::new(),
    };
    let keyid = signer.public_key().key_id();
    sign_metadata(&RoleName::snapshot(), version, &body, &[(signer, keyid)])
}

/// Builds and signs a timestamp over the exact snapshot bytes.
pub fn build_timestamp(
    version: u64,
    expires: DateTime<Utc>,
    snapshot: &[u8],
    signer: &dyn Sign,
) -> Result<SignedRole, EditorError> {
    let mut meta = BTreeMap::new();
    meta.insert("snapshot".to_owned(), FileMeta::of_bytes(snapshot));
    let body = Timestamp {
        kind: RoleType::Timestamp,
        expires,
        meta,
        version,
        extra: Extra::new(),
    };
    let keyid = signer.public_key().key_id();
    sign_metadata(&RoleName::timestamp(), version, &body, &[(signer, keyid)])
}

#[derive(Debug, Clone)]
struct TargetsState {
    body: Targets,
    bytes: Option<Vec<u8>>,
    dirty: bool,
}

/// Keys of a new repository. `root` must be an `ecdsa-x509` certificate
/// (see [`crate::cert::generate_root_certificate`]).
#[derive(Debug, Clone)]
pub struct NewRepoKeys {
    /// Root certificate key.
    pub root: PublicKey,
    /// Targets key.
    pub targets: PublicKey,
    /// Snapshot key (the server's, from `GET snapshot.key`, or the client's).
    pub snapshot: PublicKey,
    /// Timestamp key (the server's, from `GET timestamp.key`).
    pub timestamp: PublicKey,
}

/// Builds and changes a repository; see the module docs.
#[derive(Debug, Clone)]
pub struct RepoEditor {
    gun: Gun,
    now: DateTime<Utc>,
    expiries: Expiries,
    root: Root,
    root_bytes: Option<Vec<u8>>,
    root_dirty: bool,
    /// The root whose root keys must also sign the next root (rotation).
    signing_root: Option<Root>,
    roles: BTreeMap<RoleName, TargetsState>,
    snapshot_version: u64,
    timestamp_version: u64,
    /// Re-sign snapshot (and timestamp) even if no other role changed.
    snapshot_dirty: bool,
}

impl RepoEditor {
    /// A new repository: root v1 listing the four keys (threshold 1 each),
    /// empty targets. Nothing is signed until [`sign`](Self::sign).
    pub fn create(
        gun: Gun,
        keys: NewRepoKeys,
        now: DateTime<Utc>,
    ) -> Result<RepoEditor, EditorError> {
        if keys.root.keytype() != crate::key::KeyType::EcdsaX509 {
            return Err(EditorError::RootKeyNotCertificate);
        }
        let expiries = Expiries::default();
        let mut root = Root {
            kind: RoleType::Root,
            consistent_snapshot: false,
            expires: now + expiries.root,
            keys: BTreeMap::new(),
            roles: BTreeMap::new(),
            version: 0,
            extra: Extra::new(),
        };
        for (role, key) in [
            (RoleType::Root, keys.root),
            (RoleType::Targets, keys.targets),
            (RoleType::Snapshot, keys.snapshot),
            (RoleType::Timestamp, keys.timestamp),
        ] {
            let id = key.key_id();
            root.keys.insert(id.clone(), key);
            root.roles.insert(
                role.base_name().to_owned(),
                RoleKeys {
                    keyids: vec![id],
                    threshold: 1,
                    extra: Extra::new(),
                },
            );
        }
        let mut roles = BTreeMap::new();
        roles.insert(
            RoleName::targets(),
            TargetsState {
                body: Targets::new(0, now + expiries.targets),
                bytes: None,
                dirty: true,
            },
        );
        Ok(RepoEditor {
            gun,
            now,
            expiries,
            root,
            root_bytes: None,
            root_dirty: true,
            signing_root: None,
            roles,
            snapshot_version: 0,
            timestamp_version: 0,
            snapshot_dirty: false,
        })
    }

    /// Continues from a verified repository (its root, targets and loaded
    /// delegations; versions continue from theirs).
    pub fn from_trusted(repo: &TrustedRepo, now: DateTime<Utc>) -> Result<RepoEditor, EditorError> {
        let targets = repo.targets().ok_or_else(|| EditorError::NotLoaded {
            role: RoleName::targets(),
        })?;
        let mut roles = BTreeMap::new();
        roles.insert(
            RoleName::targets(),
            TargetsState {
                body: targets.signed.clone(),
                bytes: Some(targets.bytes.clone()),
                dirty: false,
            },
        );
        for name in repo.delegation_names() {
            if let Some(d) = repo.delegation(&name) {
                roles.insert(
                    name,
                    TargetsState {
                        body: d.signed.clone(),
                        bytes: Some(d.bytes.clone()),
                        dirty: false,
                    },
                );
            }
        }
        Ok(RepoEditor {
            gun: repo.gun().clone(),
            now,
            expiries: Expiries::default(),
            root: repo.root().signed.clone(),
            root_bytes: Some(repo.root().bytes.clone()),
            root_dirty: false,
            signing_root: None,
            roles,
            snapshot_version: repo.snapshot().map_or(0, |s| s.signed.version),
            timestamp_version: repo.timestamp().map_or(0, |t| t.signed.version),
            snapshot_dirty: false,
        })
    }

    /// Changes the expiry durations used when signing.
    pub fn set_expiries(&mut self, expiries: Expiries) {
        self.expiries = expiries;
    }

    /// The GUN.
    pub fn gun(&self) -> &Gun {
        &self.gun
    }

    /// The root body as it stands.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// A targets role body as it stands.
    pub fn targets(&self, role: &RoleName) -> Option<&Targets> {
        self.roles.get(role).map(|s| &s.body)
    }

    /// The delegation entry for `role` in its parent.
    pub fn delegation(&self, role: &RoleName) -> Option<&DelegatedRole> {
        let parent = self.roles.get(&role.parent()?)?;
        parent
            .body
            .delegations
            .roles
            .iter()
            .find(|d| &d.name == role)
    }

    /// Keys of the delegation `role` (from its parent's `delegations.keys`).
    pub fn delegation_keys(&self, role: &RoleName) -> Vec<PublicKey> {
        let Some(d) = self.delegation(role) else {
            return Vec::new();
        };
        let Some(parent) = role.parent().and_then(|p| self.roles.get(&p)) else {
            return Vec::new();
        };
        d.keyids
            .iter()
            .filter_map(|id| parent.body.delegations.keys.get(id).cloned())
            .collect()
    }

    fn check_paths(&self, role: &RoleName, name: &str) -> Result<(), EditorError> {
        let mut at = role.clone();
        while at.is_delegation() {
            if let Some(d) = self.delegation(&at) {
                if !d.allows(name) {
                    return Err(EditorError::OutsidePaths {
                        role: at,
                        target: name.to_owned(),
                        paths: d.paths.clone(),
                    });
                }
            } else {
                return Err(EditorError::UnknownRole { role: at });
            }
            match at.parent() {
                Some(p) => at = p,
                None => break,
            }
        }
        Ok(())
    }

    fn role_mut(&mut self, role: &RoleName) -> Result<&mut TargetsState, EditorError> {
        if !self.roles.contains_key(role) {
            // A delegation that exists in its parent but has no metadata yet.
            if self.delegation(role).is_none() {
                return Err(EditorError::UnknownRole { role: role.clone() });
            }
            let expires = self.now + self.expiries.targets;
            self.roles.insert(
                role.clone(),
                TargetsState {
                    body: Targets::new(0, expires),
                    bytes: None,
                    dirty: true,
                },
            );
        }
        self.roles
            .get_mut(role)
            .ok_or_else(|| EditorError::UnknownRole { role: role.clone() })
    }

    /// Adds or replaces a target (docker: name = tag, [`FileMeta::docker`]).
    pub fn add_target(
        &mut self,
        role: &RoleName,
        name: &str,
        meta: FileMeta,
    ) -> Result<(), EditorError> {
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(EditorError::InvalidTargetName {
                name: name.to_owned(),
            });
        }
        self.check_paths(role, name)?;
        let state = self.role_mut(role)?;
        state.body.targets.insert(name.to_owned(), meta);
        state.dirty = true;
        Ok(())
    }

    /// Removes a target; returns whether it was there.
    pub fn remove_target(&mut self, role: &RoleName, name: &str) -> Result<bool, EditorError> {
        let Some(state) = self.roles.get_mut(role) else {
            if self.delegation(role).is_some() {
                return Ok(false);
            }
            return Err(EditorError::UnknownRole { role: role.clone() });
        };
        let removed = state.body.targets.remove(name).is_some();
        if removed {
            state.dirty = true;
        }
        Ok(removed)
    }

    /// Creates or replaces the delegation `role` (e.g. `targets/releases`,
    /// `targets/alice`) in its parent, with these keys, threshold and path
    /// prefixes (`""` = everything). Keys no longer used by any delegation of
    /// the parent are dropped.
    pub fn add_delegation(
        &mut self,
        role: &RoleName,
        keys: &[PublicKey],
        threshold: u64,
        paths: Vec<String>,
    ) -> Result<(), EditorError> {
        let parent_name = role
            .parent()
            .ok_or_else(|| EditorError::NotADelegation { role: role.clone() })?;
        let unique: BTreeSet<KeyId> = keys.iter().map(PublicKey::key_id).collect();
        if threshold == 0 || threshold > unique.len() as u64 {
            return Err(EditorError::InvalidThreshold {
                threshold,
                keys: unique.len(),
            });
        }
        let parent = self
            .roles
            .get_mut(&parent_name)
            .ok_or_else(|| EditorError::UnknownRole {
                role: parent_name.clone(),
            })?;
        let d = &mut parent.body.delegations;
        for k in keys {
            d.keys.insert(k.key_id(), k.clone());
        }
        let entry = DelegatedRole {
            name: role.clone(),
            keyids: unique.into_iter().collect(),
            threshold,
            paths,
            extra: Extra::new(),
        };
        match d.roles.iter_mut().find(|r| &r.name == role) {
            Some(existing) => {
                let extra = std::mem::take(&mut existing.extra);
                *existing = DelegatedRole { extra, ..entry };
            }
            None => d.roles.push(entry),
        }
        prune_keys(d);
        parent.dirty = true;
        Ok(())
    }

    /// Removes the delegation `role` from its parent, with its metadata
    /// (and that of its own delegations); returns whether it existed.
    pub fn remove_delegation(&mut self, role: &RoleName) -> Result<bool, EditorError> {
        let parent_name = role
            .parent()
            .ok_or_else(|| EditorError::NotADelegation { role: role.clone() })?;
        let parent = self
            .roles
            .get_mut(&parent_name)
            .ok_or_else(|| EditorError::UnknownRole {
                role: parent_name.clone(),
            })?;
        let d = &mut parent.body.delegations;
        let before = d.roles.len();
        d.roles.retain(|r| &r.name != role);
        let removed = d.roles.len() != before;
        if removed {
            prune_keys(d);
            parent.dirty = true;
            let prefix = format!("{}/", role.as_str());
            self.roles
                .retain(|name, _| name != role && !name.as_str().starts_with(&prefix));
        }
        Ok(removed)
    }

    /// A delegation whose metadata is on the server but did not verify
    /// (e.g. still signed by a key no longer delegated to; Notary clients
    /// skip such roles): its contents are not trusted and stay out, but
    /// its next signature gets a version above the stored `version`, so
    /// the server accepts it. Nothing is re-signed until a target is added.
    pub fn continue_invalid_role(
        &mut self,
        role: &RoleName,
        version: u64,
    ) -> Result<(), EditorError> {
        if self.delegation(role).is_none() {
            return Err(EditorError::UnknownRole { role: role.clone() });
        }
        let expires = self.now + self.expiries.targets;
        let state = self
            .roles
            .entry(role.clone())
            .or_insert_with(|| TargetsState {
                body: Targets::new(0, expires),
                bytes: None,
                dirty: false,
            });
        state.body.version = state.body.version.max(version);
        Ok(())
    }

    /// docker's `trust signer add NAME`: adds `keys` to `targets/NAME`
    /// (created with paths `[""]`, threshold 1) and to `targets/releases`
    /// (created likewise), the role docker pulls from.
    pub fn add_signer(&mut self, name: &str, keys: &[PublicKey]) -> Result<RoleName, EditorError> {
        let role = signer_role(name)?;
        for target in [role.clone(), RoleName::releases()] {
            let mut all = self.delegation_keys(&target);
            for k in keys {
                if !all.iter().any(|e| e.key_id() == k.key_id()) {
                    all.push(k.clone());
                }
            }
            let (threshold, paths) = match self.delegation(&target) {
                Some(d) => (d.threshold, d.paths.clone()),
                None => (1, vec![String::new()]),
            };
            self.add_delegation(&target, &all, threshold, paths)?;
        }
        Ok(role)
    }

    /// docker's `trust signer remove NAME` (which docker ≥ 26 silently
    /// skips): removes `targets/NAME` and its keys from `targets/releases`
    /// (keys another signer still uses stay). `targets/releases` goes away
    /// when no key is left. Returns whether the signer existed.
    pub fn remove_signer(&mut self, name: &str) -> Result<bool, EditorError> {
        let role = signer_role(name)?;
        let Some(d) = self.delegation(&role).cloned() else {
            return Ok(false);
        };
        self.remove_delegation(&role)?;
        let still_used: BTreeSet<KeyId> = self
            .targets(&RoleName::targets())
            .map(|t| {
                t.delegations
                    .roles
                    .iter()
                    .filter(|r| r.name != RoleName::releases())
                    .flat_map(|r| r.keyids.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(rel) = self.delegation(&RoleName::releases()).cloned() {
            let keep: Vec<PublicKey> = self
                .delegation_keys(&RoleName::releases())
                .into_iter()
                .filter(|k| {
                    let id = k.key_id();
                    !d.keyids.contains(&id) || still_used.contains(&id)
                })
                .collect();
            if keep.is_empty() {
                self.remove_delegation(&RoleName::releases())?;
            } else if keep.len() != rel.keyids.len() {
                let threshold = rel.threshold.min(keep.len() as u64);
                self.add_delegation(&RoleName::releases(), &keep, threshold, rel.paths)?;
            }
        }
        Ok(true)
    }

    /// The roles `signers` can sign a tag into, as docker's push/sign picks
    /// them: every direct `targets/*` delegation whose threshold they meet,
    /// else `targets` itself when they hold its keys.
    pub fn signable_roles(&self, signers: &[&dyn Sign]) -> Vec<RoleName> {
        let mut out = Vec::new();
        if let Some(t) = self.targets(&RoleName::targets()) {
            for d in &t.delegations.roles {
                if d.name.parent() == Some(RoleName::targets())
                    && (match_signers(&t.delegations.keys, &d.keyids, signers).len() as u64)
                        >= d.threshold
                {
                    out.push(d.name.clone());
                }
            }
        }
        if out.is_empty()
            && let Some(rk) = self.root.role(RoleType::Targets)
            && (match_signers(&self.root.keys, &rk.keyids, signers).len() as u64) >= rk.threshold
        {
            out.push(RoleName::targets());
        }
        out
    }

    /// docker's `trust revoke IMAGE:TAG`: removes the tag from every role
    /// that has it; returns the roles changed.
    pub fn revoke_tag(&mut self, tag: &str) -> Vec<RoleName> {
        let mut changed = Vec::new();
        for (name, state) in &mut self.roles {
            if state.body.targets.remove(tag).is_some() {
                state.dirty = true;
                changed.push(name.clone());
            }
        }
        changed
    }

    /// Replaces the keys of a base role in root (`key rotate`); for the root
    /// role, the keys must be certificates and the current root keys will
    /// also sign the new root.
    pub fn set_role_keys(
        &mut self,
        role: RoleType,
        keys: &[PublicKey],
        threshold: u64,
    ) -> Result<(), EditorError> {
        let unique: BTreeSet<KeyId> = keys.iter().map(PublicKey::key_id).collect();
        if threshold == 0 || threshold > unique.len() as u64 {
            return Err(EditorError::InvalidThreshold {
                threshold,
                keys: unique.len(),
            });
        }
        if role == RoleType::Root {
            if keys
                .iter()
                .any(|k| k.keytype() != crate::key::KeyType::EcdsaX509)
            {
                return Err(EditorError::RootKeyNotCertificate);
            }
            if self.signing_root.is_none() && self.root_bytes.is_some() {
                self.signing_root = Some(self.root.clone());
            }
        }
        for k in keys {
            self.root.keys.insert(k.key_id(), k.clone());
        }
        let rk = self
            .root
            .roles
            .entry(role.base_name().to_owned())
            .or_insert(RoleKeys {
                keyids: vec![],
                threshold,
                extra: Extra::new(),
            });
        rk.keyids = unique.into_iter().collect();
        rk.threshold = threshold;
        let used: BTreeSet<KeyId> = self
            .root
            .roles
            .values()
            .flat_map(|r| r.keyids.iter().cloned())
            .collect();
        self.root.keys.retain(|id, _| used.contains(id));
        self.root_dirty = true;
        if role == RoleType::Targets
            && let Some(t) = self.roles.get_mut(&RoleName::targets())
        {
            t.dirty = true;
        }
        Ok(())
    }

    /// Marks a role to be re-signed with a fresh version and expiry
    /// (`snapshot` or `timestamp`: re-sign those even if nothing else changed).
    pub fn touch(&mut self, role: &RoleName) -> Result<(), EditorError> {
        match role.as_str() {
            "root" => self.root_dirty = true,
            "snapshot" | "timestamp" => self.snapshot_dirty = true,
            _ => self.role_mut(role)?.dirty = true,
        }
        Ok(())
    }

    /// Signs every changed role with the matching `signers` and returns the
    /// files to upload: root, targets, delegations, then snapshot and
    /// timestamp when a signer for them is among `signers`. A role whose
    /// threshold the signers cannot meet is an error and nothing changes.
    pub fn sign(&mut self, signers: &[&dyn Sign]) -> Result<Vec<SignedRole>, EditorError> {
        let mut next = self.clone();
        let out = next.sign_in_place(signers)?;
        *self = next;
        Ok(out)
    }

    fn sign_in_place(&mut self, signers: &[&dyn Sign]) -> Result<Vec<SignedRole>, EditorError> {
        let mut out = Vec::new();
        if self.root_dirty {
            let role = RoleName::root();
            self.root.version += 1;
            self.root.expires = self.now + self.expiries.root;
            let rk = self
                .root
                .role(RoleType::Root)
                .ok_or_else(|| EditorError::UnknownRole { role: role.clone() })?;
            let mut chosen =
                threshold_signers(&role, &self.root.keys, &rk.keyids, rk.threshold, signers)?;
            if let Some(old) = &self.signing_root {
                let ork = old
                    .role(RoleType::Root)
                    .ok_or_else(|| EditorError::UnknownRole { role: role.clone() })?;
                for pair in
                    threshold_signers(&role, &old.keys, &ork.keyids, ork.threshold, signers)?
                {
                    if !chosen.iter().any(|(_, k)| *k == pair.1) {
                        chosen.push(pair);
                    }
                }
            }
            let signed = sign_metadata(&role, self.root.version, &self.root, &chosen)?;
            self.root_bytes = Some(signed.bytes.clone());
            out.push(signed);
        }
        // Parents' delegation entries are stable by now; sign each dirty
        // targets role with the keys its parent (or root) lists.
        let dirty: Vec<RoleName> = self
            .roles
            .iter()
            .filter(|(_, s)| s.dirty)
            .map(|(n, _)| n.clone())
            .collect();
        for name in dirty {
            let (keys, keyids, threshold) = if name.is_delegation() {
                let d = self
                    .delegation(&name)
                    .ok_or_else(|| EditorError::UnknownRole { role: name.clone() })?
                    .clone();
                let parent = name
                    .parent()
                    .and_then(|p| self.roles.get(&p))
                    .ok_or_else(|| EditorError::UnknownRole { role: name.clone() })?;
                (parent.body.delegations.keys.clone(), d.keyids, d.threshold)
            } else {
                let rk = self
                    .root
                    .role(RoleType::Targets)
                    .ok_or_else(|| EditorError::UnknownRole { role: name.clone() })?;
                (self.root.keys.clone(), rk.keyids.clone(), rk.threshold)
            };
            let chosen = threshold_signers(&name, &keys, &keyids, threshold, signers)?;
            let expires = self.now + self.expiries.targets;
            let state = self
                .roles
                .get_mut(&name)
                .ok_or_else(|| EditorError::UnknownRole { role: name.clone() })?;
            state.body.version += 1;
            state.body.expires = expires;
            let signed = sign_metadata(&name, state.body.version, &state.body, &chosen)?;
            state.bytes = Some(signed.bytes.clone());
            state.dirty = false;
            out.push(signed);
        }
        let changed = !out.is_empty() || self.snapshot_dirty;
        if !changed {
            return Ok(out);
        }
        if let Some(snap) = self.try_snapshot(signers)? {
            if let Some(ts) = self.try_timestamp(&snap.bytes, signers)? {
                out.push(snap);
                out.push(ts);
            } else {
                out.push(snap);
            }
        }
        self.root_dirty = false;
        self.signing_root = None;
        self.snapshot_dirty = false;
        Ok(out)
    }

    fn pick_one<'a>(&self, role: RoleType, signers: &[&'a dyn Sign]) -> Option<&'a dyn Sign> {
        let rk = self.root.role(role)?;
        let matched = match_signers(&self.root.keys, &rk.keyids, signers);
        matched.first().map(|(s, _)| *s)
    }

    fn try_snapshot(&mut self, signers: &[&dyn Sign]) -> Result<Option<SignedRole>, EditorError> {
        let Some(signer) = self.pick_one(RoleType::Snapshot, signers) else {
            return Ok(None);
        };
        let root = RoleName::root();
        let mut files: Vec<(&RoleName, &[u8])> = Vec::new();
        if let Some(b) = &self.root_bytes {
            files.push((&root, b));
        }
        for (name, state) in &self.roles {
            if let Some(b) = &state.bytes {
                files.push((name, b));
            }
        }
        let version = self.snapshot_version + 1;
        let snap = build_snapshot(version, self.now + self.expiries.snapshot, files, signer)?;
        self.snapshot_version = version;
        Ok(Some(snap))
    }

    fn try_timestamp(
        &mut self,
        snapshot: &[u8],
        signers: &[&dyn Sign],
    ) -> Result<Option<SignedRole>, EditorError> {
        let Some(signer) = self.pick_one(RoleType::Timestamp, signers) else {
            return Ok(None);
        };
        let version = self.timestamp_version + 1;
        let ts = build_timestamp(
            version,
            self.now + self.expiries.timestamp,
            snapshot,
            signer,
        )?;
        self.timestamp_version = version;
        Ok(Some(ts))
    }
}

fn signer_role(name: &str) -> Result<RoleName, EditorError> {
    let invalid = || EditorError::InvalidSignerName {
        name: name.to_owned(),
    };
    if name == "releases" || name.contains('/') {
        return Err(invalid());
    }
    RoleName::new(format!("targets/{name}")).map_err(|_| invalid())
}

fn prune_keys(d: &mut crate::schema::Delegations) {
    let used: BTreeSet<KeyId> = d
        .roles
        .iter()
        .flat_map(|r| r.keyids.iter().cloned())
        .collect();
    d.keys.retain(|id, _| used.contains(id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyId;
    use crate::schema::SignatureMethod;

    #[test]
    fn signed_roles_get_the_default_expiries() {
        use crate::key::{KeyAlgorithm, PrivateKey, Sign as _};
        let now = Utc::now();
        let gun = Gun::new("g/app").unwrap();
        let root = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let other = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let cert = crate::cert::generate_root_certificate(
            &root,
            &gun,
            now,
            crate::cert::default_cert_validity(),
        )
        .unwrap();
        let mut ed = RepoEditor::create(
            gun,
            NewRepoKeys {
                root: cert,
                targets: other.public_key().clone(),
                snapshot: other.public_key().clone(),
                timestamp: other.public_key().clone(),
            },
            now,
        )
        .unwrap();
        let out = ed.sign(&[&root, &other]).unwrap();
        let days = |role: &str| {
            let f = out.iter().find(|r| r.role.as_str() == role).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&f.bytes).unwrap();
            let exp =
                chrono::DateTime::parse_from_rfc3339(v["signed"]["expires"].as_str().unwrap())
                    .unwrap();
            (exp.with_timezone(&Utc) - now).num_days()
        };
        assert_eq!(days("root"), 3650);
        assert_eq!(days("targets"), 1095);
        assert_eq!(days("snapshot"), 1095);
        assert_eq!(days("timestamp"), 14);
        assert!(out.iter().all(|r| r.version == 1));
    }

    #[test]
    fn an_invalid_delegation_continues_its_version_and_signs_only_when_changed() {
        use crate::key::{KeyAlgorithm, PrivateKey, Sign as _};
        let now = Utc::now();
        let gun = Gun::new("g/app").unwrap();
        let root = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let other = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let signer = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let cert = crate::cert::generate_root_certificate(
            &root,
            &gun,
            now,
            crate::cert::default_cert_validity(),
        )
        .unwrap();
        let mut ed = RepoEditor::create(
            gun,
            NewRepoKeys {
                root: cert,
                targets: other.public_key().clone(),
                snapshot: other.public_key().clone(),
                timestamp: other.public_key().clone(),
            },
            now,
        )
        .unwrap();
        ed.add_signer("alice", std::slice::from_ref(signer.public_key()))
            .unwrap();
        let unknown = RoleName::new("targets/nobody").unwrap();
        assert!(matches!(
            ed.continue_invalid_role(&unknown, 3),
            Err(EditorError::UnknownRole { .. })
        ));
        ed.continue_invalid_role(&RoleName::releases(), 7).unwrap();
        // Not changed: not signed (the releases key is not even offered).
        let out = ed.sign(&[&root, &other]).unwrap();
        assert!(out.iter().all(|r| r.role != RoleName::releases()));
        ed.add_target(&RoleName::releases(), "v1", FileMeta::docker([1; 32], 10))
            .unwrap();
        let out = ed.sign(&[&other, &signer]).unwrap();
        let rel = out.iter().find(|r| r.role == RoleName::releases()).unwrap();
        assert_eq!(rel.version, 8);
    }

    #[test]
    fn go_envelope_matches_go_json_marshal_of_data_signed() {
        let canonical = "{\"a<b>&c-é\u{2028}\":1}".as_bytes();
        let sig = Signature {
            keyid: KeyId::from_hex("ab"),
            method: SignatureMethod::Eddsa,
            sig: vec![1, 2, 3],
            extra: Extra::new(),
        };
        let out = go_envelope(canonical, &[sig]).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"signed":{"a\u003cb\u003e\u0026c-é\u2028":1},"signatures":[{"keyid":"ab","method":"eddsa","sig":"AQID"}]}"#
        );
        // It parses back to the same canonical body.
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            crate::canonical::value_to_canonical(&v["signed"]).unwrap(),
            canonical
        );
    }
}
