//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oci_types::{Algorithm, Digest, Reference, RepoName, Tag};

use super::{ApiResult, AppState, Req, empty, hv};
use crate::error::{ApiError, Code};
use crate::manifest;
use crate::meta::{NewManifest, PutManifestError};

async fn unknown(st: &AppState, name: &RepoName, r: &Reference) -> ApiError {
    match st.meta.repo_id(name).await {
        Ok(None) => ApiError::name_unknown(name.as_str()),
        Ok(Some(_)) => ApiError::manifest_unknown(r, name.as_str()),
        Err(e) => e.into(),
    }
}

pub(super) async fn get(st: &AppState, name: &RepoName, r: &Reference, head: bool) -> ApiResult {
    let found = match r {
        Reference::Tag(t) => st.meta.manifest_by_tag(name, t, !head).await?,
        Reference::Digest(d) => st.meta.manifest_by_digest(name, d, !head).await?,
    };
    let Some(m) = found else {
        return Err(unknown(st, name, r).await);
    };
    let size = m.size;
    let body = if head {
        Body::empty()
    } else {
        Body::from(m.content)
    };
    let mut resp: Response = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(&m.media_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    h.insert("docker-content-digest", hv(&m.digest.to_string()));
    h.insert(header::ETAG, hv(&format!("\"{}\"", m.digest)));
    Ok(resp)
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        Code::ManifestInvalid,
        format!("manifest exceeds the {limit}-byte limit"),
    )
}

/// Bytes read past a limit before answering 413, so a client that is still
/// sending gets the error instead of a broken pipe. Larger bodies are cut off.
const DRAIN_MAX: u64 = 16 * 1024 * 1024;

/// Read a body of at most `limit` bytes; above it answer 413 (after draining
/// up to [`DRAIN_MAX`] so the client can read the answer).
async fn read_limited(
    body: Body,
    headers: &axum::http::HeaderMap,
    limit: u64,
) -> Result<bytes::Bytes, ApiError> {
    use futures::StreamExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::ManifestInvalid,
                format!("manifest body could not be read: {e}"),
            )
        })?;
        seen += chunk.len() as u64;
        if seen > limit || declared.is_some_and(|n| n > limit) {
            if seen > DRAIN_MAX {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    if seen > limit || declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    Ok(buf.freeze())
}

pub(super) async fn put(st: &AppState, name: &RepoName, r: &Reference, req: Req) -> ApiResult {
    let limit = st.config.limits.manifest_max_bytes;
    let body = read_limited(req.body, &req.headers, limit).await?;

    let mut tags: Vec<Tag> = Vec::new();
    let digest = match r {
        Reference::Tag(t) => {
            tags.push(t.clone());
            Digest::of(Algorithm::Sha256, &body)
        }
        Reference::Digest(d) => {
            let actual = Digest::of(d.algorithm(), &body);
            if &actual != d {
                return Err(ApiError::digest_invalid(format!(
                    "manifest content has digest {actual}, not {d}"
                )));
            }
            actual
        }
    };
    for t in req.query.all("tag") {
        tags.push(Tag::parse(t)?);
    }
    if tags.len() > st.config.limits.tags_per_put_max {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            Code::ManifestInvalid,
            format!(
                "at most {} tags may be set in one request",
                st.config.limits.tags_per_put_max
            ),
        ));
    }
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let parsed = manifest::parse(content_type, &body)
        .map_err(|e| ApiError::manifest_invalid(e.to_string()))?;
    let subject = parsed.subject.clone();
    let m = NewManifest {
        digest: digest.clone(),
        media_type: parsed.media_type,
        artifact_type: parsed.artifact_type,
        subject: parsed.subject,
        annotations: parsed.annotations,
        content: body.to_vec(),
        references: parsed.references,
    };
    match st.meta.put_manifest(name, &m, &tags).await {
        Ok(()) => {}
        Err(PutManifestError::Missing(d)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                Code::ManifestBlobUnknown,
                format!("manifest references {d}, which is not in {name}"),
            )
            .with_detail(serde_json::json!({ "digest": d.to_string() })));
        }
        Err(PutManifestError::Meta(e)) => return Err(e.into()),
    }
    tracing::info!(repo = %name, digest = %digest, tags = ?tags.iter().map(Tag::as_str).collect::<Vec<_>>(), "manifest stored");
    let mut resp = empty(StatusCode::CREATED);
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        hv(&format!("/v2/{name}/manifests/{digest}")),
    );
    h.insert("docker-content-digest", hv(&digest.to_string()));
    if let Some(s) = subject {
        h.insert("oci-subject", hv(&s.to_string()));
    }
    if matches!(r, Reference::Digest(_)) {
        for t in &tags {
            h.append("oci-tag", hv(t.as_str()));
        }
    }
    Ok(resp)
}

pub(super) async fn delete(st: &AppState, name: &RepoName, r: &Reference) -> ApiResult {
    if !st.config.server.delete_enabled {
        return Err(ApiError::unsupported(
            "deletes are disabled on this registry",
        ));
    }
    let deleted = match r {
        Reference::Tag(t) => st.meta.delete_tag(name, t).await?,
        Reference::Digest(d) => st.meta.delete_manifest(name, d).await?,
    };
    if !deleted {
        return Err(unknown(st, name, r).await);
    }
    tracing::info!(repo = %name, reference = %r, "manifest or tag deleted");
    Ok(empty(StatusCode::ACCEPTED))
}
