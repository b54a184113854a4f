//! The init plan: everything the container's init will do, computed in the
//! parent (strings made NUL-terminated, options split, masks computed), so
//! the child after `clone3` only issues system calls.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use oci_spec::runtime::{LinuxDeviceType, PosixRlimitType, Spec};

use super::syscall::attr;
use crate::seccomp::BpfProgram;

/// Errors turning a spec into a plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A string contains a NUL byte.
    #[error("{what} contains a NUL byte")]
    Nul {
        /// Which field.
        what: &'static str,
    },
    /// The spec lacks a required section.
    #[error("the spec has no {what}")]
    Missing {
        /// Which section.
        what: &'static str,
    },
    /// A path in the spec is not absolute.
    #[error("{what} {path:?} must be an absolute path")]
    NotAbsolute {
        /// Which field.
        what: &'static str,
        /// The value.
        path: String,
    },
    /// A mount type we do not know.
    #[error("unsupported mount type {typ:?} at {dest}")]
    MountType {
        /// The type.
        typ: String,
        /// The destination.
        dest: String,
    },
    /// A bind-mount source could not be opened.
    #[error("bind mount source {path}")]
    BindSource {
        /// The source.
        path: String,
        /// The cause.
        #[source]
        source: nix::Error,
    },
}

pub(crate) fn cstr(what: &'static str, s: impl Into<Vec<u8>>) -> Result<CString, PlanError> {
    CString::new(s).map_err(|_| PlanError::Nul { what })
}

/// A filesystem created with `fsopen`/`fsconfig`/`fsmount`.
#[derive(Debug)]
pub(crate) struct FsMount {
    pub fstype: CString,
    pub source: Option<CString>,
    /// `fsconfig` options: (key, Some(value)) or a flag (key, None).
    pub options: Vec<(CString, Option<CString>)>,
    pub attrs: u64,
}

#[derive(Debug)]
pub(crate) enum MountKind {
    /// A new filesystem instance.
    Fs(FsMount),
    /// A tree cloned in the parent with `open_tree` (a bind mount).
    Tree { fd: OwnedFd, is_dir: bool },
    /// cgroup v1: a tmpfs holding one read-only mount per hierarchy.
    CgroupV1 {
        tmpfs: FsMount,
        hierarchies: Vec<(CString, FsMount)>,
        read_only: bool,
    },
}

#[derive(Debug)]
pub(crate) struct MountStep {
    /// Absolute container path.
    pub target: CString,
    pub kind: MountKind,
    /// Follow symlinks (inside the root) when resolving the target: only for
    /// user mounts, as docker does; the default mounts refuse symlinks.
    pub follow_symlinks: bool,
    /// A cgroup mount: done only once the container's cgroup ns exists.
    pub needs_cgroupns: bool,
}

#[derive(Debug)]
pub(crate) struct Device {
    /// Path relative to `/dev` (e.g. `null`, `net/tun`).
    pub rel: CString,
    /// Parent directories to create first (`net` for `net/tun`).
    pub parents: Vec<CString>,
    pub mode: u32,
    pub dev: u64,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CapMasks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Everything the child does, in order.
#[derive(Debug)]
pub(crate) struct InitPlan {
    // Synchronisation with the parent.
    pub go_read: RawFd,
    pub go_write: RawFd,
    pub err_read: RawFd,
    pub err_write: RawFd,
    pub stdio: [Option<RawFd>; 3],
    pub wait_for_go: bool,
    pub unshare_cgroupns: bool,
    /// Signals whose disposition is not the default here (ignored or
    /// caught): the child resets them (ignored ones would survive exec).
    pub reset_signals: Vec<i32>,
    /// `process.terminal`: stdin is a pty slave to become the controlling
    /// terminal.
    pub terminal: bool,
    // Root filesystem.
    pub overlay_options: CString,
    pub rootfs: CString,
    pub rootfs_nodev: bool,
    pub mounts: Vec<MountStep>,
    pub devices: Vec<Device>,
    pub dev_read_only: bool,
    pub sysctls: Vec<(CString, CString)>,
    pub masked: Vec<CString>,
    pub readonly: Vec<CString>,
    pub readonly_root: bool,
    // Identity.
    pub hostname: Option<CString>,
    pub loopback_up: bool,
    /// The process to exec, shared with `exec`.
    pub process: ProcessPlan,
}

/// The process part of a plan: identity, limits, cwd, filters and the
/// exec, the same for the container's init and for `exec`.
#[derive(Debug)]
pub(crate) struct ProcessPlan {
    pub rlimits: Vec<(u32, u64, u64)>,
    pub cwd: CString,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub caps: CapMasks,
    pub last_cap: u32,
    pub no_new_privs: bool,
    pub seccomp: Option<Arc<BpfProgram>>,
    // Exec.
    pub exec_candidates: Vec<CString>,
    /// Owns the strings `argv_ptrs` points into.
    #[allow(dead_code)]
    pub argv: Vec<CString>,
    pub argv_ptrs: Vec<*const libc::c_char>,
    /// Owns the strings `envp_ptrs` points into.
    #[allow(dead_code)]
    pub envp: Vec<CString>,
    pub envp_ptrs: Vec<*const libc::c_char>,
}

/// What the plan needs besides the spec.
pub(crate) struct PlanContext<'a> {
    pub rootfs: &'a Path,
    pub overlay_options: &'a str,
    pub v1_hierarchies: &'a [(String, Vec<String>)],
    pub cgroup_v2: bool,
    pub enforces_devices: bool,
    pub seccomp: Option<Arc<BpfProgram>>,
    pub stdio: [Option<RawFd>; 3],
    pub go: (RawFd, RawFd),
    pub err: (RawFd, RawFd),
    pub unshare_cgroupns: bool,
    pub loopback_up: bool,
    /// The parent still has to move the child into its cgroups (v1).
    pub wait_for_go: bool,
}

/// Splits OCI mount options into `fsmount` attributes and `fsconfig`
/// options, dropping propagation/bind words handled elsewhere.
/// `fsconfig` options: (key, Some(value)) or a flag (key, None).
type FsOptions = Vec<(CString, Option<CString>)>;

fn split_options(options: &[String]) -> Result<(u64, FsOptions), PlanError> {
    let mut attrs = 0u64;
    let mut out = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => attrs |= attr::RDONLY,
            "rw" => attrs &= !attr::RDONLY,
            "nosuid" => attrs |= attr::NOSUID,
            "nodev" => attrs |= attr::NODEV,
            "noexec" => attrs |= attr::NOEXEC,
            "strictatime" => attrs |= attr::STRICTATIME,
            "noatime" => attrs |= attr::NOATIME,
            "relatime" => {}
            "nodiratime" => attrs |= attr::NODIRATIME,
            "bind" | "rbind" | "private" | "rprivate" | "shared" | "rshared" | "slave"
            | "rslave" | "suid" | "dev" | "exec" | "atime" => {}
            other => match other.split_once('=') {
                Some((k, v)) => {
                    out.push((cstr("mount option", k)?, Some(cstr("mount option", v)?)))
                }
                None => out.push((cstr("mount option", other)?, None)),
            },
        }
    }
    Ok((attrs, out))
}

fn cap_mask(set: &Option<oci_spec::runtime::Capabilities>) -> u64 {
    set.iter()
        .flatten()
        .filter_map(|c| {
            let name = serde_json::to_value(c).ok()?;
            name.as_str()?
                .parse::<caps::Capability>()
                .ok()
                .map(|c| c.bitmask())
        })
        .fold(0, |a, b| a | b)
}

fn rlimit_resource(t: PosixRlimitType) -> u32 {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Signals ignored or caught by this process (`SigIgn | SigCgt`), read
/// in one go from `/proc/self/status`; all of them if it is unreadable.
pub(crate) fn non_default_signals() -> Vec<i32> {
    let mask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let field = |k: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            };
            Some(field("SigIgn:")? | field("SigCgt:")?)
        })
        .unwrap_or(u64::MAX);
    (1..=64).filter(|s| mask & (1u64 << (s - 1)) != 0).collect()
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

fn ptrs(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Clones a host path for a bind mount (recursive, read-only if asked).
fn open_bind_source(
    source: &str,
    read_only: bool,
    nodev: bool,
) -> Result<(OwnedFd, bool), PlanError> {
    use super::syscall::{AT_RECURSIVE, OPEN_TREE_CLONE, Syscall};
    let sys = super::syscall::LinuxSyscall;
    let c = cstr("bind source", source)?;
    let err = |source| PlanError::BindSource {
        path: c.to_string_lossy().into_owned(),
        source,
    };
    let fd = sys
        .open_tree(libc::AT_FDCWD, &c, OPEN_TREE_CLONE | AT_RECURSIVE)
        .map(crate::sys::own_fd)
        .map_err(err)?;
    // Read-only if asked; nodev when no device cgroup guards device nodes
    // (cgroup v2 here), so a rw volume cannot host a usable block device.
    let mut set = 0;
    if read_only {
        set |= attr::RDONLY;
    }
    if nodev {
        set |= attr::NODEV;
    }
    if set != 0 {
        sys.mount_setattr(
            fd.as_raw_fd(),
            c"",
            super::syscall::AT_EMPTY_PATH | AT_RECURSIVE,
            set,
            0,
        )
        .map_err(err)?;
    }
    let (mode, _) = sys.fstat(fd.as_raw_fd()).map_err(err)?;
    Ok((fd, mode & libc::S_IFMT == libc::S_IFDIR))
}

impl InitPlan {
    /// Builds the plan of `spec` (already validated by `build_spec` or
    /// loaded from a bundle).
    pub fn build(spec: &Spec, ctx: PlanContext<'_>) -> Result<Self, PlanError> {
        let process = spec
            .process()
            .as_ref()
            .ok_or(PlanError::Missing { what: "process" })?;
        let linux = spec.linux().as_ref().ok_or(PlanError::Missing {
            what: "linux section",
        })?;
        let process_plan = ProcessPlan::build(process, ctx.seccomp)?;

        let mut mounts = Vec::new();
        for m in spec.mounts().iter().flatten() {
            let dest = m.destination().to_string_lossy().into_owned();
            if !dest.starts_with('/') {
                return Err(PlanError::NotAbsolute {
                    what: "mount destination",
                    path: dest,
                });
            }
            let options = m.options().clone().unwrap_or_default();
            let typ = m.typ().clone().unwrap_or_default();
            let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
            let target = cstr("mount destination", dest.as_str())?;
            if is_bind {
                let src = m
                    .source()
                    .as_ref()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let ro = options.iter().any(|o| o == "ro");
                let (fd, is_dir) = open_bind_source(&src, ro, !ctx.enforces_devices)?;
                mounts.push(MountStep {
                    target,
                    kind: MountKind::Tree { fd, is_dir },
                    follow_symlinks: true,
                    needs_cgroupns: false,
                });
                continue;
            }
            let (attrs, opts) = split_options(&options)?;
            let user = !matches!(
                dest.as_str(),
                "/proc"
                    | "/dev"
                    | "/dev/pts"
                    | "/sys"
                    | "/sys/fs/cgroup"
                    | "/dev/mqueue"
                    | "/dev/shm"
            );
            let kind = match typ.as_str() {
                "cgroup" | "cgroup2" if !ctx.cgroup_v2 => MountKind::CgroupV1 {
                    tmpfs: FsMount {
                        fstype: c"tmpfs".into(),
                        source: Some(c"cgroup".into()),
                        options: vec![(c"mode".into(), Some(c"755".into()))],
                        attrs: attrs & !attr::RDONLY,
                    },
                    hierarchies: ctx
                        .v1_hierarchies
                        .iter()
                        .map(|(dir, ctrls)| {
                            Ok((
                                cstr("cgroup dir", dir.as_str())?,
                                FsMount {
                                    fstype: c"cgroup".into(),
                                    source: Some(c"cgroup".into()),
                                    options: ctrls
                                        .iter()
                                        .map(|c| Ok((cstr("controller", c.as_str())?, None)))
                                        .collect::<Result<_, PlanError>>()?,
                                    attrs,
                                },
                            ))
                        })
                        .collect::<Result<_, PlanError>>()?,
                    read_only: attrs & attr::RDONLY != 0,
                },
                "cgroup" | "cgroup2" => MountKind::Fs(FsMount {
                    fstype: c"cgroup2".into(),
                    source: Some(c"cgroup".into()),
                    options: Vec::new(),
                    attrs,
                }),
                "proc" | "tmpfs" | "devpts" | "sysfs" | "mqueue" => MountKind::Fs(FsMount {
                    fstype: cstr("mount type", typ.as_str())?,
                    source: Some(cstr(
                        "mount source",
                        m.source()
                            .as_ref()
                            .map(|s| s.as_os_str().as_bytes().to_vec())
                            .unwrap_or_else(|| typ.clone().into_bytes()),
                    )?),
                    options: opts,
                    attrs,
                }),
                _ => return Err(PlanError::MountType { typ, dest }),
            };
            mounts.push(MountStep {
                target,
                kind,
                follow_symlinks: user,
                needs_cgroupns: typ == "cgroup" || typ == "cgroup2",
            });
        }

        let mut devices = Vec::new();
        for d in linux.devices().iter().flatten() {
            let p = d.path().to_string_lossy().into_owned();
            let Some(rel) = p.strip_prefix("/dev/") else {
                continue;
            };
            let kind = match d.typ() {
                LinuxDeviceType::B => libc::S_IFBLK,
                LinuxDeviceType::P => libc::S_IFIFO,
                _ => libc::S_IFCHR,
            };
            let mut parents = Vec::new();
            let mut acc = String::new();
            let comps: Vec<&str> = rel.split('/').collect();
            for c in &comps[..comps.len().saturating_sub(1)] {
                if *c == ".." || c.is_empty() {
                    continue;
                }
                if !acc.is_empty() {
                    acc.push('/');
                }
                acc.push_str(c);
                parents.push(cstr("device path", acc.as_str())?);
            }
            if rel.split('/').any(|c| c == "..") {
                continue;
            }
            devices.push(Device {
                rel: cstr("device path", rel)?,
                parents,
                mode: kind | d.file_mode().unwrap_or(0o666),
                dev: libc::makedev(d.major() as u32, d.minor() as u32),
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            });
        }

        let mut sysctls = Vec::new();
        let mut keys: Vec<_> = linux.sysctl().iter().flatten().collect();
        keys.sort();
        for (k, v) in keys {
            sysctls.push((
                cstr("sysctl", format!("sys/{}", k.replace('.', "/")))?,
                cstr("sysctl value", v.as_str())?,
            ));
        }
        let list = |v: &Option<Vec<String>>, what| -> Result<Vec<CString>, PlanError> {
            v.iter().flatten().map(|p| cstr(what, p.as_str())).collect()
        };

        Ok(InitPlan {
            go_read: ctx.go.0,
            go_write: ctx.go.1,
            err_read: ctx.err.0,
            err_write: ctx.err.1,
            stdio: ctx.stdio,
            wait_for_go: ctx.wait_for_go,
            reset_signals: non_default_signals(),
            terminal: process.terminal().unwrap_or(false),
            unshare_cgroupns: ctx.unshare_cgroupns,
            overlay_options: cstr("overlay options", ctx.overlay_options)?,
            rootfs: cstr("rootfs", ctx.rootfs.as_os_str().as_bytes())?,
            rootfs_nodev: !ctx.enforces_devices,
            mounts,
            devices,
            dev_read_only: !ctx.enforces_devices,
            sysctls,
            masked: list(linux.masked_paths(), "masked path")?,
            readonly: list(linux.readonly_paths(), "read-only path")?,
            readonly_root: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            hostname: spec
                .hostname()
                .as_ref()
                .map(|h| cstr("hostname", h.as_str()))
                .transpose()?,
            loopback_up: ctx.loopback_up,
            process: process_plan,
        })
    }
}

impl ProcessPlan {
    /// The process part of a spec's `process` section.
    pub fn build(
        process: &oci_spec::runtime::Process,
        seccomp: Option<Arc<BpfProgram>>,
    ) -> Result<Self, PlanError> {
        let args = process
            .args()
            .as_ref()
            .filter(|a| !a.is_empty())
            .ok_or(PlanError::Missing {
                what: "process.args",
            })?;
        let argv: Vec<CString> = args
            .iter()
            .map(|a| cstr("argument", a.as_str()))
            .collect::<Result<_, _>>()?;
        let env = process.env().clone().unwrap_or_default();
        let envp: Vec<CString> = env
            .iter()
            .map(|e| cstr("environment", e.as_str()))
            .collect::<Result<_, _>>()?;
        // execvp semantics over the container's PATH, computed here.
        let exec_candidates = if args[0].contains('/') {
            vec![argv[0].clone()]
        } else {
            let path = env
                .iter()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            path.split(':')
                .filter(|d| !d.is_empty())
                .map(|d| {
                    cstr(
                        "PATH entry",
                        format!("{}/{}", d.trim_end_matches('/'), args[0]),
                    )
                })
                .collect::<Result<_, _>>()?
        };
        let cwd = process.cwd().to_string_lossy().into_owned();
        if !cwd.starts_with('/') {
            return Err(PlanError::NotAbsolute {
                what: "process.cwd",
                path: cwd,
            });
        }

        let caps = process.capabilities().as_ref();
        let caps = CapMasks {
            bounding: caps.map_or(0, |c| cap_mask(c.bounding())),
            effective: caps.map_or(0, |c| cap_mask(c.effective())),
            permitted: caps.map_or(0, |c| cap_mask(c.permitted())),
            inheritable: caps.map_or(0, |c| cap_mask(c.inheritable())),
            ambient: caps.map_or(0, |c| cap_mask(c.ambient())),
        };
        // We cannot grant what we do not hold (e.g. root without
        // CAP_SYS_RESOURCE on some hosts): clamp to our own permitted set.
        let ours = caps::read(None, caps::CapSet::Permitted)
            .map(|set| set.iter().map(|c| c.bitmask()).fold(0, |a, b| a | b))
            .unwrap_or(u64::MAX);
        if caps.permitted & !ours != 0 {
            tracing::warn!(
                missing = format!("{:#x}", caps.permitted & !ours),
                "capabilities we do not hold are not granted"
            );
        }
        let caps = CapMasks {
            bounding: caps.bounding & ours,
            effective: caps.effective & ours,
            permitted: caps.permitted & ours,
            inheritable: caps.inheritable & ours,
            ambient: caps.ambient & ours,
        };
        let user = process.user();
        let argv_ptrs = ptrs(&argv);
        let envp_ptrs = ptrs(&envp);
        Ok(ProcessPlan {
            rlimits: process
                .rlimits()
                .iter()
                .flatten()
                .map(|r| (rlimit_resource(r.typ()), r.soft(), r.hard()))
                .collect(),
            cwd: cstr("cwd", cwd)?,
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            caps,
            last_cap: last_cap(),
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            seccomp,
            exec_candidates,
            argv,
            argv_ptrs,
            envp,
            envp_ptrs,
        })
    }
}
