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

/// Runs `bay volume <verb>`: 0, or 1 when the verb failed (docker's codes).
pub fn run(env: Env, cmd: VolumeCmd) -> ExitCode {
    use bay_client::commands::volume;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let result = match cmd {
        VolumeCmd::Create(a) => {
            volume::volume_create(&env, a.name.as_deref(), &a.driver, &a.labels, &mut out)
                .map(|()| true)
        }
        VolumeCmd::Ls(a) => volume::volume_ls(&env, a.quiet, &mut out).map(|()| true),
        VolumeCmd::Rm(a) => volume::volume_rm(&env, &a.names, a.force, &mut out, &mut err),
        VolumeCmd::Inspect(a) => {
            volume::volume_inspect(&env, &a.names, a.format.as_deref(), &mut out, &mut err)
        }
        VolumeCmd::Prune(a) => {
            if !a.force && !confirm_prune(a.all, &mut out) {
                return ExitCode::SUCCESS;
            }
            volume::volume_prune(&env, a.all, &mut out).map(|()| true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            crate::report(&anyhow::Error::from(e));
            ExitCode::from(1)
        }
    }
}

/// docker's prune prompt; true to go on.
fn confirm_prune(all: bool, out: &mut dyn std::io::Write) -> bool {
    use std::io::BufRead;
    let what = if all {
        "all local volumes not used by at least one container"
    } else {
        "anonymous local volumes not used by at least one container"
    };
    let _ = write!(
        out,
        "WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] "
    );
    let _ = out.flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}
