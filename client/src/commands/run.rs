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

/// The spec annotation listing the anonymous volumes (`-v /path`) created
/// for a container, which `--rm` removes with it as docker does.
pub const ANONYMOUS_VOLUMES_ANNOTATION: &str = "org.bay.volumes.anonymous";

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
    // Joining v1 cgroups waits for an RCU grace period: start it now, so it
    // runs while the image is read and the spec built.
    bay_runtime::cgroups::prewarm();
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
    let volumes = bay_runtime::volume::VolumeStore::new(&runtime_root(env));
    let anonymous: Vec<String> = volumes
        .resolve(&mut opts, &paths)?
        .into_iter()
        .filter_map(|n| Some(volumes.get(n.as_str()).ok()??).filter(|v| v.anonymous))
        .map(|v| v.name.to_string())
        .collect();
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
    if !anonymous.is_empty() {
        annotations.insert(ANONYMOUS_VOLUMES_ANNOTATION.to_owned(), anonymous.join(","));
    }
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

/// The user's side of a foreground container's streams: under `-t` the pty
/// master and the user's terminal in raw mode, and the threads copying the
/// output to the user and the container's log.
#[derive(Debug)]
pub struct Terminal {
    /// The pty master under `-t` (resize it on SIGWINCH).
    pub master: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    _raw: Option<bay_runtime::tty::RawMode>,
    output: Vec<std::thread::JoinHandle<()>>,
}

impl Terminal {
    /// Waits until the container's side of its streams is closed and all
    /// its output is copied.
    pub fn finish(self) {
        for t in self.output {
            let _ = t.join();
        }
    }
}

/// The container's stdio for a foreground `run` or `exec`: a pty under
/// `-t` (stdin forwarded with `-i`), else the caller's stdout/stderr and,
/// with `-i`, its stdin (without it, /dev/null). With `log` (`run`, not
/// `exec`), the output also goes to the container's json-file log.
pub fn foreground_stdio(
    interactive: bool,
    tty: bool,
    log: Option<SharedLog>,
) -> Result<(StdioConfig, Option<Terminal>), CommandError> {
    use bay_runtime::Stdio;
    use bay_runtime::logs::Stream;
    use std::os::fd::AsFd;
    if !tty {
        let stdin = if interactive {
            Stdio::Inherit
        } else {
            Stdio::Null
        };
        let Some(log) = log else {
            return Ok((
                StdioConfig {
                    stdin,
                    stdout: Stdio::Inherit,
                    stderr: Stdio::Inherit,
                },
                None,
            ));
        };
        // docker logs attached containers too: each stream is copied to
        // ours and to the json-file log.
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| CommandError::Io {
                op: "create",
                what: "a pipe".to_owned(),
                source: e.into(),
            })
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let copiers = vec![
            tee(out_r, Stream::Stdout, Some(log.clone())),
            tee(err_r, Stream::Stderr, Some(log)),
        ];
        return Ok((
            StdioConfig {
                stdin,
                stdout: Stdio::Fd(out_w),
                stderr: Stdio::Fd(err_w),
            },
            Some(Terminal {
                master: None,
                _raw: None,
                output: copiers,
            }),
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
    let output = match master.try_clone() {
        Ok(fd) => vec![tee(fd, Stream::Stdout, log)],
        Err(_) => Vec::new(),
    };
    if interactive {
        let m = master.clone();
        // Detached: a read of the user's stdin cannot be interrupted; the
        // process exits when the container does.
        spawn_quiet(move || {
            let Ok(fd) = m.try_clone() else { return };
            let mut f = std::fs::File::from(fd);
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut f);
        });
    }
    Ok((
        stdio,
        Some(Terminal {
            master: Some(master),
            _raw: raw,
            output,
        }),
    ))
}

/// Spawns a copier thread with every signal blocked, so that the signals
/// `bay run` forwards to the container (see the binary's `--sig-proxy`)
/// are never delivered to it and its default action.
fn spawn_quiet<F: FnOnce() + Send + 'static>(f: F) -> std::thread::JoinHandle<()> {
    use nix::sys::signal::{SigSet, SigmaskHow};
    let old = SigSet::all().thread_swap_mask(SigmaskHow::SIG_BLOCK).ok();
    let handle = std::thread::spawn(f);
    if let Some(old) = old {
        let _ = old.thread_set_mask();
    }
    handle
}

/// The json-file log a foreground container shares between its streams.
pub type SharedLog = std::sync::Arc<std::sync::Mutex<bay_runtime::logs::LogWriter>>;

/// Copies `fd` (a pipe, or a pty master: EIO once the container's side is
/// closed everywhere) to our stdout or stderr, and into `log`.
fn tee(
    fd: std::os::fd::OwnedFd,
    stream: bay_runtime::logs::Stream,
    log: Option<SharedLog>,
) -> std::thread::JoinHandle<()> {
    spawn_quiet(move || {
        let mut f = std::fs::File::from(fd);
        let mut out: Box<dyn Write> = match stream {
            bay_runtime::logs::Stream::Stdout => Box::new(std::io::stdout()),
            bay_runtime::logs::Stream::Stderr => Box::new(std::io::stderr()),
        };
        let mut split = bay_runtime::logs::LineSplitter::default();
        let mut buf = [0u8; 8192];
        let record = |m: &[u8]| {
            if let Some(l) = &log
                && let Ok(mut w) = l.lock()
                && let Err(error) = w.write(stream, m, chrono::Utc::now())
            {
                tracing::debug!(%error, "container log not written");
            }
        };
        let mut to_user = true;
        while let Ok(n @ 1..) = std::io::Read::read(&mut f, &mut buf) {
            if to_user && out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                to_user = false; // the reader went away; keep logging
            }
            split.feed(&buf[..n], record);
        }
        split.finish(record);
    })
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
    let log_path = rt.layout().container_log(cid.as_str());
    let log = bay_runtime::logs::LogWriter::open(&log_path, settings.log)
        .map(|w| std::sync::Arc::new(std::sync::Mutex::new(w)))
        .map_err(|error| tracing::warn!(%error, "the container's output is not logged"))
        .ok();
    let result =
        foreground_stdio(settings.interactive, settings.tty, log).and_then(|(stdio, term)| {
            c.start(stdio)?;
            if let Some(pid) = c.state().pid {
                on_start(pid, term.as_ref().and_then(|t| t.master.clone()));
            }
            let status = c.wait()?;
            if let Some(t) = term {
                t.finish();
            }
            Ok(status)
        });
    if settings.remove {
        // docker's --rm takes the anonymous volumes made for the container.
        let anonymous = anonymous_volumes(&c);
        let deleted = c.delete(true);
        if deleted.is_ok() {
            remove_anonymous_volumes(&runtime_root(env), &anonymous);
        }
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

/// The anonymous volumes (`-v /path`) made for `c`, as its spec lists them.
pub(crate) fn anonymous_volumes(c: &bay_runtime::Container) -> Vec<String> {
    c.spec()
        .ok()
        .and_then(|s| s.annotations().clone())
        .and_then(|a| a.get(ANONYMOUS_VOLUMES_ANNOTATION).cloned())
        .map(|list| {
            list.split(',')
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Removes a deleted container's anonymous volumes (docker's `run --rm` and
/// `rm -v`). A failure is logged, not returned: the container is gone
/// already, and docker too leaves a volume it cannot remove behind.
pub(crate) fn remove_anonymous_volumes(runtime_root: &std::path::Path, names: &[String]) {
    let volumes = bay_runtime::volume::VolumeStore::new(runtime_root);
    for v in names {
        if let Err(error) = volumes.remove(v) {
            tracing::warn!(volume = %v, %error, "anonymous volume not removed");
        }
    }
}
