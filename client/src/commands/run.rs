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

/// How `bay run` runs a container beyond its spec (`--name`, `-d`, `-i`,
/// `-t`, `--rm`, `--restart`, `--log-opt`).
#[derive(Debug, Clone, Default)]
pub struct RunSettings {
    /// `--name` (generated docker-style when absent).
    pub name: Option<String>,
    /// The image as the user typed it (`ps`'s IMAGE column).
    pub image_ref: String,
    /// `--rm`.
    pub remove: bool,
    /// `-d`.
    pub detach: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
    /// `--restart`.
    pub restart: bay_runtime::monitor::RestartPolicy,
    /// `--log-opt`.
    pub log: bay_runtime::logs::LogConfig,
}

/// Creates (does not start) a container of image `id`: unpacks its layers
/// into the runtime's layer store (each once), builds the spec from the
/// image config and `opts`, claims the name and records the lifecycle
/// settings.
pub fn create_container(
    env: &Env,
    id: &Digest,
    opts: &RunOptions,
    settings: &RunSettings,
) -> Result<(Runtime, ContainerId), CommandError> {
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
    let name = match &settings.name {
        Some(n) => bay_runtime::ContainerName::parse(n)?,
        None => rt.generate_name()?,
    };
    let cid = ContainerId::generate().map_err(|source| CommandError::Io {
        op: "generate",
        what: "a container id".to_owned(),
        source,
    })?;
    let paths = rt.layer_paths(&layers)?;
    let mut opts = opts.clone();
    opts.tty = settings.tty;
    // `-v NAME:/path`: create missing volumes, fill new ones from the image.
    bay_runtime::volume::VolumeStore::new(&runtime_root(env)).resolve(&mut opts, &paths)?;
    let mut spec = bay_runtime::build_spec(
        SpecInput {
            id: &cid,
            image: image_config.as_ref(),
            layers: &paths,
        },
        &opts,
    )?;
    // Which image the container came from, for `rmi` ([`RuntimeUsers`]).
    let annotations = spec.annotations_mut().get_or_insert_with(Default::default);
    annotations.insert(IMAGE_ANNOTATION.to_owned(), id.to_string());
    annotations.insert(
        super::container::IMAGE_REF_ANNOTATION.to_owned(),
        settings.image_ref.clone(),
    );
    let stop_signal = image_config
        .as_ref()
        .and_then(|c| c.stop_signal().clone())
        .and_then(|s| super::container::parse_signal(&s).ok());
    tracing::debug!(container = %cid, image = %id, "creating container");
    rt.claim_name(&name, &cid)?;
    let storage = if settings.remove && !settings.detach {
        Storage::Ephemeral
    } else {
        Storage::Persistent
    };
    let created = rt.create_with(cid.clone(), &spec, &layers, storage);
    let mut c = match created {
        Ok(c) => c,
        Err(e) => {
            rt.release_name(name.as_str(), &cid);
            return Err(e.into());
        }
    };
    let lifecycle = bay_runtime::monitor::Lifecycle {
        restart: settings.restart,
        log: settings.log,
        tty: settings.tty,
        open_stdin: settings.interactive,
        stop_signal,
        auto_remove: settings.remove,
    };
    c.update(|s| {
        s.name = Some(name.to_string());
        s.lifecycle = lifecycle;
    })?;
    drop(c);
    Ok((rt, cid))
}

/// `bay run -d`: creates the container and hands it to a monitor process;
/// returns its id once it runs.
pub fn run_detached(
    env: &Env,
    id: &Digest,
    opts: &RunOptions,
    settings: &RunSettings,
) -> Result<ContainerId, CommandError> {
    let (_rt, cid) = create_container(env, id, opts, settings)?;
    super::container::spawn_monitor(env, &cid)?;
    Ok(cid)
}

/// The user's side of a container's terminal (`-t`): the pty master, the
/// user's terminal in raw mode, and the thread copying the output.
#[derive(Debug)]
pub struct Terminal {
    /// The pty master (resize it on SIGWINCH).
    pub master: std::sync::Arc<std::os::fd::OwnedFd>,
    _raw: Option<bay_runtime::tty::RawMode>,
    output: Option<std::thread::JoinHandle<()>>,
}

impl Terminal {
    /// Waits until the container's side of the terminal is closed and all
    /// its output is copied.
    pub fn finish(mut self) {
        if let Some(t) = self.output.take() {
            let _ = t.join();
        }
    }
}

/// The container's stdio for a foreground `run` or `exec`: a pty under
/// `-t` (stdin forwarded with `-i`), else the caller's stdout/stderr and,
/// with `-i`, its stdin (without it, /dev/null).
pub fn foreground_stdio(
    interactive: bool,
    tty: bool,
) -> Result<(StdioConfig, Option<Terminal>), CommandError> {
    use bay_runtime::Stdio;
    use std::os::fd::AsFd;
    if !tty {
        return Ok((
            StdioConfig {
                stdin: if interactive {
                    Stdio::Inherit
                } else {
                    Stdio::Null
                },
                stdout: Stdio::Inherit,
                stderr: Stdio::Inherit,
            },
            None,
        ));
    }
    let io = |source: std::io::Error| CommandError::Io {
        op: "set up",
        what: "a terminal".to_owned(),
        source,
    };
    let stdin = std::io::stdin();
    let ws = bay_runtime::tty::winsize(stdin.as_fd()).unwrap_or(bay_runtime::tty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    let pty = nix::pty::openpty(Some(&ws), None).map_err(|e| io(e.into()))?;
    let slave = || pty.slave.try_clone().map(Stdio::Fd).map_err(io);
    let stdio = StdioConfig {
        stdin: slave()?,
        stdout: slave()?,
        stderr: slave()?,
    };
    drop(pty.slave);
    let master = std::sync::Arc::new(pty.master);
    let raw = if interactive && bay_runtime::tty::winsize(stdin.as_fd()).is_some() {
        bay_runtime::tty::RawMode::enter(stdin.as_fd()).ok()
    } else {
        None
    };
    let m = master.clone();
    let output = std::thread::spawn(move || {
        let mut f = std::fs::File::from(match m.try_clone() {
            Ok(fd) => fd,
            Err(_) => return,
        });
        let mut out = std::io::stdout();
        let mut buf = [0u8; 8192];
        // EIO once the container's side is closed everywhere.
        while let Ok(n @ 1..) = std::io::Read::read(&mut f, &mut buf) {
            if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                break;
            }
        }
    });
    if interactive {
        let m = master.clone();
        // Detached: a read of the user's stdin cannot be interrupted; the
        // process exits when the container does.
        std::thread::spawn(move || {
            let Ok(fd) = m.try_clone() else { return };
            let mut f = std::fs::File::from(fd);
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut f);
        });
    }
    Ok((
        stdio,
        Some(Terminal {
            master,
            _raw: raw,
            output: Some(output),
        }),
    ))
}

/// Runs image `id` in the foreground: creates the container, starts it
/// with [`foreground_stdio`], and waits; `--rm` removes it afterwards.
/// `on_start` gets the container init's host pid once it runs, and the pty
/// master under `-t` (the binary forwards its signals there, as docker's
/// `--sig-proxy` does, and resizes the terminal on SIGWINCH).
pub fn run_image(
    env: &Env,
    id: &Digest,
    opts: &RunOptions,
    settings: &RunSettings,
    on_start: impl FnOnce(i32, Option<std::sync::Arc<std::os::fd::OwnedFd>>),
) -> Result<ExitStatus, CommandError> {
    let (rt, cid) = create_container(env, id, opts, settings)?;
    let mut c = rt.load(&cid)?;
    let name = c.state().name.clone();
    let result = foreground_stdio(settings.interactive, settings.tty).and_then(|(stdio, term)| {
        c.start(stdio)?;
        if let Some(pid) = c.state().pid {
            on_start(pid, term.as_ref().map(|t| t.master.clone()));
        }
        let status = c.wait()?;
        if let Some(t) = term {
            t.finish();
        }
        Ok(status)
    });
    if settings.remove {
        let deleted = c.delete(true);
        if let Some(n) = name {
            rt.release_name(&n, &cid);
        }
        let status = result?;
        deleted?;
        Ok(status)
    } else {
        result
    }
}
