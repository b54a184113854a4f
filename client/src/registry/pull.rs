//! `bay pull`: manifest (by tag, by digest, or by the digest a trust policy
//! pinned), platform selection for indexes, then parallel layer downloads that
//! are digest-verified while streaming and resume from partial files.

use std::sync::Arc;

use futures::StreamExt;
use oci_types::{Digest, RepoName};
use reqwest::StatusCode;

use super::{RegistryClient, RegistryError};
use crate::image::{AnyManifest, Descriptor, Platform, manifest_media_type};
use crate::progress::Progress;
use crate::reference::ImageRef;
use crate::store::{ImageStore, StoreError};
use crate::trust::{Resolution, TrustPolicy};

/// Pull settings.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Platform to pick from an index; the host's when `None`.
    pub platform: Option<Platform>,
    /// Layers downloaded at once.
    pub concurrency: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            concurrency: 6,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The image ID (config digest).
    pub id: Digest,
    /// The digest the reference resolved to (an index digest for multi-arch images).
    pub digest: Digest,
    /// The platform manifest stored locally.
    pub manifest: Digest,
    /// True when the local store already had this exact image under this name.
    pub up_to_date: bool,
    /// Layers actually downloaded (not already present).
    pub downloaded: usize,
}

/// Pulls `image` into `store`.
pub async fn pull(
    store: &ImageStore,
    client: Arc<RegistryClient>,
    image: &ImageRef,
    trust: &dyn TrustPolicy,
    opts: &PullOptions,
    progress: Arc<Progress>,
) -> Result<PullOutcome, RegistryError> {
    let host = image.require_host()?.to_owned();
    let repo = image.repo().clone();
    let repository = image.repository();
    let (reference, expected) = if let Some(d) = image.digest() {
        (d.to_string(), Some(d.clone()))
    } else {
        let tag = image.tag_or_default().map_or_else(
            || crate::reference::DEFAULT_TAG.to_owned(),
            |t| t.to_string(),
        );
        match trust.resolve(&client, image).await? {
            Resolution::Pinned(d) => (d.to_string(), Some(d)),
            Resolution::Unverified => (tag, None),
        }
    };
    let shown = image
        .tag()
        .map_or_else(|| reference.clone(), ToString::to_string);
    progress.line(&format!("{shown}: Pulling from {repo}"));
    let _lease = store.lease()?;

    let top = client.get_manifest(&repo, &reference).await?;
    if let Some(want) = &expected {
        let actual = Digest::of(want.algorithm(), &top.bytes);
        if &actual != want {
            return Err(RegistryError::DigestMismatch {
                what: "manifest",
                host,
                expected: want.clone(),
                actual,
            });
        }
    }
    let top_digest = expected.unwrap_or_else(|| top.digest.clone());
    let parsed = AnyManifest::parse(top.media_type.as_deref(), &top.bytes)?;
    let (manifest, mdigest, mbytes, mtype) = match parsed {
        AnyManifest::Image(m) => {
            let mt = manifest_media_type(top.media_type.as_deref(), &AnyManifest::Image(m.clone()));
            (m, top_digest.clone(), top.bytes, mt)
        }
        AnyManifest::Index(idx) => {
            let want = opts.platform.clone().unwrap_or_else(Platform::host);
            let child = idx.select(&want)?.clone();
            let fetched = client
                .get_manifest(&repo, &child.digest.to_string())
                .await?;
            let actual = Digest::of(child.digest.algorithm(), &fetched.bytes);
            if actual != child.digest {
                return Err(RegistryError::DigestMismatch {
                    what: "platform manifest",
                    host,
                    expected: child.digest,
                    actual,
                });
            }
            match AnyManifest::parse(
                fetched.media_type.as_deref().or(Some(&child.media_type)),
                &fetched.bytes,
            )? {
                AnyManifest::Image(m) => {
                    let mt = manifest_media_type(
                        fetched.media_type.as_deref().or(Some(&child.media_type)),
                        &AnyManifest::Image(m.clone()),
                    );
                    (m, child.digest, fetched.bytes, mt)
                }
                AnyManifest::Index(_) => {
                    return Err(RegistryError::Image(
                        crate::image::ImageError::UnsupportedMediaType {
                            media_type: "nested image index".to_owned(),
                        },
                    ));
                }
            }
        }
    };

    // Config first: it is small, and it is the image ID.
    if !store.has_blob(&manifest.config.digest) {
        let resp = client.get_blob(&repo, &manifest.config.digest, 0).await?;
        let limit = manifest.config.size.min(super::MAX_CONFIG);
        if manifest.config.size > limit {
            return Err(RegistryError::TooLarge {
                what: "image config",
                host,
                size: manifest.config.size,
                limit,
            });
        }
        let bytes = client.read_limited(resp, limit, "image config").await?;
        store
            .put_blob(Some(&manifest.config.digest), &bytes)
            .map_err(|e| mismatch("config", &host, e))?;
    }

    let mut downloaded = 0;
    let mut results = futures::stream::iter(manifest.layers.clone().into_iter().map(|layer| {
        let store = store.clone();
        let client = client.clone();
        let repo = repo.clone();
        let progress = progress.clone();
        tokio::spawn(async move { download_layer(&store, &client, &repo, &layer, &progress).await })
    }))
    .buffer_unordered(opts.concurrency.max(1));
    let mut first_err = None;
    while let Some(r) = results.next().await {
        match r? {
            Ok(true) => downloaded += 1,
            Ok(false) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    progress.done();
    if let Some(e) = first_err {
        return Err(e);
    }

    store
        .put_blob(Some(&mdigest), &mbytes)
        .map_err(|e| mismatch("manifest", &host, e))?;
    let rec = store.make_record(&mdigest, &mtype, &manifest)?;
    let id = rec.id.clone();
    let repo_digest = format!("{repository}@{top_digest}");
    let tag = image.tag_or_default().filter(|_| image.digest().is_none());
    let up_to_date = store.update(|ix| {
        let had = ix
            .images
            .get(&id)
            .is_some_and(|r| r.repo_digests.contains(&repo_digest))
            && tag.as_ref().is_none_or(|t| {
                ix.repositories
                    .get(&repository)
                    .and_then(|m| m.get(t.as_str()))
                    == Some(&id)
            });
        let mut rec = rec;
        rec.repo_digests.insert(repo_digest.clone());
        ImageStore::insert_record(ix, rec);
        if let Some(t) = &tag {
            ix.set_tag(&repository, t.as_str(), &id);
        }
        for l in &manifest.layers {
            ix.note_blob_repo(&l.digest, &repository);
        }
        ix.note_blob_repo(&manifest.config.digest, &repository);
        Ok::<_, StoreError>(had)
    })?;
    let shown_ref = match &tag {
        Some(t) => format!("{repository}:{t}"),
        None => repo_digest.clone(),
    };
    progress.line(&format!("Digest: {top_digest}"));
    if up_to_date {
        progress.line(&format!("Status: Image is up to date for {shown_ref}"));
    } else {
        progress.line(&format!("Status: Downloaded newer image for {shown_ref}"));
    }
    progress.result(&shown_ref);
    Ok(PullOutcome {
        id,
        digest: top_digest,
        manifest: mdigest,
        up_to_date,
        downloaded,
    })
}

fn mismatch(what: &'static str, host: &str, e: StoreError) -> RegistryError {
    match e {
        StoreError::DigestMismatch { expected, actual } => RegistryError::DigestMismatch {
            what,
            host: host.to_owned(),
            expected,
            actual,
        },
        other => other.into(),
    }
}

/// Downloads one layer unless present; returns whether bytes were fetched.
async fn download_layer(
    store: &ImageStore,
    client: &RegistryClient,
    repo: &RepoName,
    layer: &Descriptor,
    progress: &Progress,
) -> Result<bool, RegistryError> {
    let short = &layer.digest.hex()[..12];
    if store.has_blob(&layer.digest) {
        progress
            .layer(short, layer.size, "")
            .finish("Already exists");
        return Ok(false);
    }
    let bar = progress.layer(short, layer.size, "Waiting");
    let store2 = store.clone();
    let d = layer.digest.clone();
    // Locking may wait for another bay process pulling the same layer.
    let Some(mut part) = tokio::task::spawn_blocking(move || store2.open_partial(&d)).await??
    else {
        bar.finish("Already exists");
        return Ok(false);
    };
    if part.len() > layer.size {
        part.reset()?;
    }
    if !part.is_empty() {
        tracing::info!(digest = %layer.digest, have = part.len(), "resuming download");
    }
    let attempts = client.opts.attempts.max(1);
    let mut attempt = 0;
    bar.status("Downloading");
    while part.len() < layer.size || layer.size == 0 {
        let offset = part.len();
        let resp = client.get_blob(repo, &layer.digest, offset).await?;
        if offset > 0 && resp.status() != StatusCode::PARTIAL_CONTENT {
            // The server ignored the Range: start over.
            part.reset()?;
        }
        let mut stream = resp.bytes_stream();
        let mut failure = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => {
                    let size = part.len() + c.len() as u64;
                    if size > layer.size {
                        // More than the descriptor promised: not the layer we want.
                        part.reset()?;
                        return Err(RegistryError::TooLarge {
                            what: "layer",
                            host: client.host().to_owned(),
                            size,
                            limit: layer.size,
                        });
                    }
                    part.append(&c)?;
                    bar.set(part.len());
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        part.flush()?;
        match failure {
            None => break,
            Some(e) if attempt + 1 < attempts => {
                tracing::debug!(error = %e, have = part.len(), "download interrupted; resuming");
                tokio::time::sleep(client.backoff(attempt)).await;
                attempt += 1;
            }
            Some(source) => {
                return Err(RegistryError::Network {
                    host: client.host().to_owned(),
                    attempts,
                    source,
                });
            }
        }
    }
    bar.status("Verifying Checksum");
    let host = client.host().to_owned();
    tokio::task::spawn_blocking(move || part.commit())
        .await?
        .map_err(|e| mismatch("layer", &host, e))?;
    bar.finish("Pull complete");
    Ok(true)
}
