//! `clone3` into the new namespaces (the one `unsafe` process-creation
//! call), and the child's entry point. No re-exec of any binary happens: the
//! child runs the init sequence in the cloned address space and then execs
//! the container's command, so no host executable is ever reachable from
//! the container (runc CVE-2019-5736).
#![allow(unsafe_code)]

use std::os::fd::{OwnedFd, RawFd};

use nix::errno::Errno;

use super::exec::{self, ExecPlan};
use super::init;
use super::plan::InitPlan;
use super::syscall::{LinuxSyscall, Syscall};

/// `CLONE_INTO_CGROUP`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A freshly cloned child.
#[derive(Debug)]
pub(crate) struct Child {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

fn child_main(plan: &InitPlan) -> ! {
    let sys = LinuxSyscall;
    let failure = init::run(&sys, plan);
    let _ = sys.write_all(plan.err_write, &failure.encode());
    sys.exit(match (failure.step, failure.errno) {
        (init::Step::Exec, Errno::ENOENT) => 127,
        (init::Step::Exec, _) => 126,
        _ => 125,
    })
}

fn exec_child_main(plan: &ExecPlan) -> ! {
    let sys = LinuxSyscall;
    match exec::run(&sys, plan) {
        Ok(pid) => {
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&exec::PID_TAG.to_le_bytes());
            msg[4..].copy_from_slice(&pid.to_le_bytes());
            let _ = sys.write_all(plan.err_write, &msg);
            sys.exit(0)
        }
        Err(failure) => {
            let _ = sys.write_all(plan.err_write, &failure.encode());
            sys.exit(match (failure.step, failure.errno) {
                (init::Step::Exec, Errno::ENOENT) => 127,
                (init::Step::Exec, _) => 126,
                _ => 125,
            })
        }
    }
}

/// What the cloned child runs.
pub(crate) enum Entry<'a> {
    /// A container's init.
    Init(&'a InitPlan),
    /// An `exec` into a running container.
    Exec(&'a ExecPlan),
}

/// Clones a child with `flags` (namespace flags), optionally straight into
/// the cgroup directory `cgroup_fd`, and runs the init plan in it.
pub(crate) fn spawn(plan: &InitPlan, flags: u64, cgroup_fd: Option<RawFd>) -> Result<Child, Errno> {
    spawn_entry(Entry::Init(plan), flags, cgroup_fd)
}

/// Like [`spawn`], for any [`Entry`].
pub(crate) fn spawn_entry(
    entry: Entry<'_>,
    flags: u64,
    cgroup_fd: Option<RawFd>,
) -> Result<Child, Errno> {
    let mut pidfd: RawFd = -1;
    // SAFETY: clone_args is plain data; zeroed is a valid value.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags | libc::CLONE_PIDFD as u64;
    args.pidfd = (&raw mut pidfd) as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 without CLONE_VM and with a null stack behaves like
    // fork: the child gets a copy of our address space and continues here
    // with a return value of 0. The child then only runs `child_main`,
    // which makes raw, allocation-free system calls on data prepared before
    // the clone and never returns (it execs or `_exit`s), so no state of
    // the parent's other threads (locks, allocator) is touched.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw mut args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match r {
        -1 => Err(Errno::last()),
        0 => match entry {
            Entry::Init(plan) => child_main(plan),
            Entry::Exec(plan) => exec_child_main(plan),
        },
        pid => Ok(Child {
            pid: pid as i32,
            pidfd: crate::sys::own_fd(pidfd),
        }),
    }
}
