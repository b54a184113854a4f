//! `bay run`'s resource-limit and storage flags.

use bay_runtime::RunOptions;
use bay_runtime::spec::{MountSpec, parse_bytes};
use clap::Args;

/// The resource and storage flags of `docker run`.
#[derive(Args, Debug, Default)]
pub struct ResourceArgs {
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short, long)]
    memory: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<f64>,
    /// Bind mount a volume (SRC:DST[:ro])
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    volume: Vec<String>,
}

impl ResourceArgs {
    /// Writes these flags into `opts`.
    pub fn apply(&self, opts: &mut RunOptions) -> anyhow::Result<()> {
        opts.resources.memory = self.memory.as_deref().map(parse_bytes).transpose()?;
        opts.resources.pids_limit = self.pids_limit;
        opts.resources.cpus = self.cpus;
        for v in &self.volume {
            opts.mounts.push(MountSpec::parse_volume(v)?);
        }
        Ok(())
    }
}
