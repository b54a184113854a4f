//! Token and Basic authentication against a fake registry that checks every
//! header it is sent: challenges, scopes, credentials and refresh tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bay_client::registry::{ClientOptions, Credentials, RegistryClient, RegistryError, StaticAuth};
use oci_types::RepoName;
use zeroize::Zeroizing;

#[derive(Clone)]
struct Fake {
    addr: String,
    basic_mode: bool,
    log: Arc<Mutex<Vec<String>>>,
    /// 401 challenges served.
    challenges: Arc<std::sync::atomic::AtomicUsize>,
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[]}"#;
// "alice:secret"
const ALICE: &str = "Basic YWxpY2U6c2VjcmV0";

fn challenge(f: &Fake, scope: Option<&str>) -> Response {
    f.challenges
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let v = if f.basic_mode {
        r#"Basic realm="fake""#.to_owned()
    } else {
        let mut v = format!(r#"Bearer realm="http://{}/token",service="fake""#, f.addr);
        if let Some(s) = scope {
            v.push_str(&format!(r#",scope="{s}""#));
        }
        v
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, v)],
        r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
    )
        .into_response()
}

fn authorized(f: &Fake, h: &HeaderMap, token: &str) -> bool {
    let got = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if f.basic_mode {
        got == ALICE
    } else {
        got == format!("Bearer {token}")
    }
}

async fn ping(State(f): State<Fake>, h: HeaderMap) -> Response {
    if authorized(&f, &h, "pull-token") || authorized(&f, &h, "refreshed") {
        return StatusCode::OK.into_response();
    }
    challenge(&f, None)
}

async fn manifest(State(f): State<Fake>, h: HeaderMap) -> Response {
    if !(authorized(&f, &h, "pull-token") || authorized(&f, &h, "refreshed")) {
        return challenge(&f, Some("repository:team/app:pull"));
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/vnd.oci.image.manifest.v1+json",
        )],
        MANIFEST,
    )
        .into_response()
}

async fn token_get(
    State(f): State<Fake>,
    Query(q): Query<Vec<(String, String)>>,
    h: HeaderMap,
) -> Response {
    let q: HashMap<_, Vec<_>> = q.into_iter().fold(HashMap::new(), |mut m, (k, v)| {
        m.entry(k).or_insert_with(Vec::new).push(v);
        m
    });
    f.log.lock().unwrap().push(format!(
        "GET scope={:?} service={:?} account={:?}",
        q.get("scope"),
        q.get("service"),
        q.get("account")
    ));
    let auth = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != ALICE {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if q.get("service").map(Vec::as_slice) != Some(&["fake".to_owned()][..]) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    if q.get("offline_token").map(Vec::as_slice) == Some(&["true".to_owned()][..]) {
        return axum::Json(serde_json::json!({"token": "pull-token", "refresh_token": "r-123"}))
            .into_response();
    }
    axum::Json(serde_json::json!({"token": "pull-token", "expires_in": 300})).into_response()
}

async fn token_post(
    State(f): State<Fake>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    f.log.lock().unwrap().push(format!(
        "POST grant_type={:?} scope={:?}",
        form.get("grant_type"),
        form.get("scope")
    ));
    if form.get("grant_type").map(String::as_str) == Some("refresh_token")
        && form.get("refresh_token").map(String::as_str) == Some("r-123")
    {
        return axum::Json(serde_json::json!({"access_token": "refreshed", "expires_in": 300}))
            .into_response();
    }
    StatusCode::UNAUTHORIZED.into_response()
}

async fn start(basic_mode: bool) -> Fake {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let f = Fake {
        addr: l.local_addr().unwrap().to_string(),
        basic_mode,
        log: Arc::default(),
        challenges: Arc::default(),
    };
    let app = Router::new()
        .route("/v2/", get(ping))
        .route("/v2/team/app/manifests/v1", get(manifest))
        .route("/token", get(token_get).post(token_post))
        .with_state(f.clone());
    tokio::spawn(async move { axum::serve(l, app).await });
    f
}

fn opts(creds: Option<Credentials>, host: &str) -> ClientOptions {
    let mut m = HashMap::new();
    if let Some(c) = creds {
        m.insert(host.to_owned(), c);
    }
    ClientOptions {
        auth: Arc::new(StaticAuth(m)),
        attempts: 2,
        ..ClientOptions::default()
    }
}

fn alice() -> Credentials {
    Credentials::Basic {
        username: "alice".into(),
        password: Zeroizing::new("secret".into()),
    }
}

#[tokio::test]
async fn bearer_challenge_fetches_a_scoped_token_with_basic_credentials() {
    let f = start(false).await;
    let c = RegistryClient::connect(&f.addr, opts(Some(alice()), &f.addr))
        .await
        .unwrap();
    let repo = RepoName::parse("team/app").unwrap();
    let m = c.get_manifest(&repo, "v1").await.unwrap();
    assert_eq!(&m.bytes[..], MANIFEST.as_bytes());
    // A second request reuses the cached token.
    c.get_manifest(&repo, "v1").await.unwrap();
    let log = f.log.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "one token request: {log:?}");
    assert!(
        log[0].contains(r#"scope=Some(["repository:team/app:pull"])"#),
        "{log:?}"
    );
    assert!(log[0].contains(r#"account=Some(["alice"])"#), "{log:?}");
    // Only the ping was challenged: the token was fetched before the request.
    assert_eq!(
        f.challenges.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "requests sent without a token"
    );
}

#[tokio::test]
async fn refresh_tokens_use_the_oauth2_post_grant() {
    let f = start(false).await;
    let creds = Credentials::RefreshToken {
        username: "alice".into(),
        token: Zeroizing::new("r-123".into()),
    };
    let c = RegistryClient::connect(&f.addr, opts(Some(creds), &f.addr))
        .await
        .unwrap();
    c.get_manifest(&RepoName::parse("team/app").unwrap(), "v1")
        .await
        .unwrap();
    let log = f.log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            r#"POST grant_type=Some("refresh_token") scope=Some("repository:team/app:pull")"#
                .to_owned()
        ]
    );
}

#[tokio::test]
async fn missing_or_wrong_credentials_say_run_bay_login() {
    for (basic_mode, creds) in [
        (false, None),
        (
            false,
            Some(Credentials::Basic {
                username: "alice".into(),
                password: Zeroizing::new("wrong".into()),
            }),
        ),
        (true, None),
    ] {
        let f = start(basic_mode).await;
        let c = RegistryClient::connect(&f.addr, opts(creds, &f.addr))
            .await
            .unwrap();
        let e = c
            .get_manifest(&RepoName::parse("team/app").unwrap(), "v1")
            .await
            .unwrap_err();
        assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("unauthorized: run `bay login {}`", f.addr)
        );
    }
}

#[tokio::test]
async fn basic_challenges_get_basic_credentials() {
    let f = start(true).await;
    let c = RegistryClient::connect(&f.addr, opts(Some(alice()), &f.addr))
        .await
        .unwrap();
    let m = c
        .get_manifest(&RepoName::parse("team/app").unwrap(), "v1")
        .await
        .unwrap();
    assert_eq!(&m.bytes[..], MANIFEST.as_bytes());
    assert!(f.log.lock().unwrap().is_empty(), "no token server involved");
}

#[tokio::test]
async fn login_exchanges_the_password_for_a_refresh_token() {
    let f = start(false).await;
    let c = RegistryClient::connect(&f.addr, ClientOptions::default())
        .await
        .unwrap();
    let t = c.login("alice", "secret").await.unwrap();
    assert_eq!(t.as_deref().map(String::as_str), Some("r-123"));
    assert!(matches!(
        c.login("alice", "wrong").await,
        Err(RegistryError::Unauthorized { .. })
    ));
    // The refresh token then works for pulls without the password.
    let creds = Credentials::RefreshToken {
        username: "alice".into(),
        token: t.unwrap(),
    };
    let c = RegistryClient::connect(&f.addr, opts(Some(creds), &f.addr))
        .await
        .unwrap();
    c.get_manifest(&RepoName::parse("team/app").unwrap(), "v1")
        .await
        .unwrap();
    // Basic registries: the password is checked against /v2/, nothing to store.
    let b = start(true).await;
    let c = RegistryClient::connect(&b.addr, ClientOptions::default())
        .await
        .unwrap();
    assert_eq!(c.login("alice", "secret").await.unwrap(), None);
    assert!(c.login("alice", "nope").await.is_err());
}

/// Against bay-registry with users: tokens for an admin, refusal for a user
/// without rights, and the login message for anonymous clients.
#[test]
fn bay_registry_with_users() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    use bay_client::progress::{Progress, ProgressMode};
    use bay_client::reference::ImageRef;

    use crate::common::*;

    let Some(bin) = bay_registry_bin() else {
        eprintln!(
            "SKIP: bay-registry not built (cargo build -p bay-registry), or set BAY_REGISTRY_BIN"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("reg");
    for (user, pass, admin) in [
        ("alice", "alice-pass-1", true),
        ("bob", "bob-pass-12", false),
    ] {
        let mut c = Command::new(&bin);
        c.args(["user", "add", user, "--password-stdin", "--root"])
            .arg(&root);
        if admin {
            c.arg("--admin");
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(pass.as_bytes())
            .unwrap();
        if !child.wait().unwrap().success() {
            eprintln!("SKIP: bay-registry user add failed");
            return;
        }
    }
    let reg = bay_registry_at(&root);
    let bay = Bay::new();
    let Some(rootfs) = busybox_rootfs(bay.root.path()) else {
        return;
    };
    bay.ok(&["import", rootfs.to_str().unwrap(), "bb:1"]);
    let remote = format!("{}/team/app:1", reg.addr);
    bay.ok(&["tag", "bb:1", &remote]);
    let e = bay.fails(&["push", &remote], 1);
    assert!(
        e.contains(&format!("unauthorized: run `bay login {}`", reg.addr)),
        "{e}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let image = ImageRef::parse(&remote).unwrap();
    let quiet = || {
        Arc::new(Progress::new(
            ProgressMode::Quiet,
            Box::new(std::io::sink()),
        ))
    };
    let cred = |u: &str, p: &str| Credentials::Basic {
        username: u.into(),
        password: Zeroizing::new(p.into()),
    };
    rt.block_on(async {
        let alice = Arc::new(
            RegistryClient::connect(
                &reg.addr,
                opts(Some(cred("alice", "alice-pass-1")), &reg.addr),
            )
            .await
            .unwrap(),
        );
        let out = bay_client::registry::push::push(
            &bay.store(),
            alice.clone(),
            &image,
            &bay_client::trust::NoTrust,
            &Default::default(),
            quiet(),
        )
        .await
        .unwrap();
        assert_eq!(out.uploaded, 2, "layer and config");
        // bob has no rights on team/app.
        let bob = Arc::new(
            RegistryClient::connect(&reg.addr, opts(Some(cred("bob", "bob-pass-12")), &reg.addr))
                .await
                .unwrap(),
        );
        let fresh = Bay::new();
        let e = bay_client::registry::pull::pull(
            &fresh.store(),
            bob,
            &image,
            &bay_client::trust::NoTrust,
            &Default::default(),
            quiet(),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, RegistryError::Denied { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "denied: requested access to team/app on {} is denied",
                reg.addr
            )
        );
        // alice logs in once; her refresh token then pulls without the password.
        let anon = RegistryClient::connect(&reg.addr, ClientOptions::default())
            .await
            .unwrap();
        let token = anon
            .login("alice", "alice-pass-1")
            .await
            .unwrap()
            .expect("bay-registry issues refresh tokens");
        assert!(anon.login("alice", "wrong").await.is_err());
        let creds = Credentials::RefreshToken {
            username: "alice".into(),
            token,
        };
        let c = Arc::new(
            RegistryClient::connect(&reg.addr, opts(Some(creds), &reg.addr))
                .await
                .unwrap(),
        );
        let got = bay_client::registry::pull::pull(
            &fresh.store(),
            c,
            &image,
            &bay_client::trust::NoTrust,
            &Default::default(),
            quiet(),
        )
        .await
        .unwrap();
        assert_eq!(got.digest, out.digest);
    });
}
