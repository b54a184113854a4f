//! `bay push`: every blob is checked with HEAD first, cross-mounted from
//! another repository of the same registry when the store knows one that has
//! it, otherwise uploaded: small blobs in one PUT, large ones in PATCH chunks
//! whose upload URL and offset are saved after each chunk, so a dropped
//! connection or a killed `bay` resumes where the registry stopped.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use oci_types::{Digest, RepoName};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{MountOutcome, RegistryClient, RegistryError};
use crate::image::Descriptor;
use crate::progress::{LayerProgress, Progress};
use crate::reference::ImageRef;
use crate::store::{ImageStore, StoreError};
use crate::trust::TrustPolicy;

/// Push settings.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs uploaded at once.
    pub concurrency: usize,
    /// Blobs up to this size go up in one streamed PUT; larger ones in
    /// resumable PATCH chunks of this size.
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            concurrency: 6,
            chunk_size: 64 << 20,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// The manifest digest now under the tag.
    pub digest: Digest,
    /// Manifest size in bytes.
    pub size: u64,
    /// Blobs whose bytes were sent (not found, not mounted).
    pub uploaded: usize,
    /// Blobs cross-mounted.
    pub mounted: usize,
}

/// How one blob got to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlobOutcome {
    Existed,
    Mounted,
    Uploaded,
}

/// A saved chunked upload, for resuming.
#[derive(Debug, Serialize, Deserialize)]
struct UploadRecord {
    location: String,
    offset: u64,
}

/// Pushes the local image `image` (which must name a registry host).
pub async fn push(
    store: &ImageStore,
    client: Arc<RegistryClient>,
    image: &ImageRef,
    trust: &dyn TrustPolicy,
    opts: &PushOptions,
    progress: Arc<Progress>,
) -> Result<PushOutcome, RegistryError> {
    let host = image.require_host()?.to_owned();
    let repo = image.repo().clone();
    let repository = image.repository();
    let tag = image
        .tag_or_default()
        .ok_or_else(|| RegistryError::DigestPush {
            reference: image.to_string(),
        })?;
    let ix = store.read_index()?;
    let id = ix
        .lookup(&format!("{repository}:{tag}"))
        .map_err(|_| RegistryError::NotLocal {
            reference: repository.clone(),
        })?;
    let rec = ix
        .images
        .get(&id)
        .cloned()
        .ok_or_else(|| RegistryError::NotLocal {
            reference: repository.clone(),
        })?;
    // The manifest this repository knows the image by, so a re-push never
    // changes what the tag points at.
    let (mdigest, mtype) = rec.manifest_for(&repository);
    let manifest = store.manifest_at(&mdigest, &mtype)?;
    progress.line(&format!("The push refers to repository [{repository}]"));

    let mut blobs: Vec<(Descriptor, bool)> =
        manifest.layers.iter().cloned().map(|l| (l, true)).collect();
    blobs.push((manifest.config.clone(), false));
    let prefix = format!("{host}/");
    let mut results = futures::stream::iter(blobs.into_iter().map(|(desc, show)| {
        let candidates: Vec<RepoName> = ix
            .repos_with_blob(&desc.digest)
            .filter_map(|r| r.strip_prefix(&prefix))
            .filter(|r| *r != repo.as_str())
            .filter_map(|r| RepoName::parse(r).ok())
            .collect();
        let store = store.clone();
        let client = client.clone();
        let repo = repo.clone();
        let progress = progress.clone();
        let opts = opts.clone();
        tokio::spawn(async move {
            let bar = if show {
                progress.layer(&desc.digest.hex()[..12], desc.size, "Preparing")
            } else {
                Progress::new(
                    crate::progress::ProgressMode::Quiet,
                    Box::new(std::io::sink()),
                )
                .layer("", 0, "")
            };
            let r = upload_blob(&store, &client, &repo, &desc, &candidates, &opts, &bar).await;
            match &r {
                Ok(BlobOutcome::Existed) => bar.finish("Layer already exists"),
                Ok(BlobOutcome::Mounted) => bar.finish(&format!(
                    "Mounted from {}",
                    candidates.first().map_or("", RepoName::as_str)
                )),
                Ok(BlobOutcome::Uploaded) => bar.finish("Pushed"),
                Err(_) => bar.finish("Push failed"),
            }
            r.map(|o| (desc.digest, o))
        })
    }))
    .buffer_unordered(opts.concurrency.max(1));
    let (mut uploaded, mut mounted) = (0, 0);
    let mut first_err = None;
    while let Some(r) = results.next().await {
        match r? {
            Ok((_, BlobOutcome::Uploaded)) => uploaded += 1,
            Ok((_, BlobOutcome::Mounted)) => mounted += 1,
            Ok((_, BlobOutcome::Existed)) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    progress.done();
    if let Some(e) = first_err {
        return Err(e);
    }

    let mbytes = Bytes::from(store.read_blob(&mdigest)?);
    let size = mbytes.len() as u64;
    let reported = client
        .put_manifest(&repo, tag.as_str(), &mtype, mbytes)
        .await?;
    if let Some(r) = reported
        && r.algorithm() == mdigest.algorithm()
        && r != mdigest
    {
        return Err(RegistryError::DigestMismatch {
            what: "pushed manifest",
            host,
            expected: mdigest.clone(),
            actual: r,
        });
    }
    store.update(|ix| {
        if let Some(r) = ix.images.get_mut(&id) {
            r.repo_digests.insert(format!("{repository}@{mdigest}"));
        }
        for l in &manifest.layers {
            ix.note_blob_repo(&l.digest, &repository);
        }
        ix.note_blob_repo(&manifest.config.digest, &repository);
        Ok::<_, StoreError>(())
    })?;
    trust
        .after_push(&client, image, &mdigest, size, &mtype)
        .await?;
    progress.line(&format!("{tag}: digest: {mdigest} size: {size}"));
    if progress.mode() == crate::progress::ProgressMode::Quiet {
        progress.result(&format!("{repository}:{tag}"));
    }
    Ok(PushOutcome {
        digest: mdigest,
        size,
        uploaded,
        mounted,
    })
}

fn record_path(
    store: &ImageStore,
    client: &RegistryClient,
    repo: &RepoName,
    d: &Digest,
) -> std::path::PathBuf {
    let key = Digest::sha256_of(format!("{}/{repo}/{d}", client.host()).as_bytes());
    store
        .layout()
        .uploads_dir()
        .join(format!("{}.json", key.hex()))
}

async fn upload_blob(
    store: &ImageStore,
    client: &RegistryClient,
    repo: &RepoName,
    desc: &Descriptor,
    candidates: &[RepoName],
    opts: &PushOptions,
    bar: &LayerProgress,
) -> Result<BlobOutcome, RegistryError> {
    if client.blob_exists(repo, &desc.digest).await? {
        return Ok(BlobOutcome::Existed);
    }
    let mut offered = None;
    for from in candidates {
        match client.mount_blob(repo, &desc.digest, from).await {
            Ok(MountOutcome::Mounted) => return Ok(BlobOutcome::Mounted),
            Ok(MountOutcome::Upload(u)) => {
                offered = Some(u);
                break;
            }
            Err(e) => tracing::debug!(error = %e, from = %from, "mount failed; uploading"),
        }
    }
    let path = store.layout().blob(&desc.digest);
    let size = store.blob_size(&desc.digest)?;
    bar.status("Pushing");
    if size <= opts.chunk_size {
        // A cut PUT may leave bytes behind, so a retry opens a fresh upload.
        let mut offered = offered;
        let mut attempt = 0;
        loop {
            let loc = match offered.take() {
                Some(u) => u,
                None => client.start_upload(repo).await?,
            };
            match client
                .put_blob_file(repo, &loc, &desc.digest, &path, size, Some(bar))
                .await
            {
                Ok(()) => break,
                Err(RegistryError::Network { source, .. })
                    if attempt + 1 < client.opts.attempts.max(1) =>
                {
                    tracing::debug!(error = %source, "upload interrupted; starting it again");
                    tokio::time::sleep(client.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
        bar.set(size);
        return Ok(BlobOutcome::Uploaded);
    }

    let rpath = record_path(store, client, repo, &desc.digest);
    let saved: Option<UploadRecord> = std::fs::read(&rpath)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut state: Option<(Url, u64)> = None;
    if let Some(rec) = saved
        && let Ok(u) = client.resolve_location(&rec.location)
    {
        match client.upload_status(repo, &u).await {
            Ok(Some((n, loc))) if n <= size => {
                tracing::info!(digest = %desc.digest, offset = n, "resuming upload");
                state = Some((loc, n));
            }
            other => tracing::debug!(?other, "saved upload is gone; starting over"),
        }
    }
    let (mut loc, mut offset) = match state {
        Some(s) => s,
        None => (
            match offered {
                Some(u) => u,
                None => client.start_upload(repo).await?,
            },
            0,
        ),
    };
    let mut file = std::fs::File::open(&path).map_err(|source| RegistryError::Io {
        op: "open",
        path: path.clone(),
        source,
    })?;
    let mut restarts = 0;
    while offset < size {
        let n = opts.chunk_size.min(size - offset);
        let chunk = read_chunk(&mut file, &path, offset, n)?;
        match client.patch_chunk(repo, &loc, offset, chunk).await {
            Ok(next) => {
                offset += n;
                loc = next;
                bar.set(offset);
                let rec = UploadRecord {
                    location: loc.to_string(),
                    offset,
                };
                if let Ok(b) = serde_json::to_vec(&rec) {
                    // Best effort: losing the record only costs a restart.
                    let _ = std::fs::write(&rpath, b);
                }
            }
            Err(e) if restarts < 3 => {
                restarts += 1;
                tracing::debug!(error = %e, offset, "chunk failed; asking the registry where to resume");
                match client.upload_status(repo, &loc).await {
                    Ok(Some((n, l))) if n <= size => {
                        offset = n;
                        loc = l;
                    }
                    _ => {
                        loc = client.start_upload(repo).await?;
                        offset = 0;
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    client
        .finish_upload(repo, &loc, &desc.digest, Bytes::new())
        .await?;
    let _ = std::fs::remove_file(&rpath);
    Ok(BlobOutcome::Uploaded)
}

fn read_chunk(
    file: &mut std::fs::File,
    path: &std::path::Path,
    offset: u64,
    n: u64,
) -> Result<Bytes, RegistryError> {
    let io = |op: &'static str| {
        let path = path.to_owned();
        move |source| RegistryError::Io { op, path, source }
    };
    file.seek(SeekFrom::Start(offset)).map_err(io("seek"))?;
    let len = usize::try_from(n).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf).map_err(io("read"))?;
    Ok(Bytes::from(buf))
}
