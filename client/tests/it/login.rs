//! `bay login` / `bay logout` against a real bay-registry with users, rules
//! and personal access tokens made with its admin CLI; and logins read from
//! docker's config.json and credential helpers.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use serde_json::Value;

use crate::common::*;

const PASSWORD: &str = "alice-pass-1";

/// A bay-registry data root with alice (pull/push on `team/**`) and the
/// registry serving it.
struct Setup {
    bin: PathBuf,
    root: PathBuf,
    reg: Registry,
    _dir: tempfile::TempDir,
}

fn admin(bin: &Path, root: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .arg("--root")
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        pipe.write_all(s.as_bytes()).unwrap();
    }
    drop(pipe);
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "bay-registry {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn setup() -> Option<Setup> {
    let Some(bin) = bay_registry_bin() else {
        eprintln!(
            "SKIP: bay-registry not built (cargo build -p bay-registry), or set BAY_REGISTRY_BIN"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("reg");
    admin(
        &bin,
        &root,
        &["user", "add", "alice", "--password-stdin"],
        Some(PASSWORD),
    );
    admin(
        &bin,
        &root,
        &[
            "acl",
            "add",
            "--user",
            "alice",
            "--repo",
            "team/**",
            "--actions",
            "pull,push",
        ],
        None,
    );
    let reg = bay_registry_at(&root);
    Some(Setup {
        bin,
        root,
        reg,
        _dir: dir,
    })
}

/// A bay with its own data root, `$BAY_HOME` and (empty) docker config dir.
struct Client {
    bay: Bay,
}

impl Client {
    fn new() -> Self {
        let c = Client { bay: Bay::new() };
        std::fs::create_dir_all(c.docker_dir()).unwrap();
        c
    }

    fn home(&self) -> PathBuf {
        self.bay.root.path().join("home")
    }

    fn docker_dir(&self) -> PathBuf {
        self.bay.root.path().join("docker")
    }

    fn config(&self) -> PathBuf {
        self.home().join("config.json")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.bay.cmd(args);
        c.env("BAY_HOME", self.home())
            .env("DOCKER_CONFIG", self.docker_dir());
        c
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            // bay may exit (e.g. on a usage error) before reading: EPIPE is fine.
            let _ = pipe.write_all(s.as_bytes());
        }
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> (String, String) {
        let o = self.run(args, stdin);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(o.status.success(), "bay {args:?} failed:\n{out}\n{err}");
        (out, err)
    }

    fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let o = self.run(args, stdin);
        assert_eq!(
            o.status.code(),
            Some(1),
            "bay {args:?}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    fn login(&self, host: &str, user: &str, secret: &str) -> Output {
        self.run(
            &["login", "--username", user, "--password-stdin", host],
            Some(&format!("{secret}\n")),
        )
    }

    fn config_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.config()).unwrap()).unwrap()
    }

    /// Imports busybox as `host/team/app:tag`; returns the image id, or None (skip).
    fn image(&self, host: &str, tag: &str) -> Option<String> {
        let rootfs = busybox_rootfs(self.bay.root.path())?;
        let id = self.bay.ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
        self.bay
            .ok(&["tag", "bb:1", &format!("{host}/team/app:{tag}")]);
        Some(id.trim().to_owned())
    }

    /// A client sharing this one's logins but with an empty image store.
    fn fresh_store(&self) -> Client {
        let c = Client::new();
        std::fs::create_dir_all(c.home()).unwrap();
        if self.config().exists() {
            std::fs::copy(self.config(), c.config()).unwrap();
        }
        c
    }
}

fn assert_no_password(c: &Client, secret: &str, user: &str) {
    let text = std::fs::read_to_string(c.config()).unwrap();
    assert!(!text.contains(secret), "the secret is stored: {text}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
    assert!(
        !text.contains(&b64),
        "base64 user:password is stored: {text}"
    );
    let mode = std::fs::metadata(c.config()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config.json mode");
}

#[test]
fn login_stores_only_a_token_which_push_and_pull_use() {
    let Some(s) = setup() else { return };
    let host = s.reg.addr.clone();
    let c = Client::new();
    let Some(id) = c.image(&host, "1") else {
        return;
    };
    let remote = format!("{host}/team/app:1");
    let e = c.fails(&["push", &remote], None);
    assert!(
        e.contains(&format!("unauthorized: run `bay login {host}`")),
        "{e}"
    );

    // Wrong password: exit 1, docker's message, nothing stored.
    let o = c.login(&host, "alice", "wrong-password");
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("unauthorized: incorrect username or password"),
        "{e}"
    );
    assert!(!c.config().exists(), "a failed login stored something");
    // Unknown user: the same.
    let o = c.login(&host, "mallory", PASSWORD);
    assert_eq!(o.status.code(), Some(1));
    assert!(!c.config().exists());
    // --password-stdin needs --username, as in docker.
    let e = c.fails(&["login", "--password-stdin", &host], Some(PASSWORD));
    assert!(e.contains("Must provide --username"), "{e}");

    let o = c.login(&host, "alice", PASSWORD);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Login Succeeded");
    let cfg = c.config_json();
    let entry = &cfg["auths"][&host];
    let token = entry["identitytoken"].as_str().expect("an identity token");
    assert!(token.starts_with("bay_rt_"), "{token}");
    assert_eq!(entry["username"], "alice");
    assert!(entry.get("auth").is_none(), "{entry}");
    assert!(entry.get("password").is_none(), "{entry}");
    assert_no_password(&c, PASSWORD, "alice");

    // push and pull need no password now.
    let (out, _) = c.ok(&["push", &remote], None);
    assert!(out.contains("digest: sha256:"), "{out}");
    let other = c.fresh_store();
    other.ok(&["pull", "-q", &remote], None);
    assert_eq!(
        other.bay.ok(&["inspect", "-f", "{{.Id}}", &remote]).trim(),
        id
    );
    // A scheme in SERVER names the same entry.
    let o = c.login(&format!("http://{host}/"), "alice", PASSWORD);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(c.config_json()["auths"].as_object().unwrap().len(), 1);

    // logout removes the entry; the registry refuses us again.
    let (out, _) = c.ok(&["logout", &host], None);
    assert_eq!(out.trim(), format!("Removing login credentials for {host}"));
    assert!(c.config_json()["auths"].get(&host).is_none());
    let e = c.fails(&["push", &remote], None);
    assert!(
        e.contains(&format!("unauthorized: run `bay login {host}`")),
        "{e}"
    );
    let (out, _) = c.ok(&["logout", &host], None);
    assert_eq!(out.trim(), format!("Not logged in to {host}"));
    let e = c.fails(&["logout"], None);
    assert!(e.contains("no default registry"), "{e}");
}

#[test]
fn personal_access_tokens_log_in_until_revoked() {
    let Some(s) = setup() else { return };
    let host = s.reg.addr.clone();
    let o = admin(
        &s.bin,
        &s.root,
        &[
            "token",
            "create",
            "--user",
            "alice",
            "--scope",
            "repository:team/*:pull,push",
        ],
        None,
    );
    let pat = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    assert!(pat.starts_with("bay_pat_"), "{pat}");
    let stderr = String::from_utf8(o.stderr).unwrap();
    // "token <ID> for alice (expires never); this secret is shown only once:"
    let words: Vec<&str> = stderr.split_whitespace().collect();
    let id = words
        .windows(3)
        .find(|w| w[0] == "token" && w[2] == "for")
        .map(|w| w[1].to_owned())
        .unwrap_or_else(|| panic!("no token id in {stderr}"));

    let c = Client::new();
    let Some(_) = c.image(&host, "pat") else {
        return;
    };
    let remote = format!("{host}/team/app:pat");
    let o = c.login(&host, "alice", &pat);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(c.config_json()["auths"][&host]["identitytoken"].is_string());
    assert_no_password(&c, &pat, "alice");
    c.ok(&["push", "-q", &remote], None);

    admin(&s.bin, &s.root, &["token", "revoke", &id], None);
    let o = c.login(&host, "alice", &pat);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("unauthorized: incorrect username or password"),
        "{e}"
    );
    // The refresh token obtained with the PAT died with it.
    c.bay
        .ok(&["tag", "bb:1", &format!("{host}/team/app:after")]);
    let e = c.fails(&["push", &format!("{host}/team/app:after")], None);
    assert!(
        e.contains(&format!("unauthorized: run `bay login {host}`")),
        "{e}"
    );
    // The password still works.
    let o = c.login(&host, "alice", PASSWORD);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    c.ok(&["push", "-q", &format!("{host}/team/app:after")], None);
}

#[test]
fn logins_from_docker_config_and_credential_helpers() {
    let Some(s) = setup() else { return };
    let host = s.reg.addr.clone();
    // Publish an image and get an identity token the docker way.
    let c = Client::new();
    let Some(id) = c.image(&host, "d") else {
        return;
    };
    let remote = format!("{host}/team/app:d");
    assert!(c.login(&host, "alice", PASSWORD).status.success());
    c.ok(&["push", "-q", &remote], None);
    let token = c.config_json()["auths"][&host]["identitytoken"]
        .as_str()
        .unwrap()
        .to_owned();

    // docker's config.json, written by hand; bay's own config is empty.
    let d = Client::new();
    let alice_colon = base64::engine::general_purpose::STANDARD.encode("alice:");
    std::fs::write(
        d.docker_dir().join("config.json"),
        serde_json::json!({"auths": {format!("https://{host}"): {"auth": alice_colon, "identitytoken": token}}})
            .to_string(),
    )
    .unwrap();
    d.ok(&["pull", "-q", &remote], None);
    assert_eq!(d.bay.ok(&["inspect", "-f", "{{.Id}}", &remote]).trim(), id);

    // What the real docker CLI writes (no daemon needed for a login) works too.
    if have("/usr/bin/docker") {
        let k = Client::new();
        let mut child = Command::new("/usr/bin/docker")
            .args(["login", &host, "-u", "alice", "--password-stdin"])
            .env("DOCKER_CONFIG", k.docker_dir())
            .env(
                "DOCKER_HOST",
                format!("unix://{}/no-daemon.sock", k.docker_dir().display()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes());
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "docker login: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        k.ok(&["pull", "-q", &remote], None);
        assert_eq!(k.bay.ok(&["inspect", "-f", "{{.Id}}", &remote]).trim(), id);
    } else {
        eprintln!("SKIP (part): the docker CLI is not installed");
    }

    // bay's own login wins over docker's: a bogus bay entry is what gets used.
    let w = Client::new();
    std::fs::copy(
        d.docker_dir().join("config.json"),
        w.docker_dir().join("config.json"),
    )
    .unwrap();
    std::fs::create_dir_all(w.home()).unwrap();
    std::fs::write(
        w.config(),
        serde_json::json!({"auths": {&host: {"identitytoken": "bay_rt_bogus", "username": "alice"}}})
            .to_string(),
    )
    .unwrap();
    let e = w.fails(&["pull", "-q", &remote], None);
    assert!(e.contains("unauthorized"), "{e}");

    // A credential helper (credsStore) answering with an identity token.
    let h = Client::new();
    let bin_dir = h.bay.root.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let helper = bin_dir.join("docker-credential-baytest");
    let asked = h.bay.root.path().join("asked");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\ncat > '{}'\nprintf '%s' '{{\"ServerURL\":\"{host}\",\"Username\":\"<token>\",\"Secret\":\"{token}\"}}'\n",
            asked.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        h.docker_dir().join("config.json"),
        r#"{"auths":{},"credsStore":"baytest"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = h
        .cmd(&["pull", "-q", &remote])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&asked).unwrap(), host);
    // A helper that has nothing (exit 1) means anonymous access, not a crash.
    std::fs::write(
        &helper,
        "#!/bin/sh\necho 'credentials not found' >&2\nexit 1\n",
    )
    .unwrap();
    let fresh = h.fresh_store();
    std::fs::copy(
        h.docker_dir().join("config.json"),
        fresh.docker_dir().join("config.json"),
    )
    .unwrap();
    let o = fresh
        .cmd(&["pull", "-q", &remote])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("run `bay login {host}`")),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Distribution with htpasswd: Basic auth, no tokens. The login must check
/// the password, then store it (docker's base64) with a clear warning.
#[test]
fn basic_only_registries_fall_back_to_the_password_with_a_warning() {
    if !have("/usr/bin/htpasswd") {
        eprintln!("SKIP: htpasswd missing (apt-get install apache2-utils)");
        return;
    }
    let Some(reg) = distribution_with(|dir| {
        let file = dir.join("htpasswd");
        let o = Command::new("/usr/bin/htpasswd")
            .args(["-Bbn", "bob", "bob-secret-9"])
            .output()
            .unwrap();
        assert!(o.status.success());
        std::fs::write(&file, o.stdout).unwrap();
        format!(
            "auth: {{htpasswd: {{realm: basic-realm, path: {}}}}}\n",
            file.display()
        )
    }) else {
        return;
    };
    let host = reg.addr.clone();
    let c = Client::new();
    let Some(_) = c.image(&host, "basic") else {
        return;
    };
    let remote = format!("{host}/team/app:basic");
    let o = c.login(&host, "bob", "not-it");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unauthorized: incorrect username or password")
    );
    assert!(!c.config().exists());
    let o = c.login(&host, "bob", "bob-secret-9");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let warn = String::from_utf8_lossy(&o.stderr);
    assert!(
        warn.contains("WARNING!")
            && warn.contains("cannot issue a token")
            && warn.contains("base64"),
        "{warn}"
    );
    let cfg = c.config_json();
    let auth = cfg["auths"][&host]["auth"].as_str().unwrap();
    let plain = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .unwrap();
    assert_eq!(plain, b"bob:bob-secret-9");
    let mode = std::fs::metadata(c.config()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    c.ok(&["push", "-q", &remote], None);
}

/// On a terminal (a pty from `script`), login prompts for the username and,
/// without echo, the password; the second time the stored username is the
/// default.
#[test]
fn interactive_login_prompts_on_a_terminal() {
    if !have("/usr/bin/script") {
        eprintln!("SKIP: script(1) missing (util-linux)");
        return;
    }
    let Some(s) = setup() else { return };
    let host = s.reg.addr.clone();
    let c = Client::new();
    // Answers each prompt once it is on the terminal, as a person would (so
    // the password is typed only after echo was switched off).
    let tty_login = |answers: &[(&str, &str)]| {
        use std::io::Read as _;
        let line = format!("'{}' login {host}", env!("CARGO_BIN_EXE_bay"));
        let mut child = Command::new("/usr/bin/script")
            .args(["-qec", &line, "/dev/null"])
            .env("BAY_HOME", c.home())
            .env("DOCKER_CONFIG", c.docker_dir())
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
        for (prompt, answer) in answers {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !seen.lock().unwrap().contains(prompt) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no {prompt:?} prompt: {}",
                    seen.lock().unwrap()
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            // Let the prompt's terminal-mode switch (no echo) take effect.
            std::thread::sleep(std::time::Duration::from_millis(50));
            let _ = pipe.write_all(format!("{answer}\n").as_bytes());
        }
        drop(pipe);
        let _ = child.wait();
        reader.join().unwrap();
        seen.lock().unwrap().clone()
    };
    let out = tty_login(&[("Username: ", "alice"), ("Password: ", PASSWORD)]);
    assert!(out.contains("Username: "), "{out}");
    assert!(out.contains("Password: "), "{out}");
    assert!(out.contains("Login Succeeded"), "{out}");
    assert!(!out.contains(PASSWORD), "the password was echoed: {out}");
    assert!(c.config_json()["auths"][&host]["identitytoken"].is_string());
    let out = tty_login(&[("Username (alice): ", ""), ("Password: ", PASSWORD)]);
    assert!(out.contains("Username (alice): "), "{out}");
    assert!(out.contains("Login Succeeded"), "{out}");
    assert_eq!(c.config_json()["auths"][&host]["username"], "alice");
}
