//! TUF metadata exactly as Notary 0.7 writes it (trust-facts §2.1).
//!
//! Every role is wrapped in [`Signed<T>`]: `{"signed":{…},"signatures":[…]}`.
//! Fields the types do not know are kept in `extra` (`#[serde(flatten)]`), so
//! metadata we re-serialize still carries everything its signer signed.
//! Differences from TUF 1.0 that matter here: `_type` is capitalized
//! (`Root`), there is no `spec_version`, hashes are base64, snapshot and
//! timestamp meta carry no `version`, and `delegations` is always present on
//! targets roles.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::canonical::{CanonicalError, to_canonical};
use crate::key::{KeyId, PublicKey};
use crate::names::RoleName;

/// Unknown fields kept verbatim.
pub type Extra = BTreeMap<String, Value>;

/// The `_type` of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RoleType {
    /// `Root`.
    Root,
    /// `Targets` (also used by delegations).
    Targets,
    /// `Snapshot`.
    Snapshot,
    /// `Timestamp`.
    Timestamp,
}

impl RoleType {
    /// The key of this role in root's `roles` map (`root`, `targets`, ...).
    pub fn base_name(self) -> &'static str {
        match self {
            RoleType::Root => "root",
            RoleType::Targets => "targets",
            RoleType::Snapshot => "snapshot",
            RoleType::Timestamp => "timestamp",
        }
    }
}

/// Default expiry of root metadata (and of the root certificate): 10 years.
pub fn default_root_expiry() -> Duration {
    Duration::days(365 * 10)
}
/// Default expiry of targets and delegation metadata: 3 years.
pub fn default_targets_expiry() -> Duration {
    Duration::days(365 * 3)
}
/// Default expiry of snapshot metadata: 3 years.
pub fn default_snapshot_expiry() -> Duration {
    Duration::days(365 * 3)
}
/// Default expiry of timestamp metadata: 14 days.
pub fn default_timestamp_expiry() -> Duration {
    Duration::days(14)
}

/// Common behaviour of the four role bodies.
pub trait Role: Serialize + DeserializeOwned {
    /// The `_type` this body must carry.
    const TYPE: RoleType;
    /// The `_type` it actually carries.
    fn role_type(&self) -> RoleType;
    /// When it expires.
    fn expires(&self) -> DateTime<Utc>;
    /// Its version.
    fn version(&self) -> u64;
    /// The canonical bytes a signature covers.
    fn canonical_form(&self) -> Result<Vec<u8>, CanonicalError> {
        to_canonical(self)
    }
}

/// The envelope every file has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signed<T> {
    /// The signed body.
    pub signed: T,
    /// Signatures over the canonical form of `signed`.
    pub signatures: Vec<Signature>,
}

/// One signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The (TUF) ID of the key that made it.
    pub keyid: KeyId,
    /// The algorithm.
    pub method: SignatureMethod,
    /// The raw signature (base64 on the wire).
    #[serde(with = "base64_bytes")]
    pub sig: Vec<u8>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Signature `method` values Notary knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignatureMethod {
    /// ECDSA P-256 over SHA-256, raw r‖s (64 bytes).
    #[serde(rename = "ecdsa")]
    Ecdsa,
    /// Ed25519 (64 bytes).
    #[serde(rename = "eddsa")]
    Eddsa,
    /// RSA-PSS (parsed, never verified by this crate).
    #[serde(rename = "rsapss")]
    RsaPss,
    /// RSA PKCS#1 v1.5 (parsed, never verified by this crate).
    #[serde(rename = "rsapkcs1v15")]
    RsaPkcs1v15,
    /// The legacy python name for RSA-PSS.
    #[serde(rename = "pycrypto-pkcs#1 pss")]
    PycryptoPss,
}

/// Keys and threshold of one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// Key IDs allowed to sign.
    pub keyids: Vec<KeyId>,
    /// How many distinct keys must sign.
    pub threshold: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `root.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// Always `Root`.
    #[serde(rename = "_type")]
    pub kind: RoleType,
    /// Always false in Notary.
    pub consistent_snapshot: bool,
    /// Expiry.
    #[serde(with = "go_time")]
    pub expires: DateTime<Utc>,
    /// All keys of the four base roles, by TUF key ID.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// `root`, `targets`, `snapshot`, `timestamp` -> keys and threshold.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Version, starting at 1.
    pub version: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Root {
    /// Keys and threshold of a base role.
    pub fn role(&self, role: RoleType) -> Option<&RoleKeys> {
        self.roles.get(role.base_name())
    }
}

impl Role for Root {
    const TYPE: RoleType = RoleType::Root;
    fn role_type(&self) -> RoleType {
        self.kind
    }
    fn expires(&self) -> DateTime<Utc> {
        self.expires
    }
    fn version(&self) -> u64 {
        self.version
    }
}

/// Hash algorithm -> digest bytes (base64 on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hashes(pub BTreeMap<String, Vec<u8>>);

impl Hashes {
    /// The `sha256` entry.
    pub fn sha256(&self) -> Option<&[u8]> {
        self.0.get("sha256").map(Vec::as_slice)
    }
    /// The `sha512` entry.
    pub fn sha512(&self) -> Option<&[u8]> {
        self.0.get("sha512").map(Vec::as_slice)
    }
}

impl Serialize for Hashes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m: BTreeMap<&str, String> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), B64.encode(v)))
            .collect();
        m.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Hashes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (k, v) in m {
            let bytes = B64.decode(v.as_bytes()).map_err(serde::de::Error::custom)?;
            out.insert(k, bytes);
        }
        Ok(Hashes(out))
    }
}

/// Length and hashes of a file: a target, or a metadata file in
/// snapshot/timestamp `meta` (Notary's `FileMeta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Hashes over the exact bytes.
    pub hashes: Hashes,
    /// Exact length in bytes.
    pub length: u64,
    /// Optional opaque data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl FileMeta {
    /// A docker-style target: only `sha256` (the manifest digest bytes) and
    /// the manifest length.
    pub fn docker(sha256: [u8; 32], length: u64) -> Self {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_owned(), sha256.to_vec());
        FileMeta {
            hashes: Hashes(hashes),
            length,
            custom: None,
            extra: Extra::new(),
        }
    }

    /// Meta over exact bytes with sha256 and sha512, as Notary writes in
    /// snapshot and timestamp.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_owned(), sha2::Sha256::digest(bytes).to_vec());
        hashes.insert("sha512".to_owned(), sha2::Sha512::digest(bytes).to_vec());
        FileMeta {
            hashes: Hashes(hashes),
            length: bytes.len() as u64,
            custom: None,
            extra: Extra::new(),
        }
    }
}

/// A delegated role inside a targets role's `delegations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegatedRole {
    /// Full name, e.g. `targets/releases`.
    pub name: RoleName,
    /// Key IDs (into the parent's `delegations.keys`).
    pub keyids: Vec<KeyId>,
    /// How many distinct keys must sign.
    pub threshold: u64,
    /// Allowed target-name prefixes; `""` allows everything.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Unknown fields (e.g. `path_hash_prefixes`).
    #[serde(flatten)]
    pub extra: Extra,
}

impl DelegatedRole {
    /// Whether `target` falls under one of the path prefixes.
    pub fn allows(&self, target: &str) -> bool {
        self.paths.iter().any(|p| target.starts_with(p.as_str()))
    }
}

/// `delegations` of a targets role; always present, `{"keys":{},"roles":[]}`
/// when empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delegations {
    /// Keys of all delegated roles.
    #[serde(default)]
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// The delegated roles.
    #[serde(default)]
    pub roles: Vec<DelegatedRole>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `targets.json` or a delegation such as `targets/releases.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// Always `Targets`.
    #[serde(rename = "_type")]
    pub kind: RoleType,
    /// Delegations (always serialized).
    #[serde(default)]
    pub delegations: Delegations,
    /// Expiry.
    #[serde(with = "go_time")]
    pub expires: DateTime<Utc>,
    /// Target name (tag) -> hashes and length.
    #[serde(default)]
    pub targets: BTreeMap<String, FileMeta>,
    /// Version.
    pub version: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Targets {
    /// An empty targets body.
    pub fn new(version: u64, expires: DateTime<Utc>) -> Self {
        Targets {
            kind: RoleType::Targets,
            delegations: Delegations::default(),
            expires,
            targets: BTreeMap::new(),
            version,
            extra: Extra::new(),
        }
    }
}

impl Role for Targets {
    const TYPE: RoleType = RoleType::Targets;
    fn role_type(&self) -> RoleType {
        self.kind
    }
    fn expires(&self) -> DateTime<Utc> {
        self.expires
    }
    fn version(&self) -> u64 {
        self.version
    }
}

/// `snapshot.json`: hashes of root, targets and every delegation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always `Snapshot`.
    #[serde(rename = "_type")]
    pub kind: RoleType,
    /// Expiry.
    #[serde(with = "go_time")]
    pub expires: DateTime<Utc>,
    /// Role name -> meta of its exact served bytes.
    pub meta: BTreeMap<String, FileMeta>,
    /// Version.
    pub version: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Role for Snapshot {
    const TYPE: RoleType = RoleType::Snapshot;
    fn role_type(&self) -> RoleType {
        self.kind
    }
    fn expires(&self) -> DateTime<Utc> {
        self.expires
    }
    fn version(&self) -> u64 {
        self.version
    }
}

/// `timestamp.json`: the hash of the current snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    /// Always `Timestamp`.
    #[serde(rename = "_type")]
    pub kind: RoleType,
    /// Expiry.
    #[serde(with = "go_time")]
    pub expires: DateTime<Utc>,
    /// `snapshot` -> meta.
    pub meta: BTreeMap<String, FileMeta>,
    /// Version.
    pub version: u64,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Role for Timestamp {
    const TYPE: RoleType = RoleType::Timestamp;
    fn role_type(&self) -> RoleType {
        self.kind
    }
    fn expires(&self) -> DateTime<Utc> {
        self.expires
    }
    fn version(&self) -> u64 {
        self.version
    }
}

/// Formats a time like Go's `time.RFC3339Nano` in UTC: fractional seconds
/// with trailing zeros trimmed (and no `.` at all when they are zero).
pub fn format_go_time(t: &DateTime<Utc>) -> String {
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    // Leap-second representation folds into the last second.
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Serde for `expires`: written as [`format_go_time`], read as any RFC 3339.
pub mod go_time {
    use super::*;

    /// Serializes as Go RFC3339Nano UTC.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_go_time(t))
    }

    /// Parses RFC 3339 with any offset, converted to UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Serde for raw bytes as standard padded base64 (Go's `[]byte`).
pub mod base64_bytes {
    use super::*;

    /// Serializes as base64.
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(b))
    }

    /// Parses base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn go_time_trims_trailing_zeros() {
        let t = Utc.with_ymd_and_hms(2036, 11, 19, 10, 15, 35).unwrap();
        assert_eq!(format_go_time(&t), "2036-11-19T10:15:35Z");
        let t = t + Duration::nanoseconds(707_537_777);
        assert_eq!(format_go_time(&t), "2036-11-19T10:15:35.707537777Z");
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + Duration::milliseconds(120);
        assert_eq!(format_go_time(&t), "2026-01-02T03:04:05.12Z");
    }

    #[test]
    fn go_time_parses_offsets() {
        let v: Targets = serde_json::from_str(
            r#"{"_type":"Targets","expires":"2030-01-01T01:00:00+01:00","targets":{},"version":1}"#,
        )
        .unwrap();
        assert_eq!(format_go_time(&v.expires), "2030-01-01T00:00:00Z");
        // delegations is filled in and always written back
        let out = String::from_utf8(v.canonical_form().unwrap()).unwrap();
        assert!(
            out.contains(r#""delegations":{"keys":{},"roles":[]}"#),
            "{out}"
        );
    }

    /// A real targets body in Notary's shape, with an unknown field and a
    /// `custom`, survives parse + canonicalize byte for byte.
    #[test]
    fn notary_targets_round_trip_keeps_unknown_fields() {
        let canon = r#"{"_type":"Targets","delegations":{"keys":{},"roles":[{"keyids":["ab"],"name":"targets/releases","path_hash_prefixes":["00"],"paths":[""],"threshold":1}]},"expires":"2029-11-30T08:00:00.5Z","future_field":{"x":[1,2]},"targets":{"v1":{"custom":{"k":"v"},"hashes":{"sha256":"AAEC","sha512":"AwQ="},"length":12}},"version":3}"#;
        let t: Targets = serde_json::from_str(canon).unwrap();
        assert_eq!(t.targets["v1"].hashes.sha256(), Some(&[0u8, 1, 2][..]));
        assert!(t.extra.contains_key("future_field"));
        assert!(
            t.delegations.roles[0]
                .extra
                .contains_key("path_hash_prefixes")
        );
        assert_eq!(t.canonical_form().unwrap(), canon.as_bytes());
    }

    #[test]
    fn snapshot_and_timestamp_round_trip() {
        let snap = r#"{"_type":"Snapshot","expires":"2029-01-01T00:00:00Z","meta":{"root":{"hashes":{"sha256":"AA=="},"length":2306},"targets":{"hashes":{"sha256":"AQ==","sha512":"Ag=="},"length":12}},"version":5}"#;
        let s: Snapshot = serde_json::from_str(snap).unwrap();
        assert_eq!(s.canonical_form().unwrap(), snap.as_bytes());
        let ts = r#"{"_type":"Timestamp","expires":"2029-01-01T00:00:00Z","meta":{"snapshot":{"hashes":{"sha256":"AA=="},"length":683}},"version":1}"#;
        let t: Timestamp = serde_json::from_str(ts).unwrap();
        assert_eq!(t.canonical_form().unwrap(), ts.as_bytes());
        assert_eq!(t.role_type(), RoleType::Timestamp);
    }

    #[test]
    fn delegation_paths_are_prefixes() {
        let d = DelegatedRole {
            name: RoleName::new("targets/alice").unwrap(),
            keyids: vec![],
            threshold: 1,
            paths: vec!["release-".into()],
            extra: Extra::new(),
        };
        assert!(d.allows("release-1"));
        assert!(!d.allows("dev-1"));
        let all = DelegatedRole {
            paths: vec!["".into()],
            ..d.clone()
        };
        assert!(all.allows("anything"));
        let none = DelegatedRole { paths: vec![], ..d };
        assert!(!none.allows("x"));
    }
}
