//! Compiling the spec's `linux.seccomp` section to a BPF program, **once**.
//!
//! libseccomp (the compiler runc and crun use) turns docker's profile into
//! ~1,000 BPF instructions in about 11 ms; every other runtime pays that at
//! every start. We key the program by the sha256 of the section's JSON (plus
//! the libseccomp version and our architecture), keep it in a process-wide
//! map and in `<root>/seccomp/<hash>.bpf`, so a start costs one `read` and
//! the single `seccomp(SET_MODE_FILTER)` call in the container's init.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use sha2::{Digest as _, Sha256};

/// A compiled filter: the `sock_filter` instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfProgram {
    insns: Vec<libc::sock_filter>,
}

impl BpfProgram {
    /// The instructions.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.insns
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// True if empty (never for a compiled program).
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty()
            || !bytes.len().is_multiple_of(8)
            || bytes.len() / 8 > usize::from(u16::MAX)
        {
            return None;
        }
        let insns = bytes
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Some(Self { insns })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.insns.len() * 8);
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_ne_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_ne_bytes());
        }
        out
    }
}

/// Errors compiling a seccomp section.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeccompError {
    /// libseccomp refused the filter.
    #[error("compiling seccomp filter: {op}")]
    Compile {
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// An action we cannot express (e.g. `SCMP_ACT_NOTIFY` needs a listener).
    #[error("unsupported seccomp action {action:?}")]
    UnsupportedAction {
        /// The action.
        action: LinuxSeccompAction,
    },
    /// An argument index beyond the six syscall arguments.
    #[error("seccomp argument index {index} out of range")]
    BadArgIndex {
        /// The index.
        index: usize,
    },
    /// The exported program is malformed.
    #[error("libseccomp exported an invalid program")]
    BadProgram,
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, SeccompError> {
    let errno = i32::try_from(errno.unwrap_or(libc::EPERM as u32)).unwrap_or(libc::EPERM);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(u16::try_from(errno).unwrap_or(0)),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction { action: a });
        }
    })
}

fn arch(a: Arch) -> Option<ScmpArch> {
    Some(match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        _ => return None,
    })
}

/// Compiles a section with libseccomp (slow: use [`FilterCache`]).
pub fn compile(s: &LinuxSeccomp) -> Result<BpfProgram, SeccompError> {
    let err = |op| move |source| SeccompError::Compile { op, source };
    let default = action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default).map_err(err("init"))?;
    // We load the program ourselves; libseccomp must not touch NNP.
    ctx.set_ctl_nnp(false).map_err(err("nnp attr"))?;
    for a in s.architectures().iter().flatten() {
        if let Some(a) = arch(*a)
            && a != ScmpArch::Native
        {
            match ctx.add_arch(a) {
                Ok(_) => {}
                Err(e) => tracing::debug!(arch = ?a, error = %e, "seccomp arch not added"),
            }
        }
    }
    for call in s.syscalls().iter().flatten() {
        let act = action(call.action(), call.errno_ret())?;
        if act == default {
            continue;
        }
        let mut cmps = Vec::new();
        for a in call.args().iter().flatten() {
            let index = u32::try_from(a.index())
                .ok()
                .filter(|i| *i < 6)
                .ok_or(SeccompError::BadArgIndex { index: a.index() })?;
            let (op, datum) = match a.op() {
                LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, a.value()),
                LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, a.value()),
                LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, a.value()),
                LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, a.value()),
                LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, a.value()),
                LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, a.value()),
                LinuxSeccompOperator::ScmpCmpMaskedEq => (
                    ScmpCompareOp::MaskedEqual(a.value()),
                    a.value_two().unwrap_or(0),
                ),
            };
            cmps.push(ScmpArgCompare::new(index, op, datum));
        }
        for name in call.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                // Unknown to this libseccomp: runc skips these too.
                tracing::debug!(syscall = %name, "unknown syscall in seccomp profile");
                continue;
            };
            let r = if cmps.is_empty() {
                ctx.add_rule(act, sc)
            } else {
                ctx.add_rule_conditional(act, sc, &cmps)
            };
            if let Err(e) = r {
                tracing::debug!(syscall = %name, error = %e, "seccomp rule not added");
            }
        }
    }
    // libseccomp 2.5 (Debian's) can only export to a descriptor.
    let fd = nix::sys::memfd::memfd_create(
        c"bay-seccomp",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|_| SeccompError::BadProgram)?;
    ctx.export_bpf(&fd).map_err(err("export"))?;
    let mut f = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    std::io::Seek::rewind(&mut f).map_err(|_| SeccompError::BadProgram)?;
    std::io::Read::read_to_end(&mut f, &mut bytes).map_err(|_| SeccompError::BadProgram)?;
    BpfProgram::from_bytes(&bytes).ok_or(SeccompError::BadProgram)
}

/// The cache key of a section: sha256 over its JSON, the libseccomp version
/// and our architecture.
pub fn profile_hash(s: &LinuxSeccomp) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(s).unwrap_or_default());
    let v = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    h.update(v.as_bytes());
    h.update(std::env::consts::ARCH.as_bytes());
    hex::encode(h.finalize())
}

/// Compiled programs by hash, in memory and on disk.
#[derive(Debug)]
pub struct FilterCache {
    dir: std::path::PathBuf,
}

fn memory() -> &'static Mutex<HashMap<String, Arc<BpfProgram>>> {
    static M: OnceLock<Mutex<HashMap<String, Arc<BpfProgram>>>> = OnceLock::new();
    M.get_or_init(|| Mutex::new(HashMap::new()))
}

impl FilterCache {
    /// A cache persisting into `dir` (created on first store).
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The program for `s`: from memory, from disk, or compiled and stored.
    pub fn get(&self, s: &LinuxSeccomp) -> Result<Arc<BpfProgram>, SeccompError> {
        let key = profile_hash(s);
        if let Some(p) = memory().lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(p);
        }
        let path = self.dir.join(format!("{key}.bpf"));
        if let Some(p) = std::fs::read(&path)
            .ok()
            .and_then(|b| BpfProgram::from_bytes(&b))
        {
            let p = Arc::new(p);
            if let Ok(mut m) = memory().lock() {
                m.insert(key, p.clone());
            }
            return Ok(p);
        }
        let started = std::time::Instant::now();
        let p = Arc::new(compile(s)?);
        tracing::debug!(insns = p.len(), elapsed = ?started.elapsed(), "seccomp filter compiled");
        if let Err(e) = store(&self.dir, &path, &p) {
            tracing::warn!(path = %path.display(), error = %e, "could not cache seccomp filter");
        }
        if let Ok(mut m) = memory().lock() {
            m.insert(key, p.clone());
        }
        Ok(p)
    }
}

fn store(dir: &Path, path: &Path, p: &BpfProgram) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}", std::process::id(), rand_suffix()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&p.to_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::spec::defaults::DEFAULT_CAPS;
    use crate::spec::seccomp::{DOCKER_DEFAULT_PROFILE, resolve_profile};

    fn docker() -> LinuxSeccomp {
        let caps: HashSet<String> = DEFAULT_CAPS.iter().map(|s| (*s).to_owned()).collect();
        resolve_profile(DOCKER_DEFAULT_PROFILE, &caps).unwrap()
    }

    #[test]
    fn compiles_dockers_profile_to_about_a_thousand_instructions() {
        let p = compile(&docker()).unwrap();
        // runtime-facts: libseccomp produced 1,001 instructions here.
        assert!((800..1400).contains(&p.len()), "{} instructions", p.len());
        assert_eq!(BpfProgram::from_bytes(&p.to_bytes()).unwrap(), p);
    }

    #[test]
    fn cache_compiles_once_and_reads_back_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let s = docker();
        let cache = FilterCache::new(dir.path());
        let a = cache.get(&s).unwrap();
        let file = dir.path().join(format!("{}.bpf", profile_hash(&s)));
        assert!(file.exists());
        // A different process would read the file: simulate by clearing memory.
        memory().lock().unwrap().clear();
        let started = std::time::Instant::now();
        let b = FilterCache::new(dir.path()).get(&s).unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_millis(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(a, b);
        // A corrupt cache file is ignored and replaced.
        std::fs::write(&file, b"garbage").unwrap();
        memory().lock().unwrap().clear();
        assert_eq!(*FilterCache::new(dir.path()).get(&s).unwrap(), *a);
    }
}
