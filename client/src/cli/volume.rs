//! `bay volume create|ls|rm|inspect|prune`: docker's named volumes. The
//! flags live here; the work is in `bay_client::commands::volume` over the
//! runtime's volume store.

use std::process::ExitCode;

use bay_client::commands::Env;
use clap::{Args, Subcommand};

/// `bay volume <verb>`.
#[derive(Subcommand)]
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

/// `bay volume create [NAME]`.
#[derive(Args)]
pub struct CreateArgs {
    /// Specify volume driver name (only "local")
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// The volume's name (generated when omitted)
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

/// `bay volume ls`.
#[derive(Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
}

/// `bay volume rm`.
#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes (missing ones are not an error)
    #[arg(short, long)]
    pub force: bool,
    /// The volumes
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

/// `bay volume inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    /// The volumes
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

/// `bay volume prune`.
#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// Runs `bay volume <verb>`.
pub fn run(env: Env, cmd: VolumeCmd) -> ExitCode {
    let _ = (env, cmd);
    crate::report(&anyhow::anyhow!("volumes are being built"));
    ExitCode::from(125)
}
