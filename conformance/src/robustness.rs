//! Robustness: concurrent pushes, uploads and tag updates must neither fail nor corrupt data.

use bytes::Bytes;
use futures::future::join_all;
use oci_types::Digest;
use reqwest::Method;
use serde_json::json;

use crate::check::{Check, ensure, expect_status, fail, parse_upload_range, require_header};
use crate::ctx::{Ctx, location, random_bytes, with_query};
use crate::{Case, case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!("concurrent-same-blob", concurrent_same_blob),
        case!("concurrent-chunked-uploads", concurrent_chunked),
        case!("concurrent-tag-updates", concurrent_tag_updates),
        case!("interleaved-patches", interleaved_patches),
        case!("interrupted-upload", interrupted_upload),
        case!(
            "concurrent-same-digest-one-repo",
            concurrent_same_digest_one_repo
        ),
        case!("large-blob", large_blob),
        case!("concurrent-tag-put-delete", concurrent_tag_put_delete),
        case!("concurrent-upload-finish", concurrent_upload_finish),
    ]
}

const CHUNK: usize = 64 * 1024;

async fn concurrent_same_blob(ctx: Ctx) -> Check {
    let data = random_bytes(256 * 1024);
    let repos: Vec<String> = (0..16)
        .map(|i| ctx.repo(&format!("same-blob-{i}")))
        .collect();
    let pushes = repos.iter().map(|r| {
        let ctx = ctx.clone();
        let data = data.clone();
        let r = r.clone();
        async move { ctx.push_blob(&r, &data).await }
    });
    let mut digest = None;
    for (i, res) in join_all(pushes).await.into_iter().enumerate() {
        match res {
            Ok(d) => digest = Some(d),
            Err(e) => fail!("concurrent push {i} failed: {}", message(e)),
        }
    }
    let Some(d) = digest else {
        fail!("no push ran")
    };
    for r in &repos {
        ctx.blob_reads_back(r, &d, &data).await?;
    }
    Ok(())
}

fn message(s: crate::check::Stop) -> String {
    match s {
        crate::check::Stop::Fail(m) | crate::check::Stop::Skip(m) => m,
    }
}

/// One chunked upload of `data` in `CHUNK`-sized pieces with Content-Range.
async fn chunked_upload(ctx: &Ctx, repo: &str, data: &Bytes) -> Check<Digest> {
    let d = Digest::sha256_of(data);
    let mut loc = ctx.start_upload(repo).await?;
    let mut offset = 0;
    for chunk in data.chunks(CHUNK) {
        let resp = ctx
            .call_url(Method::PATCH, &loc)
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{}-{}", offset, offset + chunk.len() - 1),
            )
            .body(Bytes::copy_from_slice(chunk))
            .send()
            .await?;
        expect_status(&resp, &[202])?;
        loc = location(&resp)?;
        offset += chunk.len();
    }
    let resp = ctx
        .call_url(Method::PUT, &with_query(&loc, "digest", &d.to_string()))
        .send()
        .await?;
    expect_status(&resp, &[201])?;
    Ok(d)
}

async fn concurrent_chunked(ctx: Ctx) -> Check {
    let repo = ctx.repo("chunked-many");
    let blobs: Vec<Bytes> = (0..6).map(|_| random_bytes(3 * CHUNK + 123)).collect();
    let uploads = blobs.iter().map(|b| {
        let ctx = ctx.clone();
        let b = b.clone();
        let repo = repo.clone();
        async move { chunked_upload(&ctx, &repo, &b).await }
    });
    let results = join_all(uploads).await;
    for (i, (res, data)) in results.into_iter().zip(&blobs).enumerate() {
        match res {
            Ok(d) => ctx.blob_reads_back(&repo, &d, data).await?,
            Err(e) => fail!("concurrent chunked upload {i} failed: {}", message(e)),
        }
    }
    Ok(())
}

async fn concurrent_tag_updates(ctx: Ctx) -> Check {
    let repo = ctx.repo("tag-race");
    let mut manifests = Vec::new();
    for i in 0..20 {
        manifests.push(
            ctx.prepare_image(
                &repo,
                json!({"annotations": {"org.bay.test.n": i.to_string()}}),
            )
            .await?,
        );
    }
    let puts = manifests.iter().map(|m| {
        let ctx = ctx.clone();
        let m = m.clone();
        let repo = repo.clone();
        async move { ctx.put_manifest_raw(&repo, "hot", &m).await }
    });
    for (i, res) in join_all(puts).await.into_iter().enumerate() {
        let resp = res?;
        ensure!(
            resp.status.as_u16() == 201,
            "concurrent tag update {i}: {}",
            resp.describe()
        );
    }
    let get = ctx.get_manifest(&repo, "hot").await?;
    expect_status(&get, &[200])?;
    let Some(winner) = manifests.iter().find(|m| m.bytes == get.body) else {
        fail!("tag points at bytes that match none of the 20 pushed manifests");
    };
    crate::check::digest_header_if_present(&get, &winner.digest.to_string())?;
    let by_digest = ctx.get_manifest(&repo, &winner.digest.to_string()).await?;
    expect_status(&by_digest, &[200])?;
    Ok(())
}

/// Fire every chunk of one upload at once, then resume from the server's reported offset.
/// A conforming server rejects out-of-order chunks with 416; whatever it did, the final PUT
/// may only succeed if the stored bytes are exactly the data.
async fn interleaved_patches(ctx: Ctx) -> Check {
    let repo = ctx.repo("interleaved");
    let data = random_bytes(8 * CHUNK);
    let d = Digest::sha256_of(&data);
    let loc = ctx.start_upload(&repo).await?;
    let patches = data.chunks(CHUNK).enumerate().map(|(i, c)| {
        let ctx = ctx.clone();
        let loc = loc.clone();
        let chunk = Bytes::copy_from_slice(c);
        async move {
            let start = i * CHUNK;
            ctx.call_url(Method::PATCH, &loc)
                .header("content-type", "application/octet-stream")
                .header(
                    "content-range",
                    format!("{}-{}", start, start + chunk.len() - 1),
                )
                .body(chunk)
                .send()
                .await
        }
    });
    let mut last_loc = loc.clone();
    for (i, res) in join_all(patches).await.into_iter().enumerate() {
        let resp = res?;
        match resp.status.as_u16() {
            202 => last_loc = location(&resp)?,
            416 => {}
            _ => fail!(
                "concurrent PATCH {i} must be 202 or 416: {}",
                resp.describe()
            ),
        }
    }
    // Resume: ask for the offset and send the rest in order.
    let st = ctx.call_url(Method::GET, &last_loc).send().await?;
    expect_status(&st, &[204])?;
    let mut loc = location(&st)?;
    let range = require_header(&st, "range")?;
    let Some((0, end)) = parse_upload_range(range) else {
        fail!("upload status Range {range:?} is not 0-<end>");
    };
    // Our chunks are 64 KiB, so `0-0` can only mean an empty upload (servers report an
    // empty upload as 0-0).
    let mut offset = if range.trim() == "0-0" {
        0
    } else {
        usize::try_from(end).map_or(usize::MAX, |e| e.saturating_add(1))
    };
    ensure!(
        offset <= data.len(),
        "upload holds {offset} bytes, more than the {} sent",
        data.len()
    );
    while offset < data.len() {
        let end = (offset + CHUNK).min(data.len());
        let resp = ctx
            .call_url(Method::PATCH, &loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{}-{}", offset, end - 1))
            .body(data.slice(offset..end))
            .send()
            .await?;
        expect_status(&resp, &[202])?;
        loc = location(&resp)?;
        offset = end;
    }
    let put = ctx
        .call_url(Method::PUT, &with_query(&loc, "digest", &d.to_string()))
        .send()
        .await?;
    match put.status.as_u16() {
        201 => ctx.blob_reads_back(&repo, &d, &data).await,
        400 => fail!(
            "upload corrupted by interleaved PATCHes (server accepted out-of-order chunks; final digest did not match): {}",
            put.describe()
        ),
        _ => fail!("final PUT: {}", put.describe()),
    }
}

/// A client that drops the connection mid-PATCH can resume: the upload still exists, its
/// status reports what was stored (a prefix of what was sent), and finishing from there
/// yields the exact blob.
async fn interrupted_upload(ctx: Ctx) -> Check {
    let repo = ctx.repo("interrupted");
    let data = random_bytes(4 * CHUNK);
    let d = Digest::sha256_of(&data);
    let loc = ctx.start_upload(&repo).await?;
    let sent = 2 * CHUNK;
    let chunks = vec![data.slice(..CHUNK), data.slice(CHUNK..sent)];
    // The request is expected to fail on our side; any response it got is irrelevant.
    let _ = ctx
        .call_url(Method::PATCH, &loc)
        .header("content-type", "application/octet-stream")
        .aborted(chunks)
        .send()
        .await;
    // The server may notice the abort a little later and still append what it had read, so
    // a resume that races with that gets 416; ask for the offset again then (three tries).
    let mut attempt = 0;
    let (loc, offset) = loop {
        attempt += 1;
        tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
        let st = ctx.call_url(Method::GET, &loc).send().await?;
        ensure!(
            st.status.as_u16() == 204,
            "upload must survive a dropped client connection: {}",
            st.describe()
        );
        let status_loc = location(&st)?;
        let range = require_header(&st, "range")?;
        let Some((0, end)) = parse_upload_range(range) else {
            fail!("upload status Range {range:?} is not 0-<end>");
        };
        // `0-0` is how servers report an empty upload.
        let offset = if range.trim() == "0-0" {
            0
        } else {
            usize::try_from(end).map_or(usize::MAX, |e| e.saturating_add(1))
        };
        ensure!(
            offset <= sent,
            "upload reports {offset} bytes, more than the {sent} sent"
        );
        let resp = ctx
            .call_url(Method::PATCH, &status_loc)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{}-{}", offset, data.len() - 1))
            .body(data.slice(offset..))
            .send()
            .await?;
        if resp.status.as_u16() == 416 && attempt < 3 {
            continue;
        }
        expect_status(&resp, &[202])?;
        break (location(&resp)?, offset);
    };
    let put = ctx
        .call_url(Method::PUT, &with_query(&loc, "digest", &d.to_string()))
        .send()
        .await?;
    ensure!(
        put.status.as_u16() == 201,
        "finishing a resumed upload (server kept {offset} of {sent} bytes): {}",
        put.describe()
    );
    ctx.blob_reads_back(&repo, &d, &data).await
}

/// Several clients uploading the same blob into the same repository at once all succeed.
async fn concurrent_same_digest_one_repo(ctx: Ctx) -> Check {
    let repo = ctx.repo("same-digest");
    let data = random_bytes(3 * CHUNK);
    let pushes = (0..8).map(|_| {
        let ctx = ctx.clone();
        let data = data.clone();
        let repo = repo.clone();
        async move { chunked_upload(&ctx, &repo, &data).await }
    });
    let mut digest = None;
    for (i, res) in join_all(pushes).await.into_iter().enumerate() {
        match res {
            Ok(d) => digest = Some(d),
            Err(e) => fail!(
                "concurrent upload {i} of the same blob failed: {}",
                message(e)
            ),
        }
    }
    let Some(d) = digest else {
        fail!("no upload ran")
    };
    ctx.blob_reads_back(&repo, &d, &data).await
}

/// A 48 MiB blob streamed in one chunked PATCH reads back intact, by GET and by a Range at
/// its tail.
async fn large_blob(ctx: Ctx) -> Check {
    let repo = ctx.repo("large-blob");
    let size = 48 * 1024 * 1024;
    let data = random_bytes(size);
    let d = Digest::sha256_of(&data);
    let loc = ctx.start_upload(&repo).await?;
    let chunks: Vec<Bytes> = (0..size)
        .step_by(1024 * 1024)
        .map(|o| data.slice(o..(o + 1024 * 1024).min(size)))
        .collect();
    let resp = ctx
        .call_url(Method::PATCH, &loc)
        .header("content-type", "application/octet-stream")
        .chunked(chunks)
        .send()
        .await?;
    expect_status(&resp, &[202])?;
    let loc = location(&resp)?;
    let put = ctx
        .call_url(Method::PUT, &with_query(&loc, "digest", &d.to_string()))
        .send()
        .await?;
    expect_status(&put, &[201])?;
    let head = ctx
        .call(Method::HEAD, &format!("/v2/{repo}/blobs/{d}"))
        .send()
        .await?;
    expect_status(&head, &[200])?;
    let len = require_header(&head, "content-length")?;
    ensure!(
        len == size.to_string(),
        "HEAD Content-Length {len} != {size}"
    );
    ctx.blob_reads_back(&repo, &d, &data).await?;
    let tail = ctx
        .call(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
        .header("range", "bytes=-4096")
        .send()
        .await?;
    match tail.status.as_u16() {
        206 => ensure!(
            tail.body.as_ref() == &data[size - 4096..],
            "Range tail of the large blob differs"
        ),
        200 => ensure!(tail.body == data, "200 answer to a Range request differs"),
        _ => fail!("Range on the large blob: {}", tail.describe()),
    }
    Ok(())
}

/// PUTs and DELETEs of the same tag racing each other leave a consistent state: the tag is
/// listed exactly when it resolves, and then to one of the pushed manifests.
async fn concurrent_tag_put_delete(ctx: Ctx) -> Check {
    let repo = ctx.repo("tag-put-delete");
    let mut manifests = Vec::new();
    for i in 0..6 {
        manifests.push(
            ctx.prepare_image(
                &repo,
                json!({"annotations": {"org.bay.test.n": i.to_string()}}),
            )
            .await?,
        );
    }
    ctx.put_manifest(&repo, "anchor", &manifests[0]).await?;
    ctx.put_manifest(&repo, "flip", &manifests[0]).await?;
    let probe = ctx
        .call(Method::DELETE, &format!("/v2/{repo}/manifests/flip"))
        .send()
        .await?;
    if probe.status.as_u16() != 202 {
        crate::check::skip!("tag deletion not available: {}", probe.describe());
    }
    let ops = (0..24).map(|i| {
        let ctx = ctx.clone();
        let repo = repo.clone();
        let m = manifests[i % manifests.len()].clone();
        async move {
            if i % 2 == 0 {
                ctx.put_manifest_raw(&repo, "flip", &m).await
            } else {
                ctx.call(Method::DELETE, &format!("/v2/{repo}/manifests/flip"))
                    .send()
                    .await
            }
        }
    });
    for (i, res) in join_all(ops).await.into_iter().enumerate() {
        let resp = res?;
        let ok = if i % 2 == 0 {
            resp.status.as_u16() == 201
        } else {
            // A delete may find the tag already gone.
            matches!(resp.status.as_u16(), 202 | 404)
        };
        ensure!(ok, "racing tag operation {i}: {}", resp.describe());
        ensure!(
            !resp.status.is_server_error(),
            "racing tag operation {i}: {}",
            resp.describe()
        );
    }
    let get = ctx.get_manifest(&repo, "flip").await?;
    let list = ctx
        .call(Method::GET, &format!("/v2/{repo}/tags/list"))
        .send()
        .await?;
    expect_status(&list, &[200])?;
    let v: serde_json::Value = serde_json::from_slice(&list.body).unwrap_or_default();
    let listed = v
        .get("tags")
        .and_then(|t| t.as_array())
        .is_some_and(|a| a.iter().any(|t| t == "flip"));
    match get.status.as_u16() {
        200 => {
            ensure!(listed, "tag resolves but is not listed");
            ensure!(
                manifests.iter().any(|m| m.bytes == get.body),
                "tag resolves to bytes that were never pushed"
            );
        }
        404 => ensure!(!listed, "tag is listed but does not resolve"),
        _ => fail!("GET of the raced tag: {}", get.describe()),
    }
    let anchor = ctx.get_manifest(&repo, "anchor").await?;
    ensure!(
        anchor.status.as_u16() == 200 && anchor.body == manifests[0].bytes,
        "an unrelated tag was damaged by the race: {}",
        anchor.describe()
    );
    Ok(())
}

/// Four clients closing the same upload at once: at least one gets 201, the others 201 or a
/// 4xx spec error (the session is gone), never a 5xx, and the blob is intact.
async fn concurrent_upload_finish(ctx: Ctx) -> Check {
    let repo = ctx.repo("double-finish");
    let data = random_bytes(2 * CHUNK);
    let d = Digest::sha256_of(&data);
    let loc = ctx.start_upload(&repo).await?;
    let resp = ctx
        .call_url(Method::PATCH, &loc)
        .header("content-type", "application/octet-stream")
        .header("content-range", format!("0-{}", data.len() - 1))
        .body(data.clone())
        .send()
        .await?;
    expect_status(&resp, &[202])?;
    let loc = location(&resp)?;
    let url = with_query(&loc, "digest", &d.to_string());
    let puts = (0..4).map(|_| {
        let ctx = ctx.clone();
        let url = url.clone();
        async move { ctx.call_url(Method::PUT, &url).send().await }
    });
    let mut created = 0;
    for res in join_all(puts).await {
        let resp = res?;
        match resp.status.as_u16() {
            201 => created += 1,
            s if (400..500).contains(&s) => {
                crate::check::expect_error(&resp, &[s], &[])?;
            }
            _ => fail!("racing upload PUT: {}", resp.describe()),
        }
    }
    ensure!(created >= 1, "none of the racing PUTs closed the upload");
    ctx.blob_reads_back(&repo, &d, &data).await
}
