//! A Notary v1 trust server (Docker Content Trust) on the registry's port.
//!
//! Everything lives under `/v2/<gun>/_trust/…`, where the GUN is the
//! repository name *with* the registry host (`127.0.0.1:5000/team/app`);
//! [`crate::api::route`] maps it to our repository name, so token scopes and
//! access rules apply to trust data exactly as to images.
//!
//! | Request | Answer |
//! |---|---|
//! | `GET tuf/{role}.json` | newest version; `timestamp` (and `snapshot`, the one the timestamp names) re-signed lazily when stale |
//! | `GET tuf/{role}.{sha256}.json`, `GET tuf/{N}.{role}.json` | that exact file, cacheable for 30 days |
//! | `POST tuf/` (multipart, one part per role) | validated in Notary's order ([`validate`]) and written in one transaction |
//! | `GET`/`POST tuf/{timestamp\|snapshot}.key` | server-held ed25519 keys ([`keys`]) |
//! | `DELETE tuf/` | the whole GUN |
//! | `GET changefeed`, `GET /v2/_trust/changefeed` | [`changefeed`] |
//! | `GET /_notary_server/health` | 200 `{}` ([`notary_health`]) |
//!
//! Errors use Notary's codes and exact messages ([`error`]).
//!
//! **Invariants.** Stored metadata keeps the exact bytes it was uploaded
//! with; checksums (URLs, snapshot and timestamp meta) are over those bytes,
//! and the server's own snapshot/timestamp bytes are Go's serialization
//! (bay-signer's `go_envelope`), so Notary clients compute the same hashes.
//! An upload writes every role or none. Each upload part is limited to
//! [`MAX_PART_BYTES`] (4 MiB), the whole body to [`MAX_UPLOAD_BYTES`].

pub mod cache;
pub mod changefeed;
pub mod error;
pub mod keys;
pub mod validate;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bay_signer::names::{Gun, RoleName};
use bay_signer::schema::RoleType;
use chrono::Utc;
use serde::Deserialize;

use crate::api::{AppState, Req};
use crate::auth::scope::Action;
use crate::meta::{TufFile, TufWriteError};
use error::{Invalid, TrustError};
use validate::{HeldKeys, Upload};

/// Largest accepted metadata file (one multipart part): 4 MiB.
pub const MAX_PART_BYTES: u64 = 4 << 20;
/// Largest accepted upload body: 32 MiB.
pub const MAX_UPLOAD_BYTES: u64 = 32 << 20;
/// Most parts (roles) in one upload.
pub const MAX_PARTS: usize = 256;

const CACHE_CURRENT: &str = "public, max-age=300, s-maxage=300, must-revalidate";
const CACHE_CONSISTENT: &str = "public, max-age=2592000, s-maxage=2592000";

/// What a `_trust/<rest>` path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Upload,
    Delete,
    Current(RoleName),
    ByChecksum(RoleName, String),
    ByVersion(RoleName, String),
    GetKey(&'static str),
    RotateKey(&'static str),
    Changefeed,
}

fn key_role(s: &str) -> Option<&'static str> {
    match s {
        "timestamp" => Some("timestamp"),
        "snapshot" => Some("snapshot"),
        _ => None,
    }
}

fn is_checksum(s: &str) -> bool {
    matches!(s.len(), 64 | 96 | 128) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses the part after `_trust/` like notary-server's router.
fn parse_op(method: &Method, rest: &str) -> Option<Op> {
    if rest == "changefeed" {
        return (method == Method::GET).then_some(Op::Changefeed);
    }
    let tuf = rest.strip_prefix("tuf/")?;
    if tuf.is_empty() {
        return match *method {
            Method::POST => Some(Op::Upload),
            Method::DELETE => Some(Op::Delete),
            _ => None,
        };
    }
    if let Some(r) = tuf.strip_suffix(".key") {
        let role = key_role(r)?;
        return match *method {
            Method::GET => Some(Op::GetKey(role)),
            Method::POST => Some(Op::RotateKey(role)),
            _ => None,
        };
    }
    if method != Method::GET {
        return None;
    }
    let body = tuf.strip_suffix(".json")?;
    // {N}.{role}: the first dot-separated piece is all digits.
    if let Some((n, role)) = body.split_once('.')
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        return Some(Op::ByVersion(RoleName::new(role).ok()?, n.to_owned()));
    }
    if let Some((role, sum)) = body.rsplit_once('.') {
        if !is_checksum(sum) {
            return None;
        }
        return Some(Op::ByChecksum(RoleName::new(role).ok()?, sum.to_owned()));
    }
    Some(Op::Current(RoleName::new(body).ok()?))
}

/// The token actions a trust request needs (trust-facts §1.1): `pull` for
/// reads, `push`+`pull` for uploads and `GET …key`, `*` for `POST …key` and
/// `DELETE`.
pub fn needed_actions(method: &Method, rest: &str) -> Vec<Action> {
    match parse_op(method, rest) {
        Some(Op::Upload | Op::GetKey(_)) => vec![Action::Push, Action::Pull],
        Some(Op::RotateKey(_) | Op::Delete) => vec![Action::All],
        _ => vec![Action::Pull],
    }
}

/// Answers a `/v2/<gun>/_trust/<rest>` request.
pub(crate) async fn handle(st: &AppState, gun: &Gun, rest: &str, req: Req) -> Response {
    let Some(op) = parse_op(&req.method, rest) else {
        return TrustError::NoRoute.into_response();
    };
    let out = match op {
        Op::Upload => upload(st, gun, req).await,
        Op::Delete => delete(st, gun).await,
        Op::Current(role) => current(st, gun, &role).await,
        Op::ByChecksum(role, sum) => match st
            .meta
            .tuf_by_checksum(gun.as_str(), role.as_str(), &sum)
            .await
        {
            Ok(f) => serve(f, CACHE_CONSISTENT),
            Err(e) => Err(e.into()),
        },
        Op::ByVersion(role, n) => match n.parse::<u64>() {
            Ok(v) => match st.meta.tuf_by_version(gun.as_str(), role.as_str(), v).await {
                Ok(f) => serve(f, CACHE_CONSISTENT),
                Err(e) => Err(e.into()),
            },
            Err(_) => Err(TrustError::MetadataNotFound),
        },
        Op::GetKey(role) => get_key(st, gun, role).await,
        Op::RotateKey(role) => rotate_key(st, gun, role).await,
        Op::Changefeed => changefeed::get(&st.meta, Some(gun.as_str()), &req.query).await,
    };
    out.unwrap_or_else(IntoResponse::into_response)
}

/// Answers `GET /v2/_trust/changefeed` (every GUN).
pub(crate) async fn changefeed_all(st: &AppState, req: Req) -> Response {
    if req.method != Method::GET {
        return TrustError::NoRoute.into_response();
    }
    changefeed::get(&st.meta, None, &req.query)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Answers `/_notary_server/health` as notary-server does (trust-facts
/// §1.1): `GET` is 200 `{}` as JSON, any other method (HEAD included) is
/// the catch-all 404 `METADATA_NOT_FOUND` without detail. Notary clients and
/// load balancers probe it; the registry has no separate health checks to
/// report, so it is always `{}`.
pub async fn notary_health(method: Method) -> Response {
    if method != Method::GET {
        return TrustError::NoRoute.into_response();
    }
    let mut resp = (StatusCode::OK, "{}").into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// Answers a trust request whose GUN maps to no repository name.
pub fn invalid_gun(gun: String) -> Response {
    TrustError::InvalidGun { gun }.into_response()
}

/// A 200 with metadata bytes, as Go's `http` sends them (sniffed
/// `text/plain`), with caching headers.
pub(crate) fn metadata_response(
    body: Vec<u8>,
    cache: Option<&'static str>,
    modified: Option<i64>,
) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(c) = cache {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(c));
    }
    if let Some(nanos) = modified {
        let t = chrono::DateTime::from_timestamp_nanos(nanos);
        let v = t.format("%a, %d %b %Y %H:%M:%S UTC").to_string();
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(header::LAST_MODIFIED, v);
        }
    }
    resp
}

fn serve(f: Option<TufFile>, cache: &'static str) -> Result<Response, TrustError> {
    let f = f.ok_or(TrustError::MetadataNotFound)?;
    Ok(metadata_response(f.data, Some(cache), Some(f.created_at)))
}

async fn current(st: &AppState, gun: &Gun, role: &RoleName) -> Result<Response, TrustError> {
    let g = gun.as_str();
    if let Some(f) = st.trust_cache.get(g, role.as_str()) {
        return serve(Some(f), CACHE_CURRENT);
    }
    let file = current_file(st, gun, role).await?;
    if let Some(f) = &file {
        let valid_for = expires(f).and_then(|e| (e - Utc::now()).to_std().ok());
        st.trust_cache
            .put(g, role.as_str(), f.clone(), valid_for.or(Some(cache::TTL)));
    }
    serve(file, CACHE_CURRENT)
}

async fn current_file(
    st: &AppState,
    gun: &Gun,
    role: &RoleName,
) -> Result<Option<TufFile>, TrustError> {
    let g = gun.as_str();
    match role.as_str() {
        "timestamp" => fresh_timestamp(st, gun).await,
        "snapshot" => {
            // The current snapshot is the one the current timestamp names.
            let Some(ts) = fresh_timestamp(st, gun).await? else {
                return Err(TrustError::MetadataNotFound);
            };
            let sum = snapshot_sha256(&ts).ok_or_else(|| TrustError::Corrupt {
                role: "timestamp".into(),
            })?;
            Ok(st.meta.tuf_by_checksum(g, "snapshot", &sum).await?)
        }
        r => Ok(st.meta.tuf_current(g, r).await?),
    }
}

#[derive(Deserialize)]
struct Freshness {
    signed: FreshSigned,
}

#[derive(Deserialize)]
struct FreshSigned {
    #[serde(with = "bay_signer::schema::go_time")]
    expires: chrono::DateTime<Utc>,
    #[serde(default)]
    meta: BTreeMap<String, FreshMeta>,
}

#[derive(Deserialize)]
struct FreshMeta {
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

fn snapshot_sha256(ts: &TufFile) -> Option<String> {
    use base64::Engine as _;
    let f: Freshness = serde_json::from_slice(&ts.data).ok()?;
    let b64 = f.signed.meta.get("snapshot")?.hashes.get("sha256")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .ok()?;
    Some(raw.iter().map(|b| format!("{b:02x}")).collect())
}

fn expires(f: &TufFile) -> Option<chrono::DateTime<Utc>> {
    serde_json::from_slice::<Freshness>(&f.data)
        .ok()
        .map(|f| f.signed.expires)
}

/// The current timestamp, re-signed first (with the snapshot, if that
/// expired) when it is expired or does not name the newest snapshot.
async fn fresh_timestamp(st: &AppState, gun: &Gun) -> Result<Option<TufFile>, TrustError> {
    let g = gun.as_str();
    let Some(ts) = st.meta.tuf_current(g, "timestamp").await? else {
        return Ok(None);
    };
    let snap = st.meta.tuf_current(g, "snapshot").await?;
    let now = Utc::now();
    let fresh = match &snap {
        Some(s) => {
            snapshot_sha256(&ts).as_deref() == Some(s.sha256.as_str())
                && expires(&ts).is_some_and(|e| e >= now)
                && expires(s).is_some_and(|e| e >= now)
        }
        None => expires(&ts).is_some_and(|e| e >= now),
    };
    if fresh {
        return Ok(Some(ts));
    }
    let mut tx = st.meta.trust_begin().await?;
    let current = current_map(tx.current_all(g).await?);
    let held = held_keys(st, gun, &mut tx).await?;
    let writes = validate::refresh(&current, &held, now)?;
    if writes.is_empty() {
        drop(tx);
        return Ok(current.get("timestamp").cloned());
    }
    match tx.insert_files(g, &writes).await {
        Ok(files) => {
            tx.commit().await?;
            tracing::info!(gun = %gun, "re-signed stale timestamp");
            Ok(files.into_iter().find(|f| f.role == "timestamp"))
        }
        // Someone refreshed concurrently: theirs is as good.
        Err(TufWriteError::OldVersion { .. }) => {
            drop(tx);
            Ok(st.meta.tuf_current(g, "timestamp").await?)
        }
        Err(TufWriteError::Meta(e)) => Err(e.into()),
    }
}

fn current_map(files: Vec<TufFile>) -> BTreeMap<String, TufFile> {
    files.into_iter().map(|f| (f.role.clone(), f)).collect()
}

async fn held_keys(
    st: &AppState,
    gun: &Gun,
    tx: &mut crate::meta::TrustTx,
) -> Result<HeldKeys, TrustError> {
    let rows = tx.keys(gun.as_str()).await?;
    if rows.is_empty() {
        return Ok(HeldKeys::default());
    }
    let secret = keys::load_or_create_secret(&st.config.storage.root)?;
    let mut held = Vec::with_capacity(rows.len());
    for row in &rows {
        held.push((row.role.clone(), keys::unseal(row, gun, &secret)?));
    }
    Ok(HeldKeys(held))
}

async fn get_key(st: &AppState, gun: &Gun, role: &'static str) -> Result<Response, TrustError> {
    let g = gun.as_str();
    let rt = if role == "timestamp" {
        RoleType::Timestamp
    } else {
        RoleType::Snapshot
    };
    let key = match st.meta.tuf_current(g, "root").await? {
        Some(root) => validate::root_role_key(&root, rt)?,
        None => None,
    };
    let key = match key {
        Some(k) => k,
        None => match st.meta.trust_keys(g, role).await?.first() {
            Some(row) => keys::public_of(row)?,
            None => keys::create_key(&st.meta, &st.config.storage.root, gun, role).await?,
        },
    };
    key_response(&key)
}

async fn rotate_key(st: &AppState, gun: &Gun, role: &'static str) -> Result<Response, TrustError> {
    let key = keys::create_key(&st.meta, &st.config.storage.root, gun, role).await?;
    key_response(&key)
}

fn key_response(key: &bay_signer::key::PublicKey) -> Result<Response, TrustError> {
    let body = serde_json::to_vec(key).map_err(|source| {
        TrustError::Keys(keys::KeyError::PublicKey {
            key_id: key.key_id().as_str().to_owned(),
            source,
        })
    })?;
    Ok(metadata_response(body, None, None))
}

async fn delete(st: &AppState, gun: &Gun) -> Result<Response, TrustError> {
    let existed = st.meta.trust_delete_gun(gun.as_str()).await?;
    st.trust_cache.invalidate(gun.as_str());
    tracing::info!(gun = %gun, existed, "deleted trust data");
    Ok(metadata_response(Vec::new(), None, None))
}

/// Just enough of a part to know it is TUF metadata (Notary decodes into
/// `data.SignedMeta`).
#[derive(Deserialize)]
struct PartMeta {
    signed: PartSigned,
    #[serde(rename = "signatures")]
    _signatures: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct PartSigned {
    #[serde(rename = "_type", default)]
    _kind: Option<String>,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    version: u64,
}

fn oversized(role: &str) -> TrustError {
    Invalid::Validation {
        msg: format!("{role} metadata is larger than the {MAX_PART_BYTES} bytes allowed"),
    }
    .into()
}

async fn read_parts(req: Req) -> Result<Vec<Upload>, TrustError> {
    let ct = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "multipart/form-data" && mime != "multipart/mixed" {
        return Err(TrustError::MalformedUpload);
    }
    let boundary = multer::parse_boundary(ct).map_err(|_| TrustError::MalformedUpload)?;
    let limits = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(MAX_UPLOAD_BYTES)
            .per_field(MAX_PART_BYTES),
    );
    let stream = Body::into_data_stream(req.body);
    let mut mp = multer::Multipart::with_constraints(stream, boundary, limits);
    let mut out: Vec<Upload> = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(multer::Error::StreamSizeExceeded { .. }) => {
                return Err(Invalid::Validation {
                    msg: format!("upload is larger than the {MAX_UPLOAD_BYTES} bytes allowed"),
                }
                .into());
            }
            Err(_) => return Err(TrustError::MalformedUpload),
        };
        let name = field.file_name().unwrap_or("").to_owned();
        let name = name.strip_suffix(".json").unwrap_or(&name).to_owned();
        if name.is_empty() {
            return Err(TrustError::NoFilename);
        }
        let role = RoleName::new(name.clone())
            .map_err(|_| TrustError::InvalidRole { role: name.clone() })?;
        let data = match field.bytes().await {
            Ok(b) => b.to_vec(),
            Err(
                multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. },
            ) => return Err(oversized(role.as_str())),
            Err(_) => return Err(TrustError::MalformedUpload),
        };
        let meta: PartMeta =
            serde_json::from_slice(&data).map_err(|_| TrustError::MalformedJson)?;
        if let Some(e) = &meta.signed.expires
            && chrono::DateTime::parse_from_rfc3339(e).is_err()
        {
            return Err(TrustError::MalformedJson);
        }
        if out.iter().any(|u| u.role == role) {
            return Err(Invalid::Validation {
                msg: format!("{role} was uploaded more than once"),
            }
            .into());
        }
        if out.len() >= MAX_PARTS {
            return Err(Invalid::Validation {
                msg: format!("an upload holds at most {MAX_PARTS} roles"),
            }
            .into());
        }
        out.push(Upload {
            role,
            version: meta.signed.version,
            data,
        });
    }
    Ok(out)
}

async fn upload(st: &AppState, gun: &Gun, req: Req) -> Result<Response, TrustError> {
    let parts = read_parts(req).await?;
    let g = gun.as_str();
    let roles: Vec<String> = parts.iter().map(|p| p.role.to_string()).collect();
    let mut tx = st.meta.trust_begin().await?;
    let current = current_map(tx.current_all(g).await?);
    let held = held_keys(st, gun, &mut tx).await?;
    let accepted = validate::validate_update(gun, parts, &current, &held, Utc::now())?;
    match tx.insert_files(g, &accepted.files).await {
        Ok(_) => {}
        Err(TufWriteError::OldVersion {
            role,
            version,
            current,
        }) => {
            return Err(TrustError::OldVersion {
                role,
                version,
                current,
            });
        }
        Err(TufWriteError::Meta(e)) => return Err(e.into()),
    }
    tx.activate_keys(g, &accepted.activate).await?;
    tx.commit().await?;
    st.trust_cache.invalidate(g);
    let written: Vec<String> = accepted
        .files
        .iter()
        .map(|f| format!("{} v{}", f.role, f.version))
        .collect();
    tracing::info!(gun = %gun, uploaded = ?roles, written = ?written, "trust metadata updated");
    Ok(metadata_response(Vec::new(), None, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(m: Method, rest: &str) -> Option<Op> {
        parse_op(&m, rest)
    }

    #[test]
    fn routes_like_notary_server() {
        let sum = "ab".repeat(32);
        assert_eq!(op(Method::POST, "tuf/"), Some(Op::Upload));
        assert_eq!(op(Method::DELETE, "tuf/"), Some(Op::Delete));
        assert_eq!(op(Method::GET, "tuf/"), None);
        assert_eq!(
            op(Method::GET, "tuf/targets/releases.json"),
            Some(Op::Current(RoleName::releases()))
        );
        assert_eq!(
            op(Method::GET, &format!("tuf/snapshot.{sum}.json")),
            Some(Op::ByChecksum(RoleName::snapshot(), sum.clone()))
        );
        assert_eq!(
            op(Method::GET, &format!("tuf/targets/a.{sum}.json")),
            Some(Op::ByChecksum(RoleName::new("targets/a").unwrap(), sum))
        );
        assert_eq!(
            op(Method::GET, "tuf/12.root.json"),
            Some(Op::ByVersion(RoleName::root(), "12".into()))
        );
        assert_eq!(op(Method::GET, "tuf/root.abc.json"), None);
        assert_eq!(op(Method::GET, "tuf/foo.json"), None);
        assert_eq!(op(Method::HEAD, "tuf/root.json"), None);
        assert_eq!(
            op(Method::GET, "tuf/timestamp.key"),
            Some(Op::GetKey("timestamp"))
        );
        assert_eq!(
            op(Method::POST, "tuf/snapshot.key"),
            Some(Op::RotateKey("snapshot"))
        );
        assert_eq!(op(Method::GET, "tuf/targets.key"), None);
        assert_eq!(op(Method::GET, "changefeed"), Some(Op::Changefeed));
        assert_eq!(
            needed_actions(&Method::GET, "tuf/timestamp.key"),
            vec![Action::Push, Action::Pull]
        );
        assert_eq!(needed_actions(&Method::DELETE, "tuf/"), vec![Action::All]);
        assert_eq!(
            needed_actions(&Method::GET, "tuf/root.json"),
            vec![Action::Pull]
        );
    }
}
