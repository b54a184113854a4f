//! The CLI verbs, one function each, writing docker's output to the writers
//! they are given. The binary parses flags, builds a [`Env`], calls one of
//! these and maps [`CommandError`] to docker's exit codes.

mod archive;
pub mod container;
mod images;
mod inspect;
mod login;
pub mod logs;
mod run;
mod transfer;
pub mod trust;
pub mod volume;

use std::path::PathBuf;
use std::sync::Arc;

pub use archive::{import, load, save};
pub use images::{ImagesOptions, images, prune, rmi, tag};
pub use inspect::{HistoryOptions, InspectDoc, history, inspect, inspect_value};
pub use login::{LoginOutcome, login, logout, read_password_line, stored_username};
pub use run::{
    IMAGE_ANNOTATION, RunSettings, RuntimeUsers, Terminal, create_container, foreground_stdio,
    resolve_image, run_detached, run_image, runtime_root,
};
pub use transfer::{pull, pull_all_tags, push, push_all_tags};

use crate::registry::{Anonymous, AuthProvider, ClientOptions};
use crate::store::{ImageStore, ImageUsers, NoContainers, StoreError};
use crate::trust::{NoTrust, TrustPolicy};

/// Everything a command may need besides its own arguments.
#[derive(Clone)]
pub struct Env {
    /// The data root (`--data-root`, `BAY_DATA_ROOT`).
    pub data_root: PathBuf,
    /// Hosts allowed over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
    /// Credentials source.
    pub auth: Arc<dyn AuthProvider>,
    /// Content-trust policy.
    pub trust: Arc<dyn TrustPolicy>,
    /// Who uses images (containers).
    pub users: Arc<dyn ImageUsers + Send + Sync>,
    /// Layers transferred at once.
    pub concurrency: usize,
    /// Push chunk size in bytes.
    pub chunk_size: u64,
    /// `certs.d` directories (`<dir>/<host>/*.crt` CAs), e.g. `/etc/bay/certs.d`, `$BAY_HOME/certs.d`.
    pub certs_dirs: Vec<PathBuf>,
    /// Where `login`/`logout` keep logins: `$BAY_HOME/config.json`.
    pub config_file: PathBuf,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("data_root", &self.data_root)
            .field("insecure_registries", &self.insecure_registries)
            .finish_non_exhaustive()
    }
}

impl Env {
    /// An environment with no credentials, no trust and no containers.
    pub fn new(data_root: PathBuf) -> Self {
        Env {
            data_root,
            insecure_registries: Vec::new(),
            auth: Arc::new(Anonymous),
            trust: Arc::new(NoTrust),
            users: Arc::new(NoContainers),
            concurrency: 6,
            chunk_size: 64 << 20,
            certs_dirs: vec![
                bay_home().join("certs.d"),
                PathBuf::from("/etc/bay/certs.d"),
            ],
            config_file: crate::credentials::bay_config_path(),
        }
    }

    /// Opens the image store.
    pub fn store(&self) -> Result<ImageStore, StoreError> {
        ImageStore::open(&self.data_root)
    }

    /// Registry client options.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            insecure_registries: self.insecure_registries.clone(),
            auth: self.auth.clone(),
            certs_dirs: self.certs_dirs.clone(),
            ..ClientOptions::default()
        }
    }
}

/// `$BAY_HOME`, default `~/.bay`: client config, tokens, trust data, `certs.d`.
pub fn bay_home() -> PathBuf {
    if let Some(h) = std::env::var_os("BAY_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from(".bay"), |h| PathBuf::from(h).join(".bay"))
}

/// The data root docker users expect: `/var/lib/bay` for root, else
/// `$XDG_DATA_HOME/bay` or `~/.local/share/bay`.
pub fn default_data_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/bay");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("bay");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/bay")
}

/// Command failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Local store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Registry.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    /// save/load.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// import.
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    /// `--format`.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// A reference did not parse.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// `--platform`.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// Writing output or reading input failed.
    #[error("cannot {op} {what}: {source}")]
    Io {
        /// What we tried.
        op: &'static str,
        /// On what.
        what: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// `save` to a terminal.
    #[error("cowardly refusing to save to a terminal. Use the -o flag or redirect")]
    RefuseTerminal,
    /// A `--filter` that bay does not know.
    #[error("invalid filter {filter:?} (supported: dangling=true|false, reference=PATTERN)")]
    BadFilter {
        /// The filter as given.
        filter: String,
    },
    /// `--all-tags` with a tag or digest.
    #[error("tag can't be used with --all-tags/-a")]
    AllTagsWithTag,
    /// `tag` with a digest destination.
    #[error("refusing to create a tag with a digest reference")]
    TagDigest,
    /// The registry refused the username and password (docker's wording).
    #[error("unauthorized: incorrect username or password")]
    LoginFailed {
        /// The registry host.
        host: String,
    },
    /// `login` is missing something it needs.
    #[error("{what}")]
    LoginInput {
        /// What is missing or wrong.
        what: &'static str,
    },
    /// The credentials file.
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
    /// The container runtime (`run`).
    #[error(transparent)]
    Runtime(#[from] bay_runtime::ContainerError),
    /// `run` options that do not make a runtime spec.
    #[error(transparent)]
    Spec(#[from] bay_runtime::spec::SpecError),
    /// Named volumes (`volume`, `run -v NAME:/path`).
    #[error(transparent)]
    Volume(#[from] bay_runtime::volume::VolumeError),
    /// `volume create -d` with a driver other than `local`.
    #[error("plugin \"{driver}\" not found")]
    VolumeDriver {
        /// As given.
        driver: String,
    },
    /// The image's config object is not a valid OCI runtime config.
    #[error("image {id} has an invalid config: {source}")]
    ImageConfig {
        /// The image ID.
        id: oci_types::Digest,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// A signal name or number that does not exist.
    #[error("Invalid signal: {signal}")]
    BadSignal {
        /// As given.
        signal: String,
    },
    /// A `--since`/`--until` value that is no time.
    #[error(
        "invalid time {value:?}: use RFC 3339 (2024-05-01T10:00:00Z), Unix seconds or a duration like 42m"
    )]
    BadTime {
        /// As given.
        value: String,
    },
    /// The verb needs a running container.
    #[error("Container {id} is not running")]
    NotRunning {
        /// The container.
        id: bay_runtime::ContainerId,
    },
    /// `exec` into a paused container (docker's wording).
    #[error("Container {id} is paused, unpause the container before exec")]
    ExecPaused {
        /// The container.
        id: bay_runtime::ContainerId,
    },
    /// `pause` of a paused container.
    #[error("Container {id} is already paused")]
    AlreadyPaused {
        /// The container.
        id: bay_runtime::ContainerId,
    },
    /// `port CONTAINER PRIVATE_PORT` with nothing published there.
    #[error("No public port '{port}' published for {container}")]
    NoPublicPort {
        /// The private port as asked, e.g. `80/tcp`.
        port: String,
        /// The container as named.
        container: String,
    },
    /// `port`'s private port is not `PORT[/tcp|udp]`.
    #[error("Invalid port '{port}': expected PORT[/tcp|udp]")]
    BadPort {
        /// The argument.
        port: String,
    },
    /// `unpause` of a container that is not paused.
    #[error("Container {id} is not paused")]
    NotPaused {
        /// The container.
        id: bay_runtime::ContainerId,
    },
    /// `rm` of a running container without `-f` (docker's wording).
    #[error(
        "cannot remove container \"/{name}\": container is running: stop the container before removing or force remove"
    )]
    RemoveRunning {
        /// Its name.
        name: String,
    },
    /// `rename` to the current name.
    #[error("Renaming a container with the same name as its current name")]
    SameName {
        /// The name.
        name: String,
    },
    /// The container did not start (detached: reported by its monitor).
    #[error("{message}")]
    StartFailed {
        /// docker's exit code for it (125, 126, 127).
        code: i32,
        /// The runtime's message.
        message: String,
    },
    /// The container does not record the image it came from.
    #[error("container {id} has no image to commit onto")]
    NoImage {
        /// The container.
        id: bay_runtime::ContainerId,
    },
    /// `cp` of a path missing in the container (docker's wording).
    #[error("Could not find the file {path} in container {container}")]
    CpNotFound {
        /// The path.
        path: String,
        /// The container as named.
        container: String,
    },
    /// `cp` without exactly one container side.
    #[error(
        "must specify exactly one container path (CONTAINER:PATH); copying between containers is not supported"
    )]
    CpUsage,
    /// `cp` or `export` failed inside the container's filesystem.
    #[error("cannot copy {what}")]
    CopyFailed {
        /// What was copied.
        what: String,
    },
    /// Some of several names failed; each error was already printed.
    #[error("{failed} of the requested operations failed")]
    Partial {
        /// How many failed.
        failed: usize,
    },
}

impl CommandError {
    /// True when the messages were already printed (exit 1 silently).
    pub fn already_reported(&self) -> bool {
        matches!(self, CommandError::Partial { .. })
    }

    /// The exit code of a failed `bay run`, docker's way: 127/126 when the
    /// command cannot be found/executed, 1 when content trust refuses the
    /// image, 125 for every other failure of bay itself.
    pub fn run_exit_code(&self) -> i32 {
        match self {
            CommandError::Runtime(e) => e.exit_code(),
            CommandError::StartFailed { code, .. } => *code,
            CommandError::Registry(crate::registry::RegistryError::Trust(_)) => 1,
            _ => 125,
        }
    }
}

pub(crate) fn out_err(source: std::io::Error) -> CommandError {
    CommandError::Io {
        op: "write",
        what: "output".to_owned(),
        source,
    }
}
