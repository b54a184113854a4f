//! The `bay` client library: the local image store, the registry client, and
//! the docker-style commands behind the `bay` binary.
//!
//! # What it owns
//! - [`store`]: the image store under the data root — content-addressed blobs
//!   shared by all images, and one small index (repositories, tags, image
//!   records, blob→registry-repository hints) updated atomically under a file
//!   lock, so two `bay` processes can work at once.
//! - [`reference`](mod@reference): image references normalised as docker does, except that
//!   there is no default registry — a name without a host is local only.
//! - [`registry`]: a distribution-spec client with Docker token auth, parallel
//!   digest-verified resumable pulls, and pushes with HEAD checks, cross-repo
//!   mounts and resumable chunked uploads.
//! - [`archive`] and [`import`]: `save`/`load` (docker-archive and OCI layout)
//!   and `import` of a rootfs tarball.
//! - [`credentials`]: stored logins — `$BAY_HOME/config.json` (refresh tokens
//!   only, mode 0600, docker's shape) and docker's `config.json` with its
//!   credential helpers, behind one [`registry::AuthProvider`].
//! - [`commands`]: each CLI verb as a function writing docker's output to a
//!   caller-supplied writer; the binary only parses flags and picks exit codes.
//!
//! # Extension points
//! - [`trust::TrustPolicy`] is called before a pull by tag (it may pin the tag
//!   to a verified digest, which the client then fetches and re-checks, or
//!   refuse) and after a push (to sign). It receives the authenticated
//!   [`registry::RegistryClient`], whose [`registry::RegistryClient::request`]
//!   reaches `/v2/<gun>/_trust/…` with the same tokens. [`trust::NotaryTrust`]
//!   is docker content trust (keys and trust cache under `$BAY_HOME/trust`);
//!   [`trust::NoTrust`] is the policy with trust off. The `bay trust` verbs
//!   are methods of [`trust::NotaryTrust`] ([`trust::admin`]) and
//!   [`commands::trust`]; [`trust::inspect`] renders docker's report.
//! - [`registry::AuthProvider`] supplies [`registry::Credentials`] (Basic or a
//!   refresh token) per host; [`registry::RegistryClient::login`] checks a
//!   password docker-style and returns the refresh token to store instead.
//!   [`credentials::ConfigAuth`] is the provider every `bay` command uses.
//! - [`store::ImageUsers`] tells `rmi`/`prune` which containers use an image
//!   ([`commands::RuntimeUsers`] answers from the runtime's containers, which
//!   `run` tags with the image ID under [`commands::IMAGE_ANNOTATION`]).
//! - `bay run` ([`commands::resolve_image`], [`commands::run_image`]) runs
//!   containers with `bay_runtime` under `<data-root>/runtime`.
//!   `bay run -d` ([`commands::run_detached`]) hands the container to a
//!   monitor process (`bay __monitor`); [`commands::container`] and
//!   [`commands::logs`] are the lifecycle verbs (`ps`, `stop`, `logs`,
//!   `exec`, `cp`, `commit`, …) on the state the monitor keeps on disk.
//!
//! # Environment
//! | variable | meaning |
//! |---|---|
//! | `BAY_DATA_ROOT` (`--data-root`) | image store; default `/var/lib/bay` for root, else `~/.local/share/bay` |
//! | `BAY_HOME` | client state (`config.json` logins, `certs.d/<host>/*.crt` CAs, `trust/` keys and trust cache); default `~/.bay` |
//! | `DOCKER_CONFIG` | docker's config directory, read for logins bay has not stored itself; default `~/.docker` |
//! | `BAY_INSECURE_REGISTRIES` (`--insecure-registry`) | comma list of `host:port` allowed over plain HTTP (loopback always is) |
//! | `BAY_MAX_CONCURRENT_TRANSFERS` | layers pulled/pushed at once (default 6) |
//! | `BAY_PUSH_CHUNK_SIZE` | blobs above this many bytes go up in resumable chunks of it (default 64 MiB) |
//! | `BAY_LOG` | tracing filter (`-D` for debug) |
//! | `DOCKER_CONTENT_TRUST` | `1`: pull verifies tags and push signs them through the registry's Notary endpoints ([`trust::NotaryTrust`]; `--disable-content-trust` skips) |
//! | `DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE`, `DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE` | passphrases of the root and targets keys (else a prompt on a terminal) |
//! | `DOCKER_CONTENT_TRUST_SERVER` | `https://host[:port]` of the trust server for `push`, `pull` and `bay trust` (default: the registry itself) |
//! | `$BAY_HOME/trust/config.json` | root pinning (`trust_pinning`: `certs`, `ca`, `disable_tofu`; see [`trust::pinning`]); trust on first use otherwise |
//!
//! # Invariants
//! - Only [`store::layout`] builds paths inside the data root.
//! - A blob is in `blobs/` only once its digest was verified; the index names
//!   only images whose blobs are all present.
//! - There is no default registry: a reference without a host never leaves the machine.
//! - Plain HTTP only for loopback hosts and `--insecure-registry` hosts, and a
//!   TLS certificate failure is reported, never answered by falling back to HTTP.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use bay_client::{reference::ImageRef, store::ImageStore, registry, trust::NoTrust};
//! use bay_client::progress::{Progress, ProgressMode};
//! let store = ImageStore::open(std::path::Path::new("/tmp/bay"))?;
//! let image = ImageRef::parse("127.0.0.1:5000/team/app:v1")?;
//! let client = Arc::new(registry::RegistryClient::connect(
//!     image.require_host()?, registry::ClientOptions::default()).await?);
//! let progress = Arc::new(Progress::new(ProgressMode::Quiet, Box::new(std::io::stdout())));
//! registry::pull::pull(&store, client, &image, &NoTrust, &Default::default(), progress).await?;
//! # Ok(()) }
//! ```

pub mod archive;
pub mod commands;
pub mod credentials;
pub mod format;
pub mod image;
pub mod import;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod store;
pub mod template;
pub mod trust;
