//! The container runtime: a content-addressed layer store unpacked onto
//! overlayfs, and processes started in Linux namespaces and cgroups with
//! docker's default security profile.
//!
//! Work in progress: see issue 6.

pub mod cgroups;
#[cfg(target_os = "linux")]
pub mod container;
pub mod fsutil;
pub mod id;
pub mod layers;
pub mod layout;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
mod sys;
#[cfg(test)]
mod testutil;

#[cfg(target_os = "linux")]
pub use container::{
    Container, ContainerError, ContainerStatus, ExitStatus, Runtime, State, Stdio, StdioConfig,
};
pub use id::ContainerId;
pub use layers::{Compression, Layer, LayerError, LayerStore};
pub use layout::Layout;
pub use spec::{RunOptions, SpecInput, build_spec};
