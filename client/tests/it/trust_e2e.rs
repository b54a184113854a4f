//! Content trust end to end: `DOCKER_CONTENT_TRUST=1 bay push` signs through
//! bay-registry's Notary endpoints and `DOCKER_CONTENT_TRUST=1 bay pull`
//! verifies; unsigned tags, replaced or tampered manifests, rolled-back
//! trust data and a root by an unknown key are refused, and the same tags
//! pull with trust off.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// bay-registry on a fixed address over a data root we keep, so it can be
/// stopped, its database swapped, and started again under the same GUN.
struct Server {
    child: Option<Child>,
    addr: String,
    root: PathBuf,
}

impl Server {
    fn start(root: &Path, addr: &str) -> Option<Server> {
        let bin = bay_registry_bin().or_else(|| {
            eprintln!("SKIP: bay-registry not built (cargo build -p bay-registry)");
            None
        })?;
        let child = Command::new(bin)
            .args(["serve", "--addr", addr, "--root"])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "bay-registry did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Server {
            child: Some(child),
            addr: addr.to_owned(),
            root: root.to_owned(),
        })
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        let s = Server::start(&self.root, &self.addr).unwrap();
        *self = s;
    }

    /// Copies the metadata database (trust data, tags) aside.
    fn save_db(&self, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(&self.root).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with("registry.db") {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    /// Puts a saved database back (server stopped meanwhile).
    fn restore_db(&mut self, from: &Path) {
        self.stop();
        for e in std::fs::read_dir(&self.root).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().starts_with("registry.db") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), self.root.join(e.file_name())).unwrap();
        }
        self.restart();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", l.local_addr().unwrap().port())
}

/// A bay client with its own data root and `$BAY_HOME` (keys, trust cache).
struct Client {
    bay: Bay,
}

impl Client {
    fn new() -> Client {
        Client { bay: Bay::new() }
    }

    fn home(&self) -> PathBuf {
        self.bay.root.path().join("home")
    }

    fn run(&self, trust: bool, args: &[&str]) -> Output {
        let mut c = self.bay.cmd(args);
        c.env("BAY_HOME", self.home())
            .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-1")
            .env("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", "repo-pass-1");
        if trust {
            c.env("DOCKER_CONTENT_TRUST", "1");
        }
        c.output().unwrap()
    }

    fn ok(&self, trust: bool, args: &[&str]) -> String {
        let o = self.run(trust, args);
        assert!(
            o.status.success(),
            "bay {args:?} (trust {trust}) failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn fails(&self, trust: bool, args: &[&str]) -> String {
        let o = self.run(trust, args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "bay {args:?} (trust {trust}) should fail with 1:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).unwrap()
    }

    /// Imports busybox as `name` with `cmd` (a different cmd: a different image).
    fn image(&self, name: &str, cmd: &str) -> Option<()> {
        let rootfs = busybox_rootfs(self.bay.root.path())?;
        self.ok(
            false,
            &[
                "import",
                "-c",
                &format!(r#"CMD ["{cmd}"]"#),
                rootfs.to_str().unwrap(),
                name,
            ],
        );
        Some(())
    }

    fn keys(&self) -> usize {
        std::fs::read_dir(self.home().join("trust/private"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "key"))
                })
                .count()
            })
            .unwrap_or(0)
    }
}

fn push_digest(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.contains(": digest: "))
        .unwrap_or_else(|| panic!("{out}"));
    line.split_whitespace().nth(2).unwrap().to_owned()
}

fn setup() -> Option<(tempfile::TempDir, Server)> {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &free_addr())?;
    Some((dir, server))
}

/// The acceptance flow: import → tag → signed push → rmi → verified pull;
/// a second tag is signed with the existing keys; pull by digest needs no
/// trust data; an unsigned tag is refused with trust on and pulls with it off.
#[test]
fn signed_push_verified_pull_and_unsigned_tags_refused() {
    let Some((_dir, reg)) = setup() else { return };
    let a = Client::new();
    if a.image("busybox:1", "sh").is_none() {
        return;
    }
    let v1 = format!("{}/team/app:v1", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v1]);
    let signed = push_digest(&a.ok(true, &["push", &v1]));
    assert_eq!(a.keys(), 2, "a root key and the repository's targets key");
    let pinned = a.home().join(format!(
        "trust/tuf/{}/team/app/metadata/root.json",
        reg.addr
    ));
    assert!(pinned.exists(), "the pusher pins its own root");
    a.ok(false, &["rmi", &v1]);
    let out = a.ok(true, &["pull", &v1]);
    assert!(out.contains(&format!("Digest: {signed}")), "{out}");
    let images = a.ok(false, &["images", "--digests"]);
    let row = images
        .lines()
        .find(|l| l.contains("/team/app") && l.contains(" v1 "))
        .unwrap_or_else(|| panic!("no v1 row: {images}"));
    assert!(row.contains(&signed), "{row}");

    // A second signed tag reuses the keys.
    let v2 = format!("{}/team/app:v2", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v2]);
    a.ok(true, &["push", &v2]);
    assert_eq!(a.keys(), 2, "no new keys for a later push");

    // Another client, first use: trusts the root and verifies both tags.
    let b = Client::new();
    let out = b.ok(true, &["pull", &v2]);
    assert!(out.contains(&format!("Digest: {signed}")), "{out}");

    // A tag pushed with trust off, in the signed repository and in a new one.
    let v3 = format!("{}/team/app:v3", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v3]);
    a.ok(true, &["push", "--disable-content-trust", &v3]);
    let e = b.fails(true, &["pull", &v3]);
    eprintln!("refused as expected: {e}");
    assert!(
        e.contains("image is not signed; see `bay trust` or set DOCKER_CONTENT_TRUST=0"),
        "{e}"
    );
    assert!(e.contains("no signed tag v3"), "{e}");
    let plain = format!("{}/team/plain:v1", reg.addr);
    a.ok(false, &["tag", "busybox:1", &plain]);
    a.ok(false, &["push", &plain]);
    let e = b.fails(true, &["pull", &plain]);
    eprintln!("refused as expected: {e}");
    assert!(e.contains("image is not signed"), "{e}");
    b.ok(false, &["pull", &plain]);
    b.ok(true, &["pull", "--disable-content-trust", &v3]);
    // Pull by digest: no trust data needed.
    let c = Client::new();
    c.ok(
        true,
        &["pull", &format!("{}/team/plain@{signed}", reg.addr)],
    );

    // A signing failure fails the push: no passphrase for a new root key.
    let d = Client::new();
    d.image("other:1", "sh").unwrap();
    let v9 = format!("{}/team/new:v9", reg.addr);
    d.ok(false, &["tag", "other:1", &v9]);
    let o = d
        .bay
        .cmd(&["push", &v9])
        .env("BAY_HOME", d.home())
        .env("DOCKER_CONTENT_TRUST", "1")
        .env_remove("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE")
        .env_remove("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("content trust failed") && e.contains("passphrase"),
        "{e}"
    );
}

/// A different manifest pushed to a signed tag with trust off: trust on
/// still gets the signed digest, trust off gets the new one; a signed
/// manifest whose bytes were changed in the registry's storage is refused.
#[test]
fn replaced_and_tampered_manifests() {
    let Some((_dir, mut reg)) = setup() else {
        return;
    };
    let a = Client::new();
    if a.image("busybox:1", "sh").is_none() {
        return;
    }
    a.image("busybox:2", "true").unwrap();
    let v1 = format!("{}/team/app:v1", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v1]);
    let signed = push_digest(&a.ok(true, &["push", &v1]));
    a.ok(false, &["tag", "busybox:2", &v1]);
    let replaced = push_digest(&a.ok(false, &["push", &v1]));
    assert_ne!(signed, replaced);

    let b = Client::new();
    let out = b.ok(true, &["pull", &v1]);
    assert!(out.contains(&format!("Digest: {signed}")), "{out}");
    let c = Client::new();
    let out = c.ok(false, &["pull", &v1]);
    assert!(out.contains(&format!("Digest: {replaced}")), "{out}");

    // Tamper with the signed manifest's bytes in the registry's storage:
    // its row now holds the replaced manifest.
    if !have("/usr/bin/sqlite3") {
        eprintln!("SKIP: tamper step needs /usr/bin/sqlite3 (apt-get install sqlite3)");
        return;
    }
    reg.stop();
    let sql = format!(
        "UPDATE manifests SET content = (SELECT content FROM manifests WHERE digest = '{replaced}'), \
         size = (SELECT size FROM manifests WHERE digest = '{replaced}') WHERE digest = '{signed}';"
    );
    let o = Command::new("/usr/bin/sqlite3")
        .arg(reg.root.join("registry.db"))
        .arg(&sql)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    reg.restart();
    let d = Client::new();
    let e = d.fails(true, &["pull", &v1]);
    eprintln!("refused as expected: {e}");
    assert!(e.contains(&signed), "{e}");
    assert!(e.to_lowercase().contains("digest"), "{e}");
    drop(reg);
}

/// Trust data served older than what the client trusted is a rollback; a
/// root by another key than the pinned one is an unknown key.
#[test]
fn rolled_back_trust_data_and_unknown_root_key() {
    let Some((dir, mut reg)) = setup() else {
        return;
    };
    let a = Client::new();
    if a.image("busybox:1", "sh").is_none() {
        return;
    }
    let empty = dir.path().join("db-empty");
    reg.stop();
    reg.save_db(&empty);
    reg.restart();
    let old = dir.path().join("db-v1");
    let v1 = format!("{}/team/app:v1", reg.addr);
    let v2 = format!("{}/team/app:v2", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v1]);
    a.ok(false, &["tag", "busybox:1", &v2]);
    a.ok(true, &["push", &v1]);
    // Stop to copy a consistent database, then go on.
    reg.stop();
    reg.save_db(&old);
    reg.restart();
    a.ok(true, &["push", &v2]);
    let b = Client::new();
    b.ok(true, &["pull", &v2]);

    // The server goes back to the v1 trust data: b has seen newer.
    reg.restore_db(&old);
    let e = b.fails(true, &["pull", &v1]);
    eprintln!("refused as expected: {e}");
    assert!(e.contains("rolled back"), "{e}");
    // A client that never saw the newer data accepts the older state.
    Client::new().ok(true, &["pull", &v1]);
    b.ok(false, &["pull", &v1]);

    // The trust data is replaced by a repository signed with other keys.
    reg.restore_db(&empty);
    let m = Client::new();
    m.image("busybox:1", "sh").unwrap();
    m.ok(false, &["tag", "busybox:1", &v1]);
    m.ok(true, &["push", &v1]);
    let e = b.fails(true, &["pull", &v1]);
    eprintln!("refused as expected: {e}");
    assert!(e.contains("signed by an unknown key"), "{e}");
    b.ok(false, &["pull", &v1]);
}

/// Runs the notary CLI against the registry's trust endpoints.
fn notary(url: &str, dir: &Path, args: &[&str]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("notary")
        .arg("-s")
        .arg(url)
        .arg("-d")
        .arg(dir)
        .args(args)
        .env("NOTARY_ROOT_PASSPHRASE", "root-pass")
        .env("NOTARY_TARGETS_PASSPHRASE", "targets-pass")
        .env("NOTARY_SNAPSHOT_PASSPHRASE", "snapshot-pass")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `key rotate root` asks for confirmation.
    let _ = child.stdin.take().unwrap().write_all(b"yes\n");
    let o = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "notary {args:?}: {text}");
    text
}

/// A tag signed with the notary CLI (client-held snapshot key) verifies in
/// `bay pull` with trust on; a signed push there without the repository's
/// targets key fails the push.
#[test]
fn tag_signed_by_the_notary_cli_verifies() {
    if !have("/usr/bin/notary") {
        eprintln!("SKIP: notary CLI (Debian package `notary`) is not installed");
        return;
    }
    let Some((dir, reg)) = setup() else { return };
    let a = Client::new();
    if a.image("busybox:1", "sh").is_none() {
        return;
    }
    let v1 = format!("{}/team/notary:v1", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v1]);
    let out = a.ok(false, &["push", &v1]);
    let digest = push_digest(&out);
    let size = out
        .lines()
        .find_map(|l| l.split_once(" size: ").map(|(_, s)| s.trim().to_owned()))
        .unwrap();
    let gun = format!("{}/team/notary", reg.addr);
    let url = format!("http://{}", reg.addr);
    let nd = dir.path().join("notary");
    notary(&url, &nd, &["init", &gun]);
    let hex = digest.strip_prefix("sha256:").unwrap();
    notary(&url, &nd, &["addhash", &gun, "v1", &size, "--sha256", hex]);
    notary(&url, &nd, &["publish", &gun]);

    let b = Client::new();
    let e = b.fails(true, &["pull", &format!("{}/team/notary:v2", reg.addr)]);
    eprintln!("refused as expected: {e}");
    assert!(e.contains("no signed tag v2"), "{e}");
    let out = b.ok(true, &["pull", &v1]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");

    // A root rotated by the owner chains to the root b pinned.
    let pinned = b.home().join(format!("trust/tuf/{gun}/metadata/root.json"));
    let before = std::fs::read(&pinned).unwrap();
    notary(&url, &nd, &["key", "rotate", &gun, "root"]);
    notary(&url, &nd, &["publish", &gun]);
    b.ok(false, &["rmi", &v1]);
    let out = b.ok(true, &["pull", &v1]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(
        std::fs::read(&pinned).unwrap() != before,
        "the rotated root is pinned now"
    );
    // Two more rotations while b is away: b walks 3.root.json, then 4.
    notary(&url, &nd, &["key", "rotate", &gun, "root"]);
    notary(&url, &nd, &["publish", &gun]);
    notary(&url, &nd, &["key", "rotate", &gun, "root"]);
    notary(&url, &nd, &["publish", &gun]);
    b.ok(true, &["pull", &v1]);
    let root: serde_json::Value = serde_json::from_slice(&std::fs::read(&pinned).unwrap()).unwrap();
    assert_eq!(root["signed"]["version"], 4, "{root}");

    let v2 = format!("{}/team/notary:v2", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v2]);
    let e = a.fails(true, &["push", &v2]);
    eprintln!("refused as expected: {e}");
    assert!(e.contains("no targets key"), "{e}");
}

/// Trust data checked at a time past its expiry is refused as expired;
/// checked now, the same data pins the signed digest (library API).
#[test]
fn expired_trust_data_is_refused() {
    use bay_client::reference::ImageRef;
    use bay_client::registry::{ClientOptions, RegistryClient};
    use bay_client::trust::{NotaryTrust, Resolution, TrustError, TrustPolicy};
    use bay_signer::passphrase::FixedPassphrase;

    let Some((_dir, reg)) = setup() else { return };
    let a = Client::new();
    if a.image("busybox:1", "sh").is_none() {
        return;
    }
    let v1 = format!("{}/team/app:v1", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v1]);
    let signed = push_digest(&a.ok(true, &["push", &v1]));

    let home = tempfile::tempdir().unwrap();
    let image = ImageRef::parse(&v1).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = RegistryClient::connect(&reg.addr, ClientOptions::default())
            .await
            .unwrap();
        let pass = std::sync::Arc::new(FixedPassphrase::new("unused"));
        let later = NotaryTrust::new(home.path().join("later"), pass.clone())
            .with_now(chrono::Utc::now() + chrono::Duration::days(3 * 365 + 30));
        match later.resolve(&client, &image).await {
            Err(TrustError::Refused { reason, .. }) => {
                eprintln!("refused as expected: {reason}");
                assert!(reason.contains("is expired"), "{reason}");
            }
            other => panic!("expected an expiry refusal, got {other:?}"),
        }
        let now = NotaryTrust::new(home.path().join("now"), pass);
        assert_eq!(
            now.resolve(&client, &image).await.unwrap(),
            Resolution::Pinned(oci_types::Digest::parse(&signed).unwrap())
        );
    });
}

/// With a `targets/releases` delegation (added like `docker trust signer
/// add`), a signed push by a holder of the delegation key signs through
/// `targets/releases`, and a fresh client verifies the tag from there.
#[test]
fn signed_pushes_go_through_targets_releases() {
    use bay_client::reference::ImageRef;
    use bay_client::registry::{ClientOptions, RegistryClient};
    use bay_client::trust::NotaryTrust;
    use bay_signer::passphrase::EnvPassphrase;

    let Some((_dir, reg)) = setup() else { return };
    let a = Client::new();
    if a.image("busybox:1", "sh").is_none() {
        return;
    }
    a.image("busybox:2", "true").unwrap();
    let v1 = format!("{}/team/app:v1", reg.addr);
    let v2 = format!("{}/team/app:v2", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v1]);
    a.ok(false, &["tag", "busybox:2", &v2]);
    a.ok(true, &["push", &v1]);

    let lookup = |name: &str| match name {
        "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE" => Some("root-pass-1".to_owned()),
        _ => Some("repo-pass-1".to_owned()),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let key = rt.block_on(async {
        let client = RegistryClient::connect(&reg.addr, ClientOptions::default())
            .await
            .unwrap();
        let policy = NotaryTrust::new(
            a.home().join("trust"),
            std::sync::Arc::new(EnvPassphrase::with_lookup(lookup)),
        );
        policy
            .add_signer(&client, &ImageRef::parse(&v1).unwrap(), "alice")
            .await
            .unwrap()
    });
    assert_eq!(a.keys(), 3, "root, targets and alice's delegation key");

    let signed = push_digest(&a.ok(true, &["push", &v2]));
    let meta = a
        .home()
        .join(format!("trust/tuf/{}/team/app/metadata", reg.addr));
    let releases = std::fs::read_to_string(meta.join("targets/releases.json")).unwrap();
    assert!(releases.contains("\"v2\""), "{releases}");
    assert!(releases.contains(key.key_id().as_str()), "signed by alice");
    let targets = std::fs::read_to_string(meta.join("targets.json")).unwrap();
    assert!(!targets.contains("\"v2\""), "v2 went to targets/releases");

    let b = Client::new();
    let out = b.ok(true, &["pull", &v2]);
    assert!(out.contains(&format!("Digest: {signed}")), "{out}");
    b.ok(true, &["pull", &v1]);
}

/// On a terminal (a pty from `script`) and without the passphrase
/// variables, the first signed push asks for each new key's passphrase
/// twice (retrying on a mismatch) and the keys are sealed with them.
#[test]
fn first_signed_push_prompts_for_new_passphrases_twice() {
    use bay_signer::keystore::{KeyRole, KeySource, KeyStore};
    use bay_signer::passphrase::FixedPassphrase;
    use std::io::{Read as _, Write as _};

    if !have("/usr/bin/script") {
        eprintln!("SKIP: script(1) missing (util-linux)");
        return;
    }
    let Some((_dir, reg)) = setup() else { return };
    let a = Client::new();
    if a.image("busybox:1", "sh").is_none() {
        return;
    }
    let v1 = format!("{}/team/app:v1", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v1]);
    let line = format!("'{}' push '{v1}'", env!("CARGO_BIN_EXE_bay"));
    let mut child = Command::new("/usr/bin/script")
        .args(["-qec", &line, "/dev/null"])
        .env("BAY_HOME", a.home())
        .env("BAY_DATA_ROOT", a.bay.data_root())
        .env("DOCKER_CONTENT_TRUST", "1")
        .env_remove("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE")
        .env_remove("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let mut pipe = child.stdin.take().unwrap();
    let answers = [
        ("Enter passphrase for new root key", "root-pw"),
        ("Repeat passphrase for new root key", "typo"),
        ("Enter passphrase for new root key", "root-pw"),
        ("Repeat passphrase for new root key", "root-pw"),
        ("Enter passphrase for new targets key", "tag-pw"),
        ("Repeat passphrase for new targets key", "tag-pw"),
    ];
    let mut answered: std::collections::HashMap<&str, usize> = Default::default();
    for (prompt, answer) in answers {
        let n = answered.entry(prompt).or_default();
        *n += 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.lock().unwrap().matches(prompt).count() < *n {
            assert!(
                Instant::now() < deadline,
                "no {prompt:?} prompt #{n}: {}",
                seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        let _ = pipe.write_all(format!("{answer}\n").as_bytes());
    }
    drop(pipe);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let out = seen.lock().unwrap().clone();
    assert!(status.success(), "{out}");
    assert!(out.contains("Passphrases do not match"), "{out}");
    assert!(out.contains(": digest: "), "{out}");
    assert!(
        !out.contains("root-pw") && !out.contains("tag-pw"),
        "echoed: {out}"
    );

    // The keys open with the passphrases typed, and the tag verifies.
    let store = KeyStore::open(a.home().join("trust/private")).unwrap();
    for (role, pw) in [(KeyRole::root(), "root-pw"), (KeyRole::targets(), "tag-pw")] {
        let info = store.find(&role, None).unwrap().pop().unwrap();
        store.load(&info.key_id, &FixedPassphrase::new(pw)).unwrap();
    }
    Client::new().ok(true, &["pull", &v1]);
}

/// The acceptance flow against a registry with users: import → tag → login
/// → signed push → rmi → verified pull → images. Trust data goes through the
/// same token flow (GUN scopes) as the images.
#[test]
fn signed_push_and_pull_with_a_login() {
    use std::io::Write as _;
    let Some(bin) = bay_registry_bin() else {
        eprintln!("SKIP: bay-registry not built (cargo build -p bay-registry)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    for args in [
        &["user", "add", "alice", "--password-stdin"][..],
        &[
            "acl",
            "add",
            "--user",
            "alice",
            "--repo",
            "team/**",
            "--actions",
            "pull,push",
        ][..],
    ] {
        let mut child = Command::new(&bin)
            .args(args)
            .arg("--root")
            .arg(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"alice-pass-1")
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let Some(reg) = Server::start(&root, &free_addr()) else {
        return;
    };
    let a = Client::new();
    if a.image("busybox:1", "sh").is_none() {
        return;
    }
    let v1 = format!("{}/team/app:v1", reg.addr);
    a.ok(false, &["tag", "busybox:1", &v1]);
    // Not logged in: the trust server is as closed as the registry.
    let e = a.fails(true, &["push", &v1]);
    eprintln!("refused as expected: {e}");
    assert!(e.contains("unauthorized"), "{e}");
    let mut login = a
        .bay
        .cmd(&["login", "-u", "alice", "--password-stdin", &reg.addr]);
    let mut child = login
        .env("BAY_HOME", a.home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"alice-pass-1\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let signed = push_digest(&a.ok(true, &["push", &v1]));
    a.ok(false, &["rmi", &v1]);
    let out = a.ok(true, &["pull", &v1]);
    assert!(out.contains(&format!("Digest: {signed}")), "{out}");
    let images = a.ok(false, &["images", "--digests"]);
    assert!(images.contains(&signed), "{images}");
}
