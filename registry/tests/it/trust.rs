//! The Notary v1 trust server: metadata made by bay-signer round-trips and
//! verifies; each attack is refused at upload with Notary's error; and the
//! real notary CLI runs the same script against bay-registry and Debian's
//! notary-server with the same outcomes.

use std::path::Path;
use std::time::{Duration, Instant};

use bay_signer::cert::{default_cert_validity, generate_root_certificate};
use bay_signer::editor::{NewRepoKeys, RepoEditor, SignedRole, build_snapshot, sign_metadata};
use bay_signer::key::{KeyAlgorithm, PrivateKey, PublicKey, Sign};
use bay_signer::names::{Gun, RoleName};
use bay_signer::schema::{FileMeta, RoleType};
use bay_signer::verify::{TrustedRepo, VerifyOptions};
use chrono::Utc;
use serde_json::Value;

use crate::support::{self, have};

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    fn new(url: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: url.to_owned(),
        }
    }

    async fn get(&self, gun: &Gun, file: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v2/{gun}/_trust/tuf/{file}", self.url))
            .send()
            .await
            .unwrap()
    }

    async fn bytes(&self, gun: &Gun, file: &str) -> Vec<u8> {
        let r = self.get(gun, file).await;
        assert_eq!(r.status(), 200, "GET {file}");
        r.bytes().await.unwrap().to_vec()
    }

    async fn key(&self, gun: &Gun, role: &str) -> PublicKey {
        serde_json::from_slice(&self.bytes(gun, &format!("{role}.key")).await).unwrap()
    }

    async fn upload_raw(&self, gun: &Gun, parts: Vec<(String, Vec<u8>)>) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in parts {
            let part = reqwest::multipart::Part::bytes(bytes)
                .file_name(name)
                .mime_str("application/octet-stream")
                .unwrap();
            form = form.part("files", part);
        }
        let r = self
            .http
            .post(format!("{}/v2/{gun}/_trust/tuf/", self.url))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn upload(&self, gun: &Gun, roles: &[&SignedRole]) -> (u16, Value) {
        self.upload_raw(
            gun,
            roles
                .iter()
                .map(|r| (r.role.as_str().to_owned(), r.bytes.clone()))
                .collect(),
        )
        .await
    }

    /// Fetches like the notary client (timestamp, then by checksum) and
    /// verifies with TOFU on root.json.
    async fn verify(&self, gun: &Gun) -> TrustedRepo {
        let root = self.bytes(gun, "root.json").await;
        let mut repo = TrustedRepo::new(gun.clone(), &root, VerifyOptions::default()).unwrap();
        repo.update_timestamp(&self.bytes(gun, "timestamp.json").await)
            .unwrap();
        let hex_of = |m: &FileMeta| -> String {
            m.hashes
                .sha256()
                .unwrap()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let snap = hex_of(&repo.timestamp().unwrap().signed.meta["snapshot"]);
        repo.update_snapshot(&self.bytes(gun, &format!("snapshot.{snap}.json")).await)
            .unwrap();
        assert!(!repo.needs_root_update());
        let t = hex_of(&repo.snapshot().unwrap().signed.meta["targets"]);
        repo.update_targets(&self.bytes(gun, &format!("targets.{t}.json")).await)
            .unwrap();
        loop {
            let todo = repo.delegations_to_fetch();
            if todo.is_empty() {
                break;
            }
            for (role, meta) in todo {
                let b = self
                    .bytes(gun, &format!("{role}.{}.json", hex_of(&meta)))
                    .await;
                repo.update_delegation(&role, &b).unwrap();
            }
        }
        repo
    }
}

fn error_code(body: &Value) -> (&str, &Value) {
    let e = &body["errors"][0];
    (e["code"].as_str().unwrap_or(""), &e["detail"])
}

#[track_caller]
fn assert_invalid(res: &(u16, Value), name: &str, msg_part: &str) {
    assert_eq!(res.0, 400, "{}", res.1);
    let (code, detail) = error_code(&res.1);
    assert_eq!(code, "INVALID_UPDATE", "{}", res.1);
    assert_eq!(detail["Name"], name, "{}", res.1);
    let msg = detail["Error"]["Msg"].as_str().unwrap_or("");
    assert!(msg.contains(msg_part), "{msg:?} lacks {msg_part:?}");
}

struct Keys {
    root: PrivateKey,
    targets: PrivateKey,
}

fn keys() -> Keys {
    Keys {
        root: PrivateKey::generate(KeyAlgorithm::EcdsaP256),
        targets: PrivateKey::generate(KeyAlgorithm::EcdsaP256),
    }
}

fn cert(key: &PrivateKey, cn: &Gun) -> PublicKey {
    generate_root_certificate(key, cn, Utc::now(), default_cert_validity()).unwrap()
}

fn find<'a>(files: &'a [SignedRole], role: &str) -> &'a SignedRole {
    files.iter().find(|f| f.role.as_str() == role).unwrap()
}

/// Drops all but the first signature (or duplicates it), keeping the body.
fn with_signatures(bytes: &[u8], edit: impl FnOnce(&mut Vec<Value>)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(bytes).unwrap();
    let sigs = v["signatures"].as_array_mut().unwrap();
    edit(sigs);
    serde_json::to_vec(&v).unwrap()
}

/// bay-signer metadata (docker style: server-managed snapshot) is stored,
/// served with Notary's headers and verifies; then every attack is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signer_metadata_round_trips_and_attacks_are_refused() {
    let reg = support::spawn().await;
    let c = Client::new(&reg.url);
    let gun = Gun::new(format!("{}/team/app", reg.host)).unwrap();
    let k = keys();

    // A new GUN: GET .key creates (and then keeps returning) the server key.
    let ts_key = c.key(&gun, "timestamp").await;
    assert_eq!(c.key(&gun, "timestamp").await, ts_key);
    let snap_key = c.key(&gun, "snapshot").await;
    assert_eq!(ts_key.keytype().as_str(), "ed25519");

    // Nothing uploaded yet.
    let r = c.get(&gun, "root.json").await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"errors":[{"code":"METADATA_NOT_FOUND","message":"You have requested metadata that does not exist.","detail":{}}]})
    );

    let mut ed = RepoEditor::create(
        gun.clone(),
        NewRepoKeys {
            root: cert(&k.root, &gun),
            targets: k.targets.public_key().clone(),
            snapshot: snap_key.clone(),
            timestamp: ts_key.clone(),
        },
        Utc::now(),
    )
    .unwrap();
    ed.add_target(&RoleName::targets(), "v1", FileMeta::docker([7; 32], 525))
        .unwrap();
    let v1 = ed.sign(&[&k.root, &k.targets]).unwrap();
    assert_eq!(v1.len(), 2, "root + targets, no snapshot");

    // A new GUN needs a root.
    let res = c.upload(&gun, &[find(&v1, "targets")]).await;
    assert_invalid(
        &res,
        "ErrValidation",
        "no pre-existing root and no root provided in update.",
    );

    let res = c
        .upload(&gun, &[find(&v1, "root"), find(&v1, "targets")])
        .await;
    assert_eq!(res.0, 200, "{}", res.1);

    // Served back: exact bytes, Notary's headers, verifies with bay-signer.
    let r = c.get(&gun, "root.json").await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        h["cache-control"],
        "public, max-age=300, s-maxage=300, must-revalidate"
    );
    let lm = h["last-modified"].to_str().unwrap();
    assert!(lm.ends_with(" UTC") && lm.len() == 29, "{lm}");
    assert_eq!(r.bytes().await.unwrap(), find(&v1, "root").bytes);
    let by_sum = c
        .get(
            &gun,
            &format!("targets.{}.json", find(&v1, "targets").sha256_hex()),
        )
        .await;
    assert_eq!(
        by_sum.headers()["cache-control"],
        "public, max-age=2592000, s-maxage=2592000"
    );
    assert_eq!(by_sum.bytes().await.unwrap(), find(&v1, "targets").bytes);
    assert_eq!(c.bytes(&gun, "1.root.json").await, find(&v1, "root").bytes);
    assert_eq!(c.get(&gun, "2.root.json").await.status(), 404);
    let repo = c.verify(&gun).await;
    let t = repo.lookup("v1").unwrap();
    assert_eq!((t.sha256, t.length), ([7; 32], 525));
    assert_eq!(repo.snapshot().unwrap().signed.version, 1);
    assert_eq!(
        repo.snapshot().unwrap().signers,
        vec![snap_key.key_id()],
        "the server signed the snapshot"
    );
    // GET snapshot.json is the one the timestamp names; the root now lists
    // the server keys, so GET .key returns them.
    assert_eq!(
        c.bytes(&gun, "snapshot.json").await,
        repo.snapshot().unwrap().bytes
    );
    assert_eq!(c.key(&gun, "snapshot").await, snap_key);

    // Rollback: the same targets again, and an older one after v2.
    let res = c.upload(&gun, &[find(&v1, "targets")]).await;
    assert_eq!(res.0, 400);
    assert_eq!(error_code(&res.1).0, "VERSION");
    let mut ed2 = RepoEditor::from_trusted(&repo, Utc::now()).unwrap();
    ed2.add_target(&RoleName::targets(), "v2", FileMeta::docker([8; 32], 600))
        .unwrap();
    let v2 = ed2.sign(&[&k.targets]).unwrap();
    let res = c.upload(&gun, &[find(&v2, "targets")]).await;
    assert_eq!(res.0, 200, "{}", res.1);
    let res = c.upload(&gun, &[find(&v1, "targets")]).await;
    assert_eq!(error_code(&res.1).0, "VERSION", "{}", res.1);
    let repo = c.verify(&gun).await;
    assert!(repo.lookup("v2").is_some());
    assert_eq!(repo.snapshot().unwrap().signed.version, 2);

    // Unknown key: targets signed by a key root does not list.
    let stranger = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let mut ed3 = RepoEditor::from_trusted(&repo, Utc::now()).unwrap();
    ed3.add_target(&RoleName::targets(), "evil", FileMeta::docker([9; 32], 1))
        .unwrap();
    let body = ed3.targets(&RoleName::targets()).unwrap().clone();
    let mut body = body;
    body.version += 1;
    let forged = sign_metadata(
        &RoleName::targets(),
        body.version,
        &body,
        &[(&stranger as &dyn Sign, stranger.public_key().key_id())],
    )
    .unwrap();
    let res = c.upload(&gun, &[&forged]).await;
    assert_invalid(
        &res,
        "ErrBadTargets",
        "valid signatures did not meet threshold for targets",
    );

    // Threshold not met (and a duplicated signature counts once): root v2
    // asks 2 of 2 targets keys; targets carries one key's signature twice.
    let t2 = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let mut ed4 = RepoEditor::from_trusted(&repo, Utc::now()).unwrap();
    ed4.set_role_keys(
        RoleType::Targets,
        &[k.targets.public_key().clone(), t2.public_key().clone()],
        2,
    )
    .unwrap();
    let v3 = ed4.sign(&[&k.root, &k.targets, &t2]).unwrap();
    let root_v2 = find(&v3, "root");
    let good_targets = find(&v3, "targets");
    let dup = with_signatures(&good_targets.bytes, |s| {
        let first = s[0].clone();
        s.truncate(1);
        s.push(first);
    });
    let res = c
        .upload_raw(
            &gun,
            vec![
                ("root".into(), root_v2.bytes.clone()),
                ("targets".into(), dup),
            ],
        )
        .await;
    assert_invalid(
        &res,
        "ErrBadTargets",
        "valid signatures did not meet threshold for targets",
    );
    // All or nothing: root v2 was not stored.
    assert_eq!(c.get(&gun, "2.root.json").await.status(), 404);
    let res = c.upload(&gun, &[root_v2, good_targets]).await;
    assert_eq!(res.0, 200, "{}", res.1);

    // Root rotation not signed by the old root.
    let new_root = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let new_cert = cert(&new_root, &gun);
    let mut body = serde_json::from_slice::<Value>(&root_v2.bytes).unwrap()["signed"].clone();
    let old_id = body["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    body["keys"].as_object_mut().unwrap().remove(&old_id);
    body["keys"][new_cert.key_id().as_str()] = serde_json::to_value(&new_cert).unwrap();
    body["roles"]["root"]["keyids"] = serde_json::json!([new_cert.key_id().as_str()]);
    body["version"] = 3.into();
    let body: bay_signer::schema::Root = serde_json::from_value(body).unwrap();
    let rogue = sign_metadata(
        &RoleName::root(),
        3,
        &body,
        &[(&new_root as &dyn Sign, new_cert.key_id())],
    )
    .unwrap();
    let res = c.upload(&gun, &[&rogue]).await;
    assert_invalid(
        &res,
        "ErrBadRoot",
        "could not rotate trust to a new trusted root",
    );
    // A version jump is refused before anything else.
    let jump = sign_metadata(
        &RoleName::root(),
        5,
        &bay_signer::schema::Root {
            version: 5,
            ..body.clone()
        },
        &[(&new_root as &dyn Sign, new_cert.key_id())],
    )
    .unwrap();
    let res = c.upload(&gun, &[&jump]).await;
    assert_invalid(
        &res,
        "ErrBadRoot",
        "Root modifications must increment the version. Current 2, new 5",
    );

    // Oversized metadata.
    let big = vec![b' '; 5 << 20];
    let res = c.upload_raw(&gun, vec![("targets".into(), big)]).await;
    assert_invalid(&res, "ErrValidation", "larger than");

    // Wire-level refusals.
    let r = c
        .http
        .post(format!("{}/v2/{gun}/_trust/tuf/", c.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&r.json().await.unwrap()).0, "MALFORMED_UPLOAD");
    let res = c
        .upload_raw(&gun, vec![("foo".into(), b"{}".to_vec())])
        .await;
    assert_eq!(error_code(&res.1), ("INVALID_ROLE", &Value::from("foo")));
    let res = c
        .upload_raw(&gun, vec![("targets.json".into(), b"not json".to_vec())])
        .await;
    assert_eq!(error_code(&res.1).0, "MALFORMED_JSON");
    let r = c
        .http
        .head(format!("{}/v2/{gun}/_trust/tuf/root.json", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Changefeed: one record per timestamp write (3 uploads so far).
    let feed: Value = c
        .http
        .get(format!("{}/v2/{gun}/_trust/changefeed?records=0", c.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(feed["count"], 3, "{feed}");
    assert_eq!(feed["records"][2]["Version"], 3);
    assert_eq!(feed["records"][0]["GUN"], gun.as_str());
    assert_eq!(feed["records"][0]["Category"], "update");
    let last: Value = c
        .http
        .get(format!(
            "{}/v2/_trust/changefeed?change_id=-1&records=1",
            c.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(last["records"][0]["ID"], feed["records"][2]["ID"]);
    let r = c
        .http
        .get(format!("{}/v2/{gun}/_trust/changefeed", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        error_code(&body),
        (
            "INVALID_PARAMETERS",
            &Value::from(
                r#"invalid records parameter: strconv.ParseInt: parsing "": invalid syntax"#
            )
        )
    );

    // DELETE removes the GUN and records a deletion.
    let r = c
        .http
        .delete(format!("{}/v2/{gun}/_trust/tuf/", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(c.get(&gun, "root.json").await.status(), 404);
    let last: Value = c
        .http
        .get(format!(
            "{}/v2/{gun}/_trust/changefeed?change_id=-1&records=1",
            c.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(last["records"][0]["Category"], "deletion");
}

/// Client-held snapshot (notary style): mix-and-match and a missing
/// snapshot are refused; the GUN must match the certificate CN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_snapshot_mix_and_match_and_cn_are_checked() {
    let reg = support::spawn().await;
    let c = Client::new(&reg.url);
    let gun = Gun::new(format!("{}/team/notary", reg.host)).unwrap();
    let k = keys();
    let snapshot = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let ts_key = c.key(&gun, "timestamp").await;
    let new_keys = |cn: &Gun| NewRepoKeys {
        root: cert(&k.root, cn),
        targets: k.targets.public_key().clone(),
        snapshot: snapshot.public_key().clone(),
        timestamp: ts_key.clone(),
    };

    // GUN/CN mismatch.
    let other = Gun::new(format!("{}/team/other", reg.host)).unwrap();
    let mut wrong = RepoEditor::create(gun.clone(), new_keys(&other), Utc::now()).unwrap();
    let files = wrong.sign(&[&k.root, &k.targets, &snapshot]).unwrap();
    let refs: Vec<&SignedRole> = files.iter().collect();
    let res = c.upload(&gun, &refs).await;
    assert_invalid(
        &res,
        "ErrBadRoot",
        "could not validate the path to a trusted root: unable to retrieve valid leaf certificates",
    );

    let mut ed = RepoEditor::create(gun.clone(), new_keys(&gun), Utc::now()).unwrap();
    let v1 = ed.sign(&[&k.root, &k.targets, &snapshot]).unwrap();
    assert_eq!(v1.len(), 3);
    let refs: Vec<&SignedRole> = v1.iter().collect();
    let res = c.upload(&gun, &refs).await;
    assert_eq!(res.0, 200, "{}", res.1);

    ed.add_target(&RoleName::targets(), "v2", FileMeta::docker([2; 32], 2))
        .unwrap();
    let v2 = ed.sign(&[&k.targets, &snapshot]).unwrap();
    // Without a snapshot: the server does not hold the snapshot key.
    let res = c.upload(&gun, &[find(&v2, "targets")]).await;
    assert_eq!(res.1["errors"][0]["detail"]["Error"]["Missing"], "snapshot");
    assert_invalid(
        &res,
        "ErrBadHierarchy",
        "no snapshot was included in update and server does not hold current snapshot key for repository",
    );
    // Mix-and-match: new targets with a snapshot naming the old targets.
    let stale = build_snapshot(
        2,
        Utc::now() + chrono::Duration::days(30),
        [
            (&RoleName::root(), find(&v1, "root").bytes.as_slice()),
            (&RoleName::targets(), find(&v1, "targets").bytes.as_slice()),
        ],
        &snapshot,
    )
    .unwrap();
    let res = c.upload(&gun, &[find(&v2, "targets"), &stale]).await;
    assert_invalid(&res, "ErrBadSnapshot", "checksum for targets did not match");
    // A snapshot signed by the wrong key.
    let rogue = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let forged = build_snapshot(
        2,
        Utc::now() + chrono::Duration::days(30),
        [
            (&RoleName::root(), find(&v1, "root").bytes.as_slice()),
            (&RoleName::targets(), find(&v2, "targets").bytes.as_slice()),
        ],
        &rogue,
    )
    .unwrap();
    let res = c.upload(&gun, &[find(&v2, "targets"), &forged]).await;
    assert_invalid(
        &res,
        "ErrBadSnapshot",
        "valid signatures did not meet threshold for snapshot",
    );
    let res = c
        .upload(&gun, &[find(&v2, "targets"), find(&v2, "snapshot")])
        .await;
    assert_eq!(res.0, 200, "{}", res.1);
    let repo = c.verify(&gun).await;
    assert_eq!(repo.lookup("v2").unwrap().sha256, [2; 32]);
    assert_eq!(
        repo.snapshot().unwrap().bytes,
        find(&v2, "snapshot").bytes,
        "the uploaded snapshot is served byte for byte"
    );

    // docker's signer model: targets delegates to targets/releases; a tag
    // signed into the delegation is served and verifies; a delegation
    // signed by the wrong key is refused.
    let alice = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    ed.add_signer("alice", &[alice.public_key().clone()])
        .unwrap();
    ed.add_target(&RoleName::releases(), "v9", FileMeta::docker([9; 32], 9))
        .unwrap();
    let v3 = ed.sign(&[&k.targets, &alice, &snapshot]).unwrap();
    let roles: Vec<&str> = v3.iter().map(|f| f.role.as_str()).collect();
    assert_eq!(roles, ["targets", "targets/releases", "snapshot"]);
    let mallory = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let rel = ed.targets(&RoleName::releases()).unwrap().clone();
    let forged = sign_metadata(
        &RoleName::releases(),
        rel.version,
        &rel,
        &[(&mallory as &dyn Sign, mallory.public_key().key_id())],
    )
    .unwrap();
    let res = c
        .upload(
            &gun,
            &[find(&v3, "targets"), &forged, find(&v3, "snapshot")],
        )
        .await;
    assert_invalid(
        &res,
        "ErrBadTargets",
        "valid signatures did not meet threshold for targets/releases",
    );
    let refs: Vec<&SignedRole> = v3.iter().collect();
    let res = c.upload(&gun, &refs).await;
    assert_eq!(res.0, 200, "{}", res.1);
    let repo = c.verify(&gun).await;
    let t = repo.lookup("v9").unwrap();
    assert_eq!(t.role, RoleName::releases());
    assert_eq!(t.signers, vec![alice.public_key().key_id()]);
    assert_eq!(
        c.bytes(&gun, "targets/releases.json").await,
        find(&v3, "targets/releases").bytes
    );
}

// ---- the notary CLI against both servers ----

/// Debian's notary-server over plain HTTP with memory storage.
pub(crate) struct NotaryServer {
    pub(crate) child: tokio::process::Child,
    pub(crate) url: String,
    host: String,
    _dir: tempfile::TempDir,
}

pub(crate) async fn start_notary_server() -> NotaryServer {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let cfg = dir.path().join("server.json");
    std::fs::write(
        &cfg,
        serde_json::json!({
            "server": {"http_addr": host},
            "trust_service": {"type": "local"},
            "logging": {"level": "info"},
            "storage": {"backend": "memory"}
        })
        .to_string(),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = tokio::process::Command::new("notary-server")
        .arg("-config")
        .arg(&cfg)
        .arg("-logf")
        .arg("logfmt")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://{host}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/_notary_server/health")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "notary-server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    NotaryServer {
        child,
        url,
        host,
        _dir: dir,
    }
}

async fn notary(url: &str, trust: &Path, args: &[&str], stdin: &[u8]) -> (bool, String) {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new("notary")
        .arg("-s")
        .arg(url)
        .arg("-d")
        .arg(trust)
        .args(args)
        .env("NOTARY_ROOT_PASSPHRASE", "root-pass")
        .env("NOTARY_TARGETS_PASSPHRASE", "targets-pass")
        .env("NOTARY_SNAPSHOT_PASSPHRASE", "snapshot-pass")
        .env("NOTARY_DELEGATION_PASSPHRASE", "delegation-pass")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(mut s) = child.stdin.take() {
        let _ = s.write_all(stdin).await;
    }
    let out = child.wait_with_output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// One step's outcome, normalized so both servers can be compared: success,
/// and the tags `list` printed (sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    step: &'static str,
    ok: bool,
    listed: Vec<String>,
    /// For failures: the last line of output, with the host normalized.
    error: String,
}

/// The acceptance script; returns each step's outcome (and the raw output
/// for failure messages).
async fn script(url: &str, host: &str) -> Vec<(Outcome, String)> {
    let work = tempfile::tempdir().unwrap();
    let trust = work.path().join("trust");
    let fresh = work.path().join("fresh");
    let fresh2 = work.path().join("fresh2");
    let payload = work.path().join("payload.txt");
    std::fs::write(&payload, b"hello\n").unwrap();
    let p = payload.to_str().unwrap();
    let gun = format!("{host}/parity/app");
    let g = gun.as_str();
    let steps: Vec<(&'static str, &Path, Vec<&str>, &[u8])> = vec![
        ("init -p", &trust, vec!["init", "-p", g], b""),
        ("add v1", &trust, vec!["add", g, "v1", p], b""),
        ("publish", &trust, vec!["publish", g], b""),
        ("list", &trust, vec!["list", g], b""),
        ("verify v1", &trust, vec!["verify", g, "v1"], b"hello\n"),
        (
            "verify tampered",
            &trust,
            vec!["verify", g, "v1"],
            b"HELLO\n",
        ),
        (
            "key rotate snapshot -r",
            &trust,
            vec!["key", "rotate", g, "snapshot", "-r"],
            b"",
        ),
        ("add v2", &trust, vec!["add", g, "v2", p], b""),
        ("publish (server snapshot)", &trust, vec!["publish", g], b""),
        (
            "key rotate timestamp -r",
            &trust,
            vec!["key", "rotate", g, "timestamp", "-r"],
            b"",
        ),
        (
            "list after timestamp rotation",
            &trust,
            vec!["list", g],
            b"",
        ),
        (
            "key rotate root",
            &trust,
            vec!["key", "rotate", g, "root"],
            b"yes\n",
        ),
        ("add v3", &trust, vec!["add", g, "v3", p], b""),
        (
            "publish after root rotation",
            &trust,
            vec!["publish", g],
            b"",
        ),
        ("fresh client list (TOFU)", &fresh, vec!["list", g], b""),
        (
            "delete --remote",
            &trust,
            vec!["delete", g, "--remote"],
            b"",
        ),
        (
            "fresh client list after delete",
            &fresh2,
            vec!["list", g],
            b"",
        ),
    ];
    let mut out = Vec::new();
    for (step, dir, args, input) in steps {
        let (ok, text) = notary(url, dir, &args, input).await;
        let mut listed: Vec<String> = if args[0] == "list" && ok {
            text.lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|w| w.starts_with('v') && w.len() == 2)
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        listed.sort();
        let error = if ok {
            String::new()
        } else {
            // The notary CLI checks a target's hashes in Go map order, so the
            // same failure names sha256 or sha512 at random: compare without it.
            let line = text
                .trim()
                .lines()
                .last()
                .unwrap_or("")
                .replace(host, "<host>");
            CHECKSUM_LINE
                .replace_all(&line, "checksum for $2 did not match")
                .into_owned()
        };
        out.push((
            Outcome {
                step,
                ok,
                listed,
                error,
            },
            text,
        ));
    }
    out
}

static CHECKSUM_LINE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"sha(256|512) checksum for (\S+) did not match: expected [0-9a-f]+").unwrap()
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notary_cli_behaves_the_same_against_bay_and_notary_server() {
    if !have("notary") || !have("notary-server") {
        eprintln!("SKIP: notary and notary-server (Debian package `notary`) are not installed");
        return;
    }
    let mut ns = start_notary_server().await;
    let reg = support::spawn().await;
    let (theirs, ours) = tokio::join!(script(&ns.url, &ns.host), script(&reg.url, &reg.host));
    let _ = ns.child.kill().await;
    let mut table = String::from("step | notary-server | bay-registry\n");
    for ((t, _), (o, _)) in theirs.iter().zip(&ours) {
        table.push_str(&format!(
            "{} | {} {:?} | {} {:?}\n",
            t.step,
            if t.ok { "ok" } else { "FAIL" },
            t.listed,
            if o.ok { "ok" } else { "FAIL" },
            o.listed
        ));
    }
    eprintln!("{table}");
    for ((t, ttext), (o, otext)) in theirs.iter().zip(&ours) {
        if !t.ok || !o.ok {
            eprintln!(
                "{}:\n  notary-server: {}\n  bay: {}",
                t.step,
                ttext.trim().replace(&ns.host, "<host>"),
                otext.trim().replace(&reg.host, "<host>")
            );
        }
    }
    for ((t, ttext), (o, otext)) in theirs.iter().zip(&ours) {
        assert_eq!(
            t, o,
            "step {:?} differs\n--- notary-server:\n{ttext}\n--- bay:\n{otext}\n{table}",
            t.step
        );
    }
    // The script really exercised something: the expected outcomes.
    let ok = |s: &str| ours.iter().find(|(o, _)| o.step == s).unwrap().0.clone();
    assert!(ok("publish").ok && ok("key rotate root").ok && ok("delete --remote").ok);
    assert_eq!(ok("list").listed, ["v1"]);
    assert_eq!(ok("fresh client list (TOFU)").listed, ["v1", "v2", "v3"]);
    assert!(!ok("verify tampered").ok);
    assert!(!ok("fresh client list after delete").ok);
}

/// The same bad requests and attacks against notary-server and bay-registry
/// give the same status, code and detail (host normalized).
async fn probe(url: &str, host: &str) -> Vec<(&'static str, u16, String)> {
    let c = Client::new(url);
    let gun = Gun::new(format!("{host}/wire/app")).unwrap();
    let mut out = Vec::new();
    let norm = |v: &Value| {
        let e = &v["errors"][0];
        format!("{} {}", e["code"], e["detail"]).replace(host, "<host>")
    };
    macro_rules! rec {
        ($label:expr, $res:expr) => {{
            let (s, v): (u16, Value) = $res;
            out.push(($label, s, norm(&v)));
        }};
    }
    async fn raw(r: reqwest::RequestBuilder) -> (u16, Value) {
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        (
            s,
            serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null),
        )
    }
    let base = format!("{url}/v2/{gun}/_trust");
    rec!(
        "GET unknown root.json",
        raw(c.http.get(format!("{base}/tuf/root.json"))).await
    );
    rec!(
        "GET 1.root.json",
        raw(c.http.get(format!("{base}/tuf/1.root.json"))).await
    );
    rec!(
        "GET root.<sum>.json",
        raw(c
            .http
            .get(format!("{base}/tuf/root.{}.json", "0".repeat(64))))
        .await
    );
    rec!(
        "GET bad checksum",
        raw(c.http.get(format!("{base}/tuf/root.abc.json"))).await
    );
    rec!(
        "GET targets.key",
        raw(c.http.get(format!("{base}/tuf/targets.key"))).await
    );
    rec!("PUT tuf/", raw(c.http.put(format!("{base}/tuf/"))).await);
    rec!(
        "POST not multipart",
        raw(c.http.post(format!("{base}/tuf/")).body("x")).await
    );
    rec!(
        "POST role foo",
        c.upload_raw(&gun, vec![("foo".into(), b"{}".to_vec())])
            .await
    );
    rec!(
        "POST not json",
        c.upload_raw(&gun, vec![("targets".into(), b"nope".to_vec())])
            .await
    );
    rec!(
        "changefeed no records",
        raw(c.http.get(format!("{base}/changefeed"))).await
    );
    rec!(
        "changefeed records=x",
        raw(c.http.get(format!("{base}/changefeed?records=x"))).await
    );
    // Regression: bay sent the store's message as detail; notary-server's
    // error type has no exported fields and sends {}.
    rec!(
        "changefeed change_id=x",
        raw(c
            .http
            .get(format!("{base}/changefeed?change_id=x&records=1")))
        .await
    );
    let k = keys();
    let snap = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let ts_key = c.key(&gun, "timestamp").await;
    let new_keys = |cn: &Gun| NewRepoKeys {
        root: cert(&k.root, cn),
        targets: k.targets.public_key().clone(),
        snapshot: snap.public_key().clone(),
        timestamp: ts_key.clone(),
    };
    let mut ed = RepoEditor::create(gun.clone(), new_keys(&gun), Utc::now()).unwrap();
    let v1 = ed.sign(&[&k.root, &k.targets, &snap]).unwrap();
    rec!(
        "targets without root",
        c.upload(&gun, &[find(&v1, "targets")]).await
    );
    let other = Gun::new(format!("{host}/wire/other")).unwrap();
    let mut wrong = RepoEditor::create(gun.clone(), new_keys(&other), Utc::now()).unwrap();
    let w = wrong.sign(&[&k.root, &k.targets, &snap]).unwrap();
    rec!(
        "CN mismatch",
        c.upload(&gun, &w.iter().collect::<Vec<_>>()).await
    );
    rec!(
        "valid v1",
        c.upload(&gun, &v1.iter().collect::<Vec<_>>()).await
    );
    rec!(
        "replay v1",
        c.upload(&gun, &v1.iter().collect::<Vec<_>>()).await
    );
    ed.add_target(&RoleName::targets(), "v2", FileMeta::docker([2; 32], 2))
        .unwrap();
    let v2 = ed.sign(&[&k.targets, &snap]).unwrap();
    rec!("no snapshot", c.upload(&gun, &[find(&v2, "targets")]).await);
    let stale = build_snapshot(
        2,
        Utc::now() + chrono::Duration::days(30),
        [
            (&RoleName::root(), find(&v1, "root").bytes.as_slice()),
            (&RoleName::targets(), find(&v1, "targets").bytes.as_slice()),
        ],
        &snap,
    )
    .unwrap();
    let old_targets = find(&v1, "targets").sha256_hex();
    rec!(
        "mix-and-match",
        c.upload(&gun, &[find(&v2, "targets"), &stale]).await
    );
    // The message names the hash the snapshot claims (the old targets).
    // Go checks the hashes in map order (random), so the algorithm named
    // varies; normalize it and the old targets' digests.
    let old512: String = FileMeta::of_bytes(&find(&v1, "targets").bytes)
        .hashes
        .sha512()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(last) = out.last_mut() {
        last.2 = last
            .2
            .replace(&old_targets, "<old targets digest>")
            .replace(&old512, "<old targets digest>")
            .replace("sha512 checksum", "sha256 checksum");
    }
    let stranger = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let body = ed.targets(&RoleName::targets()).unwrap().clone();
    let forged = sign_metadata(
        &RoleName::targets(),
        body.version,
        &body,
        &[(&stranger as &dyn Sign, stranger.public_key().key_id())],
    )
    .unwrap();
    rec!(
        "unknown key",
        c.upload(&gun, &[&forged, find(&v2, "snapshot")]).await
    );
    let mut root3: bay_signer::schema::Root = serde_json::from_value(
        serde_json::from_slice::<Value>(&find(&v1, "root").bytes).unwrap()["signed"].clone(),
    )
    .unwrap();
    root3.version = 3;
    let rid = root3.roles["root"].keyids[0].clone();
    let jump = sign_metadata(&RoleName::root(), 3, &root3, &[(&k.root as &dyn Sign, rid)]).unwrap();
    rec!("root version jump", c.upload(&gun, &[&jump]).await);
    // A root rotation signed only by the new root key.
    let new_root = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let new_cert = cert(&new_root, &gun);
    let mut rot = root3.clone();
    rot.version = 2;
    rot.keys.remove(&rot.roles["root"].keyids[0].clone());
    rot.keys.insert(new_cert.key_id(), new_cert.clone());
    if let Some(rk) = rot.roles.get_mut("root") {
        rk.keyids = vec![new_cert.key_id()];
    }
    let rogue = sign_metadata(
        &RoleName::root(),
        2,
        &rot,
        &[(&new_root as &dyn Sign, new_cert.key_id())],
    )
    .unwrap();
    rec!("rotation without old root", c.upload(&gun, &[&rogue]).await);
    rec!(
        "valid v2",
        c.upload(&gun, &[find(&v2, "targets"), find(&v2, "snapshot")])
            .await
    );
    // The changefeed: field names, versions and categories.
    let (s, feed) = raw(c.http.get(format!("{base}/changefeed?records=10"))).await;
    let recs = feed["records"].as_array().cloned().unwrap_or_default();
    let summary: Vec<String> = recs
        .iter()
        .map(|r| {
            let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
            format!(
                "{keys:?} {} {} {}",
                r["Version"],
                r["Category"],
                r["SHA256"].as_str().map_or(0, str::len)
            )
        })
        .collect();
    out.push(("changefeed", s, format!("{} {summary:?}", feed["count"])));
    let ts_sha = c.get(&gun, "timestamp.json").await.bytes().await.unwrap();
    let want: String = FileMeta::of_bytes(&ts_sha)
        .hashes
        .sha256()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(recs.last().unwrap()["SHA256"], want.as_str(), "{url}");
    rec!("DELETE", raw(c.http.delete(format!("{base}/tuf/"))).await);
    rec!(
        "GET after delete",
        raw(c.http.get(format!("{base}/tuf/root.json"))).await
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_errors_match_notary_server() {
    if !have("notary-server") {
        eprintln!("SKIP: notary-server (Debian package `notary`) is not installed");
        return;
    }
    let mut ns = start_notary_server().await;
    let reg = support::spawn().await;
    let theirs = probe(&ns.url, &ns.host).await;
    let ours = probe(&reg.url, &reg.host).await;
    let _ = ns.child.kill().await;
    let mut diffs = Vec::new();
    for (t, o) in theirs.iter().zip(&ours) {
        eprintln!(
            "{}: notary-server {} {} | bay {} {}",
            t.0, t.1, t.2, o.1, o.2
        );
        if t != o {
            diffs.push(t.0);
        }
    }
    assert!(diffs.is_empty(), "differ: {diffs:?}");
}

/// `/_notary_server/health` as notary-server answers it: `GET` is 200 `{}`
/// (JSON), `HEAD` and `POST` are the catch-all 404 `METADATA_NOT_FOUND`
/// without detail. Compared with the real notary-server when installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notary_health_answers_like_notary_server() {
    async fn health(url: &str) -> Vec<(u16, String, String)> {
        let http = reqwest::Client::new();
        let mut out = Vec::new();
        for m in [
            reqwest::Method::GET,
            reqwest::Method::HEAD,
            reqwest::Method::POST,
        ] {
            let r = http
                .request(m, format!("{url}/_notary_server/health"))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            // Go's JSON encoder ends error bodies with a newline; the JSON is
            // what clients read.
            out.push((status, ct, r.text().await.unwrap().trim_end().to_owned()));
        }
        out
    }
    let reg = support::spawn().await;
    let ours = health(&reg.url).await;
    assert_eq!(
        ours[0],
        (200, "application/json; charset=utf-8".into(), "{}".into())
    );
    assert_eq!(ours[1].0, 404);
    assert_eq!(
        ours[2],
        (
            404,
            "application/json; charset=utf-8".into(),
            r#"{"errors":[{"code":"METADATA_NOT_FOUND","message":"You have requested metadata that does not exist."}]}"#.into()
        )
    );
    if !have("notary-server") {
        eprintln!("SKIP comparison: notary-server (Debian package `notary`) is not installed");
        return;
    }
    let mut ns = start_notary_server().await;
    let theirs = health(&ns.url).await;
    let _ = ns.child.kill().await;
    assert_eq!(ours, theirs);
}
