//! `diff`, `commit` and `stats` on a container.

use std::io::Write;

use super::{Container, ContainerError};
use crate::cgroups::CgroupStats;
use crate::layers::Compression;
use crate::rootfs::{Change, CommitInfo};

impl Container<'_> {
    /// `bay diff`: the container's changes to its image.
    /// Like docker (whose "init" layer holds them), the mount points the
    /// runtime itself creates are not changes: the spec's mount
    /// destinations, `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`, and
    /// directories added only to hold them.
    pub fn diff(&self) -> Result<Vec<Change>, ContainerError> {
        let lowers = self.rt.layer_paths(&self.state.layers)?;
        let upper = self.rt.layout.container_upper(self.state.id.as_str());
        let all = crate::rootfs::diff(&upper, &lowers)?;
        Ok(filter_runtime_paths(all, &self.runtime_paths()))
    }

    /// What the runtime itself puts in the upper layer: the spec's mount
    /// points and the network files (docker keeps these in its "init" layer).
    fn runtime_paths(&self) -> Vec<String> {
        let mut hidden: Vec<String> = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]
            .map(str::to_owned)
            .to_vec();
        if let Ok(spec) = self.spec() {
            hidden.extend(
                spec.mounts()
                    .iter()
                    .flatten()
                    .map(|m| m.destination().display().to_string()),
            );
        }
        hidden
    }

    /// `bay commit`: writes the upper layer as a new layer blob to `out`,
    /// without the runtime's own mount points and network files.
    /// The caller stores the blob and unpacks it with
    /// [`crate::LayerStore::unpack`] to run the new image.
    pub fn commit(
        &self,
        out: impl Write,
        compression: Compression,
    ) -> Result<CommitInfo, ContainerError> {
        let upper = self.rt.layout.container_upper(self.state.id.as_str());
        let hidden = self.runtime_paths();
        let skip = |p: &std::path::Path| {
            let abs = format!("/{}", p.display());
            hidden.iter().any(|h| under(&abs, h))
        };
        Ok(crate::rootfs::commit_except(
            &upper,
            out,
            compression,
            &skip,
        )?)
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

fn under(path: &str, dir: &str) -> bool {
    path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// Drops `hidden` paths (and what is below them), then added directories
/// that were there only as their parents.
fn filter_runtime_paths(all: Vec<Change>, hidden: &[String]) -> Vec<Change> {
    use crate::rootfs::ChangeKind;
    let kept: Vec<Change> = all
        .into_iter()
        .filter(|c| !hidden.iter().any(|h| under(&c.path, h)))
        .collect();
    let scaffold = |c: &Change| {
        c.kind == ChangeKind::Added && hidden.iter().any(|h| under(h, &c.path) && h != &c.path)
    };
    let keep = |c: &Change| {
        !scaffold(c)
            || kept
                .iter()
                .any(|o| o.path != c.path && under(&o.path, &c.path) && !scaffold(o))
    };
    kept.iter().filter(|c| keep(c)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::ChangeKind::{Added, Changed, Deleted};

    #[test]
    fn runtime_mount_points_are_not_changes() {
        let ch = |p: &str, kind| Change {
            path: p.to_owned(),
            kind,
        };
        let all = vec![
            ch("/bin", Changed),
            ch("/bin/ls", Deleted),
            ch("/dev", Added),
            ch("/etc", Added),
            ch("/etc/hosts", Added),
            ch("/new", Added),
            ch("/proc", Added),
            ch("/devices", Added),
            ch("/var", Added),
            ch("/var/run", Added),
            ch("/var/run/x", Added),
        ];
        let hidden = [
            "/dev".to_owned(),
            "/proc".to_owned(),
            "/etc/hosts".to_owned(),
            "/var/run/x".to_owned(),
            "/var/run/x/y".to_owned(),
        ];
        let got: Vec<String> = filter_runtime_paths(all, &hidden)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["C /bin", "D /bin/ls", "A /new", "A /devices"]);
    }
}
