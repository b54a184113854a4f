//! Blob uploads: `POST` (session, monolithic, mount), `PATCH` (streamed or
//! chunked with `Content-Range`), `PUT ?digest=` (finish), `GET` (status)
//! and `DELETE` (cancel).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use http_body_util::BodyExt;
use oci_types::{Algorithm, Digest, RepoName};
use uuid::Uuid;

use super::{ApiResult, AppState, Req, empty, hv, upload_range};
use crate::error::{ApiError, Code};
use crate::storage::{Upload, UploadError};

fn location(name: &RepoName, id: Uuid) -> HeaderValue {
    hv(&format!("/v2/{name}/blobs/uploads/{id}"))
}

fn session_response(status: StatusCode, name: &RepoName, up_id: Uuid, size: u64) -> Response {
    let mut r = empty(status);
    let h = r.headers_mut();
    h.insert(header::LOCATION, location(name, up_id));
    h.insert(header::RANGE, upload_range(size));
    h.insert("docker-upload-uuid", hv(&up_id.to_string()));
    r
}

fn blob_created(name: &RepoName, digest: &Digest) -> Response {
    let mut r = empty(StatusCode::CREATED);
    let h = r.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/blobs/{digest}")));
    h.insert("docker-content-digest", hv(&digest.to_string()));
    r
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Unknown(_) => ApiError::upload_unknown(),
            UploadError::TooLarge { limit } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::SizeInvalid,
                format!("blob exceeds the {limit}-byte limit"),
            ),
            UploadError::Body(msg) => ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::BlobUploadInvalid,
                format!(
                    "request body ended early ({msg}); the bytes received are kept, query the upload to resume"
                ),
            ),
            other => ApiError::internal(other),
        }
    }
}

fn body_stream(
    body: axum::body::Body,
) -> impl futures::Stream<Item = Result<bytes::Bytes, axum::Error>> + Unpin {
    StreamExt::boxed(body.into_data_stream())
}

/// A declared `Content-Length` above the blob limit is refused before reading.
fn check_declared_length(st: &AppState, headers: &HeaderMap, already: u64) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = st.config.limits.blob_max_bytes;
    if declared.is_some_and(|n| n.saturating_add(already) > limit) {
        return Err(UploadError::TooLarge { limit }.into());
    }
    Ok(())
}

/// `POST /v2/<name>/blobs/uploads/[?digest=|?mount=&from=|?digest-algorithm=]`
pub(super) async fn start(st: &AppState, name: &RepoName, req: Req) -> ApiResult {
    if let Some(mount) = req.query.get("mount") {
        let digest = Digest::parse(mount)?;
        let from = req.query.get("from").map(RepoName::parse).transpose()?;
        let size = match &from {
            Some(src) => st.meta.repo_blob_size(src, &digest).await?,
            None if st.config.server.automatic_mount => st.meta.global_blob_size(&digest).await?,
            None => None,
        };
        if let Some(size) = size {
            st.meta.link_blob(name, &digest, size).await?;
            tracing::info!(repo = %name, digest = %digest, from = ?from.as_ref().map(RepoName::as_str), "blob mounted");
            return Ok(blob_created(name, &digest));
        }
        // Not mountable: fall through to an ordinary upload session (202).
    }
    let algorithm = match req.query.get("digest-algorithm") {
        Some(a) => Algorithm::parse(a)?,
        None => Algorithm::Sha256,
    };
    if let Some(d) = req.query.get("digest") {
        let digest = Digest::parse(d)?;
        check_declared_length(st, &req.headers, 0)?;
        let id = st.uploads.create(name, digest.algorithm()).await?;
        let slot = st.uploads.get(name, id).await?;
        let mut up = slot.lock().await;
        let appended = up
            .append(
                &st.meta,
                body_stream(req.body),
                st.config.limits.blob_max_bytes,
            )
            .await;
        if let Err(e) = appended {
            st.uploads.finish(&mut up).await?;
            return Err(e.into());
        }
        return finish(st, name, &mut up, &digest).await;
    }
    let id = st.uploads.create(name, algorithm).await?;
    tracing::debug!(repo = %name, upload = %id, "upload started");
    Ok(session_response(StatusCode::ACCEPTED, name, id, 0))
}

/// Parse `Content-Range: <start>-<end>` (an optional `bytes ` or `bytes=`
/// prefix is tolerated).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v
        .strip_prefix("bytes=")
        .or_else(|| v.strip_prefix("bytes "))
        .unwrap_or(v);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (b >= a).then_some((a, b))
}

fn range_not_satisfiable(name: &RepoName, up: &Upload, why: String) -> ApiError {
    ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        Code::BlobUploadInvalid,
        why,
    )
    .with_header(header::LOCATION, location(name, up.id))
    .with_header(header::RANGE, upload_range(up.size))
    .with_header(
        header::HeaderName::from_static("docker-upload-uuid"),
        hv(&up.id.to_string()),
    )
}

/// Check `Content-Range` (if any) against the upload's current size.
fn check_content_range(name: &RepoName, up: &Upload, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(raw) = headers.get(header::CONTENT_RANGE) else {
        return Ok(());
    };
    let text = raw.to_str().unwrap_or("");
    let Some((start, end)) = parse_content_range(text) else {
        return Err(range_not_satisfiable(
            name,
            up,
            format!("Content-Range {text:?} is not <start>-<end>"),
        ));
    };
    if start != up.size {
        return Err(range_not_satisfiable(
            name,
            up,
            format!(
                "chunk starts at {start} but the upload has {} bytes",
                up.size
            ),
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len != end - start + 1
    {
        return Err(range_not_satisfiable(
            name,
            up,
            format!("Content-Range {text:?} does not match Content-Length {len}"),
        ));
    }
    Ok(())
}

/// `PATCH <location>`
pub(super) async fn patch(st: &AppState, name: &RepoName, id: Uuid, req: Req) -> ApiResult {
    let slot = st.uploads.get(name, id).await?;
    let mut up = slot.lock().await;
    if up.is_closed() {
        return Err(ApiError::upload_unknown());
    }
    check_content_range(name, &up, &req.headers)?;
    check_declared_length(st, &req.headers, up.size)?;
    up.append(
        &st.meta,
        body_stream(req.body),
        st.config.limits.blob_max_bytes,
    )
    .await?;
    Ok(session_response(StatusCode::ACCEPTED, name, id, up.size))
}

/// `PUT <location>?digest=<d>`
pub(super) async fn put(st: &AppState, name: &RepoName, id: Uuid, req: Req) -> ApiResult {
    let digest = Digest::parse(req.query.get("digest").ok_or_else(|| {
        ApiError::digest_invalid("the digest query parameter is required to finish an upload")
    })?)?;
    let slot = st.uploads.get(name, id).await?;
    let mut up = slot.lock().await;
    if up.is_closed() {
        return Err(ApiError::upload_unknown());
    }
    let has_body = req
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v != "0");
    if has_body {
        check_content_range(name, &up, &req.headers)?;
        check_declared_length(st, &req.headers, up.size)?;
        up.append(
            &st.meta,
            body_stream(req.body),
            st.config.limits.blob_max_bytes,
        )
        .await?;
    } else {
        // Drain nothing; an empty body adds nothing.
        let _ = req.body.collect().await;
    }
    finish(st, name, &mut up, &digest).await
}

/// Verify the staged bytes against `digest` and make the blob visible.
async fn finish(st: &AppState, name: &RepoName, up: &mut Upload, digest: &Digest) -> ApiResult {
    let actual = up.digest(digest.algorithm()).await?;
    if &actual != digest {
        st.uploads.finish(up).await?;
        return Err(ApiError::digest_invalid(format!(
            "uploaded content has digest {actual}, not {digest}"
        ))
        .with_detail(
            serde_json::json!({ "expected": digest.to_string(), "actual": actual.to_string() }),
        ));
    }
    let size = up.size;
    let known =
        st.meta.global_blob_size(digest).await?.is_some() && st.blobs.exists(digest).await?;
    if !known {
        if st.config.storage.sync {
            up.sync().await?;
        }
        st.blobs.commit(up.path(), digest).await?;
    }
    st.meta.link_blob(name, digest, size).await?;
    if known && !st.blobs.exists(digest).await? {
        // Garbage collection removed the deduplicated bytes between our
        // check and our link: our staged copy is still here, use it.
        st.blobs.commit(up.path(), digest).await?;
    }
    st.uploads.finish(up).await?;
    tracing::info!(repo = %name, digest = %digest, size, deduplicated = known, "blob committed");
    Ok(blob_created(name, digest))
}

/// `GET <location>`
pub(super) async fn status(st: &AppState, name: &RepoName, id: Uuid) -> ApiResult {
    let slot = st.uploads.get(name, id).await?;
    let up = slot.lock().await;
    if up.is_closed() {
        return Err(ApiError::upload_unknown());
    }
    Ok(session_response(StatusCode::NO_CONTENT, name, id, up.size))
}

/// `DELETE <location>`
pub(super) async fn cancel(st: &AppState, name: &RepoName, id: Uuid) -> ApiResult {
    let slot = st.uploads.get(name, id).await?;
    let mut up = slot.lock().await;
    if up.is_closed() {
        return Err(ApiError::upload_unknown());
    }
    st.uploads.finish(&mut up).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes=100-199"), Some((100, 199)));
        assert_eq!(parse_content_range("bytes 5-9/10"), Some((5, 9)));
        assert_eq!(parse_content_range("5-2"), None);
        assert_eq!(parse_content_range("abc"), None);
        assert_eq!(parse_content_range("-5"), None);
        assert_eq!(parse_content_range(""), None);
    }
}
