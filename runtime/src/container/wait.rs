//! `wait`: reap the init process and record docker's exit status.

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{Container, ContainerError, ContainerStatus, now};

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExitStatus {
    /// Docker's convention: the exit code, or 128 + the signal number.
    pub code: i32,
    /// The killing signal, if any.
    pub signal: Option<i32>,
    /// The cgroup's OOM killer fired during this run.
    pub oom_killed: bool,
}

impl Container<'_> {
    /// Waits for the container's process (started by this handle) to exit.
    pub fn wait(&mut self) -> Result<ExitStatus, ContainerError> {
        self.require(
            self.state.status.can_wait() && self.child.is_some(),
            "wait for",
        )?;
        let Some(child) = self.child.take() else {
            return Err(ContainerError::IncorrectStatus {
                id: self.state.id.clone(),
                status: self.state.status,
                action: "wait for",
            });
        };
        let (code, signal) = loop {
            match waitpid(Pid::from_raw(child.pid), None) {
                Ok(WaitStatus::Exited(_, c)) => break (c, None),
                Ok(WaitStatus::Signaled(_, s, _)) => break (128 + s as i32, Some(s as i32)),
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(source) => {
                    return Err(ContainerError::Sys {
                        op: "waitpid",
                        source,
                    });
                }
            }
        };
        let oom_killed = self.rt.cgroups.oom_kills(&self.state.cgroup).unwrap_or(0) > 0;
        self.release_network();
        self.update(|s| {
            s.status = ContainerStatus::Stopped;
            s.pid = None;
            s.pid_start = None;
            s.finished = Some(now());
            s.exit_code = Some(code);
            s.oom_killed = oom_killed;
        })?;
        tracing::info!(id = %self.state.id, code, oom_killed, "container exited");
        Ok(ExitStatus {
            code,
            signal,
            oom_killed,
        })
    }
}
