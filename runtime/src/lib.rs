//! The container runtime behind `bay run`: a content-addressed layer store
//! unpacked onto overlayfs, and processes started in Linux namespaces and
//! cgroups with docker's default security profile, or stricter.
//!
//! # What it owns
//! - [`layers`]: each layer blob is unpacked **once**, verified against its
//!   digest while streaming, into `layers/<alg>/<hex>/fs`; OCI whiteouts
//!   become overlayfs whiteouts; `..`, absolute paths, escaping symlinks,
//!   hard links out of the tree and device nodes are refused. All writes are
//!   descriptor-relative ([`fsutil`]), never a joined path that follows links.
//! - [`rootfs`]: the overlay stack of a container, `diff` (A/C/D) and
//!   `commit` (upper dir → OCI layer tar).
//! - [`spec`]: the OCI runtime spec from an image config and [`RunOptions`]
//!   (docker's `run` flags), with docker's defaults: 14 capabilities, its
//!   seccomp profile resolved for the final capability set, 12 masked and 5
//!   read-only paths, `/dev` as a tmpfs with the default devices, read-only
//!   `/sys` and `/sys/fs/cgroup`, private pid/mount/uts/ipc/net/cgroup
//!   namespaces; `--privileged` relaxes exactly what docker relaxes.
//! - [`seccomp`]: the spec's filter compiled with libseccomp **once** and
//!   cached by hash (docker's profile costs ~11 ms to compile; a start here
//!   loads 1,001 ready instructions with one `seccomp()` call).
//! - [`cgroups`]: a [`cgroups::CgroupManager`] trait with v1 and v2
//!   implementations (memory+swap, cpu quota/shares, pids, cpuset, v1 device
//!   rules, OOM counts, stats).
//! - [`linux`]: the container's init. The parent computes an `InitPlan`
//!   (every string, mask and option), `clone3`s into the new namespaces
//!   (straight into the cgroup on v2), and the child issues only raw,
//!   allocation-free system calls through the [`linux::syscall::Syscall`]
//!   trait: overlay, `pivot_root` with the old root detached, `fsopen`/
//!   `move_mount` onto targets resolved with `openat2(RESOLVE_IN_ROOT|
//!   NO_SYMLINKS|NO_MAGICLINKS)`, `/dev/null` verified by handle before it
//!   masks anything, sysctls through a private procfs handle checked to be
//!   procfs, capabilities, seccomp, `close_range(CLOEXEC)` and `execve`. No
//!   binary is ever re-executed, so nothing of the host is reachable.
//! - [`container`]: [`Runtime`] and [`Container`] with one lifecycle verb
//!   per file (create, start, wait, kill, pause, delete, exec, diff/commit/stats)
//!   over an explicit [`ContainerStatus`] state machine, docker's exit codes
//!   (128 + signal, 125/126/127) and the OOM flag. `exec` joins the init's
//!   namespaces with one `setns(pidfd)` and gets the same seccomp filter,
//!   capabilities and no_new_privs.
//! - [`monitor`]: the small per-container process behind `bay run -d`: it
//!   starts the container, owns its stdio, writes docker's json-file log
//!   ([`logs`], rotated by size), records exit statuses and applies the
//!   restart policy with docker's backoff. Names are unique through
//!   `names/<name>` files created exclusively.
//!
//! # Using it (what `bay run --rm IMAGE CMD` does)
//! ```no_run
//! use bay_runtime::{ContainerId, Runtime, RunOptions, SpecInput, StdioConfig, build_spec};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (blob, digest, image_config): (Vec<u8>, oci_types::Digest, oci_spec::image::Config) = todo!();
//! let rt = Runtime::open("/var/lib/bay/runtime")?;
//! rt.layers().unpack(&digest, &blob[..])?; // once per layer, base first
//! let layers = vec![digest];
//! let id = ContainerId::generate()?;
//! let paths = rt.layer_paths(&layers)?;
//! let opts = RunOptions { cmd: vec!["echo".into(), "hi".into()], ..Default::default() };
//! let spec = build_spec(SpecInput { id: &id, image: Some(&image_config), layers: &paths }, &opts)?;
//! let status = rt.run(id, &spec, &layers, StdioConfig::default(), true)?;
//! std::process::exit(status.code);
//! # }
//! ```
//!
//! - [`volume`]: docker's named volumes under the runtime root, created
//!   on first `-v NAME:/path`, filled from the image while still empty, and
//!   never removed while a container uses them.
//! - [`network`]: docker's default bridge network (`bay0`, a veth and an
//!   address per container, NAT, `-p` through DNAT) and the per-container
//!   `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`.
//!
//! Not yet here: user namespaces (see issue 6).

pub mod cgroups;
#[cfg(target_os = "linux")]
pub mod container;
pub mod fsutil;
pub mod id;
pub mod layers;
pub mod layout;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod logs;
#[cfg(target_os = "linux")]
pub mod monitor;
pub mod network;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
mod sys;
#[cfg(test)]
mod testutil;
#[cfg(target_os = "linux")]
pub mod tty;
#[cfg(target_os = "linux")]
pub mod volume;

#[cfg(target_os = "linux")]
pub use container::{
    Container, ContainerError, ContainerName, ContainerStatus, ExecOptions, ExecProcess,
    ExitStatus, RootfsView, Runtime, State, Stdio, StdioConfig, Storage,
};
pub use id::ContainerId;
pub use layers::{Compression, Layer, LayerError, LayerStore};
pub use layout::Layout;
pub use spec::{RunOptions, SpecInput, build_spec};
