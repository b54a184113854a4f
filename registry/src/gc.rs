//! Online garbage collection, safe while the registry serves.
//!
//! 1. Links from a repository to a blob that none of its manifests
//!    reference, and that are older than the grace period, are dropped.
//! 2. Blobs that no repository links to (and older than the grace period)
//!    lose their row, then their bytes are moved to `trash/`. If a
//!    concurrent upload linked the digest again in between, the bytes are
//!    put back; otherwise they are deleted. An upload that finds its
//!    deduplicated bytes gone re-commits its own staged copy, so the two
//!    never lose data between them.
//! 3. Bytes with no metadata row at all (a crash between the rename and the
//!    database insert) are deleted once older than the grace period.
//!
//! The grace period keeps in-flight pushes safe: blobs uploaded just before
//! their manifest are never collected.

use std::time::Duration;

use oci_types::Digest;

use crate::meta::{Meta, MetaError};
use crate::storage::{BlobStore, StorageError};

/// Errors of a collection run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    /// Metadata.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Storage.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How to collect.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Nothing younger than this is collected.
    pub grace: Duration,
    /// Report what would go, change nothing.
    pub dry_run: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            grace: Duration::from_secs(3600),
            dry_run: false,
        }
    }
}

/// What a run did (or, in a dry run, would do).
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// (repository, digest) links dropped.
    pub links: Vec<(String, Digest)>,
    /// Blobs deleted, with their sizes.
    pub blobs: Vec<(Digest, u64)>,
    /// Bytes without any metadata row, deleted.
    pub strays: Vec<(Digest, u64)>,
}

impl Report {
    /// Bytes freed.
    pub fn bytes(&self) -> u64 {
        self.blobs.iter().chain(&self.strays).map(|(_, s)| s).sum()
    }
}

/// Run one collection.
pub async fn run(meta: &Meta, blobs: &BlobStore, opts: Options) -> Result<Report, GcError> {
    let cutoff = chrono::Utc::now().timestamp() - opts.grace.as_secs() as i64;
    let mut report = Report::default();
    for (repo, digest) in meta.unreferenced_links(cutoff).await? {
        if opts.dry_run
            || meta
                .drop_link_if_unreferenced(&repo, &digest, cutoff)
                .await?
        {
            tracing::info!(target: "audit", event = "gc-unlink", repo = %repo, digest = %digest, dry_run = opts.dry_run, "unreferenced blob link");
            report.links.push((repo, digest));
        }
    }
    let mut orphans = meta.orphan_blobs(cutoff).await?;
    if opts.dry_run {
        // The links above still exist in a dry run: a blob all of whose links
        // would be dropped counts as orphaned too.
        let mut seen = std::collections::HashSet::new();
        for (_, d) in &report.links {
            if !seen.insert(d.clone()) || orphans.iter().any(|(x, _)| x == d) {
                continue;
            }
            let holders = meta.blob_links(d).await?;
            let all_dropped = holders
                .iter()
                .all(|r| report.links.iter().any(|(rr, dd)| rr == r && dd == d));
            if all_dropped && let Some(size) = meta.global_blob_size(d).await? {
                orphans.push((d.clone(), size));
            }
        }
    }
    for (digest, size) in orphans {
        if opts.dry_run {
            report.blobs.push((digest, size));
            continue;
        }
        if !meta.drop_blob_if_orphan(&digest).await? {
            continue; // linked again meanwhile
        }
        blobs.trash(&digest).await?;
        if meta.blob_known(&digest).await? {
            // An upload linked it after we dropped the row: keep the bytes.
            blobs.restore(&digest).await?;
            continue;
        }
        blobs.purge(&digest).await?;
        tracing::info!(target: "audit", event = "gc-delete", digest = %digest, size, "blob deleted");
        report.blobs.push((digest, size));
    }
    let cutoff_time = chrono::DateTime::from_timestamp(cutoff, 0).unwrap_or_default();
    for (digest, size, modified) in blobs.list().await? {
        if modified >= cutoff_time || meta.blob_known(&digest).await? {
            continue;
        }
        if !opts.dry_run {
            blobs.trash(&digest).await?;
            if meta.blob_known(&digest).await? {
                blobs.restore(&digest).await?;
                continue;
            }
            blobs.purge(&digest).await?;
            tracing::info!(target: "audit", event = "gc-delete-stray", digest = %digest, size, "stray bytes deleted");
        }
        report.strays.push((digest, size));
    }
    Ok(report)
}
