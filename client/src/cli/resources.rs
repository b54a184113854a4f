//! `bay run`'s resource-limit and storage flags (and `--env-file`). Values are parsed here
//! (docker's spellings: `512m`, `-1`); docker's range checks and error texts
//! are the runtime's (`bay_runtime::spec::resources`), so `bay run` and the
//! library refuse the same things.

use std::path::PathBuf;

use anyhow::Context as _;
use bay_runtime::RunOptions;
use bay_runtime::spec::{MountSpec, Ulimit, parse_bytes};
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
    /// Bind mount a volume (/HOST:/CTR, NAME:/CTR or /CTR, with :ro, :rw, :nocopy)
    #[arg(short, long = "volume", value_name = "[SRC:]DST[:OPTS]")]
    volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=bind|volume|tmpfs,source=..,target=..)
    #[arg(long = "mount", value_name = "mount")]
    mount: Vec<String>,
    /// Mount a tmpfs directory (/PATH[:size=64m,mode=1777])
    #[arg(long = "tmpfs", value_name = "PATH[:OPTS]")]
    tmpfs: Vec<String>,
    /// Ulimit options (NAME=SOFT[:HARD])
    #[arg(long = "ulimit", value_name = "ulimit")]
    ulimit: Vec<String>,
    /// Size of /dev/shm
    #[arg(long, value_name = "bytes")]
    shm_size: Option<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
}

/// docker's env-file format (the CLI's `parseKeyValueFile`): one
/// `KEY=VALUE` per line, the value taken verbatim; leading blanks dropped;
/// empty lines and lines starting with `#` skipped; a bare `KEY` takes
/// `lookup(KEY)` and is left out when that is unset; a UTF-8 BOM at the
/// start is ignored.
pub fn parse_env_file(
    bytes: &[u8],
    name: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<String>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = Vec::new();
    for (n, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|_| {
            anyhow::anyhow!(
                "env file {name} contains invalid utf8 bytes at line {}",
                n + 1
            )
        })?;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.contains(char::is_whitespace) {
            anyhow::bail!("poorly formatted environment: variable '{key}' contains whitespaces");
        }
        if key.is_empty() {
            anyhow::bail!("poorly formatted environment: no variable name on line '{line}'");
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => out.extend(lookup(key).map(|v| format!("{key}={v}"))),
        }
    }
    Ok(out)
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
            let m = MountSpec::parse_volume(v)?;
            // docker creates a missing host directory for `-v` (not for --mount).
            if let MountSpec::Bind { source, .. } = &m
                && !source.exists()
            {
                std::fs::create_dir_all(source)
                    .with_context(|| format!("cannot create {} for -v", source.display()))?;
            }
            opts.mounts.push(m);
        }
        for v in &self.mount {
            let m = MountSpec::parse_mount(v)?;
            if let MountSpec::Bind { source, .. } = &m
                && !source.exists()
            {
                anyhow::bail!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    source.display()
                );
            }
            opts.mounts.push(m);
        }
        for t in &self.tmpfs {
            opts.mounts.push(MountSpec::parse_tmpfs(t)?);
        }
        for u in &self.ulimit {
            opts.ulimits.push(u.parse::<Ulimit>()?);
        }
        opts.shm_size = self.shm_size.as_deref().map(parse_bytes).transpose()?;
        // --env-file first, so -e (already in opts.env) overrides it.
        let mut from_files = Vec::new();
        for f in &self.env_file {
            let bytes = std::fs::read(f)
                .with_context(|| format!("open {}: cannot read the env file", f.display()))?;
            from_files.extend(parse_env_file(&bytes, &f.display().to_string(), |k| {
                std::env::var(k).ok()
            })?);
        }
        opts.env.splice(0..0, from_files);
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

    #[test]
    fn env_files_parse_like_docker() {
        let text = b"\xEF\xBB\xBFA=1\n  # comment\n\n  B = x \nC=has=equals and spaces \r\nHOME_SET\nUNSET_ONE\nE=\n";
        let got = parse_env_file(text, "f", |k| (k == "HOME_SET").then(|| "/h".to_owned()));
        // `B ` has a blank in the key: docker refuses the whole file.
        let e = got.unwrap_err().to_string();
        assert_eq!(
            e,
            "poorly formatted environment: variable 'B ' contains whitespaces"
        );
        let text =
            b"\xEF\xBB\xBFA=1\n  # comment\n\n  B= x \nC=has=equals \r\nHOME_SET\nUNSET_ONE\nE=\n";
        let got =
            parse_env_file(text, "f", |k| (k == "HOME_SET").then(|| "/h".to_owned())).unwrap();
        assert_eq!(
            got,
            ["A=1", "B= x ", "C=has=equals ", "HOME_SET=/h", "E="],
            "values verbatim, bare keys from the environment"
        );
        assert!(parse_env_file(b"=x\n", "f", |_| None).is_err());
        let e = parse_env_file(b"A=1\nB=\xff\n", "f", |_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "env file f contains invalid utf8 bytes at line 2"
        );
    }

    #[test]
    fn storage_flags_become_mounts_ulimits_and_shm() {
        let o = opts(&[
            "--tmpfs",
            "/run:size=1m",
            "--mount",
            "type=volume,source=data,target=/data",
            "-v",
            "named:/n:ro",
            "--ulimit",
            "nofile=100:200",
            "--shm-size",
            "128m",
        ])
        .unwrap();
        assert_eq!(o.mounts.len(), 3);
        assert_eq!(o.mounts[0].target(), "/n");
        assert_eq!(o.ulimits[0].soft, 100);
        assert_eq!(o.shm_size, Some(128 << 20));
        let e = opts(&["--mount", "type=bind,source=/no/such/dir,target=/x"]).unwrap_err();
        assert!(
            e.to_string().contains("bind source path does not exist"),
            "{e}"
        );
    }
}
