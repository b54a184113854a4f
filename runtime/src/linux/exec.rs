//! `exec`: a new process inside a running container. It joins all of the
//! init's namespaces with one `setns(pidfd, …)`, forks once so that it is
//! inside the pid namespace (as a sibling, `CLONE_PARENT`, so the runtime
//! can reap it), and then runs the very same tail as the init: rlimits,
//! cwd check, seccomp, bounding set, ids, capabilities, no_new_privs,
//! `close_range` and `execve` (youki 0.7 left exec'd processes without
//! seccomp: runtime-facts §5).

use std::os::fd::RawFd;

use nix::errno::Errno;

use super::init::{InitFailure, Step, at, finish_process};
use super::plan::ProcessPlan;
use super::syscall::Syscall;

/// What the exec'd process's intermediate does, prepared by the parent.
#[derive(Debug)]
pub(crate) struct ExecPlan {
    pub go_read: RawFd,
    pub go_write: RawFd,
    pub err_read: RawFd,
    pub err_write: RawFd,
    pub stdio: [Option<RawFd>; 3],
    pub wait_for_go: bool,
    pub init_pidfd: RawFd,
    pub namespaces: i32,
    pub terminal: bool,
    pub reset_signals: Vec<i32>,
    pub process: ProcessPlan,
}

/// The message tag for "here is the exec'd process's pid".
pub(crate) const PID_TAG: u32 = 0;

/// Runs the exec sequence. In the intermediate process it returns
/// `Ok(pid)` after forking the real process; in that process it returns
/// only on failure.
pub(crate) fn run(sys: &dyn Syscall, plan: &ExecPlan) -> Result<i32, InitFailure> {
    sys.close(plan.go_write);
    sys.close(plan.err_read);
    sys.reset_signals(&plan.reset_signals);
    for (i, fd) in plan.stdio.iter().enumerate() {
        if let Some(fd) = fd {
            sys.dup_to(*fd, i as RawFd).map_err(at(Step::Stdio))?;
        }
    }
    if plan.wait_for_go {
        match sys.read_byte(plan.go_read).map_err(at(Step::WaitParent))? {
            Some(_) => {}
            None => {
                return Err(InitFailure {
                    step: Step::WaitParent,
                    errno: Errno::EPIPE,
                });
            }
        }
    }
    sys.close(plan.go_read);
    sys.setns(plan.init_pidfd, plan.namespaces)
        .map_err(at(Step::JoinNamespaces))?;
    sys.close(plan.init_pidfd);
    let pid = sys.fork_sibling().map_err(at(Step::WaitParent))?;
    if pid > 0 {
        return Ok(pid);
    }
    // The session (and its terminal) belong to the exec'd process itself:
    // had the intermediate led it, its exit would hang up the terminal and
    // SIGHUP the process.
    sys.setsid().map_err(at(Step::Stdio))?;
    if plan.terminal {
        sys.set_controlling_tty(0).map_err(at(Step::Stdio))?;
    }
    match finish_process(sys, &plan.process) {
        Ok(never) => match never {},
        Err(f) => Err(f),
    }
}
