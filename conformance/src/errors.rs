//! Errors and limits: every error is a spec error body with one of the 14 codes and never a
//! 5xx; invalid names, digests and manifests are rejected; size limits; path traversal;
//! oversized headers; the version header.

use bytes::Bytes;
use oci_types::Digest;
use reqwest::Method;
use serde_json::json;

use crate::check::{
    Check, Stop, ensure, error_codes, expect_error, expect_status, fail, require_header, skip,
};
use crate::ctx::{Ctx, Manifest, absent_digest, mt, random_bytes, random_hex, with_query};
use crate::http::{HttpError, RawError, RawResponse};
use crate::{Case, case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!("ping", ping),
        case!("api-version-header", api_version_header),
        case!("name-uppercase", name_uppercase),
        case!("name-double-slash", name_double_slash),
        case!("name-dotdot", name_dotdot),
        case!("name-grammar", name_grammar),
        case!("name-too-long", name_too_long),
        case!("tag-invalid", tag_invalid),
        case!("digest-invalid-blob", digest_invalid_blob),
        case!("digest-invalid-upload", digest_invalid_upload),
        case!("digest-invalid-manifest", digest_invalid_manifest),
        case!("manifest-invalid-json", manifest_invalid_json),
        case!("manifest-schema-version", manifest_schema_version),
        case!("manifest-invalid-descriptor", manifest_invalid_descriptor),
        case!("manifest-too-large", manifest_too_large),
        case!("manifest-4mb-accepted", manifest_4mb_accepted),
        case!("content-range-invalid", content_range_invalid),
        case!(
            "content-range-length-mismatch",
            content_range_length_mismatch
        ),
        case!("upload-unknown", upload_unknown),
        case!("path-traversal", path_traversal),
        case!("huge-header", huge_header),
    ]
}

async fn ping(ctx: Ctx) -> Check {
    let resp = ctx.call(Method::GET, "/v2/").send().await?;
    match resp.status.as_u16() {
        200 => Ok(()),
        401 => {
            require_header(&resp, "www-authenticate")?;
            expect_error(&resp, &[401], &["UNAUTHORIZED"])?;
            Ok(())
        }
        _ => fail!(
            "GET /v2/ must be 200 (or 401 with a challenge): {}",
            resp.describe()
        ),
    }
}

fn version_header(resp: &crate::http::Response) -> Check {
    let v = require_header(resp, "docker-distribution-api-version")?;
    ensure!(
        v == "registry/2.0",
        "Docker-Distribution-Api-Version is {v:?}, not registry/2.0"
    );
    Ok(())
}

async fn api_version_header(ctx: Ctx) -> Check {
    version_header(&ctx.call(Method::GET, "/v2/").send().await?)?;
    let repo = ctx.repo("api-version");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    version_header(&ctx.put_manifest(&repo, "v1", &m).await?)?;
    version_header(&ctx.get_manifest(&repo, "v1").await?)?;
    version_header(&ctx.get_blob(&repo, &absent_digest()).await?)?;
    // Error paths outside the handlers: unknown route, wrong method, invalid name.
    version_header(
        &ctx.call(Method::GET, &format!("/v2/{repo}/no/such/route"))
            .send()
            .await?,
    )?;
    version_header(
        &ctx.call(Method::POST, &format!("/v2/{repo}/manifests/v1"))
            .send()
            .await?,
    )?;
    version_header(
        &ctx.call(Method::GET, "/v2/Invalid/Name/tags/list")
            .send()
            .await?,
    )?;
    Ok(())
}

/// A request on an invalid name must be 400 `NAME_INVALID` or a 404 spec error.
fn judge_invalid_name(resp: &crate::http::Response) -> Check {
    match resp.status.as_u16() {
        400 => expect_error(resp, &[400], &["NAME_INVALID"]).map(drop),
        404 => expect_error(resp, &[404], &[]).map(drop),
        _ => fail!(
            "invalid name must get 400 NAME_INVALID or 404: {}",
            resp.describe()
        ),
    }
}

async fn probe_name(ctx: &Ctx, name: &str) -> Check {
    for (method, suffix) in [
        (Method::GET, "tags/list"),
        (Method::GET, "manifests/latest"),
        (Method::POST, "blobs/uploads/"),
    ] {
        let resp = ctx
            .call(method, &format!("/v2/{name}/{suffix}"))
            .send()
            .await?;
        judge_invalid_name(&resp)?;
    }
    Ok(())
}

async fn name_uppercase(ctx: Ctx) -> Check {
    probe_name(&ctx, &format!("{}/UpperCase{}", ctx.ns, random_hex(6))).await
}

async fn name_double_slash(ctx: Ctx) -> Check {
    probe_name(&ctx, &format!("{}//x{}", ctx.ns, random_hex(6))).await
}

async fn name_grammar(ctx: Ctx) -> Check {
    for bad in ["-lead", "trail-", "a..b", ".dot", "a_-b", "sp%20ace"] {
        probe_name(&ctx, &format!("{}/{}/{bad}", ctx.ns, random_hex(4))).await?;
    }
    Ok(())
}

async fn name_too_long(ctx: Ctx) -> Check {
    // 256+ characters; spec grammar has no cap, but 255 is the de-facto limit.
    let name = format!("{}/{}", ctx.ns, "a".repeat(300));
    probe_name(&ctx, &name).await
}

/// Raw responses: require a 4xx with a spec body (when there is a body).
fn judge_raw(target: &str, resp: &RawResponse, require_body: bool) -> Check {
    let s = resp.status.as_u16();
    let body = String::from_utf8_lossy(&resp.body[..resp.body.len().min(120)]).into_owned();
    ensure!(
        (400..500).contains(&s),
        "{target} -> {s} {body}: expected a 4xx spec error"
    );
    if resp.body.is_empty() {
        ensure!(
            !require_body,
            "{target} -> {s} with an empty body, expected a spec error body"
        );
        return Ok(());
    }
    if let Err(why) = error_codes(&resp.body) {
        fail!("{target} -> {s} body is not spec JSON ({why}): {body}");
    }
    Ok(())
}

fn raw_err(e: HttpError) -> Stop {
    if let HttpError::Raw {
        source: RawError::NotPlainHttp,
        ..
    } = e
    {
        Stop::Skip("raw-path probes are only implemented for http:// registries".into())
    } else {
        Stop::from(e)
    }
}

async fn name_dotdot(ctx: Ctx) -> Check {
    let ns = &ctx.ns;
    for target in [
        format!("/v2/{ns}/../x/tags/list"),
        format!("/v2/{ns}/../../x/manifests/latest"),
        format!("/v2/{ns}/x/../y/blobs/uploads/"),
    ] {
        let method = if target.ends_with("uploads/") {
            "POST"
        } else {
            "GET"
        };
        let resp = ctx.http.raw(method, &target, &[]).await.map_err(raw_err)?;
        judge_raw(&target, &resp, true)?;
    }
    Ok(())
}

async fn digest_invalid_blob(ctx: Ctx) -> Check {
    let repo = ctx.repo("digest-invalid");
    ctx.push_blob(&repo, &random_bytes(10)).await?;
    let upper = format!(
        "sha256:{}",
        Digest::sha256_of(b"x").hex().to_ascii_uppercase()
    );
    for (d, codes) in [
        ("sha256:xyz", &["DIGEST_INVALID"][..]),
        (
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            &["DIGEST_INVALID", "UNSUPPORTED"][..],
        ),
        (upper.as_str(), &["DIGEST_INVALID"][..]),
    ] {
        let resp = ctx
            .call(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
            .send()
            .await?;
        expect_error(&resp, &[400], codes)?;
    }
    Ok(())
}

async fn digest_invalid_upload(ctx: Ctx) -> Check {
    let repo = ctx.repo("digest-invalid-upload");
    for d in ["sha256:xyz", "md5:d41d8cd98f00b204e9800998ecf8427e"] {
        let loc = ctx.start_upload(&repo).await?;
        let resp = ctx
            .call_url(Method::PUT, &with_query(&loc, "digest", d))
            .blob(random_bytes(100))
            .send()
            .await?;
        expect_error(&resp, &[400], &["DIGEST_INVALID", "UNSUPPORTED"])?;
    }
    Ok(())
}

async fn digest_invalid_manifest(ctx: Ctx) -> Check {
    let repo = ctx.repo("digest-invalid-manifest");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    let bad = ctx.put_manifest_raw(&repo, "sha256:xyz", &m).await?;
    expect_error(&bad, &[400], &["DIGEST_INVALID", "MANIFEST_INVALID"])?;
    // A well-formed digest that does not match the body.
    let wrong = absent_digest();
    let resp = ctx.put_manifest_raw(&repo, &wrong.to_string(), &m).await?;
    expect_error(&resp, &[400], &["DIGEST_INVALID", "MANIFEST_INVALID"])?;
    let get = ctx.get_manifest(&repo, &wrong.to_string()).await?;
    ensure!(
        get.status.as_u16() == 404,
        "manifest stored under a digest that does not match it: {}",
        get.describe()
    );
    Ok(())
}

async fn manifest_invalid_json(ctx: Ctx) -> Check {
    let repo = ctx.repo("manifest-invalid-json");
    ctx.push_blob(&repo, &random_bytes(10)).await?;
    for body in [
        &b"{\"schemaVersion\": 2, \"mediaType\": "[..],
        &b"not json at all"[..],
        &b"[]"[..],
    ] {
        let resp = ctx
            .call(Method::PUT, &format!("/v2/{repo}/manifests/v1"))
            .header("content-type", mt::OCI_MANIFEST)
            .body(Bytes::copy_from_slice(body))
            .send()
            .await?;
        expect_error(&resp, &[400], &["MANIFEST_INVALID"])?;
    }
    Ok(())
}

async fn manifest_schema_version(ctx: Ctx) -> Check {
    let repo = ctx.repo("manifest-schema-version");
    let good = ctx.prepare_image(&repo, json!({})).await?;
    let mut base: serde_json::Value = match serde_json::from_slice(&good.bytes) {
        Ok(v) => v,
        Err(e) => fail!("suite bug: {e}"),
    };
    for version in [1, 3] {
        crate::ctx::merge(&mut base, json!({"schemaVersion": version}));
        let m = Manifest::new(&base, mt::OCI_MANIFEST);
        let resp = ctx.put_manifest_raw(&repo, "v1", &m).await?;
        expect_error(&resp, &[400], &["MANIFEST_INVALID"])?;
    }
    Ok(())
}

async fn manifest_invalid_descriptor(ctx: Ctx) -> Check {
    let repo = ctx.repo("manifest-invalid-descriptor");
    let m = ctx
        .prepare_image(
            &repo,
            json!({"layers": [{"mediaType": mt::OCI_LAYER, "digest": "sha256:nothex", "size": 1}]}),
        )
        .await?;
    let resp = ctx.put_manifest_raw(&repo, "v1", &m).await?;
    expect_error(&resp, &[400], &["MANIFEST_INVALID", "DIGEST_INVALID"])?;
    Ok(())
}

/// An image manifest padded with annotations to about `size` bytes.
async fn padded_manifest(ctx: &Ctx, repo: &str, size: usize) -> Check<Manifest> {
    let mut ann = serde_json::Map::new();
    let chunk = 10_000;
    for i in 0..size / (chunk + 40) {
        ann.insert(format!("org.bay.test.pad.{i}"), json!("x".repeat(chunk)));
    }
    ctx.prepare_image(repo, json!({"annotations": ann})).await
}

async fn manifest_too_large(ctx: Ctx) -> Check {
    let repo = ctx.repo("manifest-too-large");
    let m = padded_manifest(&ctx, &repo, 5 * 1024 * 1024 + 100_000).await?;
    ensure!(
        m.bytes.len() > 5 * 1024 * 1024,
        "suite bug: manifest only {} bytes",
        m.bytes.len()
    );
    let resp = ctx.put_manifest_raw(&repo, "v1", &m).await?;
    match resp.status.as_u16() {
        413 => {
            if !resp.body.is_empty() {
                expect_error(&resp, &[413], &[])?;
            }
            Ok(())
        }
        201 => skip!("5 MiB manifest accepted: no limit below 5 MiB (a limit is SHOULD)"),
        _ => fail!(
            "manifest over the size limit must get 413: {}",
            resp.describe()
        ),
    }
}

async fn manifest_4mb_accepted(ctx: Ctx) -> Check {
    let repo = ctx.repo("manifest-4mb");
    let m = padded_manifest(&ctx, &repo, 3_900_000).await?;
    let resp = ctx.put_manifest_raw(&repo, "v1", &m).await?;
    match resp.status.as_u16() {
        201 => {
            let get = ctx.get_manifest(&repo, "v1").await?;
            expect_status(&get, &[200])?;
            ensure!(
                get.body == m.bytes,
                "3.9 MB manifest reads back different bytes"
            );
            Ok(())
        }
        413 => skip!("3.9 MB manifest refused with 413 (registries SHOULD accept 4 MB)"),
        _ => fail!("3.9 MB manifest: {}", resp.describe()),
    }
}

async fn content_range_invalid(ctx: Ctx) -> Check {
    let repo = ctx.repo("content-range-invalid");
    for cr in ["bytes=abc", "5-2", "abc"] {
        let loc = ctx.start_upload(&repo).await?;
        let resp = ctx
            .call_url(Method::PATCH, &loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", cr)
            .body(random_bytes(4))
            .send()
            .await?;
        let s = resp.status.as_u16();
        ensure!(
            s == 416 || s == 400,
            "PATCH with Content-Range {cr:?} must get 416 (or 400): {}",
            resp.describe()
        );
        if !resp.body.is_empty() {
            expect_error(&resp, &[s], &[])?;
        }
    }
    Ok(())
}

async fn upload_unknown(ctx: Ctx) -> Check {
    let repo = ctx.repo("upload-unknown");
    ctx.push_blob(&repo, &random_bytes(10)).await?;
    let path = format!("/v2/{repo}/blobs/uploads/{}", random_hex(32));
    let data = random_bytes(10);
    let d = Digest::sha256_of(&data);
    let probes = [
        ctx.call(Method::GET, &path).send().await?,
        ctx.call(Method::PATCH, &path)
            .header("content-type", "application/octet-stream")
            .body(data.clone())
            .send()
            .await?,
        ctx.call(Method::PUT, &format!("{path}?digest={d}"))
            .blob(data.clone())
            .send()
            .await?,
        ctx.call(Method::DELETE, &path).send().await?,
    ];
    for resp in &probes {
        expect_error(resp, &[404], &["BLOB_UPLOAD_UNKNOWN"])?;
    }
    Ok(())
}

async fn path_traversal(ctx: Ctx) -> Check {
    let d = absent_digest();
    let ns = &ctx.ns;
    let targets = [
        ("GET", "/v2/%2e%2e/%2e%2e/etc/manifests/latest".to_owned()),
        ("GET", format!("/v2/a/%2e%2e/b/blobs/{d}")),
        (
            "GET",
            format!("/v2/{ns}/%2E%2E/%2E%2E/%2E%2E/etc/tags/list"),
        ),
        ("GET", "/v2/%2e%2e%2f%2e%2e%2fetc/tags/list".to_owned()),
        (
            "GET",
            format!("/v2/{ns}/x/blobs/..%2f..%2f..%2fetc%2fpasswd"),
        ),
        ("GET", format!("/v2/{ns}/x/manifests/..%2f..%2fx")),
        ("PUT", format!("/v2/{ns}/x/manifests/%2e%2e")),
        ("POST", format!("/v2/{ns}/%2e%2e/x/blobs/uploads/")),
    ];
    for (method, target) in &targets {
        let resp = ctx.http.raw(method, target, &[]).await.map_err(raw_err)?;
        judge_raw(target, &resp, true)?;
    }
    Ok(())
}

async fn huge_header(ctx: Ctx) -> Check {
    // A little over 1 MiB so Go's 1 MiB + 4 KiB slack is exceeded as well.
    let pad = "a".repeat(1024 * 1024 + 16 * 1024);
    let result = ctx.http.raw("GET", "/v2/", &[("x-bay-padding", pad)]).await;
    match result {
        Ok(resp) => {
            let s = resp.status.as_u16();
            ensure!(
                matches!(s, 400 | 413 | 431),
                "1 MiB request header must get 431/400/413, got {s}"
            );
            judge_raw("GET /v2/ with a 1 MiB header", &resp, false)?;
            let v = resp
                .headers
                .get("docker-distribution-api-version")
                .and_then(|v| v.to_str().ok());
            ensure!(
                v == Some("registry/2.0"),
                "the {s} answer to a 1 MiB header lacks Docker-Distribution-Api-Version: registry/2.0 (got {v:?})"
            );
        }
        Err(HttpError::Raw {
            source: RawError::NotPlainHttp,
            ..
        }) => skip!("raw probes are only implemented for http:// registries"),
        Err(e) => {
            // The server may also drop such a connection; that is a refusal, but the server
            // must stay up.
            tracing::info!(error = %e, "huge header: connection dropped");
        }
    }
    let alive = ctx.call(Method::GET, "/v2/").send().await?;
    ensure!(
        matches!(alive.status.as_u16(), 200 | 401),
        "registry unhealthy after a 1 MiB header: {}",
        alive.describe()
    );
    Ok(())
}

/// Tags outside `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` are refused on PUT with a spec error.
async fn tag_invalid(ctx: Ctx) -> Check {
    let repo = ctx.repo("tag-invalid");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    let long = "t".repeat(129);
    for tag in [".dot", "-dash", long.as_str(), "a+b", "%2e%2e"] {
        let resp = ctx.put_manifest_raw(&repo, tag, &m).await?;
        ensure!(
            matches!(resp.status.as_u16(), 400 | 404),
            "PUT manifest with invalid tag {tag:?} must be refused: {}",
            resp.describe()
        );
        expect_error(&resp, &[400, 404], &[])?;
    }
    Ok(())
}

/// A chunk whose Content-Range disagrees with its length is refused and not stored.
async fn content_range_length_mismatch(ctx: Ctx) -> Check {
    let repo = ctx.repo("content-range-mismatch");
    let loc = ctx.start_upload(&repo).await?;
    let resp = ctx
        .call_url(Method::PATCH, &loc)
        .header("content-type", "application/octet-stream")
        .header("content-range", "0-9")
        .body(random_bytes(4))
        .send()
        .await?;
    let s = resp.status.as_u16();
    ensure!(
        s == 416 || s == 400,
        "PATCH of 4 bytes with Content-Range 0-9 must get 416 (or 400): {}",
        resp.describe()
    );
    if !resp.body.is_empty() {
        expect_error(&resp, &[s], &[])?;
    }
    Ok(())
}
