//! `pull` and `push`.

use std::sync::Arc;

use super::{CommandError, Env};
use crate::image::Platform;
use crate::progress::{Progress, ProgressMode};
use crate::reference::ImageRef;
use crate::registry::RegistryClient;
use crate::registry::pull::{PullOptions, PullOutcome};
use crate::registry::push::{PushOptions, PushOutcome};

/// `bay pull [-q] [--platform P] NAME[:TAG|@DIGEST]`.
pub async fn pull(
    env: &Env,
    reference: &str,
    platform: Option<&str>,
    mode: ProgressMode,
    out: Box<dyn std::io::Write + Send>,
) -> Result<PullOutcome, CommandError> {
    let image = ImageRef::parse(reference)?;
    let host = image.require_host()?;
    let platform = platform.map(Platform::parse).transpose()?;
    let store = env.store()?;
    let client = Arc::new(RegistryClient::connect(host, env.client_options()).await?);
    let progress = Arc::new(Progress::new(mode, out));
    let opts = PullOptions {
        platform,
        concurrency: env.concurrency,
    };
    Ok(
        crate::registry::pull::pull(&store, client, &image, env.trust.as_ref(), &opts, progress)
            .await?,
    )
}

/// `bay pull --all-tags NAME`: every tag of the repository, one after the other.
pub async fn pull_all_tags(
    env: &Env,
    reference: &str,
    platform: Option<&str>,
    mode: ProgressMode,
    out: Box<dyn std::io::Write + Send>,
) -> Result<Vec<PullOutcome>, CommandError> {
    let image = ImageRef::parse(reference)?;
    if image.tag().is_some() || image.digest().is_some() {
        return Err(CommandError::AllTagsWithTag);
    }
    let host = image.require_host()?;
    let platform = platform.map(Platform::parse).transpose()?;
    let store = env.store()?;
    let client = Arc::new(RegistryClient::connect(host, env.client_options()).await?);
    let progress = Arc::new(Progress::new(mode, out));
    let opts = PullOptions {
        platform,
        concurrency: env.concurrency,
    };
    let mut outcomes = Vec::new();
    for t in client.list_tags(image.repo()).await? {
        let Ok(tag) = oci_types::Tag::parse(&t) else {
            tracing::warn!(tag = %t, "registry listed an invalid tag; skipped");
            continue;
        };
        let one = image.with_tag(tag);
        outcomes.push(
            crate::registry::pull::pull(
                &store,
                client.clone(),
                &one,
                env.trust.as_ref(),
                &opts,
                progress.clone(),
            )
            .await?,
        );
    }
    Ok(outcomes)
}

/// `bay push --all-tags NAME`: every local tag of the repository.
pub async fn push_all_tags(
    env: &Env,
    reference: &str,
    mode: ProgressMode,
    out: Box<dyn std::io::Write + Send>,
) -> Result<Vec<PushOutcome>, CommandError> {
    let image = ImageRef::parse(reference)?;
    if image.tag().is_some() || image.digest().is_some() {
        return Err(CommandError::AllTagsWithTag);
    }
    let host = image.require_host()?;
    let store = env.store()?;
    let tags: Vec<String> = store
        .read_index()?
        .repositories
        .get(&image.repository())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if tags.is_empty() {
        return Err(crate::registry::RegistryError::NotLocal {
            reference: image.repository(),
        }
        .into());
    }
    let client = Arc::new(RegistryClient::connect(host, env.client_options()).await?);
    let progress = Arc::new(Progress::new(mode, out));
    let opts = PushOptions {
        concurrency: env.concurrency,
        chunk_size: env.chunk_size,
    };
    let mut outcomes = Vec::new();
    for t in tags {
        let Ok(tag) = oci_types::Tag::parse(&t) else {
            continue;
        };
        let one = image.with_tag(tag);
        outcomes.push(
            crate::registry::push::push(
                &store,
                client.clone(),
                &one,
                env.trust.as_ref(),
                &opts,
                progress.clone(),
            )
            .await?,
        );
    }
    Ok(outcomes)
}

/// `bay push [-q] NAME[:TAG]`.
pub async fn push(
    env: &Env,
    reference: &str,
    mode: ProgressMode,
    out: Box<dyn std::io::Write + Send>,
) -> Result<PushOutcome, CommandError> {
    let image = ImageRef::parse(reference)?;
    let host = image.require_host()?;
    let store = env.store()?;
    let client = Arc::new(RegistryClient::connect(host, env.client_options()).await?);
    let progress = Arc::new(Progress::new(mode, out));
    let opts = PushOptions {
        concurrency: env.concurrency,
        chunk_size: env.chunk_size,
    };
    Ok(
        crate::registry::push::push(&store, client, &image, env.trust.as_ref(), &opts, progress)
            .await?,
    )
}
