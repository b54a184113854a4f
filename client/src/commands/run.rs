//! `run`: resolve (pulling, verifying) an image, unpack its layers into the
//! runtime's layer store once, and run it in the foreground.
//!
//! The image side is async (it may pull) and the container side is not (the
//! runtime forks and waits), so the binary calls [`resolve_image`] inside its
//! async runtime and [`run_image`] outside it.

use std::io::Write;
use std::path::PathBuf;

use bay_runtime::{
    ContainerError, ContainerId, ContainerStatus, ExitStatus, RunOptions, Runtime, SpecInput,
    StdioConfig, Storage,
};
use oci_types::Digest;

use super::{CommandError, Env, out_err};
use crate::progress::ProgressMode;
use crate::reference::ImageRef;
use crate::registry::RegistryClient;
use crate::store::{ImageUsers, LookupError, StoreError};
use crate::trust::Resolution;

/// The spec annotation naming the image (ID) a container was created from.
pub const IMAGE_ANNOTATION: &str = "org.bay.image";

/// The runtime's containers as [`ImageUsers`], so `rmi` and `image prune`
/// keep images that containers were created from.
#[derive(Debug, Clone)]
pub struct RuntimeUsers {
    root: PathBuf,
}

impl RuntimeUsers {
    /// The containers of the runtime rooted at `root` (see [`runtime_root`]).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }
}

impl ImageUsers for RuntimeUsers {
    fn users_of(&self, id: &Digest) -> Vec<(String, bool)> {
        // No runtime yet: no containers (and nothing to create for `rmi`).
        if !self.root.join("containers").is_dir() {
            return Vec::new();
        }
        let listed = Runtime::open(&self.root).and_then(|rt| {
            let states = rt.list()?;
            let want = id.to_string();
            let mut users = Vec::new();
            for s in states {
                let spec = rt.load(&s.id)?.spec()?;
                let from = spec
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(IMAGE_ANNOTATION));
                if from == Some(&want) {
                    let running =
                        matches!(s.status, ContainerStatus::Running | ContainerStatus::Paused);
                    users.push((s.id.to_string(), running));
                }
            }
            Ok(users)
        });
        listed.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot list containers; treating the image as unused");
            Vec::new()
        })
    }
}

/// `<data-root>/runtime`: the runtime's layer store and containers.
pub fn runtime_root(env: &Env) -> PathBuf {
    env.data_root.join("runtime")
}

/// Finds the image `reference` names, docker-style, and returns its ID.
///
/// Absent locally, a reference with a registry host is pulled through
/// [`super::pull`] (so `env.trust` verifies it before anything runs), with
/// docker's "Unable to find image" line and the pull progress on `out`.
/// With `verify` (content trust on), a tag present locally is still resolved
/// through `env.trust`, as docker re-checks; when the signed digest is not
/// the local manifest, the signed image is pulled instead.
pub async fn resolve_image(
    env: &Env,
    reference: &str,
    verify: bool,
    mut out: Box<dyn Write + Send>,
) -> Result<Digest, CommandError> {
    let store = env.store()?;
    let ix = store.read_index()?;
    let parsed = ImageRef::parse(reference).ok();
    let by_tag = parsed.as_ref().filter(|r| {
        r.digest().is_none()
            && r.tag_or_default().is_some_and(|t| {
                ix.repositories
                    .get(&r.repository())
                    .is_some_and(|tags| tags.contains_key(t.as_str()))
            })
    });
    match ix.lookup(reference) {
        Ok(id) => {
            let Some(image) = by_tag.filter(|_| verify) else {
                return Ok(id);
            };
            let host = image.require_host()?;
            let client = RegistryClient::connect(host, env.client_options()).await?;
            let signed = match env
                .trust
                .resolve(&client, image)
                .await
                .map_err(crate::registry::RegistryError::from)?
            {
                Resolution::Unverified => return Ok(id),
                Resolution::Pinned(d) => d,
            };
            let rec = ix.record(&id).map_err(StoreError::from)?;
            let wanted = format!("{}@{signed}", image.repository());
            if rec.all_manifests().iter().any(|(d, _)| *d == signed)
                || rec.repo_digests.contains(&wanted)
            {
                return Ok(id);
            }
            tracing::info!(%signed, local = %rec.manifest, "local tag differs from its signed digest; pulling the signed image");
            Ok(super::pull(env, reference, None, ProgressMode::Plain, out)
                .await?
                .id)
        }
        Err(LookupError::NoSuchImage { query }) => {
            let Some(image) = parsed.filter(|r| r.host().is_some()) else {
                return Err(StoreError::from(LookupError::NoSuchImage { query }).into());
            };
            writeln!(out, "Unable to find image '{}' locally", image.normalized())
                .map_err(out_err)?;
            Ok(super::pull(env, reference, None, ProgressMode::Plain, out)
                .await?
                .id)
        }
        Err(e) => Err(StoreError::from(e).into()),
    }
}

/// Runs image `id` in the foreground with inherited stdio: unpacks its
/// layers into the runtime's layer store (each once), builds the spec from
/// the image config and `opts`, and waits. `remove` is `--rm`.
/// `on_start` gets the container init's host pid once it runs (the binary
/// forwards its signals there, as docker's `--sig-proxy` does).
pub fn run_image(
    env: &Env,
    id: &Digest,
    opts: &RunOptions,
    remove: bool,
    on_start: impl FnOnce(i32),
) -> Result<ExitStatus, CommandError> {
    let store = env.store()?;
    let layers = {
        // Keep the blob sweep away while we read the image's blobs.
        let _lease = store.lease()?;
        let ix = store.read_index()?;
        let rec = ix.record(id).map_err(StoreError::from)?;
        let manifest = store.manifest_of(rec)?;
        let rt = Runtime::open(runtime_root(env))?;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for l in &manifest.layers {
            let present = rt.layers().get(&l.digest).map_err(ContainerError::from)?;
            if present.is_none() {
                let blob = store.open_blob(&l.digest)?;
                rt.layers()
                    .unpack(&l.digest, std::io::BufReader::new(blob))
                    .map_err(ContainerError::from)?;
            }
            layers.push(l.digest.clone());
        }
        (rt, layers)
    };
    let (rt, layers) = layers;
    let (config, _) = store.config_of(id)?;
    let image_config: Option<oci_spec::image::Config> = config
        .config
        .map(serde_json::from_value)
        .transpose()
        .map_err(|source| CommandError::ImageConfig {
            id: id.clone(),
            source,
        })?;
    let cid = ContainerId::generate().map_err(|source| CommandError::Io {
        op: "generate",
        what: "a container id".to_owned(),
        source,
    })?;
    let paths = rt.layer_paths(&layers)?;
    let mut spec = bay_runtime::build_spec(
        SpecInput {
            id: &cid,
            image: image_config.as_ref(),
            layers: &paths,
        },
        opts,
    )?;
    // Which image the container came from, for `rmi` ([`RuntimeUsers`]).
    spec.annotations_mut()
        .get_or_insert_with(Default::default)
        .insert(IMAGE_ANNOTATION.to_owned(), id.to_string());
    tracing::debug!(container = %cid, image = %id, "starting container");
    // `Runtime::run`, with a hook between start and wait.
    let storage = if remove {
        Storage::Ephemeral
    } else {
        Storage::Persistent
    };
    let mut c = rt.create_with(cid, &spec, &layers, storage)?;
    let result = c.start(StdioConfig::default()).and_then(|()| {
        if let Some(pid) = c.state().pid {
            on_start(pid);
        }
        c.wait()
    });
    if remove {
        let deleted = c.delete(true);
        let status = result?;
        deleted?;
        Ok(status)
    } else {
        Ok(result?)
    }
}
