//! The `bay` client library: the local image store, the registry client, and
//! the docker-style commands behind the `bay` binary.
//!
//! # What it owns
//! - [`store`]: the image store under the data root — content-addressed blobs
//!   shared by all images, and one small index (repositories, tags, image
//!   records, blob→registry-repository hints) updated atomically under a file
//!   lock, so two `bay` processes can work at once.
//! - [`reference`]: image references normalised as docker does, except that
//!   there is no default registry — a name without a host is local only.
//! - [`registry`]: a distribution-spec client with Docker token auth, parallel
//!   digest-verified resumable pulls, and pushes with HEAD checks, cross-repo
//!   mounts and resumable chunked uploads.
//! - [`archive`] and [`import`]: `save`/`load` (docker-archive and OCI layout)
//!   and `import` of a rootfs tarball.
//! - [`commands`]: each CLI verb as a function writing docker's output to a
//!   caller-supplied writer; the binary only parses flags and picks exit codes.
//!
//! # Extension points
//! - [`trust::TrustPolicy`] resolves a tag to a verified digest before a pull
//!   and signs after a push (content trust plugs in here).
//! - [`registry::AuthProvider`] supplies [`registry::Credentials`] per host
//!   (`bay login` plugs in here).
//! - [`store::ImageUsers`] tells `rmi` which containers use an image (the
//!   runtime plugs in here).
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
pub mod format;
pub mod image;
pub mod import;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod store;
pub mod template;
pub mod trust;
