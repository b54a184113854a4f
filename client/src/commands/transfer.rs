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
