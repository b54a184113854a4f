//! `bay trust …` against bay-registry, and against the real docker CLI 28
//! (client only: no daemon) over TLS: what either writes, the other reads
//! identically; `signer remove` really removes (docker ≥ 26 does not);
//! pinned roots override trust on first use; `DOCKER_CONTENT_TRUST_SERVER`
//! moves all trust traffic to another server.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::*;

const ROOT_PASS: &str = "root-pass-1";
const REPO_PASS: &str = "repo-pass-1";

/// One user's machine: a bay with `$BAY_HOME`, and docker with `$HOME`
/// and `$DOCKER_CONFIG` in the same temp dir.
struct Machine {
    bay: Bay,
}

impl Machine {
    fn new() -> Machine {
        Machine { bay: Bay::new() }
    }

    fn dir(&self) -> &Path {
        self.bay.root.path()
    }

    fn bay_home(&self) -> PathBuf {
        self.dir().join("bayhome")
    }

    fn home(&self) -> PathBuf {
        self.dir().join("home")
    }

    /// Trusts `ca` for `addr` on both clients.
    fn trust_ca(&self, addr: &str, ca: &Path) {
        for d in [
            self.bay_home().join("certs.d").join(addr),
            self.home().join(".docker/tls").join(addr),
        ] {
            std::fs::create_dir_all(&d).unwrap();
            std::fs::copy(ca, d.join("ca.crt")).unwrap();
        }
    }

    fn bay_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.bay.cmd(args);
        c.env("BAY_HOME", self.bay_home())
            .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASS)
            .env("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", REPO_PASS)
            .env_remove("DOCKER_CONTENT_TRUST_SERVER")
            .current_dir(self.dir());
        c
    }

    fn bay(&self, args: &[&str]) -> Output {
        self.bay_cmd(args).output().unwrap()
    }

    fn bay_ok(&self, args: &[&str]) -> String {
        ok(self.bay(args), "bay", args)
    }

    fn bay_fails(&self, args: &[&str]) -> String {
        fails(self.bay(args), "bay", args)
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(docker_bin().unwrap())
            .args(args)
            .env("HOME", self.home())
            .env("DOCKER_CONFIG", self.home().join(".docker"))
            .env("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", ROOT_PASS)
            .env("DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", REPO_PASS)
            .env_remove("DOCKER_CONTENT_TRUST")
            .env_remove("DOCKER_CONTENT_TRUST_SERVER")
            .env_remove("DOCKER_HOST")
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        ok(self.docker(args), "docker", args)
    }

    /// A busybox image pushed as `remote` (trust off).
    fn pushed(&self, remote: &str) -> Option<()> {
        let rootfs = busybox_rootfs(self.dir())?;
        self.bay_ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
        self.bay_ok(&["tag", "bb:1", remote]);
        self.bay_ok(&["push", remote]);
        Some(())
    }
}

fn ok(o: Output, tool: &str, args: &[&str]) -> String {
    assert!(
        o.status.success(),
        "{tool} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn fails(o: Output, tool: &str, args: &[&str]) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{tool} {args:?} should fail:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stderr).unwrap()
}

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `ca.crt` and a server certificate `srv.crt`/`srv.key` for 127.0.0.1.
fn make_certs(dir: &Path) -> bool {
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let cmd = |s: String| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let run = |v: Vec<String>| openssl(dir, &v.iter().map(String::as_str).collect::<Vec<_>>());
    run(cmd(format!(
        "req -x509 {ec} -keyout ca.key -out ca.crt -subj /CN=bay-test-CA -days 2"
    ))) && run(cmd(format!(
        "req {ec} -keyout srv.key -out srv.csr -subj /CN=127.0.0.1"
    ))) && run(cmd(
        "x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext.cnf".to_owned(),
    ))
}

/// bay-registry over TLS with a fresh CA, or None (skip).
fn tls_registry(certs: &Path) -> Option<Registry> {
    if !make_certs(certs) {
        eprintln!("SKIP: openssl could not make test certificates");
        return None;
    }
    bay_registry_with(&[
        "--tls-cert",
        certs.join("srv.crt").to_str().unwrap(),
        "--tls-key",
        certs.join("srv.key").to_str().unwrap(),
    ])
}

/// The docker CLI: `$BAY_TEST_DOCKER`, else `docker` from `/usr/bin`,
/// `/usr/local/bin` or `$PATH`; only a version that still has `docker
/// trust` (≤ 28; 29 moved it to a plugin).
fn docker_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("BAY_TEST_DOCKER")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push(PathBuf::from("/usr/bin/docker"));
    candidates.push(PathBuf::from("/usr/local/bin/docker"));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("docker")));
    }
    let bin = candidates.into_iter().find(|p| p.is_file())?;
    let out = Command::new(&bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "Docker version 28.2.2, build e6534b4"
    let major: u32 = text
        .split_whitespace()
        .nth(2)?
        .split('.')
        .next()?
        .parse()
        .ok()?;
    (major <= 28).then_some(bin)
}

fn have_docker() -> bool {
    if docker_bin().is_none() {
        eprintln!(
            "SKIP: no docker CLI <= 28 with `docker trust` (looked in /usr/bin, /usr/local/bin, $PATH; or set BAY_TEST_DOCKER)"
        );
        return false;
    }
    true
}

/// Sorts the arrays docker fills in map order, so two reports compare by
/// content.
fn normalized(json: &str) -> Value {
    let mut v: Value = serde_json::from_str(json).unwrap();
    for repo in v.as_array_mut().unwrap() {
        for field in ["Signers", "AdministrativeKeys"] {
            if let Some(list) = repo[field].as_array_mut() {
                for s in list.iter_mut() {
                    if let Some(keys) = s["Keys"].as_array_mut() {
                        keys.sort_by_key(|k| k["ID"].as_str().unwrap_or("").to_owned());
                    }
                }
            }
        }
        for t in repo["SignedTags"].as_array_mut().into_iter().flatten() {
            if let Some(s) = t["Signers"].as_array_mut() {
                s.sort_by_key(|x| x.as_str().unwrap_or("").to_owned());
            }
        }
    }
    v
}

/// docker and bay report `remote` identically, in JSON and `--pretty`.
fn same_report(m: &Machine, remote: &str) -> Value {
    let d = m.docker_ok(&["trust", "inspect", remote]);
    let b = m.bay_ok(&["trust", "inspect", remote]);
    assert_eq!(normalized(&b), normalized(&d), "bay:\n{b}\ndocker:\n{d}");
    let dp = m.docker_ok(&["trust", "inspect", "--pretty", remote]);
    let bp = m.bay_ok(&["trust", "inspect", "--pretty", remote]);
    assert_eq!(bp, dp, "--pretty differs");
    normalized(&d)
}

fn signers(report: &Value) -> Vec<String> {
    report[0]["Signers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap().to_owned())
        .collect()
}

fn signed_tags(report: &Value) -> Vec<(String, Vec<String>)> {
    report[0]["SignedTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["SignedTag"].as_str().unwrap().to_owned(),
                t["Signers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// The private key file docker keeps for a role header value.
fn docker_key(m: &Machine, role: &str) -> PathBuf {
    let dir = m.home().join(".docker/trust/private");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .any(|l| l == format!("role: {role}"))
        })
        .unwrap_or_else(|| panic!("no docker key with role {role} in {}", dir.display()))
}

/// docker writes, bay reads and signs, docker revokes; then bay writes and
/// docker reads. Every step is compared between the two CLIs.
#[test]
fn docker_cli_and_bay_trust_interoperate_over_tls() {
    if !have_docker() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let Some(reg) = tls_registry(certs.path()) else {
        return;
    };
    let m = Machine::new();
    m.trust_ca(&reg.addr, &certs.path().join("ca.crt"));

    // docker initializes a repository by adding a signer (no daemon needed).
    let dk = format!("{}/dk/app", reg.addr);
    let out = m.docker_ok(&["trust", "key", "generate", "alice"]);
    assert!(out.contains("Successfully generated"), "{out}");
    let out = m.docker_ok(&["trust", "signer", "add", "--key", "alice.pub", "alice", &dk]);
    assert!(out.contains("Successfully initialized"), "{out}");
    let r = same_report(&m, &dk);
    assert_eq!(signers(&r), ["alice"]);
    assert!(signed_tags(&r).is_empty());

    // bay signs a pushed tag with docker's alice key (loaded from docker's
    // key file): it lands in targets/releases and targets/alice.
    if m.pushed(&format!("{dk}:v1")).is_none() {
        return;
    }
    let alice_key = docker_key(&m, "alice");
    let out = m.bay_ok(&[
        "trust",
        "key",
        "load",
        "--name",
        "alice",
        alice_key.to_str().unwrap(),
    ]);
    assert!(out.contains("Successfully imported key"), "{out}");
    let out = m.bay_ok(&["trust", "sign", &format!("{dk}:v1")]);
    assert!(
        out.contains(&format!("Successfully signed {dk}:v1")),
        "{out}"
    );
    let r = same_report(&m, &format!("{dk}:v1"));
    assert_eq!(
        signed_tags(&r),
        [("v1".to_owned(), vec!["alice".to_owned()])]
    );
    let digest = r[0]["SignedTags"][0]["Digest"].as_str().unwrap().to_owned();
    let manifest = m.bay_ok(&["inspect", "-f", "{{.Descriptor.digest}}", "bb:1"]);
    assert_eq!(manifest.trim(), format!("sha256:{digest}"));
    // A verified pull goes through what bay signed.
    let o = m
        .bay_cmd(&["pull", &format!("{dk}:v1")])
        .env("DOCKER_CONTENT_TRUST", "1")
        .output()
        .unwrap();
    ok(o, "bay", &["pull (trusted)"]);

    // docker revokes what bay signed.
    let out = m.docker_ok(&["trust", "revoke", "-y", &format!("{dk}:v1")]);
    assert!(out.contains("Successfully deleted signature"), "{out}");
    let r = same_report(&m, &dk);
    assert!(signed_tags(&r).is_empty());

    // docker ≥ 26 `signer remove -f` does nothing; bay's removes, once it
    // holds docker's repository key.
    m.docker_ok(&["trust", "signer", "remove", "-f", "alice", &dk]);
    assert_eq!(
        signers(&same_report(&m, &dk)),
        ["alice"],
        "docker removed it after all"
    );
    let repo_key = docker_key(&m, "targets");
    m.bay_ok(&[
        "trust",
        "key",
        "load",
        "--name",
        "targets",
        repo_key.to_str().unwrap(),
    ]);
    let out = m.bay_ok(&["trust", "signer", "remove", "alice", &dk]);
    assert!(
        out.contains(&format!("Successfully removed alice from {dk}")),
        "{out}"
    );
    assert!(signers(&same_report(&m, &dk)).is_empty());

    // A signer given as an X.509 certificate (docker's ecdsa-x509 key, shown
    // by its canonical ID); bay signs with its key made by openssl.
    let carol = [
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout carol.plain -out carol.crt -subj /CN=carol -days 2",
        &format!(
            "pkcs8 -topk8 -in carol.plain -out carol.key -v2 aes-256-cbc -v2prf hmacWithSHA1 -passout pass:{REPO_PASS}"
        ),
    ];
    for cmd in carol {
        assert!(
            openssl(m.dir(), &cmd.split_whitespace().collect::<Vec<_>>()),
            "openssl {cmd}"
        );
    }
    use std::os::unix::fs::PermissionsExt as _;
    let carol_key = m.dir().join("carol.key");
    std::fs::set_permissions(&carol_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    m.docker_ok(&["trust", "signer", "add", "--key", "carol.crt", "carol", &dk]);
    assert_eq!(signers(&same_report(&m, &dk)), ["carol"]);
    m.bay_ok(&["trust", "key", "load", "--name", "carol", "carol.key"]);
    m.bay_ok(&["trust", "sign", &format!("{dk}:v1")]);
    let r = same_report(&m, &dk);
    assert_eq!(
        signed_tags(&r),
        [("v1".to_owned(), vec!["carol".to_owned()])]
    );

    // bay initializes a repository with a signer of its own; docker reads it.
    let by = format!("{}/bay/app", reg.addr);
    m.bay_ok(&["trust", "key", "generate", "bob"]);
    let pem = std::fs::read_to_string(m.dir().join("bob.pub")).unwrap();
    assert!(
        pem.starts_with("-----BEGIN PUBLIC KEY-----\nrole: bob\n\n"),
        "{pem}"
    );
    let out = m.bay_ok(&["trust", "signer", "add", "--key", "bob.pub", "bob", &by]);
    assert!(out.contains("Successfully initialized"), "{out}");
    // docker adds its own signer's key file to bay's repository? It would
    // need bay's repository key, so only bay edits it from here on.
    m.bay_ok(&["tag", "bb:1", &format!("{by}:v1")]);
    m.bay_ok(&["push", &format!("{by}:v1")]);
    m.bay_ok(&["trust", "sign", &format!("{by}:v1")]);
    m.bay_ok(&["tag", "bb:1", &format!("{by}:v10")]);
    m.bay_ok(&["push", &format!("{by}:v10")]);
    m.bay_ok(&["trust", "sign", &format!("{by}:v10")]);
    // The second signer is docker's alice key.
    m.bay_ok(&["trust", "signer", "add", "--key", "alice.pub", "alice", &by]);
    m.bay_ok(&["trust", "sign", &format!("{by}:v1")]);
    // And carol by certificate, added by bay this time.
    m.bay_ok(&["trust", "signer", "add", "--key", "carol.crt", "carol", &by]);
    let r = same_report(&m, &by);
    assert_eq!(signers(&r), ["carol", "bob", "alice"]);
    m.bay_ok(&["trust", "signer", "remove", "-f", "carol", &by]);
    let r = same_report(&m, &by);
    assert_eq!(signers(&r), ["bob", "alice"]);
    assert_eq!(
        signed_tags(&r),
        [
            ("v1".to_owned(), vec!["alice".to_owned(), "bob".to_owned()]),
            ("v10".to_owned(), vec!["bob".to_owned()]),
        ]
    );
    // docker revokes with alice's key; v1 is still released by bob's.
    m.docker_ok(&["trust", "revoke", "-y", &format!("{by}:v1")]);
    // bay removes bob; docker sees bob gone.
    m.bay_ok(&["trust", "signer", "remove", "-f", "bob", &by]);
    let r = same_report(&m, &by);
    assert_eq!(signers(&r), ["alice"]);
}

/// Same interop with a registry that has users: `docker login` stores a
/// token, and docker's trust traffic rides the registry's /token flow.
#[test]
fn docker_cli_trust_with_a_login() {
    if !have_docker() {
        return;
    }
    let Some(bin) = bay_registry_bin() else {
        eprintln!("SKIP: bay-registry not built (cargo build -p bay-registry)");
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    if !make_certs(certs.path()) {
        eprintln!("SKIP: openssl could not make test certificates");
        return;
    }
    let root = certs.path().join("data");
    for args in [
        &["user", "add", "carol", "--password-stdin"][..],
        &[
            "acl",
            "add",
            "--user",
            "carol",
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
            .write_all(b"carol-pass-1")
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let reg = Served::start(
        &bin,
        &root,
        &[
            "--tls-cert",
            certs.path().join("srv.crt").to_str().unwrap(),
            "--tls-key",
            certs.path().join("srv.key").to_str().unwrap(),
        ],
    );
    let m = Machine::new();
    m.trust_ca(&reg.addr, &certs.path().join("ca.crt"));
    let repo = format!("{}/team/app", reg.addr);
    m.docker_ok(&["trust", "key", "generate", "alice"]);
    // Anonymous: refused like the registry itself.
    let o = m.docker(&[
        "trust",
        "signer",
        "add",
        "--key",
        "alice.pub",
        "alice",
        &repo,
    ]);
    assert!(!o.status.success(), "anonymous signer add must fail");
    let mut login = Command::new(docker_bin().unwrap())
        .args(["login", "-u", "carol", "--password-stdin", &reg.addr])
        .env("HOME", m.home())
        .env("DOCKER_CONFIG", m.home().join(".docker"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(b"carol-pass-1\n")
        .unwrap();
    let o = login.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    m.docker_ok(&[
        "trust",
        "signer",
        "add",
        "--key",
        "alice.pub",
        "alice",
        &repo,
    ]);
    // bay reads it with docker's stored login (it falls back to docker's config).
    let o = m
        .bay_cmd(&["trust", "inspect", &repo])
        .env("DOCKER_CONFIG", m.home().join(".docker"))
        .output()
        .unwrap();
    let b = ok(o, "bay", &["trust", "inspect"]);
    let d = m.docker_ok(&["trust", "inspect", &repo]);
    assert_eq!(normalized(&b), normalized(&d));
}

/// bay-registry over an existing data root (users already added), killed on drop.
struct Served {
    child: std::process::Child,
    addr: String,
}

impl Served {
    fn start(bin: &Path, root: &Path, extra: &[&str]) -> Served {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("127.0.0.1:{}", l.local_addr().unwrap().port())
        };
        let child = Command::new(bin)
            .args(["serve", "--addr", &addr, "--root"])
            .arg(root)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "bay-registry did not come up"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Served { child, addr }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plain-HTTP loopback registry and a bay machine with an image pushed.
fn local_setup(repo: &str) -> Option<(Registry, Machine, String)> {
    let reg = bay_registry()?;
    let m = Machine::new();
    let remote = format!("{}/{repo}", reg.addr);
    m.pushed(&format!("{remote}:v1"))?;
    Some((reg, m, remote))
}

fn raw_targets(addr: &str, repo: &str) -> Value {
    let o = Command::new("curl")
        .args([
            "-sf",
            &format!("http://{addr}/v2/{repo}/_trust/tuf/targets.json"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "GET targets.json of {repo} on {addr}");
    serde_json::from_slice(&o.stdout).unwrap()
}

fn trust_status(addr: &str, gun: &str) -> String {
    let o = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{addr}/v2/{gun}/_trust/tuf/root.json"),
        ])
        .output()
        .unwrap();
    String::from_utf8(o.stdout).unwrap()
}

/// `signer remove` takes the delegation and its keys out of targets and
/// targets/releases; the last signer of the releases needs confirmation.
#[test]
fn signer_remove_really_removes_the_delegation_and_its_keys() {
    let Some((reg, m, remote)) = local_setup("rm/app") else {
        return;
    };
    for who in ["alice", "bob"] {
        m.bay_ok(&["trust", "key", "generate", who]);
        let k = format!("{who}.pub");
        m.bay_ok(&["trust", "signer", "add", "--key", &k, who, &remote]);
    }
    m.bay_ok(&["trust", "sign", &format!("{remote}:v1")]);
    let names = |t: &Value| -> Vec<String> {
        let mut v: Vec<String> = t["signed"]["delegations"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let gun_repo = format!("{}/rm/app", reg.addr);
    let before = raw_targets(&reg.addr, &gun_repo);
    assert_eq!(
        names(&before),
        ["targets/alice", "targets/bob", "targets/releases"]
    );
    assert_eq!(
        before["signed"]["delegations"]["keys"]
            .as_object()
            .unwrap()
            .len(),
        2
    );

    let out = m.bay_ok(&["trust", "signer", "remove", "bob", &remote]);
    assert!(out.contains("Successfully removed bob"), "{out}");
    let after = raw_targets(&reg.addr, &gun_repo);
    assert_eq!(names(&after), ["targets/alice", "targets/releases"]);
    let keys = after["signed"]["delegations"]["keys"].as_object().unwrap();
    assert_eq!(keys.len(), 1, "bob's key left the delegations: {keys:?}");
    let releases = after["signed"]["delegations"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "targets/releases")
        .unwrap()
        .clone();
    let alice = after["signed"]["delegations"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "targets/alice")
        .unwrap()["keyids"]
        .clone();
    assert_eq!(releases["keyids"], alice, "releases holds only alice's key");
    let report: Value = serde_json::from_str(&m.bay_ok(&["trust", "inspect", &remote])).unwrap();
    assert_eq!(signers(&report), ["alice"]);
    // Still pullable through alice's signature of releases.
    let o = m
        .bay_cmd(&["pull", &format!("{remote}:v1")])
        .env("DOCKER_CONTENT_TRUST", "1")
        .output()
        .unwrap();
    ok(o, "bay", &["pull (trusted, alice)"]);

    // alice carries the last release signature: declining keeps her.
    let mut child = m
        .bay_cmd(&["trust", "signer", "remove", "alice", &remote])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("signed the last released version") && out.contains("Aborting action."),
        "{out}"
    );
    let report: Value = serde_json::from_str(&m.bay_ok(&["trust", "inspect", &remote])).unwrap();
    assert_eq!(signers(&report), ["alice"]);
    // -f removes her, and targets/releases with her.
    m.bay_ok(&["trust", "signer", "remove", "-f", "alice", &remote]);
    let last = raw_targets(&reg.addr, &gun_repo);
    assert!(names(&last).is_empty(), "{last}");
    assert!(
        last["signed"]["delegations"]["keys"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    // v1 was signed only through releases: no longer signed.
    let o = m
        .bay_cmd(&["pull", &format!("{remote}:v1")])
        .env("DOCKER_CONTENT_TRUST", "1")
        .output()
        .unwrap();
    let e = fails(o, "bay", &["pull (trusted, no signer)"]);
    assert!(e.contains("not signed"), "{e}");
    let e = m.bay_fails(&["trust", "signer", "remove", "alice", &remote]);
    assert!(e.contains("no signer alice for repository"), "{e}");
}

fn write_pins(m: &Machine, json: &Value) {
    let dir = m.bay_home().join("trust");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), json.to_string()).unwrap();
}

/// Pinned root key IDs and root certificates override trust on first use;
/// a mismatch is a hard failure for pulls and for `trust inspect`.
#[test]
fn pinned_roots_override_trust_on_first_use() {
    let Some((reg, publisher, remote)) = local_setup("pin/app") else {
        return;
    };
    let v1 = format!("{remote}:v1");
    let o = publisher
        .bay_cmd(&["push", &v1])
        .env("DOCKER_CONTENT_TRUST", "1")
        .output()
        .unwrap();
    ok(o, "bay", &["push (signed)"]);
    let report: Value =
        serde_json::from_str(&publisher.bay_ok(&["trust", "inspect", &remote])).unwrap();
    let root_id = report[0]["AdministrativeKeys"][0]["Keys"][0]["ID"]
        .as_str()
        .unwrap()
        .to_owned();
    let gun = remote.clone();
    let pull = |m: &Machine| {
        m.bay_cmd(&["pull", &v1])
            .env("DOCKER_CONTENT_TRUST", "1")
            .output()
            .unwrap()
    };

    // A wrong pinned key: refused, with both IDs named.
    let c = Machine::new();
    write_pins(
        &c,
        &serde_json::json!({"trust_pinning": {"certs": {gun.clone(): ["00".repeat(32)]}}}),
    );
    let e = fails(pull(&c), "bay", &["pull (wrong pin)"]);
    assert!(
        e.contains("does not match the pinned root") && e.contains(&root_id),
        "{e}"
    );
    let e = c.bay_fails(&["trust", "inspect", &remote]);
    assert!(e.contains("does not match the pinned root"), "{e}");
    // The right key (docker's displayed ID), pinned for the whole registry.
    write_pins(
        &c,
        &serde_json::json!({"trust_pinning": {"certs": {reg.addr.clone(): [root_id.clone()]}}}),
    );
    ok(pull(&c), "bay", &["pull (right pin)"]);
    // A pin that changes after the root was trusted still decides.
    write_pins(
        &c,
        &serde_json::json!({"trust_pinning": {"certs": {format!("{}/pin/*", reg.addr): ["ab".repeat(32)]}}}),
    );
    let e = fails(pull(&c), "bay", &["pull (pin changed)"]);
    assert!(e.contains("does not match the pinned root"), "{e}");

    // Pinning the root certificate itself (from root.json).
    let root_json = Command::new("curl")
        .args([
            "-sf",
            &format!("http://{}/v2/{gun}/_trust/tuf/root.json", reg.addr),
        ])
        .output()
        .unwrap();
    let root: Value = serde_json::from_slice(&root_json.stdout).unwrap();
    let b64 = root["signed"]["keys"][&root_id]["keyval"]["public"]
        .as_str()
        .unwrap();
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let d = Machine::new();
    let cert = d.dir().join("root.crt");
    std::fs::write(&cert, &pem).unwrap();
    write_pins(
        &d,
        &serde_json::json!({"trust_pinning": {"ca": {gun.clone(): cert}}}),
    );
    ok(pull(&d), "bay", &["pull (pinned cert)"]);
    // Another machine's root certificate does not match.
    let other = Machine::new();
    let other_remote = format!("{}/pin/other", reg.addr);
    other.pushed(&format!("{other_remote}:v1")).unwrap();
    let o = other
        .bay_cmd(&["push", &format!("{other_remote}:v1")])
        .env("DOCKER_CONTENT_TRUST", "1")
        .output()
        .unwrap();
    ok(o, "bay", &["push (other signed)"]);
    let other_root = Command::new("curl")
        .args([
            "-sf",
            &format!("http://{}/v2/{other_remote}/_trust/tuf/root.json", reg.addr),
        ])
        .output()
        .unwrap();
    let other_root: Value = serde_json::from_slice(&other_root.stdout).unwrap();
    let (_, key) = other_root["signed"]["keys"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, k)| k["keytype"] == "ecdsa-x509")
        .unwrap();
    let wrong = d.dir().join("wrong.crt");
    std::fs::write(
        &wrong,
        base64::engine::general_purpose::STANDARD
            .decode(key["keyval"]["public"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let e2 = Machine::new();
    write_pins(
        &e2,
        &serde_json::json!({"trust_pinning": {"ca": {gun.clone(): wrong}}}),
    );
    let e = fails(pull(&e2), "bay", &["pull (wrong cert)"]);
    assert!(e.contains("pinned root certificate"), "{e}");

    // disable_tofu: an unpinned GUN is refused, a pinned one works.
    let f = Machine::new();
    write_pins(
        &f,
        &serde_json::json!({"trust_pinning": {"disable_tofu": true}}),
    );
    let e = fails(pull(&f), "bay", &["pull (no tofu)"]);
    assert!(e.contains("trust on first use is disabled"), "{e}");
    write_pins(
        &f,
        &serde_json::json!({"trust_pinning": {"disable_tofu": true, "certs": {gun: [root_id]}}}),
    );
    ok(pull(&f), "bay", &["pull (no tofu, pinned)"]);
}

/// With `DOCKER_CONTENT_TRUST_SERVER`, signed pushes, verified pulls and
/// the trust commands use that server; the registry gets no trust data.
#[test]
fn docker_content_trust_server_is_honoured() {
    let Some((reg, m, remote)) = local_setup("ts/app") else {
        return;
    };
    let Some(notary) = bay_registry() else {
        return;
    };
    let server = format!("http://{}", notary.addr);
    let v1 = format!("{remote}:v1");
    let with_server = |args: &[&str]| {
        m.bay_cmd(args)
            .env("DOCKER_CONTENT_TRUST_SERVER", &server)
            .env("DOCKER_CONTENT_TRUST", "1")
            .output()
            .unwrap()
    };
    ok(with_server(&["push", &v1]), "bay", &["push (trust server)"]);
    assert_eq!(trust_status(&notary.addr, &remote), "200");
    assert_eq!(trust_status(&reg.addr, &remote), "404");
    // A verified pull from a fresh machine through the trust server.
    let fresh = Machine::new();
    let o = fresh
        .bay_cmd(&["pull", &v1])
        .env("DOCKER_CONTENT_TRUST_SERVER", &server)
        .env("DOCKER_CONTENT_TRUST", "1")
        .output()
        .unwrap();
    ok(o, "bay", &["pull (trust server)"]);
    // Without it, the registry has nothing to verify against.
    let o = Machine::new()
        .bay_cmd(&["pull", &v1])
        .env("DOCKER_CONTENT_TRUST", "1")
        .output()
        .unwrap();
    let e = fails(o, "bay", &["pull (registry only)"]);
    assert!(e.contains("not signed"), "{e}");
    // The trust commands follow the variable too.
    let r: Value = serde_json::from_str(&ok(
        with_server(&["trust", "inspect", &remote]),
        "bay",
        &["trust inspect (trust server)"],
    ))
    .unwrap();
    assert_eq!(
        signed_tags(&r),
        [("v1".to_owned(), vec!["Repo Admin".to_owned()])]
    );
    let e = m.bay_fails(&["trust", "inspect", &remote]);
    assert!(e.contains("no signatures or cannot access"), "{e}");
    m.bay_ok(&["tag", "bb:1", &format!("{remote}:v2")]);
    m.bay_ok(&["push", &format!("{remote}:v2")]);
    ok(
        with_server(&["trust", "sign", &format!("{remote}:v2")]),
        "bay",
        &["trust sign (trust server)"],
    );
    ok(
        with_server(&["trust", "revoke", "-y", &v1]),
        "bay",
        &["trust revoke (trust server)"],
    );
    let r: Value = serde_json::from_str(&ok(
        with_server(&["trust", "inspect", &remote]),
        "bay",
        &["trust inspect (trust server)"],
    ))
    .unwrap();
    assert_eq!(
        signed_tags(&r),
        [("v2".to_owned(), vec!["Repo Admin".to_owned()])]
    );
    assert_eq!(trust_status(&reg.addr, &remote), "404");
    // A malformed value is reported, not ignored.
    let o = m
        .bay_cmd(&["trust", "inspect", &remote])
        .env("DOCKER_CONTENT_TRUST_SERVER", "https://example.com/notary")
        .output()
        .unwrap();
    let e = fails(o, "bay", &["trust inspect (bad server)"]);
    assert!(
        e.contains("DOCKER_CONTENT_TRUST_SERVER") && e.contains("path"),
        "{e}"
    );
}

/// `key generate` and `key load` refuse what docker refuses.
#[test]
fn key_generate_and_load_checks() {
    let m = Machine::new();
    let out = m.bay_ok(&[
        "trust",
        "key",
        "generate",
        "dave",
        "--dir",
        m.dir().to_str().unwrap(),
    ]);
    let pub_file = m.dir().join("dave.pub");
    assert!(out.contains(&format!(
        "Corresponding public key available: {}",
        pub_file.display()
    )));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&pub_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let keys = std::fs::read_dir(m.bay_home().join("trust/private"))
        .unwrap()
        .count();
    assert_eq!(keys, 1, "the private key is in the key store");
    let e = m.bay_fails(&["trust", "key", "generate", "dave"]);
    assert!(e.contains("public key file already exists"), "{e}");
    let e = m.bay_fails(&["trust", "key", "generate", "Dave"]);
    assert!(e.contains("must start with lowercase alphanumeric"), "{e}");
    let e = m.bay_fails(&["trust", "key", "generate", "x", "--dir", "/nonexistent"]);
    assert!(e.contains("public key path does not exist"), "{e}");
    let loose = m.dir().join("loose.key");
    std::fs::write(&loose, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = m.bay_fails(&["trust", "key", "load", loose.to_str().unwrap()]);
    assert!(
        e.contains("must not be readable or writable by others"),
        "{e}"
    );
    let e = m.bay_fails(&[
        "trust",
        "signer",
        "add",
        "--key",
        "dave.pub",
        "releases",
        "127.0.0.1:1/x",
    ]);
    assert!(e.contains("releases is a reserved keyword"), "{e}");
}

/// `revoke` without a tag asks first, then removes every signed tag; what
/// is not signed cannot be revoked.
#[test]
fn revoke_all_asks_for_confirmation() {
    let Some((_reg, m, remote)) = local_setup("rv/app") else {
        return;
    };
    for tag in ["v1", "v2"] {
        let r = format!("{remote}:{tag}");
        m.bay_ok(&["tag", "bb:1", &r]);
        let o = m
            .bay_cmd(&["push", &r])
            .env("DOCKER_CONTENT_TRUST", "1")
            .output()
            .unwrap();
        ok(o, "bay", &["push (signed)"]);
    }
    let tags = |m: &Machine| {
        let r: Value = serde_json::from_str(&m.bay_ok(&["trust", "inspect", &remote])).unwrap();
        signed_tags(&r)
            .into_iter()
            .map(|(t, _)| t)
            .collect::<Vec<_>>()
    };
    assert_eq!(tags(&m), ["v1", "v2"]);
    let answer = |text: &[u8]| {
        let mut child = m
            .bay_cmd(&["trust", "revoke", &remote])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(text).unwrap();
        child.wait_with_output().unwrap()
    };
    let o = answer(b"n\n");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!(
        "Confirm you would like to delete all signature data for {remote}? [y/N] "
    )));
    assert!(String::from_utf8_lossy(&o.stderr).contains("trust revoke has been cancelled"));
    assert_eq!(tags(&m), ["v1", "v2"]);
    let o = answer(b"y\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains(&format!("Successfully deleted signature for {remote}"))
    );
    assert!(tags(&m).is_empty());
    let e = m.bay_fails(&["trust", "revoke", "-y", &remote]);
    assert!(e.contains("no signed tags to remove"), "{e}");
    let e = m.bay_fails(&["trust", "revoke", &format!("{remote}:v1")]);
    assert!(e.contains("No trust data for v1"), "{e}");
}

/// `trust sign --local` pushes the local image, signed; plain `trust sign`
/// signs what the registry already has, and refuses a tag it lacks.
#[test]
fn sign_local_pushes_and_signs() {
    let Some(reg) = bay_registry() else {
        return;
    };
    let m = Machine::new();
    let Some(rootfs) = busybox_rootfs(m.dir()) else {
        return;
    };
    m.bay_ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
    let remote = format!("{}/local/app", reg.addr);
    m.bay_ok(&["tag", "bb:1", &format!("{remote}:v1")]);
    let e = m.bay_fails(&["trust", "sign", &format!("{remote}:v1")]);
    assert!(e.contains("not found"), "{e}");
    let out = m.bay_ok(&["trust", "sign", "--local", &format!("{remote}:v1")]);
    let digest = out
        .lines()
        .find(|l| l.contains(": digest: "))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    let r: Value = serde_json::from_str(&m.bay_ok(&["trust", "inspect", &remote])).unwrap();
    assert_eq!(
        r[0]["SignedTags"][0]["Digest"]
            .as_str()
            .map(|d| format!("sha256:{d}")),
        Some(digest)
    );
    let e = m.bay_fails(&["trust", "sign", &remote]);
    assert!(e.contains("no tag specified"), "{e}");
}
