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
