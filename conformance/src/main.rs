//! `bay-conformance`: run the OCI distribution-spec conformance suite against any registry.
//!
//! ```text
//! bay-conformance --url http://127.0.0.1:5000 [--group pull,push] [--namespace NS]
//!                 [--username U --password-stdin]
//! ```
//! Prints one line per test (`PASS`/`FAIL`/`SKIP group/name: reason`) and a summary line;
//! exits 1 if any test failed.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use bay_conformance::{Config, Group};
use clap::Parser;

/// Black-box conformance suite for OCI distribution-spec v1.1 registries.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Registry base URL, e.g. http://127.0.0.1:5000.
    #[arg(long)]
    url: String,
    /// Comma-separated groups to run (pull, push, discovery, management, errors, robustness,
    /// auth, trust); default all (auth only with credentials).
    #[arg(long, value_delimiter = ',')]
    group: Vec<Group>,
    /// Repository prefix for the test repositories.
    #[arg(long, default_value = "conformance")]
    namespace: String,
    /// User name for registry authentication.
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password from standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// A token known to be expired, for the auth group's expiry check.
    #[arg(long)]
    expired_token: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let password = if cli.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from stdin")?;
        let p = s.trim_end_matches(['\r', '\n']).to_owned();
        if p.is_empty() {
            bail!("--password-stdin: standard input was empty");
        }
        Some(p)
    } else {
        None
    };
    let cfg = Config {
        url: cli.url,
        namespace: cli.namespace,
        groups: cli.group,
        username: cli.username,
        password,
        expired_token: cli.expired_token,
    };
    let report = bay_conformance::run_with_progress(&cfg, |r| println!("{r}")).await;
    println!("{}", report.summary_line());
    Ok(if report.failed() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
