//! The registry's wire errors: distribution-spec error codes and their JSON body.
//!
//! Every handler returns `Result<Response, ApiError>`. Library errors convert
//! into `ApiError` with `From`, so a storage or database failure becomes a
//! generic 500 whose cause is logged (never sent), while bad input becomes the
//! spec's 4xx code with a helpful message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::meta::MetaError;
use crate::storage::StorageError;

/// The 14 error codes of the distribution-spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Blob unknown to registry.
    BlobUnknown,
    /// Blob upload invalid.
    BlobUploadInvalid,
    /// Blob upload unknown to registry.
    BlobUploadUnknown,
    /// Provided digest did not match uploaded content.
    DigestInvalid,
    /// Blob unknown to registry (referenced by a manifest).
    ManifestBlobUnknown,
    /// Manifest invalid.
    ManifestInvalid,
    /// Manifest unknown.
    ManifestUnknown,
    /// Invalid repository name.
    NameInvalid,
    /// Repository name not known to registry.
    NameUnknown,
    /// Provided length did not match content length.
    SizeInvalid,
    /// Authentication required.
    Unauthorized,
    /// Requested access to the resource is denied.
    Denied,
    /// The operation is unsupported.
    Unsupported,
    /// Too many requests.
    TooManyRequests,
}

impl Code {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
        }
    }
}

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Spec error code.
    pub code: Code,
    /// Human-readable message.
    pub message: String,
    /// Optional structured detail.
    pub detail: Option<serde_json::Value>,
    /// Extra response headers (e.g. `Range` on 416, `WWW-Authenticate` on 401).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// The internal cause of a 5xx, logged and never sent.
    pub internal: Option<String>,
}

impl ApiError {
    /// A new error with a status, code and message.
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: None,
            headers: Vec::new(),
            internal: None,
        }
    }

    /// Attach a detail value.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Attach a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 NAME_INVALID.
    pub fn name_invalid(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::NameInvalid, msg)
    }
    /// 404 NAME_UNKNOWN.
    pub fn name_unknown(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Code::NameUnknown,
            format!("repository {name} is not known to the registry"),
        )
    }
    /// 400 DIGEST_INVALID.
    pub fn digest_invalid(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::DigestInvalid, msg)
    }
    /// 404 BLOB_UNKNOWN.
    pub fn blob_unknown(digest: &impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Code::BlobUnknown,
            format!("blob {digest} is not known to this repository"),
        )
    }
    /// 404 BLOB_UPLOAD_UNKNOWN.
    pub fn upload_unknown() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Code::BlobUploadUnknown,
            "upload session is unknown or has expired",
        )
    }
    /// 404 MANIFEST_UNKNOWN.
    pub fn manifest_unknown(reference: &impl std::fmt::Display, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Code::ManifestUnknown,
            format!("manifest unknown: no manifest {reference} in {name}"),
        )
    }
    /// 400 MANIFEST_INVALID.
    pub fn manifest_invalid(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Code::ManifestInvalid, msg)
    }
    /// 405 UNSUPPORTED.
    pub fn unsupported(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, Code::Unsupported, msg)
    }
    /// 500 with a generic body; `cause` goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unsupported,
            "internal server error",
        );
        e.internal = Some(cause.to_string());
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.internal {
            tracing::error!(status = %self.status, cause = %cause, "request failed");
        } else {
            tracing::debug!(status = %self.status, code = self.code.as_str(), message = %self.message, "request rejected");
        }
        let mut err = json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(d) = self.detail {
            err["detail"] = d;
        }
        let body = json!({ "errors": [err] }).to_string();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        for (k, v) in self.headers {
            h.append(k, v);
        }
        resp
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::internal(e)
    }
}

impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> Self {
        ApiError::internal(e)
    }
}

impl From<oci_types::NameError> for ApiError {
    fn from(e: oci_types::NameError) -> Self {
        use oci_types::NameError;
        match e {
            NameError::InvalidTag(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::ManifestInvalid,
                e.to_string(),
            ),
            NameError::Digest(d) => ApiError::digest_invalid(d.to_string()),
            other => ApiError::name_invalid(other.to_string()),
        }
    }
}

impl From<oci_types::DigestError> for ApiError {
    fn from(e: oci_types::DigestError) -> Self {
        ApiError::digest_invalid(e.to_string())
    }
}
