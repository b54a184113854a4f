//! `GET /token` (Docker token spec, Basic credentials) and `POST /token`
//! (OAuth2 `password` and `refresh_token` grants).

use std::net::{IpAddr, Ipv4Addr};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::json;

use super::{Query, Shared};
use crate::auth::scope::Scope;
use crate::auth::{Auth, Login, LoginError, basic_credentials};
use crate::error::{ApiError, Code};
use crate::server::ClientAddr;

/// The peer address of a request (unspecified when served without a socket).
pub(super) fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn login_error(e: LoginError) -> ApiError {
    match e {
        LoginError::Invalid => ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthorized,
            "invalid username or password",
        ),
        LoginError::RateLimited(wait) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::TooManyRequests,
            format!(
                "too many failed logins; retry in {} s",
                wait.as_secs().max(1)
            ),
        )
        .with_header(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        ),
        LoginError::Internal(e) => ApiError::internal(e),
    }
}

/// The token response, with both `token` and `access_token` for old clients.
async fn respond(
    auth: &Auth,
    login: Option<&Login>,
    requested: &[Scope],
    refresh: Option<String>,
) -> Result<Response, ApiError> {
    let granted = auth.grant(login, requested).await?;
    let sub = login.map(|l| l.user.name.as_str()).unwrap_or("");
    let scope_text: Vec<String> = granted.iter().map(ToString::to_string).collect();
    let (token, claims) = auth.issue(sub, granted).map_err(ApiError::internal)?;
    tracing::info!(target: "audit", event = "token", user = sub, granted = ?scope_text, refresh = refresh.is_some(), "token issued");
    let issued = chrono::DateTime::from_timestamp(claims.iat, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut body = json!({
        "token": token,
        "access_token": token,
        "expires_in": claims.exp - claims.iat,
        "issued_at": issued,
        "scope": scope_text.join(" "),
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn scopes<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Scope> {
    values
        .flat_map(|v| v.split(' '))
        .filter_map(Scope::parse)
        .collect()
}

/// `GET /token?service=&scope=&offline_token=&client_id=&account=`
pub async fn get(State(st): State<Shared>, req: Request) -> Response {
    let ip = client_ip(&req);
    let (parts, _) = req.into_parts();
    let run = async {
        let query = Query::parse(parts.uri.query())?;
        let requested = scopes(query.all("scope"));
        let offline = query.get("offline_token") == Some("true");
        let client_id = query
            .get("client_id")
            .unwrap_or("registry-client")
            .to_owned();
        let login = match basic_credentials(&parts.headers) {
            Some((user, secret)) => Some(
                st.auth
                    .login(&user, &secret, ip)
                    .await
                    .map_err(login_error)?,
            ),
            None if parts.headers.contains_key(header::AUTHORIZATION) => {
                st.auth.note_failure(ip);
                return Err(login_error(LoginError::Invalid));
            }
            None => None,
        };
        let refresh = match (&login, offline) {
            (Some(l), true) => Some(st.auth.issue_refresh(l, &client_id).await?),
            _ => None,
        };
        respond(&st.auth, login.as_ref(), &requested, refresh).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /token` with an `application/x-www-form-urlencoded` body.
pub async fn post(State(st): State<Shared>, req: Request) -> Response {
    let ip = client_ip(&req);
    let run = async {
        let body = http_body_util::Limited::new(req.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::Unsupported,
                    format!("token request body: {e}"),
                )
            })?
            .to_bytes();
        let form = Query::parse(std::str::from_utf8(&body).ok())?;
        let requested = scopes(form.all("scope"));
        let client_id = form
            .get("client_id")
            .unwrap_or("registry-client")
            .to_owned();
        let offline = form.get("access_type") == Some("offline");
        match form.get("grant_type") {
            Some("password") => {
                let (Some(user), Some(pw)) = (form.get("username"), form.get("password")) else {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        Code::Unsupported,
                        "username and password are required",
                    ));
                };
                let login = st.auth.login(user, pw, ip).await.map_err(login_error)?;
                let refresh = if offline {
                    Some(st.auth.issue_refresh(&login, &client_id).await?)
                } else {
                    None
                };
                respond(&st.auth, Some(&login), &requested, refresh).await
            }
            Some("refresh_token") => {
                let Some(rt) = form.get("refresh_token") else {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        Code::Unsupported,
                        "refresh_token is required",
                    ));
                };
                let login = st.auth.login_refresh(rt, ip).await.map_err(login_error)?;
                // The refresh token stays valid; it is returned for clients
                // that expect one.
                respond(&st.auth, Some(&login), &requested, Some(rt.to_owned())).await
            }
            other => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::Unsupported,
                format!("unsupported grant_type {other:?}: use password or refresh_token"),
            )),
        }
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /token/jwks.json`: the public signing key.
pub async fn jwks(State(st): State<Shared>) -> Response {
    axum::Json(st.auth.keys().jwks()).into_response()
}
