//! Pull: blob and manifest reads (spec end-2, end-3), Range requests (RFC 9110 §14).

use bytes::Bytes;
use reqwest::Method;
use serde_json::json;

use crate::check::{
    Check, digest_header_if_present, ensure, expect_error, expect_status, fail,
    parse_content_range, require_header, skip,
};
use crate::ctx::{Ctx, Manifest, absent_digest, mt, random_bytes};
use crate::{Case, case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!("blob-missing", blob_missing),
        case!("blob-get-head", blob_get_head),
        case!("blob-digest-header", blob_digest_header),
        case!("blob-range-bounded", range_bounded),
        case!("blob-range-suffix", range_suffix),
        case!("blob-range-open", range_open),
        case!("blob-range-invalid", range_invalid),
        case!("blob-range-unsatisfiable", range_unsatisfiable),
        case!("manifest-by-tag", manifest_by_tag),
        case!("manifest-by-digest", manifest_by_digest),
        case!("manifest-head", manifest_head),
        case!("manifest-digest-header", manifest_digest_header),
        case!("manifest-missing", manifest_missing),
        case!("manifest-invalid-reference", manifest_invalid_reference),
        case!("manifest-no-accept", manifest_no_accept),
        case!("blob-repo-isolation", blob_repo_isolation),
        case!("manifest-repo-isolation", manifest_repo_isolation),
    ]
}

const BLOB_SIZE: usize = 2000;

async fn blob_missing(ctx: Ctx) -> Check {
    let repo = ctx.repo("blob-missing");
    ctx.push_blob(&repo, &random_bytes(10)).await?;
    let d = absent_digest();
    let path = format!("/v2/{repo}/blobs/{d}");
    let head = ctx.call(Method::HEAD, &path).send().await?;
    expect_error(&head, &[404], &[])?;
    let get = ctx.call(Method::GET, &path).send().await?;
    expect_error(&get, &[404], &["BLOB_UNKNOWN"])?;
    Ok(())
}

async fn blob_get_head(ctx: Ctx) -> Check {
    let repo = ctx.repo("blob-get");
    let data = random_bytes(BLOB_SIZE);
    let d = ctx.push_blob(&repo, &data).await?;
    let path = format!("/v2/{repo}/blobs/{d}");
    let head = ctx.call(Method::HEAD, &path).send().await?;
    expect_status(&head, &[200])?;
    let len = require_header(&head, "content-length")?;
    ensure!(
        len == data.len().to_string(),
        "HEAD Content-Length {len} != {}: {}",
        data.len(),
        head.describe()
    );
    ensure!(head.body.is_empty(), "HEAD response has a body");
    digest_header_if_present(&head, &d.to_string())?;
    let get = ctx.call(Method::GET, &path).send().await?;
    expect_status(&get, &[200])?;
    ensure!(get.body == data, "GET returned different bytes than pushed");
    if let Some(len) = get.header("content-length") {
        ensure!(
            len == data.len().to_string(),
            "GET Content-Length {len} != {}",
            data.len()
        );
    }
    digest_header_if_present(&get, &d.to_string())?;
    Ok(())
}

async fn blob_digest_header(ctx: Ctx) -> Check {
    let repo = ctx.repo("blob-digest-header");
    let data = random_bytes(100);
    let d = ctx.push_blob(&repo, &data).await?;
    let path = format!("/v2/{repo}/blobs/{d}");
    for method in [Method::HEAD, Method::GET] {
        let resp = ctx.call(method, &path).send().await?;
        expect_status(&resp, &[200])?;
        if resp.header("docker-content-digest").is_none() {
            skip!("no Docker-Content-Digest on blob reads (SHOULD in v1.1.1, MUST on main)");
        }
        digest_header_if_present(&resp, &d.to_string())?;
    }
    Ok(())
}

/// Push a `BLOB_SIZE` blob and GET it with `Range: <range>`. `None` means the server ignored
/// Range (200 with the whole blob), which RFC 9110 permits.
async fn ranged(
    ctx: &Ctx,
    label: &str,
    range: &str,
) -> Check<Option<(Bytes, crate::http::Response)>> {
    let repo = ctx.repo(label);
    let data = random_bytes(BLOB_SIZE);
    let d = ctx.push_blob(&repo, &data).await?;
    let resp = ctx
        .call(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
        .header("range", range)
        .send()
        .await?;
    match resp.status.as_u16() {
        206 => Ok(Some((data, resp))),
        200 => {
            ensure!(
                resp.body == data,
                "200 answer to a Range request has wrong bytes"
            );
            Ok(None)
        }
        _ => fail!(
            "Range {range} must get 206 (or 200 if Range is unsupported): {}",
            resp.describe()
        ),
    }
}

/// Check a 206 for the inclusive byte range `first..=last`.
fn check_partial(data: &Bytes, resp: &crate::http::Response, first: usize, last: usize) -> Check {
    let cr = require_header(resp, "content-range")?;
    let Some((f, l, total)) = parse_content_range(cr) else {
        fail!("malformed Content-Range {cr:?}: {}", resp.describe());
    };
    ensure!(
        (f, l) == (first as u64, last as u64),
        "Content-Range {cr:?}, expected bytes {first}-{last}/{}",
        data.len()
    );
    if let Some(t) = total {
        ensure!(
            t == data.len() as u64,
            "Content-Range total {t} != {}",
            data.len()
        );
    }
    ensure!(
        resp.body.as_ref() == &data[first..=last],
        "206 body ({} bytes) is not bytes {first}-{last} of the blob",
        resp.body.len()
    );
    Ok(())
}

async fn range_bounded(ctx: Ctx) -> Check {
    match ranged(&ctx, "range-bounded", "bytes=500-1499").await? {
        Some((data, resp)) => check_partial(&data, &resp, 500, 1499),
        None => skip!("server ignores Range (Range support is SHOULD)"),
    }
}

async fn range_suffix(ctx: Ctx) -> Check {
    match ranged(&ctx, "range-suffix", "bytes=-500").await? {
        Some((data, resp)) => check_partial(&data, &resp, BLOB_SIZE - 500, BLOB_SIZE - 1),
        None => skip!("server ignores Range (Range support is SHOULD)"),
    }
}

async fn range_open(ctx: Ctx) -> Check {
    match ranged(&ctx, "range-open", "bytes=500-").await? {
        Some((data, resp)) => check_partial(&data, &resp, 500, BLOB_SIZE - 1),
        None => skip!("server ignores Range (Range support is SHOULD)"),
    }
}

/// `bytes=500-0` is syntactically invalid (last < first, RFC 9110 §14.1.1): a server may
/// ignore the header (200, whole blob) or reject it (416), never 206 or an error.
async fn range_invalid(ctx: Ctx) -> Check {
    let repo = ctx.repo("range-invalid");
    let data = random_bytes(BLOB_SIZE);
    let d = ctx.push_blob(&repo, &data).await?;
    let resp = ctx
        .call(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
        .header("range", "bytes=500-0")
        .send()
        .await?;
    match resp.status.as_u16() {
        416 => Ok(()),
        200 => {
            ensure!(
                resp.body == data,
                "200 answer to an invalid Range has wrong bytes"
            );
            Ok(())
        }
        _ => fail!(
            "invalid Range bytes=500-0 must get 416 or a plain 200: {}",
            resp.describe()
        ),
    }
}

/// A range starting past the end is unsatisfiable: 416 (RFC 9110 §15.5.17), if the server
/// supports Range at all.
async fn range_unsatisfiable(ctx: Ctx) -> Check {
    let repo = ctx.repo("range-unsatisfiable");
    let data = random_bytes(BLOB_SIZE);
    let d = ctx.push_blob(&repo, &data).await?;
    let path = format!("/v2/{repo}/blobs/{d}");
    let probe = ctx
        .call(Method::GET, &path)
        .header("range", "bytes=0-9")
        .send()
        .await?;
    if probe.status.as_u16() == 200 {
        skip!("server ignores Range (Range support is SHOULD)");
    }
    expect_status(&probe, &[206])?;
    let resp = ctx
        .call(Method::GET, &path)
        .header("range", "bytes=5000-10000")
        .send()
        .await?;
    expect_status(&resp, &[416])?;
    if let Some(cr) = resp.header("content-range") {
        ensure!(
            cr.trim() == format!("bytes */{BLOB_SIZE}"),
            "416 Content-Range should be bytes */{BLOB_SIZE}, got {cr:?}"
        );
    }
    Ok(())
}

/// Push an image under `tag`; returns (repo, manifest).
async fn pushed_image(ctx: &Ctx, label: &str, tag: &str) -> Check<(String, Manifest)> {
    let repo = ctx.repo(label);
    let m = ctx
        .prepare_image(&repo, json!({"annotations": {"org.bay.test": label}}))
        .await?;
    ctx.put_manifest(&repo, tag, &m).await?;
    Ok((repo, m))
}

/// The response must carry exactly the manifest bytes and type.
fn same_manifest(resp: &crate::http::Response, m: &Manifest) -> Check {
    expect_status(resp, &[200])?;
    ensure!(
        resp.body == m.bytes,
        "manifest bytes differ from what was pushed"
    );
    let ct = require_header(resp, "content-type")?;
    ensure!(
        ct.split(';').next().map(str::trim) == Some(m.media_type),
        "Content-Type {ct:?} != pushed {}",
        m.media_type
    );
    digest_header_if_present(resp, &m.digest.to_string())
}

async fn manifest_by_tag(ctx: Ctx) -> Check {
    let (repo, m) = pushed_image(&ctx, "manifest-tag", "v1").await?;
    same_manifest(&ctx.get_manifest(&repo, "v1").await?, &m)
}

async fn manifest_by_digest(ctx: Ctx) -> Check {
    let (repo, m) = pushed_image(&ctx, "manifest-digest", "v1").await?;
    same_manifest(&ctx.get_manifest(&repo, &m.digest.to_string()).await?, &m)
}

async fn manifest_head(ctx: Ctx) -> Check {
    let (repo, m) = pushed_image(&ctx, "manifest-head", "v1").await?;
    for reference in ["v1".to_owned(), m.digest.to_string()] {
        let resp = ctx
            .call(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}"))
            .header("accept", mt::ACCEPT_ALL)
            .send()
            .await?;
        expect_status(&resp, &[200])?;
        ensure!(resp.body.is_empty(), "HEAD manifest has a body");
        if let Some(len) = resp.header("content-length") {
            ensure!(
                len == m.bytes.len().to_string(),
                "HEAD manifest Content-Length {len} != {}",
                m.bytes.len()
            );
        }
        let ct = require_header(&resp, "content-type")?;
        ensure!(
            ct.split(';').next().map(str::trim) == Some(m.media_type),
            "HEAD Content-Type {ct:?} != {}",
            m.media_type
        );
        digest_header_if_present(&resp, &m.digest.to_string())?;
    }
    Ok(())
}

async fn manifest_digest_header(ctx: Ctx) -> Check {
    let (repo, m) = pushed_image(&ctx, "manifest-digest-header", "v1").await?;
    let resp = ctx.get_manifest(&repo, "v1").await?;
    expect_status(&resp, &[200])?;
    if resp.header("docker-content-digest").is_none() {
        skip!("no Docker-Content-Digest on manifest GET (SHOULD)");
    }
    digest_header_if_present(&resp, &m.digest.to_string())
}

async fn manifest_missing(ctx: Ctx) -> Check {
    let (repo, _) = pushed_image(&ctx, "manifest-missing", "v1").await?;
    let codes = ["MANIFEST_UNKNOWN", "NAME_UNKNOWN"];
    for reference in ["no-such-tag".to_owned(), absent_digest().to_string()] {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let head = ctx
            .call(Method::HEAD, &path)
            .header("accept", mt::ACCEPT_ALL)
            .send()
            .await?;
        expect_error(&head, &[404], &[])?;
        let get = ctx
            .call(Method::GET, &path)
            .header("accept", mt::ACCEPT_ALL)
            .send()
            .await?;
        expect_error(&get, &[404], &codes)?;
    }
    // A repository that was never created.
    let unknown = ctx.repo("never-created");
    let get = ctx.get_manifest(&unknown, "latest").await?;
    expect_error(&get, &[404], &codes)?;
    Ok(())
}

async fn manifest_invalid_reference(ctx: Ctx) -> Check {
    let (repo, _) = pushed_image(&ctx, "manifest-invalid-ref", "v1").await?;
    let resp = ctx.get_manifest(&repo, "sha256:totallywrong").await?;
    expect_error(&resp, &[400, 404], &[])?;
    Ok(())
}

/// Without an `Accept` header the registry still serves the stored manifest with its type
/// (end-3: "serve the exact stored bytes").
async fn manifest_no_accept(ctx: Ctx) -> Check {
    let (repo, m) = pushed_image(&ctx, "manifest-no-accept", "v1").await?;
    for reference in ["v1".to_owned(), m.digest.to_string()] {
        let resp = ctx
            .call(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
            .send()
            .await?;
        same_manifest(&resp, &m)?;
    }
    Ok(())
}

/// A blob pushed to one repository is not readable through another one: every read checks
/// the repository's own links.
async fn blob_repo_isolation(ctx: Ctx) -> Check {
    let owner = ctx.repo("isolation-owner");
    let other = ctx.repo("isolation-other");
    let data = random_bytes(300);
    let d = ctx.push_blob(&owner, &data).await?;
    ctx.push_blob(&other, &random_bytes(30)).await?;
    for method in [Method::HEAD, Method::GET] {
        let resp = ctx
            .call(method, &format!("/v2/{other}/blobs/{d}"))
            .send()
            .await?;
        expect_error(&resp, &[404], &["BLOB_UNKNOWN"])?;
    }
    Ok(())
}

/// The same for manifests: by digest through another repository is 404.
async fn manifest_repo_isolation(ctx: Ctx) -> Check {
    let (owner, m) = pushed_image(&ctx, "isolation-manifest-owner", "v1").await?;
    let (other, _) = pushed_image(&ctx, "isolation-manifest-other", "v1").await?;
    let resp = ctx.get_manifest(&other, &m.digest.to_string()).await?;
    expect_error(&resp, &[404], &["MANIFEST_UNKNOWN"])?;
    let ok = ctx.get_manifest(&owner, &m.digest.to_string()).await?;
    expect_status(&ok, &[200])?;
    Ok(())
}
