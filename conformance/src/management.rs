//! Content management: deleting tags, manifests and blobs (end-9, end-10).
//!
//! Deletion is optional in the spec: a registry that disables it answers 405, or 400 with
//! `UNSUPPORTED`; those are recorded as skipped. Anything else must follow the spec.

use reqwest::Method;
use serde_json::{Value, json};

use crate::check::{Check, ensure, expect_error, fail, skip};
use crate::ctx::{Ctx, absent_digest, random_bytes};
use crate::http::Response;
use crate::{Case, case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!("delete-tag", delete_tag),
        case!("delete-manifest", delete_manifest),
        case!("delete-blob", delete_blob),
        case!("delete-unknown", delete_unknown),
        case!("delete-blob-repush", delete_blob_repush),
        case!("delete-referrer", delete_referrer),
    ]
}

/// Judge a DELETE: `Ok(())` on 202, skip if deletion is disabled, fail otherwise.
fn deleted(resp: &Response, what: &str) -> Check {
    match resp.status.as_u16() {
        202 => Ok(()),
        405 => skip!("{what} deletion disabled (405)"),
        400 => {
            expect_error(resp, &[400], &["UNSUPPORTED"]).map_err(|_| {
                crate::check::Stop::Fail(format!(
                    "DELETE {what} must be 202, or 400 UNSUPPORTED / 405 when disabled: {}",
                    resp.describe()
                ))
            })?;
            skip!("{what} deletion disabled (400 UNSUPPORTED)")
        }
        _ => fail!("DELETE {what} must be 202: {}", resp.describe()),
    }
}

async fn tag_list(ctx: &Ctx, repo: &str) -> Check<Option<Vec<String>>> {
    let resp = ctx
        .call(Method::GET, &format!("/v2/{repo}/tags/list"))
        .send()
        .await?;
    match resp.status.as_u16() {
        200 => {
            let v: Value = match serde_json::from_slice(&resp.body) {
                Ok(v) => v,
                Err(e) => fail!("tag list is not JSON ({e})"),
            };
            Ok(Some(
                v.get("tags")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            ))
        }
        // A repository without tags may be unknown.
        404 => {
            expect_error(&resp, &[404], &[])?;
            Ok(None)
        }
        _ => fail!("tag list: {}", resp.describe()),
    }
}

async fn delete_tag(ctx: Ctx) -> Check {
    let repo = ctx.repo("delete-tag");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "doomed", &m).await?;
    ctx.put_manifest(&repo, "kept", &m).await?;
    let del = ctx
        .call(Method::DELETE, &format!("/v2/{repo}/manifests/doomed"))
        .send()
        .await?;
    deleted(&del, "tag")?;
    let tags = tag_list(&ctx, &repo).await?.unwrap_or_default();
    ensure!(
        !tags.iter().any(|t| t == "doomed"),
        "deleted tag still listed: {tags:?}"
    );
    ensure!(
        tags.iter().any(|t| t == "kept"),
        "the other tag vanished: {tags:?}"
    );
    let get = ctx.get_manifest(&repo, "doomed").await?;
    expect_error(&get, &[404], &["MANIFEST_UNKNOWN", "NAME_UNKNOWN"])?;
    let by_digest = ctx.get_manifest(&repo, &m.digest.to_string()).await?;
    ensure!(
        by_digest.status.as_u16() == 200 && by_digest.body == m.bytes,
        "manifest must stay reachable by digest after a tag delete: {}",
        by_digest.describe()
    );
    let again = ctx
        .call(Method::DELETE, &format!("/v2/{repo}/manifests/doomed"))
        .send()
        .await?;
    expect_error(&again, &[404], &["MANIFEST_UNKNOWN", "NAME_UNKNOWN"])?;
    Ok(())
}

async fn delete_manifest(ctx: Ctx) -> Check {
    let repo = ctx.repo("delete-manifest");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "gone", &m).await?;
    ctx.put_manifest(&repo, "gone-too", &m).await?;
    let other = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "stays", &other).await?;
    let del = ctx
        .call(
            Method::DELETE,
            &format!("/v2/{repo}/manifests/{}", m.digest),
        )
        .send()
        .await?;
    deleted(&del, "manifest")?;
    let get = ctx.get_manifest(&repo, &m.digest.to_string()).await?;
    expect_error(&get, &[404], &["MANIFEST_UNKNOWN", "NAME_UNKNOWN"])?;
    let by_tag = ctx.get_manifest(&repo, "gone").await?;
    expect_error(&by_tag, &[404], &["MANIFEST_UNKNOWN", "NAME_UNKNOWN"])?;
    let tags = tag_list(&ctx, &repo).await?.unwrap_or_default();
    ensure!(
        !tags.iter().any(|t| t == "gone" || t == "gone-too"),
        "tags of a deleted manifest still listed: {tags:?}"
    );
    let by_tag2 = ctx.get_manifest(&repo, "gone-too").await?;
    expect_error(&by_tag2, &[404], &["MANIFEST_UNKNOWN", "NAME_UNKNOWN"])?;
    ensure!(
        tags.iter().any(|t| t == "stays"),
        "unrelated tag vanished: {tags:?}"
    );
    Ok(())
}

async fn delete_blob(ctx: Ctx) -> Check {
    let repo = ctx.repo("delete-blob");
    let data = random_bytes(777);
    let d = ctx.push_blob(&repo, &data).await?;
    let del = ctx
        .call(Method::DELETE, &format!("/v2/{repo}/blobs/{d}"))
        .send()
        .await?;
    deleted(&del, "blob")?;
    let get = ctx.get_blob(&repo, &d).await?;
    expect_error(&get, &[404], &["BLOB_UNKNOWN"])?;
    Ok(())
}

async fn delete_unknown(ctx: Ctx) -> Check {
    let repo = ctx.repo("delete-unknown");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "v1", &m).await?;
    let d = absent_digest();
    let man = ctx
        .call(Method::DELETE, &format!("/v2/{repo}/manifests/{d}"))
        .send()
        .await?;
    if matches!(man.status.as_u16(), 405) {
        skip!("manifest deletion disabled (405)");
    }
    expect_error(&man, &[404], &["MANIFEST_UNKNOWN"])?;
    let blob = ctx
        .call(Method::DELETE, &format!("/v2/{repo}/blobs/{d}"))
        .send()
        .await?;
    if blob.status.as_u16() == 405 {
        skip!("blob deletion disabled (405)");
    }
    expect_error(&blob, &[404], &["BLOB_UNKNOWN"])?;
    Ok(())
}

/// A deleted blob can be pushed again and read back.
async fn delete_blob_repush(ctx: Ctx) -> Check {
    let repo = ctx.repo("delete-repush");
    let data = random_bytes(4321);
    let d = ctx.push_blob(&repo, &data).await?;
    let del = ctx
        .call(Method::DELETE, &format!("/v2/{repo}/blobs/{d}"))
        .send()
        .await?;
    deleted(&del, "blob")?;
    ctx.push_blob(&repo, &data).await?;
    ctx.blob_reads_back(&repo, &d, &data).await
}

/// Deleting a referrer removes it from its subject's referrers list.
async fn delete_referrer(ctx: Ctx) -> Check {
    let repo = ctx.repo("delete-referrer");
    let subject = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "v1", &subject).await?;
    let mut refs = Vec::new();
    for at in ["application/vnd.bay.test.a", "application/vnd.bay.test.b"] {
        let r = ctx
            .prepare_artifact(
                &repo,
                "application/vnd.oci.empty.v1+json",
                json!({"artifactType": at, "subject": subject.descriptor()}),
            )
            .await?;
        ctx.put_manifest(&repo, &r.digest.to_string(), &r).await?;
        refs.push(r);
    }
    let list = |ctx: Ctx, repo: String, d: String| async move {
        let resp = ctx
            .call(Method::GET, &format!("/v2/{repo}/referrers/{d}"))
            .send()
            .await?;
        if resp.status.as_u16() != 200 {
            fail!("referrers: {}", resp.describe());
        }
        let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        let digests: Vec<String> = v
            .get("manifests")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.get("digest").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok::<Vec<String>, crate::check::Stop>(digests)
    };
    let before = list(ctx.clone(), repo.clone(), subject.digest.to_string()).await?;
    ensure!(
        before.len() == 2,
        "expected 2 referrers before the delete, got {before:?}"
    );
    let del = ctx
        .call(
            Method::DELETE,
            &format!("/v2/{repo}/manifests/{}", refs[0].digest),
        )
        .send()
        .await?;
    deleted(&del, "manifest")?;
    let after = list(ctx.clone(), repo.clone(), subject.digest.to_string()).await?;
    ensure!(
        after == vec![refs[1].digest.to_string()],
        "after deleting {} the referrers are {after:?}",
        refs[0].digest
    );
    Ok(())
}
