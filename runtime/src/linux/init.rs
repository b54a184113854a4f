//! The container's init: what the cloned child does, in order, between
//! `clone3` and `execve`. Written against [`Syscall`] so the sequence is
//! unit-tested with a recording double.
//!
//! Order (runc's, with fd-based target resolution throughout):
//! 1. close the parent's pipe ends, reset signals, install stdio;
//! 2. make `/` private, mount the overlay, `pivot_root(".", ".")` and
//!    detach the old root, so nothing of the host stays reachable;
//! 3. mount `/proc`, `/dev`, … with `fsopen`/`fsmount` and `move_mount`
//!    onto targets opened with `openat2(RESOLVE_IN_ROOT|NO_SYMLINKS|
//!    NO_MAGICLINKS)` (runc CVE-2025-31133/-52565/-52881);
//! 4. create the device nodes; verify `/dev/null` is char 1:3 through a
//!    handle and bind *that handle* over masked files; write sysctls through
//!    the private procfs handle after checking `PROC_SUPER_MAGIC`; bind the
//!    read-only paths; make the root read-only if asked;
//!    then (v1) wait for the parent's go (it has been moving us into our
//!    cgroups meanwhile), enter a cgroup ns and mount `/sys/fs/cgroup`;
//! 5. hostname, `lo` up, rlimits, `chdir` + check the cwd is inside;
//! 6. seccomp (here if `no_new_privs` is off: loading needs CAP_SYS_ADMIN),
//!    bounding set, ids, capabilities, ambient, `no_new_privs`, seccomp
//!    (here if it is on);
//! 7. `close_range(3, ~0, CLOEXEC)` and `execve` along `PATH`.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;

use super::plan::{FsMount, InitPlan, MountKind, ProcessPlan};
use super::syscall::{
    AT_EMPTY_PATH, AT_RECURSIVE, FSCONFIG_CMD_CREATE, FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING,
    MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH, OPEN_TREE_CLONE, Syscall, attr, resolve,
};

/// The step that failed, reported to the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[allow(missing_docs)]
pub enum Step {
    WaitParent = 1,
    Stdio,
    CgroupNs,
    Propagation,
    Overlay,
    PivotRoot,
    MountTarget,
    Mount,
    Devices,
    DevNull,
    Sysctl,
    Mask,
    ReadOnlyPath,
    ReadOnlyRoot,
    Hostname,
    Loopback,
    Rlimit,
    Cwd,
    CwdOutside,
    Seccomp,
    Bounding,
    Ids,
    Capabilities,
    Ambient,
    NoNewPrivs,
    CloseFds,
    Exec,
    JoinNamespaces,
}

impl Step {
    const ALL: [Step; 28] = [
        Step::WaitParent,
        Step::Stdio,
        Step::CgroupNs,
        Step::Propagation,
        Step::Overlay,
        Step::PivotRoot,
        Step::MountTarget,
        Step::Mount,
        Step::Devices,
        Step::DevNull,
        Step::Sysctl,
        Step::Mask,
        Step::ReadOnlyPath,
        Step::ReadOnlyRoot,
        Step::Hostname,
        Step::Loopback,
        Step::Rlimit,
        Step::Cwd,
        Step::CwdOutside,
        Step::Seccomp,
        Step::Bounding,
        Step::Ids,
        Step::Capabilities,
        Step::Ambient,
        Step::NoNewPrivs,
        Step::CloseFds,
        Step::Exec,
        Step::JoinNamespaces,
    ];

    /// A short description for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Step::WaitParent => "waiting for the runtime",
            Step::Stdio => "setting up stdio",
            Step::CgroupNs => "entering the cgroup namespace",
            Step::Propagation => "making mounts private",
            Step::Overlay => "mounting the overlay root",
            Step::PivotRoot => "pivoting into the root",
            Step::MountTarget => "resolving a mount target",
            Step::Mount => "mounting a filesystem",
            Step::Devices => "creating device nodes",
            Step::DevNull => "verifying /dev/null",
            Step::Sysctl => "writing a sysctl",
            Step::Mask => "masking a path",
            Step::ReadOnlyPath => "making a path read-only",
            Step::ReadOnlyRoot => "making the root read-only",
            Step::Hostname => "setting the hostname",
            Step::Loopback => "bringing up lo",
            Step::Rlimit => "setting rlimits",
            Step::Cwd => "changing to the working directory",
            Step::CwdOutside => "checking the working directory",
            Step::Seccomp => "loading the seccomp filter",
            Step::Bounding => "dropping bounding capabilities",
            Step::Ids => "switching user and groups",
            Step::Capabilities => "setting capabilities",
            Step::Ambient => "setting ambient capabilities",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::CloseFds => "closing inherited descriptors",
            Step::Exec => "executing the command",
            Step::JoinNamespaces => "joining the container's namespaces",
        }
    }

    fn from_u32(v: u32) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| *s as u32 == v)
    }
}

/// A failed init step with its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitFailure {
    /// The step.
    pub step: Step,
    /// The error.
    pub errno: Errno,
}

impl InitFailure {
    /// The 8-byte wire form sent over the error pipe.
    pub fn encode(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&(self.step as u32).to_le_bytes());
        b[4..].copy_from_slice(&(self.errno as i32).to_le_bytes());
        b
    }

    /// Parses the wire form.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let step = Step::from_u32(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))?;
        let errno = Errno::from_raw(i32::from_le_bytes(b.get(4..8)?.try_into().ok()?));
        Some(Self { step, errno })
    }
}

pub(crate) type R<T> = Result<T, InitFailure>;

pub(crate) fn at(step: Step) -> impl Fn(Errno) -> InitFailure {
    move |errno| InitFailure { step, errno }
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const NO_LINKS: u64 = resolve::IN_ROOT | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
const IN_ROOT: u64 = resolve::IN_ROOT | resolve::NO_MAGICLINKS;

/// Opens `path` (absolute, inside the root) as an `O_PATH` handle, creating
/// missing directories (and a final empty file if `dir` is false).
fn open_target(sys: &dyn Syscall, root: RawFd, path: &CStr, dir: bool, how: u64) -> R<RawFd> {
    match sys.openat2(root, path, libc::O_PATH, how) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(at(Step::MountTarget)(e)),
    }
    let bytes = path.to_bytes();
    let mut buf = [0u8; 4096];
    if bytes.len() >= buf.len() {
        return Err(at(Step::MountTarget)(Errno::ENAMETOOLONG));
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    let mut parent = sys
        .openat2(root, c"/", libc::O_PATH | libc::O_DIRECTORY, how)
        .map_err(at(Step::MountTarget))?;
    let mut start = 1;
    let mut i = 1;
    while i <= bytes.len() {
        if i == bytes.len() || bytes[i] == b'/' {
            let last = i == bytes.len();
            if i > start {
                buf[i] = 0;
                let comp = CStr::from_bytes_until_nul(&buf[start..=i])
                    .map_err(|_| at(Step::MountTarget)(Errno::EINVAL))?;
                let want_dir = !last || dir;
                let opened = sys.openat2(
                    parent,
                    comp,
                    libc::O_PATH,
                    how & !resolve::IN_ROOT | resolve::BENEATH,
                );
                let fd = match opened {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) => {
                        if want_dir {
                            match sys.mkdirat(parent, comp, 0o755) {
                                Ok(()) | Err(Errno::EEXIST) => {}
                                Err(e) => return Err(at(Step::MountTarget)(e)),
                            }
                        } else {
                            let f = sys
                                .openat(
                                    parent,
                                    comp,
                                    libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW,
                                    0o644,
                                )
                                .map_err(at(Step::MountTarget))?;
                            sys.close(f);
                        }
                        sys.openat2(
                            parent,
                            comp,
                            libc::O_PATH,
                            (how & !resolve::IN_ROOT) | resolve::BENEATH,
                        )
                        .map_err(at(Step::MountTarget))?
                    }
                    Err(e) => return Err(at(Step::MountTarget)(e)),
                };
                sys.close(parent);
                parent = fd;
                if !last {
                    buf[i] = b'/';
                }
            }
            start = i + 1;
        }
        i += 1;
    }
    Ok(parent)
}

fn make_fs(sys: &dyn Syscall, fs: &FsMount) -> R<RawFd> {
    let e = at(Step::Mount);
    let fd = sys.fsopen(&fs.fstype).map_err(&e)?;
    let r = (|| {
        if let Some(src) = &fs.source {
            sys.fsconfig(fd, FSCONFIG_SET_STRING, Some(c"source"), Some(src))?;
        }
        for (k, v) in &fs.options {
            match v {
                Some(v) => sys.fsconfig(fd, FSCONFIG_SET_STRING, Some(k), Some(v))?,
                None => sys.fsconfig(fd, FSCONFIG_SET_FLAG, Some(k), None)?,
            }
        }
        sys.fsconfig(fd, FSCONFIG_CMD_CREATE, None, None)?;
        sys.fsmount(fd, fs.attrs)
    })();
    sys.close(fd);
    r.map_err(e)
}

fn attach(sys: &dyn Syscall, mnt: RawFd, target: RawFd) -> Result<(), Errno> {
    sys.move_mount(
        mnt,
        c"",
        target,
        c"",
        MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
    )
}

/// Performs the plan's mounts of one phase (`cgroup_phase`: only the
/// cgroup mounts, else all others), keeping the procfs and /dev handles.
fn mount_all(
    sys: &dyn Syscall,
    plan: &InitPlan,
    root: RawFd,
    cgroup_phase: bool,
    proc_fd: &mut Option<RawFd>,
    dev_fd: &mut Option<RawFd>,
) -> R<()> {
    for m in plan
        .mounts
        .iter()
        .filter(|m| m.needs_cgroupns == cgroup_phase)
    {
        let is_dir = !matches!(m.kind, MountKind::Tree { is_dir: false, .. });
        let how = if m.follow_symlinks { IN_ROOT } else { NO_LINKS };
        let target = open_target(sys, root, &m.target, is_dir, how)?;
        let e = at(Step::Mount);
        match &m.kind {
            MountKind::Fs(fs) => {
                let mnt = make_fs(sys, fs)?;
                attach(sys, mnt, target).map_err(&e)?;
                if fs.fstype.as_c_str() == c"proc" && proc_fd.is_none() {
                    *proc_fd = Some(mnt);
                } else if m.target.as_c_str() == c"/dev" {
                    *dev_fd = Some(mnt);
                } else {
                    sys.close(mnt);
                }
            }
            MountKind::Tree { fd, .. } => attach(sys, fd.as_raw_fd(), target).map_err(&e)?,
            MountKind::CgroupV1 {
                tmpfs,
                hierarchies,
                read_only,
            } => {
                let mnt = make_fs(sys, tmpfs)?;
                attach(sys, mnt, target).map_err(&e)?;
                for (dir, fs) in hierarchies {
                    match sys.mkdirat(mnt, dir, 0o755) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(err) => return Err(e(err)),
                    }
                    let sub = sys
                        .openat(
                            mnt,
                            dir,
                            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                            0,
                        )
                        .map_err(&e)?;
                    let h = make_fs(sys, fs)?;
                    attach(sys, h, sub).map_err(&e)?;
                    sys.close(h);
                    sys.close(sub);
                }
                if *read_only {
                    sys.mount_setattr(mnt, c"", AT_EMPTY_PATH, attr::RDONLY, 0)
                        .map_err(&e)?;
                }
                sys.close(mnt);
            }
        }
        sys.close(target);
    }

    Ok(())
}

/// Runs the init sequence. Returns only on failure (on success `execve`
/// replaces the process).
pub(crate) fn run(sys: &dyn Syscall, plan: &InitPlan) -> InitFailure {
    match run_inner(sys, plan) {
        Ok(never) => match never {},
        Err(f) => f,
    }
}

pub(crate) enum Never {}

fn run_inner(sys: &dyn Syscall, plan: &InitPlan) -> R<Never> {
    sys.close(plan.go_write);
    sys.close(plan.err_read);
    sys.reset_signals(&plan.reset_signals);
    for (i, fd) in plan.stdio.iter().enumerate() {
        if let Some(fd) = fd {
            sys.dup_to(*fd, i as RawFd).map_err(at(Step::Stdio))?;
        }
    }
    // Like runc: a new session, with stdin as its terminal under `-t`.
    sys.setsid().map_err(at(Step::Stdio))?;
    if plan.terminal {
        sys.set_controlling_tty(0).map_err(at(Step::Stdio))?;
    }
    sys.umask(0);

    // 2. Root filesystem and pivot.
    sys.mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
        .map_err(at(Step::Propagation))?;
    let nodev = if plan.rootfs_nodev { libc::MS_NODEV } else { 0 };
    sys.mount(
        Some(c"overlay"),
        &plan.rootfs,
        Some(c"overlay"),
        nodev,
        Some(&plan.overlay_options),
    )
    .map_err(at(Step::Overlay))?;
    let p = at(Step::PivotRoot);
    let old_root = sys
        .openat(libc::AT_FDCWD, c"/", libc::O_DIRECTORY | libc::O_RDONLY, 0)
        .map_err(&p)?;
    let new_root = sys
        .openat(
            libc::AT_FDCWD,
            &plan.rootfs,
            libc::O_DIRECTORY | libc::O_RDONLY,
            0,
        )
        .map_err(&p)?;
    sys.fchdir(new_root).map_err(&p)?;
    sys.pivot_root(c".", c".").map_err(&p)?;
    sys.fchdir(old_root).map_err(&p)?;
    sys.mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None)
        .map_err(&p)?;
    sys.umount2(c".", libc::MNT_DETACH).map_err(&p)?;
    sys.close(old_root);
    sys.close(new_root);
    sys.chdir(c"/").map_err(&p)?;
    let root = sys
        .openat(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(&p)?;

    // 3. Mounts (all but the cgroup ones, which need our cgroup ns).
    let mut proc_fd: Option<RawFd> = None;
    let mut dev_fd: Option<RawFd> = None;
    mount_all(sys, plan, root, false, &mut proc_fd, &mut dev_fd)?;

    // 4. Devices, /dev/null check, sysctls, masks, read-only paths.
    let d = at(Step::Devices);
    let dev = sys
        .openat2(root, c"/dev", libc::O_PATH | libc::O_DIRECTORY, NO_LINKS)
        .map_err(&d)?;
    for dv in &plan.devices {
        for parent in &dv.parents {
            match sys.mkdirat(dev, parent, 0o755) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(d(e)),
            }
        }
        match sys.mknodat(dev, &dv.rel, dv.mode, dv.dev) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(d(e)),
        }
        sys.fchownat(dev, &dv.rel, dv.uid, dv.gid).map_err(&d)?;
    }
    for (target, name) in [
        (c"/proc/self/fd", c"fd"),
        (c"/proc/self/fd/0", c"stdin"),
        (c"/proc/self/fd/1", c"stdout"),
        (c"/proc/self/fd/2", c"stderr"),
        (c"pts/ptmx", c"ptmx"),
    ] {
        match sys.symlinkat(target, dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(d(e)),
        }
    }
    let n = at(Step::DevNull);
    let null = sys
        .openat2(
            dev,
            c"null",
            libc::O_PATH,
            resolve::BENEATH | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS | resolve::NO_XDEV,
        )
        .map_err(&n)?;
    let (mode, rdev) = sys.fstat(null).map_err(&n)?;
    if mode & libc::S_IFMT != libc::S_IFCHR || rdev != libc::makedev(1, 3) {
        return Err(n(Errno::EPERM));
    }
    if plan.dev_read_only
        && let Some(fd) = dev_fd
    {
        sys.mount_setattr(fd, c"", AT_EMPTY_PATH, attr::RDONLY, 0)
            .map_err(&d)?;
    }
    if !plan.sysctls.is_empty() {
        let s = at(Step::Sysctl);
        let procfd = proc_fd.ok_or(s(Errno::ENOENT))?;
        for (path, value) in &plan.sysctls {
            let fd = sys
                .openat2(
                    procfd,
                    path,
                    libc::O_WRONLY,
                    resolve::BENEATH
                        | resolve::NO_SYMLINKS
                        | resolve::NO_MAGICLINKS
                        | resolve::NO_XDEV,
                )
                .map_err(&s)?;
            if sys.fstatfs(fd).map_err(&s)? != PROC_SUPER_MAGIC {
                return Err(s(Errno::EXDEV));
            }
            sys.write_all(fd, value.to_bytes()).map_err(&s)?;
            sys.close(fd);
        }
    }
    let mk = at(Step::Mask);
    for path in &plan.masked {
        let t = match sys.openat2(root, path, libc::O_PATH | libc::O_NOFOLLOW, NO_LINKS) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(mk(e)),
        };
        let (mode, _) = sys.fstat(t).map_err(&mk)?;
        let mnt = if mode & libc::S_IFMT == libc::S_IFDIR {
            make_fs(
                sys,
                &FsMount {
                    fstype: c"tmpfs".into(),
                    source: Some(c"tmpfs".into()),
                    options: Vec::new(),
                    attrs: attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
                },
            )?
        } else {
            sys.open_tree(null, c"", OPEN_TREE_CLONE | AT_EMPTY_PATH)
                .map_err(&mk)?
        };
        attach(sys, mnt, t).map_err(&mk)?;
        sys.close(mnt);
        sys.close(t);
    }
    let ro = at(Step::ReadOnlyPath);
    for path in &plan.readonly {
        let t = match sys.openat2(root, path, libc::O_PATH | libc::O_NOFOLLOW, NO_LINKS) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(ro(e)),
        };
        let tree = sys
            .open_tree(t, c"", OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH)
            .map_err(&ro)?;
        sys.mount_setattr(
            tree,
            c"",
            AT_EMPTY_PATH | AT_RECURSIVE,
            attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
            0,
        )
        .map_err(&ro)?;
        attach(sys, tree, t).map_err(&ro)?;
        sys.close(tree);
        sys.close(t);
    }
    if sys.chdir(&plan.process.cwd) == Err(Errno::ENOENT) {
        // Docker creates a missing working directory (before a read-only
        // root would forbid it).
        let fd = open_target(sys, root, &plan.process.cwd, true, NO_LINKS)?;
        sys.close(fd);
    }
    // Only now wait for the parent: on cgroup v1 it has been moving us into
    // our cgroups meanwhile (a write that waits for an RCU grace period, the
    // biggest single cost of a start), overlapped with all the work above.
    // The cgroup ns and the /sys/fs/cgroup mount, which reads it, follow.
    if plan.wait_for_go {
        match sys.read_byte(plan.go_read).map_err(at(Step::WaitParent))? {
            Some(_) => {}
            // The runtime went away before starting us.
            None => {
                return Err(InitFailure {
                    step: Step::WaitParent,
                    errno: Errno::EPIPE,
                });
            }
        }
    }
    sys.close(plan.go_read);
    if plan.unshare_cgroupns {
        sys.unshare(libc::CLONE_NEWCGROUP)
            .map_err(at(Step::CgroupNs))?;
    }

    {
        let (mut p, mut d) = (None, None);
        mount_all(sys, plan, root, true, &mut p, &mut d)?;
    }
    if plan.readonly_root {
        sys.mount_setattr(root, c"", AT_EMPTY_PATH, attr::RDONLY, 0)
            .map_err(at(Step::ReadOnlyRoot))?;
    }
    for fd in [proc_fd, dev_fd, Some(null), Some(dev)]
        .into_iter()
        .flatten()
    {
        sys.close(fd);
    }

    // 5. Hostname, network, limits, cwd.
    if let Some(h) = &plan.hostname {
        sys.sethostname(h.to_bytes()).map_err(at(Step::Hostname))?;
    }
    if plan.loopback_up {
        sys.loopback_up().map_err(at(Step::Loopback))?;
    }
    sys.close(root);
    finish_process(sys, &plan.process)
}

/// Steps 5 (limits, cwd) to 7 (exec), shared by the init and by `exec`:
/// the same rlimits, seccomp filter, capabilities, ids and no_new_privs.
pub(crate) fn finish_process(sys: &dyn Syscall, p: &ProcessPlan) -> R<Never> {
    for (res, soft, hard) in &p.rlimits {
        sys.setrlimit(*res, *soft, *hard)
            .map_err(at(Step::Rlimit))?;
    }
    sys.chdir(&p.cwd).map_err(at(Step::Cwd))?;
    if !sys.cwd_is_inside().map_err(at(Step::CwdOutside))? {
        return Err(InitFailure {
            step: Step::CwdOutside,
            errno: Errno::EPERM,
        });
    }
    sys.umask(0o022);

    // 6. Seccomp, capabilities, identity.
    let sc = at(Step::Seccomp);
    if let Some(prog) = &p.seccomp
        && !p.no_new_privs
    {
        sys.seccomp_filter(prog.instructions()).map_err(&sc)?;
    }
    for cap in 0..=p.last_cap.min(63) {
        if p.caps.bounding & (1u64 << cap) == 0 {
            match sys.prctl(libc::PR_CAPBSET_DROP, u64::from(cap), 0) {
                Ok(_) | Err(Errno::EINVAL) => {}
                Err(e) => return Err(at(Step::Bounding)(e)),
            }
        }
    }
    let ids = at(Step::Ids);
    sys.prctl(libc::PR_SET_KEEPCAPS, 1, 0).map_err(&ids)?;
    sys.setgroups(&p.groups).map_err(&ids)?;
    sys.setresgid(p.gid).map_err(&ids)?;
    sys.setresuid(p.uid).map_err(&ids)?;
    sys.prctl(libc::PR_SET_KEEPCAPS, 0, 0).map_err(&ids)?;
    sys.capset(p.caps.effective, p.caps.permitted, p.caps.inheritable)
        .map_err(at(Step::Capabilities))?;
    let am = at(Step::Ambient);
    sys.prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as u64,
        0,
    )
    .map_err(&am)?;
    for cap in 0..=p.last_cap.min(63) {
        if p.caps.ambient & (1u64 << cap) != 0 {
            sys.prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as u64,
                u64::from(cap),
            )
            .map_err(&am)?;
        }
    }
    if p.no_new_privs {
        sys.prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)
            .map_err(at(Step::NoNewPrivs))?;
        if let Some(prog) = &p.seccomp {
            sys.seccomp_filter(prog.instructions()).map_err(&sc)?;
        }
    }

    // 7. No inherited descriptor survives exec.
    sys.cloexec_from(3).map_err(at(Step::CloseFds))?;
    let mut err = Errno::ENOENT;
    for cand in &p.exec_candidates {
        match sys.execve(cand, &p.argv_ptrs, &p.envp_ptrs) {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => err = Errno::EACCES,
            other => {
                return Err(InitFailure {
                    step: Step::Exec,
                    errno: other,
                });
            }
        }
    }
    Err(InitFailure {
        step: Step::Exec,
        errno: err,
    })
}

#[cfg(test)]
mod tests;
