//! Errors from talking to a registry, worded for the person at the terminal.

use oci_types::Digest;

use crate::image::ImageError;
use crate::store::StoreError;

/// One entry of a distribution-spec error body.
#[derive(Debug, Clone, serde::Deserialize, Default)]
pub struct SpecError {
    /// The spec code, e.g. `MANIFEST_UNKNOWN`.
    #[serde(default)]
    pub code: String,
    /// Human text from the registry.
    #[serde(default)]
    pub message: String,
}

/// Registry client errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No or wrong credentials.
    #[error("unauthorized: run `bay login {host}`")]
    Unauthorized {
        /// The registry host.
        host: String,
    },
    /// The registry is rate-limiting (e.g. after many failed logins).
    #[error("too many requests: {host} is rate-limiting this client; wait a minute and try again")]
    TooManyRequests {
        /// The registry host.
        host: String,
    },
    /// Authenticated, but not allowed.
    #[error("denied: requested access to {repo} on {host} is denied")]
    Denied {
        /// The registry host.
        host: String,
        /// The repository.
        repo: String,
    },
    /// The tag or digest does not exist.
    #[error("manifest unknown: no {what} {reference} in {repo}")]
    ManifestUnknown {
        /// "tag" or "manifest".
        what: &'static str,
        /// The tag or digest.
        reference: String,
        /// The repository.
        repo: String,
    },
    /// The repository does not exist.
    #[error("repository {repo} not found on {host}")]
    NameUnknown {
        /// The registry host.
        host: String,
        /// The repository.
        repo: String,
    },
    /// A blob is missing on the registry.
    #[error("blob unknown: {digest} is not in {repo}")]
    BlobUnknown {
        /// The repository.
        repo: String,
        /// The blob.
        digest: Digest,
    },
    /// The network failed repeatedly.
    #[error("cannot reach {host} after {attempts} attempts: {source}")]
    Network {
        /// The registry host.
        host: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: registry answered {status}{}", fmt_spec(.errors))]
    Status {
        /// HTTP method.
        method: &'static str,
        /// Request URL (no credentials).
        url: String,
        /// HTTP status.
        status: u16,
        /// Decoded spec errors, if any.
        errors: Vec<SpecError>,
    },
    /// Content did not match its digest.
    #[error("{what} from {host} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was fetched.
        what: &'static str,
        /// The registry host.
        host: String,
        /// The expected digest.
        expected: Digest,
        /// What it hashed to.
        actual: Digest,
    },
    /// A document is larger than bay accepts, or than its descriptor says.
    #[error("{what} from {host} is too large: {size} bytes (limit {limit})")]
    TooLarge {
        /// What was fetched.
        what: &'static str,
        /// The registry host.
        host: String,
        /// Bytes offered.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A response lacked a required header or had a malformed one.
    #[error("{host} sent a bad or missing {header} header in reply to {method} {path}")]
    BadHeader {
        /// The registry host.
        host: String,
        /// The header.
        header: &'static str,
        /// HTTP method.
        method: &'static str,
        /// Request path.
        path: String,
    },
    /// A registry answer does not decode.
    #[error("{host} sent an invalid {what}: {detail}")]
    BadResponse {
        /// What was fetched.
        what: &'static str,
        /// The registry host.
        host: String,
        /// Decoder error.
        detail: String,
    },
    /// The token server's answer is unusable.
    #[error("the token server {realm} sent no usable token: {detail}")]
    BadToken {
        /// Token endpoint.
        realm: String,
        /// What was wrong.
        detail: String,
    },
    /// Plain HTTP is not allowed for this host.
    #[error(
        "{host} does not answer over HTTPS ({source}); plain HTTP is used only for loopback hosts and hosts given with --insecure-registry"
    )]
    Insecure {
        /// The registry host.
        host: String,
        /// The HTTPS failure.
        #[source]
        source: reqwest::Error,
    },
    /// The registry's TLS certificate is not trusted.
    #[error(
        "{host} presented a TLS certificate bay does not trust ({source}); if it is your registry, put its CA certificate in {hint}"
    )]
    Untrusted {
        /// The registry host.
        host: String,
        /// Where a CA certificate would be picked up.
        hint: String,
        /// The TLS failure.
        #[source]
        source: reqwest::Error,
    },
    /// A CA certificate file does not parse.
    #[error("{path} is not a PEM certificate: {source}")]
    BadCa {
        /// The file.
        path: std::path::PathBuf,
        /// Parser error.
        #[source]
        source: reqwest::Error,
    },
    /// The token realm would send credentials in clear text to a remote host.
    #[error("refusing to send credentials to the plain-HTTP token server {realm}")]
    InsecureRealm {
        /// Token endpoint.
        realm: String,
    },
    /// The registry's `/v2/` endpoint is not a registry.
    #[error("{host} is not a container registry (GET /v2/ answered {status})")]
    NotARegistry {
        /// The registry host.
        host: String,
        /// HTTP status.
        status: u16,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A URL could not be formed.
    #[error("bad URL {url:?}: {source}")]
    Url {
        /// The URL text.
        url: String,
        /// Parser error.
        #[source]
        source: url::ParseError,
    },
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A document did not decode.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Content trust refused or failed.
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    /// The reference is unusable for this operation.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// A local file operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What we tried.
        op: &'static str,
        /// The path.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `push` was given a digest reference.
    #[error("cannot push a digest reference ({reference}); push a tag")]
    DigestPush {
        /// The reference.
        reference: String,
    },
    /// `push` names an image that is not in the local store.
    #[error("An image does not exist locally with the tag: {reference}")]
    NotLocal {
        /// The repository.
        reference: String,
    },
    /// A background task died.
    #[error("a transfer task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

fn fmt_spec(errors: &[SpecError]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            if e.message.is_empty() {
                e.code.clone()
            } else {
                format!("{}: {}", e.code, e.message)
            }
        })
        .collect();
    format!(" ({})", parts.join("; "))
}
