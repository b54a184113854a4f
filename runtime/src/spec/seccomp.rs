//! Docker-format seccomp profiles (moby `profiles/seccomp`), resolved into
//! the OCI `linux.seccomp` section for one container's capability set and
//! architecture, exactly as moby's `setupSeccomp` does: a rule is kept only
//! if all its `includes.caps` are granted, none of its `excludes.caps` are,
//! its arch filters match and the kernel is at least `includes.minKernel`.

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

/// The docker default profile (moby `profiles/seccomp/default.json`).
pub const DOCKER_DEFAULT_PROFILE: &str = include_str!("../seccomp/docker-default.json");

/// Errors reading a docker-format profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Not valid profile JSON.
    #[error("invalid seccomp profile")]
    Json {
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// Building the OCI section failed.
    #[error("building the seccomp section")]
    Build {
        /// The cause.
        #[source]
        source: oci_spec::OciSpecError,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    syscalls: Vec<Syscall>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: LinuxSeccompOperator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Docker's (Go's) name for the architecture we run on.
pub fn native_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "x86" => ("386", "SCMP_ARCH_X86"),
        "arm" => ("arm", "SCMP_ARCH_ARM"),
        "s390x" => ("s390x", "SCMP_ARCH_S390X"),
        "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
        "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
        other => (other, "SCMP_ARCH_NATIVE"),
    }
}

fn parse_kernel(v: &str) -> (u32, u32) {
    let mut it = v.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The running kernel's (major, minor).
pub fn kernel_version() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| u.release().to_str().map(parse_kernel))
        .unwrap_or((0, 0))
}

fn arch_from(name: &str) -> Option<Arch> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// Resolves a docker-format profile for a container holding `caps`
/// (names like `CAP_SYS_ADMIN`) on this machine.
pub fn resolve_profile(json: &str, caps: &HashSet<String>) -> Result<LinuxSeccomp, ProfileError> {
    let profile: Profile =
        serde_json::from_str(json).map_err(|source| ProfileError::Json { source })?;
    resolve(&profile, caps, native_arch(), kernel_version())
}

fn resolve(
    profile: &Profile,
    caps: &HashSet<String>,
    (go_arch, scmp_arch): (&str, &str),
    kernel: (u32, u32),
) -> Result<LinuxSeccomp, ProfileError> {
    let mut arches: Vec<Arch> = Vec::new();
    if let Some(map) = &profile.arch_map {
        for m in map.iter().filter(|m| m.architecture == scmp_arch) {
            arches.extend(arch_from(&m.architecture));
            for sub in m.sub_architectures.iter().flatten() {
                arches.extend(arch_from(sub));
            }
        }
    } else if let Some(list) = &profile.architectures {
        arches.extend(list.iter().filter_map(|a| arch_from(a)));
    }
    let mut syscalls = Vec::new();
    'rules: for s in &profile.syscalls {
        let inc = s.includes.as_ref();
        let exc = s.excludes.as_ref();
        if let Some(a) = inc.and_then(|f| f.arches.as_ref())
            && !a.is_empty()
            && !a.iter().any(|x| x == go_arch)
        {
            continue;
        }
        if let Some(c) = inc.and_then(|f| f.caps.as_ref()) {
            for cap in c {
                if !caps.contains(cap) {
                    continue 'rules;
                }
            }
        }
        if let Some(k) = inc.and_then(|f| f.min_kernel.as_deref())
            && kernel < parse_kernel(k)
        {
            continue;
        }
        if let Some(a) = exc.and_then(|f| f.arches.as_ref())
            && a.iter().any(|x| x == go_arch)
        {
            continue;
        }
        if let Some(c) = exc.and_then(|f| f.caps.as_ref())
            && c.iter().any(|cap| caps.contains(cap))
        {
            continue;
        }
        let mut names = s.names.clone();
        if let Some(n) = &s.name {
            names.push(n.clone());
        }
        let mut b = oci_spec::runtime::LinuxSyscallBuilder::default()
            .names(names)
            .action(s.action);
        if let Some(e) = s.errno_ret {
            b = b.errno_ret(e);
        }
        if let Some(args) = &s.args {
            let args: Vec<LinuxSeccompArg> = args
                .iter()
                .map(|a| {
                    oci_spec::runtime::LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .value_two(a.value_two)
                        .op(a.op)
                        .build()
                })
                .collect::<Result<_, _>>()
                .map_err(|source| ProfileError::Build { source })?;
            b = b.args(args);
        }
        let call: LinuxSyscall = b.build().map_err(|source| ProfileError::Build { source })?;
        syscalls.push(call);
    }
    let mut out = oci_spec::runtime::LinuxSeccompBuilder::default()
        .default_action(profile.default_action)
        .architectures(arches)
        .syscalls(syscalls);
    if let Some(e) = profile.default_errno_ret {
        out = out.default_errno_ret(e);
    }
    out.build().map_err(|source| ProfileError::Build { source })
}

/// Every syscall name the resolved section allows unconditionally (no
/// argument filter), for tests and `inspect`.
pub fn unconditionally_allowed(s: &LinuxSeccomp) -> HashSet<String> {
    s.syscalls()
        .iter()
        .flatten()
        .filter(|c| c.action() == LinuxSeccompAction::ScmpActAllow && c.args().is_none())
        .flat_map(|c| c.names().iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::defaults::DEFAULT_CAPS;

    fn default_caps() -> HashSet<String> {
        DEFAULT_CAPS.iter().map(|s| (*s).to_owned()).collect()
    }

    fn resolved(caps: &HashSet<String>) -> LinuxSeccomp {
        let p: Profile = serde_json::from_str(DOCKER_DEFAULT_PROFILE).unwrap();
        resolve(&p, caps, ("amd64", "SCMP_ARCH_X86_64"), (6, 18)).unwrap()
    }

    #[test]
    fn default_profile_matches_dockers_numbers() {
        let s = resolved(&default_caps());
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        let allowed = unconditionally_allowed(&s);
        // 361 base + ptrace/process_vm_* (kernel >= 4.8) + arch_prctl +
        // modify_ldt + chroot (CAP_SYS_CHROOT) = 367.
        assert_eq!(allowed.len(), 367, "unconditional allowlist size");
        for c in [
            "ptrace",
            "process_vm_readv",
            "chroot",
            "arch_prctl",
            "execve",
            "close_range",
        ] {
            assert!(allowed.contains(c), "{c} must be allowed");
        }
        let conditional: Vec<&str> = s
            .syscalls()
            .iter()
            .flatten()
            .filter(|c| c.args().is_some() && c.action() == LinuxSeccompAction::ScmpActAllow)
            .flat_map(|c| c.names().iter().map(String::as_str))
            .collect();
        let uniq: HashSet<&str> = conditional.iter().copied().collect();
        assert_eq!(uniq, HashSet::from(["socket", "personality", "clone"]));
        let clone3 = s
            .syscalls()
            .iter()
            .flatten()
            .find(|c| c.names().iter().any(|n| n == "clone3"))
            .unwrap();
        assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3.errno_ret(), Some(38));
    }

    #[test]
    fn blocked_list_is_not_allowed() {
        let s = resolved(&default_caps());
        let allowed = unconditionally_allowed(&s);
        for c in [
            "add_key",
            "keyctl",
            "request_key",
            "mount",
            "umount2",
            "pivot_root",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
            "unshare",
            "setns",
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "reboot",
            "bpf",
            "perf_event_open",
            "syslog",
            "acct",
            "swapon",
            "quotactl",
            "mbind",
            "set_mempolicy",
            "userfaultfd",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "open_by_handle_at",
            "settimeofday",
            "clock_settime",
            "sethostname",
            "setdomainname",
            "iopl",
            "ioperm",
            "vhangup",
            "fanotify_init",
            "uselib",
            "ustat",
            "sysfs",
            "_sysctl",
            "nfsservctl",
            "clone3",
        ] {
            assert!(!allowed.contains(c), "{c} must not be allowed");
        }
    }

    #[test]
    fn cap_add_changes_the_filter() {
        let mut caps = default_caps();
        caps.insert("CAP_SYS_ADMIN".into());
        let s = resolved(&caps);
        let allowed = unconditionally_allowed(&s);
        assert!(
            allowed.contains("mount") && allowed.contains("unshare") && allowed.contains("clone3")
        );
        // The clone flag filter is dropped with CAP_SYS_ADMIN.
        assert!(
            !s.syscalls()
                .iter()
                .flatten()
                .any(|c| c.names().iter().any(|n| n == "clone") && c.args().is_some())
        );
        caps.remove("CAP_SYS_CHROOT");
        assert!(!unconditionally_allowed(&resolved(&caps)).contains("chroot"));
    }
}
