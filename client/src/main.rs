//! The `bay` command-line client.

use clap::Parser;

/// bay: push, pull, verify and run container images.
#[derive(Parser)]
#[command(name = "bay", version)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
