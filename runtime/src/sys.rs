//! Small unsafe helpers at the syscall boundary that the rest of the crate
//! (outside `linux::`) needs. Each `unsafe` block states why it is sound.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor that a successful open-like call has just
/// returned.
pub fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass only descriptors freshly returned by a successful
    // syscall (openat/openat2/...), which nothing else owns or will close.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `pidfd_send_signal`: signals exactly the process the descriptor names
/// (no pid-reuse race).
pub fn pidfd_send_signal(pidfd: std::os::fd::BorrowedFd<'_>, sig: i32) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: integer arguments and a null siginfo pointer.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

/// `pidfd_open`: a descriptor for a process (ours or not).
pub fn pidfd_open(pid: i32) -> nix::Result<std::os::fd::OwnedFd> {
    // SAFETY: integer arguments; the result is a new descriptor we own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    nix::errno::Errno::result(r).map(|fd| own_fd(fd as RawFd))
}
