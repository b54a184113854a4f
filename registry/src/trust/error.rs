//! Notary's wire errors: distribution's errcode envelope under the group
//! `notary.api.v1`, with Notary's exact messages (trust-facts §1.2), and the
//! `INVALID_UPDATE` details named after Notary's validation error types.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::meta::MetaError;

/// Why an upload is invalid, named like Notary's `validation.Err*` types
/// (the `Name` of the `INVALID_UPDATE` detail); `msg` is their `Msg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// `ErrValidation`: a general problem with the update.
    #[error("An error occurred during validation: {msg}")]
    Validation {
        /// Notary's `Msg`.
        msg: String,
    },
    /// `ErrBadHierarchy`: a role the update needs is missing.
    #[error("Metadata hierarchy is incomplete: {msg}")]
    BadHierarchy {
        /// The missing role.
        missing: String,
        /// Notary's `Msg`.
        msg: String,
    },
    /// `ErrBadRoot`.
    #[error("The root metadata is invalid: {msg}")]
    BadRoot {
        /// Notary's `Msg`.
        msg: String,
    },
    /// `ErrBadTargets` (targets and delegations).
    #[error("The targets metadata is invalid: {msg}")]
    BadTargets {
        /// Notary's `Msg`.
        msg: String,
    },
    /// `ErrBadSnapshot`.
    #[error("The snapshot metadata is invalid: {msg}")]
    BadSnapshot {
        /// Notary's `Msg`.
        msg: String,
    },
}

impl Invalid {
    /// `{"Name":"ErrBadRoot","Error":{"Msg":…}}`.
    pub fn detail(&self) -> Value {
        let (name, error) = match self {
            Invalid::Validation { msg } => ("ErrValidation", json!({ "Msg": msg })),
            Invalid::BadHierarchy { missing, msg } => {
                ("ErrBadHierarchy", json!({ "Missing": missing, "Msg": msg }))
            }
            Invalid::BadRoot { msg } => ("ErrBadRoot", json!({ "Msg": msg })),
            Invalid::BadTargets { msg } => ("ErrBadTargets", json!({ "Msg": msg })),
            Invalid::BadSnapshot { msg } => ("ErrBadSnapshot", json!({ "Msg": msg })),
        };
        json!({ "Name": name, "Error": error })
    }
}

/// An error answered by the trust API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// Unknown GUN, role, version or checksum (`"detail":{}`).
    #[error("metadata not found")]
    MetadataNotFound,
    /// No such endpoint (no detail).
    #[error("no such trust endpoint")]
    NoRoute,
    /// The POST body is not multipart.
    #[error("the upload is not multipart/form-data")]
    MalformedUpload,
    /// A part has no filename.
    #[error("an upload part has no filename")]
    NoFilename,
    /// A part's filename is not a valid role.
    #[error("invalid role {role:?}")]
    InvalidRole {
        /// The filename, `.json` stripped.
        role: String,
    },
    /// A part is not TUF JSON.
    #[error("an upload part is not TUF JSON")]
    MalformedJson,
    /// Validation failed.
    #[error(transparent)]
    InvalidUpdate(#[from] Invalid),
    /// A role's version is not newer than the stored one.
    #[error("{role} version {version} is not newer than {current}")]
    OldVersion {
        /// Role.
        role: String,
        /// Offered.
        version: u64,
        /// Stored.
        current: u64,
    },
    /// Bad changefeed parameters.
    #[error("invalid parameters: {detail}")]
    InvalidParameters {
        /// Notary's detail string.
        detail: String,
    },
    /// A changefeed `change_id` that is not an integer. notary-server's
    /// storage error for it has no exported fields, so on the wire its
    /// detail is `{}`; the text is for our logs.
    #[error("change ID expected to be integer, provided ID was: {change_id}")]
    BadChangeId {
        /// The value sent.
        change_id: String,
    },
    /// The GUN does not map to a repository name.
    #[error("unsupported gun {gun:?}")]
    InvalidGun {
        /// The GUN as sent.
        gun: String,
    },
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The server key secret or a sealed key failed.
    #[error(transparent)]
    Keys(#[from] super::keys::KeyError),
    /// Signing server metadata failed.
    #[error("signing server metadata failed")]
    Sign {
        /// Cause.
        #[source]
        source: bay_signer::editor::EditorError,
    },
    /// Stored metadata no longer parses.
    #[error("stored {role} metadata is corrupt")]
    Corrupt {
        /// Role.
        role: String,
    },
}

impl TrustError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str, Option<Value>) {
        use TrustError as E;
        let bad = StatusCode::BAD_REQUEST;
        match self {
            E::MetadataNotFound => (
                StatusCode::NOT_FOUND,
                "METADATA_NOT_FOUND",
                "You have requested metadata that does not exist.",
                Some(json!({})),
            ),
            E::NoRoute => (
                StatusCode::NOT_FOUND,
                "METADATA_NOT_FOUND",
                "You have requested metadata that does not exist.",
                None,
            ),
            E::MalformedUpload => (
                bad,
                "MALFORMED_UPLOAD",
                "The body of your request is malformed.",
                None,
            ),
            E::NoFilename => (bad, "NO_FILENAME", "No file/role name provided.", None),
            E::InvalidRole { role } => (
                bad,
                "INVALID_ROLE",
                "The role you are attempting to operate on is invalid.",
                Some(json!(role)),
            ),
            E::MalformedJson => (
                bad,
                "MALFORMED_JSON",
                "JSON sent by the client could not be parsed by the server",
                None,
            ),
            E::InvalidUpdate(inv) => (
                bad,
                "INVALID_UPDATE",
                "Update sent by the client is invalid.",
                Some(inv.detail()),
            ),
            E::OldVersion { .. } => (
                bad,
                "VERSION",
                "A newer version of metadata is already available.",
                Some(json!({})),
            ),
            E::InvalidParameters { detail } => (
                bad,
                "INVALID_PARAMETERS",
                "The parameters provided are not valid.",
                Some(json!(detail)),
            ),
            E::BadChangeId { .. } => (
                bad,
                "INVALID_PARAMETERS",
                "The parameters provided are not valid.",
                Some(json!({})),
            ),
            E::InvalidGun { .. } => (
                bad,
                "INVALID_GUN",
                "The server does not support actions on images of this name.",
                None,
            ),
            E::Meta(_) | E::Keys(_) | E::Sign { .. } | E::Corrupt { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                "Unknown error",
                None,
            ),
        }
    }
}

impl IntoResponse for TrustError {
    fn into_response(self) -> Response {
        let (status, code, message, detail) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = %self, source = ?std::error::Error::source(&self), "trust request failed");
        } else {
            tracing::info!(code, error = %self, "trust request refused");
        }
        let mut err = json!({ "code": code, "message": message });
        if let Some(d) = detail {
            err["detail"] = d;
        }
        let body = json!({ "errors": [err] }).to_string();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_named_like_notary_types() {
        let d = Invalid::BadHierarchy {
            missing: "snapshot".into(),
            msg: "m".into(),
        }
        .detail();
        assert_eq!(
            d.to_string(),
            r#"{"Error":{"Missing":"snapshot","Msg":"m"},"Name":"ErrBadHierarchy"}"#
        );
        let (status, code, _, detail) = TrustError::InvalidRole { role: "foo".into() }.parts();
        assert_eq!((status.as_u16(), code), (400, "INVALID_ROLE"));
        assert_eq!(detail, Some(json!("foo")));
        assert!(TrustError::NoRoute.parts().3.is_none());
        let (status, code, _, detail) = TrustError::BadChangeId {
            change_id: "abc".into(),
        }
        .parts();
        assert_eq!((status.as_u16(), code), (400, "INVALID_PARAMETERS"));
        assert_eq!(detail, Some(json!({})), "notary-server sends {{}}");
    }
}
