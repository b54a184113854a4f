//! The listener: plain TCP or rustls TLS, HTTP/1.1 and HTTP/2, graceful
//! shutdown.
//!
//! hyper's read buffer is raised to [`PARSER_BUFFER`] so that oversized
//! headers reach the router's limit check and get the spec's JSON error;
//! only headers beyond this hard cap get hyper's bare 431.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Hard cap of the HTTP/1 parser buffer (headers larger than this are cut
/// off by hyper itself).
pub const PARSER_BUFFER: usize = 2 * 1024 * 1024 + 64 * 1024;

/// Errors starting the listener.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A TLS file could not be read.
    #[error("cannot read TLS file {path}")]
    TlsFile {
        /// File.
        path: std::path::PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The TLS files do not form a usable configuration.
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
}

/// Build a rustls server config from PEM files.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| ServerError::TlsFile {
            path: p.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{} holds no certificate",
            cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?
        .ok_or_else(|| ServerError::Tls(format!("{} holds no private key", key.display())))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ServerError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serve `router` on `listener` until `shutdown` resolves, then drain.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(PARSER_BUFFER).keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service =
            TowerToHyperService::new(router.clone().layer(axum::Extension(ClientAddr(peer))));
        let builder = builder.clone();
        match &acceptor {
            None => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Some(acc) => {
                let acc = acc.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match acc.accept(stream).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing");
        }
    }
}

/// The peer address of a request (for rate limits and audit lines).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);
