//! The kernel boundary of the container's init: every call the child makes
//! between `clone3` and `execve` goes through [`Syscall`], so the order and
//! arguments of the setup can be checked by a recording double without root
//! (see `init::tests`). [`LinuxSyscall`] is the only implementation that
//! talks to the kernel; it is also the only place with `unsafe` here.
//!
//! Every method is async-signal-safe and allocation-free: the child runs in
//! a copy of a possibly multi-threaded parent, where taking the allocator
//! lock could deadlock.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::fd::RawFd;

use nix::errno::Errno;

/// Result of a raw call.
pub type SysResult<T> = Result<T, Errno>;

/// `mount_setattr`/`fsmount` attribute bits.
pub mod attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x1;
    /// No set-id.
    pub const NOSUID: u64 = 0x2;
    /// No device nodes.
    pub const NODEV: u64 = 0x4;
    /// No exec.
    pub const NOEXEC: u64 = 0x8;
    /// atime: relatime (the `_ATIME` field value 0).
    pub const RELATIME: u64 = 0x0;
    /// atime: noatime.
    pub const NOATIME: u64 = 0x10;
    /// atime: strictatime.
    pub const STRICTATIME: u64 = 0x20;
    /// No directory atime.
    pub const NODIRATIME: u64 = 0x80;
}

/// `openat2` resolve flags.
pub mod resolve {
    /// Do not cross mounts.
    pub const NO_XDEV: u64 = 0x01;
    /// No `/proc/*/fd`-style magic links.
    pub const NO_MAGICLINKS: u64 = 0x02;
    /// No symlinks at all.
    pub const NO_SYMLINKS: u64 = 0x04;
    /// Stay beneath the dirfd.
    pub const BENEATH: u64 = 0x08;
    /// Treat the dirfd as `/`.
    pub const IN_ROOT: u64 = 0x10;
}

/// `fsconfig` commands.
pub const FSCONFIG_SET_FLAG: u32 = 0;
/// `fsconfig` set string.
pub const FSCONFIG_SET_STRING: u32 = 1;
/// `fsconfig` create the superblock.
pub const FSCONFIG_CMD_CREATE: u32 = 6;
/// `move_mount` from an fd.
pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
/// `move_mount` onto an fd.
pub const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
/// `open_tree`: clone the tree.
pub const OPEN_TREE_CLONE: u32 = 1;
/// `AT_RECURSIVE`.
pub const AT_RECURSIVE: u32 = 0x8000;
/// `AT_EMPTY_PATH`.
pub const AT_EMPTY_PATH: u32 = 0x1000;

/// The calls the container's init makes.
pub trait Syscall {
    /// Reads one byte (`Ok(None)` at EOF).
    fn read_byte(&self, fd: RawFd) -> SysResult<Option<u8>>;
    /// Writes a whole buffer.
    fn write_all(&self, fd: RawFd, buf: &[u8]) -> SysResult<()>;
    /// Closes a descriptor.
    fn close(&self, fd: RawFd);
    /// `dup2`, clearing close-on-exec when `old == new`.
    fn dup_to(&self, old: RawFd, new: RawFd) -> SysResult<()>;
    /// Resets the given signals' dispositions to default and unblocks all.
    fn reset_signals(&self, signals: &[i32]);
    /// `umask`.
    fn umask(&self, mask: u32);
    /// `setsid`: the container's init leads its own session.
    fn setsid(&self) -> SysResult<()>;
    /// `ioctl(fd, TIOCSCTTY, 0)`: make `fd` the controlling terminal.
    fn set_controlling_tty(&self, fd: RawFd) -> SysResult<()>;
    /// `unshare`.
    fn unshare(&self, flags: i32) -> SysResult<()>;
    /// `setns(fd, nstype)`; with a pidfd, joins several namespaces at once.
    fn setns(&self, fd: RawFd, nstype: i32) -> SysResult<()>;
    /// A fork-like `clone(CLONE_PARENT)`: the new process is a sibling (our
    /// parent's child). Returns 0 in the new process, its pid in the caller.
    fn fork_sibling(&self) -> SysResult<i32>;
    /// Classic `mount(2)`.
    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: u64,
        data: Option<&CStr>,
    ) -> SysResult<()>;
    /// `umount2`.
    fn umount2(&self, target: &CStr, flags: i32) -> SysResult<()>;
    /// `openat`.
    fn openat(&self, dirfd: RawFd, path: &CStr, flags: i32, mode: u32) -> SysResult<RawFd>;
    /// `openat2` (close-on-exec is always added).
    fn openat2(&self, dirfd: RawFd, path: &CStr, flags: i32, resolve: u64) -> SysResult<RawFd>;
    /// `fchdir`.
    fn fchdir(&self, fd: RawFd) -> SysResult<()>;
    /// `chdir`.
    fn chdir(&self, path: &CStr) -> SysResult<()>;
    /// `pivot_root`.
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult<()>;
    /// `fsopen` (close-on-exec).
    fn fsopen(&self, fstype: &CStr) -> SysResult<RawFd>;
    /// `fsconfig`.
    fn fsconfig(
        &self,
        fd: RawFd,
        cmd: u32,
        key: Option<&CStr>,
        value: Option<&CStr>,
    ) -> SysResult<()>;
    /// `fsmount` (close-on-exec) with mount attributes.
    fn fsmount(&self, fd: RawFd, attrs: u64) -> SysResult<RawFd>;
    /// `move_mount`.
    fn move_mount(
        &self,
        from: RawFd,
        from_path: &CStr,
        to: RawFd,
        to_path: &CStr,
        flags: u32,
    ) -> SysResult<()>;
    /// `open_tree` (close-on-exec is always added).
    fn open_tree(&self, dirfd: RawFd, path: &CStr, flags: u32) -> SysResult<RawFd>;
    /// `mount_setattr` setting `set` and clearing `clear`.
    fn mount_setattr(
        &self,
        fd: RawFd,
        path: &CStr,
        flags: u32,
        set: u64,
        clear: u64,
    ) -> SysResult<()>;
    /// `mkdirat`.
    fn mkdirat(&self, dirfd: RawFd, path: &CStr, mode: u32) -> SysResult<()>;
    /// `mknodat`.
    fn mknodat(&self, dirfd: RawFd, path: &CStr, mode: u32, dev: u64) -> SysResult<()>;
    /// `fchownat` without following symlinks.
    fn fchownat(&self, dirfd: RawFd, path: &CStr, uid: u32, gid: u32) -> SysResult<()>;
    /// `symlinkat`.
    fn symlinkat(&self, target: &CStr, dirfd: RawFd, path: &CStr) -> SysResult<()>;
    /// `fstat`: (st_mode, st_rdev).
    fn fstat(&self, fd: RawFd) -> SysResult<(u32, u64)>;
    /// `fstatfs`: f_type.
    fn fstatfs(&self, fd: RawFd) -> SysResult<i64>;
    /// `sethostname`.
    fn sethostname(&self, name: &[u8]) -> SysResult<()>;
    /// Brings `lo` up.
    fn loopback_up(&self) -> SysResult<()>;
    /// `setrlimit`.
    fn setrlimit(&self, resource: u32, soft: u64, hard: u64) -> SysResult<()>;
    /// True if the cwd is reachable from the root (`getcwd` starts with `/`).
    fn cwd_is_inside(&self) -> SysResult<bool>;
    /// `prctl` with two integer arguments.
    fn prctl(&self, option: i32, arg2: u64, arg3: u64) -> SysResult<i32>;
    /// `setgroups`.
    fn setgroups(&self, gids: &[u32]) -> SysResult<()>;
    /// `setresgid(gid, gid, gid)`.
    fn setresgid(&self, gid: u32) -> SysResult<()>;
    /// `setresuid(uid, uid, uid)`.
    fn setresuid(&self, uid: u32) -> SysResult<()>;
    /// `capset` with 64-bit masks.
    fn capset(&self, effective: u64, permitted: u64, inheritable: u64) -> SysResult<()>;
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`.
    fn seccomp_filter(&self, prog: &[libc::sock_filter]) -> SysResult<()>;
    /// `close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`.
    fn cloexec_from(&self, first: u32) -> SysResult<()>;
    /// `execve`; returns only on failure.
    fn execve(
        &self,
        path: &CStr,
        argv: &[*const libc::c_char],
        envp: &[*const libc::c_char],
    ) -> Errno;
    /// `_exit`.
    fn exit(&self, code: i32) -> !;
}

/// The real kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxSyscall;

fn cvt(r: libc::c_long) -> SysResult<libc::c_long> {
    if r < 0 { Err(Errno::last()) } else { Ok(r) }
}

fn opt_ptr(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(std::ptr::null(), CStr::as_ptr)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

impl Syscall for LinuxSyscall {
    fn read_byte(&self, fd: RawFd) -> SysResult<Option<u8>> {
        let mut b = 0u8;
        loop {
            // SAFETY: reads at most one byte into a valid local.
            let r = unsafe { libc::read(fd, (&raw mut b).cast(), 1) };
            match r {
                1 => return Ok(Some(b)),
                0 => return Ok(None),
                _ if Errno::last() == Errno::EINTR => continue,
                _ => return Err(Errno::last()),
            }
        }
    }

    fn write_all(&self, fd: RawFd, mut buf: &[u8]) -> SysResult<()> {
        while !buf.is_empty() {
            // SAFETY: `buf` is a valid slice for its length.
            let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
            if r < 0 {
                if Errno::last() == Errno::EINTR {
                    continue;
                }
                return Err(Errno::last());
            }
            buf = &buf[r as usize..];
        }
        Ok(())
    }

    fn close(&self, fd: RawFd) {
        // SAFETY: closing a descriptor number has no memory effects.
        unsafe { libc::close(fd) };
    }

    fn dup_to(&self, old: RawFd, new: RawFd) -> SysResult<()> {
        if old == new {
            // SAFETY: fcntl on a descriptor number.
            let flags = unsafe { libc::fcntl(old, libc::F_GETFD) };
            cvt(flags.into())?;
            // SAFETY: as above.
            cvt(unsafe { libc::fcntl(old, libc::F_SETFD, flags & !libc::FD_CLOEXEC) }.into())?;
            return Ok(());
        }
        // SAFETY: dup2 on descriptor numbers.
        cvt(unsafe { libc::dup2(old, new) }.into()).map(drop)
    }

    fn reset_signals(&self, signals: &[i32]) {
        // The kernel's struct sigaction for rt_sigaction (x86_64/aarch64):
        // handler, flags, restorer, mask. The raw call also resets the
        // signals glibc reserves (32, 33), which `signal()` refuses.
        #[repr(C)]
        struct KernelSigaction {
            handler: usize,
            flags: u64,
            restorer: usize,
            mask: u64,
        }
        let dfl = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        for &sig in signals {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            // SAFETY: a valid kernel sigaction for SIG_DFL, no old-action
            // pointer, sigset size 8; errors are ignored.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &raw const dfl,
                    std::ptr::null::<u8>(),
                    8usize,
                )
            };
        }
        let empty = 0u64;
        // SAFETY: an empty 8-byte mask by pointer, no old-mask pointer.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &raw const empty,
                std::ptr::null::<u8>(),
                8usize,
            )
        };
    }

    fn umask(&self, mask: u32) {
        // SAFETY: no memory effects.
        unsafe { libc::umask(mask) };
    }

    fn setns(&self, fd: RawFd, nstype: i32) -> SysResult<()> {
        // SAFETY: integer arguments.
        cvt(unsafe { libc::setns(fd, nstype) }.into()).map(drop)
    }

    fn fork_sibling(&self) -> SysResult<i32> {
        // SAFETY: a raw clone without CLONE_VM and with a null stack forks;
        // the new process only continues the allocation-free exec sequence.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        })
        .map(|p| p as i32)
    }

    fn setsid(&self) -> SysResult<()> {
        // SAFETY: no memory effects.
        cvt(unsafe { libc::setsid() }.into()).map(drop)
    }

    fn set_controlling_tty(&self, fd: RawFd) -> SysResult<()> {
        // SAFETY: TIOCSCTTY takes an integer argument.
        cvt(unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }.into()).map(drop)
    }

    fn unshare(&self, flags: i32) -> SysResult<()> {
        // SAFETY: no memory effects.
        cvt(unsafe { libc::unshare(flags) }.into()).map(drop)
    }

    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: u64,
        data: Option<&CStr>,
    ) -> SysResult<()> {
        // SAFETY: all pointers are NUL-terminated strings or null.
        cvt(unsafe {
            libc::mount(
                opt_ptr(source),
                target.as_ptr(),
                opt_ptr(fstype),
                flags as libc::c_ulong,
                opt_ptr(data).cast(),
            )
        }
        .into())
        .map(drop)
    }

    fn umount2(&self, target: &CStr, flags: i32) -> SysResult<()> {
        // SAFETY: NUL-terminated path.
        cvt(unsafe { libc::umount2(target.as_ptr(), flags) }.into()).map(drop)
    }

    fn openat(&self, dirfd: RawFd, path: &CStr, flags: i32, mode: u32) -> SysResult<RawFd> {
        // SAFETY: NUL-terminated path.
        cvt(unsafe { libc::openat(dirfd, path.as_ptr(), flags | libc::O_CLOEXEC, mode) }.into())
            .map(|fd| fd as RawFd)
    }

    fn openat2(&self, dirfd: RawFd, path: &CStr, flags: i32, resolve: u64) -> SysResult<RawFd> {
        // SAFETY: open_how is plain data; zeroed is a valid value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        how.resolve = resolve;
        // SAFETY: valid path and struct pointers with the struct's size.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                path.as_ptr(),
                &raw const how,
                std::mem::size_of::<libc::open_how>(),
            )
        })
        .map(|fd| fd as RawFd)
    }

    fn fchdir(&self, fd: RawFd) -> SysResult<()> {
        // SAFETY: no memory effects.
        cvt(unsafe { libc::fchdir(fd) }.into()).map(drop)
    }

    fn chdir(&self, path: &CStr) -> SysResult<()> {
        // SAFETY: NUL-terminated path.
        cvt(unsafe { libc::chdir(path.as_ptr()) }.into()).map(drop)
    }

    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult<()> {
        // SAFETY: NUL-terminated paths.
        cvt(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
            .map(drop)
    }

    fn fsopen(&self, fstype: &CStr) -> SysResult<RawFd> {
        // SAFETY: NUL-terminated name; FSOPEN_CLOEXEC = 1.
        cvt(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), 1u32) }).map(|fd| fd as RawFd)
    }

    fn fsconfig(
        &self,
        fd: RawFd,
        cmd: u32,
        key: Option<&CStr>,
        value: Option<&CStr>,
    ) -> SysResult<()> {
        // SAFETY: NUL-terminated strings or null, aux 0.
        cvt(unsafe { libc::syscall(libc::SYS_fsconfig, fd, cmd, opt_ptr(key), opt_ptr(value), 0) })
            .map(drop)
    }

    fn fsmount(&self, fd: RawFd, attrs: u64) -> SysResult<RawFd> {
        // SAFETY: FSMOUNT_CLOEXEC = 1.
        cvt(unsafe { libc::syscall(libc::SYS_fsmount, fd, 1u32, attrs as libc::c_uint) })
            .map(|fd| fd as RawFd)
    }

    fn move_mount(
        &self,
        from: RawFd,
        from_path: &CStr,
        to: RawFd,
        to_path: &CStr,
        flags: u32,
    ) -> SysResult<()> {
        // SAFETY: NUL-terminated paths.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                from,
                from_path.as_ptr(),
                to,
                to_path.as_ptr(),
                flags,
            )
        })
        .map(drop)
    }

    fn open_tree(&self, dirfd: RawFd, path: &CStr, flags: u32) -> SysResult<RawFd> {
        // SAFETY: NUL-terminated path.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                dirfd,
                path.as_ptr(),
                flags | libc::O_CLOEXEC as u32,
            )
        })
        .map(|fd| fd as RawFd)
    }

    fn mount_setattr(
        &self,
        fd: RawFd,
        path: &CStr,
        flags: u32,
        set: u64,
        clear: u64,
    ) -> SysResult<()> {
        let a = MountAttr {
            attr_set: set,
            attr_clr: clear,
            propagation: 0,
            userns_fd: 0,
        };
        // SAFETY: valid path and struct pointers with the struct's size.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd,
                path.as_ptr(),
                flags,
                &raw const a,
                std::mem::size_of::<MountAttr>(),
            )
        })
        .map(drop)
    }

    fn mkdirat(&self, dirfd: RawFd, path: &CStr, mode: u32) -> SysResult<()> {
        // SAFETY: NUL-terminated path.
        cvt(unsafe { libc::mkdirat(dirfd, path.as_ptr(), mode) }.into()).map(drop)
    }

    fn mknodat(&self, dirfd: RawFd, path: &CStr, mode: u32, dev: u64) -> SysResult<()> {
        // SAFETY: NUL-terminated path.
        cvt(unsafe { libc::mknodat(dirfd, path.as_ptr(), mode, dev) }.into()).map(drop)
    }

    fn fchownat(&self, dirfd: RawFd, path: &CStr, uid: u32, gid: u32) -> SysResult<()> {
        // SAFETY: NUL-terminated path.
        cvt(
            unsafe { libc::fchownat(dirfd, path.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) }
                .into(),
        )
        .map(drop)
    }

    fn symlinkat(&self, target: &CStr, dirfd: RawFd, path: &CStr) -> SysResult<()> {
        // SAFETY: NUL-terminated strings.
        cvt(unsafe { libc::symlinkat(target.as_ptr(), dirfd, path.as_ptr()) }.into()).map(drop)
    }

    fn fstat(&self, fd: RawFd) -> SysResult<(u32, u64)> {
        // SAFETY: stat is plain data; the kernel fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a local.
        cvt(unsafe { libc::fstat(fd, &mut st) }.into())?;
        Ok((st.st_mode, st.st_rdev))
    }

    fn fstatfs(&self, fd: RawFd) -> SysResult<i64> {
        // SAFETY: statfs is plain data; the kernel fills it.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a local.
        cvt(unsafe { libc::fstatfs(fd, &mut st) }.into())?;
        Ok(st.f_type as i64)
    }

    fn sethostname(&self, name: &[u8]) -> SysResult<()> {
        // SAFETY: pointer and length of a valid slice.
        cvt(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }.into()).map(drop)
    }

    fn loopback_up(&self) -> SysResult<()> {
        // SAFETY: plain socket creation.
        let s =
            cvt(
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }
                    .into(),
            )? as RawFd;
        // SAFETY: ifreq is plain data; zeroed is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        ifr.ifr_name[0] = b'l' as libc::c_char;
        ifr.ifr_name[1] = b'o' as libc::c_char;
        // SAFETY: SIOCGIFFLAGS reads into the ifreq we own.
        let r =
            cvt(unsafe { libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) }.into()).and_then(|_| {
                // SAFETY: the union's flags member was just written by the kernel.
                unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
                // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
                cvt(unsafe { libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr) }.into())
            });
        self.close(s);
        r.map(drop)
    }

    fn setrlimit(&self, resource: u32, soft: u64, hard: u64) -> SysResult<()> {
        let l = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: valid pointer to a local.
        cvt(unsafe { libc::setrlimit(resource as _, &l) }.into()).map(drop)
    }

    fn cwd_is_inside(&self) -> SysResult<bool> {
        let mut buf = [0u8; 4096];
        // SAFETY: the raw syscall writes at most buf.len() bytes into buf.
        let n = cvt(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })?;
        Ok(n > 0 && buf[0] == b'/')
    }

    fn prctl(&self, option: i32, arg2: u64, arg3: u64) -> SysResult<i32> {
        // SAFETY: the options we use take integer arguments only.
        cvt(unsafe {
            libc::prctl(
                option,
                arg2 as libc::c_ulong,
                arg3 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        }
        .into())
        .map(|r| r as i32)
    }

    fn setgroups(&self, gids: &[u32]) -> SysResult<()> {
        // SAFETY: pointer and length of a valid slice.
        cvt(unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) }).map(drop)
    }

    fn setresgid(&self, gid: u32) -> SysResult<()> {
        // Raw syscall: glibc's wrapper would broadcast to other threads.
        // SAFETY: integer arguments.
        cvt(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
    }

    fn setresuid(&self, uid: u32) -> SysResult<()> {
        // SAFETY: integer arguments.
        cvt(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
    }

    fn capset(&self, effective: u64, permitted: u64, inheritable: u64) -> SysResult<()> {
        let hdr = CapHeader {
            version: 0x2008_0522,
            pid: 0,
        };
        let data = [
            CapData {
                effective: effective as u32,
                permitted: permitted as u32,
                inheritable: inheritable as u32,
            },
            CapData {
                effective: (effective >> 32) as u32,
                permitted: (permitted >> 32) as u32,
                inheritable: (inheritable >> 32) as u32,
            },
        ];
        // SAFETY: version-3 header and two data structs, as the ABI requires.
        cvt(unsafe { libc::syscall(libc::SYS_capset, &raw const hdr, data.as_ptr()) }).map(drop)
    }

    fn seccomp_filter(&self, prog: &[libc::sock_filter]) -> SysResult<()> {
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_ptr().cast_mut(),
        };
        // SAFETY: the kernel copies `len` instructions from a valid slice.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                1u32, /* SET_MODE_FILTER */
                0u32,
                &raw const fprog,
            )
        })
        .map(drop)
    }

    fn cloexec_from(&self, first: u32) -> SysResult<()> {
        // SAFETY: integer arguments; CLOSE_RANGE_CLOEXEC = 4.
        cvt(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 4u32) }).map(drop)
    }

    fn execve(
        &self,
        path: &CStr,
        argv: &[*const libc::c_char],
        envp: &[*const libc::c_char],
    ) -> Errno {
        // SAFETY: argv/envp are null-terminated arrays of pointers into
        // CStrings that outlive this call (owned by the init plan).
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        Errno::last()
    }

    fn exit(&self, code: i32) -> ! {
        // SAFETY: _exit never returns and runs no destructors or atexit hooks.
        unsafe { libc::_exit(code) }
    }
}
