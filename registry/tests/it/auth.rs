//! Token logins end to end: challenges, /token (GET and POST), scopes and
//! rules, PATs, refresh tokens, rate limits, and the real docker CLI and
//! skopeo as clients.

use std::net::IpAddr;

use base64::Engine as _;
use bay_registry::admin;
use bay_registry::meta::{Meta, RuleSubject};
use oci_types::Digest;
use reqwest::{Client, StatusCode};
use serde_json::Value;

use crate::support::{self, TestRegistry, have, oci_layout, tmp};

const ALICE_PW: &str = "alice-password-1";
const ADMIN_PW: &str = "admin-password-1";

async fn setup(meta: Meta) {
    admin::user_add(&meta, "alice", ALICE_PW, false, &["dev".into()])
        .await
        .unwrap();
    admin::user_add(&meta, "bob", "bob-password-1", false, &[])
        .await
        .unwrap();
    admin::user_add(&meta, "root", ADMIN_PW, true, &[])
        .await
        .unwrap();
    let acts = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    admin::acl_add(
        &meta,
        RuleSubject::User("alice".into()),
        "team/**",
        &acts(&["pull", "push"]),
    )
    .await
    .unwrap();
    admin::acl_add(
        &meta,
        RuleSubject::Group("dev".into()),
        "team/app",
        &acts(&["delete"]),
    )
    .await
    .unwrap();
    admin::acl_add(
        &meta,
        RuleSubject::User("bob".into()),
        "team/app",
        &acts(&["pull"]),
    )
    .await
    .unwrap();
    admin::acl_add(&meta, RuleSubject::Anonymous, "public/*", &acts(&["pull"]))
        .await
        .unwrap();
}

async fn registry() -> TestRegistry {
    support::spawn_setup(|_| {}, setup).await
}

async fn token(
    http: &Client,
    reg: &TestRegistry,
    user: &str,
    pw: &str,
    scopes: &[&str],
) -> reqwest::Response {
    let mut q: Vec<(&str, &str)> = vec![("service", "bay-registry")];
    for s in scopes {
        q.push(("scope", s));
    }
    http.get(format!("{}/token", reg.url))
        .basic_auth(user, Some(pw))
        .query(&q)
        .send()
        .await
        .unwrap()
}

async fn bearer(
    http: &Client,
    reg: &TestRegistry,
    user: &str,
    pw: &str,
    scopes: &[&str],
) -> String {
    let r = token(http, reg, user, pw, scopes).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token"], v["access_token"]);
    assert!(v["expires_in"].as_i64().unwrap() >= 60);
    assert!(v["issued_at"].as_str().unwrap().ends_with('Z'));
    v["token"].as_str().unwrap().to_owned()
}

async fn push_blob(
    http: &Client,
    reg: &TestRegistry,
    repo: &str,
    tok: Option<&str>,
    data: &[u8],
) -> StatusCode {
    let d = Digest::sha256_of(data);
    let mut rb = http
        .post(format!("{}/v2/{repo}/blobs/uploads/?digest={d}", reg.url))
        .body(data.to_vec());
    if let Some(t) = tok {
        rb = rb.bearer_auth(t);
    }
    rb.send().await.unwrap().status()
}

fn challenge(r: &reqwest::Response) -> String {
    r.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_scopes_and_rules() {
    let reg = registry().await;
    let http = Client::new();
    // Anonymous ping gets a Bearer challenge pointing at our /token.
    let r = http.get(format!("{}/v2/", reg.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let c = challenge(&r);
    assert!(
        c.starts_with(&format!(
            r#"Bearer realm="http://{}/token",service="bay-registry""#,
            reg.host
        )),
        "{c}"
    );
    let r = http
        .get(format!("{}/v2/team/app/tags/list", reg.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&r).contains(r#"scope="repository:team/app:pull""#));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    assert_eq!(body["errors"][0]["detail"][0]["Name"], "team/app");

    // Wrong password and unknown user: the same 401.
    let a = token(&http, &reg, "alice", "wrong", &[]).await;
    let b = token(&http, &reg, "nobody", "wrong", &[]).await;
    assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(b.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(a.text().await.unwrap(), b.text().await.unwrap());

    // The token carries the intersection of requested and allowed.
    let t = bearer(
        &http,
        &reg,
        "alice",
        ALICE_PW,
        &[
            "repository:team/app:pull,push,delete",
            "repository:other/x:pull",
            "registry:catalog:*",
        ],
    )
    .await;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type":"repository","name":"team/app","actions":["pull","push","delete"]}])
    );
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "bay-registry");
    assert_eq!(
        push_blob(&http, &reg, "team/app", Some(&t), b"one").await,
        StatusCode::CREATED
    );
    let r = http
        .get(format!("{}/v2/", reg.url))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A pull-only token cannot push or delete.
    let pull = bearer(
        &http,
        &reg,
        "alice",
        ALICE_PW,
        &["repository:team/app:pull"],
    )
    .await;
    let r = http
        .post(format!("{}/v2/team/app/blobs/uploads/", reg.url))
        .bearer_auth(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&r).contains(r#"error="insufficient_scope""#));
    let d = Digest::sha256_of(b"one");
    let r = http
        .delete(format!("{}/v2/team/app/blobs/{d}", reg.url))
        .bearer_auth(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(format!("{}/v2/team/app/blobs/{d}", reg.url))
        .bearer_auth(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Repo A's token is refused on repo B.
    let r = http
        .get(format!("{}/v2/team/other/tags/list", reg.url))
        .bearer_auth(&pull)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // bob may pull team/app but never push there: DENIED.
    let bobt = bearer(
        &http,
        &reg,
        "bob",
        "bob-password-1",
        &["repository:team/app:pull,push"],
    )
    .await;
    let r = http
        .post(format!("{}/v2/team/app/blobs/uploads/", reg.url))
        .bearer_auth(&bobt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    // A mount also needs pull on `from`, which this token lacks.
    let r = http
        .post(format!(
            "{}/v2/team/app/blobs/uploads/?mount={d}&from=team/secret",
            reg.url
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "mount without pull on from"
    );

    // Anonymous pull where a rule allows it, without any token.
    let r = http
        .get(format!("{}/v2/public/x/tags/list", reg.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "allowed through to the registry (repo unknown)"
    );
    let r = http
        .post(format!("{}/v2/public/x/blobs/uploads/", reg.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The catalog is for admins.
    let admin_t = bearer(&http, &reg, "root", ADMIN_PW, &["registry:catalog:*"]).await;
    let r = http
        .get(format!("{}/v2/_catalog", reg.url))
        .bearer_auth(&admin_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .get(format!("{}/v2/_catalog", reg.url))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Garbage, alg=none and foreign tokens give 401 invalid_token.
    let parts: Vec<&str> = t.split('.').collect();
    let none = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    for bad in [
        "garbage",
        none.as_str(),
        &format!("{}.{}.{}x", parts[0], parts[1], parts[2]),
    ] {
        let r = http
            .get(format!("{}/v2/team/app/tags/list", reg.url))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
        assert!(challenge(&r).contains(r#"error="invalid_token""#));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_grants_refresh_tokens_and_pats() {
    let reg = registry().await;
    let http = Client::new();
    let url = format!("{}/token", reg.url);
    // Password grant with offline access returns a refresh token.
    let r = http
        .post(&url)
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", ALICE_PW),
            ("service", "bay-registry"),
            ("client_id", "test"),
            ("access_type", "offline"),
            (
                "scope",
                "repository:team/app:pull repository:team/web:pull,push",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    assert!(
        v["scope"]
            .as_str()
            .unwrap()
            .contains("repository:team/web:pull,push")
    );
    // Refresh grant.
    let r = http
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", "bay-registry"),
            ("client_id", "test"),
            ("scope", "repository:team/web:pull,push"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let tok = v["access_token"].as_str().unwrap();
    assert_eq!(
        push_blob(&http, &reg, "team/web", Some(tok), b"two").await,
        StatusCode::CREATED
    );
    // GET with offline_token=true (docker login) also returns one.
    let r = http
        .get(&url)
        .basic_auth("alice", Some(ALICE_PW))
        .query(&[
            ("offline_token", "true"),
            ("client_id", "docker"),
            ("service", "bay-registry"),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["refresh_token"].as_str().unwrap().starts_with("bay_rt_"));
    let bad = http
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "bay_rt_nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);

    // A PAT limits the grant to its own scopes, and revocation ends it.
    let meta = admin::open(&reg.root).await.unwrap();
    let (rec, pat) = admin::token_create(
        &meta,
        "alice",
        "ci",
        &["repository:team/*:pull".into()],
        Some(3600),
    )
    .await
    .unwrap();
    let t = bearer(
        &http,
        &reg,
        "alice",
        &pat,
        &["repository:team/app:pull,push"],
    )
    .await;
    assert_eq!(
        push_blob(&http, &reg, "team/app", Some(&t), b"pat").await,
        StatusCode::UNAUTHORIZED
    );
    let r = http
        .get(format!("{}/v2/team/app/tags/list", reg.url))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::UNAUTHORIZED);
    // A refresh token obtained with the PAT dies with it.
    let r = http
        .get(&url)
        .basic_auth("alice", Some(&pat))
        .query(&[("offline_token", "true"), ("service", "bay-registry")])
        .send()
        .await
        .unwrap();
    let pat_refresh = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    admin::token_revoke(&meta, &rec.id, None).await.unwrap();
    assert_eq!(
        token(&http, &reg, "alice", &pat, &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = http
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", pat_refresh.as_str()),
            ("service", "bay-registry"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Another user's name with alice's PAT is refused.
    let (_, pat2) = admin::token_create(
        &meta,
        "alice",
        "x",
        &["repository:team/*:pull".into()],
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        token(&http, &reg, "bob", &pat2, &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Revoking a user's sessions ends every refresh token of theirs.
    let r = http
        .post(&url)
        .form(&[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", "bob-password-1"),
            ("service", "bay-registry"),
            ("access_type", "offline"),
        ])
        .send()
        .await
        .unwrap();
    let bob_refresh = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(admin::user_logout(&meta, "bob").await.unwrap(), 1);
    let r = http
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", bob_refresh.as_str()),
            ("service", "bay-registry"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Deleting the user revokes its refresh tokens.
    admin::user_del(&meta, "alice").await.unwrap();
    let r = http
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("service", "bay-registry"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_is_rate_limited_per_address() {
    let reg = registry().await;
    let attacker = Client::builder()
        .local_address("127.0.0.1".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut limited = 0;
    for _ in 0..50 {
        let r = token(&attacker, &reg, "alice", "guess", &[]).await;
        match r.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(r.headers().contains_key("retry-after"));
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["errors"][0]["code"], "TOOMANYREQUESTS");
                limited += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert!(limited >= 30, "only {limited} of 50 attempts were limited");
    // Even the right password is refused from the attacking address...
    assert_eq!(
        token(&attacker, &reg, "alice", ALICE_PW, &[])
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...but works for the same user from another address.
    let other = Client::builder()
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    assert_eq!(
        token(&other, &reg, "alice", ALICE_PW, &[]).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cli_login_stores_an_identity_token() {
    if !have("docker") {
        eprintln!("SKIP: the docker CLI is not installed");
        return;
    }
    let reg = registry().await;
    let (_g, cfg_dir) = tmp();
    let mut child = tokio::process::Command::new("docker")
        .args(["login", &reg.host, "-u", "alice", "--password-stdin"])
        .env("DOCKER_CONFIG", &cfg_dir)
        .env(
            "DOCKER_HOST",
            format!("unix://{}/no-daemon.sock", cfg_dir.display()),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{ALICE_PW}\n").as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "docker login failed: {stderr} {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(cfg_dir.join("config.json")).unwrap()).unwrap();
    let entry = &cfg["auths"][&reg.host];
    let identity = entry["identitytoken"]
        .as_str()
        .expect("identitytoken stored");
    assert!(identity.starts_with("bay_rt_"));
    let text = serde_json::to_string(&cfg).unwrap();
    assert!(!text.contains(ALICE_PW), "the password must not be stored");
    let auth = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str().unwrap_or(""))
        .unwrap_or_default();
    assert_eq!(String::from_utf8_lossy(&auth), "alice:");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_uses_personal_access_tokens() {
    if !have("skopeo") {
        eprintln!("SKIP: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let reg = registry().await;
    let meta = admin::open(&reg.root).await.unwrap();
    let (_, push_pat) = admin::token_create(
        &meta,
        "alice",
        "push",
        &["repository:team/*:pull,push".into()],
        Some(3600),
    )
    .await
    .unwrap();
    let (_, pull_pat) = admin::token_create(
        &meta,
        "alice",
        "pull",
        &["repository:team/*:pull".into()],
        Some(3600),
    )
    .await
    .unwrap();
    let (_a, src) = tmp();
    let (_b, back) = tmp();
    let digest = oci_layout(&src, "v1", 2);
    let dest = format!("docker://{}/team/app:v1", reg.host);
    let run = |args: Vec<String>| async move {
        tokio::process::Command::new("skopeo")
            .args(&args)
            .output()
            .await
            .unwrap()
    };
    let out = run(vec![
        "copy".into(),
        "-q".into(),
        "--dest-tls-verify=false".into(),
        "--dest-creds".into(),
        format!("alice:{push_pat}"),
        format!("oci:{}:v1", src.display()),
        dest.clone(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(vec![
        "copy".into(),
        "-q".into(),
        "--src-tls-verify=false".into(),
        "--src-creds".into(),
        format!("alice:{pull_pat}"),
        dest.clone(),
        format!("oci:{}:v1", back.display()),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(support::layout_digest(&back, "v1"), digest);
    // Pushing with the pull-only PAT fails with a clear message.
    let out = run(vec![
        "copy".into(),
        "-q".into(),
        "--dest-tls-verify=false".into(),
        "--dest-creds".into(),
        format!("alice:{pull_pat}"),
        format!("oci:{}:v1", src.display()),
        format!("docker://{}/team/other:v1", reg.host),
    ])
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized")
            || err.contains("denied")
            || err.contains("authentication required"),
        "{err}"
    );
    // Without credentials: refused.
    let out = run(vec![
        "copy".into(),
        "-q".into(),
        "--src-tls-verify=false".into(),
        dest,
        format!("oci:{}:v2", back.display()),
    ])
    .await;
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_manage_their_own_tokens_through_the_api() {
    let reg = registry().await;
    let http = Client::new();
    let url = format!("{}/auth/tokens", reg.url);
    let r = http
        .post(&url)
        .basic_auth("alice", Some(ALICE_PW))
        .json(&serde_json::json!({"name": "laptop", "scopes": ["repository:team/*:pull"], "expires": "30d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let pat = v["token"].as_str().unwrap().to_owned();
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(pat.starts_with("bay_pat_"));
    assert_eq!(
        token(&http, &reg, "alice", &pat, &["repository:team/app:pull"])
            .await
            .status(),
        StatusCode::OK
    );
    // A PAT cannot mint more tokens; anonymous callers cannot either.
    let r = http
        .post(&url)
        .basic_auth("alice", Some(&pat))
        .json(&serde_json::json!({"scopes": ["repository:team/*:pull"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // Listing never shows secrets; a Bearer token identifies the caller too.
    let t = bearer(&http, &reg, "alice", ALICE_PW, &[]).await;
    let list: Value = http
        .get(&url)
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["tokens"][0]["id"], id.as_str());
    assert!(!list.to_string().contains(&pat[pat.len() - 20..]));
    // bob cannot revoke alice's token; alice can.
    let r = http
        .delete(format!("{url}/{id}"))
        .basic_auth("bob", Some("bob-password-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http
        .delete(format!("{url}/{id}"))
        .basic_auth("alice", Some(ALICE_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        token(&http, &reg, "alice", &pat, &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Bad requests get a clear 400.
    let r = http
        .post(&url)
        .basic_auth("alice", Some(ALICE_PW))
        .json(&serde_json::json!({"scopes": ["nonsense"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_clients_scopes_by_gun_map_to_repositories() {
    let reg = registry().await;
    let http = Client::new();
    // docker and notary ask for the GUN, host included.
    let gun_scope = format!("repository:{}/team/app:pull,push", reg.host);
    let t = bearer(&http, &reg, "alice", ALICE_PW, &[&gun_scope]).await;
    let r = http
        .get(format!(
            "{}/v2/{}/team/app/_trust/tuf/root.json",
            reg.url, reg.host
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "authorized; no trust data yet"
    );
    assert_eq!(
        push_blob(&http, &reg, "team/app", Some(&t), b"gun").await,
        StatusCode::CREATED
    );
    // Without the scope the trust API is refused.
    let other = bearer(
        &http,
        &reg,
        "alice",
        ALICE_PW,
        &["repository:team/web:pull"],
    )
    .await;
    let r = http
        .get(format!(
            "{}/v2/{}/team/app/_trust/tuf/root.json",
            reg.url, reg.host
        ))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
