//! `bay run`'s resource-limit and storage flags. Values are parsed here
//! (docker's spellings: `512m`, `-1`); docker's range checks and error texts
//! are the runtime's (`bay_runtime::spec::resources`), so `bay run` and the
//! library refuse the same things.

use anyhow::Context as _;
use bay_runtime::RunOptions;
use bay_runtime::spec::{MountSpec, parse_bytes};
use clap::Args;

/// The resource and storage flags of `docker run`.
#[derive(Args, Debug, Default)]
pub struct ResourceArgs {
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short, long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long, allow_hyphen_values = true, value_name = "BYTES")]
    memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "BYTES")]
    memory_reservation: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, allow_hyphen_values = true)]
    cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long)]
    cpu_period: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Bind mount a volume (SRC:DST[:ro])
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    volume: Vec<String>,
}

/// `--memory-swap`: bytes, or `-1` for unlimited swap.
fn parse_swap(s: &str) -> anyhow::Result<i64> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    let n = parse_bytes(s)?;
    i64::try_from(n).with_context(|| format!("invalid --memory-swap value {s:?}: too large"))
}

impl ResourceArgs {
    /// Writes these flags into `opts`.
    pub fn apply(&self, opts: &mut RunOptions) -> anyhow::Result<()> {
        let r = &mut opts.resources;
        r.memory = self.memory.as_deref().map(parse_bytes).transpose()?;
        r.memory_swap = self.memory_swap.as_deref().map(parse_swap).transpose()?;
        r.memory_reservation = self
            .memory_reservation
            .as_deref()
            .map(parse_bytes)
            .transpose()?;
        r.pids_limit = self.pids_limit;
        r.cpus = self.cpus;
        r.cpu_shares = match self.cpu_shares {
            Some(s) if s < 0 => {
                anyhow::bail!("invalid --cpu-shares value {s}: shares cannot be negative")
            }
            Some(s) => Some(s.unsigned_abs()),
            None => None,
        };
        r.cpu_period = self.cpu_period;
        r.cpu_quota = self.cpu_quota;
        r.cpuset_cpus = self.cpuset_cpus.clone();
        r.cpuset_mems = self.cpuset_mems.clone();
        for v in &self.volume {
            opts.mounts.push(MountSpec::parse_volume(v)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        res: ResourceArgs,
    }

    fn opts(args: &[&str]) -> anyhow::Result<RunOptions> {
        let cli = Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))?;
        let mut o = RunOptions::default();
        cli.res.apply(&mut o)?;
        Ok(o)
    }

    #[test]
    fn resource_flags_parse_docker_spellings() {
        let o = opts(&[
            "-m",
            "64m",
            "--memory-swap",
            "1g",
            "--memory-reservation",
            "32m",
            "-c",
            "512",
            "--cpu-period",
            "50000",
            "--cpu-quota",
            "-1",
            "--cpuset-cpus",
            "0-1",
            "--cpuset-mems",
            "0",
        ])
        .unwrap();
        let r = &o.resources;
        assert_eq!(r.memory, Some(64 << 20));
        assert_eq!(r.memory_swap, Some(1 << 30));
        assert_eq!(r.memory_reservation, Some(32 << 20));
        assert_eq!(r.cpu_shares, Some(512));
        assert_eq!((r.cpu_period, r.cpu_quota), (Some(50_000), Some(-1)));
        assert_eq!(r.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(r.cpuset_mems.as_deref(), Some("0"));
        assert_eq!(
            opts(&["--memory-swap", "-1"])
                .unwrap()
                .resources
                .memory_swap,
            Some(-1)
        );
        assert!(opts(&["--memory-swap", "lots"]).is_err());
        assert!(opts(&["--cpu-shares", "-5"]).is_err());
    }
}
