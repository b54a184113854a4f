//! `RunOptions`: the `docker run` flags that shape a container, as typed
//! values, with parsers for their command-line spellings so the CLI can hand
//! strings straight from clap.

use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::runtime::PosixRlimitType;

use super::SpecError;

/// The flags of `bay run` that shape the runtime spec. `Default` is a plain
/// `docker run IMAGE`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// `-e KEY=VALUE` (the CLI resolves bare `-e KEY` and `--env-file`).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u user[:group]` (names are looked up in the image's `/etc/passwd`).
    pub user: Option<String>,
    /// `-h`.
    pub hostname: Option<String>,
    /// `--entrypoint` (`Some(vec![])` for `--entrypoint ""`, which resets it).
    pub entrypoint: Option<Vec<String>>,
    /// The command after the image name (replaces the image's `Cmd`).
    pub cmd: Vec<String>,
    /// `-t`.
    pub tty: bool,
    /// `--read-only`.
    pub read_only: bool,
    /// `--cap-add` (names with or without `CAP_`, or `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--security-opt`, parsed.
    pub security: SecurityOpts,
    /// Resource limits.
    pub resources: Resources,
    /// `--network`.
    pub network: NetworkMode,
    /// `-p`, `-P`, `--dns*`, `--add-host` (see [`crate::network`]).
    pub network_options: crate::network::NetworkOptions,
    /// `-v`, `--mount`, `--tmpfs`.
    pub mounts: Vec<MountSpec>,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size` (default 64 MiB).
    pub shm_size: Option<u64>,
}

/// `-m`, `--memory-swap`, `--memory-reservation`, `--cpus`, `--cpu-shares`,
/// `--cpu-period`, `--cpu-quota`, `--pids-limit`, `--cpuset-cpus`,
/// `--cpuset-mems`. Checked and mapped to cgroup values (docker's rules and
/// error texts) in [`super::resources`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Memory plus swap in bytes; `-1` is unlimited swap, `0` unset. Docker's
    /// default with `-m` is twice the memory limit.
    pub memory_swap: Option<i64>,
    /// Soft memory limit in bytes (v1 `memory.soft_limit_in_bytes`, v2
    /// `memory.low`).
    pub memory_reservation: Option<u64>,
    /// CPUs (quota over a 100 ms period).
    pub cpus: Option<f64>,
    /// Relative CPU weight (cgroup v1 shares, 2–262144; v2 `cpu.weight`
    /// converted as runc does).
    pub cpu_shares: Option<u64>,
    /// CFS period in microseconds (1000–1000000).
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds per period (negative: unlimited).
    pub cpu_quota: Option<i64>,
    /// Maximum number of tasks; `0` or negative is unlimited.
    pub pids_limit: Option<i64>,
    /// CPUs allowed, e.g. `0-1,3`.
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed, e.g. `0`.
    pub cpuset_mems: Option<String>,
}

/// `--network`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// Docker's default: a private network namespace with `lo` and an
    /// `eth0` on the `bay0` bridge (see [`crate::network`]).
    #[default]
    Bridge,
    /// A private network namespace with only `lo`, up.
    None,
    /// The host's network namespace.
    Host,
}

impl FromStr for NetworkMode {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s {
            "bridge" | "default" => Ok(Self::Bridge),
            "none" => Ok(Self::None),
            "host" => Ok(Self::Host),
            other => Err(SpecError::BadOption {
                flag: "--network",
                value: other.to_owned(),
                reason: "expected bridge, none or host",
            }),
        }
    }
}

/// The seccomp part of `--security-opt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompProfile {
    /// Docker's default profile.
    #[default]
    Default,
    /// `seccomp=unconfined`.
    Unconfined,
    /// `seccomp=PROFILE.json`: the file's contents (docker format).
    Json(String),
}

/// `--security-opt` values we support.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    /// The seccomp profile.
    pub seccomp: SeccompProfile,
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
}

impl SecurityOpts {
    /// Parses `--security-opt` values (`seccomp=unconfined`,
    /// `seccomp=/path.json`, `no-new-privileges[=true|false]`, and the old
    /// `key:value` spelling). Profile files are read here.
    pub fn parse<S: AsRef<str>>(opts: &[S]) -> Result<Self, SpecError> {
        let mut out = Self::default();
        for opt in opts {
            let opt = opt.as_ref();
            let (key, value) = match opt.split_once(['=', ':']) {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            match (key, value) {
                ("no-new-privileges", None | Some("true")) => out.no_new_privileges = true,
                ("no-new-privileges", Some("false")) => out.no_new_privileges = false,
                ("seccomp", Some("unconfined")) => out.seccomp = SeccompProfile::Unconfined,
                ("seccomp", Some("builtin" | "default")) => out.seccomp = SeccompProfile::Default,
                ("seccomp", Some(path)) => {
                    let json =
                        std::fs::read_to_string(path).map_err(|source| SpecError::ReadProfile {
                            path: PathBuf::from(path),
                            source,
                        })?;
                    out.seccomp = SeccompProfile::Json(json);
                }
                _ => {
                    return Err(SpecError::BadOption {
                        flag: "--security-opt",
                        value: opt.to_owned(),
                        reason: "supported: seccomp=unconfined|PROFILE.json, no-new-privileges",
                    });
                }
            }
        }
        Ok(out)
    }
}

/// A mount requested with `-v`, `--mount` or `--tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A recursive bind mount of a host path (named volumes are resolved to
    /// their host directory by the caller).
    Bind {
        /// Host path (absolute).
        source: PathBuf,
        /// Container path (absolute).
        target: String,
        /// `:ro`.
        read_only: bool,
    },
    /// A named (or, with no name, anonymous) volume; the caller turns it
    /// into a [`MountSpec::Bind`] of the volume's directory with
    /// [`crate::volume::VolumeStore::resolve`] before building the spec.
    Volume {
        /// The volume's name (`None`: a new anonymous volume).
        name: Option<String>,
        /// Container path (absolute).
        target: String,
        /// `:ro`.
        read_only: bool,
        /// `:nocopy` (do not fill a new volume from the image).
        no_copy: bool,
    },
    /// A tmpfs.
    Tmpfs {
        /// Container path (absolute).
        target: String,
        /// `size=` in bytes.
        size: Option<u64>,
        /// `mode=` (octal).
        mode: Option<u32>,
    },
}

fn check_target(flag: &'static str, t: &str) -> Result<(), SpecError> {
    if !t.starts_with('/') || t.split('/').any(|c| c == "..") {
        return Err(SpecError::BadOption {
            flag,
            value: t.to_owned(),
            reason: "container path must be absolute without `..`",
        });
    }
    Ok(())
}

impl MountSpec {
    /// Parses `-v /host:/ctr[:OPTS]`, `-v NAME:/ctr[:OPTS]` (a named
    /// volume) and `-v /ctr` (an anonymous volume), as docker does. `OPTS`
    /// is a comma list of `ro`, `rw`, `nocopy`, and the SELinux labels `z`/`Z`
    /// (accepted and ignored: no SELinux here).
    pub fn parse_volume(s: &str) -> Result<Self, SpecError> {
        let bad = |reason| SpecError::BadOption {
            flag: "-v",
            value: s.to_owned(),
            reason,
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [dst] => (None, *dst, ""),
            [src, dst] => (Some(*src), *dst, ""),
            [src, dst, opts] => (Some(*src), *dst, *opts),
            _ => return Err(bad("expected [SRC:]/container[:ro|rw|nocopy]")),
        };
        if src.is_some_and(str::is_empty) {
            return Err(bad("empty source"));
        }
        check_target("-v", dst)?;
        let (mut read_only, mut no_copy) = (false, false);
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => read_only = true,
                "rw" => read_only = false,
                "nocopy" => no_copy = true,
                "z" | "Z" => {}
                _ => return Err(bad("options: ro, rw, nocopy")),
            }
        }
        match src {
            Some(src) if src.starts_with('/') => {
                if no_copy {
                    return Err(bad("nocopy applies to volumes, not host paths"));
                }
                Ok(Self::Bind {
                    source: PathBuf::from(src),
                    target: dst.to_owned(),
                    read_only,
                })
            }
            src => Ok(Self::Volume {
                name: src.map(str::to_owned),
                target: dst.to_owned(),
                read_only,
                no_copy,
            }),
        }
    }

    /// Parses `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly]
    /// [,volume-nocopy][,tmpfs-size=…][,tmpfs-mode=…]` (docker's keys and
    /// aliases: `src`, `dst`/`destination`, `ro`).
    pub fn parse_mount(s: &str) -> Result<Self, SpecError> {
        let bad = |reason| SpecError::BadOption {
            flag: "--mount",
            value: s.to_owned(),
            reason,
        };
        let (mut typ, mut source, mut target) = ("volume", None, None);
        let (mut read_only, mut no_copy, mut size, mut mode) = (false, false, None, None);
        let flag = |v: Option<&str>| match v {
            None | Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(_) => Err(bad("boolean options take true or false")),
        };
        for field in s.split(',').filter(|f| !f.is_empty()) {
            let (k, v) = match field.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (field, None),
            };
            match (k.to_ascii_lowercase().as_str(), v) {
                ("type", Some(t)) => typ = t,
                ("source" | "src", Some(v)) => source = Some(v),
                ("target" | "dst" | "destination", Some(v)) => target = Some(v),
                ("readonly" | "ro", v) => read_only = flag(v)?,
                ("volume-nocopy", v) => no_copy = flag(v)?,
                ("tmpfs-size", Some(v)) => {
                    size = Some(parse_bytes(v).map_err(|_| bad("bad tmpfs-size"))?)
                }
                ("tmpfs-mode", Some(v)) => {
                    mode = Some(u32::from_str_radix(v, 8).map_err(|_| bad("tmpfs-mode is octal"))?)
                }
                ("bind-propagation" | "consistency" | "volume-driver", Some(_)) => {}
                _ => return Err(bad("unknown or malformed field")),
            }
        }
        let target = target.ok_or(bad("target is required"))?;
        check_target("--mount", target)?;
        match typ {
            "bind" => {
                let source = source.ok_or(bad("source is required for type=bind"))?;
                if !source.starts_with('/') {
                    return Err(bad("a bind source must be an absolute host path"));
                }
                Ok(Self::Bind {
                    source: PathBuf::from(source),
                    target: target.to_owned(),
                    read_only,
                })
            }
            "volume" => Ok(Self::Volume {
                name: source.map(str::to_owned),
                target: target.to_owned(),
                read_only,
                no_copy,
            }),
            "tmpfs" => {
                if source.is_some() {
                    return Err(bad("type=tmpfs takes no source"));
                }
                Ok(Self::Tmpfs {
                    target: target.to_owned(),
                    size,
                    mode,
                })
            }
            _ => Err(bad("type must be bind, volume or tmpfs")),
        }
    }

    /// Parses `--tmpfs /path[:size=64m,mode=1777]`.
    pub fn parse_tmpfs(s: &str) -> Result<Self, SpecError> {
        let (target, opts) = s.split_once(':').unwrap_or((s, ""));
        check_target("--tmpfs", target)?;
        let mut size = None;
        let mut mode = None;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            let bad = SpecError::BadOption {
                flag: "--tmpfs",
                value: s.to_owned(),
                reason: "options: size=BYTES, mode=OCTAL",
            };
            match o.split_once('=') {
                Some(("size", v)) => size = Some(parse_bytes(v).map_err(|_| bad)?),
                Some(("mode", v)) => mode = Some(u32::from_str_radix(v, 8).map_err(|_| bad)?),
                _ => return Err(bad),
            }
        }
        Ok(Self::Tmpfs {
            target: target.to_owned(),
            size,
            mode,
        })
    }

    /// The container path.
    pub fn target(&self) -> &str {
        match self {
            MountSpec::Bind { target, .. }
            | MountSpec::Volume { target, .. }
            | MountSpec::Tmpfs { target, .. } => target,
        }
    }
}

/// `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    /// Which limit.
    pub kind: PosixRlimitType,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

impl FromStr for Ulimit {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = |reason| SpecError::BadOption {
            flag: "--ulimit",
            value: s.to_owned(),
            reason,
        };
        let (name, vals) = s.split_once('=').ok_or(bad("expected name=soft[:hard]"))?;
        let kind: PosixRlimitType = serde_json::from_value(serde_json::Value::String(format!(
            "RLIMIT_{}",
            name.to_uppercase()
        )))
        .map_err(|_| bad("unknown limit name"))?;
        let num = |v: &str| {
            if v == "-1" || v == "unlimited" {
                Ok(u64::MAX)
            } else {
                v.parse::<u64>().map_err(|_| bad("limits must be numbers"))
            }
        };
        let (soft, hard) = match vals.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(vals)?, num(vals)?),
        };
        if soft > hard {
            return Err(bad("soft limit exceeds hard limit"));
        }
        Ok(Self { kind, soft, hard })
    }
}

/// Parses docker's byte sizes: `1024`, `512k`, `32m`, `1g` (binary units,
/// optional trailing `b`).
pub fn parse_bytes(s: &str) -> Result<u64, SpecError> {
    let bad = || SpecError::BadOption {
        flag: "size",
        value: s.to_owned(),
        reason: "expected a number with an optional k, m or g suffix",
    };
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if !(n.is_finite() && n >= 0.0) {
        return Err(bad());
    }
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_bytes("32m").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-1m").is_err());
    }

    #[test]
    fn parses_volumes_and_tmpfs() {
        assert_eq!(
            MountSpec::parse_volume("/srv/data:/data:ro").unwrap(),
            MountSpec::Bind {
                source: "/srv/data".into(),
                target: "/data".into(),
                read_only: true
            }
        );
        assert_eq!(
            MountSpec::parse_volume("named:/data:ro,nocopy").unwrap(),
            MountSpec::Volume {
                name: Some("named".into()),
                target: "/data".into(),
                read_only: true,
                no_copy: true
            }
        );
        assert_eq!(
            MountSpec::parse_volume("/data").unwrap(),
            MountSpec::Volume {
                name: None,
                target: "/data".into(),
                read_only: false,
                no_copy: false
            }
        );
        assert!(MountSpec::parse_volume("/a:/b:nocopy").is_err());
        assert!(MountSpec::parse_volume("a:/b:bogus").is_err());
        assert!(MountSpec::parse_volume(":/b").is_err());
        assert_eq!(
            MountSpec::parse_mount("type=bind,src=/srv,dst=/data,readonly").unwrap(),
            MountSpec::Bind {
                source: "/srv".into(),
                target: "/data".into(),
                read_only: true
            }
        );
        assert_eq!(
            MountSpec::parse_mount("type=volume,source=v1,target=/v,volume-nocopy=true").unwrap(),
            MountSpec::Volume {
                name: Some("v1".into()),
                target: "/v".into(),
                read_only: false,
                no_copy: true
            }
        );
        assert_eq!(
            MountSpec::parse_mount("type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=700")
                .unwrap(),
            MountSpec::Tmpfs {
                target: "/t".into(),
                size: Some(1 << 20),
                mode: Some(0o700)
            }
        );
        for bad in [
            "type=bind,target=/x",
            "type=bind,source=rel,target=/x",
            "type=tmpfs,source=x,target=/x",
            "type=nfs,target=/x",
            "source=v",
            "type=volume,target=/x,readonly=maybe",
            "type=volume,target=/x,bogus=1",
        ] {
            assert!(MountSpec::parse_mount(bad).is_err(), "{bad}");
        }
        assert!(MountSpec::parse_volume("/a:relative").is_err());
        assert!(MountSpec::parse_volume("/a:/x/../etc").is_err());
        assert_eq!(
            MountSpec::parse_tmpfs("/run:size=64m,mode=1777").unwrap(),
            MountSpec::Tmpfs {
                target: "/run".into(),
                size: Some(64 << 20),
                mode: Some(0o1777)
            }
        );
    }

    #[test]
    fn parses_security_opts_and_ulimits() {
        let s = SecurityOpts::parse(&["no-new-privileges", "seccomp=unconfined"]).unwrap();
        assert!(s.no_new_privileges);
        assert_eq!(s.seccomp, SeccompProfile::Unconfined);
        assert!(SecurityOpts::parse(&["apparmor=x"]).is_err());
        assert!(SecurityOpts::parse(&["seccomp=/nonexistent/profile.json"]).is_err());
        let u: Ulimit = "nofile=1024:2048".parse().unwrap();
        assert_eq!(
            (u.kind, u.soft, u.hard),
            (PosixRlimitType::RlimitNofile, 1024, 2048)
        );
        assert!("nofile=10:5".parse::<Ulimit>().is_err());
        assert!("bogus=1".parse::<Ulimit>().is_err());
        assert_eq!("none".parse::<NetworkMode>().unwrap(), NetworkMode::None);
    }
}
