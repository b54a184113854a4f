//! `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, paginated with `n`,
//! `last` and `Link: <…>; rel="next"`. Order is bytewise ("ASCIIbetical"),
//! the same order `last` compares in.

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use oci_types::RepoName;
use serde_json::json;

use super::{ApiResult, AppState, Query, hv};
use crate::error::{ApiError, Code};

/// `n` and `last` from the query, with `n` capped at the configured page size.
fn page(st: &AppState, q: &Query) -> Result<(usize, Option<String>, bool), ApiError> {
    let max = st.config.limits.page_max;
    let (n, explicit) = match q.get("n") {
        Some(v) => (
            // Digits beyond usize just mean "as many as allowed".
            v.parse::<usize>()
                .or_else(|e| {
                    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                        Ok(usize::MAX)
                    } else {
                        Err(e)
                    }
                })
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        Code::Unsupported,
                        format!("n must be a non-negative integer, not {v:?}"),
                    )
                })?,
            true,
        ),
        None => (max, false),
    };
    Ok((n.min(max), q.get("last").map(str::to_owned), explicit))
}

fn link(path: &str, n: usize, last: &str) -> String {
    let q = serde_urlencoded::to_string([("n", n.to_string()), ("last", last.to_owned())])
        .unwrap_or_default();
    format!("<{path}?{q}>; rel=\"next\"")
}

pub(super) async fn list(st: &AppState, name: &RepoName, q: &Query) -> ApiResult {
    let (n, last, _) = page(st, q)?;
    let mut tags = if n == 0 {
        st.meta
            .repo_id(name)
            .await?
            .map(|_| Vec::new())
            .ok_or_else(|| ApiError::name_unknown(name.as_str()))?
    } else {
        st.meta
            .list_tags(name, last.as_deref(), n + 1)
            .await?
            .ok_or_else(|| ApiError::name_unknown(name.as_str()))?
    };
    let more = tags.len() > n;
    tags.truncate(n);
    let body = json!({ "name": name.as_str(), "tags": tags }).to_string();
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let (true, Some(l)) = (more, tags.last()) {
        resp.headers_mut().insert(
            header::LINK,
            hv(&link(&format!("/v2/{name}/tags/list"), n, l)),
        );
    }
    Ok(resp)
}

pub(super) async fn catalog(st: &AppState, q: &Query) -> ApiResult {
    let (n, last, _) = page(st, q)?;
    let mut repos = if n == 0 {
        Vec::new()
    } else {
        st.meta.list_repositories(last.as_deref(), n + 1).await?
    };
    let more = repos.len() > n;
    repos.truncate(n);
    let body = json!({ "repositories": repos }).to_string();
    let mut resp = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let (true, Some(l)) = (more, repos.last()) {
        resp.headers_mut()
            .insert(header::LINK, hv(&link("/v2/_catalog", n, l)));
    }
    Ok(resp)
}
