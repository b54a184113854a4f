//! `GET /v2/<name>/referrers/<digest>[?artifactType=]`.
//!
//! Lists manifests in `<name>` whose `subject` is `<digest>`, including those
//! pushed before the subject existed, merged with any tag-schema fallback
//! index (`<alg>-<hex>` tag) that clients maintained before the API existed.
//! Never answers 404: an unknown subject has an empty list.

use std::collections::HashSet;

use axum::http::header;
use axum::response::IntoResponse;
use oci_types::{Digest, MediaType, Reference, RepoName, Tag};
use serde_json::{Value, json};

use super::{ApiResult, AppState, Query, hv};

/// The fallback tag: algorithm up to 32 chars, hex up to 64 (spec main).
fn fallback_tag(d: &Digest) -> Option<Tag> {
    let alg = d.algorithm().as_str();
    let hex = &d.hex()[..d.hex().len().min(64)];
    Tag::parse(&format!("{}-{}", &alg[..alg.len().min(32)], hex)).ok()
}

pub(super) async fn list(st: &AppState, name: &RepoName, subject: &Digest, q: &Query) -> ApiResult {
    let filter = q.get("artifactType");
    let mut out: Vec<Value> = Vec::new();
    let mut seen = HashSet::new();
    if let Some(repo) = st.meta.repo_id(name).await? {
        for r in st.meta.referrers(repo, subject).await? {
            seen.insert(r.digest.to_string());
            let mut d = json!({
                "mediaType": r.media_type,
                "digest": r.digest.to_string(),
                "size": r.size,
            });
            if let Some(a) = r.artifact_type {
                d["artifactType"] = Value::String(a);
            }
            if let Some(ann) = r
                .annotations
                .and_then(|a| serde_json::from_str::<Value>(&a).ok())
            {
                d["annotations"] = ann;
            }
            out.push(d);
        }
        if let Some(tag) = fallback_tag(subject)
            && let Some(idx) = st.meta.manifest(name, &Reference::Tag(tag)).await?
            && let Ok(v) = serde_json::from_slice::<Value>(&idx.content)
        {
            for m in v["manifests"].as_array().into_iter().flatten() {
                if let Some(dg) = m["digest"].as_str()
                    && seen.insert(dg.to_owned())
                {
                    out.push(m.clone());
                }
            }
        }
    }
    if let Some(f) = filter {
        out.retain(|d| d["artifactType"].as_str() == Some(f));
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OCI_INDEX,
        "manifests": out,
    })
    .to_string();
    let mut resp = ([(header::CONTENT_TYPE, MediaType::OCI_INDEX)], body).into_response();
    if filter.is_some() {
        resp.headers_mut()
            .insert("oci-filters-applied", hv("artifactType"));
    }
    Ok(resp)
}
