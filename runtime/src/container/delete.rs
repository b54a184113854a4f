//! `delete`: remove the cgroup, the upper layer and the state.

use super::{Container, ContainerError, ContainerStatus, io_err};

impl Container<'_> {
    /// Deletes the container. A running one is refused unless `force`,
    /// which kills it first (`docker rm -f`).
    pub fn delete(mut self, force: bool) -> Result<(), ContainerError> {
        self.refresh()?;
        if matches!(
            self.state.status,
            ContainerStatus::Running | ContainerStatus::Paused
        ) {
            self.require(force, "remove")?;
            self.kill(libc::SIGKILL)?;
            if self.child.is_some() {
                self.wait()?;
            }
        }
        let t = std::time::Instant::now();
        self.release_network();
        let t_net = t.elapsed();
        self.rt.cgroups.destroy(&self.state.cgroup)?;
        let t_cg = t.elapsed();
        let dir = self.rt.layout.container_dir(self.state.id.as_str());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &dir)(e)),
        }
        tracing::info!(id = %self.state.id, ?t_net, ?t_cg, elapsed = ?t.elapsed(), "container removed");
        Ok(())
    }
}
