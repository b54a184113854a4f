//! `/auth/tokens`: users manage their own personal access tokens.
//!
//! - `POST /auth/tokens` `{"name","scopes":[…],"expires":"30d"}` → 201 with
//!   the secret, shown once;
//! - `GET /auth/tokens` → the caller's tokens (never their secrets);
//! - `DELETE /auth/tokens/{id}` → revoke one of the caller's tokens.
//!
//! The caller authenticates with a password (Basic) or an access token
//! (Bearer); a personal access token cannot mint further tokens.

use std::net::IpAddr;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;

use super::Shared;
use super::token::client_ip;
use crate::admin::{self, AdminError};
use crate::auth::{LoginError, PAT_PREFIX, basic_credentials};
use crate::error::{ApiError, Code};
use crate::meta::User;

fn unauthorized(msg: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, Code::Unauthorized, msg)
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, Code::Unsupported, m),
            AdminError::NoToken(id) => ApiError::new(
                StatusCode::NOT_FOUND,
                Code::Unsupported,
                format!("no active token {id}"),
            ),
            AdminError::NoUser(_) => unauthorized("the account no longer exists"),
            other => ApiError::internal(other),
        }
    }
}

async fn caller(st: &Shared, headers: &HeaderMap, ip: IpAddr) -> Result<User, ApiError> {
    if let Some((user, secret)) = basic_credentials(headers) {
        if secret.starts_with(PAT_PREFIX) {
            return Err(unauthorized(
                "a personal access token cannot manage tokens; use your password",
            ));
        }
        return match st.auth.login(&user, &secret, ip).await {
            Ok(l) => Ok(l.user),
            Err(LoginError::Invalid) => Err(unauthorized("invalid username or password")),
            Err(LoginError::RateLimited(_)) => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                Code::TooManyRequests,
                "too many failed logins",
            )),
            Err(LoginError::Internal(e)) => Err(ApiError::internal(e)),
        };
    }
    let claims = st
        .auth
        .bearer_claims(headers)
        .ok_or_else(|| unauthorized("authenticate with Basic credentials or a Bearer token"))?;
    if claims.sub.is_empty() {
        return Err(unauthorized("anonymous tokens cannot manage tokens"));
    }
    st.meta
        .user(&claims.sub)
        .await?
        .ok_or_else(|| unauthorized("the account no longer exists"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    name: String,
    scopes: Vec<String>,
    expires: Option<String>,
}

/// `POST /auth/tokens`
pub async fn create(State(st): State<Shared>, req: Request) -> Response {
    let ip = client_ip(&req);
    let (parts, body) = req.into_parts();
    let run = async {
        let user = caller(&st, &parts.headers, ip).await?;
        let bytes = http_body_util::Limited::new(body, 64 * 1024)
            .collect()
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::Unsupported,
                    format!("request body: {e}"),
                )
            })?
            .to_bytes();
        let b: CreateBody = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::Unsupported,
                format!("expected {{\"name\",\"scopes\",\"expires\"}}: {e}"),
            )
        })?;
        let secs = b
            .expires
            .as_deref()
            .map(admin::parse_duration_secs)
            .transpose()?;
        let (rec, secret) =
            admin::token_create(&st.meta, &user.name, &b.name, &b.scopes, secs).await?;
        Ok::<_, ApiError>(
            (
                StatusCode::CREATED,
                axum::Json(json!({"id": rec.id, "token": secret, "name": rec.name, "scopes": rec.scopes, "expires_at": rec.expires_at})),
            )
                .into_response(),
        )
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /auth/tokens`
pub async fn list(State(st): State<Shared>, req: Request) -> Response {
    let ip = client_ip(&req);
    let (parts, _) = req.into_parts();
    let run = async {
        let user = caller(&st, &parts.headers, ip).await?;
        let tokens = admin::token_list(&st.meta, Some(&user.name)).await?;
        let list: Vec<_> = tokens
            .iter()
            .map(|t| json!({"id": t.id, "name": t.name, "scopes": t.scopes, "created_at": t.created_at, "expires_at": t.expires_at, "last_used_at": t.last_used_at, "revoked": t.revoked_at.is_some()}))
            .collect();
        Ok::<_, ApiError>(axum::Json(json!({"tokens": list})).into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE /auth/tokens/{id}`
pub async fn revoke(State(st): State<Shared>, Path(id): Path<String>, req: Request) -> Response {
    let ip = client_ip(&req);
    let (parts, _) = req.into_parts();
    let run = async {
        let user = caller(&st, &parts.headers, ip).await?;
        admin::token_revoke(&st.meta, &id, Some(&user.name)).await?;
        Ok::<_, ApiError>(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}
