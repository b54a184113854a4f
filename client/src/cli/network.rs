//! `bay run`'s network flags.

use bay_runtime::RunOptions;
use bay_runtime::spec::NetworkMode;
use clap::Args;

/// The network flags of `docker run`.
#[derive(Args, Debug, Default)]
pub struct NetworkArgs {
    /// Connect a container to a network (none, host; bridge is a private namespace for now)
    #[arg(long)]
    network: Option<String>,
}

impl NetworkArgs {
    /// Writes these flags into `opts`.
    pub fn apply(&self, opts: &mut RunOptions) -> anyhow::Result<()> {
        if let Some(n) = &self.network {
            opts.network = n.parse::<NetworkMode>()?;
        }
        Ok(())
    }
}
