//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`, with `Range` support.

use std::ops::Range;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci_types::{Digest, RepoName};

use super::{ApiResult, AppState, empty, hv};
use crate::error::{ApiError, Code};

/// Parse a `Range` header against a blob of `size` bytes.
///
/// `Ok(None)` means serve the whole blob (no header, another unit, or
/// several ranges, which RFC 9110 lets a server ignore); `Err(())` means
/// the range is malformed or unsatisfiable (416).
pub fn parse_range(value: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(v) = value else { return Ok(None) };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let num = |s: &str| -> Result<u64, ()> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(());
        }
        s.parse().map_err(|_| ())
    };
    let range = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n = num(suffix)?;
            if n == 0 || size == 0 {
                return Err(());
            }
            size.saturating_sub(n)..size
        }
        (start, "") => {
            let s = num(start)?;
            s..size
        }
        (start, end) => {
            let (s, e) = (num(start)?, num(end)?);
            if e < s {
                return Err(());
            }
            s..(e.saturating_add(1)).min(size)
        }
    };
    if range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

fn blob_headers(h: &mut HeaderMap, digest: &Digest, len: u64) {
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert("docker-content-digest", hv(&digest.to_string()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, hv(&format!("\"{digest}\"")));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=31536000"),
    );
}

pub(super) async fn get(
    st: &AppState,
    name: &RepoName,
    digest: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let size = st
        .meta
        .repo_blob_size(name, digest)
        .await?
        .ok_or_else(|| ApiError::blob_unknown(digest))?;
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = parse_range(range_header, size).map_err(|()| {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            Code::SizeInvalid,
            format!("range {range_header:?} cannot be satisfied by a {size}-byte blob"),
        )
        .with_header(header::CONTENT_RANGE, hv(&format!("bytes */{size}")))
    })?;
    let (status, span) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.clone()),
        None => (StatusCode::OK, 0..size),
    };
    let len = span.end - span.start;
    let body = if head || len == 0 {
        Body::empty()
    } else {
        Body::from_stream(st.blobs.open(digest, Some(span.clone())).await?)
    };
    let mut resp: Response = (status, body).into_response();
    let h = resp.headers_mut();
    blob_headers(h, digest, len);
    if range.is_some() {
        h.insert(
            header::CONTENT_RANGE,
            hv(&format!("bytes {}-{}/{size}", span.start, span.end - 1)),
        );
    }
    Ok(resp)
}

pub(super) async fn delete(st: &AppState, name: &RepoName, digest: &Digest) -> ApiResult {
    if !st.config.server.delete_enabled {
        return Err(ApiError::unsupported(
            "deletes are disabled on this registry",
        ));
    }
    if !st.meta.unlink_blob(name, digest).await? {
        return Err(ApiError::blob_unknown(digest));
    }
    tracing::info!(repo = %name, digest = %digest, "blob unlinked");
    Ok(empty(StatusCode::ACCEPTED))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=2-4"), 10), Ok(Some(2..5)));
        assert_eq!(parse_range(Some("bytes=2-"), 10), Ok(Some(2..10)));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some(7..10)));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Ok(Some(0..10)));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Ok(Some(5..10)));
        assert_eq!(parse_range(Some("bytes=5-0"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=10-20"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=abc"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=-0"), 10), Err(()));
        assert_eq!(parse_range(Some("items=1-2"), 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=1-2,4-5"), 10), Ok(None));
    }
}
