//! Verification of a Notary repository in TUF update order.
//!
//! [`TrustedRepo::new`] starts from a trusted root (from a local cache, or
//! fetched on first use), then the caller feeds the raw bytes of each file as
//! fetched, in order:
//!
//! 1. [`update_root`](TrustedRepo::update_root) for each newer root: it must be
//!    signed by the threshold of the **old** root's root keys and of its own;
//! 2. [`update_timestamp`](TrustedRepo::update_timestamp) (the root must now be
//!    unexpired, and its certificates valid);
//! 3. [`update_snapshot`](TrustedRepo::update_snapshot): length and hashes
//!    must match the timestamp's meta;
//! 4. [`update_targets`](TrustedRepo::update_targets): must match the
//!    snapshot's meta;
//! 5. [`update_delegation`](TrustedRepo::update_delegation), parents first,
//!    for the roles [`delegations_to_fetch`](TrustedRepo::delegations_to_fetch)
//!    lists.
//!
//! Each step checks the size limit, the signature threshold (a key counts
//! once however often it signs), the `_type`, the expiry (unless
//! [`ExpirationEnforcement::Unsafe`]) and that the version does not go below
//! the one previously trusted ([`TrustedVersions`]). Signatures are checked
//! over the canonical form of the parsed `signed` value, hashes over the
//! exact bytes. [`verify_repository`] runs all steps at once.
//!
//! Like Notary, a client whose timestamp, snapshot or targets fails with
//! [`VerifyError::ThresholdNotMet`] (keys rotated) or whose snapshot lists a
//! different root ([`TrustedRepo::needs_root_update`]) fetches `root.json`
//! (and `{N}.root.json` for skipped versions), calls `update_root`, and
//! retries from the timestamp.
//!
//! [`TrustedRepo::lookup`] then answers like docker: `targets/releases` first,
//! then `targets`, saying which role and which keys signed the tag.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256, Sha512};

use crate::canonical::{CanonicalError, value_to_canonical};
use crate::cert::{self, CertError};
use crate::key::{KeyId, KeyType, PublicKey};
use crate::names::{Gun, RoleName};
use crate::schema::{
    DelegatedRole, FileMeta, Hashes, Role, RoleKeys, RoleType, Root, Signature, Snapshot, Targets,
    Timestamp,
};

/// Default size limit of one metadata file: 16 MiB.
pub const DEFAULT_MAX_METADATA_SIZE: u64 = 16 << 20;

/// Whether expiry dates are enforced. [`Safe`](Self::Safe) is the default;
/// [`Unsafe`](Self::Unsafe) exists for inspecting old repositories only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExpirationEnforcement {
    /// Expired metadata and certificates are refused.
    #[default]
    Safe,
    /// Expiry is not checked.
    Unsafe,
}

/// The versions a client trusted last time; a lower version is a rollback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedVersions {
    /// Root version.
    pub root: u64,
    /// Timestamp version.
    pub timestamp: u64,
    /// Snapshot version.
    pub snapshot: u64,
    /// Targets version.
    pub targets: u64,
    /// Delegation versions.
    #[serde(default)]
    pub delegations: BTreeMap<RoleName, u64>,
}

/// Options of a verification.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Expiry enforcement (default Safe).
    pub expiration: ExpirationEnforcement,
    /// Largest accepted file (default [`DEFAULT_MAX_METADATA_SIZE`]).
    pub max_metadata_size: u64,
    /// The time to check expiry against (default: now).
    pub now: Option<DateTime<Utc>>,
    /// Versions trusted before (default: none).
    pub previous: Option<TrustedVersions>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            expiration: ExpirationEnforcement::Safe,
            max_metadata_size: DEFAULT_MAX_METADATA_SIZE,
            now: None,
            previous: None,
        }
    }
}

/// Why one signature did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The key is not one of the role's keys.
    UnknownKey,
    /// The key listed under this ID hashes to another ID.
    KeyIdMismatch,
    /// The key already signed (counted once).
    Duplicate,
    /// The signature is wrong for the bytes, the key type or the method.
    BadSignature,
    /// The signature entry itself does not parse.
    Malformed,
}

/// A signature that did not count, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedSignature {
    /// The key ID it claims (empty when it does not parse).
    pub keyid: String,
    /// Why.
    pub reason: Rejection,
}

/// Verification failures, one per attack or defect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file is bigger than the limit (or than its meta says).
    #[error("{role} metadata is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Role.
        role: RoleName,
        /// Size found.
        size: u64,
        /// Limit.
        max: u64,
    },
    /// Not a `{"signed":…,"signatures":[…]}` document of this role.
    #[error("{role} metadata is malformed")]
    Malformed {
        /// Role.
        role: RoleName,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// `signed` cannot be canonicalized.
    #[error("{role} metadata cannot be canonicalized")]
    Canonical {
        /// Role.
        role: RoleName,
        /// Cause.
        #[source]
        source: CanonicalError,
    },
    /// `_type` is not the expected one.
    #[error("{role} metadata has _type {found:?}, expected {expected:?}")]
    WrongType {
        /// Role.
        role: RoleName,
        /// Expected.
        expected: RoleType,
        /// Found.
        found: RoleType,
    },
    /// Not enough distinct valid signatures.
    #[error("valid signatures did not meet threshold for {role}: {valid} of {threshold}")]
    ThresholdNotMet {
        /// Role.
        role: RoleName,
        /// Distinct valid signatures.
        valid: usize,
        /// Threshold.
        threshold: u64,
        /// The signatures that did not count.
        rejected: Vec<RejectedSignature>,
    },
    /// A new root is not signed by the threshold of the previous root.
    #[error("root v{new} is not signed by the threshold of trusted root v{trusted}")]
    RotationNotSignedByOldRoot {
        /// Trusted root version.
        trusted: u64,
        /// New root version.
        new: u64,
        /// The signature check against the old root.
        #[source]
        source: Box<VerifyError>,
    },
    /// A role with threshold 0 or no keys.
    #[error("{role} has an invalid threshold {threshold}")]
    InvalidThreshold {
        /// Role.
        role: RoleName,
        /// Threshold.
        threshold: u64,
    },
    /// Root does not define this base role.
    #[error("root does not define the {role} role")]
    MissingRoleKeys {
        /// Role.
        role: RoleName,
    },
    /// A root key that is not an `ecdsa-x509` certificate.
    #[error("root key {key_id} is a {keytype} key, not a certificate")]
    RootKeyNotCertificate {
        /// Key.
        key_id: KeyId,
        /// Its type.
        keytype: KeyType,
    },
    /// A root certificate fails validation (CN, expiry, algorithm...).
    #[error("root certificate {key_id} is invalid")]
    RootCertificate {
        /// Key.
        key_id: KeyId,
        /// Cause.
        #[source]
        source: CertError,
    },
    /// The metadata is expired (freeze attack).
    #[error("{role} metadata expired at {expires}")]
    Expired {
        /// Role.
        role: RoleName,
        /// Its expiry.
        expires: DateTime<Utc>,
        /// The time checked.
        now: DateTime<Utc>,
    },
    /// A version below the trusted one (rollback attack).
    #[error("{role} version {new} is lower than trusted version {trusted}")]
    Rollback {
        /// Role.
        role: RoleName,
        /// Version trusted before.
        trusted: u64,
        /// Version offered.
        new: u64,
    },
    /// A root with the same version as the trusted one but other content.
    #[error("root v{version} differs from the trusted root of the same version")]
    RootVersionConflict {
        /// Version.
        version: u64,
    },
    /// The pointing role (timestamp/snapshot) has no entry for this role.
    #[error("{parent} has no meta for {role}")]
    MissingMeta {
        /// Role looked up.
        role: RoleName,
        /// Role that should list it.
        parent: RoleName,
    },
    /// Length differs from the meta (mix-and-match).
    #[error("{role} is {actual} bytes, meta says {expected}")]
    LengthMismatch {
        /// Role.
        role: RoleName,
        /// Meta length.
        expected: u64,
        /// Actual length.
        actual: u64,
    },
    /// A hash differs from the meta (tampering or mix-and-match).
    #[error("{algorithm} checksum for {role} did not match")]
    HashMismatch {
        /// Role.
        role: RoleName,
        /// Algorithm.
        algorithm: String,
    },
    /// The meta has neither sha256 nor sha512.
    #[error("meta for {role} has no sha256 or sha512 hash")]
    NoHashes {
        /// Role.
        role: RoleName,
    },
    /// A step was called before the one it depends on.
    #[error("{role} cannot be verified before {needs}")]
    OutOfOrder {
        /// Role.
        role: RoleName,
        /// The missing earlier step.
        needs: RoleName,
    },
    /// No verified parent delegates to this role.
    #[error("no verified role delegates to {role}")]
    UnknownDelegation {
        /// Role.
        role: RoleName,
    },
    /// [`verify_repository`] was not given a file the snapshot lists.
    #[error("{role} is listed in the snapshot but was not fetched")]
    NotFetched {
        /// Role.
        role: RoleName,
    },
    /// A delegation signed a target outside its allowed paths.
    #[error("{role} signed target {target:?} outside its paths {paths:?}")]
    DelegationPathViolation {
        /// Role.
        role: RoleName,
        /// Target name.
        target: String,
        /// Allowed prefixes.
        paths: Vec<String>,
    },
}

/// A role that passed verification, with its exact bytes.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The parsed body.
    pub signed: T,
    /// The exact bytes as fetched.
    pub bytes: Vec<u8>,
    /// Distinct keys whose signatures verified.
    pub signers: Vec<KeyId>,
}

/// A tag found by [`TrustedRepo::lookup`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedTarget {
    /// Target name (the tag).
    pub name: String,
    /// `hashes.sha256` (docker: the manifest digest).
    pub sha256: [u8; 32],
    /// Length (docker: the manifest size).
    pub length: u64,
    /// The role that signed it: `targets`, `targets/releases`, ...
    pub role: RoleName,
    /// Keys whose signatures on that role verified.
    pub signers: Vec<KeyId>,
    /// The whole entry (all hashes, `custom`).
    pub meta: FileMeta,
}

impl VerifiedTarget {
    /// The digest as an OCI digest string, `sha256:<hex>`.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.sha256))
    }
}

struct RoleCheck<'a> {
    role: &'a RoleName,
    keys: &'a BTreeMap<KeyId, PublicKey>,
    keyids: &'a [KeyId],
    threshold: u64,
}

fn parse_envelope(role: &RoleName, bytes: &[u8]) -> Result<(Value, Vec<Value>), VerifyError> {
    #[derive(Deserialize)]
    struct Envelope {
        signed: Value,
        signatures: Vec<Value>,
    }
    let env: Envelope = serde_json::from_slice(bytes).map_err(|source| VerifyError::Malformed {
        role: role.clone(),
        source,
    })?;
    Ok((env.signed, env.signatures))
}

/// Counts distinct valid signatures and checks the threshold.
fn check_signatures(
    check: &RoleCheck<'_>,
    canonical: &[u8],
    sigs: &[Value],
) -> Result<Vec<KeyId>, VerifyError> {
    if check.threshold == 0 || check.keyids.is_empty() {
        return Err(VerifyError::InvalidThreshold {
            role: check.role.clone(),
            threshold: check.threshold,
        });
    }
    let mut valid: Vec<KeyId> = Vec::new();
    let mut rejected = Vec::new();
    for raw in sigs {
        let Ok(sig) = Signature::deserialize(raw) else {
            rejected.push(RejectedSignature {
                keyid: String::new(),
                reason: Rejection::Malformed,
            });
            continue;
        };
        let reject = |reason| RejectedSignature {
            keyid: sig.keyid.as_str().to_owned(),
            reason,
        };
        if valid.contains(&sig.keyid) {
            rejected.push(reject(Rejection::Duplicate));
            continue;
        }
        let Some(key) = check
            .keys
            .get(&sig.keyid)
            .filter(|_| check.keyids.contains(&sig.keyid))
        else {
            rejected.push(reject(Rejection::UnknownKey));
            continue;
        };
        if key.key_id() != sig.keyid {
            rejected.push(reject(Rejection::KeyIdMismatch));
            continue;
        }
        match key.verify(sig.method, canonical, &sig.sig) {
            Ok(()) => valid.push(sig.keyid.clone()),
            Err(e) => {
                tracing::debug!(role = %check.role, keyid = %sig.keyid, error = %e, "signature rejected");
                rejected.push(reject(Rejection::BadSignature));
            }
        }
    }
    if (valid.len() as u64) < check.threshold {
        return Err(VerifyError::ThresholdNotMet {
            role: check.role.clone(),
            valid: valid.len(),
            threshold: check.threshold,
            rejected,
        });
    }
    Ok(valid)
}

/// Parses, size-checks and signature-checks one file, without expiry or
/// version checks.
fn verify_file<T: Role>(
    check: &RoleCheck<'_>,
    bytes: &[u8],
    max: u64,
) -> Result<Verified<T>, VerifyError> {
    let role = check.role;
    if bytes.len() as u64 > max {
        return Err(VerifyError::TooLarge {
            role: role.clone(),
            size: bytes.len() as u64,
            max,
        });
    }
    let (signed, sigs) = parse_envelope(role, bytes)?;
    let canonical = value_to_canonical(&signed).map_err(|source| VerifyError::Canonical {
        role: role.clone(),
        source,
    })?;
    let signers = check_signatures(check, &canonical, &sigs)?;
    let body = T::deserialize(&signed).map_err(|source| VerifyError::Malformed {
        role: role.clone(),
        source,
    })?;
    if body.role_type() != T::TYPE {
        return Err(VerifyError::WrongType {
            role: role.clone(),
            expected: T::TYPE,
            found: body.role_type(),
        });
    }
    Ok(Verified {
        signed: body,
        bytes: bytes.to_vec(),
        signers,
    })
}

/// Checks exact bytes against a `FileMeta` (length first, then every
/// sha256/sha512 present; at least one must be).
pub fn check_meta(role: &RoleName, bytes: &[u8], meta: &FileMeta) -> Result<(), VerifyError> {
    if bytes.len() as u64 != meta.length {
        return Err(VerifyError::LengthMismatch {
            role: role.clone(),
            expected: meta.length,
            actual: bytes.len() as u64,
        });
    }
    check_hashes(role, bytes, &meta.hashes)
}

fn check_hashes(role: &RoleName, bytes: &[u8], hashes: &Hashes) -> Result<(), VerifyError> {
    let mut checked = false;
    if let Some(want) = hashes.sha256() {
        checked = true;
        if Sha256::digest(bytes).as_slice() != want {
            return Err(VerifyError::HashMismatch {
                role: role.clone(),
                algorithm: "sha256".into(),
            });
        }
    }
    if let Some(want) = hashes.sha512() {
        checked = true;
        if Sha512::digest(bytes).as_slice() != want {
            return Err(VerifyError::HashMismatch {
                role: role.clone(),
                algorithm: "sha512".into(),
            });
        }
    }
    if !checked {
        return Err(VerifyError::NoHashes { role: role.clone() });
    }
    Ok(())
}

/// Repository state verified so far; see the module docs for the order.
#[derive(Debug, Clone)]
pub struct TrustedRepo {
    gun: Gun,
    opts: VerifyOptions,
    now: DateTime<Utc>,
    root: Verified<Root>,
    timestamp: Option<Verified<Timestamp>>,
    snapshot: Option<Verified<Snapshot>>,
    targets: Option<Verified<Targets>>,
    delegations: BTreeMap<RoleName, (DelegatedRole, Verified<Targets>)>,
}

impl TrustedRepo {
    /// Starts from a trusted root: one from the local cache, or on first
    /// use (TOFU) the `root.json` just fetched. It must be signed by its own
    /// root keys, and those must be certificates whose CN is `gun`. Expiry is
    /// checked later, by [`update_timestamp`](Self::update_timestamp), so that
    /// an expired cached root can still be rotated.
    pub fn new(gun: Gun, root: &[u8], opts: VerifyOptions) -> Result<TrustedRepo, VerifyError> {
        let now = opts.now.unwrap_or_else(Utc::now);
        let role = RoleName::root();
        // Parse once to learn the root's own keys, then verify with them.
        let (signed, _) = parse_envelope(&role, root)?;
        let body = Root::deserialize(&signed).map_err(|source| VerifyError::Malformed {
            role: role.clone(),
            source,
        })?;
        let verified = verify_root_with(&body, &role, root, opts.max_metadata_size)?;
        check_root_certs(&gun, &verified.signed, None)?;
        if let Some(prev) = &opts.previous
            && verified.signed.version < prev.root
        {
            return Err(VerifyError::Rollback {
                role,
                trusted: prev.root,
                new: verified.signed.version,
            });
        }
        Ok(TrustedRepo {
            gun,
            opts,
            now,
            root: verified,
            timestamp: None,
            snapshot: None,
            targets: None,
            delegations: BTreeMap::new(),
        })
    }

    /// Moves to a newer root: signed by the threshold of the trusted root's
    /// root keys **and** of its own; version must be higher (the same bytes
    /// again are accepted as a no-op). Clears later roles.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<(), VerifyError> {
        let role = RoleName::root();
        let (signed, _) = parse_envelope(&role, bytes)?;
        let body = Root::deserialize(&signed).map_err(|source| VerifyError::Malformed {
            role: role.clone(),
            source,
        })?;
        let trusted = self.root.signed.version;
        if body.version < trusted {
            return Err(VerifyError::Rollback {
                role,
                trusted,
                new: body.version,
            });
        }
        if body.version == trusted {
            if bytes == self.root.bytes.as_slice() {
                return Ok(());
            }
            return Err(VerifyError::RootVersionConflict { version: trusted });
        }
        verify_root_with(&self.root.signed, &role, bytes, self.opts.max_metadata_size).map_err(
            |e| VerifyError::RotationNotSignedByOldRoot {
                trusted,
                new: body.version,
                source: Box::new(e),
            },
        )?;
        let verified = verify_root_with(&body, &role, bytes, self.opts.max_metadata_size)?;
        check_root_certs(&self.gun, &verified.signed, None)?;
        self.root = verified;
        self.timestamp = None;
        self.snapshot = None;
        self.targets = None;
        self.delegations.clear();
        Ok(())
    }

    fn enforce(&self) -> bool {
        self.opts.expiration == ExpirationEnforcement::Safe
    }

    fn check_expiry<T: Role>(&self, role: &RoleName, body: &T) -> Result<(), VerifyError> {
        if self.enforce() && body.expires() <= self.now {
            return Err(VerifyError::Expired {
                role: role.clone(),
                expires: body.expires(),
                now: self.now,
            });
        }
        Ok(())
    }

    fn check_version(&self, role: &RoleName, new: u64) -> Result<(), VerifyError> {
        let Some(prev) = &self.opts.previous else {
            return Ok(());
        };
        let trusted = match role.as_str() {
            "timestamp" => prev.timestamp,
            "snapshot" => prev.snapshot,
            "targets" => prev.targets,
            _ => prev.delegations.get(role).copied().unwrap_or(0),
        };
        if new < trusted {
            return Err(VerifyError::Rollback {
                role: role.clone(),
                trusted,
                new,
            });
        }
        Ok(())
    }

    fn base_check<'a>(
        &'a self,
        role: &'a RoleName,
        kind: RoleType,
    ) -> Result<RoleCheck<'a>, VerifyError> {
        let rk: &RoleKeys = self
            .root
            .signed
            .role(kind)
            .ok_or_else(|| VerifyError::MissingRoleKeys { role: role.clone() })?;
        Ok(RoleCheck {
            role,
            keys: &self.root.signed.keys,
            keyids: &rk.keyids,
            threshold: rk.threshold,
        })
    }

    /// Verifies `timestamp.json`. First checks that the trusted root is not
    /// expired and its certificates are valid now.
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<(), VerifyError> {
        let root_role = RoleName::root();
        self.check_expiry(&root_role, &self.root.signed)?;
        if self.enforce() {
            check_root_certs(&self.gun, &self.root.signed, Some(self.now))?;
        }
        let role = RoleName::timestamp();
        let check = self.base_check(&role, RoleType::Timestamp)?;
        let v: Verified<Timestamp> = verify_file(&check, bytes, self.opts.max_metadata_size)?;
        self.check_version(&role, v.signed.version)?;
        if let Some(old) = &self.timestamp
            && v.signed.version < old.signed.version
        {
            return Err(VerifyError::Rollback {
                role,
                trusted: old.signed.version,
                new: v.signed.version,
            });
        }
        self.check_expiry(&role, &v.signed)?;
        if !v.signed.meta.contains_key("snapshot") {
            return Err(VerifyError::MissingMeta {
                role: RoleName::snapshot(),
                parent: role,
            });
        }
        self.timestamp = Some(v);
        self.snapshot = None;
        self.targets = None;
        self.delegations.clear();
        Ok(())
    }

    /// Verifies `snapshot.json` against the timestamp's meta.
    pub fn update_snapshot(&mut self, bytes: &[u8]) -> Result<(), VerifyError> {
        let role = RoleName::snapshot();
        let ts = self
            .timestamp
            .as_ref()
            .ok_or_else(|| VerifyError::OutOfOrder {
                role: role.clone(),
                needs: RoleName::timestamp(),
            })?;
        let meta = ts
            .signed
            .meta
            .get("snapshot")
            .ok_or_else(|| VerifyError::MissingMeta {
                role: role.clone(),
                parent: RoleName::timestamp(),
            })?;
        self.check_size(&role, bytes)?;
        check_meta(&role, bytes, meta)?;
        let check = self.base_check(&role, RoleType::Snapshot)?;
        let v: Verified<Snapshot> = verify_file(&check, bytes, self.opts.max_metadata_size)?;
        self.check_version(&role, v.signed.version)?;
        self.check_expiry(&role, &v.signed)?;
        if !v.signed.meta.contains_key("targets") {
            return Err(VerifyError::MissingMeta {
                role: RoleName::targets(),
                parent: role,
            });
        }
        self.snapshot = Some(v);
        self.targets = None;
        self.delegations.clear();
        Ok(())
    }

    fn check_size(&self, role: &RoleName, bytes: &[u8]) -> Result<(), VerifyError> {
        let max = self.opts.max_metadata_size;
        if bytes.len() as u64 > max {
            return Err(VerifyError::TooLarge {
                role: role.clone(),
                size: bytes.len() as u64,
                max,
            });
        }
        Ok(())
    }

    fn snapshot_meta(&self, role: &RoleName) -> Result<&FileMeta, VerifyError> {
        let snap = self
            .snapshot
            .as_ref()
            .ok_or_else(|| VerifyError::OutOfOrder {
                role: role.clone(),
                needs: RoleName::snapshot(),
            })?;
        snap.signed
            .meta
            .get(role.as_str())
            .ok_or_else(|| VerifyError::MissingMeta {
                role: role.clone(),
                parent: RoleName::snapshot(),
            })
    }

    /// Verifies `targets.json` against the snapshot's meta.
    pub fn update_targets(&mut self, bytes: &[u8]) -> Result<(), VerifyError> {
        let role = RoleName::targets();
        self.check_size(&role, bytes)?;
        check_meta(&role, bytes, self.snapshot_meta(&role)?)?;
        let check = self.base_check(&role, RoleType::Targets)?;
        let v: Verified<Targets> = verify_file(&check, bytes, self.opts.max_metadata_size)?;
        self.check_version(&role, v.signed.version)?;
        self.check_expiry(&role, &v.signed)?;
        self.targets = Some(v);
        self.delegations.clear();
        Ok(())
    }

    fn role_targets(&self, role: &RoleName) -> Option<&Verified<Targets>> {
        if role.as_str() == "targets" {
            self.targets.as_ref()
        } else {
            self.delegations.get(role).map(|(_, v)| v)
        }
    }

    /// Verifies a delegation such as `targets/releases` against the
    /// snapshot's meta, with the keys and threshold its (already verified)
    /// parent gives it. Every target must fall under its paths, and under
    /// the paths of every delegating ancestor.
    pub fn update_delegation(&mut self, role: &RoleName, bytes: &[u8]) -> Result<(), VerifyError> {
        let parent_name = role
            .parent()
            .ok_or_else(|| VerifyError::UnknownDelegation { role: role.clone() })?;
        let parent = self
            .role_targets(&parent_name)
            .ok_or_else(|| VerifyError::OutOfOrder {
                role: role.clone(),
                needs: parent_name.clone(),
            })?;
        let delegated = parent
            .signed
            .delegations
            .roles
            .iter()
            .find(|d| &d.name == role)
            .cloned()
            .ok_or_else(|| VerifyError::UnknownDelegation { role: role.clone() })?;
        self.check_size(role, bytes)?;
        check_meta(role, bytes, self.snapshot_meta(role)?)?;
        let check = RoleCheck {
            role,
            keys: &parent.signed.delegations.keys,
            keyids: &delegated.keyids,
            threshold: delegated.threshold,
        };
        let v: Verified<Targets> = verify_file(&check, bytes, self.opts.max_metadata_size)?;
        self.check_version(role, v.signed.version)?;
        self.check_expiry(role, &v.signed)?;
        let mut ancestors = vec![&delegated];
        let mut up = parent_name.clone();
        while let Some((d, _)) = self.delegations.get(&up) {
            ancestors.push(d);
            match up.parent() {
                Some(p) => up = p,
                None => break,
            }
        }
        for name in v.signed.targets.keys() {
            if let Some(bad) = ancestors.iter().find(|d| !d.allows(name)) {
                return Err(VerifyError::DelegationPathViolation {
                    role: bad.name.clone(),
                    target: name.clone(),
                    paths: bad.paths.clone(),
                });
            }
        }
        self.delegations.insert(role.clone(), (delegated, v));
        Ok(())
    }

    /// Delegations named by verified roles that the snapshot lists but that
    /// are not loaded yet, with the meta their bytes must match. Fetch and
    /// pass each to [`update_delegation`](Self::update_delegation); repeat
    /// until empty. Delegations absent from the snapshot have no metadata
    /// yet (they hold no targets).
    pub fn delegations_to_fetch(&self) -> Vec<(RoleName, FileMeta)> {
        let Some(snap) = &self.snapshot else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let parents = self
            .targets
            .iter()
            .chain(self.delegations.values().map(|(_, v)| v));
        for parent in parents {
            for d in &parent.signed.delegations.roles {
                if self.delegations.contains_key(&d.name) {
                    continue;
                }
                if let Some(meta) = snap.signed.meta.get(d.name.as_str()) {
                    out.push((d.name.clone(), meta.clone()));
                }
            }
        }
        out
    }

    /// True when the snapshot lists a root whose bytes differ from the
    /// trusted root: fetch `root.json` and call [`update_root`](Self::update_root).
    pub fn needs_root_update(&self) -> bool {
        let Some(snap) = &self.snapshot else {
            return false;
        };
        match snap.signed.meta.get("root") {
            Some(meta) => check_meta(&RoleName::root(), &self.root.bytes, meta).is_err(),
            None => false,
        }
    }

    /// Looks a tag up like docker: in `targets/releases`, then `targets`.
    pub fn lookup(&self, tag: &str) -> Option<VerifiedTarget> {
        self.lookup_in(tag, &[RoleName::releases(), RoleName::targets()])
    }

    /// Looks a tag up in the given roles, first match wins.
    pub fn lookup_in(&self, tag: &str, roles: &[RoleName]) -> Option<VerifiedTarget> {
        roles.iter().find_map(|role| {
            let v = self.role_targets(role)?;
            let meta = v.signed.targets.get(tag)?;
            to_target(role, tag, meta, &v.signers)
        })
    }

    /// Every signed target of every verified role (`targets` first, then
    /// delegations by name), e.g. for `trust inspect`.
    pub fn all_targets(&self) -> Vec<VerifiedTarget> {
        let mut roles = vec![RoleName::targets()];
        roles.extend(self.delegations.keys().cloned());
        let mut out = Vec::new();
        for role in roles {
            if let Some(v) = self.role_targets(&role) {
                for (name, meta) in &v.signed.targets {
                    out.extend(to_target(&role, name, meta, &v.signers));
                }
            }
        }
        out
    }

    /// The versions now trusted; persist them and pass them back as
    /// [`VerifyOptions::previous`] next time.
    pub fn versions(&self) -> TrustedVersions {
        let mut v = self.opts.previous.clone().unwrap_or_default();
        v.root = v.root.max(self.root.signed.version);
        if let Some(t) = &self.timestamp {
            v.timestamp = v.timestamp.max(t.signed.version);
        }
        if let Some(s) = &self.snapshot {
            v.snapshot = v.snapshot.max(s.signed.version);
        }
        if let Some(t) = &self.targets {
            v.targets = v.targets.max(t.signed.version);
        }
        for (name, (_, d)) in &self.delegations {
            let e = v.delegations.entry(name.clone()).or_default();
            *e = (*e).max(d.signed.version);
        }
        v
    }

    /// `(TUF ID, canonical ID)` of each root key, for comparing with a
    /// pinned key ID (docker shows the TUF ID; key files use the canonical).
    pub fn root_key_ids(&self) -> Vec<(KeyId, KeyId)> {
        let root = &self.root.signed;
        root.role(RoleType::Root)
            .map(|rk| {
                rk.keyids
                    .iter()
                    .filter_map(|id| {
                        let key = root.keys.get(id)?;
                        Some((id.clone(), key.canonical_id().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The GUN.
    pub fn gun(&self) -> &Gun {
        &self.gun
    }
    /// The trusted root.
    pub fn root(&self) -> &Verified<Root> {
        &self.root
    }
    /// The verified timestamp.
    pub fn timestamp(&self) -> Option<&Verified<Timestamp>> {
        self.timestamp.as_ref()
    }
    /// The verified snapshot.
    pub fn snapshot(&self) -> Option<&Verified<Snapshot>> {
        self.snapshot.as_ref()
    }
    /// The verified `targets` role.
    pub fn targets(&self) -> Option<&Verified<Targets>> {
        self.targets.as_ref()
    }
    /// A verified delegation.
    pub fn delegation(&self, role: &RoleName) -> Option<&Verified<Targets>> {
        self.delegations.get(role).map(|(_, v)| v)
    }
    /// Names of the verified delegations.
    pub fn delegation_names(&self) -> Vec<RoleName> {
        self.delegations.keys().cloned().collect()
    }
}

fn to_target(
    role: &RoleName,
    name: &str,
    meta: &FileMeta,
    signers: &[KeyId],
) -> Option<VerifiedTarget> {
    let Some(sha256) = meta
        .hashes
        .sha256()
        .and_then(|h| <[u8; 32]>::try_from(h).ok())
    else {
        tracing::warn!(role = %role, target = name, "target has no sha256 hash, skipped");
        return None;
    };
    Some(VerifiedTarget {
        name: name.to_owned(),
        sha256,
        length: meta.length,
        role: role.clone(),
        signers: signers.to_vec(),
        meta: meta.clone(),
    })
}

fn verify_root_with(
    trusted: &Root,
    role: &RoleName,
    bytes: &[u8],
    max: u64,
) -> Result<Verified<Root>, VerifyError> {
    let rk = trusted
        .role(RoleType::Root)
        .ok_or_else(|| VerifyError::MissingRoleKeys { role: role.clone() })?;
    let check = RoleCheck {
        role,
        keys: &trusted.keys,
        keyids: &rk.keyids,
        threshold: rk.threshold,
    };
    verify_file(&check, bytes, max)
}

fn check_root_certs(gun: &Gun, root: &Root, now: Option<DateTime<Utc>>) -> Result<(), VerifyError> {
    let rk = root
        .role(RoleType::Root)
        .ok_or_else(|| VerifyError::MissingRoleKeys {
            role: RoleName::root(),
        })?;
    let mut seen = BTreeSet::new();
    for id in &rk.keyids {
        if !seen.insert(id) {
            continue;
        }
        let Some(key) = root.keys.get(id) else {
            // A missing key simply cannot sign; the threshold check reports it.
            continue;
        };
        if key.keytype() != KeyType::EcdsaX509 {
            return Err(VerifyError::RootKeyNotCertificate {
                key_id: id.clone(),
                keytype: key.keytype(),
            });
        }
        cert::validate_root_certificate(key.public_bytes(), gun, now).map_err(|source| {
            VerifyError::RootCertificate {
                key_id: id.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Checks one file's size, envelope, `_type` and signature threshold
/// against explicit keys, without expiry, version or meta checks. This is
/// the building block for a server validating an upload (targets against
/// the root's `targets` keys, a delegation against its parent's
/// `delegations`, a client-made snapshot against root's `snapshot` keys).
pub fn verify_signed<T: Role>(
    role: &RoleName,
    bytes: &[u8],
    keys: &BTreeMap<KeyId, PublicKey>,
    keyids: &[KeyId],
    threshold: u64,
    max_size: u64,
) -> Result<Verified<T>, VerifyError> {
    let check = RoleCheck {
        role,
        keys,
        keyids,
        threshold,
    };
    verify_file(&check, bytes, max_size)
}

/// Validates a root as a server does on upload: signed by the threshold of
/// its own root keys and, when `previous` is given, also by the previous
/// root's (rotation); version must then be higher; every root key must be a
/// certificate valid for `gun` (at `now`, when given).
pub fn verify_root(
    gun: &Gun,
    bytes: &[u8],
    previous: Option<&Root>,
    now: Option<DateTime<Utc>>,
    max_size: u64,
) -> Result<Verified<Root>, VerifyError> {
    let role = RoleName::root();
    let (signed, _) = parse_envelope(&role, bytes)?;
    let body = Root::deserialize(&signed).map_err(|source| VerifyError::Malformed {
        role: role.clone(),
        source,
    })?;
    if let Some(prev) = previous {
        if body.version <= prev.version {
            return Err(VerifyError::Rollback {
                role,
                trusted: prev.version,
                new: body.version,
            });
        }
        verify_root_with(prev, &role, bytes, max_size).map_err(|e| {
            VerifyError::RotationNotSignedByOldRoot {
                trusted: prev.version,
                new: body.version,
                source: Box::new(e),
            }
        })?;
    }
    let verified = verify_root_with(&body, &role, bytes, max_size)?;
    check_root_certs(gun, &verified.signed, now)?;
    Ok(verified)
}

/// The raw bytes of one repository as fetched, for [`verify_repository`].
#[derive(Debug, Clone, Default)]
pub struct FetchedRepo {
    /// Newer roots to walk, oldest first (`{N}.root.json`); often empty.
    pub newer_roots: Vec<Vec<u8>>,
    /// `timestamp.json`.
    pub timestamp: Vec<u8>,
    /// `snapshot.json`.
    pub snapshot: Vec<u8>,
    /// `targets.json`.
    pub targets: Vec<u8>,
    /// Delegations by role name.
    pub delegations: BTreeMap<RoleName, Vec<u8>>,
}

/// Runs every step of the module docs: trusted root, newer roots,
/// timestamp, snapshot, targets, then every delegation the snapshot lists
/// (parents first). A listed delegation missing from `fetched` is an error;
/// unlisted extra files are ignored.
pub fn verify_repository(
    gun: Gun,
    trusted_root: &[u8],
    fetched: &FetchedRepo,
    opts: VerifyOptions,
) -> Result<TrustedRepo, VerifyError> {
    let mut repo = TrustedRepo::new(gun, trusted_root, opts)?;
    for root in &fetched.newer_roots {
        repo.update_root(root)?;
    }
    repo.update_timestamp(&fetched.timestamp)?;
    repo.update_snapshot(&fetched.snapshot)?;
    repo.update_targets(&fetched.targets)?;
    loop {
        let todo = repo.delegations_to_fetch();
        if todo.is_empty() {
            break;
        }
        for (role, _) in todo {
            let bytes = fetched
                .delegations
                .get(&role)
                .ok_or_else(|| VerifyError::NotFetched { role: role.clone() })?;
            repo.update_delegation(&role, bytes)?;
        }
    }
    Ok(repo)
}
