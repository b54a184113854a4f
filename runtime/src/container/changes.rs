//! `diff`, `commit` and `stats` on a container.

use std::io::Write;

use super::{Container, ContainerError};
use crate::cgroups::CgroupStats;
use crate::layers::Compression;
use crate::rootfs::{Change, CommitInfo};

impl Container<'_> {
    /// `bay diff`: the container's changes to its image.
    pub fn diff(&self) -> Result<Vec<Change>, ContainerError> {
        let lowers = self.rt.layer_paths(&self.state.layers)?;
        let upper = self.rt.layout.container_upper(self.state.id.as_str());
        Ok(crate::rootfs::diff(&upper, &lowers)?)
    }

    /// `bay commit`: writes the upper layer as a new layer blob to `out`.
    /// The caller stores the blob and unpacks it with
    /// [`crate::LayerStore::unpack`] to run the new image.
    pub fn commit(
        &self,
        out: impl Write,
        compression: Compression,
    ) -> Result<CommitInfo, ContainerError> {
        let upper = self.rt.layout.container_upper(self.state.id.as_str());
        Ok(crate::rootfs::commit(&upper, out, compression)?)
    }

    /// The host pids of every process in the container (`bay top`).
    pub fn processes(&self) -> Result<Vec<i32>, ContainerError> {
        Ok(self.rt.cgroups.pids(&self.state.cgroup)?)
    }

    /// `bay stats --no-stream`.
    pub fn stats(&self) -> Result<CgroupStats, ContainerError> {
        Ok(self.rt.cgroups.stats(&self.state.cgroup)?)
    }
}
