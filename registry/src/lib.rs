//! `bay-registry`: an OCI distribution-spec v1.1 registry.
//!
//! # What this crate owns
//! - the HTTP surface ([`api`]): every distribution-spec endpoint, routed by
//!   one dispatcher that parses `/v2/…` paths from the right;
//! - blob storage ([`storage`]): content-addressed, deduplicated bytes behind
//!   the `object_store` crate, with staged uploads that become visible only
//!   after their digest is verified;
//! - metadata ([`meta`]): repositories, tags, manifests (with their exact
//!   bytes), references, referrer subjects and upload sessions in SQL
//!   (one SQLite file by default);
//! - configuration ([`config`]) and the listener ([`server`]).
//!
//! # Invariants
//! - Client strings become [`oci_types`] values at the edge; only
//!   [`storage::layout`] turns them into storage paths.
//! - A blob is visible only after its digest is verified and its bytes are
//!   renamed into place; a manifest and its tags are written in one
//!   transaction. A `kill -9` at any moment leaves no partial content.
//! - Handlers return [`error::ApiError`]; 5xx bodies stay generic and the
//!   cause goes to the log.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let mut config = bay_registry::config::Config::default();
//! config.storage.root = "/tmp/bay-data".into();
//! let registry = bay_registry::Registry::open(config).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! registry.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod gc;
pub mod manifest;
pub mod meta;
pub mod metrics;
pub mod server;
pub mod storage;
pub mod trust;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::api::AppState;
use crate::config::Config;
use crate::meta::{Meta, MetaError};
use crate::storage::{BlobStore, StorageError, UploadError, Uploads};

/// Errors opening or running the registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The data root could not be created.
    #[error("cannot create data root {path}")]
    Root {
        /// Directory.
        path: std::path::PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Metadata database.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Blob storage.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Upload staging.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// TLS setup.
    #[error(transparent)]
    Server(#[from] server::ServerError),
    /// Authentication setup.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// No users exist and the listener is not on loopback.
    #[error(
        "no users exist yet, so the registry would be open to anyone: create an admin first (bay-registry user add NAME --admin) or listen on a loopback address"
    )]
    OpenOffLoopback,
}

/// An opened registry, ready to serve.
#[derive(Clone)]
pub struct Registry {
    state: api::Shared,
}

impl Registry {
    /// Open the data root named by `config` (creating it if needed).
    pub async fn open(config: Config) -> Result<Self, RegistryError> {
        let root = config.storage.root.clone();
        std::fs::create_dir_all(&root).map_err(|source| RegistryError::Root {
            path: root.clone(),
            source,
        })?;
        let meta =
            Meta::open_sqlite(&storage::layout::database_file(&root), config.storage.sync).await?;
        let blobs = BlobStore::local(&root)?;
        let uploads = Uploads::new(&root, meta.clone())?;
        let tls = config.server.tls_cert.is_some();
        let auth = auth::Auth::new(config.auth.clone(), meta.clone(), &root, tls).await?;
        Ok(Registry {
            state: Arc::new(AppState {
                meta,
                blobs,
                uploads,
                config: Arc::new(config),
                auth: Arc::new(auth),
                trust_cache: trust::cache::Cache::default(),
            }),
        })
    }

    /// The metadata database (for admin commands and tests).
    pub fn meta(&self) -> &Meta {
        &self.state.meta
    }

    /// The blob store (for admin commands and tests).
    pub fn blobs(&self) -> &BlobStore {
        &self.state.blobs
    }

    /// The authenticator.
    pub fn auth(&self) -> &auth::Auth {
        &self.state.auth
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// The HTTP router with request ids, tracing and metrics.
    pub fn router(&self) -> Router {
        let metrics = std::sync::Arc::new(metrics::Metrics::new());
        api::router(self.state.clone())
            .route("/metrics", axum::routing::get(metrics::serve).with_state(metrics.clone()))
            .layer(axum::middleware::from_fn_with_state(metrics, metrics::record))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(
                TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
                }),
            )
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
    }

    /// Serve on `listener` until `shutdown` resolves, with TLS if configured,
    /// expiring idle upload sessions in the background.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), RegistryError> {
        let cfg = &self.state.config.server;
        let tls = match (&cfg.tls_cert, &cfg.tls_key) {
            (Some(c), Some(k)) => Some(server::tls_config(c, k)?),
            _ => None,
        };
        let local = listener.local_addr().ok();
        if !self.state.auth.refresh().await? && !local.is_some_and(|a| a.ip().is_loopback()) {
            return Err(RegistryError::OpenOffLoopback);
        }
        if !self.state.auth.enforced() {
            tracing::warn!(
                "no users exist: the registry is open to every local client; create an admin with `bay-registry user add NAME --admin` to enforce logins"
            );
        }
        let auth = self.state.auth.clone();
        let watcher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            while !auth.enforced() {
                tick.tick().await;
                if let Err(e) = auth.refresh().await {
                    tracing::warn!(error = %e, "checking for users failed");
                }
            }
        });
        let uploads = self.state.uploads.clone();
        let ttl = self.state.config.limits.upload_ttl_secs;
        // Sweep often enough that a session never outlives its TTL by more
        // than a quarter of it (and at most a minute).
        let sweep = Duration::from_secs((ttl / 4).clamp(1, 60));
        let janitor = tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep);
            loop {
                tick.tick().await;
                match uploads.expire(ttl).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "expired idle upload sessions"),
                    Err(e) => tracing::warn!(error = %e, "upload expiry failed"),
                }
            }
        });
        server::serve(listener, self.router(), tls, shutdown).await;
        janitor.abort();
        watcher.abort();
        Ok(())
    }
}
