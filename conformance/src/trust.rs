//! The Notary v1 trust API (Docker Content Trust), as notary-server 0.7 serves it
//! under `/v2/<gun>/_trust/…` (trust-facts.md §1), and every attack of issue 4.
//!
//! Metadata is built and verified with `bay_signer`, the same TUF code bay's client
//! uses; nothing here imports the registry. Each test takes a fresh GUN
//! `<host:port>/<namespace>/trust-<test>-<random>` (the host is the URL's, as docker
//! and the notary CLI name repositories).
//!
//! **Who checks what.** An attack the server can see in an upload (rollback of a
//! client-signed role, a bad signature, an unknown key, a threshold not met, a
//! repeated signature, a root rotation without the old root, a certificate for another
//! GUN, expired or oversized metadata, a snapshot that does not match) must be refused
//! with Notary's status, code and `INVALID_UPDATE` detail (`Name`, `Msg`). An attack
//! only a client can detect (a frozen timestamp, a replayed older timestamp, a current
//! snapshot served with older targets, an image that does not match its signed hash, a
//! delegation signing outside its paths when the server stores it) is tested by
//! publishing valid metadata, fetching it like the notary client (`timestamp.json`,
//! then by checksum) and showing that `bay_signer`'s verifier refuses the attacked copy
//! with the typed error. Test names end in `-upload` (server side) or `-read`
//! (client side) where both sides are tested separately; the others say it in their
//! failure messages.
//!
//! A URL without a trust API (`GET …/tuf/timestamp.key` is not 200) skips the whole
//! group: content trust is an extension of a registry, not part of the OCI spec.
//! With credentials the tests use the registry's bearer tokens with scope
//! `repository:<gun>:pull|pull,push|*`; `DELETE` and `POST …key` need `*` and skip
//! when the user does not have it.

use std::collections::BTreeMap;

use base64::Engine as _;
use bay_signer::cert::{default_cert_validity, generate_root_certificate};
use bay_signer::editor::{
    Expiries, NewRepoKeys, RepoEditor, SignedRole, build_snapshot, sign_metadata,
};
use bay_signer::key::{KeyAlgorithm, PrivateKey, PublicKey, Sign};
use bay_signer::names::{Gun, RoleName};
use bay_signer::schema::{FileMeta, RoleType, Root, Targets};
use bay_signer::verify::{
    FetchedRepo, Rejection, TrustedRepo, VerifyError, VerifyOptions, check_meta, verify_repository,
};
use bytes::Bytes;
use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::check::{Check, Stop, ensure, fail, skip};
use crate::ctx::{Ctx, random_bytes, random_hex};
use crate::http::Response;
use crate::{Case, case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!("health", health),
        case!("metadata-not-found", metadata_not_found),
        case!("server-keys", server_keys),
        case!("publish-server-snapshot", publish_server_snapshot),
        case!("publish-client-snapshot", publish_client_snapshot),
        case!("upload-wire-errors", upload_wire_errors),
        case!("upload-validation", upload_validation),
        case!("delete", delete),
        case!("changefeed", changefeed),
        case!("changefeed-all", changefeed_all),
        case!("attack-rollback-timestamp-read", rollback_timestamp_read),
        case!("attack-rollback-snapshot-upload", rollback_snapshot_upload),
        case!("attack-rollback-targets-upload", rollback_targets_upload),
        case!("attack-freeze-expired-upload", freeze_expired_upload),
        case!("attack-freeze-read", freeze_read),
        case!("attack-mix-and-match-upload", mix_and_match_upload),
        case!("attack-mix-and-match-read", mix_and_match_read),
        case!("attack-tampered-target-hash", tampered_target_hash),
        case!("attack-tampered-image-read", tampered_image_read),
        case!("attack-threshold-not-met", threshold_not_met),
        case!("attack-unknown-key", unknown_key),
        case!(
            "attack-root-rotation-without-old-root",
            rotation_without_old_root
        ),
        case!("attack-delegation-outside-paths", delegation_outside_paths),
        case!("attack-oversized-metadata", oversized_metadata),
        case!("attack-gun-cn-mismatch", gun_cn_mismatch),
        case!("attack-repeated-signature", repeated_signature),
    ]
}

// ---- Notary's wire contract ----

/// Notary's error codes (trust-facts §1.2): code, status, exact message.
const NOTARY_ERRORS: [(&str, u16, &str); 9] = [
    (
        "METADATA_NOT_FOUND",
        404,
        "You have requested metadata that does not exist.",
    ),
    (
        "MALFORMED_UPLOAD",
        400,
        "The body of your request is malformed.",
    ),
    ("NO_FILENAME", 400, "No file/role name provided."),
    (
        "INVALID_ROLE",
        400,
        "The role you are attempting to operate on is invalid.",
    ),
    (
        "MALFORMED_JSON",
        400,
        "JSON sent by the client could not be parsed by the server",
    ),
    (
        "INVALID_UPDATE",
        400,
        "Update sent by the client is invalid.",
    ),
    (
        "VERSION",
        400,
        "A newer version of metadata is already available.",
    ),
    (
        "INVALID_PARAMETERS",
        400,
        "The parameters provided are not valid.",
    ),
    (
        "INVALID_GUN",
        400,
        "The server does not support actions on images of this name.",
    ),
];

const CACHE_CURRENT: &str = "public, max-age=300, s-maxage=300, must-revalidate";
const CACHE_CONSISTENT: &str = "public, max-age=2592000, s-maxage=2592000";

/// One line for failure messages, with more of the body than `describe` (Notary's
/// details are long).
fn show(resp: &Response) -> String {
    let body = String::from_utf8_lossy(&resp.body[..resp.body.len().min(600)]).replace('\n', " ");
    format!(
        "{} {} -> {} {}",
        resp.method,
        resp.url.path(),
        resp.status.as_u16(),
        body.trim()
    )
}

/// Require Notary's error envelope `{"errors":[{"code","message","detail"}]}` with
/// `code` (and its status and exact message); returns the detail (`null` if absent).
fn notary_error(resp: &Response, code: &str) -> Check<Value> {
    let Some((_, status, message)) = NOTARY_ERRORS.iter().find(|(c, ..)| *c == code) else {
        fail!("suite bug: unknown Notary code {code}");
    };
    ensure!(
        resp.status.as_u16() == *status,
        "expected {status} {code}: {}",
        show(resp)
    );
    let v: Value = match serde_json::from_slice(&resp.body) {
        Ok(v) => v,
        Err(e) => fail!("error body is not JSON ({e}): {}", show(resp)),
    };
    let Some(first) = v["errors"].as_array().and_then(|a| a.first()) else {
        fail!("error body has no \"errors\" entry: {}", show(resp));
    };
    ensure!(
        first["code"] == code,
        "expected error code {code}: {}",
        show(resp)
    );
    ensure!(
        first["message"] == *message,
        "{code} must carry Notary's message {message:?}: {}",
        show(resp)
    );
    let ct = resp.header("content-type").unwrap_or("");
    ensure!(
        ct.starts_with("application/json"),
        "a Notary error is application/json, got {ct:?}: {}",
        show(resp)
    );
    Ok(first.get("detail").cloned().unwrap_or(Value::Null))
}

/// Require `400 INVALID_UPDATE` whose detail is `{"Name":name,"Error":{"Msg":…}}` with
/// `msg_part` in the message (trust-facts §1.3).
fn expect_invalid(resp: &Response, name: &str, msg_part: &str) -> Check<Value> {
    let d = notary_error(resp, "INVALID_UPDATE")?;
    ensure!(
        d["Name"] == name,
        "INVALID_UPDATE detail must name {name}: {}",
        show(resp)
    );
    let msg = d["Error"]["Msg"].as_str().unwrap_or("");
    ensure!(
        msg.contains(msg_part),
        "{name} message must contain {msg_part:?}: {}",
        show(resp)
    );
    Ok(d)
}

/// A suite-side failure (building metadata), reported as such.
fn suite<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> Check<T> {
    r.map_err(|e| Stop::Fail(format!("suite bug: {what}: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

/// The hex sha256 a timestamp/snapshot `meta` entry names (base64 in the file).
fn meta_sha256(file: &[u8], role: &str) -> Option<String> {
    let v: Value = serde_json::from_slice(file).ok()?;
    let b64 = v["signed"]["meta"][role]["hashes"]["sha256"].as_str()?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .ok()?;
    Some(hex(&raw))
}

fn version_of(file: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(file)
        .ok()
        .and_then(|v| v["signed"]["version"].as_u64())
        .unwrap_or(0)
}

/// A multipart body with one `files` part per `(filename, bytes)`, as the notary
/// client sends uploads. Hand-written: the format is four lines per part, and the
/// suite's HTTP helper sends plain byte bodies.
fn multipart(parts: &[(Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("bay-conformance-{}", random_hex(24));
    let mut body = Vec::new();
    for (name, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match name {
            Some(n) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"files\"; filename=\"{n}\"\r\n")
                    .as_bytes(),
            ),
            None => body.extend_from_slice(b"Content-Disposition: form-data; name=\"files\"\r\n"),
        }
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

// ---- a repository under test ----

/// The bytes a client fetched, in TUF order.
#[derive(Clone)]
struct Served {
    root: Vec<u8>,
    fetched: FetchedRepo,
}

/// One GUN on the server under test.
struct Trust {
    ctx: Ctx,
    gun: Gun,
    /// The server's timestamp key (`GET timestamp.key`).
    ts_key: PublicKey,
}

/// The client's keys for a repository.
struct Keys {
    root: PrivateKey,
    targets: PrivateKey,
    /// Only when the client holds the snapshot key (notary's default).
    snapshot: Option<PrivateKey>,
}

impl Keys {
    fn signers(&self) -> Vec<&dyn Sign> {
        let mut v: Vec<&dyn Sign> = vec![&self.root, &self.targets];
        if let Some(s) = &self.snapshot {
            v.push(s);
        }
        v
    }
}

/// `host[:port]` of the URL under test, the first component of every GUN.
fn url_host(ctx: &Ctx) -> Check<String> {
    let base = ctx.http.base();
    let Some(host) = base.host_str() else {
        fail!("suite bug: base URL {base} has no host");
    };
    Ok(match base.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

/// A fresh GUN on the server, skipping when the URL has no trust API.
async fn setup(ctx: &Ctx, label: &str) -> Check<Trust> {
    let repo = ctx.repo(label);
    let gun = suite(Gun::new(format!("{}/{repo}", url_host(ctx)?)), "GUN")?;
    let path = format!("/v2/{gun}/_trust/tuf/timestamp.key");
    let resp = ctx.call(Method::GET, &path).send().await?;
    match resp.status.as_u16() {
        200 => {}
        403 => skip!("the credentials may not push to {gun}: {}", show(&resp)),
        _ => skip!(
            "no Notary v1 trust API at this URL (GET {path} must be 200): {}",
            show(&resp)
        ),
    }
    let ts_key = match serde_json::from_slice::<PublicKey>(&resp.body) {
        Ok(k) => k,
        Err(e) => fail!(
            "GET timestamp.key is not a public key ({e}): {}",
            show(&resp)
        ),
    };
    Ok(Trust {
        ctx: ctx.clone(),
        gun,
        ts_key,
    })
}

impl Trust {
    fn path(&self, file: &str) -> String {
        format!("/v2/{}/_trust/tuf/{file}", self.gun)
    }

    async fn get(&self, file: &str) -> Check<Response> {
        self.ctx.call(Method::GET, &self.path(file)).send().await
    }

    /// GET a metadata file, requiring 200.
    async fn bytes(&self, file: &str) -> Check<Vec<u8>> {
        let r = self.get(file).await?;
        ensure!(
            r.status.as_u16() == 200,
            "GET {file} must be 200: {}",
            show(&r)
        );
        Ok(r.body.to_vec())
    }

    /// `GET {role}.key`, parsed.
    async fn key(&self, role: &str) -> Check<PublicKey> {
        let r = self.get(&format!("{role}.key")).await?;
        ensure!(
            r.status.as_u16() == 200,
            "GET {role}.key must be 200: {}",
            show(&r)
        );
        match serde_json::from_slice(&r.body) {
            Ok(k) => Ok(k),
            Err(e) => fail!("GET {role}.key is not a public key ({e}): {}", show(&r)),
        }
    }

    /// `POST /v2/<gun>/_trust/tuf/` with these parts.
    async fn upload_parts(&self, parts: &[(Option<&str>, &[u8])]) -> Check<Response> {
        let (ct, body) = multipart(parts);
        self.ctx
            .call(Method::POST, &self.path(""))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
    }

    async fn upload(&self, roles: &[&SignedRole]) -> Check<Response> {
        let parts: Vec<(Option<&str>, &[u8])> = roles
            .iter()
            .map(|r| (Some(r.role.as_str()), r.bytes.as_slice()))
            .collect();
        self.upload_parts(&parts).await
    }

    /// Upload that must succeed: 200.
    async fn publish(&self, roles: &[&SignedRole]) -> Check {
        let r = self.upload(roles).await?;
        let names: Vec<&str> = roles.iter().map(|r| r.role.as_str()).collect();
        ensure!(
            r.status.as_u16() == 200,
            "valid upload of {names:?} must be 200: {}",
            show(&r)
        );
        Ok(())
    }

    /// A new repository with the given root certificate CN. `client_snapshot`:
    /// the client holds the snapshot key (notary's default); otherwise the server's
    /// key from `GET snapshot.key` (docker's setup).
    async fn editor_for(&self, cn: &Gun, client_snapshot: bool) -> Check<(RepoEditor, Keys)> {
        let keys = Keys {
            root: PrivateKey::generate(KeyAlgorithm::EcdsaP256),
            targets: PrivateKey::generate(KeyAlgorithm::EcdsaP256),
            snapshot: client_snapshot.then(|| PrivateKey::generate(KeyAlgorithm::Ed25519)),
        };
        let snapshot = match &keys.snapshot {
            Some(k) => k.public_key().clone(),
            None => self.key("snapshot").await?,
        };
        let now = Utc::now();
        let cert = suite(
            generate_root_certificate(&keys.root, cn, now, default_cert_validity()),
            "root certificate",
        )?;
        let ed = suite(
            RepoEditor::create(
                self.gun.clone(),
                NewRepoKeys {
                    root: cert,
                    targets: keys.targets.public_key().clone(),
                    snapshot,
                    timestamp: self.ts_key.clone(),
                },
                now,
            ),
            "new repository",
        )?;
        Ok((ed, keys))
    }

    async fn editor(&self, client_snapshot: bool) -> Check<(RepoEditor, Keys)> {
        let gun = self.gun.clone();
        self.editor_for(&gun, client_snapshot).await
    }

    /// Fetch like the notary client: root.json (TOFU), timestamp.json, then snapshot,
    /// targets and every delegation the snapshot lists, by checksum.
    async fn fetch(&self) -> Check<Served> {
        let root = self.bytes("root.json").await?;
        let timestamp = self.bytes("timestamp.json").await?;
        let Some(snap_sum) = meta_sha256(&timestamp, "snapshot") else {
            fail!("timestamp.json names no snapshot sha256");
        };
        let snapshot = self.bytes(&format!("snapshot.{snap_sum}.json")).await?;
        let Some(t_sum) = meta_sha256(&snapshot, "targets") else {
            fail!("the snapshot names no targets sha256");
        };
        let targets = self.bytes(&format!("targets.{t_sum}.json")).await?;
        let mut delegations = BTreeMap::new();
        let listed: Vec<String> = serde_json::from_slice::<Value>(&snapshot)
            .ok()
            .and_then(|v| {
                v["signed"]["meta"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
            })
            .unwrap_or_default();
        for role in listed.iter().filter(|r| r.starts_with("targets/")) {
            let Some(sum) = meta_sha256(&snapshot, role) else {
                fail!("the snapshot names no sha256 for {role}");
            };
            let bytes = self.bytes(&format!("{role}.{sum}.json")).await?;
            let name = suite(RoleName::new(role.clone()), "delegation name")?;
            delegations.insert(name, bytes);
        }
        Ok(Served {
            root,
            fetched: FetchedRepo {
                newer_roots: Vec::new(),
                timestamp,
                snapshot,
                targets,
                delegations,
            },
        })
    }

    fn verify(&self, s: &Served, opts: VerifyOptions) -> Result<TrustedRepo, VerifyError> {
        verify_repository(self.gun.clone(), &s.root, &s.fetched, opts)
    }

    /// Fetch and verify; the served repository must verify.
    async fn verified(&self) -> Check<(Served, TrustedRepo)> {
        let s = self.fetch().await?;
        match self.verify(&s, VerifyOptions::default()) {
            Ok(r) => Ok((s, r)),
            Err(e) => fail!("the served repository does not verify with bay_signer: {e}"),
        }
    }
}

fn find<'a>(files: &'a [SignedRole], role: &str) -> Check<&'a SignedRole> {
    match files.iter().find(|f| f.role.as_str() == role) {
        Some(f) => Ok(f),
        None => fail!("suite bug: signing produced no {role}"),
    }
}

fn sign(ed: &mut RepoEditor, signers: &[&dyn Sign]) -> Check<Vec<SignedRole>> {
    suite(ed.sign(signers), "signing")
}

/// An image manifest stand-in and docker's target for it (sha256 + length).
fn image() -> (Bytes, FileMeta) {
    let bytes = random_bytes(300);
    let mut d = [0u8; 32];
    d.copy_from_slice(&sha2::Sha256::digest(&bytes));
    let len = bytes.len() as u64;
    (bytes, FileMeta::docker(d, len))
}

/// Publish a docker-style repository (server snapshot) with tag `v1`.
async fn docker_repo(t: &Trust) -> Check<(RepoEditor, Keys, Vec<SignedRole>)> {
    let (mut ed, keys) = t.editor(false).await?;
    suite(
        ed.add_target(&RoleName::targets(), "v1", image().1),
        "add v1",
    )?;
    let v1 = sign(&mut ed, &keys.signers())?;
    t.publish(&v1.iter().collect::<Vec<_>>()).await?;
    Ok((ed, keys, v1))
}

/// Publish a notary-style repository (client snapshot) with tag `v1`.
async fn notary_repo(t: &Trust) -> Check<(RepoEditor, Keys, Vec<SignedRole>)> {
    let (mut ed, keys) = t.editor(true).await?;
    suite(
        ed.add_target(&RoleName::targets(), "v1", image().1),
        "add v1",
    )?;
    let v1 = sign(&mut ed, &keys.signers())?;
    t.publish(&v1.iter().collect::<Vec<_>>()).await?;
    Ok((ed, keys, v1))
}

/// Add tag `tag` and publish the change.
async fn add_and_publish(
    t: &Trust,
    ed: &mut RepoEditor,
    keys: &Keys,
    tag: &str,
) -> Check<Vec<SignedRole>> {
    suite(
        ed.add_target(&RoleName::targets(), tag, image().1),
        "add tag",
    )?;
    let files = sign(ed, &keys.signers())?;
    t.publish(&files.iter().collect::<Vec<_>>()).await?;
    Ok(files)
}

/// The signed body of a file.
fn body_of<T: serde::de::DeserializeOwned>(file: &[u8]) -> Check<T> {
    let v: Value = suite(serde_json::from_slice(file), "parse metadata")?;
    suite(
        serde_json::from_value(v["signed"].clone()),
        "parse signed body",
    )
}

/// Edit the JSON of a file, keeping its signatures.
fn tamper(file: &[u8], edit: impl FnOnce(&mut Value)) -> Check<Vec<u8>> {
    let mut v: Value = suite(serde_json::from_slice(file), "parse metadata")?;
    edit(&mut v);
    suite(serde_json::to_vec(&v), "serialize metadata")
}

/// Skip when a request needing `*` (DELETE, POST …key) is refused for lack of it.
fn needs_all(resp: &Response, what: &str) -> Check {
    if matches!(resp.status.as_u16(), 401 | 403) {
        skip!(
            "{what} needs the `*` action on the repository, which the credentials lack: {}",
            show(resp)
        );
    }
    Ok(())
}

// ---- routes ----

/// `GET /_notary_server/health` → 200 `{}`.
async fn health(ctx: Ctx) -> Check {
    let _t = setup(&ctx, "health").await?;
    let r = ctx
        .call(Method::GET, "/_notary_server/health")
        .send()
        .await?;
    ensure!(r.status.as_u16() == 200, "health must be 200: {}", show(&r));
    let v: Value = match serde_json::from_slice(&r.body) {
        Ok(v) => v,
        Err(e) => fail!("health body is not JSON ({e}): {}", show(&r)),
    };
    ensure!(v == json!({}), "health must answer {{}}: {}", show(&r));
    Ok(())
}

/// Unknown role/version/checksum → 404 `METADATA_NOT_FOUND` with `"detail":{}`;
/// unknown routes (HEAD, PUT, `targets.key`) → 404 `METADATA_NOT_FOUND`.
async fn metadata_not_found(ctx: Ctx) -> Check {
    let t = setup(&ctx, "not-found").await?;
    let zeros = "0".repeat(64);
    for file in [
        "root.json".to_owned(),
        "targets.json".to_owned(),
        "1.root.json".to_owned(),
        format!("root.{zeros}.json"),
        "targets/releases.json".to_owned(),
    ] {
        let r = t.get(&file).await?;
        let d = notary_error(&r, "METADATA_NOT_FOUND")?;
        ensure!(
            d == json!({}),
            "detail of a missing {file} is {{}}: {}",
            show(&r)
        );
    }
    let r = t.get("targets.key").await?;
    notary_error(&r, "METADATA_NOT_FOUND")?;
    let r = ctx.call(Method::PUT, &t.path("")).send().await?;
    notary_error(&r, "METADATA_NOT_FOUND")?;
    let r = ctx.call(Method::GET, &t.path("")).send().await?;
    notary_error(&r, "METADATA_NOT_FOUND")?;
    let r = ctx.call(Method::HEAD, &t.path("root.json")).send().await?;
    ensure!(
        r.status.as_u16() == 404,
        "HEAD is not a Notary route: {}",
        show(&r)
    );
    Ok(())
}

/// `GET {timestamp,snapshot}.key` hands out a server key (Notary's key JSON);
/// `POST …key` a new (pending) one; once a root lists a server key, `GET …key` answers
/// exactly that key.
async fn server_keys(ctx: Ctx) -> Check {
    let t = setup(&ctx, "keys").await?;
    let r = t.get("timestamp.key").await?;
    let v: Value = suite(serde_json::from_slice(&r.body), "key JSON")
        .map_err(|_| Stop::Fail(format!("GET timestamp.key is not JSON: {}", show(&r))))?;
    ensure!(
        matches!(v["keytype"].as_str(), Some("ed25519" | "ecdsa" | "rsa"))
            && v["keyval"]["private"].is_null()
            && v["keyval"]["public"]
                .as_str()
                .is_some_and(|p| !p.is_empty()),
        "a server key is {{\"keytype\",\"keyval\":{{\"public\",\"private\":null}}}}: {}",
        show(&r)
    );
    // Before a root exists notary-server makes a new key on every GET; bay keeps one.
    // Either way it is a usable public key, distinct per role.
    let snap = t.key("snapshot").await?;
    ensure!(snap != t.ts_key, "snapshot and timestamp keys must differ");
    // After a publish, GET …key answers the keys root lists, every time.
    let (ed, _, _) = docker_repo(&t).await?;
    let ts_listed = ed
        .root()
        .role(RoleType::Timestamp)
        .map(|r| r.keyids.clone())
        .unwrap_or_default();
    ensure!(ts_listed.len() == 1, "suite bug: root lists {ts_listed:?}");
    for (role, rt) in [
        ("timestamp", RoleType::Timestamp),
        ("snapshot", RoleType::Snapshot),
    ] {
        let listed = ed
            .root()
            .role(rt)
            .map(|r| r.keyids.clone())
            .unwrap_or_default();
        for _ in 0..2 {
            let k = t.key(role).await?;
            ensure!(
                listed == vec![k.key_id()],
                "after publishing, GET {role}.key must answer the key root lists"
            );
        }
    }
    // POST …key makes a new pending key; GET keeps answering root's until a root
    // lists the new one.
    let r = ctx
        .call(Method::POST, &t.path("timestamp.key"))
        .send()
        .await?;
    needs_all(&r, "POST timestamp.key")?;
    ensure!(
        r.status.as_u16() == 200,
        "POST timestamp.key must be 200: {}",
        show(&r)
    );
    let rotated: PublicKey = match serde_json::from_slice(&r.body) {
        Ok(k) => k,
        Err(e) => fail!("POST timestamp.key is not a public key ({e}): {}", show(&r)),
    };
    ensure!(
        rotated != t.ts_key && Some(rotated.key_id()) != ts_listed.first().cloned(),
        "POST timestamp.key must create a new key"
    );
    ensure!(
        t.key("timestamp").await?.key_id() == ts_listed[0],
        "a pending key from POST timestamp.key must not replace the key root lists"
    );
    Ok(())
}

/// docker's setup: root + targets uploaded, the server makes snapshot and timestamp.
/// Exact bytes back by name, checksum and version, Notary's cache headers, and the
/// chain verifies with the server's keys.
async fn publish_server_snapshot(ctx: Ctx) -> Check {
    let t = setup(&ctx, "publish-server").await?;
    let (mut ed, keys) = t.editor(false).await?;
    // The server's snapshot key the editor put in root (from GET snapshot.key).
    let snap_ids = ed
        .root()
        .role(RoleType::Snapshot)
        .map(|r| r.keyids.clone())
        .unwrap_or_default();
    let (img, meta) = image();
    suite(ed.add_target(&RoleName::targets(), "v1", meta), "add v1")?;
    let v1 = sign(&mut ed, &keys.signers())?;
    ensure!(v1.len() == 2, "suite bug: expected root + targets");
    let r = t.upload(&v1.iter().collect::<Vec<_>>()).await?;
    ensure!(r.status.as_u16() == 200, "upload must be 200: {}", show(&r));
    ensure!(
        r.body.is_empty(),
        "upload answers an empty body: {}",
        show(&r)
    );

    let root = find(&v1, "root")?;
    let targets = find(&v1, "targets")?;
    let r = t.get("root.json").await?;
    ensure!(r.status.as_u16() == 200, "GET root.json: {}", show(&r));
    ensure!(
        r.body == root.bytes,
        "root.json must be served byte for byte"
    );
    let cc = r.header("cache-control").unwrap_or("");
    ensure!(
        cc == CACHE_CURRENT,
        "root.json Cache-Control must be {CACHE_CURRENT:?}, got {cc:?}"
    );
    let r = t
        .get(&format!("targets.{}.json", targets.sha256_hex()))
        .await?;
    ensure!(
        r.status.as_u16() == 200,
        "GET targets by checksum: {}",
        show(&r)
    );
    ensure!(
        r.body == targets.bytes,
        "targets.<sha256>.json must be the uploaded bytes"
    );
    let cc = r.header("cache-control").unwrap_or("");
    ensure!(
        cc == CACHE_CONSISTENT,
        "by-checksum Cache-Control must be {CACHE_CONSISTENT:?}, got {cc:?}"
    );
    ensure!(
        t.bytes("1.root.json").await? == root.bytes,
        "1.root.json must be root v1"
    );
    ensure!(
        t.bytes("1.targets.json").await? == targets.bytes,
        "1.targets.json must be targets v1"
    );
    notary_error(&t.get("2.root.json").await?, "METADATA_NOT_FOUND")?;

    let (served, repo) = t.verified().await?;
    let Some(got) = repo.lookup("v1") else {
        fail!("v1 is not in the verified targets");
    };
    ensure!(
        check_meta(
            &RoleName::targets(),
            &img,
            &FileMeta::docker(got.sha256, got.length)
        )
        .is_ok(),
        "the verified v1 does not match the image it was signed for"
    );
    let (snap, ts) = match (repo.snapshot(), repo.timestamp()) {
        (Some(s), Some(ts)) => (s, ts),
        _ => fail!("suite bug: verified repository without snapshot or timestamp"),
    };
    ensure!(
        snap.signers == snap_ids,
        "the snapshot must be signed by the server's snapshot key (GET snapshot.key)"
    );
    ensure!(
        ts.signers == vec![t.ts_key.key_id()],
        "the timestamp must be signed by the server's timestamp key (GET timestamp.key)"
    );
    ensure!(
        t.bytes("snapshot.json").await? == served.fetched.snapshot,
        "snapshot.json must be the snapshot the timestamp names"
    );
    ensure!(
        t.bytes("targets.json").await? == targets.bytes,
        "targets.json must be the newest targets"
    );
    Ok(())
}

/// notary's setup: root, targets and snapshot uploaded; the uploaded snapshot is served
/// byte for byte, an uploaded timestamp is ignored, the next publish sends targets +
/// snapshot.
async fn publish_client_snapshot(ctx: Ctx) -> Check {
    let t = setup(&ctx, "publish-client").await?;
    let (mut ed, keys, v1) = notary_repo(&t).await?;
    ensure!(v1.len() == 3, "suite bug: expected root, targets, snapshot");
    let (_, repo) = t.verified().await?;
    let Some(snap) = repo.snapshot() else {
        fail!("suite bug: no snapshot");
    };
    ensure!(
        snap.bytes == find(&v1, "snapshot")?.bytes,
        "the uploaded snapshot must be served byte for byte"
    );
    suite(
        ed.add_target(&RoleName::targets(), "v2", image().1),
        "add v2",
    )?;
    let v2 = sign(&mut ed, &keys.signers())?;
    let roles: Vec<&str> = v2.iter().map(|f| f.role.as_str()).collect();
    ensure!(roles == ["targets", "snapshot"], "suite bug: {roles:?}");
    // A timestamp in the upload is the server's business: it must not be served.
    let rogue = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let ts = suite(
        bay_signer::editor::build_timestamp(
            99,
            Utc::now() + Duration::days(1),
            &find(&v2, "snapshot")?.bytes,
            &rogue,
        ),
        "timestamp",
    )?;
    let mut with_ts: Vec<&SignedRole> = v2.iter().collect();
    with_ts.push(&ts);
    let r = t.upload(&with_ts).await?;
    ensure!(
        r.status.as_u16() == 200,
        "targets + snapshot (+ a client timestamp, which is ignored) must be accepted: {}",
        show(&r)
    );
    let (_, repo) = t.verified().await?;
    ensure!(
        repo.lookup("v2").is_some(),
        "v2 is not in the verified targets"
    );
    let ts_signers = repo
        .timestamp()
        .map(|t| t.signers.clone())
        .unwrap_or_default();
    ensure!(
        ts_signers == vec![t.ts_key.key_id()],
        "the served timestamp must be the server's, not the uploaded one"
    );
    Ok(())
}

/// Wire-level refusals of an upload: not multipart, a part without filename, a role
/// that does not exist, a part that is not TUF JSON.
async fn upload_wire_errors(ctx: Ctx) -> Check {
    let t = setup(&ctx, "upload-wire").await?;
    let r = ctx
        .call(Method::POST, &t.path(""))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await?;
    notary_error(&r, "MALFORMED_UPLOAD")?;
    let r = t.upload_parts(&[(None, b"{}")]).await?;
    notary_error(&r, "NO_FILENAME")?;
    let r = t.upload_parts(&[(Some("foo"), b"{}")]).await?;
    let d = notary_error(&r, "INVALID_ROLE")?;
    ensure!(
        d == json!("foo"),
        "INVALID_ROLE detail must be the role name: {}",
        show(&r)
    );
    let r = t
        .upload_parts(&[(Some("targets.json"), b"not json")])
        .await?;
    notary_error(&r, "MALFORMED_JSON")?;
    Ok(())
}

/// Notary's validation order for uploads: a new GUN needs a root, root versions go up
/// by one, a replay is `VERSION`, a missing snapshot the server cannot make is
/// `ErrBadHierarchy`.
async fn upload_validation(ctx: Ctx) -> Check {
    let t = setup(&ctx, "upload-validation").await?;
    let (mut ed, keys) = t.editor(false).await?;
    let v1 = sign(&mut ed, &keys.signers())?;
    let r = t.upload(&[find(&v1, "targets")?]).await?;
    expect_invalid(
        &r,
        "ErrValidation",
        "no pre-existing root and no root provided in update.",
    )?;
    t.publish(&v1.iter().collect::<Vec<_>>()).await?;
    let r = t.upload(&v1.iter().collect::<Vec<_>>()).await?;
    notary_error(&r, "VERSION")?;
    let mut root: Root = body_of(&find(&v1, "root")?.bytes)?;
    root.version = 3;
    let rid = root.roles["root"].keyids[0].clone();
    let jump = suite(
        sign_metadata(
            &RoleName::root(),
            3,
            &root,
            &[(&keys.root as &dyn Sign, rid)],
        ),
        "root v3",
    )?;
    let r = t.upload(&[&jump]).await?;
    expect_invalid(
        &r,
        "ErrBadRoot",
        "Root modifications must increment the version. Current 1, new 3",
    )?;

    // A client-held snapshot key: without a snapshot the server cannot make one.
    let t2 = setup(&ctx, "upload-validation-snap").await?;
    let (mut ed, keys, _) = notary_repo(&t2).await?;
    suite(
        ed.add_target(&RoleName::targets(), "v2", image().1),
        "add v2",
    )?;
    let v2 = sign(&mut ed, &keys.signers())?;
    let r = t2.upload(&[find(&v2, "targets")?]).await?;
    let d = expect_invalid(
        &r,
        "ErrBadHierarchy",
        "no snapshot was included in update and server does not hold current snapshot key for repository",
    )?;
    ensure!(
        d["Error"]["Missing"] == "snapshot",
        "ErrBadHierarchy must name the missing role: {}",
        show(&r)
    );
    Ok(())
}

/// `DELETE /v2/<gun>/_trust/tuf/` removes the GUN and the changefeed records it.
async fn delete(ctx: Ctx) -> Check {
    let t = setup(&ctx, "delete").await?;
    docker_repo(&t).await?;
    let r = ctx.call(Method::DELETE, &t.path("")).send().await?;
    needs_all(&r, "DELETE")?;
    ensure!(r.status.as_u16() == 200, "DELETE must be 200: {}", show(&r));
    for file in ["root.json", "targets.json", "timestamp.json"] {
        notary_error(&t.get(file).await?, "METADATA_NOT_FOUND")?;
    }
    let feed = changefeed_get(&t, "change_id=-1&records=1").await?;
    ensure!(
        feed["records"][0]["Category"] == "deletion",
        "the changefeed must end with a deletion record: {feed}"
    );
    Ok(())
}

async fn changefeed_get(t: &Trust, query: &str) -> Check<Value> {
    let path = format!("/v2/{}/_trust/changefeed?{query}", t.gun);
    let r = t.ctx.call(Method::GET, &path).send().await?;
    ensure!(
        r.status.as_u16() == 200,
        "GET changefeed?{query} must be 200: {}",
        show(&r)
    );
    match serde_json::from_slice(&r.body) {
        Ok(v) => Ok(v),
        Err(e) => fail!("changefeed is not JSON ({e}): {}", show(&r)),
    }
}

/// The per-GUN changefeed: parameters, one `update` record per timestamp with the
/// timestamp's sha256, `change_id` exclusive, `-1` = latest.
async fn changefeed(ctx: Ctx) -> Check {
    let t = setup(&ctx, "changefeed").await?;
    let path = format!("/v2/{}/_trust/changefeed", t.gun);
    let r = ctx.call(Method::GET, &path).send().await?;
    let d = notary_error(&r, "INVALID_PARAMETERS")?;
    ensure!(
        d == r#"invalid records parameter: strconv.ParseInt: parsing "": invalid syntax"#,
        "changefeed without records: Notary's detail: {}",
        show(&r)
    );
    for q in ["records=x", "records=1&change_id=x"] {
        let r = ctx.call(Method::GET, &format!("{path}?{q}")).send().await?;
        notary_error(&r, "INVALID_PARAMETERS")?;
    }
    let (mut ed, keys, _) = docker_repo(&t).await?;
    add_and_publish(&t, &mut ed, &keys, "v2").await?;
    let ts = t.bytes("timestamp.json").await?;
    let feed = changefeed_get(&t, "records=10").await?;
    let Some(recs) = feed["records"].as_array() else {
        fail!("changefeed has no records array: {feed}");
    };
    ensure!(
        feed["count"] == 2 && recs.len() == 2,
        "two publishes make two records: {feed}"
    );
    for (i, rec) in recs.iter().enumerate() {
        for field in ["ID", "CreatedAt", "GUN", "Version", "SHA256", "Category"] {
            ensure!(rec.get(field).is_some(), "record {i} lacks {field}: {feed}");
        }
        ensure!(
            rec["GUN"] == t.gun.as_str(),
            "record {i} names another GUN: {feed}"
        );
        ensure!(
            rec["Category"] == "update",
            "record {i} is not an update: {feed}"
        );
        ensure!(
            rec["Version"] == i + 1,
            "record {i} must be timestamp version {}: {feed}",
            i + 1
        );
    }
    ensure!(
        recs[1]["SHA256"] == sha256_hex(&ts),
        "the last record's SHA256 must be the current timestamp's: {feed}"
    );
    let last = changefeed_get(&t, "change_id=-1&records=1").await?;
    ensure!(
        last["records"][0]["ID"] == recs[1]["ID"],
        "change_id=-1&records=1 must be the latest record: {last}"
    );
    let Some(first_id) = recs[0]["ID"].as_str() else {
        fail!("record IDs are strings: {feed}");
    };
    let after = changefeed_get(&t, &format!("change_id={first_id}&records=10")).await?;
    ensure!(
        after["count"] == 1 && after["records"][0]["ID"] == recs[1]["ID"],
        "change_id is exclusive: {after}"
    );
    Ok(())
}

/// `GET /v2/_trust/changefeed` lists every GUN's changes (needs `registry:catalog:*`).
async fn changefeed_all(ctx: Ctx) -> Check {
    let t = setup(&ctx, "changefeed-all").await?;
    docker_repo(&t).await?;
    let r = ctx
        .call(Method::GET, "/v2/_trust/changefeed?change_id=-1&records=1")
        .send()
        .await?;
    if matches!(r.status.as_u16(), 401 | 403) {
        skip!("the all-GUN changefeed needs registry:catalog:*, which the credentials lack");
    }
    ensure!(
        r.status.as_u16() == 200,
        "GET /v2/_trust/changefeed: {}",
        show(&r)
    );
    let v: Value = match serde_json::from_slice(&r.body) {
        Ok(v) => v,
        Err(e) => fail!("changefeed is not JSON ({e}): {}", show(&r)),
    };
    ensure!(
        v["records"][0]["GUN"] == t.gun.as_str(),
        "the latest change of all GUNs must be the publish just made: {v}"
    );
    Ok(())
}

// ---- attacks ----

fn expect_rollback(e: VerifyError, role: &str) -> Check {
    match e {
        VerifyError::Rollback {
            role: r,
            trusted,
            new,
        } if r.as_str() == role && new < trusted => Ok(()),
        other => fail!("the verifier must refuse a rollback of {role}, got: {other}"),
    }
}

/// Client side: a client that trusted the second publish is served the first
/// (validly signed, unexpired) timestamp again. The server must itself never go
/// back: its timestamp version grows with each publish.
async fn rollback_timestamp_read(ctx: Ctx) -> Check {
    let t = setup(&ctx, "rollback-ts").await?;
    let (mut ed, keys, _) = docker_repo(&t).await?;
    let (old, _) = t.verified().await?;
    add_and_publish(&t, &mut ed, &keys, "v2").await?;
    let (new, repo) = t.verified().await?;
    ensure!(
        version_of(&new.fetched.timestamp) > version_of(&old.fetched.timestamp),
        "the server's timestamp version must grow with each publish"
    );
    let opts = VerifyOptions {
        previous: Some(repo.versions()),
        ..Default::default()
    };
    match t.verify(&old, opts) {
        Ok(_) => fail!("client side: a replayed older timestamp was accepted"),
        Err(e) => expect_rollback(e, "timestamp"),
    }
}

/// Server side: a client-held snapshot whose version is not newer than the stored one
/// is refused with `VERSION`, and nothing of the upload is stored.
async fn rollback_snapshot_upload(ctx: Ctx) -> Check {
    let t = setup(&ctx, "rollback-snapshot").await?;
    let (mut ed, keys, v1) = notary_repo(&t).await?;
    add_and_publish(&t, &mut ed, &keys, "v2").await?;
    suite(
        ed.add_target(&RoleName::targets(), "v3", image().1),
        "add v3",
    )?;
    let v3 = sign(&mut ed, &keys.signers())?;
    let Some(snap_key) = &keys.snapshot else {
        fail!("suite bug: no client snapshot key");
    };
    let targets3 = find(&v3, "targets")?;
    let old_snap = suite(
        build_snapshot(
            1,
            Utc::now() + Duration::days(30),
            [
                (&RoleName::root(), find(&v1, "root")?.bytes.as_slice()),
                (&RoleName::targets(), targets3.bytes.as_slice()),
            ],
            snap_key,
        ),
        "snapshot v1",
    )?;
    let r = t.upload(&[targets3, &old_snap]).await?;
    notary_error(&r, "VERSION")?;
    ensure!(
        version_of(&t.bytes("targets.json").await?) == 2,
        "a refused upload must not store its targets"
    );
    Ok(())
}

/// Server side: older targets uploaded again after a newer one → `VERSION`.
async fn rollback_targets_upload(ctx: Ctx) -> Check {
    let t = setup(&ctx, "rollback-targets").await?;
    let (mut ed, keys, v1) = docker_repo(&t).await?;
    add_and_publish(&t, &mut ed, &keys, "v2").await?;
    let r = t.upload(&[find(&v1, "targets")?]).await?;
    notary_error(&r, "VERSION")?;
    let (_, repo) = t.verified().await?;
    ensure!(
        repo.lookup("v2").is_some(),
        "after a refused rollback the newer targets (with v2) must still be served"
    );
    Ok(())
}

/// Server side: targets that are already expired are refused (`ErrBadTargets`,
/// `targets expired at …`), so a server cannot be made to freeze clients on them.
async fn freeze_expired_upload(ctx: Ctx) -> Check {
    let t = setup(&ctx, "freeze-upload").await?;
    let (mut ed, keys) = t.editor(false).await?;
    ed.set_expiries(Expiries {
        targets: Duration::seconds(-3600),
        ..Expiries::default()
    });
    suite(
        ed.add_target(&RoleName::targets(), "v1", image().1),
        "add v1",
    )?;
    let v1 = sign(&mut ed, &keys.signers())?;
    let r = t.upload(&v1.iter().collect::<Vec<_>>()).await?;
    expect_invalid(&r, "ErrBadTargets", "targets expired at")?;
    notary_error(&t.get("root.json").await?, "METADATA_NOT_FOUND")?;
    Ok(())
}

/// Client side: a freeze (the server, or a man in the middle, keeps serving the same
/// metadata) is refused once the timestamp expires.
async fn freeze_read(ctx: Ctx) -> Check {
    let t = setup(&ctx, "freeze-read").await?;
    docker_repo(&t).await?;
    let (served, repo) = t.verified().await?;
    let Some(ts) = repo.timestamp() else {
        fail!("suite bug: no timestamp");
    };
    let later = VerifyOptions {
        now: Some(ts.signed.expires + Duration::minutes(1)),
        ..Default::default()
    };
    match t.verify(&served, later) {
        Ok(_) => fail!("client side: the frozen repository verified after its timestamp expired"),
        Err(VerifyError::Expired { role, .. }) if role == RoleName::timestamp() => Ok(()),
        Err(e) => fail!("client side: expected the timestamp to be expired, got: {e}"),
    }
}

/// Server side: new targets with a client snapshot that names the old targets →
/// `ErrBadSnapshot` (checksum mismatch).
async fn mix_and_match_upload(ctx: Ctx) -> Check {
    let t = setup(&ctx, "mix-upload").await?;
    let (mut ed, keys, v1) = notary_repo(&t).await?;
    suite(
        ed.add_target(&RoleName::targets(), "v2", image().1),
        "add v2",
    )?;
    let v2 = sign(&mut ed, &keys.signers())?;
    let Some(snap_key) = &keys.snapshot else {
        fail!("suite bug: no client snapshot key");
    };
    let stale = suite(
        build_snapshot(
            2,
            Utc::now() + Duration::days(30),
            [
                (&RoleName::root(), find(&v1, "root")?.bytes.as_slice()),
                (&RoleName::targets(), find(&v1, "targets")?.bytes.as_slice()),
            ],
            snap_key,
        ),
        "stale snapshot",
    )?;
    let r = t.upload(&[find(&v2, "targets")?, &stale]).await?;
    expect_invalid(&r, "ErrBadSnapshot", "checksum for targets did not match")?;
    Ok(())
}

/// Client side: the current timestamp and snapshot served with the older targets
/// (still on the server by checksum) → hash or length mismatch of targets.
async fn mix_and_match_read(ctx: Ctx) -> Check {
    let t = setup(&ctx, "mix-read").await?;
    let (mut ed, keys, v1) = docker_repo(&t).await?;
    add_and_publish(&t, &mut ed, &keys, "v2").await?;
    let (mut served, _) = t.verified().await?;
    let old = t
        .bytes(&format!(
            "targets.{}.json",
            find(&v1, "targets")?.sha256_hex()
        ))
        .await?;
    served.fetched.targets = old;
    match t.verify(&served, VerifyOptions::default()) {
        Ok(_) => fail!("client side: a snapshot mixed with older targets was accepted"),
        Err(VerifyError::HashMismatch { role, .. } | VerifyError::LengthMismatch { role, .. })
            if role == RoleName::targets() =>
        {
            Ok(())
        }
        Err(e) => fail!("client side: expected a targets hash/length mismatch, got: {e}"),
    }
}

/// Both sides: a target's hash edited in signed targets (signatures kept). The server
/// refuses the upload (`ErrBadTargets`, threshold); the same copy served to a client is
/// refused by the verifier.
async fn tampered_target_hash(ctx: Ctx) -> Check {
    let t = setup(&ctx, "tampered-hash").await?;
    let (mut ed, keys, _) = docker_repo(&t).await?;
    suite(
        ed.add_target(&RoleName::targets(), "v2", image().1),
        "add v2",
    )?;
    let v2 = sign(&mut ed, &keys.signers())?;
    let forged = base64::engine::general_purpose::STANDARD.encode([0xee; 32]);
    let bytes = tamper(&find(&v2, "targets")?.bytes, |v| {
        v["signed"]["targets"]["v1"]["hashes"]["sha256"] = json!(forged);
    })?;
    let r = t.upload_parts(&[(Some("targets"), &bytes)]).await?;
    expect_invalid(
        &r,
        "ErrBadTargets",
        "valid signatures did not meet threshold for targets",
    )?;
    // Client side: the tampered file in place of the served targets.
    let (mut served, _) = t.verified().await?;
    served.fetched.targets = tamper(&served.fetched.targets, |v| {
        v["signed"]["targets"]["v1"]["hashes"]["sha256"] = json!(forged);
    })?;
    match t.verify(&served, VerifyOptions::default()) {
        Ok(_) => fail!("client side: targets with an edited hash verified"),
        Err(
            VerifyError::ThresholdNotMet { role, .. }
            | VerifyError::HashMismatch { role, .. }
            | VerifyError::LengthMismatch { role, .. },
        ) if role == RoleName::targets() => Ok(()),
        Err(e) => fail!("client side: expected targets to be refused, got: {e}"),
    }
}

/// Client side: the registry serves other image bytes for a signed tag; the bytes do
/// not match the verified target's sha256/length (what `docker pull` checks).
async fn tampered_image_read(ctx: Ctx) -> Check {
    let t = setup(&ctx, "tampered-image").await?;
    let (mut ed, keys) = t.editor(false).await?;
    let (img, meta) = image();
    suite(ed.add_target(&RoleName::targets(), "v1", meta), "add v1")?;
    let v1 = sign(&mut ed, &keys.signers())?;
    t.publish(&v1.iter().collect::<Vec<_>>()).await?;
    let (_, repo) = t.verified().await?;
    let Some(v1) = repo.lookup("v1") else {
        fail!("v1 is not in the verified targets");
    };
    let signed = FileMeta::docker(v1.sha256, v1.length);
    ensure!(
        check_meta(&RoleName::targets(), &img, &signed).is_ok(),
        "the genuine image must match its signed target"
    );
    let mut evil = img.to_vec();
    evil[0] ^= 0xff;
    match check_meta(&RoleName::targets(), &evil, &signed) {
        Err(VerifyError::HashMismatch { .. }) => {}
        Ok(()) => fail!("client side: a tampered image matched the signed hash"),
        Err(e) => fail!("client side: expected a hash mismatch, got: {e}"),
    }
    evil.push(0);
    ensure!(
        matches!(
            check_meta(&RoleName::targets(), &evil, &signed),
            Err(VerifyError::LengthMismatch { .. } | VerifyError::HashMismatch { .. })
        ),
        "client side: a longer image must not match the signed target"
    );
    Ok(())
}

/// Root v2 requires 2 of 2 targets keys; returns the second key, root v2 and the
/// properly signed targets.
async fn two_of_two(t: &Trust) -> Check<(RepoEditor, Keys, PrivateKey, Vec<SignedRole>)> {
    let (mut ed, keys, _) = docker_repo(t).await?;
    let second = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    suite(
        ed.set_role_keys(
            RoleType::Targets,
            &[
                keys.targets.public_key().clone(),
                second.public_key().clone(),
            ],
            2,
        ),
        "2-of-2 targets",
    )?;
    let mut signers = keys.signers();
    signers.push(&second);
    let v2 = sign(&mut ed, &signers)?;
    Ok((ed, keys, second, v2))
}

fn first_signature_only(bytes: &[u8], repeat: bool) -> Check<Vec<u8>> {
    tamper(bytes, |v| {
        if let Some(sigs) = v["signatures"].as_array_mut() {
            sigs.truncate(1);
            if repeat && let Some(first) = sigs.first().cloned() {
                sigs.push(first);
            }
        }
    })
}

/// Server side: root v2 asks 2 of 2 targets keys, targets carries one signature →
/// `ErrBadTargets`; nothing is stored; with both signatures it is accepted.
async fn threshold_not_met(ctx: Ctx) -> Check {
    let t = setup(&ctx, "threshold").await?;
    let (_, _, _, v2) = two_of_two(&t).await?;
    let root2 = find(&v2, "root")?;
    let targets2 = find(&v2, "targets")?;
    let one = first_signature_only(&targets2.bytes, false)?;
    let r = t
        .upload_parts(&[(Some("root"), &root2.bytes), (Some("targets"), &one)])
        .await?;
    expect_invalid(
        &r,
        "ErrBadTargets",
        "valid signatures did not meet threshold for targets",
    )?;
    notary_error(&t.get("2.root.json").await?, "METADATA_NOT_FOUND")?;
    t.publish(&[root2, targets2]).await?;
    Ok(())
}

/// Server side: the same signature twice still counts once → `ErrBadTargets`.
async fn repeated_signature(ctx: Ctx) -> Check {
    let t = setup(&ctx, "repeated-sig").await?;
    let (_, _, _, v2) = two_of_two(&t).await?;
    let root2 = find(&v2, "root")?;
    let dup = first_signature_only(&find(&v2, "targets")?.bytes, true)?;
    let r = t
        .upload_parts(&[(Some("root"), &root2.bytes), (Some("targets"), &dup)])
        .await?;
    expect_invalid(
        &r,
        "ErrBadTargets",
        "valid signatures did not meet threshold for targets",
    )?;
    // With both keys' signatures the same upload is accepted, so the refusal was the
    // repeated signature.
    t.publish(&[root2, find(&v2, "targets")?]).await?;
    Ok(())
}

/// Server side: targets signed by a key root does not list → `ErrBadTargets`.
async fn unknown_key(ctx: Ctx) -> Check {
    let t = setup(&ctx, "unknown-key").await?;
    let (mut ed, _, _) = docker_repo(&t).await?;
    suite(
        ed.add_target(&RoleName::targets(), "evil", image().1),
        "add evil",
    )?;
    let Some(body) = ed.targets(&RoleName::targets()) else {
        fail!("suite bug: no targets");
    };
    let mut body = body.clone();
    body.version += 1;
    let mallory = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let forged = suite(
        sign_metadata(
            &RoleName::targets(),
            body.version,
            &body,
            &[(&mallory as &dyn Sign, mallory.public_key().key_id())],
        ),
        "forged targets",
    )?;
    let r = t.upload(&[&forged]).await?;
    expect_invalid(
        &r,
        "ErrBadTargets",
        "valid signatures did not meet threshold for targets",
    )?;
    // Client side: the same file in place of the served targets (the snapshot's hash
    // of the genuine targets usually catches it before the signature check does).
    let (mut served, _) = t.verified().await?;
    served.fetched.targets = forged.bytes.clone();
    match t.verify(&served, VerifyOptions::default()) {
        Ok(_) => fail!("client side: targets signed by an unknown key verified"),
        Err(VerifyError::ThresholdNotMet { rejected, .. })
            if rejected.iter().any(|r| r.reason == Rejection::UnknownKey) =>
        {
            Ok(())
        }
        Err(VerifyError::HashMismatch { .. } | VerifyError::LengthMismatch { .. }) => Ok(()),
        Err(e) => fail!("client side: expected an unknown-key refusal, got: {e}"),
    }
}

/// Server side: root v2 listing only a new root key and signed only by it →
/// `ErrBadRoot` (`could not rotate trust to a new trusted root`); a rotation signed by
/// old and new keys is accepted. Client side: the verifier refuses the rogue root too.
async fn rotation_without_old_root(ctx: Ctx) -> Check {
    let t = setup(&ctx, "rotation").await?;
    let (mut ed, keys, v1) = docker_repo(&t).await?;
    let new_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let new_cert = suite(
        generate_root_certificate(&new_key, &t.gun, Utc::now(), default_cert_validity()),
        "certificate",
    )?;
    let mut root: Root = body_of(&find(&v1, "root")?.bytes)?;
    let old_id = root.roles["root"].keyids[0].clone();
    root.keys.remove(&old_id);
    root.keys.insert(new_cert.key_id(), new_cert.clone());
    if let Some(rk) = root.roles.get_mut("root") {
        rk.keyids = vec![new_cert.key_id()];
    }
    root.version = 2;
    let rogue = suite(
        sign_metadata(
            &RoleName::root(),
            2,
            &root,
            &[(&new_key as &dyn Sign, new_cert.key_id())],
        ),
        "rogue root",
    )?;
    let r = t.upload(&[&rogue]).await?;
    expect_invalid(
        &r,
        "ErrBadRoot",
        "could not rotate trust to a new trusted root",
    )?;
    let mut client = suite(
        TrustedRepo::new(
            t.gun.clone(),
            &find(&v1, "root")?.bytes,
            VerifyOptions::default(),
        ),
        "trust root v1",
    )?;
    match client.update_root(&rogue.bytes) {
        Err(VerifyError::RotationNotSignedByOldRoot { .. }) => {}
        Ok(()) => fail!("client side: a root not signed by the old root was trusted"),
        Err(e) => fail!("client side: expected RotationNotSignedByOldRoot, got: {e}"),
    }
    // The genuine rotation: signed by the old and the new root key.
    suite(
        ed.set_role_keys(RoleType::Root, std::slice::from_ref(&new_cert), 1),
        "rotate root",
    )?;
    let mut signers = keys.signers();
    signers.push(&new_key);
    let v2 = sign(&mut ed, &signers)?;
    t.publish(&v2.iter().collect::<Vec<_>>()).await?;
    Ok(())
}

/// A delegation `targets/alice` limited to `alice-` signs `latest`. Notary checks paths
/// when clients read, not on upload: a server may refuse it (`ErrBadTargets`); if it
/// stores it, a client must refuse the served repository (`DelegationPathViolation`).
async fn delegation_outside_paths(ctx: Ctx) -> Check {
    let t = setup(&ctx, "delegation-paths").await?;
    let (mut ed, keys) = t.editor(false).await?;
    let alice = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let role = suite(RoleName::new("targets/alice"), "role")?;
    suite(
        ed.add_delegation(
            &role,
            &[alice.public_key().clone()],
            1,
            vec!["alice-".into()],
        ),
        "delegation",
    )?;
    suite(ed.add_target(&role, "alice-1", image().1), "add alice-1")?;
    let mut signers = keys.signers();
    signers.push(&alice);
    let v1 = sign(&mut ed, &signers)?;
    t.publish(&v1.iter().collect::<Vec<_>>()).await?;
    let (_, repo) = t.verified().await?;
    ensure!(
        repo.lookup_in("alice-1", std::slice::from_ref(&role))
            .is_some(),
        "alice-1 must verify in targets/alice"
    );
    let body = Targets {
        targets: [("latest".to_owned(), image().1)].into(),
        ..Targets::new(2, Utc::now() + Duration::days(30))
    };
    let forged = suite(
        sign_metadata(
            &role,
            2,
            &body,
            &[(&alice as &dyn Sign, alice.public_key().key_id())],
        ),
        "forged delegation",
    )?;
    let r = t.upload(&[&forged]).await?;
    match r.status.as_u16() {
        400 => {
            expect_invalid(&r, "ErrBadTargets", "")?;
            Ok(())
        }
        200 => {
            let s = t.fetch().await?;
            match t.verify(&s, VerifyOptions::default()) {
                Ok(repo) => fail!(
                    "client side: a delegation signing outside its paths verified (latest → {:?})",
                    repo.lookup("latest").map(|t| t.role)
                ),
                Err(VerifyError::DelegationPathViolation { target, .. }) if target == "latest" => {
                    Ok(())
                }
                Err(e) => fail!("client side: expected DelegationPathViolation, got: {e}"),
            }
        }
        _ => fail!(
            "the upload must be refused (400 INVALID_UPDATE) or stored (200): {}",
            show(&r)
        ),
    }
}

/// Server side: a validly signed targets file over 4 MiB (one target with a 5 MiB
/// `custom`) is refused with `INVALID_UPDATE`/413 and not stored. Client side: the
/// verifier refuses files over its limit before parsing them.
async fn oversized_metadata(ctx: Ctx) -> Check {
    let t = setup(&ctx, "oversized").await?;
    let (mut ed, keys, _) = docker_repo(&t).await?;
    let mut meta = image().1;
    meta.custom = Some(json!({ "padding": "x".repeat(5 << 20) }));
    suite(ed.add_target(&RoleName::targets(), "big", meta), "add big")?;
    let v2 = sign(&mut ed, &keys.signers())?;
    let big = find(&v2, "targets")?;
    let r = t.upload(&[big]).await?;
    match r.status.as_u16() {
        413 => {}
        400 => {
            notary_error(&r, "INVALID_UPDATE")?;
        }
        _ => fail!(
            "a {} byte targets file must be refused (400 INVALID_UPDATE or 413): {}",
            big.bytes.len(),
            show(&r)
        ),
    }
    ensure!(
        version_of(&t.bytes("targets.json").await?) == 1,
        "the oversized targets must not be stored"
    );
    // Client side: targets made the largest file (40 more tags), then a limit just
    // below its size.
    suite(ed.remove_target(&RoleName::targets(), "big"), "remove big")?;
    for i in 0..40 {
        suite(
            ed.add_target(&RoleName::targets(), &format!("tag-{i}"), image().1),
            "add tag",
        )?;
    }
    let v3 = sign(&mut ed, &keys.signers())?;
    t.publish(&v3.iter().collect::<Vec<_>>()).await?;
    let (served, _) = t.verified().await?;
    let size = served.fetched.targets.len() as u64;
    ensure!(
        size > served.root.len() as u64,
        "suite bug: targets ({size} bytes) must be larger than root"
    );
    let opts = VerifyOptions {
        max_metadata_size: size - 1,
        ..Default::default()
    };
    match t.verify(&served, opts) {
        Err(VerifyError::TooLarge { role, .. }) if role == RoleName::targets() => {}
        Ok(_) => fail!("client side: targets over the size limit verified"),
        Err(e) => fail!("client side: expected TooLarge, got: {e}"),
    }
    let mut endless = served.clone();
    endless.fetched.timestamp = vec![b' '; 64 << 20];
    match t.verify(&endless, VerifyOptions::default()) {
        Err(VerifyError::TooLarge { .. }) => Ok(()),
        Ok(_) => fail!("client side: a 64 MiB timestamp verified"),
        Err(e) => fail!("client side: expected TooLarge for a 64 MiB timestamp, got: {e}"),
    }
}

/// Server side: a root certificate whose CN is another GUN → `ErrBadRoot` (`could not
/// validate the path to a trusted root`). Client side: the verifier refuses to trust
/// that root for this GUN.
async fn gun_cn_mismatch(ctx: Ctx) -> Check {
    let t = setup(&ctx, "cn-mismatch").await?;
    let other = suite(Gun::new(format!("{}-other", t.gun)), "other GUN")?;
    let (mut ed, keys) = t.editor_for(&other, false).await?;
    let v1 = sign(&mut ed, &keys.signers())?;
    let r = t.upload(&v1.iter().collect::<Vec<_>>()).await?;
    expect_invalid(
        &r,
        "ErrBadRoot",
        "could not validate the path to a trusted root: unable to retrieve valid leaf certificates",
    )?;
    match TrustedRepo::new(
        t.gun.clone(),
        &find(&v1, "root")?.bytes,
        VerifyOptions::default(),
    ) {
        Err(VerifyError::RootCertificate { .. }) => Ok(()),
        Ok(_) => fail!("client side: a root for another GUN was trusted"),
        Err(e) => fail!("client side: expected a root certificate refusal, got: {e}"),
    }
}
