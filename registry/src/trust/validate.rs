//! Upload validation in notary-server's order (`validateUpdate`), as a pure
//! function over the repository's current files and the keys the server
//! holds. It returns every file to write (uploaded roles with their exact
//! bytes, plus the server-made snapshot and timestamp) or the first
//! [`Invalid`] reason, with Notary's messages:
//!
//! 1. **root**: current or current+1 (`Root modifications must increment
//!    the version…`); certificates valid for the GUN; signed by the previous
//!    root's threshold (rotation) and by its own; not expired. A new GUN
//!    without a root is refused.
//! 2. **targets, then delegations**, fewest path segments first: threshold
//!    under the root (or the parent delegation, from the upload or the
//!    store), not expired.
//! 3. **snapshot**: an uploaded one must verify under root's snapshot keys,
//!    and every role it lists that exists must match its exact bytes (no
//!    mix-and-match); else the server signs one if it holds the snapshot key.
//! 4. **timestamp**: always server-made over the exact snapshot bytes; an
//!    uploaded timestamp is ignored.
//!
//! Version monotonicity (`VERSION`) is enforced by the write itself
//! ([`crate::meta::TrustTx::insert_files`]), after validation, as in Notary.

use std::collections::BTreeMap;

use bay_signer::cert::validate_root_certificate;
use bay_signer::editor::{SignedRole, sign_metadata};
use bay_signer::key::{KeyId, KeyType, PrivateKey, PublicKey, Sign};
use bay_signer::names::{Gun, RoleName};
use bay_signer::schema::{
    Extra, FileMeta, Role, RoleKeys, RoleType, Root, Snapshot, Targets, Timestamp,
    default_snapshot_expiry, default_timestamp_expiry,
};
use bay_signer::verify::{VerifyError, verify_signed};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::error::{Invalid, TrustError};
use crate::meta::{NewTufFile, TufFile};

/// One uploaded role: its name, `signed.version` and exact bytes.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Role (the part's filename).
    pub role: RoleName,
    /// Its `signed.version`.
    pub version: u64,
    /// Exact bytes.
    pub data: Vec<u8>,
}

/// Private keys the server holds for a GUN, with their role.
#[derive(Default)]
pub struct HeldKeys(pub Vec<(String, PrivateKey)>);

impl HeldKeys {
    /// The held keys of `role` that `rk` lists, as signers.
    fn signers<'a>(&'a self, role: &str, rk: Option<&RoleKeys>) -> Vec<(&'a dyn Sign, KeyId)> {
        let Some(rk) = rk else { return Vec::new() };
        let mut out: Vec<(&'a dyn Sign, KeyId)> = Vec::new();
        for (r, key) in &self.0 {
            let id = key.public_key().key_id();
            if r == role && rk.keyids.contains(&id) && !out.iter().any(|(_, k)| *k == id) {
                out.push((key as &dyn Sign, id));
            }
        }
        out
    }
}

/// What an accepted upload writes.
#[derive(Debug)]
pub struct Accepted {
    /// Files in write order.
    pub files: Vec<NewTufFile>,
    /// Server keys the new root lists (to mark active).
    pub activate: Vec<String>,
}

/// Notary's `ErrExpired` text: `<role> expired at Mon Jan 2 15:04:05 UTC 2006`.
fn expired_msg(role: &str, t: &DateTime<Utc>) -> String {
    format!(
        "{role} expired at {}",
        t.format("%a %b %-d %H:%M:%S UTC %Y")
    )
}

fn parse_body<T: DeserializeOwned>(data: &[u8]) -> Result<T, String> {
    let v: serde_json::Value = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    let signed = v
        .get("signed")
        .cloned()
        .ok_or_else(|| "metadata has no signed section".to_owned())?;
    T::deserialize(signed).map_err(|e| e.to_string())
}

fn stored<T: DeserializeOwned>(f: &TufFile) -> Result<T, TrustError> {
    parse_body(&f.data).map_err(|_| TrustError::Corrupt {
        role: f.role.clone(),
    })
}

/// Notary's message for a failed signature/structure check of `role`.
fn verify_msg(role: &RoleName, e: &VerifyError) -> String {
    match e {
        VerifyError::ThresholdNotMet { .. } | VerifyError::InvalidThreshold { .. } => {
            format!("valid signatures did not meet threshold for {role}")
        }
        other => other.to_string(),
    }
}

fn check_version(role: &RoleName, version: u64) -> Result<(), String> {
    if version < 1 {
        return Err(format!(
            "version {version} is lower than current version 1 for {role}"
        ));
    }
    Ok(())
}

fn sign<T: Role>(
    role: &RoleName,
    version: u64,
    body: &T,
    signers: &[(&dyn Sign, KeyId)],
) -> Result<SignedRole, TrustError> {
    sign_metadata(role, version, body, signers).map_err(|source| TrustError::Sign { source })
}

/// Validates a root as notary-server's builder does (`ValidateRoot`, then
/// version, then expiry).
fn validate_root(
    gun: &Gun,
    data: &[u8],
    previous: Option<&Root>,
    now: DateTime<Utc>,
) -> Result<Root, Invalid> {
    let bad = |msg: String| Invalid::BadRoot { msg };
    let role = RoleName::root();
    let body: Root = parse_body(data).map_err(bad)?;
    for base in ["root", "targets", "snapshot", "timestamp"] {
        if !body.roles.contains_key(base) {
            return Err(bad(format!(
                "tuf: invalid metadata for root: missing {base} role specification"
            )));
        }
    }
    let rk = body.role(RoleType::Root).cloned().unwrap_or(RoleKeys {
        keyids: vec![],
        threshold: 1,
        extra: Extra::new(),
    });
    let valid: Vec<KeyId> = rk
        .keyids
        .iter()
        .filter(|id| {
            body.keys.get(*id).is_some_and(|k| {
                k.keytype() == KeyType::EcdsaX509
                    && validate_root_certificate(k.public_bytes(), gun, Some(now)).is_ok()
            })
        })
        .cloned()
        .collect();
    if valid.is_empty() {
        return Err(bad("could not validate the path to a trusted root: unable to retrieve valid leaf certificates".into()));
    }
    if let Some(prev) = previous {
        let prk = prev.role(RoleType::Root);
        let (ids, threshold) = prk.map_or((vec![], 1), |r| (r.keyids.clone(), r.threshold));
        // Trusted certificates of the previous root: CN must match, expiry
        // is not checked (an old root may have expired certificates).
        let trusted: Vec<KeyId> = ids
            .into_iter()
            .filter(|id| {
                prev.keys
                    .get(id)
                    .is_some_and(|k| validate_root_certificate(k.public_bytes(), gun, None).is_ok())
            })
            .collect();
        verify_signed::<Root>(&role, data, &prev.keys, &trusted, threshold, u64::MAX).map_err(
            |_| bad("could not rotate trust to a new trusted root: failed to validate data with current trusted certificates".into()),
        )?;
    }
    verify_signed::<Root>(&role, data, &body.keys, &valid, rk.threshold, u64::MAX).map_err(
        |_| {
            bad("could not validate the path to a trusted root: failed to validate integrity of roots".into())
        },
    )?;
    if body.expires < now {
        return Err(bad(expired_msg("root", &body.expires)));
    }
    Ok(body)
}

/// Sort key putting parents before children (Notary's `RoleList`).
fn depth_order(a: &RoleName, b: &RoleName) -> std::cmp::Ordering {
    let da = a.as_str().matches('/').count();
    let db = b.as_str().matches('/').count();
    da.cmp(&db).then_with(|| a.cmp(b))
}

/// Validates an upload against `current` (the newest stored file of each
/// role) and returns what to write; see the module docs.
pub fn validate_update(
    gun: &Gun,
    uploads: Vec<Upload>,
    current: &BTreeMap<String, TufFile>,
    held: &HeldKeys,
    now: DateTime<Utc>,
) -> Result<Accepted, TrustError> {
    let mut roles: BTreeMap<RoleName, Upload> =
        uploads.into_iter().map(|u| (u.role.clone(), u)).collect();
    // The server always makes the timestamp; an uploaded one is ignored.
    roles.remove(&RoleName::timestamp());
    let mut files: Vec<NewTufFile> = Vec::new();
    // After-update bytes of every role, for snapshot meta.
    let mut bytes: BTreeMap<String, Vec<u8>> = current
        .iter()
        .map(|(r, f)| (r.clone(), f.data.clone()))
        .collect();

    // 1. Root.
    let stored_root: Option<Root> = current.get("root").map(stored).transpose()?;
    let current_version = stored_root.as_ref().map_or(0, |r| r.version);
    let root_upload = roles.remove(&RoleName::root());
    let root_uploaded = root_upload.is_some();
    let root: Root = match root_upload {
        Some(up) => {
            if up.version != current_version && up.version != current_version + 1 || up.version == 0
            {
                return Err(Invalid::BadRoot {
                    msg: format!(
                        "Root modifications must increment the version. Current {current_version}, new {}",
                        up.version
                    ),
                }
                .into());
            }
            let root = validate_root(gun, &up.data, stored_root.as_ref(), now)?;
            bytes.insert("root".into(), up.data.clone());
            files.push(NewTufFile {
                role: "root".into(),
                version: up.version,
                data: up.data,
            });
            root
        }
        None => stored_root.ok_or_else(|| Invalid::Validation {
            msg: "no pre-existing root and no root provided in update.".into(),
        })?,
    };

    // 2. Targets and delegations, parents first.
    let mut loaded: BTreeMap<RoleName, Targets> = BTreeMap::new();
    let mut targets_roles: Vec<RoleName> = roles
        .keys()
        .filter(|r| r.as_str() == "targets" || r.is_delegation())
        .cloned()
        .collect();
    targets_roles.sort_by(depth_order);
    for name in targets_roles {
        let Some(up) = roles.remove(&name) else {
            continue;
        };
        let bad = |msg: String| Invalid::BadTargets { msg };
        let body: Targets = if name.is_delegation() {
            // Load missing ancestors from the store, outermost first.
            let mut chain = Vec::new();
            let mut at = name.parent();
            while let Some(p) = at {
                if !loaded.contains_key(&p) {
                    chain.push(p.clone());
                }
                at = p.parent();
            }
            for p in chain.into_iter().rev() {
                if let Some(f) = current.get(p.as_str()) {
                    loaded.insert(p, stored(f)?);
                }
            }
            let parent_name = name.parent().unwrap_or_else(RoleName::targets);
            let parent = loaded.get(&parent_name).ok_or_else(|| {
                bad(format!(
                    "tuf: invalid role {name}. parent role {parent_name} does not exist"
                ))
            })?;
            let d = parent
                .delegations
                .roles
                .iter()
                .find(|d| d.name == name)
                .ok_or_else(|| {
                    bad(format!(
                        "tuf: invalid role {name}. {parent_name} does not delegate to it"
                    ))
                })?;
            verify_signed::<Targets>(
                &name,
                &up.data,
                &parent.delegations.keys,
                &d.keyids,
                d.threshold,
                u64::MAX,
            )
            .map_err(|e| bad(verify_msg(&name, &e)))?
            .signed
        } else {
            let (keyids, threshold) = root
                .role(RoleType::Targets)
                .map_or((vec![], 1), |r| (r.keyids.clone(), r.threshold));
            verify_signed::<Targets>(&name, &up.data, &root.keys, &keyids, threshold, u64::MAX)
                .map_err(|e| bad(verify_msg(&name, &e)))?
                .signed
        };
        check_version(&name, body.version).map_err(bad)?;
        if body.expires < now {
            return Err(bad(expired_msg(name.as_str(), &body.expires)).into());
        }
        loaded.insert(name.clone(), body);
        bytes.insert(name.as_str().to_owned(), up.data.clone());
        files.push(NewTufFile {
            role: name.as_str().to_owned(),
            version: up.version,
            data: up.data,
        });
    }
    // Anything left is snapshot (timestamp was dropped, root handled).

    // 3. Snapshot.
    let snapshot_bytes = match roles.remove(&RoleName::snapshot()) {
        Some(up) => {
            let name = RoleName::snapshot();
            let bad = |msg: String| Invalid::BadSnapshot { msg };
            let (keyids, threshold) = root
                .role(RoleType::Snapshot)
                .map_or((vec![], 1), |r| (r.keyids.clone(), r.threshold));
            let snap: Snapshot = verify_signed::<Snapshot>(
                &name,
                &up.data,
                &root.keys,
                &keyids,
                threshold,
                u64::MAX,
            )
            .map_err(|e| bad(verify_msg(&name, &e)))?
            .signed;
            check_version(&name, snap.version).map_err(bad)?;
            if snap.expires < now {
                return Err(bad(expired_msg("snapshot", &snap.expires)).into());
            }
            // Roles of this upload (and root) must be listed; every listed
            // role that exists must match its exact bytes.
            let mut required: Vec<String> = vec!["root".into()];
            required.extend(files.iter().map(|f| f.role.clone()));
            if bytes.contains_key("targets") {
                required.push("targets".into());
            }
            for r in &required {
                if !snap.meta.contains_key(r) {
                    return Err(bad(format!("tuf: sha256 checksum required for {r}")).into());
                }
            }
            for (r, meta) in &snap.meta {
                if let Some(b) = bytes.get(r) {
                    check_meta(r, b, meta).map_err(bad)?;
                }
            }
            files.push(NewTufFile {
                role: "snapshot".into(),
                version: up.version,
                data: up.data.clone(),
            });
            up.data
        }
        None => {
            let signers = held.signers("snapshot", root.role(RoleType::Snapshot));
            let threshold = root.role(RoleType::Snapshot).map_or(1, |r| r.threshold);
            if signers.is_empty() || (signers.len() as u64) < threshold {
                return Err(Invalid::BadHierarchy {
                    missing: "snapshot".into(),
                    msg: "no snapshot was included in update and server does not hold current snapshot key for repository".into(),
                }
                .into());
            }
            let prev: Option<Snapshot> = current.get("snapshot").map(stored).transpose()?;
            let mut meta: BTreeMap<String, FileMeta> =
                prev.as_ref().map(|p| p.meta.clone()).unwrap_or_default();
            if prev.is_none() && !bytes.contains_key("targets") {
                return Err(Invalid::Validation {
                    msg: "targets must be loaded first".into(),
                }
                .into());
            }
            let mut listed: Vec<String> = meta.keys().cloned().collect();
            listed.push("root".into());
            listed.push("targets".into());
            listed.extend(files.iter().map(|f| f.role.clone()));
            for r in listed {
                if let Some(b) = bytes.get(&r) {
                    meta.insert(r, FileMeta::of_bytes(b));
                }
            }
            let version = prev.as_ref().map_or(0, |p| p.version) + 1;
            let body = Snapshot {
                kind: RoleType::Snapshot,
                expires: now + default_snapshot_expiry(),
                meta,
                version,
                extra: Extra::new(),
            };
            let signed = sign(&RoleName::snapshot(), version, &body, &signers)?;
            files.push(NewTufFile {
                role: "snapshot".into(),
                version,
                data: signed.bytes.clone(),
            });
            signed.bytes
        }
    };

    // 4. Timestamp.
    let prev_ts: Option<Timestamp> = current.get("timestamp").map(stored).transpose()?;
    let ts =
        make_timestamp(&root, held, prev_ts.as_ref(), &snapshot_bytes, now)?.ok_or_else(|| {
            Invalid::BadRoot {
                msg: "no timestamp keys exist on the server".into(),
            }
        })?;
    files.push(ts);

    let mut activate = Vec::new();
    if root_uploaded {
        for role in ["snapshot", "timestamp"] {
            let rt = if role == "snapshot" {
                RoleType::Snapshot
            } else {
                RoleType::Timestamp
            };
            for (_, id) in held.signers(role, root.role(rt)) {
                activate.push(id.as_str().to_owned());
            }
        }
    }
    Ok(Accepted { files, activate })
}

/// Signs the next timestamp over `snapshot`, or `None` when the server
/// holds too few of the root's timestamp keys.
fn make_timestamp(
    root: &Root,
    held: &HeldKeys,
    prev: Option<&Timestamp>,
    snapshot: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<NewTufFile>, TrustError> {
    let rk = root.role(RoleType::Timestamp);
    let signers = held.signers("timestamp", rk);
    if signers.is_empty() || (signers.len() as u64) < rk.map_or(1, |r| r.threshold) {
        return Ok(None);
    }
    let version = prev.map_or(0, |p| p.version) + 1;
    let mut meta = BTreeMap::new();
    meta.insert("snapshot".to_owned(), FileMeta::of_bytes(snapshot));
    let body = Timestamp {
        kind: RoleType::Timestamp,
        expires: now + default_timestamp_expiry(),
        meta,
        version,
        extra: Extra::new(),
    };
    let signed = sign(&RoleName::timestamp(), version, &body, &signers)?;
    Ok(Some(NewTufFile {
        role: "timestamp".into(),
        version,
        data: signed.bytes,
    }))
}

/// Exact-bytes check of one snapshot entry (length, then every hash).
fn check_meta(role: &str, bytes: &[u8], meta: &FileMeta) -> Result<(), String> {
    use sha2::Digest as _;
    let actual = FileMeta::of_bytes(bytes);
    if meta.hashes.0.is_empty() {
        return Err(format!("tuf: sha256 checksum required for {role}"));
    }
    for (alg, want) in &meta.hashes.0 {
        let got: Option<Vec<u8>> = match alg.as_str() {
            "sha256" => Some(sha2::Sha256::digest(bytes).to_vec()),
            "sha512" => Some(sha2::Sha512::digest(bytes).to_vec()),
            _ => None,
        };
        if let Some(got) = got
            && &got != want
        {
            return Err(format!(
                "{alg} checksum for {role} did not match: expected {}",
                want.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ));
        }
    }
    if meta.length != actual.length {
        return Err(format!(
            "length of {role} did not match: expected {}, got {}",
            meta.length, actual.length
        ));
    }
    Ok(())
}

/// What `GET timestamp.json` must write before answering: a re-signed
/// snapshot when it expired (and the server holds its key), and a new
/// timestamp when the old one expired or no longer names the current
/// snapshot. Empty when nothing is stale (or the server cannot sign).
pub fn refresh(
    current: &BTreeMap<String, TufFile>,
    held: &HeldKeys,
    now: DateTime<Utc>,
) -> Result<Vec<NewTufFile>, TrustError> {
    let (Some(root_f), Some(ts_f), Some(snap_f)) = (
        current.get("root"),
        current.get("timestamp"),
        current.get("snapshot"),
    ) else {
        return Ok(Vec::new());
    };
    let root: Root = stored(root_f)?;
    let ts: Timestamp = stored(ts_f)?;
    let snap: Snapshot = stored(snap_f)?;
    let mut out = Vec::new();
    let mut snapshot_bytes = snap_f.data.clone();
    if snap.expires < now {
        let signers = held.signers("snapshot", root.role(RoleType::Snapshot));
        if !signers.is_empty() {
            let version = snap.version + 1;
            let body = Snapshot {
                expires: now + default_snapshot_expiry(),
                version,
                ..snap
            };
            let signed = sign(&RoleName::snapshot(), version, &body, &signers)?;
            snapshot_bytes = signed.bytes.clone();
            out.push(NewTufFile {
                role: "snapshot".into(),
                version,
                data: signed.bytes,
            });
        }
    }
    let names_current = ts
        .meta
        .get("snapshot")
        .is_some_and(|m| check_meta("snapshot", &snapshot_bytes, m).is_ok());
    if names_current && ts.expires >= now {
        return Ok(out);
    }
    match make_timestamp(&root, held, Some(&ts), &snapshot_bytes, now)? {
        Some(t) => out.push(t),
        // Cannot sign: serve what there is rather than a new snapshot
        // without a timestamp naming it.
        None => return Ok(Vec::new()),
    }
    Ok(out)
}

/// The public key the current root lists for `role` (first key ID).
pub fn root_role_key(root: &TufFile, role: RoleType) -> Result<Option<PublicKey>, TrustError> {
    let root: Root = stored(root)?;
    Ok(root
        .role(role)
        .and_then(|rk| rk.keyids.first())
        .and_then(|id| root.keys.get(id))
        .cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bay_signer::cert::{default_cert_validity, generate_root_certificate};
    use bay_signer::editor::{NewRepoKeys, RepoEditor, build_snapshot};
    use bay_signer::key::KeyAlgorithm;
    use chrono::Duration;

    fn stored_file(f: &NewTufFile) -> TufFile {
        use sha2::Digest as _;
        TufFile {
            role: f.role.clone(),
            version: f.version,
            sha256: sha2::Sha256::digest(&f.data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            data: f.data.clone(),
            created_at: 0,
        }
    }

    struct Repo {
        held: HeldKeys,
        current: BTreeMap<String, TufFile>,
        now: DateTime<Utc>,
        activated: Vec<String>,
        server_keys: Vec<String>,
    }

    /// A docker-style repository: the client uploads root + targets (and a
    /// timestamp, which must be ignored); the server signs the rest.
    fn repo() -> Repo {
        let now = Utc::now();
        let gun = Gun::new("reg:5000/team/app").unwrap();
        let root = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let targets = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let ts = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let snap = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let mut ed = RepoEditor::create(
            gun.clone(),
            NewRepoKeys {
                root: generate_root_certificate(&root, &gun, now, default_cert_validity()).unwrap(),
                targets: targets.public_key().clone(),
                snapshot: snap.public_key().clone(),
                timestamp: ts.public_key().clone(),
            },
            now,
        )
        .unwrap();
        // Signing with the server's keys too yields a client snapshot (not
        // uploaded: the server must make one) and a client timestamp (uploaded:
        // the server must ignore it and make its own).
        let files = ed.sign(&[&root, &targets, &snap, &ts]).unwrap();
        assert!(files.iter().any(|f| f.role.as_str() == "timestamp"));
        let uploads = files
            .into_iter()
            .filter(|f| f.role.as_str() != "snapshot")
            .map(|f| Upload {
                role: f.role,
                version: f.version,
                data: f.bytes,
            })
            .collect();
        let server_keys = vec![
            snap.public_key().key_id().as_str().to_owned(),
            ts.public_key().key_id().as_str().to_owned(),
        ];
        let held = HeldKeys(vec![("timestamp".into(), ts), ("snapshot".into(), snap)]);
        let accepted = validate_update(&gun, uploads, &BTreeMap::new(), &held, now).unwrap();
        let roles: Vec<&str> = accepted.files.iter().map(|f| f.role.as_str()).collect();
        assert_eq!(roles, ["root", "targets", "snapshot", "timestamp"]);
        let current = accepted
            .files
            .iter()
            .map(|f| (f.role.clone(), stored_file(f)))
            .collect();
        Repo {
            held,
            current,
            now,
            activated: accepted.activate,
            server_keys,
        }
    }

    fn names(ts: &NewTufFile, snapshot: &[u8]) -> bool {
        let t: Timestamp = parse_body(&ts.data).unwrap();
        check_meta("snapshot", snapshot, &t.meta["snapshot"]).is_ok()
    }

    #[test]
    fn root_upload_activates_the_server_keys_it_lists() {
        let r = repo();
        let mut got = r.activated.clone();
        got.sort();
        let mut want = r.server_keys.clone();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn fresh_timestamp_is_left_alone() {
        let r = repo();
        assert!(refresh(&r.current, &r.held, r.now).unwrap().is_empty());
    }

    #[test]
    fn expired_timestamp_is_re_signed_over_the_same_snapshot() {
        let r = repo();
        let later = r.now + Duration::days(15);
        let out = refresh(&r.current, &r.held, later).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].role.as_str(), out[0].version), ("timestamp", 2));
        assert!(names(&out[0], &r.current["snapshot"].data));
        let t: Timestamp = parse_body(&out[0].data).unwrap();
        assert!(t.expires > later + Duration::days(13));
    }

    #[test]
    fn expired_snapshot_is_re_signed_with_a_timestamp_naming_it() {
        let r = repo();
        let later = r.now + Duration::days(4 * 365);
        let out = refresh(&r.current, &r.held, later).unwrap();
        let roles: Vec<(&str, u64)> = out.iter().map(|f| (f.role.as_str(), f.version)).collect();
        assert_eq!(roles, [("snapshot", 2), ("timestamp", 2)]);
        let old: Snapshot = parse_body(&r.current["snapshot"].data).unwrap();
        let new: Snapshot = parse_body(&out[0].data).unwrap();
        assert_eq!(old.meta, new.meta, "same roles, same hashes");
        assert!(names(&out[1], &out[0].data));
    }

    #[test]
    fn timestamp_naming_an_older_snapshot_is_replaced() {
        let mut r = repo();
        let (_, snap_key) = r
            .held
            .0
            .iter()
            .find(|(role, _)| role == "snapshot")
            .unwrap();
        let newer = build_snapshot(
            2,
            r.now + Duration::days(30),
            [(&RoleName::root(), r.current["root"].data.as_slice())],
            snap_key,
        )
        .unwrap();
        let newer = NewTufFile {
            role: "snapshot".into(),
            version: 2,
            data: newer.bytes,
        };
        r.current.insert("snapshot".into(), stored_file(&newer));
        let out = refresh(&r.current, &r.held, r.now).unwrap();
        assert_eq!(out.len(), 1);
        assert!(names(&out[0], &newer.data));
        // Without the timestamp key nothing can be signed: serve as is.
        r.held.0.retain(|(role, _)| role != "timestamp");
        assert!(refresh(&r.current, &r.held, r.now).unwrap().is_empty());
    }
}
