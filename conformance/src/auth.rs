//! Token authentication (Docker token spec): challenges, credentials, scope
//! enforcement, forged tokens, OAuth2 grants and personal-access-token
//! revocation.
//!
//! Runs only when the suite has credentials (`--username`); the user needs
//! pull and push on the test namespace. Forged tokens are sent with their
//! own `Authorization` header, which the HTTP helper passes through as is.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::Value;

use crate::check::{Check, ensure, fail, skip};
use crate::ctx::{Ctx, random_bytes};
use crate::http::{Body, Challenge, Credentials, Http, Request, Response};
use crate::{Case, case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!("anonymous-challenge", anonymous_challenge),
        case!("wrong-password", wrong_password),
        case!("pull-only-token", pull_only_token),
        case!("token-bound-to-repo", token_bound_to_repo),
        case!("forged-tokens", forged_tokens),
        case!("expired-token", expired_token),
        case!("oauth2-password-and-refresh", oauth2_grants),
        case!("revoked-pat", revoked_pat),
    ]
}

fn creds(ctx: &Ctx) -> Check<Credentials> {
    match ctx.http.credentials() {
        Some(c) => Ok(c.clone()),
        None => fail!("suite bug: auth group without credentials"),
    }
}

/// The Bearer challenge of an anonymous request to `path`.
async fn challenge_for(ctx: &Ctx, method: Method, path: &str) -> Check<Challenge> {
    let anon = Http::new(ctx.http.base().as_str(), None).map_err(crate::check::Stop::from)?;
    let req = Request {
        method,
        url: anon.resolve(path).map_err(crate::check::Stop::from)?,
        headers: Default::default(),
        body: Body::Empty,
    };
    let resp = anon.send(&req).await?;
    ensure!(
        resp.status.as_u16() == 401,
        "anonymous {path} must be 401: {}",
        resp.describe()
    );
    let Some(c) = resp.header("www-authenticate").and_then(Challenge::parse) else {
        fail!("401 without a usable WWW-Authenticate: {}", resp.describe());
    };
    if c.scheme != "bearer" {
        skip!("the registry uses {} auth, not the token spec", c.scheme);
    }
    ensure!(
        c.params.contains_key("realm"),
        "Bearer challenge without realm: {}",
        resp.describe()
    );
    Ok(c)
}

async fn token(ctx: &Ctx, scopes: &[String], who: &Credentials) -> Check<String> {
    let c = challenge_for(ctx, Method::GET, "/v2/").await?;
    let set: BTreeSet<String> = scopes.iter().cloned().collect();
    Ok(ctx.http.fetch_token(&c, &set, who).await?)
}

async fn with_token(
    ctx: &Ctx,
    method: Method,
    path: &str,
    token: &str,
    body: Option<bytes::Bytes>,
) -> Check<Response> {
    let mut call = ctx
        .call(method, path)
        .header("authorization", format!("Bearer {token}"));
    if let Some(b) = body {
        call = call.blob(b);
    }
    call.send().await
}

fn refused(resp: &Response, what: &str) -> Check {
    ensure!(
        matches!(resp.status.as_u16(), 401 | 403),
        "{what} must be refused with 401 or 403: {}",
        resp.describe()
    );
    crate::check::error_codes(&resp.body).map_err(|why| {
        crate::check::Stop::Fail(format!("{what}: refusal body is not spec JSON ({why})"))
    })?;
    Ok(())
}

async fn anonymous_challenge(ctx: Ctx) -> Check {
    let c = challenge_for(&ctx, Method::GET, "/v2/").await?;
    ensure!(
        c.params.contains_key("service"),
        "challenge without service"
    );
    let repo = ctx.repo("anon");
    let c = challenge_for(&ctx, Method::GET, &format!("/v2/{repo}/tags/list")).await?;
    let scope = c.params.get("scope").cloned().unwrap_or_default();
    ensure!(
        scope.contains(&format!("repository:{repo}:pull")),
        "challenge scope {scope:?} does not name repository:{repo}:pull"
    );
    Ok(())
}

async fn wrong_password(ctx: Ctx) -> Check {
    let mut bad = creds(&ctx)?;
    bad.password.push_str("-wrong");
    let c = challenge_for(&ctx, Method::GET, "/v2/").await?;
    match ctx.http.fetch_token(&c, &BTreeSet::new(), &bad).await {
        Err(crate::http::HttpError::TokenRefused { status, .. }) if status.as_u16() == 401 => {
            Ok(())
        }
        Err(crate::http::HttpError::TokenRefused { status, .. }) => {
            fail!("wrong password must get 401 at the token endpoint, got {status}")
        }
        Ok(_) => fail!("a wrong password was given a token"),
        Err(e) => fail!("token request failed oddly: {e}"),
    }
}

async fn pull_only_token(ctx: Ctx) -> Check {
    let repo = ctx.repo("pullonly");
    let m = ctx.prepare_image(&repo, serde_json::json!({})).await?;
    ctx.put_manifest(&repo, "v1", &m).await?;
    let me = creds(&ctx)?;
    let t = token(&ctx, &[format!("repository:{repo}:pull")], &me).await?;
    let r = with_token(
        &ctx,
        Method::GET,
        &format!("/v2/{repo}/manifests/v1"),
        &t,
        None,
    )
    .await?;
    ensure!(
        r.status.as_u16() == 200,
        "a pull token must read: {}",
        r.describe()
    );
    let r = with_token(
        &ctx,
        Method::POST,
        &format!("/v2/{repo}/blobs/uploads/"),
        &t,
        None,
    )
    .await?;
    refused(&r, "an upload with a pull-only token")?;
    let r = with_token(
        &ctx,
        Method::DELETE,
        &format!("/v2/{repo}/manifests/{}", m.digest),
        &t,
        None,
    )
    .await?;
    refused(&r, "a delete with a pull-only token")?;
    let r = with_token(
        &ctx,
        Method::PUT,
        &format!("/v2/{repo}/manifests/v2"),
        &t,
        Some(m.bytes.clone()),
    )
    .await?;
    refused(&r, "a manifest PUT with a pull-only token")?;
    Ok(())
}

async fn token_bound_to_repo(ctx: Ctx) -> Check {
    let a = ctx.repo("a");
    let b = ctx.repo("b");
    let me = creds(&ctx)?;
    let t = token(&ctx, &[format!("repository:{a}:pull,push")], &me).await?;
    let data = random_bytes(32);
    let d = oci_types::Digest::sha256_of(&data);
    let r = with_token(
        &ctx,
        Method::POST,
        &format!("/v2/{a}/blobs/uploads/?digest={d}"),
        &t,
        Some(data.clone()),
    )
    .await?;
    ensure!(
        matches!(r.status.as_u16(), 201 | 202),
        "repo A's token must push to A: {}",
        r.describe()
    );
    let r = with_token(
        &ctx,
        Method::POST,
        &format!("/v2/{b}/blobs/uploads/?digest={d}"),
        &t,
        Some(data),
    )
    .await?;
    refused(&r, "repo A's token used on repo B")?;
    let r = with_token(&ctx, Method::GET, &format!("/v2/{b}/tags/list"), &t, None).await?;
    refused(&r, "repo A's token reading repo B")?;
    Ok(())
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn forged_tokens(ctx: Ctx) -> Check {
    let repo = ctx.repo("forged");
    let me = creds(&ctx)?;
    let good = token(&ctx, &[format!("repository:{repo}:pull,push")], &me).await?;
    let parts: Vec<&str> = good.split('.').collect();
    if parts.len() != 3 {
        skip!("tokens are not JWTs; forged-JWT checks do not apply");
    }
    let Ok(claims) = URL_SAFE_NO_PAD
        .decode(parts[1])
        .map_err(|_| ())
        .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|_| ()))
    else {
        skip!("token payload is not JSON; forged-JWT checks do not apply");
    };
    let mut admin = claims.clone();
    admin["access"] = serde_json::json!([{"type":"repository","name":repo,"actions":["pull","push","delete"]},{"type":"registry","name":"catalog","actions":["*"]}]);
    let mut flipped = parts[2].as_bytes().to_vec();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let hs256 = {
        use hmac::Mac as _;
        let header = b64(&serde_json::json!({"alg":"HS256","typ":"JWT"}));
        let payload = b64(&claims);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"secret")
            .map_err(|e| crate::check::Stop::Fail(e.to_string()))?;
        mac.update(format!("{header}.{payload}").as_bytes());
        format!(
            "{header}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let forged = [
        ("garbage", "not-a-token".to_owned()),
        (
            "alg=none",
            format!(
                "{}.{}.",
                b64(&serde_json::json!({"alg":"none","typ":"JWT"})),
                parts[1]
            ),
        ),
        ("alg=HS256", hs256),
        (
            "edited claims",
            format!("{}.{}.{}", parts[0], b64(&admin), parts[2]),
        ),
        (
            "flipped signature",
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                String::from_utf8_lossy(&flipped)
            ),
        ),
        ("truncated", format!("{}.{}", parts[0], parts[1])),
    ];
    for (what, tok) in forged {
        let r = with_token(
            &ctx,
            Method::GET,
            &format!("/v2/{repo}/tags/list"),
            &tok,
            None,
        )
        .await?;
        ensure!(
            r.status.as_u16() == 401,
            "a {what} token must get 401: {}",
            r.describe()
        );
    }
    // The genuine token still works, so the refusals above were about the forgery.
    let r = with_token(
        &ctx,
        Method::GET,
        &format!("/v2/{repo}/tags/list"),
        &good,
        None,
    )
    .await?;
    ensure!(
        r.status.as_u16() != 401,
        "the genuine token was refused: {}",
        r.describe()
    );
    Ok(())
}

async fn expired_token(ctx: Ctx) -> Check {
    let Some(tok) = ctx.expired_token.clone() else {
        skip!(
            "no expired token supplied (--expired-token); a token expires only after its lifetime"
        );
    };
    let r = with_token(&ctx, Method::GET, "/v2/", &tok, None).await?;
    ensure!(
        r.status.as_u16() == 401,
        "an expired token must get 401: {}",
        r.describe()
    );
    Ok(())
}

async fn post_token(ctx: &Ctx, realm: &str, form: &[(&str, &str)]) -> Check<Response> {
    let body =
        serde_urlencoded::to_string(form).map_err(|e| crate::check::Stop::Fail(e.to_string()))?;
    ctx.call(Method::POST, realm)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
}

async fn oauth2_grants(ctx: Ctx) -> Check {
    let me = creds(&ctx)?;
    let c = challenge_for(&ctx, Method::GET, "/v2/").await?;
    let realm = c.params.get("realm").cloned().unwrap_or_default();
    let service = c.params.get("service").cloned().unwrap_or_default();
    let repo = ctx.repo("oauth");
    let scope = format!("repository:{repo}:pull,push");
    let r = post_token(
        &ctx,
        &realm,
        &[
            ("grant_type", "password"),
            ("username", &me.username),
            ("password", &me.password),
            ("service", &service),
            ("client_id", "bay-conformance"),
            ("access_type", "offline"),
            ("scope", &scope),
        ],
    )
    .await?;
    if r.status.as_u16() == 404 {
        skip!(
            "POST {realm} answers 404: the OAuth2 flow is not offered (clients fall back to GET)"
        );
    }
    ensure!(
        r.status.as_u16() == 200,
        "password grant must be 200: {}",
        r.describe()
    );
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let Some(access) = v["access_token"].as_str() else {
        fail!("password grant without access_token: {}", r.describe())
    };
    ensure!(
        v["expires_in"].as_i64().is_some_and(|e| e >= 60),
        "expires_in must be >= 60: {}",
        r.describe()
    );
    let data = random_bytes(16);
    let d = oci_types::Digest::sha256_of(&data);
    let p = with_token(
        &ctx,
        Method::POST,
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        access,
        Some(data.clone()),
    )
    .await?;
    ensure!(
        matches!(p.status.as_u16(), 201 | 202),
        "the password-grant token must push: {}",
        p.describe()
    );
    let Some(refresh) = v["refresh_token"].as_str() else {
        fail!(
            "access_type=offline must return a refresh_token: {}",
            r.describe()
        )
    };
    let r = post_token(
        &ctx,
        &realm,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("service", &service),
            ("client_id", "bay-conformance"),
            ("scope", &scope),
        ],
    )
    .await?;
    ensure!(
        r.status.as_u16() == 200,
        "refresh grant must be 200: {}",
        r.describe()
    );
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let Some(access2) = v["access_token"].as_str() else {
        fail!("refresh grant without access_token")
    };
    let g = with_token(
        &ctx,
        Method::GET,
        &format!("/v2/{repo}/blobs/{d}"),
        access2,
        None,
    )
    .await?;
    ensure!(
        g.status.as_u16() == 200,
        "the refresh-grant token must read: {}",
        g.describe()
    );
    let r = post_token(
        &ctx,
        &realm,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "not-a-refresh-token"),
            ("service", &service),
            ("client_id", "bay-conformance"),
        ],
    )
    .await?;
    ensure!(
        matches!(r.status.as_u16(), 400 | 401),
        "a bogus refresh token must be refused: {}",
        r.describe()
    );
    Ok(())
}

async fn revoked_pat(ctx: Ctx) -> Check {
    let me = creds(&ctx)?;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", me.username, me.password))
    );
    let body = serde_json::json!({"name": "conformance", "scopes": [format!("repository:{}/**:pull", ctx.ns)], "expires": "1h"});
    let r = ctx
        .call(Method::POST, "/auth/tokens")
        .header("authorization", &basic)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    if r.status.as_u16() == 404 {
        skip!("no personal-access-token API at /auth/tokens (a bay extension)");
    }
    ensure!(
        r.status.as_u16() == 201,
        "creating a PAT must be 201: {}",
        r.describe()
    );
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let (Some(id), Some(secret)) = (v["id"].as_str(), v["token"].as_str()) else {
        fail!("PAT response lacks id/token")
    };
    let pat = Credentials {
        username: me.username.clone(),
        password: secret.to_owned(),
    };
    token(&ctx, &[format!("repository:{}/x:pull", ctx.ns)], &pat).await?;
    let r = ctx
        .call(Method::DELETE, &format!("/auth/tokens/{id}"))
        .header("authorization", &basic)
        .send()
        .await?;
    ensure!(
        r.status.as_u16() == 204,
        "revoking a PAT must be 204: {}",
        r.describe()
    );
    let c = challenge_for(&ctx, Method::GET, "/v2/").await?;
    match ctx.http.fetch_token(&c, &BTreeSet::new(), &pat).await {
        Err(crate::http::HttpError::TokenRefused { status, .. }) if status.as_u16() == 401 => {
            Ok(())
        }
        Ok(_) => fail!("a revoked PAT was still given a token"),
        Err(e) => fail!("a revoked PAT must get 401 at the token endpoint: {e}"),
    }
}
