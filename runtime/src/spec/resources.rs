//! `docker run`'s resource flags ([`Resources`]) checked the way the docker
//! daemon checks them (`verifyPlatformContainerResources` and
//! `adaptContainerSettings` in moby), with its error texts, and turned into
//! the OCI `linux.resources` that [`crate::cgroups`] writes.
//!
//! What docker does, and so do we:
//! - `-m` below 6 MB is refused; `--memory-swap` is memory **plus** swap, so
//!   it must be at least `-m`, needs `-m`, defaults to twice `-m`, and `-1`
//!   means unlimited swap (`0` means unset).
//! - `--memory-reservation` (a soft limit) is at least 6 MB and at most `-m`.
//! - `--cpu-shares` outside 2–262144 is clamped (a warning), `0` is unset.
//! - `--cpu-period` lies in 1 ms–1 s, `--cpu-quota` is at least 1 ms (or
//!   negative: unlimited); neither goes with `--cpus`, which is
//!   0.01–(number of CPUs) (`0` is unset).
//! - `--cpuset-cpus`/`--cpuset-mems` are lists like `0-2,4` and must name
//!   online CPUs/memory nodes only.

use std::collections::BTreeSet;

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroup, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder,
};

use super::{Resources, SpecError};

/// docker's smallest `-m` and `--memory-reservation` (`linuxMinMemory`).
pub const MIN_MEMORY: u64 = 6 << 20;
/// The cgroup v1 range of `cpu.shares` that docker clamps to.
pub const CPU_SHARES: (u64, u64) = (2, 262_144);

/// A resource flag docker would refuse; the messages are docker's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// `-m` below 6 MB.
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooSmall,
    /// `--memory-reservation` below 6 MB.
    #[error("Minimum memory reservation allowed is 6MB")]
    ReservationTooSmall,
    /// `--memory-swap` below `-m`.
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    /// `--memory-swap` without `-m`.
    #[error("You should always set the Memory limit when using Memoryswap limit, see usage")]
    SwapWithoutMemory,
    /// `-m` below `--memory-reservation`.
    #[error("Minimum memory limit can not be less than memory reservation limit, see usage")]
    MemoryBelowReservation,
    /// `--cpu-period` outside 1 ms–1 s.
    #[error("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")]
    CpuPeriodRange,
    /// `--cpu-quota` between 0 and 1 ms.
    #[error("CPU cfs quota can not be less than 1ms (i.e. 1000)")]
    CpuQuotaTooSmall,
    /// `--cpus` with `--cpu-period`.
    #[error("Conflicting options: Nano CPUs and CPU Period cannot both be set")]
    CpusAndPeriod,
    /// `--cpus` with `--cpu-quota`.
    #[error("Conflicting options: Nano CPUs and CPU Quota cannot both be set")]
    CpusAndQuota,
    /// `--cpus` outside 0.01–N.
    #[error("Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available")]
    CpusRange {
        /// CPUs on this host.
        cpus: usize,
    },
    /// `--cpuset-cpus` is not a list.
    #[error("Invalid value {value} for cpuset cpus: invalid format: {value}")]
    CpusetCpusFormat {
        /// The value given.
        value: String,
    },
    /// `--cpuset-cpus` names CPUs that are not online.
    #[error("Requested CPUs are not available - requested {requested}, available: {available}")]
    CpusUnavailable {
        /// The value given.
        requested: String,
        /// The host's online CPUs.
        available: String,
    },
    /// `--cpuset-mems` is not a list.
    #[error("Invalid value {value} for cpuset mems: invalid format: {value}")]
    CpusetMemsFormat {
        /// The value given.
        value: String,
    },
    /// `--cpuset-mems` names memory nodes that are not online.
    #[error(
        "Requested memory nodes are not available - requested {requested}, available: {available}"
    )]
    MemsUnavailable {
        /// The value given.
        requested: String,
        /// The host's online nodes.
        available: String,
    },
}

/// Parses a kernel/docker CPU list (`0-2,4`; `""` is empty), as moby's
/// `parsers.ParseUintList`: `None` when malformed.
pub fn parse_cpu_list(s: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    if s.is_empty() {
        return Some(out);
    }
    for part in s.split(',') {
        let num = |t: &str| -> Option<u32> {
            // Atoi: digits only (no sign, no spaces).
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        match part.split_once('-') {
            None => {
                out.insert(num(part)?);
            }
            Some((a, b)) => {
                let (lo, hi) = (num(a)?, num(b)?);
                // A range is bounded so a typo cannot allocate the world.
                if hi < lo || hi - lo > 65_536 {
                    return None;
                }
                out.extend(lo..=hi);
            }
        }
    }
    Some(out)
}

/// The host's online CPUs (`/sys/devices/system/cpu/online`, e.g. `0-1`).
fn online(path: &str, fallback: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| fallback.to_owned())
}

/// What the host offers, for the checks (read once per spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCpus {
    /// Online CPUs as a list (`0-1`).
    pub cpus: String,
    /// Online memory nodes as a list (`0`).
    pub mems: String,
    /// How many CPUs this process may use (docker's `NumCPU`).
    pub count: usize,
}

impl HostCpus {
    /// This host's.
    pub fn detect() -> Self {
        Self {
            cpus: online("/sys/devices/system/cpu/online", "0"),
            mems: online("/sys/devices/system/node/online", "0"),
            count: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

fn check_set(
    requested: &str,
    available: &str,
    format: impl Fn(String) -> ResourceError,
    unavailable: impl Fn(String, String) -> ResourceError,
) -> Result<(), ResourceError> {
    let want = parse_cpu_list(requested).ok_or_else(|| format(requested.to_owned()))?;
    let have = parse_cpu_list(available).unwrap_or_default();
    if want.is_subset(&have) {
        Ok(())
    } else {
        Err(unavailable(requested.to_owned(), available.to_owned()))
    }
}

/// Checks `r` as docker does. On success the values are fit for cgroups.
pub fn validate(r: &Resources, host: &HostCpus) -> Result<(), ResourceError> {
    let memory = r.memory.filter(|m| *m > 0);
    let swap = r.memory_swap.filter(|s| *s != 0);
    let reservation = r.memory_reservation.filter(|m| *m > 0);
    if memory.is_some_and(|m| m < MIN_MEMORY) {
        return Err(ResourceError::MemoryTooSmall);
    }
    match (memory, swap) {
        (Some(m), Some(s)) if s > 0 && (s as u64) < m => {
            return Err(ResourceError::SwapBelowMemory);
        }
        (None, Some(s)) if s > 0 => return Err(ResourceError::SwapWithoutMemory),
        _ => {}
    }
    if reservation.is_some_and(|m| m < MIN_MEMORY) {
        return Err(ResourceError::ReservationTooSmall);
    }
    if let (Some(m), Some(res)) = (memory, reservation)
        && m < res
    {
        return Err(ResourceError::MemoryBelowReservation);
    }
    if let Some(p) = r.cpu_period.filter(|p| *p != 0)
        && !(1000..=1_000_000).contains(&p)
    {
        return Err(ResourceError::CpuPeriodRange);
    }
    if r.cpu_quota.is_some_and(|q| q > 0 && q < 1000) {
        return Err(ResourceError::CpuQuotaTooSmall);
    }
    if let Some(cpus) = r.cpus.filter(|c| *c != 0.0) {
        if r.cpu_period.is_some_and(|p| p > 0) {
            return Err(ResourceError::CpusAndPeriod);
        }
        if r.cpu_quota.is_some_and(|q| q > 0) {
            return Err(ResourceError::CpusAndQuota);
        }
        if !(cpus.is_finite() && cpus >= 0.01 && cpus <= host.count as f64) {
            return Err(ResourceError::CpusRange { cpus: host.count });
        }
    }
    if let Some(set) = r.cpuset_cpus.as_deref().filter(|s| !s.is_empty()) {
        check_set(
            set,
            &host.cpus,
            |value| ResourceError::CpusetCpusFormat { value },
            |requested, available| ResourceError::CpusUnavailable {
                requested,
                available,
            },
        )?;
    }
    if let Some(set) = r.cpuset_mems.as_deref().filter(|s| !s.is_empty()) {
        check_set(
            set,
            &host.mems,
            |value| ResourceError::CpusetMemsFormat { value },
            |requested, available| ResourceError::MemsUnavailable {
                requested,
                available,
            },
        )?;
    }
    Ok(())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Validates `r` against `host` and builds `linux.resources` with the
/// device rules.
pub fn linux_resources(
    r: &Resources,
    host: &HostCpus,
    devices: Vec<LinuxDeviceCgroup>,
) -> Result<LinuxResources, SpecError> {
    validate(r, host)?;
    let mut res = LinuxResourcesBuilder::default().devices(devices);

    let memory = r.memory.filter(|m| *m > 0);
    let reservation = r.memory_reservation.filter(|m| *m > 0);
    // docker: unset (or 0) swap with -m is twice -m; -1 is unlimited.
    let swap = match (memory, r.memory_swap.filter(|s| *s != 0)) {
        (_, Some(s)) if s < 0 => Some(-1),
        (Some(_), Some(s)) => Some(s),
        (Some(m), None) => Some(to_i64(m.saturating_mul(2))),
        (None, _) => None,
    };
    if memory.is_some() || reservation.is_some() || swap.is_some() {
        let mut m = LinuxMemoryBuilder::default();
        if let Some(limit) = memory {
            m = m.limit(to_i64(limit));
        }
        if let Some(s) = swap {
            m = m.swap(s);
        }
        if let Some(res) = reservation {
            m = m.reservation(to_i64(res));
        }
        res = res.memory(m.build()?);
    }

    let shares = r.cpu_shares.filter(|s| *s != 0).map(|s| {
        let clamped = s.clamp(CPU_SHARES.0, CPU_SHARES.1);
        if clamped != s {
            tracing::warn!(
                requested = s,
                applied = clamped,
                "--cpu-shares out of range; clamped like docker"
            );
        }
        clamped
    });
    let (mut quota, mut period) = (
        r.cpu_quota.filter(|q| *q != 0),
        r.cpu_period.filter(|p| *p != 0),
    );
    if let Some(cpus) = r.cpus.filter(|c| *c != 0.0) {
        // docker: NanoCPUs over a 100 ms period.
        period = Some(100_000);
        quota = Some((cpus * 100_000.0).round() as i64);
    }
    let cpuset = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let (cpus, mems) = (cpuset(&r.cpuset_cpus), cpuset(&r.cpuset_mems));
    if shares.is_some() || quota.is_some() || period.is_some() || cpus.is_some() || mems.is_some() {
        let mut c = LinuxCpuBuilder::default();
        if let Some(s) = shares {
            c = c.shares(s);
        }
        if let Some(q) = quota {
            c = c.quota(if q < 0 { -1 } else { q });
        }
        if let Some(p) = period {
            c = c.period(p);
        }
        if let Some(set) = cpus {
            c = c.cpus(set);
        }
        if let Some(set) = mems {
            c = c.mems(set);
        }
        res = res.cpu(c.build()?);
    }
    if let Some(p) = r.pids_limit
        && p > 0
    {
        res = res.pids(LinuxPidsBuilder::default().limit(p).build()?);
    }
    Ok(res.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostCpus {
        HostCpus {
            cpus: "0-1".into(),
            mems: "0".into(),
            count: 2,
        }
    }

    fn build(r: Resources) -> Result<LinuxResources, SpecError> {
        linux_resources(&r, &host(), Vec::new())
    }

    fn err(r: Resources) -> String {
        match build(r) {
            Err(SpecError::Resource(e)) => e.to_string(),
            other => panic!("expected a resource error, got {other:?}"),
        }
    }

    #[test]
    fn cpu_lists_parse_like_moby() {
        assert_eq!(
            parse_cpu_list("0-2,4")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [0, 1, 2, 4]
        );
        assert_eq!(parse_cpu_list("").unwrap().len(), 0);
        for bad in ["a", "1-", "-1", "2-1", "0,,1", " 1", "+1", "0-99999999"] {
            assert!(parse_cpu_list(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn swap_follows_docker() {
        let mem = |m: u64, s: Option<i64>| {
            build(Resources {
                memory: Some(m),
                memory_swap: s,
                ..Default::default()
            })
            .unwrap()
            .memory()
            .unwrap()
        };
        let m = mem(32 << 20, None);
        assert_eq!((m.limit(), m.swap()), (Some(32 << 20), Some(64 << 20)));
        assert_eq!(mem(32 << 20, Some(0)).swap(), Some(64 << 20), "0 is unset");
        assert_eq!(mem(32 << 20, Some(-1)).swap(), Some(-1), "unlimited");
        assert_eq!(
            mem(32 << 20, Some(32 << 20)).swap(),
            Some(32 << 20),
            "no swap"
        );
        assert_eq!(mem(32 << 20, Some(100 << 20)).swap(), Some(100 << 20));
        assert_eq!(
            err(Resources {
                memory: Some(32 << 20),
                memory_swap: Some(16 << 20),
                ..Default::default()
            }),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            err(Resources {
                memory_swap: Some(16 << 20),
                ..Default::default()
            }),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        // -1 alone is fine (nothing to limit).
        assert!(
            build(Resources {
                memory_swap: Some(-1),
                ..Default::default()
            })
            .is_ok()
        );
        assert_eq!(
            err(Resources {
                memory: Some(4 << 20),
                ..Default::default()
            }),
            "Minimum memory limit allowed is 6MB"
        );
    }

    #[test]
    fn reservation_is_a_soft_limit_under_memory() {
        let r = build(Resources {
            memory: Some(64 << 20),
            memory_reservation: Some(32 << 20),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(r.memory().as_ref().unwrap().reservation(), Some(32 << 20));
        // Alone it sets no hard limit and no swap.
        let r = build(Resources {
            memory_reservation: Some(32 << 20),
            ..Default::default()
        })
        .unwrap();
        let m = r.memory().unwrap();
        assert_eq!(
            (m.limit(), m.swap(), m.reservation()),
            (None, None, Some(32 << 20))
        );
        assert_eq!(
            err(Resources {
                memory: Some(32 << 20),
                memory_reservation: Some(64 << 20),
                ..Default::default()
            }),
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        );
        assert_eq!(
            err(Resources {
                memory_reservation: Some(1 << 20),
                ..Default::default()
            }),
            "Minimum memory reservation allowed is 6MB"
        );
    }

    #[test]
    fn cpu_flags_follow_docker() {
        let cpu = |r: Resources| build(r).unwrap().cpu().clone().unwrap();
        let c = cpu(Resources {
            cpu_shares: Some(512),
            cpu_quota: Some(25_000),
            cpu_period: Some(50_000),
            ..Default::default()
        });
        assert_eq!(
            (c.shares(), c.quota(), c.period()),
            (Some(512), Some(25_000), Some(50_000))
        );
        let c = cpu(Resources {
            cpus: Some(1.5),
            ..Default::default()
        });
        assert_eq!((c.quota(), c.period()), (Some(150_000), Some(100_000)));
        assert_eq!(
            cpu(Resources {
                cpu_shares: Some(1),
                ..Default::default()
            })
            .shares(),
            Some(2),
            "clamped up"
        );
        assert_eq!(
            cpu(Resources {
                cpu_shares: Some(1 << 20),
                ..Default::default()
            })
            .shares(),
            Some(262_144),
            "clamped down"
        );
        assert!(
            build(Resources {
                cpu_shares: Some(0),
                ..Default::default()
            })
            .unwrap()
            .cpu()
            .is_none(),
            "0 is unset"
        );
        assert_eq!(
            cpu(Resources {
                cpu_quota: Some(-5),
                ..Default::default()
            })
            .quota(),
            Some(-1),
            "negative quota is unlimited"
        );
        for (r, msg) in [
            (
                Resources {
                    cpu_period: Some(999),
                    ..Default::default()
                },
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
            ),
            (
                Resources {
                    cpu_period: Some(1_000_001),
                    ..Default::default()
                },
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
            ),
            (
                Resources {
                    cpu_quota: Some(999),
                    ..Default::default()
                },
                "CPU cfs quota can not be less than 1ms (i.e. 1000)",
            ),
            (
                Resources {
                    cpus: Some(1.0),
                    cpu_quota: Some(50_000),
                    ..Default::default()
                },
                "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
            ),
            (
                Resources {
                    cpus: Some(1.0),
                    cpu_period: Some(50_000),
                    ..Default::default()
                },
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ),
            (
                Resources {
                    cpus: Some(3.0),
                    ..Default::default()
                },
                "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
            ),
            (
                Resources {
                    cpus: Some(-1.0),
                    ..Default::default()
                },
                "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
            ),
        ] {
            assert_eq!(err(r), msg);
        }
    }

    #[test]
    fn cpusets_must_be_online() {
        let c = build(Resources {
            cpuset_cpus: Some("1".into()),
            cpuset_mems: Some("0".into()),
            ..Default::default()
        })
        .unwrap()
        .cpu()
        .clone()
        .unwrap();
        assert_eq!(
            (c.cpus().as_deref(), c.mems().as_deref()),
            (Some("1"), Some("0"))
        );
        let set = |cpus: &str| Resources {
            cpuset_cpus: Some(cpus.into()),
            ..Default::default()
        };
        assert_eq!(
            err(set("0-3")),
            "Requested CPUs are not available - requested 0-3, available: 0-1"
        );
        assert_eq!(
            err(set("0-x")),
            "Invalid value 0-x for cpuset cpus: invalid format: 0-x"
        );
        assert_eq!(
            err(Resources {
                cpuset_mems: Some("1".into()),
                ..Default::default()
            }),
            "Requested memory nodes are not available - requested 1, available: 0"
        );
    }
}
