//! Push: blob uploads (end-4a/b, end-5, end-6, end-11, end-13, end-14) and manifest pushes
//! (end-7, end-7b).

use std::collections::BTreeSet;

use bytes::Bytes;
use oci_types::{Algorithm, Digest};
use reqwest::{Method, Url};
use serde_json::json;

use crate::check::{
    Check, digest_header_if_present, ensure, expect_error, expect_status, fail, parse_upload_range,
    require_header, skip,
};
use crate::ctx::{
    Ctx, Manifest, absent_digest, descriptor, location, mt, random_bytes, with_query,
};
use crate::http::Response;
use crate::{Case, case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!("blob-monolithic-post", monolithic_post),
        case!("blob-post-put", post_put),
        case!("blob-streamed-patch", streamed_patch),
        case!("blob-chunked", chunked),
        case!("blob-patch-then-put-chunk", patch_then_put_chunk),
        case!("upload-status", upload_status),
        case!("upload-location-stable", upload_location_stable),
        case!("upload-put-without-digest", upload_put_without_digest),
        case!("upload-repo-isolation", upload_repo_isolation),
        case!("upload-closed-after-put", upload_closed_after_put),
        case!("upload-cancel", upload_cancel),
        case!("mount-from", mount_from),
        case!("mount-missing-blob", mount_missing_blob),
        case!("mount-without-from", mount_without_from),
        case!("mount-from-repo-without-blob", mount_from_repo_without_blob),
        case!("blob-digest-mismatch", digest_mismatch),
        case!("blob-sha512", blob_sha512),
        case!("blob-empty", blob_empty),
        case!("manifest-oci-image", manifest_oci_image),
        case!("manifest-exact-bytes", manifest_exact_bytes),
        case!("manifest-oci-index", manifest_oci_index),
        case!("manifest-nested-index", manifest_nested_index),
        case!("manifest-data-field", manifest_data_field),
        case!("manifest-docker-schema2", manifest_docker_schema2),
        case!("manifest-docker-list", manifest_docker_list),
        case!("manifest-artifact-subject", manifest_artifact_subject),
        case!("manifest-no-layers", manifest_no_layers),
        case!("manifest-put-by-digest", manifest_put_by_digest),
        case!("manifest-put-digest-header", manifest_put_digest_header),
        case!("manifest-retag", manifest_retag),
        case!("manifest-blob-unknown", manifest_blob_unknown),
        case!("manifest-foreign-blob", manifest_foreign_blob),
        case!("manifest-missing-subject", manifest_missing_subject),
        case!("manifest-nondistributable", manifest_nondistributable),
        case!("manifest-sha512", manifest_sha512),
        case!("manifest-multi-tag", manifest_multi_tag),
    ]
}

/// Check the `Range: 0-<end>` header of an upload response.
pub(crate) fn expect_range(resp: &Response, end: u64) -> Check {
    let r = require_header(resp, "range")?;
    match parse_upload_range(r) {
        Some((0, e)) if e == end => Ok(()),
        _ => fail!("expected Range 0-{end}, got {r:?}: {}", resp.describe()),
    }
}

/// Close an upload with `PUT <loc>?digest=` and the given final body; require 201 and a
/// `Location`.
async fn finish(ctx: &Ctx, loc: &Url, digest: &Digest, body: Bytes) -> Check<Response> {
    let resp = ctx
        .call_url(Method::PUT, &with_query(loc, "digest", &digest.to_string()))
        .blob(body)
        .send()
        .await?;
    expect_status(&resp, &[201])?;
    location(&resp)?;
    Ok(resp)
}

async fn monolithic_post(ctx: Ctx) -> Check {
    let repo = ctx.repo("monolithic-post");
    let data = random_bytes(4096);
    let d = Digest::sha256_of(&data);
    let resp = ctx
        .call(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        )
        .blob(data.clone())
        .send()
        .await?;
    match resp.status.as_u16() {
        201 => {
            let loc = location(&resp)?;
            digest_header_if_present(&resp, &d.to_string())?;
            let get = ctx.call_url(Method::GET, &loc).send().await?;
            expect_status(&get, &[200])?;
            ensure!(
                get.body == data,
                "blob at Location differs from the pushed bytes"
            );
            ctx.blob_reads_back(&repo, &d, &data).await
        }
        202 => {
            // The server does not do single-POST uploads and opened a session instead: the
            // client falls back to PUT, which must work.
            let loc = location(&resp)?;
            finish(&ctx, &loc, &d, data.clone()).await?;
            ctx.blob_reads_back(&repo, &d, &data).await?;
            skip!("single-POST monolithic upload not supported (MAY); 202 + PUT fallback works")
        }
        _ => fail!("POST ?digest= must be 201 or 202: {}", resp.describe()),
    }
}

async fn post_put(ctx: Ctx) -> Check {
    let repo = ctx.repo("post-put");
    let data = random_bytes(4096);
    let d = Digest::sha256_of(&data);
    let loc = ctx.start_upload(&repo).await?;
    let resp = finish(&ctx, &loc, &d, data.clone()).await?;
    digest_header_if_present(&resp, &d.to_string())?;
    let blob_loc = location(&resp)?;
    let get = ctx.call_url(Method::GET, &blob_loc).send().await?;
    expect_status(&get, &[200])?;
    ensure!(
        get.body == data,
        "blob at the PUT's Location differs from the pushed bytes"
    );
    ctx.blob_reads_back(&repo, &d, &data).await
}

async fn streamed_patch(ctx: Ctx) -> Check {
    let repo = ctx.repo("streamed");
    let data = random_bytes(300_000);
    let d = Digest::sha256_of(&data);
    let loc = ctx.start_upload(&repo).await?;
    let chunks: Vec<Bytes> = data.chunks(64 * 1024).map(Bytes::copy_from_slice).collect();
    let resp = ctx
        .call_url(Method::PATCH, &loc)
        .header("content-type", "application/octet-stream")
        .chunked(chunks)
        .send()
        .await?;
    expect_status(&resp, &[202])?;
    let loc = location(&resp)?;
    if resp.header("range").is_some() {
        expect_range(&resp, data.len() as u64 - 1)?;
    }
    finish(&ctx, &loc, &d, Bytes::new()).await?;
    ctx.blob_reads_back(&repo, &d, &data).await
}

/// Chunk sizes for a chunked upload, honouring `OCI-Chunk-Min-Length` for the first chunk.
fn chunk_len(post: &Response) -> usize {
    let min = post
        .header("oci-chunk-min-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    // Cap what a server can make us allocate.
    min.clamp(64 * 1024, 64 * 1024 * 1024)
}

async fn patch_range(ctx: &Ctx, loc: &Url, start: usize, chunk: &[u8]) -> Check<Response> {
    ctx.call_url(Method::PATCH, loc)
        .header("content-type", "application/octet-stream")
        .header(
            "content-range",
            format!("{}-{}", start, start + chunk.len() - 1),
        )
        .body(Bytes::copy_from_slice(chunk))
        .send()
        .await
}

async fn chunked(ctx: Ctx) -> Check {
    let repo = ctx.repo("chunked");
    let post = ctx
        .call(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .await?;
    expect_status(&post, &[202])?;
    let loc0 = location(&post)?;
    let c1 = chunk_len(&post);
    let data = random_bytes(c1 + 1000);
    let d = Digest::sha256_of(&data);
    let (first, second) = data.split_at(c1);

    let r = patch_range(&ctx, &loc0, c1, second).await?;
    ensure!(
        r.status.as_u16() == 416,
        "out-of-order chunk (Content-Range {}-{}) must get 416: {}",
        c1,
        data.len() - 1,
        r.describe()
    );

    let r = patch_range(&ctx, &loc0, 0, first).await?;
    expect_status(&r, &[202])?;
    expect_range(&r, c1 as u64 - 1)?;
    let loc1 = location(&r)?;

    let r = patch_range(&ctx, &loc1, 0, first).await?;
    ensure!(
        r.status.as_u16() == 416,
        "re-sent chunk 0-{} must get 416: {}",
        c1 - 1,
        r.describe()
    );

    let st = ctx.call_url(Method::GET, &loc1).send().await?;
    expect_status(&st, &[204])?;
    expect_range(&st, c1 as u64 - 1)?;
    let loc2 = location(&st)?;

    let r = patch_range(&ctx, &loc2, c1, second).await?;
    expect_status(&r, &[202])?;
    expect_range(&r, data.len() as u64 - 1)?;
    let loc3 = location(&r)?;

    finish(&ctx, &loc3, &d, Bytes::new()).await?;
    ctx.blob_reads_back(&repo, &d, &data).await
}

async fn upload_status(ctx: Ctx) -> Check {
    let repo = ctx.repo("upload-status");
    let loc = ctx.start_upload(&repo).await?;
    let st = ctx.call_url(Method::GET, &loc).send().await?;
    expect_status(&st, &[204])?;
    let loc = location(&st)?;
    let data = random_bytes(100);
    let r = patch_range(&ctx, &loc, 0, &data).await?;
    expect_status(&r, &[202])?;
    let loc = location(&r)?;
    let st = ctx.call_url(Method::GET, &loc).send().await?;
    expect_status(&st, &[204])?;
    location(&st)?;
    expect_range(&st, 99)
}

async fn upload_cancel(ctx: Ctx) -> Check {
    let repo = ctx.repo("upload-cancel");
    let loc = ctx.start_upload(&repo).await?;
    let r = patch_range(&ctx, &loc, 0, &random_bytes(100)).await?;
    expect_status(&r, &[202])?;
    let loc = location(&r)?;
    let del = ctx.call_url(Method::DELETE, &loc).send().await?;
    match del.status.as_u16() {
        204 => {}
        405 => skip!("upload cancel not supported: {}", del.describe()),
        400 if expect_error(&del, &[400], &["UNSUPPORTED"]).is_ok() => {
            skip!("upload cancel not supported: {}", del.describe())
        }
        _ => fail!("DELETE upload must be 204: {}", del.describe()),
    }
    let st = ctx.call_url(Method::GET, &loc).send().await?;
    expect_error(&st, &[404], &["BLOB_UPLOAD_UNKNOWN"])?;
    Ok(())
}

/// On a 201 mount: `Location` must be `/v2/<repo>/blobs/<d>` and the blob readable.
async fn check_mounted(ctx: &Ctx, resp: &Response, repo: &str, d: &Digest, data: &[u8]) -> Check {
    let loc = location(resp)?;
    let want = format!("/v2/{repo}/blobs/{d}");
    ensure!(
        loc.path() == want,
        "mount Location path {} != {want}",
        loc.path()
    );
    digest_header_if_present(resp, &d.to_string())?;
    let get = ctx.call_url(Method::GET, &loc).send().await?;
    expect_status(&get, &[200])?;
    ensure!(get.body.as_ref() == data, "mounted blob differs");
    Ok(())
}

async fn mount_from(ctx: Ctx) -> Check {
    let src = ctx.repo("mount-src");
    let dst = ctx.repo("mount-dst");
    let data = random_bytes(2048);
    let d = ctx.push_blob(&src, &data).await?;
    let resp = ctx
        .call(
            Method::POST,
            &format!("/v2/{dst}/blobs/uploads/?mount={d}&from={src}"),
        )
        .send()
        .await?;
    match resp.status.as_u16() {
        201 => check_mounted(&ctx, &resp, &dst, &d, &data).await,
        202 => {
            location(&resp)?;
            skip!("server declined the cross-repository mount (202 + upload is allowed)")
        }
        _ => fail!("mount with from must be 201 or 202: {}", resp.describe()),
    }
}

async fn mount_missing_blob(ctx: Ctx) -> Check {
    let src = ctx.repo("mount-missing-src");
    let dst = ctx.repo("mount-missing-dst");
    ctx.push_blob(&src, &random_bytes(10)).await?;
    let missing = absent_digest();
    let resp = ctx
        .call(
            Method::POST,
            &format!("/v2/{dst}/blobs/uploads/?mount={missing}&from={src}"),
        )
        .send()
        .await?;
    ensure!(
        resp.status.as_u16() == 202,
        "mount of a missing blob must fall back to 202 + upload: {}",
        resp.describe()
    );
    let loc = location(&resp)?;
    let data = random_bytes(1000);
    let d = Digest::sha256_of(&data);
    finish(&ctx, &loc, &d, data.clone()).await?;
    ctx.blob_reads_back(&dst, &d, &data).await
}

async fn mount_without_from(ctx: Ctx) -> Check {
    let src = ctx.repo("automount-src");
    let dst = ctx.repo("automount-dst");
    let data = random_bytes(2048);
    let d = ctx.push_blob(&src, &data).await?;
    let resp = ctx
        .call(Method::POST, &format!("/v2/{dst}/blobs/uploads/?mount={d}"))
        .send()
        .await?;
    match resp.status.as_u16() {
        201 => check_mounted(&ctx, &resp, &dst, &d, &data).await,
        202 => {
            let loc = location(&resp)?;
            finish(&ctx, &loc, &d, data.clone()).await?;
            skip!("no automatic mount without from (MAY); 202 + upload works")
        }
        _ => fail!("mount without from must be 201 or 202: {}", resp.describe()),
    }
}

async fn digest_mismatch(ctx: Ctx) -> Check {
    let repo = ctx.repo("digest-mismatch");
    let data = random_bytes(1000);
    let wrong = absent_digest();
    let loc = ctx.start_upload(&repo).await?;
    let resp = ctx
        .call_url(Method::PUT, &with_query(&loc, "digest", &wrong.to_string()))
        .blob(data)
        .send()
        .await?;
    expect_error(&resp, &[400], &["DIGEST_INVALID"])?;
    let get = ctx.get_blob(&repo, &wrong).await?;
    ensure!(
        get.status.as_u16() == 404,
        "a blob whose digest did not verify must not exist: {}",
        get.describe()
    );
    Ok(())
}

async fn blob_sha512(ctx: Ctx) -> Check {
    let repo = ctx.repo("sha512");
    let data = random_bytes(3000);
    let d = Digest::of(Algorithm::Sha512, &data);
    let loc = ctx.start_upload(&repo).await?;
    let resp = ctx
        .call_url(Method::PUT, &with_query(&loc, "digest", &d.to_string()))
        .blob(data.clone())
        .send()
        .await?;
    match resp.status.as_u16() {
        201 => {}
        400 if expect_error(&resp, &[400], &["DIGEST_INVALID", "UNSUPPORTED"]).is_ok() => {
            skip!(
                "sha512 digests not supported (optional): {}",
                resp.describe()
            )
        }
        _ => fail!(
            "sha512 upload must be 201 (or 400 if unsupported): {}",
            resp.describe()
        ),
    }
    let echoed = require_header(&resp, "docker-content-digest")?;
    ensure!(
        echoed == d.to_string(),
        "Docker-Content-Digest must echo the client's sha512 digest, got {echoed}"
    );
    ctx.blob_reads_back(&repo, &d, &data).await?;
    // Mounting a sha512 blob elsewhere is a normal mount (201, or 202 + upload).
    let dst = ctx.repo("sha512-mount");
    let m = ctx
        .call(
            Method::POST,
            &format!("/v2/{dst}/blobs/uploads/?mount={d}&from={repo}"),
        )
        .send()
        .await?;
    match m.status.as_u16() {
        201 => check_mounted(&ctx, &m, &dst, &d, &data).await,
        202 => location(&m).map(drop),
        _ => fail!(
            "mounting a sha512 blob must be 201 or 202: {}",
            m.describe()
        ),
    }
}

async fn blob_empty(ctx: Ctx) -> Check {
    let repo = ctx.repo("empty-blob");
    let data = Bytes::new();
    let d = ctx.push_blob(&repo, &data).await?;
    ctx.blob_reads_back(&repo, &d, &data).await?;
    let head = ctx
        .call(Method::HEAD, &format!("/v2/{repo}/blobs/{d}"))
        .send()
        .await?;
    expect_status(&head, &[200])?;
    let len = require_header(&head, "content-length")?;
    ensure!(len == "0", "empty blob HEAD Content-Length {len:?}");
    Ok(())
}

/// Push by tag, require `Location` + `Docker-Content-Digest`, and read it back by tag and
/// by digest with the same bytes and type.
async fn push_and_read(ctx: &Ctx, repo: &str, tag: &str, m: &Manifest) -> Check<Response> {
    // `put_manifest` already fails on a wrong Docker-Content-Digest; its absence is judged
    // by `manifest-put-digest-header`.
    let resp = ctx.put_manifest(repo, tag, m).await?;
    location(&resp)?;
    for reference in [tag.to_owned(), m.digest.to_string()] {
        let get = ctx.get_manifest(repo, &reference).await?;
        expect_status(&get, &[200])?;
        ensure!(get.body == m.bytes, "manifest bytes by {reference} differ");
        let ct = require_header(&get, "content-type")?;
        ensure!(
            ct.split(';').next().map(str::trim) == Some(m.media_type),
            "Content-Type {ct:?} != pushed {}",
            m.media_type
        );
    }
    Ok(resp)
}

async fn manifest_oci_image(ctx: Ctx) -> Check {
    let repo = ctx.repo("oci-image");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    push_and_read(&ctx, &repo, "v1", &m).await.map(drop)
}

async fn manifest_oci_index(ctx: Ctx) -> Check {
    let repo = ctx.repo("oci-index");
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let m = ctx.prepare_image(&repo, json!({})).await?;
        ctx.put_manifest(&repo, &m.digest.to_string(), &m).await?;
        let mut desc = m.descriptor();
        crate::ctx::merge(
            &mut desc,
            json!({"platform": {"architecture": arch, "os": "linux"}}),
        );
        entries.push(desc);
    }
    let index = Manifest::new(
        &json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": entries}),
        mt::OCI_INDEX,
    );
    push_and_read(&ctx, &repo, "multi", &index).await.map(drop)
}

async fn docker_image(ctx: &Ctx, repo: &str) -> Check<Manifest> {
    let config = Bytes::from(
        json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "nonce": crate::ctx::random_hex(8)})
            .to_string(),
    );
    let layer = random_bytes(700);
    ctx.push_blob(repo, &config).await?;
    ctx.push_blob(repo, &layer).await?;
    Ok(Manifest::new(
        &json!({
            "schemaVersion": 2,
            "mediaType": mt::DOCKER_MANIFEST,
            "config": descriptor(mt::DOCKER_CONFIG, &config),
            "layers": [descriptor(mt::DOCKER_LAYER, &layer)],
        }),
        mt::DOCKER_MANIFEST,
    ))
}

async fn manifest_docker_schema2(ctx: Ctx) -> Check {
    let repo = ctx.repo("docker-schema2");
    let m = docker_image(&ctx, &repo).await?;
    push_and_read(&ctx, &repo, "v1", &m).await.map(drop)
}

async fn manifest_docker_list(ctx: Ctx) -> Check {
    let repo = ctx.repo("docker-list");
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let m = docker_image(&ctx, &repo).await?;
        ctx.put_manifest(&repo, &m.digest.to_string(), &m).await?;
        let mut desc = m.descriptor();
        crate::ctx::merge(
            &mut desc,
            json!({"platform": {"architecture": arch, "os": "linux"}}),
        );
        entries.push(desc);
    }
    let list = Manifest::new(
        &json!({"schemaVersion": 2, "mediaType": mt::DOCKER_LIST, "manifests": entries}),
        mt::DOCKER_LIST,
    );
    push_and_read(&ctx, &repo, "multi", &list).await.map(drop)
}

async fn manifest_artifact_subject(ctx: Ctx) -> Check {
    let repo = ctx.repo("artifact");
    let subject = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "v1", &subject).await?;
    let art = ctx
        .prepare_artifact(
            &repo,
            mt::OCI_EMPTY,
            json!({"artifactType": "application/vnd.bay.test.sbom", "subject": subject.descriptor()}),
        )
        .await?;
    let resp = push_and_read(&ctx, &repo, "sbom", &art).await?;
    let s = require_header(&resp, "oci-subject")?;
    ensure!(
        s == subject.digest.to_string(),
        "OCI-Subject {s} != subject digest {}",
        subject.digest
    );
    Ok(())
}

async fn manifest_no_layers(ctx: Ctx) -> Check {
    let repo = ctx.repo("no-layers");
    let m = ctx.prepare_image(&repo, json!({"layers": []})).await?;
    push_and_read(&ctx, &repo, "v1", &m).await.map(drop)
}

async fn manifest_put_by_digest(ctx: Ctx) -> Check {
    let repo = ctx.repo("by-digest");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    let resp = ctx.put_manifest(&repo, &m.digest.to_string(), &m).await?;
    location(&resp)?;
    let get = ctx.get_manifest(&repo, &m.digest.to_string()).await?;
    expect_status(&get, &[200])?;
    ensure!(
        get.body == m.bytes,
        "manifest pushed by digest reads back different bytes"
    );
    Ok(())
}

async fn manifest_blob_unknown(ctx: Ctx) -> Check {
    let repo = ctx.repo("blob-unknown");
    let m = ctx
        .prepare_image(
            &repo,
            json!({"layers": [{"mediaType": mt::OCI_LAYER, "digest": absent_digest().to_string(), "size": 64}]}),
        )
        .await?;
    let resp = ctx.put_manifest_raw(&repo, "v1", &m).await?;
    match resp.status.as_u16() {
        400 => {
            expect_error(&resp, &[400], &["MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"])?;
            Ok(())
        }
        201 => skip!("registry accepts manifests whose layers are missing (allowed)"),
        _ => fail!(
            "manifest with a missing layer: expected 400 MANIFEST_BLOB_UNKNOWN: {}",
            resp.describe()
        ),
    }
}

async fn manifest_missing_subject(ctx: Ctx) -> Check {
    let repo = ctx.repo("missing-subject");
    let ghost =
        json!({"mediaType": mt::OCI_MANIFEST, "digest": absent_digest().to_string(), "size": 321});
    let art = ctx
        .prepare_artifact(
            &repo,
            mt::OCI_EMPTY,
            json!({"artifactType": "application/vnd.bay.test.sig", "subject": ghost}),
        )
        .await?;
    push_and_read(&ctx, &repo, "sig", &art).await.map(drop)
}

async fn manifest_multi_tag(ctx: Ctx) -> Check {
    let repo = ctx.repo("multi-tag");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    let resp = ctx
        .call(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{}?tag=alpha&tag=beta", m.digest),
        )
        .header("content-type", m.media_type)
        .body(m.bytes.clone())
        .send()
        .await?;
    if resp.status.is_client_error() {
        expect_error(&resp, &[resp.status.as_u16()], &[])?;
        skip!(
            "?tag= multi-tag PUT not supported (main only): {}",
            resp.describe()
        );
    }
    expect_status(&resp, &[201])?;
    let announced: BTreeSet<String> = resp
        .header_all("oci-tag")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let mut tagged = BTreeSet::new();
    for t in ["alpha", "beta"] {
        let get = ctx.get_manifest(&repo, t).await?;
        if get.status.as_u16() == 200 {
            ensure!(get.body == m.bytes, "tag {t} points at different bytes");
            tagged.insert(t.to_owned());
        }
    }
    if tagged.is_empty() && announced.is_empty() {
        skip!("?tag= ignored (multi-tag PUT is main-only)");
    }
    ensure!(
        tagged == announced,
        "OCI-Tag headers {announced:?} do not match the tags that resolve {tagged:?}"
    );
    ensure!(
        tagged.len() == 2,
        "only {tagged:?} of alpha, beta were applied"
    );
    Ok(())
}

/// PATCH the first part, then close with `PUT ?digest=` carrying the rest as the final chunk.
async fn patch_then_put_chunk(ctx: Ctx) -> Check {
    let repo = ctx.repo("patch-put-chunk");
    let data = random_bytes(150_000);
    let d = Digest::sha256_of(&data);
    let loc = ctx.start_upload(&repo).await?;
    let r = patch_range(&ctx, &loc, 0, &data[..100_000]).await?;
    expect_status(&r, &[202])?;
    expect_range(&r, 99_999)?;
    let loc = location(&r)?;
    finish(&ctx, &loc, &d, data.slice(100_000..)).await?;
    ctx.blob_reads_back(&repo, &d, &data).await
}

/// The upload URL stays valid across PATCHes (registry-facts §1.1; the official suite GETs
/// the stale location and expects 204): the first Location still reports progress and
/// accepts the next chunk.
async fn upload_location_stable(ctx: Ctx) -> Check {
    let repo = ctx.repo("upload-stable");
    let data = random_bytes(2000);
    let d = Digest::sha256_of(&data);
    let loc0 = ctx.start_upload(&repo).await?;
    let r = patch_range(&ctx, &loc0, 0, &data[..1000]).await?;
    expect_status(&r, &[202])?;
    let st = ctx.call_url(Method::GET, &loc0).send().await?;
    ensure!(
        st.status.as_u16() == 204,
        "the first upload Location must still answer 204 after a PATCH: {}",
        st.describe()
    );
    expect_range(&st, 999)?;
    let r = patch_range(&ctx, &loc0, 1000, &data[1000..]).await?;
    expect_status(&r, &[202])?;
    expect_range(&r, 1999)?;
    finish(&ctx, &loc0, &d, Bytes::new()).await?;
    ctx.blob_reads_back(&repo, &d, &data).await
}

/// Closing an upload needs `?digest=`; without it the PUT is a client error, never a 5xx or
/// a stored blob.
async fn upload_put_without_digest(ctx: Ctx) -> Check {
    let repo = ctx.repo("put-no-digest");
    let loc = ctx.start_upload(&repo).await?;
    let resp = ctx
        .call_url(Method::PUT, &loc)
        .blob(random_bytes(100))
        .send()
        .await?;
    expect_error(
        &resp,
        &[400],
        &["DIGEST_INVALID", "BLOB_UPLOAD_INVALID", "SIZE_INVALID"],
    )?;
    Ok(())
}

/// An upload session belongs to its repository: its id used under another repository's
/// path is unknown there.
async fn upload_repo_isolation(ctx: Ctx) -> Check {
    let owner = ctx.repo("upload-owner");
    let other = ctx.repo("upload-other");
    ctx.push_blob(&other, &random_bytes(10)).await?;
    let loc = ctx.start_upload(&owner).await?;
    let moved = loc
        .path()
        .replacen(&format!("/v2/{owner}/"), &format!("/v2/{other}/"), 1);
    ensure!(
        moved != loc.path(),
        "upload Location {loc} is not under /v2/{owner}/"
    );
    let mut target = ctx.http.resolve(&moved)?;
    target.set_query(loc.query());
    let data = random_bytes(100);
    let d = Digest::sha256_of(&data);
    let get = ctx.call_url(Method::GET, &target).send().await?;
    expect_error(
        &get,
        &[404],
        &["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"],
    )?;
    let put = ctx
        .call_url(Method::PUT, &with_query(&target, "digest", &d.to_string()))
        .blob(data)
        .send()
        .await?;
    expect_error(
        &put,
        &[404],
        &["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"],
    )?;
    let get = ctx.get_blob(&other, &d).await?;
    ensure!(
        get.status.as_u16() == 404,
        "blob landed in the wrong repository: {}",
        get.describe()
    );
    Ok(())
}

/// Mounting from a repository that does not hold the blob must not succeed, even when the
/// blob exists elsewhere in the registry (that would leak content across repositories).
async fn mount_from_repo_without_blob(ctx: Ctx) -> Check {
    let holder = ctx.repo("mount-holder");
    let decoy = ctx.repo("mount-decoy");
    let dst = ctx.repo("mount-thief");
    let data = random_bytes(999);
    let d = ctx.push_blob(&holder, &data).await?;
    ctx.push_blob(&decoy, &random_bytes(10)).await?;
    let resp = ctx
        .call(
            Method::POST,
            &format!("/v2/{dst}/blobs/uploads/?mount={d}&from={decoy}"),
        )
        .send()
        .await?;
    ensure!(
        resp.status.as_u16() == 202,
        "mount from a repository lacking the blob must be 202 (new upload): {}",
        resp.describe()
    );
    location(&resp)?;
    let get = ctx.get_blob(&dst, &d).await?;
    ensure!(
        get.status.as_u16() == 404,
        "blob readable after a refused mount: {}",
        get.describe()
    );
    Ok(())
}

/// Pushing a different manifest to an existing tag moves the tag; the old manifest stays
/// reachable by digest.
async fn manifest_retag(ctx: Ctx) -> Check {
    let repo = ctx.repo("retag");
    let a = ctx.prepare_image(&repo, json!({})).await?;
    let b = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, "moving", &a).await?;
    ctx.put_manifest(&repo, "moving", &b).await?;
    let get = ctx.get_manifest(&repo, "moving").await?;
    expect_status(&get, &[200])?;
    ensure!(
        get.body == b.bytes,
        "tag did not move to the second manifest"
    );
    let old = ctx.get_manifest(&repo, &a.digest.to_string()).await?;
    expect_status(&old, &[200])?;
    ensure!(old.body == a.bytes, "first manifest changed");
    Ok(())
}

/// Once an upload is closed by a successful PUT its session is gone.
async fn upload_closed_after_put(ctx: Ctx) -> Check {
    let repo = ctx.repo("upload-closed");
    let data = random_bytes(500);
    let d = Digest::sha256_of(&data);
    let loc = ctx.start_upload(&repo).await?;
    finish(&ctx, &loc, &d, data).await?;
    let st = ctx.call_url(Method::GET, &loc).send().await?;
    expect_error(&st, &[404], &["BLOB_UPLOAD_UNKNOWN"])?;
    Ok(())
}

/// A manifest may not make a blob of another repository readable: referencing a blob this
/// repository does not hold is refused (400 MANIFEST_BLOB_UNKNOWN), or, if the registry
/// accepts sparse manifests, the blob still does not become readable here.
async fn manifest_foreign_blob(ctx: Ctx) -> Check {
    let owner = ctx.repo("foreign-owner");
    let repo = ctx.repo("foreign-user");
    let secret = random_bytes(1000);
    let sd = ctx.push_blob(&owner, &secret).await?;
    let m = ctx
        .prepare_image(
            &repo,
            json!({"layers": [{"mediaType": mt::OCI_LAYER, "digest": sd.to_string(), "size": secret.len()}]}),
        )
        .await?;
    let resp = ctx.put_manifest_raw(&repo, "v1", &m).await?;
    match resp.status.as_u16() {
        400 => {
            expect_error(&resp, &[400], &["MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"])?;
        }
        201 => {}
        _ => fail!(
            "manifest with a blob of another repository: {}",
            resp.describe()
        ),
    }
    let get = ctx.get_blob(&repo, &sd).await?;
    ensure!(
        get.status.as_u16() == 404,
        "another repository's blob became readable through a manifest: {}",
        get.describe()
    );
    Ok(())
}

async fn manifest_put_digest_header(ctx: Ctx) -> Check {
    let repo = ctx.repo("put-digest-header");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    let resp = ctx.put_manifest(&repo, "v1", &m).await?;
    if resp.header("docker-content-digest").is_none() {
        skip!("no Docker-Content-Digest on manifest PUT (SHOULD in v1.1.1)");
    }
    Ok(())
}

/// Layers with `urls` and a non-distributable media type need not be uploaded
/// (image-spec; the main suite's "non-distributable layers").
async fn manifest_nondistributable(ctx: Ctx) -> Check {
    let repo = ctx.repo("nondistributable");
    let layer = json!({
        "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "digest": absent_digest().to_string(),
        "size": 12345,
        "urls": ["https://example.com/layer.tar.gz"],
    });
    let m = ctx.prepare_image(&repo, json!({"layers": [layer]})).await?;
    let resp = ctx.put_manifest_raw(&repo, "v1", &m).await?;
    match resp.status.as_u16() {
        201 => {
            let get = ctx.get_manifest(&repo, "v1").await?;
            expect_status(&get, &[200])?;
            ensure!(
                get.body == m.bytes,
                "non-distributable manifest reads back different bytes"
            );
            Ok(())
        }
        400 if expect_error(&resp, &[400], &["MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"]).is_ok() => {
            skip!(
                "registry wants non-distributable layers uploaded (allowed): {}",
                resp.describe()
            )
        }
        _ => fail!(
            "manifest with a non-distributable layer: {}",
            resp.describe()
        ),
    }
}

/// A manifest pushed under its sha512 digest (main): 201 with that digest echoed, readable by
/// it. A registry without sha512 answers 400.
async fn manifest_sha512(ctx: Ctx) -> Check {
    let repo = ctx.repo("manifest-sha512");
    let m = ctx.prepare_image(&repo, json!({})).await?;
    let d = Digest::of(Algorithm::Sha512, &m.bytes);
    let resp = ctx.put_manifest_raw(&repo, &d.to_string(), &m).await?;
    match resp.status.as_u16() {
        201 => {}
        400 if expect_error(
            &resp,
            &[400],
            &["DIGEST_INVALID", "UNSUPPORTED", "MANIFEST_INVALID"],
        )
        .is_ok() =>
        {
            skip!(
                "sha512 manifest digests not supported (optional): {}",
                resp.describe()
            )
        }
        _ => fail!("PUT manifest by sha512 digest: {}", resp.describe()),
    }
    let echoed = require_header(&resp, "docker-content-digest")?;
    ensure!(
        echoed == d.to_string(),
        "Docker-Content-Digest {echoed} != the sha512 reference {d}"
    );
    let get = ctx.get_manifest(&repo, &d.to_string()).await?;
    expect_status(&get, &[200])?;
    ensure!(
        get.body == m.bytes,
        "manifest by sha512 digest reads back different bytes"
    );
    Ok(())
}

/// The registry stores the pushed bytes, not a re-serialisation: odd whitespace, key order,
/// `\u` escapes, raw UTF-8 and unknown fields all survive, and the digest is over those
/// exact bytes.
async fn manifest_exact_bytes(ctx: Ctx) -> Check {
    let repo = ctx.repo("exact-bytes");
    let base = ctx.prepare_image(&repo, json!({})).await?;
    let v: serde_json::Value = match serde_json::from_slice(&base.bytes) {
        Ok(v) => v,
        Err(e) => fail!("suite bug: {e}"),
    };
    let (Some(config), Some(layers)) = (v.get("config"), v.get("layers")) else {
        fail!("suite bug: prepared manifest lacks config/layers");
    };
    let text = format!(
        "{{\n  \"layers\" : {layers},\r\n\t\"config\":{config} ,\n  \"schemaVersion\":2,\
         \"mediaType\":\"{}\",\"annotations\":{{\"org.bay.test.text\":\"caf\\u00e9 \u{2713} \u{1F680}\"}},\
         \"x-bay-unknown-field\":[1,2.50,{{}}]}}\n\n",
        mt::OCI_MANIFEST
    );
    let m = Manifest {
        digest: Digest::sha256_of(text.as_bytes()),
        bytes: Bytes::from(text),
        media_type: mt::OCI_MANIFEST,
    };
    ensure!(
        serde_json::from_slice::<serde_json::Value>(&m.bytes).is_ok(),
        "suite bug: hand-written manifest is not JSON"
    );
    push_and_read(&ctx, &repo, "v1", &m).await.map(drop)
}

/// An index that lists another index (main suite "nested index").
async fn manifest_nested_index(ctx: Ctx) -> Check {
    let repo = ctx.repo("nested-index");
    let image = ctx.prepare_image(&repo, json!({})).await?;
    ctx.put_manifest(&repo, &image.digest.to_string(), &image)
        .await?;
    let inner = Manifest::new(
        &json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": [image.descriptor()]}),
        mt::OCI_INDEX,
    );
    ctx.put_manifest(&repo, &inner.digest.to_string(), &inner)
        .await?;
    let outer = Manifest::new(
        &json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": [inner.descriptor(), image.descriptor()]}),
        mt::OCI_INDEX,
    );
    push_and_read(&ctx, &repo, "nested", &outer).await.map(drop)
}

/// Descriptors may embed their content in `data` (image-spec v1.1).
async fn manifest_data_field(ctx: Ctx) -> Check {
    use base64::Engine as _;
    let repo = ctx.repo("data-field");
    let config = Bytes::from_static(b"{}");
    ctx.push_blob(&repo, &config).await?;
    let layer = random_bytes(48);
    ctx.push_blob(&repo, &layer).await?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut cfg = descriptor(mt::OCI_EMPTY, &config);
    crate::ctx::merge(&mut cfg, json!({"data": b64(&config)}));
    let mut lay = descriptor(mt::OCI_LAYER, &layer);
    crate::ctx::merge(&mut lay, json!({"data": b64(&layer)}));
    let m = Manifest::new(
        &json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST, "artifactType": "application/vnd.bay.test.data", "config": cfg, "layers": [lay]}),
        mt::OCI_MANIFEST,
    );
    push_and_read(&ctx, &repo, "v1", &m).await.map(drop)
}
