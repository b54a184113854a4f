//! `pause` / `unpause`: the cgroup freezer.

use super::{Container, ContainerError, ContainerStatus};

impl Container<'_> {
    /// Freezes every process of the container.
    pub fn pause(&mut self) -> Result<(), ContainerError> {
        self.refresh()?;
        self.require(self.state.status.can_pause(), "pause")?;
        self.rt.cgroups.freeze(&self.state.cgroup, true)?;
        self.update(|s| s.status = ContainerStatus::Paused)
    }

    /// Thaws a paused container.
    pub fn resume(&mut self) -> Result<(), ContainerError> {
        self.refresh()?;
        self.require(self.state.status.can_resume(), "unpause")?;
        self.rt.cgroups.freeze(&self.state.cgroup, false)?;
        self.update(|s| s.status = ContainerStatus::Running)
    }
}
