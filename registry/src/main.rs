//! `bay-registry`: run the registry server.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use bay_registry::config::Config;

#[derive(Parser)]
#[command(
    name = "bay-registry",
    version,
    about = "An OCI registry with built-in content trust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file (optional; defaults need none).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:5000.
    #[arg(long)]
    addr: Option<std::net::SocketAddr>,
    /// Data root (database, blobs, uploads).
    #[arg(long)]
    root: Option<PathBuf>,
    /// PEM certificate chain (enables TLS with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn init_tracing(cfg: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut cfg = Config::load(args.config.as_deref()).context("loading configuration")?;
    if let Some(a) = args.addr {
        cfg.server.addr = a;
    }
    if let Some(r) = args.root {
        cfg.storage.root = r;
    }
    if args.tls_cert.is_some() {
        cfg.server.tls_cert = args.tls_cert;
        cfg.server.tls_key = args.tls_key;
    }
    init_tracing(&cfg);
    let addr = cfg.server.addr;
    let tls = cfg.server.tls_cert.is_some();
    let root = cfg.storage.root.clone();
    let registry = bay_registry::Registry::open(cfg)
        .await
        .with_context(|| format!("opening data root {}", root.display()))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    tracing::info!(addr = %local, tls, root = %root.display(), "bay-registry listening");
    registry
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
        .await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => rt.block_on(serve(args)),
    }
}
