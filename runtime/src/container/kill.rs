//! `kill`: signal the container's init.

use super::{Container, ContainerError, ContainerStatus};

impl Container<'_> {
    /// Sends `signal` to the container's init process. Uses the pidfd when
    /// this handle started it (no pid-reuse race), else the recorded pid
    /// after checking its start time. A paused container is thawed after
    /// the signal, since frozen processes act on it only once thawed.
    pub fn kill(&mut self, signal: i32) -> Result<(), ContainerError> {
        self.refresh()?;
        self.require(self.state.status.can_kill(), "kill")?;
        self.signal(signal)?;
        if self.state.status == ContainerStatus::Paused {
            self.rt.cgroups.freeze(&self.state.cgroup, false)?;
            self.update(|s| {
                if s.status == ContainerStatus::Paused {
                    s.status = ContainerStatus::Running;
                }
            })?;
        }
        Ok(())
    }

    fn signal(&self, signal: i32) -> Result<(), ContainerError> {
        if let Some(fd) = self.pidfd() {
            return crate::sys::pidfd_send_signal(fd, signal).map_err(|source| {
                ContainerError::Sys {
                    op: "pidfd_send_signal",
                    source,
                }
            });
        }
        let Some(pid) = self.state.pid else {
            return Ok(());
        };
        let sig = nix::sys::signal::Signal::try_from(signal)
            .map_err(|source| ContainerError::Sys { op: "kill", source })?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
            .map_err(|source| ContainerError::Sys { op: "kill", source })
    }
}
