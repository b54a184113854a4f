//! Interop with Debian's notary 0.7: the notary CLI publishes through a real
//! notary-server (memory storage, TLS with a throwaway CA) and we verify what it serves; metadata made by our editor
//! is uploaded to notary-server, which must accept it, and `notary list`
//! must read it. Skips (with a message) when notary/notary-server are not
//! installed.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bay_signer::cert::{default_cert_validity, generate_root_certificate};
use bay_signer::editor::{NewRepoKeys, RepoEditor, SignedRole};
use bay_signer::key::{KeyAlgorithm, PrivateKey, PublicKey, Sign};
use bay_signer::keystore::decrypt_notary_pem;
use bay_signer::names::{Gun, RoleName};
use bay_signer::schema::FileMeta;
use bay_signer::verify::{TrustedRepo, VerifyOptions};
use chrono::Utc;
use sha2::{Digest as _, Sha256};

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// A notary-server child process over TLS, killed (by its own handle) on drop.
struct Server {
    child: Child,
    url: String,
    host: String,
    ca: PathBuf,
    http: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

/// A throwaway CA and a serverAuth leaf for 127.0.0.1/localhost.
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "bay test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "notary-server");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let paths = (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf_cert.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    paths
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let (ca, cert, key) = tls_files(dir.path());
    let config = serde_json::json!({
        "server": {"http_addr": host, "tls_cert_file": cert, "tls_key_file": key},
        "trust_service": {"type": "local"},
        "logging": {"level": "info"},
        "storage": {"backend": "memory"}
    });
    let cfg = dir.path().join("server.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = Command::new("notary-server")
        .arg("-config")
        .arg(&cfg)
        .arg("-logf")
        .arg("logfmt")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let url = format!("https://{host}");
    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = http.get(format!("{url}/_notary_server/health")).send()
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "notary-server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        url,
        host,
        ca,
        http,
        _dir: dir,
    }
}

fn notary(server: &Server, trust_dir: &Path, args: &[&str]) -> String {
    let (ok, text) = notary_raw(server, trust_dir, args);
    if !ok {
        let mut debug = vec!["-D"];
        debug.extend_from_slice(args);
        let (_, again) = notary_raw(server, trust_dir, &debug);
        let log =
            std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log
            .lines()
            .filter(|l| {
                !l.contains("response completed")
                    && !l.contains("404 GET")
                    && !l.contains("metadata not found")
            })
            .rev()
            .take(15)
            .collect();
        let debug_tail: Vec<&str> = again.lines().rev().take(12).collect();
        panic!(
            "notary {args:?} failed: {text}\n--- with -D (last lines):\n{}\n--- server log (last lines):\n{}",
            debug_tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    text
}

fn notary_raw(server: &Server, trust_dir: &Path, args: &[&str]) -> (bool, String) {
    notary_with_stdin(server, trust_dir, args, b"")
}

fn notary_with_stdin(
    server: &Server,
    trust_dir: &Path,
    args: &[&str],
    input: &[u8],
) -> (bool, String) {
    use std::io::Write as _;
    let mut child = Command::new("notary")
        .arg("-s")
        .arg(&server.url)
        .arg("--tlscacert")
        .arg(&server.ca)
        .arg("-d")
        .arg(trust_dir)
        .args(args)
        .env("NOTARY_ROOT_PASSPHRASE", "root-pass")
        .env("NOTARY_TARGETS_PASSPHRASE", "targets-pass")
        .env("NOTARY_SNAPSHOT_PASSPHRASE", "snapshot-pass")
        .env("NOTARY_DELEGATION_PASSPHRASE", "delegation-pass")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn get(server: &Server, gun: &str, file: &str) -> Vec<u8> {
    let r = server
        .http
        .get(format!("{}/v2/{gun}/_trust/tuf/{file}", server.url))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "GET {file}: {}", r.status());
    r.bytes().unwrap().to_vec()
}

/// Fetches a repository the way the notary client does (timestamp, then
/// snapshot and targets by checksum) and verifies it with TOFU on root.json.
fn fetch_and_verify(server: &Server, gun: &Gun) -> TrustedRepo {
    let g = gun.as_str();
    let root = get(server, g, "root.json");
    let mut repo = TrustedRepo::new(gun.clone(), &root, VerifyOptions::default()).unwrap();
    repo.update_timestamp(&get(server, g, "timestamp.json"))
        .unwrap();
    let snap_hex = hex::encode(
        repo.timestamp().unwrap().signed.meta["snapshot"]
            .hashes
            .sha256()
            .unwrap(),
    );
    repo.update_snapshot(&get(server, g, &format!("snapshot.{snap_hex}.json")))
        .unwrap();
    assert!(!repo.needs_root_update());
    let targets_hex = hex::encode(
        repo.snapshot().unwrap().signed.meta["targets"]
            .hashes
            .sha256()
            .unwrap(),
    );
    repo.update_targets(&get(server, g, &format!("targets.{targets_hex}.json")))
        .unwrap();
    loop {
        let todo = repo.delegations_to_fetch();
        if todo.is_empty() {
            break;
        }
        for (role, meta) in todo {
            let hex = hex::encode(meta.hashes.sha256().unwrap());
            repo.update_delegation(&role, &get(server, g, &format!("{role}.{hex}.json")))
                .unwrap();
        }
    }
    repo
}

fn upload(server: &Server, gun: &Gun, roles: &[SignedRole]) -> reqwest::blocking::Response {
    let mut form = reqwest::blocking::multipart::Form::new();
    for r in roles {
        let part = reqwest::blocking::multipart::Part::bytes(r.bytes.clone())
            .file_name(r.role.as_str().to_owned())
            .mime_str("application/octet-stream")
            .unwrap();
        form = form.part("files", part);
    }
    server
        .http
        .post(format!("{}/v2/{}/_trust/tuf/", server.url, gun))
        .multipart(form)
        .send()
        .unwrap()
}

fn server_key(server: &Server, gun: &Gun, role: &str) -> PublicKey {
    serde_json::from_slice(&get(server, gun.as_str(), &format!("{role}.key"))).unwrap()
}

fn private_keys(trust_dir: &Path) -> BTreeMap<String, (PathBuf, String)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(trust_dir.join("private")).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let role = text
            .lines()
            .find_map(|l| l.strip_prefix("role: "))
            .unwrap()
            .to_owned();
        out.insert(role, (path, text));
    }
    out
}

fn skip() -> bool {
    if !on_path("notary-server") || !on_path("notary") {
        eprintln!("SKIPPED: notary and notary-server (Debian package `notary`) are not on PATH");
        return true;
    }
    false
}

/// (a) notary CLI → notary-server → our verifier; then our editor signs
/// with the keys notary generated and notary reads the result.
#[test]
fn notary_cli_publication_verifies_and_accepts_our_edit() {
    if skip() {
        return;
    }
    let server = start_server();
    let work = tempfile::tempdir().unwrap();
    let trust = work.path().join("trust");
    let gun = Gun::new(format!("{}/test/notary-made", server.host)).unwrap();
    let g = gun.as_str();
    let payload = work.path().join("payload.txt");
    std::fs::write(&payload, b"hello\n").unwrap();
    let weird = "a<b>&c-é";
    // A delegation whose key is an x509 cert (what `notary delegation add` takes).
    let del_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let del_cert = generate_root_certificate(
        &del_key,
        &Gun::new("releases-signer").unwrap(),
        Utc::now(),
        default_cert_validity(),
    )
    .unwrap();
    let cert_path = work.path().join("releases.crt");
    std::fs::write(&cert_path, del_cert.public_bytes()).unwrap();

    notary(&server, &trust, &["init", "-p", g]);
    notary(
        &server,
        &trust,
        &["add", g, "v1", payload.to_str().unwrap()],
    );
    notary(
        &server,
        &trust,
        &["add", g, weird, payload.to_str().unwrap()],
    );
    notary(
        &server,
        &trust,
        &[
            "delegation",
            "add",
            g,
            "targets/releases",
            cert_path.to_str().unwrap(),
            "--all-paths",
        ],
    );
    notary(&server, &trust, &["publish", g]);

    let repo = fetch_and_verify(&server, &gun);
    let digest: [u8; 32] = Sha256::digest(b"hello\n").into();
    for tag in ["v1", weird] {
        let t = repo
            .lookup(tag)
            .unwrap_or_else(|| panic!("{tag} not found"));
        assert_eq!(t.sha256, digest);
        assert_eq!(t.length, 6);
        assert_eq!(t.role, RoleName::targets());
        assert!(
            t.meta.hashes.sha512().is_some(),
            "notary add writes sha512 too"
        );
    }
    let targets = &repo.targets().unwrap().signed;
    let d = &targets.delegations.roles[0];
    assert_eq!(d.name, RoleName::releases());
    assert_eq!(d.paths, vec![String::new()]);
    assert_eq!(
        targets.delegations.keys[&d.keyids[0]].keytype(),
        bay_signer::key::KeyType::EcdsaX509
    );

    // Key IDs as notary computes them: the private key files are named by
    // canonical ID; root.json lists the root cert under its TUF ID.
    let keys = private_keys(&trust);
    let root = &repo.root().signed;
    let root_id = &root.roles["root"].keyids[0];
    let root_file_id = keys["root"]
        .0
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        root.keys[root_id].canonical_id().unwrap().as_str(),
        root_file_id
    );
    assert_ne!(root_id.as_str(), root_file_id);
    let targets_key = decrypt_notary_pem(&keys["targets"].1, "targets-pass").unwrap();
    assert_eq!(targets_key.gun.as_deref(), Some(g));
    assert_eq!(
        repo.lookup("v1").unwrap().signers,
        vec![targets_key.key.key_id()]
    );
    let snapshot_key = decrypt_notary_pem(&keys["snapshot"].1, "snapshot-pass").unwrap();

    // Edit the notary-made repository with our editor and notary's keys.
    let mut ed = RepoEditor::from_trusted(&repo, Utc::now()).unwrap();
    ed.add_target(
        &RoleName::targets(),
        "v2",
        FileMeta::docker([0xab; 32], 1234),
    )
    .unwrap();
    let out = ed.sign(&[&targets_key.key, &snapshot_key.key]).unwrap();
    assert_eq!(
        out.iter().map(|r| r.role.as_str()).collect::<Vec<_>>(),
        ["targets", "snapshot"]
    );
    let resp = upload(&server, &gun, &out);
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap_or_default());
    let listed = notary(&server, &trust, &["list", g]);
    assert!(
        listed.contains("v2") && listed.contains(&"ab".repeat(32)),
        "{listed}"
    );
    let repo = fetch_and_verify(&server, &gun);
    assert_eq!(repo.lookup("v2").unwrap().length, 1234);
    assert!(repo.lookup("v1").is_some());

    // Notary rotates the snapshot key to the server (root v2) and the root
    // key (root v3, signed by old and new); a client pinned to root v1
    // walks {N}.root.json and verifies the server-made snapshot.
    let pinned = get(&server, g, "1.root.json");
    let versions = repo.versions();
    notary(&server, &trust, &["key", "rotate", g, "snapshot", "-r"]);
    let (ok, text) = notary_with_stdin(&server, &trust, &["key", "rotate", g, "root"], b"yes\n");
    assert!(ok, "{text}");
    notary(
        &server,
        &trust,
        &["add", g, "v3", payload.to_str().unwrap()],
    );
    notary(&server, &trust, &["publish", g]);
    let opts = VerifyOptions {
        previous: Some(versions),
        ..Default::default()
    };
    let mut client = TrustedRepo::new(gun.clone(), &pinned, opts).unwrap();
    client
        .update_timestamp(&get(&server, g, "timestamp.json"))
        .unwrap();
    let snap_hex = hex::encode(
        client.timestamp().unwrap().signed.meta["snapshot"]
            .hashes
            .sha256()
            .unwrap(),
    );
    // The new snapshot is signed by the server's key, unknown to root v1.
    assert!(
        client
            .update_snapshot(&get(&server, g, &format!("snapshot.{snap_hex}.json")))
            .is_err()
    );
    for n in 2..=3 {
        client
            .update_root(&get(&server, g, &format!("{n}.root.json")))
            .unwrap();
    }
    assert_eq!(client.root().signed.version, 3);
    let new_root_id = &client.root().signed.roles["root"].keyids[0];
    assert_ne!(new_root_id, &repo.root().signed.roles["root"].keyids[0]);
    client
        .update_timestamp(&get(&server, g, "timestamp.json"))
        .unwrap();
    client
        .update_snapshot(&get(&server, g, &format!("snapshot.{snap_hex}.json")))
        .unwrap();
    assert!(!client.needs_root_update());
    let targets_hex = hex::encode(
        client.snapshot().unwrap().signed.meta["targets"]
            .hashes
            .sha256()
            .unwrap(),
    );
    client
        .update_targets(&get(&server, g, &format!("targets.{targets_hex}.json")))
        .unwrap();
    assert_eq!(client.lookup("v3").unwrap().sha256, digest);
    assert_eq!(client.lookup("v2").unwrap().length, 1234);
    // v2 only moved the snapshot key, so root v3 carries a signature by the
    // v1 root key too and a jump from v1 straight to v3 is valid.
    let mut jump = TrustedRepo::new(gun.clone(), &pinned, VerifyOptions::default()).unwrap();
    jump.update_root(&get(&server, g, "3.root.json")).unwrap();
}

/// (b) A repository made entirely by our editor is accepted by notary-server
/// and read by a fresh notary client; once with a client-held snapshot key,
/// once docker-style with the server making the snapshot.
#[test]
fn our_metadata_is_accepted_by_notary_server_and_listed_by_notary() {
    if skip() {
        return;
    }
    let server = start_server();
    let work = tempfile::tempdir().unwrap();
    for server_snapshot in [false, true] {
        let gun = Gun::new(format!("{}/test/bay-made-{server_snapshot}", server.host)).unwrap();
        let now = Utc::now();
        let root_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let targets_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let snapshot_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let releases_key = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let ts_key = server_key(&server, &gun, "timestamp");
        let snap_pub = if server_snapshot {
            server_key(&server, &gun, "snapshot")
        } else {
            snapshot_key.public_key().clone()
        };
        let mut ed = RepoEditor::create(
            gun.clone(),
            NewRepoKeys {
                root: generate_root_certificate(&root_key, &gun, now, default_cert_validity())
                    .unwrap(),
                targets: targets_key.public_key().clone(),
                snapshot: snap_pub,
                timestamp: ts_key,
            },
            now,
        )
        .unwrap();
        ed.add_target(
            &RoleName::targets(),
            "v1",
            FileMeta::docker([0x11; 32], 525),
        )
        .unwrap();
        ed.add_delegation(
            &RoleName::releases(),
            &[releases_key.public_key().clone()],
            1,
            vec![String::new()],
        )
        .unwrap();
        ed.add_target(
            &RoleName::releases(),
            "v1",
            FileMeta::docker([0x22; 32], 526),
        )
        .unwrap();
        ed.add_target(
            &RoleName::releases(),
            "r1",
            FileMeta::docker([0x33; 32], 527),
        )
        .unwrap();
        let out = ed
            .sign(&[&root_key, &targets_key, &snapshot_key, &releases_key])
            .unwrap();
        let names: Vec<&str> = out.iter().map(|r| r.role.as_str()).collect();
        if server_snapshot {
            assert_eq!(names, ["root", "targets", "targets/releases"]);
        } else {
            assert_eq!(names, ["root", "targets", "targets/releases", "snapshot"]);
        }
        let resp = upload(&server, &gun, &out);
        assert_eq!(resp.status(), 200, "{}", resp.text().unwrap_or_default());
        // A fresh notary client (TOFU) lists both roles' targets.
        let trust = work.path().join(format!("fresh-{server_snapshot}"));
        let listed = notary(&server, &trust, &["list", gun.as_str()]);
        // notary lists each name once, the top-level role first.
        assert!(listed.contains(&"11".repeat(32)), "{listed}");
        let r1 = listed
            .lines()
            .find(|l| l.starts_with("r1 "))
            .unwrap_or_default();
        assert!(
            r1.contains(&"33".repeat(32)) && r1.contains("targets/releases"),
            "{listed}"
        );
        // And we read back what the server serves (its timestamp, maybe its snapshot).
        let repo = fetch_and_verify(&server, &gun);
        let t = repo.lookup("v1").unwrap();
        assert_eq!(
            (t.role.clone(), t.sha256, t.length),
            (RoleName::releases(), [0x22; 32], 526)
        );
        assert_eq!(t.signers, vec![releases_key.public_key().key_id()]);

        // A second publish: remove the tag from releases; upload must bump versions.
        let mut ed = RepoEditor::from_trusted(&repo, Utc::now()).unwrap();
        assert!(ed.remove_target(&RoleName::releases(), "v1").unwrap());
        let out = ed
            .sign(&[&targets_key, &snapshot_key, &releases_key])
            .unwrap();
        let resp = upload(&server, &gun, &out);
        assert_eq!(resp.status(), 200, "{}", resp.text().unwrap_or_default());
        let repo = fetch_and_verify(&server, &gun);
        assert_eq!(repo.lookup("v1").unwrap().role, RoleName::targets());

        // Replaying the same upload is refused by the server (version check).
        let resp = upload(&server, &gun, &out);
        assert_eq!(resp.status(), 400);
        assert!(resp.text().unwrap().contains("VERSION"));
    }
}
