//! The init sequence against a recording double: order and arguments of
//! the kernel calls, without root.

use std::cell::RefCell;
use std::ffi::CStr;
use std::os::fd::RawFd;

use nix::errno::Errno;

use super::*;
use crate::id::ContainerId;
use crate::linux::plan::{InitPlan, PlanContext};
use crate::linux::syscall::SysResult;
use crate::spec::{RunOptions, SecurityOpts, SpecInput, build_spec};

#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<String>>,
    next_fd: RefCell<RawFd>,
    fail: Option<(&'static str, Errno)>,
}

impl Recorder {
    fn rec(&self, name: &'static str, detail: String) -> SysResult<()> {
        self.calls
            .borrow_mut()
            .push(format!("{name} {detail}").trim_end().to_owned());
        match self.fail {
            Some((n, e)) if n == name => Err(e),
            _ => Ok(()),
        }
    }
    fn fd(&self) -> RawFd {
        let mut n = self.next_fd.borrow_mut();
        *n += 1;
        100 + *n
    }
    fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }
}

fn s(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

impl Syscall for Recorder {
    fn read_byte(&self, fd: RawFd) -> SysResult<Option<u8>> {
        self.rec("read_byte", fd.to_string()).map(|()| Some(b'1'))
    }
    fn write_all(&self, fd: RawFd, buf: &[u8]) -> SysResult<()> {
        self.rec("write", format!("{fd} {}", String::from_utf8_lossy(buf)))
    }
    fn close(&self, fd: RawFd) {
        let _ = self.rec("close", fd.to_string());
    }
    fn dup_to(&self, old: RawFd, new: RawFd) -> SysResult<()> {
        self.rec("dup_to", format!("{old} {new}"))
    }
    fn reset_signals(&self, signals: &[i32]) {
        let _ = self.rec("reset_signals", format!("{signals:?}"));
    }
    fn umask(&self, mask: u32) {
        let _ = self.rec("umask", format!("{mask:o}"));
    }
    fn setns(&self, fd: RawFd, nstype: i32) -> SysResult<()> {
        self.rec("setns", format!("{fd} {nstype:#x}"))
    }
    fn fork_sibling(&self) -> SysResult<i32> {
        self.rec("fork_sibling", String::new()).map(|()| 0)
    }
    fn setsid(&self) -> SysResult<()> {
        self.rec("setsid", String::new())
    }
    fn set_controlling_tty(&self, fd: RawFd) -> SysResult<()> {
        self.rec("set_controlling_tty", fd.to_string())
    }
    fn unshare(&self, flags: i32) -> SysResult<()> {
        self.rec("unshare", format!("{flags:#x}"))
    }
    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: u64,
        _data: Option<&CStr>,
    ) -> SysResult<()> {
        self.rec(
            "mount",
            format!(
                "{:?} {} {:?} {flags:#x}",
                source.map(s),
                s(target),
                fstype.map(s)
            ),
        )
    }
    fn umount2(&self, target: &CStr, flags: i32) -> SysResult<()> {
        self.rec("umount2", format!("{} {flags}", s(target)))
    }
    fn openat(&self, dirfd: RawFd, path: &CStr, _flags: i32, _mode: u32) -> SysResult<RawFd> {
        self.rec("openat", format!("{dirfd} {}", s(path)))
            .map(|()| self.fd())
    }
    fn openat2(&self, dirfd: RawFd, path: &CStr, _flags: i32, resolve: u64) -> SysResult<RawFd> {
        self.rec("openat2", format!("{dirfd} {} {resolve:#x}", s(path)))
            .map(|()| self.fd())
    }
    fn fchdir(&self, fd: RawFd) -> SysResult<()> {
        self.rec("fchdir", fd.to_string())
    }
    fn chdir(&self, path: &CStr) -> SysResult<()> {
        self.rec("chdir", s(path))
    }
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult<()> {
        self.rec("pivot_root", format!("{} {}", s(new_root), s(put_old)))
    }
    fn fsopen(&self, fstype: &CStr) -> SysResult<RawFd> {
        self.rec("fsopen", s(fstype)).map(|()| self.fd())
    }
    fn fsconfig(
        &self,
        fd: RawFd,
        cmd: u32,
        key: Option<&CStr>,
        value: Option<&CStr>,
    ) -> SysResult<()> {
        self.rec(
            "fsconfig",
            format!("{fd} {cmd} {:?} {:?}", key.map(s), value.map(s)),
        )
    }
    fn fsmount(&self, fd: RawFd, attrs: u64) -> SysResult<RawFd> {
        self.rec("fsmount", format!("{fd} {attrs:#x}"))
            .map(|()| self.fd())
    }
    fn move_mount(
        &self,
        from: RawFd,
        _fp: &CStr,
        to: RawFd,
        _tp: &CStr,
        flags: u32,
    ) -> SysResult<()> {
        self.rec("move_mount", format!("{from} {to} {flags:#x}"))
    }
    fn open_tree(&self, dirfd: RawFd, path: &CStr, flags: u32) -> SysResult<RawFd> {
        self.rec("open_tree", format!("{dirfd} {} {flags:#x}", s(path)))
            .map(|()| self.fd())
    }
    fn mount_setattr(
        &self,
        fd: RawFd,
        _path: &CStr,
        flags: u32,
        set: u64,
        clear: u64,
    ) -> SysResult<()> {
        self.rec(
            "mount_setattr",
            format!("{fd} {flags:#x} {set:#x} {clear:#x}"),
        )
    }
    fn mkdirat(&self, dirfd: RawFd, path: &CStr, mode: u32) -> SysResult<()> {
        self.rec("mkdirat", format!("{dirfd} {} {mode:o}", s(path)))
    }
    fn mknodat(&self, dirfd: RawFd, path: &CStr, mode: u32, dev: u64) -> SysResult<()> {
        self.rec("mknodat", format!("{dirfd} {} {mode:o} {dev:#x}", s(path)))
    }
    fn fchownat(&self, dirfd: RawFd, path: &CStr, uid: u32, gid: u32) -> SysResult<()> {
        self.rec("fchownat", format!("{dirfd} {} {uid} {gid}", s(path)))
    }
    fn symlinkat(&self, target: &CStr, dirfd: RawFd, path: &CStr) -> SysResult<()> {
        self.rec("symlinkat", format!("{} {dirfd} {}", s(target), s(path)))
    }
    fn fstat(&self, fd: RawFd) -> SysResult<(u32, u64)> {
        self.rec("fstat", fd.to_string())
            .map(|()| (libc::S_IFCHR | 0o666, libc::makedev(1, 3)))
    }
    fn fstatfs(&self, fd: RawFd) -> SysResult<i64> {
        self.rec("fstatfs", fd.to_string())
            .map(|()| PROC_SUPER_MAGIC)
    }
    fn sethostname(&self, name: &[u8]) -> SysResult<()> {
        self.rec("sethostname", String::from_utf8_lossy(name).into_owned())
    }
    fn loopback_up(&self) -> SysResult<()> {
        self.rec("loopback_up", String::new())
    }
    fn setrlimit(&self, resource: u32, soft: u64, hard: u64) -> SysResult<()> {
        self.rec("setrlimit", format!("{resource} {soft} {hard}"))
    }
    fn cwd_is_inside(&self) -> SysResult<bool> {
        self.rec("cwd_is_inside", String::new()).map(|()| true)
    }
    fn prctl(&self, option: i32, arg2: u64, arg3: u64) -> SysResult<i32> {
        self.rec("prctl", format!("{option} {arg2} {arg3}"))
            .map(|()| 0)
    }
    fn setgroups(&self, gids: &[u32]) -> SysResult<()> {
        self.rec("setgroups", format!("{gids:?}"))
    }
    fn setresgid(&self, gid: u32) -> SysResult<()> {
        self.rec("setresgid", gid.to_string())
    }
    fn setresuid(&self, uid: u32) -> SysResult<()> {
        self.rec("setresuid", uid.to_string())
    }
    fn capset(&self, e: u64, p: u64, i: u64) -> SysResult<()> {
        self.rec("capset", format!("{e:#x} {p:#x} {i:#x}"))
    }
    fn seccomp_filter(&self, prog: &[libc::sock_filter]) -> SysResult<()> {
        self.rec("seccomp", prog.len().to_string())
    }
    fn cloexec_from(&self, first: u32) -> SysResult<()> {
        self.rec("cloexec_from", first.to_string())
    }
    fn execve(&self, path: &CStr, _a: &[*const libc::c_char], _e: &[*const libc::c_char]) -> Errno {
        let _ = self.rec("execve", s(path));
        Errno::ENOENT
    }
    fn exit(&self, code: i32) -> ! {
        panic!("init must not exit by itself (code {code})")
    }
}

fn plan(opts: &RunOptions) -> InitPlan {
    let id = ContainerId::parse("abcdef0123456789").unwrap();
    let spec = build_spec(
        SpecInput {
            id: &id,
            image: None,
            layers: &[],
        },
        opts,
    )
    .unwrap();
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| std::sync::Arc::new(crate::seccomp::compile(s).unwrap()));
    let v1 = vec![
        ("memory".to_owned(), vec!["memory".to_owned()]),
        ("pids".to_owned(), vec!["pids".to_owned()]),
    ];
    InitPlan::build(
        &spec,
        PlanContext {
            rootfs: std::path::Path::new("/state/c/rootfs"),
            overlay_options: "lowerdir=/l,upperdir=/u,workdir=/w",
            v1_hierarchies: &v1,
            cgroup_v2: false,
            enforces_devices: true,
            seccomp,
            stdio: [Some(7), None, None],
            go: (3, 4),
            err: (5, 6),
            unshare_cgroupns: true,
            loopback_up: true,
            wait_for_go: true,
        },
    )
    .unwrap()
}

fn pos(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call {prefix:?} in {calls:#?}"))
}

fn find(calls: &[String], needle: &str) -> usize {
    calls
        .iter()
        .position(|c| c.contains(needle))
        .unwrap_or_else(|| panic!("no call with {needle:?} in {calls:#?}"))
}

fn sh() -> RunOptions {
    RunOptions {
        cmd: vec!["sh".into(), "-c".into(), "true".into()],
        hostname: Some("box".into()),
        ..Default::default()
    }
}

#[test]
fn default_sequence_order() {
    // The plan clamps capabilities to the ones we hold.
    if crate::testutil::skip_unless_root("default_sequence_order") {
        return;
    }
    let r = Recorder::default();
    let f = run(&r, &plan(&sh()));
    assert_eq!(
        f,
        InitFailure {
            step: Step::Exec,
            errno: Errno::ENOENT
        }
    );
    let c = r.calls();
    assert_eq!(
        &c[..2],
        ["close 4", "close 5"],
        "parent pipe ends closed first"
    );
    assert!(c[2].starts_with("reset_signals ["), "{}", c[2]);
    assert!(pos(&c, "dup_to 7 0") < pos(&c, "read_byte 3"));
    assert!(
        pos(&c, "umount2 . 2") < pos(&c, "read_byte 3"),
        "the pivot overlaps the parent's cgroup move"
    );
    assert!(
        pos(&c, "unshare 0x2000000") < pos(&c, "fsopen cgroup"),
        "the cgroup mounts see the container's cgroup ns"
    );
    assert!(
        find(&c, "/proc/kcore") < pos(&c, "read_byte 3"),
        "the parent's cgroup move overlaps nearly all of the setup"
    );
    assert!(
        pos(&c, "read_byte 3") < pos(&c, "unshare 0x2000000"),
        "cgroupns after the parent moved us"
    );
    let overlay = pos(&c, "mount Some(\"overlay\") /state/c/rootfs");
    let pivot = pos(&c, "pivot_root . .");
    assert!(pos(&c, "mount None / None") < overlay && overlay < pivot);
    assert!(pivot < pos(&c, "umount2 . 2"), "old root detached");
    assert!(
        pivot < pos(&c, "fsopen proc"),
        "all other mounts happen inside the new root"
    );
    // Mount targets are resolved with RESOLVE_IN_ROOT|NO_SYMLINKS|NO_MAGICLINKS.
    assert!(c.iter().any(|x| x.ends_with("/proc 0x16")), "{c:#?}");
    // /dev/null is created and verified before being bound over masked files.
    let mask = find(&c, "/proc/kcore 0x16");
    assert!(find(&c, " null 0x") < mask, "{c:#?}");
    assert!(pos(&c, "mknodat") < mask);
    assert!(
        pos(&c, "fstatfs") > pos(&c, "mknodat"),
        "sysctl checked to be procfs"
    );
    assert!(
        c.iter()
            .any(|x| x.starts_with("openat2")
                && x.contains("sys/net/ipv4/ip_unprivileged_port_start"))
    );
    assert!(
        pos(&c, "write") < find(&c, "/proc/sys 0x16"),
        "sysctls before /proc/sys turns read-only"
    );
    assert!(pos(&c, "sethostname box") < pos(&c, "seccomp"));
    assert!(c.contains(&"loopback_up".to_owned()));
    // Seccomp needs CAP_SYS_ADMIN without NNP: before the capability drop.
    let seccomp = pos(&c, "seccomp");
    assert!(pos(&c, "cwd_is_inside") < seccomp);
    assert!(
        seccomp < pos(&c, "prctl 24 21 0"),
        "then the bounding set loses CAP_SYS_ADMIN"
    );
    assert!(seccomp < pos(&c, "capset"));
    assert!(
        c.contains(&"capset 0xa80425fb 0xa80425fb 0xa80425fb".to_owned()),
        "{c:#?}"
    );
    assert!(
        !c.iter().any(|x| x.starts_with("prctl 38")),
        "no NNP by default"
    );
    // Nothing between close_range and exec; PATH is searched in order.
    let cl = pos(&c, "cloexec_from 3");
    assert_eq!(c[cl + 1], "execve /usr/local/sbin/sh");
    assert_eq!(c.last().unwrap(), "execve /bin/sh");
    assert!(c[cl + 1..].iter().all(|x| x.starts_with("execve")));
}

#[test]
fn no_new_privs_moves_seccomp_last() {
    let r = Recorder::default();
    let opts = RunOptions {
        security: SecurityOpts {
            no_new_privileges: true,
            ..Default::default()
        },
        ..sh()
    };
    run(&r, &plan(&opts));
    let c = r.calls();
    let nnp = pos(&c, "prctl 38 1 0");
    let seccomp = pos(&c, "seccomp");
    assert!(pos(&c, "capset") < nnp && nnp < seccomp && seccomp < pos(&c, "cloexec_from"));
    assert_eq!(c.iter().filter(|x| x.starts_with("seccomp")).count(), 1);
}

#[test]
fn a_failing_step_stops_the_sequence() {
    let r = Recorder {
        fail: Some(("pivot_root", Errno::EINVAL)),
        ..Default::default()
    };
    let f = run(&r, &plan(&sh()));
    assert_eq!(
        f,
        InitFailure {
            step: Step::PivotRoot,
            errno: Errno::EINVAL
        }
    );
    assert!(
        !r.calls()
            .iter()
            .any(|x| x.starts_with("fsopen") || x.starts_with("execve"))
    );
    assert_eq!(InitFailure::decode(&f.encode()), Some(f));
    assert_eq!(InitFailure::decode(&[0; 3]), None);
}

#[test]
fn privileged_skips_masks_and_seccomp() {
    if crate::testutil::skip_unless_root("privileged_skips_masks_and_seccomp") {
        return;
    }
    let r = Recorder::default();
    run(
        &r,
        &plan(&RunOptions {
            privileged: true,
            ..sh()
        }),
    );
    let c = r.calls();
    assert!(!c.iter().any(|x| x.starts_with("seccomp")));
    assert!(!c.iter().any(|x| x.contains("/proc/kcore")));
    assert!(
        !c.contains(&"prctl 24 21 0".to_owned()),
        "CAP_SYS_ADMIN stays in the bounding set"
    );
}
