//! The suite's HTTP helper: base-URL resolution, registry authentication and raw requests.
//!
//! Every request the suite makes goes through [`Http::send`]. It resolves paths (and the
//! relative or absolute `Location`s registries hand out) against the base URL, never follows
//! redirects (a redirect is a response the tests must see), and reads the whole body so tests
//! can compare bytes.
//!
//! **Authentication.** When credentials are configured and a response is `401` with a
//! `WWW-Authenticate` challenge, the helper answers it and retries once:
//! - `Basic realm=…`: the request is repeated with `Authorization: Basic`, and every later
//!   request sends it up front.
//! - `Bearer realm=…,service=…,scope=…`: the Docker token flow. The helper asks
//!   `GET <realm>?service=<s>&scope=<…>` with Basic credentials for the union of the
//!   challenge's scope and the scope the request needs (derived from its path and method, plus
//!   `repository:<from>:pull` for a cross-repository mount), reads `token` or `access_token`,
//!   caches it per scope set and retries with `Authorization: Bearer`.
//!
//! Without credentials a `401` is returned to the test unchanged, so an auth test group can
//! inspect challenges itself with [`Challenge::parse`].
//!
//! **Raw requests.** The `url` crate (and so reqwest) normalises `..` and `%2e%2e` path
//! segments away, which makes path-traversal probes impossible to send. [`Http::raw`] writes
//! a request line verbatim over a fresh HTTP/1.1 connection with hyper's client connection.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

/// Why the HTTP helper could not produce a response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The base URL or a path/`Location` could not be resolved into a URL.
    #[error("invalid URL {url:?}")]
    InvalidUrl {
        /// The offending text.
        url: String,
        /// The parser's complaint.
        #[source]
        source: url::ParseError,
    },
    /// The base URL is not `http` or `https`, or has no host.
    #[error("unsupported base URL {url}: need http:// or https:// with a host")]
    UnsupportedBase {
        /// The base URL.
        url: String,
    },
    /// A header name or value the caller supplied is not valid HTTP.
    #[error("invalid header {name}")]
    InvalidHeader {
        /// The header name.
        name: String,
    },
    /// Building the reqwest client failed.
    #[error("cannot build HTTP client")]
    Client {
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The request could not be sent or its response not read.
    #[error("{method} {url}: transport error")]
    Transport {
        /// Request method.
        method: Method,
        /// Request URL.
        url: Url,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The token endpoint of a Bearer challenge did not hand out a token.
    #[error("token request to {realm} answered {status}")]
    TokenRefused {
        /// The realm URL.
        realm: String,
        /// The status the token endpoint answered.
        status: StatusCode,
    },
    /// The token endpoint answered 200 but the body had no `token`/`access_token`.
    #[error("token response from {realm} has no token")]
    TokenMissing {
        /// The realm URL.
        realm: String,
    },
    /// A raw request failed at the socket or HTTP/1.1 level.
    #[error("raw {method} {target} to {addr}: {source}")]
    Raw {
        /// Request method.
        method: String,
        /// The verbatim request target.
        target: String,
        /// The `host:port` connected to.
        addr: String,
        /// The cause.
        #[source]
        source: RawError,
    },
}

/// The lower-level cause of a failed raw request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RawError {
    /// TCP connect or I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP/1.1 exchange failed (for example the server closed the connection).
    #[error("http: {0}")]
    Hyper(#[from] hyper::Error),
    /// The request could not be built from the verbatim target.
    #[error("request: {0}")]
    Build(#[from] hyper::http::Error),
    /// Raw requests are only implemented for `http://` base URLs.
    #[error("raw requests need an http:// base URL")]
    NotPlainHttp,
    /// The exchange took longer than the timeout.
    #[error("timed out")]
    Timeout,
}

/// Username and password for registry authentication.
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A request body.
#[derive(Debug, Clone, Default)]
pub enum Body {
    /// No body at all.
    #[default]
    Empty,
    /// A body with a known length (sent with `Content-Length`).
    Full(Bytes),
    /// A body sent with `Transfer-Encoding: chunked`, one HTTP chunk per element, as docker
    /// does for streamed blob uploads.
    Chunked(Vec<Bytes>),
    /// Like [`Body::Chunked`], but the body stream fails after the last chunk, so the client
    /// aborts the request mid-body (a client crash or a dropped connection).
    Aborted(Vec<Bytes>),
}

/// A request to send with [`Http::send`].
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Absolute URL (use [`Http::resolve`]).
    pub url: Url,
    /// Extra headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Body,
}

/// A fully read response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The request method, for messages.
    pub method: Method,
    /// The request URL; relative `Location`s resolve against it.
    pub url: Url,
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// The first value of a header, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// All values of a header (each valid UTF-8 value once).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// `Location` resolved against the request URL (RFC 9110 §10.2.2).
    pub fn location(&self) -> Option<Result<Url, HttpError>> {
        let loc = self.header("location")?;
        Some(self.url.join(loc).map_err(|source| HttpError::InvalidUrl {
            url: loc.to_owned(),
            source,
        }))
    }

    /// One line describing the exchange, for failure messages: method, path, status and the
    /// start of the body.
    pub fn describe(&self) -> String {
        let mut target = self.url.path().to_owned();
        if let Some(q) = self.url.query() {
            target.push('?');
            target.push_str(q);
        }
        if target.len() > 120 {
            let cut = (0..=120)
                .rev()
                .find(|i| target.is_char_boundary(*i))
                .unwrap_or(0);
            target.truncate(cut);
            target.push('…');
        }
        let body = String::from_utf8_lossy(&self.body[..self.body.len().min(160)])
            .replace(['\n', '\r'], " ");
        let body = body.trim();
        if body.is_empty() {
            format!("{} {} -> {}", self.method, target, self.status.as_u16())
        } else {
            format!(
                "{} {} -> {} {}",
                self.method,
                target,
                self.status.as_u16(),
                body
            )
        }
    }
}

/// The response to a raw request.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// A parsed `WWW-Authenticate` challenge (the first one in the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercased (`basic`, `bearer`).
    pub scheme: String,
    /// Auth parameters, keys lowercased, values unquoted.
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// Parse `Scheme key="value", key2=token` (RFC 9110 §11.6.1). Returns `None` for an empty
    /// header. Hand-rolled because the auth-param grammar is ten lines and the crates that
    /// parse it pull in a whole HTTP framework.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = match header.find(char::is_whitespace) {
            Some(i) => (&header[..i], &header[i..]),
            None => (header, ""),
        };
        if scheme.is_empty() {
            return None;
        }
        let mut params = HashMap::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            let mut key = String::new();
            while let Some(&c) = chars.peek() {
                if c == '=' || c == ',' || c.is_whitespace() {
                    break;
                }
                key.push(c);
                chars.next();
            }
            if key.is_empty() {
                break;
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() != Some(&'=') {
                // A token68 or a bare key; keep it as a key without value.
                params.insert(key.to_ascii_lowercase(), String::new());
                continue;
            }
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        other => value.push(other),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
            params.insert(key.to_ascii_lowercase(), value);
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }
}

/// The token scopes a request needs, derived from its method and path:
/// `repository:<name>:pull` for reads, `pull,push` for writes, `delete` for DELETE,
/// `repository:<from>:pull` for a mount, `registry:catalog:*` for `_catalog`. Notary
/// trust paths (`/v2/<gun>/_trust/…`) name the GUN: `pull` for reads, `pull,push` for
/// uploads and `GET …key`, `*` for `POST …key` and `DELETE`; the all-GUN changefeed
/// needs `registry:catalog:*`.
pub fn scopes_for(method: &Method, url: &Url) -> BTreeSet<String> {
    let mut scopes = BTreeSet::new();
    let path = url.path();
    if path == "/v2/_catalog" {
        scopes.insert("registry:catalog:*".to_owned());
        return scopes;
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return scopes;
    };
    if rest == "_trust/changefeed" {
        scopes.insert("registry:catalog:*".to_owned());
        return scopes;
    }
    if let Some(i) = rest.find("/_trust/") {
        // Notary v1 (trust-facts §1.1/§1.4): the scope names the GUN, host
        // included, as the notary CLI and docker ask for it.
        let (gun, tail) = (&rest[..i], &rest[i + "/_trust/".len()..]);
        let action = match *method {
            Method::GET | Method::HEAD if tail.ends_with(".key") => "pull,push",
            Method::GET | Method::HEAD => "pull",
            Method::POST if tail == "tuf/" => "pull,push",
            Method::POST | Method::DELETE => "*",
            _ => "pull,push",
        };
        if !gun.is_empty() {
            scopes.insert(format!("repository:{gun}:{action}"));
        }
        return scopes;
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name_end = if n >= 3 && segs[n - 2] == "uploads" && segs[n - 3] == "blobs" {
        Some(n - 3)
    } else if n >= 2 && matches!(segs[n - 2], "blobs" | "manifests" | "tags" | "referrers") {
        Some(n - 2)
    } else {
        None
    };
    let Some(end) = name_end.filter(|e| *e > 0) else {
        return scopes;
    };
    let name = segs[..end].join("/");
    let action = match *method {
        Method::GET | Method::HEAD => "pull",
        Method::DELETE => "delete",
        _ => "pull,push",
    };
    scopes.insert(format!("repository:{name}:{action}"));
    if let Some((_, from)) = url.query_pairs().find(|(k, _)| k == "from") {
        scopes.insert(format!("repository:{from}:pull"));
    }
    scopes
}

#[derive(Default)]
struct AuthState {
    basic: bool,
    tokens: HashMap<String, String>,
}

struct Inner {
    client: reqwest::Client,
    base: Url,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
}

/// The shared HTTP helper. Cheap to clone.
#[derive(Clone)]
pub struct Http {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Per-request timeout; generous because the robustness group pushes in parallel.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl Http {
    /// A helper for the registry at `base` (e.g. `http://127.0.0.1:5000`).
    pub fn new(base: &str, creds: Option<Credentials>) -> Result<Http, HttpError> {
        let base_url = Url::parse(base).map_err(|source| HttpError::InvalidUrl {
            url: base.to_owned(),
            source,
        })?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.host_str().is_none() {
            return Err(HttpError::UnsupportedBase {
                url: base.to_owned(),
            });
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|source| HttpError::Client { source })?;
        Ok(Http {
            inner: Arc::new(Inner {
                client,
                base: base_url,
                creds,
                auth: Mutex::new(AuthState::default()),
            }),
        })
    }

    /// The credentials this helper authenticates with, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.inner.creds.as_ref()
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.inner.base
    }

    /// Resolve a path (`/v2/…`) or an absolute URL against the base URL.
    pub fn resolve(&self, path_or_url: &str) -> Result<Url, HttpError> {
        self.inner
            .base
            .join(path_or_url)
            .map_err(|source| HttpError::InvalidUrl {
                url: path_or_url.to_owned(),
                source,
            })
    }

    fn cached_auth(&self, key: &str) -> Option<String> {
        let creds = self.inner.creds.as_ref()?;
        let state = self.inner.auth.lock().ok()?;
        if state.basic {
            return Some(creds.basic_header());
        }
        state.tokens.get(key).map(|t| format!("Bearer {t}"))
    }

    async fn send_once(&self, req: &Request, auth: Option<&str>) -> Result<Response, HttpError> {
        let mut builder = self
            .inner
            .client
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone());
        if let Some(a) = auth {
            builder = builder.header(header::AUTHORIZATION, a);
        }
        builder = match &req.body {
            Body::Empty => builder,
            Body::Full(b) => builder.body(b.clone()),
            Body::Chunked(chunks) => {
                let stream = futures::stream::iter(
                    chunks.clone().into_iter().map(Ok::<Bytes, std::io::Error>),
                );
                builder.body(reqwest::Body::wrap_stream(stream))
            }
            Body::Aborted(chunks) => {
                let items = chunks
                    .clone()
                    .into_iter()
                    .map(Ok::<Bytes, std::io::Error>)
                    .chain(std::iter::once(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "conformance suite aborts this upload on purpose",
                    ))));
                builder.body(reqwest::Body::wrap_stream(futures::stream::iter(items)))
            }
        };
        let transport = |source| HttpError::Transport {
            method: req.method.clone(),
            url: req.url.clone(),
            source,
        };
        let resp = builder.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?;
        tracing::debug!(method = %req.method, url = %req.url, status = status.as_u16(), "exchange");
        Ok(Response {
            method: req.method.clone(),
            url: req.url.clone(),
            status,
            headers,
            body,
        })
    }

    /// Send a request, answering one authentication challenge if credentials are set.
    /// A request that already carries `Authorization` is sent as is and its response
    /// returned untouched (so auth tests can send garbage or expired tokens).
    pub async fn send(&self, req: &Request) -> Result<Response, HttpError> {
        if req.headers.contains_key(header::AUTHORIZATION) {
            return self.send_once(req, None).await;
        }
        let scopes = scopes_for(&req.method, &req.url);
        let key = scopes.iter().cloned().collect::<Vec<_>>().join(" ");
        let cached = self.cached_auth(&key);
        let resp = self.send_once(req, cached.as_deref()).await?;
        if resp.status != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let Some(creds) = self.inner.creds.clone() else {
            return Ok(resp);
        };
        let Some(challenge) = resp.header("www-authenticate").and_then(Challenge::parse) else {
            return Ok(resp);
        };
        let auth = match challenge.scheme.as_str() {
            "basic" => {
                if let Ok(mut st) = self.inner.auth.lock() {
                    st.basic = true;
                }
                creds.basic_header()
            }
            "bearer" => {
                let mut wanted = scopes.clone();
                if let Some(s) = challenge.params.get("scope") {
                    wanted.extend(s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned));
                }
                let token = self.fetch_token(&challenge, &wanted, &creds).await?;
                if let Ok(mut st) = self.inner.auth.lock() {
                    st.tokens.insert(key, token.clone());
                }
                format!("Bearer {token}")
            }
            _ => return Ok(resp),
        };
        self.send_once(req, Some(&auth)).await
    }

    /// Run the Docker token flow for a Bearer challenge: `GET <realm>?service=&scope=…` with
    /// Basic credentials. Public so an auth test group can drive it directly.
    pub async fn fetch_token(
        &self,
        challenge: &Challenge,
        scopes: &BTreeSet<String>,
        creds: &Credentials,
    ) -> Result<String, HttpError> {
        let realm = challenge.params.get("realm").cloned().unwrap_or_default();
        let mut url = self.resolve(&realm)?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = challenge.params.get("service") {
                q.append_pair("service", service);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
            q.append_pair("account", &creds.username);
        }
        let req = Request {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: Body::Empty,
        };
        let resp = self.send_once(&req, Some(&creds.basic_header())).await?;
        if resp.status != StatusCode::OK {
            return Err(HttpError::TokenRefused {
                realm,
                status: resp.status,
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenBody {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: Option<TokenBody> = serde_json::from_slice(&resp.body).ok();
        parsed
            .and_then(|b| b.token.or(b.access_token))
            .filter(|t| !t.is_empty())
            .ok_or(HttpError::TokenMissing { realm })
    }

    /// Send `method target` verbatim (the target is not normalised) over a new HTTP/1.1
    /// connection to the base URL's host. Only for `http://` bases.
    pub async fn raw(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, String)],
    ) -> Result<RawResponse, HttpError> {
        let base = &self.inner.base;
        let host = base.host_str().unwrap_or_default().to_owned();
        let port = base.port_or_known_default().unwrap_or(80);
        let addr = format!("{host}:{port}");
        let wrap = |source: RawError| HttpError::Raw {
            method: method.to_owned(),
            target: target.to_owned(),
            addr: addr.clone(),
            source,
        };
        if base.scheme() != "http" {
            return Err(wrap(RawError::NotPlainHttp));
        }
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(target)
            .header(header::HOST, &addr);
        for (name, value) in headers {
            let n =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| HttpError::InvalidHeader {
                    name: (*name).to_owned(),
                })?;
            let v = HeaderValue::from_str(value).map_err(|_| HttpError::InvalidHeader {
                name: (*name).to_owned(),
            })?;
            builder = builder.header(n, v);
        }
        let req = builder
            .body(Full::new(Bytes::new()))
            .map_err(|e| wrap(e.into()))?;
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            let driver = tokio::spawn(conn);
            let resp = sender.send_request(req).await?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await?.to_bytes();
            driver.abort();
            Ok::<RawResponse, RawError>(RawResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(r) => r.map_err(wrap),
            Err(_) => Err(wrap(RawError::Timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake registry plus token server: `/token` hands out `tok` for the right Basic
    /// credentials; every other path wants `Bearer tok` and otherwise sends a challenge.
    async fn fake_token_registry() -> (String, Arc<Mutex<Vec<String>>>) {
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token_queries = Arc::new(Mutex::new(Vec::new()));
        let seen = token_queries.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let auth = req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let mut resp = hyper::Response::builder();
                            let body = if req.uri().path() == "/token" {
                                seen.lock()
                                    .unwrap()
                                    .push(req.uri().query().unwrap_or_default().to_owned());
                                let good = Credentials {
                                    username: "u".into(),
                                    password: "p".into(),
                                };
                                if auth == good.basic_header() {
                                    r#"{"token":"tok","expires_in":60}"#
                                } else {
                                    resp = resp.status(401);
                                    ""
                                }
                            } else if auth == "Bearer tok" {
                                "{}"
                            } else {
                                resp = resp.status(401).header(
                                    "www-authenticate",
                                    format!(r#"Bearer realm="http://{addr}/token",service="svc",scope="repository:a/b:pull""#),
                                );
                                r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#
                            };
                            resp.body(Full::new(Bytes::from(body)))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), token_queries)
    }

    fn get(http: &Http, path: &str) -> Request {
        Request {
            method: Method::GET,
            url: http.resolve(path).unwrap(),
            headers: HeaderMap::new(),
            body: Body::Empty,
        }
    }

    #[tokio::test]
    async fn bearer_flow_fetches_and_caches_tokens() {
        let (base, queries) = fake_token_registry().await;
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let http = Http::new(&base, Some(creds)).unwrap();
        let resp = http.send(&get(&http, "/v2/a/b/tags/list")).await.unwrap();
        assert_eq!(resp.status, StatusCode::OK);
        let again = http.send(&get(&http, "/v2/a/b/tags/list")).await.unwrap();
        assert_eq!(again.status, StatusCode::OK);
        let q = queries.lock().unwrap().clone();
        assert_eq!(q.len(), 1, "token must be cached per scope: {q:?}");
        assert!(q[0].contains("service=svc"), "{q:?}");
        assert!(q[0].contains("scope=repository%3Aa%2Fb%3Apull"), "{q:?}");
        assert!(q[0].contains("account=u"), "{q:?}");

        // Without credentials the 401 reaches the caller untouched.
        let anon = Http::new(&base, None).unwrap();
        let r = anon.send(&get(&anon, "/v2/a/b/tags/list")).await.unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let ch = Challenge::parse(r.header("www-authenticate").unwrap()).unwrap();
        assert_eq!(ch.params["service"], "svc");

        // An explicit Authorization header is left alone, even with credentials configured.
        let mut forged = get(&http, "/v2/a/b/tags/list");
        forged.headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer forged"),
        );
        let r = http.send(&forged).await.unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            queries.lock().unwrap().len(),
            1,
            "no token fetch for a forged header"
        );

        // Wrong password: the token endpoint refuses and the helper says so.
        let bad = Http::new(
            &base,
            Some(Credentials {
                username: "u".into(),
                password: "x".into(),
            }),
        )
        .unwrap();
        let err = bad.send(&get(&bad, "/v2/a/b/tags/list")).await.unwrap_err();
        assert!(matches!(err, HttpError::TokenRefused { .. }), "{err:?}");
    }

    #[test]
    fn parses_bearer_challenge_with_commas_in_quotes() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:foo/bar:pull,push",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.example/token");
        assert_eq!(c.params["service"], "registry.example");
        assert_eq!(c.params["scope"], "repository:foo/bar:pull,push");
        assert_eq!(c.params["error"], "insufficient_scope");
    }

    #[test]
    fn parses_basic_challenge_and_rejects_empty() {
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], "Registry Realm");
        assert!(Challenge::parse("   ").is_none());
        let bare = Challenge::parse("Bearer").unwrap();
        assert!(bare.params.is_empty());
    }

    #[test]
    fn scopes_follow_path_and_method() {
        let u = |p: &str| Url::parse(&format!("http://r{p}")).unwrap();
        let one = |m: Method, p: &str| scopes_for(&m, &u(p)).into_iter().collect::<Vec<_>>();
        assert_eq!(
            one(Method::GET, "/v2/a/b/manifests/latest"),
            ["repository:a/b:pull"]
        );
        assert_eq!(
            one(Method::POST, "/v2/a/blobs/uploads/"),
            ["repository:a:pull,push"]
        );
        assert_eq!(
            one(Method::PATCH, "/v2/x/blobs/uploads/123"),
            ["repository:x:pull,push"]
        );
        assert_eq!(
            one(Method::DELETE, "/v2/x/blobs/sha256:00"),
            ["repository:x:delete"]
        );
        // A tag literally named `blobs` must not confuse the name split.
        assert_eq!(
            one(Method::GET, "/v2/ns/app/manifests/blobs"),
            ["repository:ns/app:pull"]
        );
        assert_eq!(
            one(
                Method::POST,
                "/v2/b/blobs/uploads/?mount=sha256:1&from=a/src"
            ),
            ["repository:a/src:pull", "repository:b:pull,push"]
        );
        assert_eq!(one(Method::GET, "/v2/_catalog"), ["registry:catalog:*"]);
        assert!(one(Method::GET, "/v2/").is_empty());
        let tuf = "/v2/127.0.0.1:5000/ns/app/_trust/tuf";
        let gun = "repository:127.0.0.1:5000/ns/app";
        assert_eq!(
            one(Method::GET, &format!("{tuf}/root.json")),
            [format!("{gun}:pull")]
        );
        assert_eq!(
            one(Method::GET, &format!("{tuf}/timestamp.key")),
            [format!("{gun}:pull,push")]
        );
        assert_eq!(
            one(Method::POST, &format!("{tuf}/")),
            [format!("{gun}:pull,push")]
        );
        assert_eq!(
            one(Method::POST, &format!("{tuf}/snapshot.key")),
            [format!("{gun}:*")]
        );
        assert_eq!(
            one(Method::DELETE, &format!("{tuf}/")),
            [format!("{gun}:*")]
        );
        assert_eq!(
            one(Method::GET, "/v2/127.0.0.1:5000/ns/app/_trust/changefeed"),
            [format!("{gun}:pull")]
        );
        assert_eq!(
            one(Method::GET, "/v2/_trust/changefeed"),
            ["registry:catalog:*"]
        );
    }
}
