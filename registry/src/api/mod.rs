//! The HTTP surface: `/v2/` routed by one dispatcher (see [`route`]), plus
//! health (`/healthz`, and notary-server's `/_notary_server/health`) and
//! metrics.

mod blobs;
mod manifests;
mod pats;
mod referrers;
pub mod route;
mod tags;
mod token;
mod uploads;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::scope::Action;
use crate::auth::{Auth, Need};
use crate::config::Config;
use crate::error::{ApiError, Code};
use crate::meta::Meta;
use crate::storage::{BlobStore, Uploads};
use route::Route;

/// Shared state of every request.
pub struct AppState {
    /// Metadata database.
    pub meta: Meta,
    /// Blob bytes.
    pub blobs: BlobStore,
    /// Upload sessions.
    pub uploads: Uploads,
    /// Configuration.
    pub config: Arc<Config>,
    /// Authentication and access control.
    pub auth: Arc<Auth>,
    /// Current trust metadata, briefly cached.
    pub trust_cache: crate::trust::cache::Cache,
}

/// The state handle given to handlers.
pub type Shared = Arc<AppState>;

/// Result of a handler.
pub type ApiResult = Result<Response, ApiError>;

/// The full router.
pub fn router(state: Shared) -> Router {
    let header_limit = state.config.limits.header_max_bytes;
    Router::new()
        .route("/v2", axum::routing::any(dispatch))
        .route("/v2/", axum::routing::any(dispatch))
        .route("/v2/{*rest}", axum::routing::any(dispatch))
        .route("/token", get(token::get).post(token::post))
        .route("/token/jwks.json", get(token::jwks))
        .route("/auth/tokens", get(pats::list).post(pats::create))
        .route("/auth/tokens/{id}", axum::routing::delete(pats::revoke))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/_notary_server/health",
            axum::routing::any(crate::trust::notary_health),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            header_size_limit(req, next, header_limit)
        }))
        .layer(middleware::from_fn(api_version_header))
        .with_state(state)
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, Code::Unsupported, "no such endpoint").into_response()
}

async fn api_version_header(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

/// Oversized headers get the spec's JSON error rather than a bare 431.
async fn header_size_limit(req: Request, next: Next, limit: usize) -> Response {
    let total: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if total > limit {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Code::SizeInvalid,
            format!("request headers are {total} bytes; the limit is {limit}"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Parsed query string (keys may repeat, e.g. `tag=`).
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Result<Self, ApiError> {
        let pairs =
            serde_urlencoded::from_str::<Vec<(String, String)>>(q.unwrap_or("")).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    Code::Unsupported,
                    format!("bad query string: {e}"),
                )
            })?;
        Ok(Query(pairs))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a handler sees of the request.
pub(crate) struct Req {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    pub body: Body,
}

async fn dispatch(State(st): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // A refused request may leave its body unread; the connection then
    // cannot carry another request, so say so instead of letting the client
    // reuse it and fail.
    let has_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut resp = route_and_handle(&st, parts, body).await;
    if has_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

async fn route_and_handle(
    st: &AppState,
    parts: axum::http::request::Parts,
    body: Body,
) -> Response {
    let route = match route::parse(parts.uri.path()) {
        Ok(Some(r)) => r,
        Ok(None) => return not_found().await,
        Err(e) => return e.into_response(),
    };
    let query = match Query::parse(parts.uri.query()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let needs = needs(&parts.method, &route, &query);
    if let Err(e) = st.auth.authorize(&parts.headers, &needs).await {
        return e.into_response();
    }
    let req = Req {
        method: parts.method,
        headers: parts.headers,
        query,
        body,
    };
    handle(st, route, req)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn handle(st: &AppState, route: Route, req: Req) -> ApiResult {
    use Method as M;
    let m = req.method.clone();
    match route {
        Route::Base if m == M::GET || m == M::HEAD => {
            Ok(([(header::CONTENT_TYPE, "application/json")], "{}").into_response())
        }
        Route::Catalog if m == M::GET => tags::catalog(st, &req.query).await,
        Route::Tags(name) if m == M::GET => tags::list(st, &name, &req.query).await,
        Route::Manifest(name, r) => match m {
            M::GET | M::HEAD => manifests::get(st, &name, &r, m == M::HEAD).await,
            M::PUT => manifests::put(st, &name, &r, req).await,
            M::DELETE => manifests::delete(st, &name, &r).await,
            _ => Err(method_not_allowed()),
        },
        Route::Blob(name, d) => match m {
            M::GET | M::HEAD => blobs::get(st, &name, &d, &req.headers, m == M::HEAD).await,
            M::DELETE => blobs::delete(st, &name, &d).await,
            _ => Err(method_not_allowed()),
        },
        Route::UploadStart(name) if m == M::POST => uploads::start(st, &name, req).await,
        Route::Upload(name, id) => match m {
            M::GET => uploads::status(st, &name, id).await,
            M::PATCH => uploads::patch(st, &name, id, req).await,
            M::PUT => uploads::put(st, &name, id, req).await,
            M::DELETE => uploads::cancel(st, &name, id).await,
            _ => Err(method_not_allowed()),
        },
        Route::Referrers(name, d) if m == M::GET => {
            referrers::list(st, &name, &d, &req.query).await
        }
        Route::Trust { gun, rest, .. } => Ok(crate::trust::handle(st, &gun, &rest, req).await),
        Route::TrustChangefeed => Ok(crate::trust::changefeed_all(st, req).await),
        Route::TrustInvalidGun(gun) => Ok(crate::trust::invalid_gun(gun)),
        _ => Err(method_not_allowed()),
    }
}

/// The access a request needs (docker token spec table).
fn needs(method: &Method, route: &Route, query: &Query) -> Vec<Need> {
    if let Route::Trust { repo, rest, .. } = route {
        return crate::trust::needed_actions(method, rest)
            .into_iter()
            .map(|a| Need::repo(repo.as_str(), a))
            .collect();
    }
    let Some(name) = route.repository() else {
        return match route {
            Route::Catalog | Route::TrustChangefeed => vec![Need {
                kind: "registry",
                name: "catalog".into(),
                action: Action::All,
            }],
            _ => Vec::new(),
        };
    };
    let n = name.as_str();
    let mut out = match *method {
        Method::GET | Method::HEAD => vec![Need::repo(n, Action::Pull)],
        Method::DELETE if matches!(route, Route::Upload(..)) => vec![Need::repo(n, Action::Push)],
        Method::DELETE => vec![Need::repo(n, Action::Delete)],
        _ => vec![Need::repo(n, Action::Pull), Need::repo(n, Action::Push)],
    };
    if let (Route::UploadStart(_), Some(from)) = (route, query.get("from"))
        && query.get("mount").is_some()
    {
        out.push(Need::repo(from, Action::Pull));
    }
    out
}

fn method_not_allowed() -> ApiError {
    ApiError::unsupported("method not allowed on this endpoint")
}

/// `Range: 0-<end>` as registries report upload progress (`0-0` when empty).
pub(crate) fn upload_range(size: u64) -> HeaderValue {
    hv(&format!("0-{}", size.saturating_sub(1)))
}

/// A header value from a string we built (always visible ASCII).
pub(crate) fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Responses with no body still say so explicitly.
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = (status, Body::empty()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}
