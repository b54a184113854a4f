//! `start`: cgroup, seccomp filter, init plan, `clone3`, and the handshake
//! with the container's init.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use oci_spec::runtime::LinuxNamespaceType;

use super::{Container, ContainerError, ContainerStatus, now, proc_start_time};
use crate::linux::init::{InitFailure, Step};
use crate::linux::plan::{InitPlan, PlanContext};
use crate::linux::spawn;
use crate::rootfs::Overlay;

/// One standard stream of the container.
#[derive(Debug, Default)]
pub enum Stdio {
    /// The caller's own descriptor.
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// This descriptor (a pipe end, a file, a pty).
    Fd(OwnedFd),
}

/// The container's stdin, stdout and stderr.
#[derive(Debug, Default)]
pub struct StdioConfig {
    /// fd 0.
    pub stdin: Stdio,
    /// fd 1.
    pub stdout: Stdio,
    /// fd 2.
    pub stderr: Stdio,
}

fn sys_err(op: &'static str) -> impl FnOnce(nix::Error) -> ContainerError {
    move |source| ContainerError::Sys { op, source }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ContainerError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys_err("pipe2"))
}

impl Container<'_> {
    /// Starts the container's process. On return it runs the command (or
    /// the error says which init step failed).
    pub fn start(&mut self, stdio: StdioConfig) -> Result<(), ContainerError> {
        self.refresh()?;
        self.require(self.state.status.can_start(), "start")?;
        let started = std::time::Instant::now();
        let rt = self.rt;
        let id = self.state.id.as_str().to_owned();
        let mut spec = self.spec()?;
        let linux = spec.linux().clone().unwrap_or_default();

        let overlay = Overlay {
            lowers: rt.layer_paths(&self.state.layers)?,
            upper: rt.layout.container_upper(&id),
            work: rt.layout.container_work(&id),
            volatile: true,
        };
        let options = overlay.mount_options()?;
        overlay.prepare_workdir()?;

        // With CLONE_INTO_CGROUP (v2) the cgroup must exist before the
        // clone; on v1 it is created after it, while the child is already
        // pivoting and mounting (it waits for our go before it can run
        // anything of the image).
        let clone_into = rt.cgroups.clone_into_dir(&self.state.cgroup).is_some();
        if clone_into {
            rt.cgroups
                .create(&self.state.cgroup, linux.resources().as_ref())?;
        }
        let t_cgroup = started.elapsed();
        let seccomp = match linux.seccomp() {
            Some(s) => Some(rt.filters.get(s)?),
            None => None,
        };

        let mut flags = 0u64;
        let mut want_cgroupns = false;
        for ns in linux.namespaces().iter().flatten() {
            flags |= match ns.typ() {
                LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
                LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
                LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
                LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
                LinuxNamespaceType::Network => libc::CLONE_NEWNET,
                LinuxNamespaceType::Cgroup => {
                    want_cgroupns = true;
                    0
                }
                other => {
                    tracing::warn!(namespace = ?other, "namespace not supported yet; ignored");
                    0
                }
            } as u64;
        }
        let new_net = flags & libc::CLONE_NEWNET as u64 != 0;
        let clone_dir = rt.cgroups.clone_into_dir(&self.state.cgroup);
        let cgroup_fd = match &clone_dir {
            Some(dir) => Some(
                nix::fcntl::open(
                    dir,
                    nix::fcntl::OFlag::O_RDONLY
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map(crate::sys::own_fd)
                .map_err(sys_err("open cgroup"))?,
            ),
            None => None,
        };
        // With CLONE_INTO_CGROUP the new cgroup ns is rooted at our cgroup
        // from the start; on v1 the child unshares it after the parent has
        // moved it.
        let unshare_cgroupns = want_cgroupns && cgroup_fd.is_none();
        if want_cgroupns && cgroup_fd.is_some() {
            flags |= libc::CLONE_NEWCGROUP as u64;
        }

        let null = |s: &Stdio| -> Result<Option<OwnedFd>, ContainerError> {
            match s {
                Stdio::Null => nix::fcntl::open(
                    "/dev/null",
                    nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map(|fd| Some(crate::sys::own_fd(fd)))
                .map_err(sys_err("open /dev/null")),
                _ => Ok(None),
            }
        };
        let nulls = [
            null(&stdio.stdin)?,
            null(&stdio.stdout)?,
            null(&stdio.stderr)?,
        ];
        let raw = |s: &Stdio, n: &Option<OwnedFd>| match (s, n) {
            (Stdio::Fd(fd), _) => Some(fd.as_raw_fd()),
            (Stdio::Null, Some(fd)) => Some(fd.as_raw_fd()),
            _ => None,
        };
        let stdio_fds = [
            raw(&stdio.stdin, &nulls[0]),
            raw(&stdio.stdout, &nulls[1]),
            raw(&stdio.stderr, &nulls[2]),
        ];

        // Bridge network: lease, /etc files and their mounts, before clone.
        let net = rt
            .network
            .prepare(&self.state.id, &spec, &rt.layout.container_dir(&id))?;
        net.apply_mounts(&mut spec);
        let (go_r, go_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let v1 = rt.cgroups.v1_mounts();
        let rootfs = rt.layout.container_rootfs(&id);
        let t_seccomp = started.elapsed();
        let plan = InitPlan::build(
            &spec,
            PlanContext {
                rootfs: &rootfs,
                overlay_options: &options,
                v1_hierarchies: &v1,
                cgroup_v2: rt.cgroups.version() == crate::cgroups::CgroupVersion::V2,
                enforces_devices: rt.cgroups.enforces_devices(),
                seccomp,
                stdio: stdio_fds,
                go: (go_r.as_raw_fd(), go_w.as_raw_fd()),
                err: (err_r.as_raw_fd(), err_w.as_raw_fd()),
                unshare_cgroupns,
                loopback_up: new_net,
                wait_for_go: cgroup_fd.is_none() || net.needs_attach(),
            },
        )?;
        let prepared = started.elapsed();

        let child = spawn::spawn(&plan, flags, cgroup_fd.as_ref().map(AsRawFd::as_raw_fd))
            .map_err(sys_err("clone3"))?;
        drop(go_r);
        drop(err_w);
        drop(plan);
        drop(nulls);
        drop(stdio);
        let t_cloned = started.elapsed();
        let pid = child.pid;
        let fail = |e: ContainerError, child: spawn::Child| {
            let _ = crate::sys::pidfd_send_signal(
                std::os::fd::AsFd::as_fd(&child.pidfd),
                libc::SIGKILL,
            );
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child.pid), None);
            if let Err(ne) = rt.network.release(&self.state.id) {
                tracing::warn!(error = %ne, "could not release the network after failed start");
            }
            if let Err(ce) = rt.cgroups.destroy(&self.state.cgroup) {
                tracing::warn!(error = %ce, "could not remove cgroup after failed start");
            }
            e
        };
        if clone_dir.is_none() {
            let joined = rt
                .cgroups
                .create(&self.state.cgroup, linux.resources().as_ref())
                .and_then(|()| rt.cgroups.add_task(&self.state.cgroup, pid));
            if let Err(e) = joined {
                return Err(fail(e.into(), child));
            }
        }
        let t_joined = started.elapsed();
        // The child waits while its eth0 is set up from here.
        if let Err(e) = rt.network.attach(&net, pid) {
            return Err(fail(e.into(), child));
        }
        if (clone_dir.is_none() || net.needs_attach())
            && let Err(e) = nix::unistd::write(&go_w, b"1")
        {
            return Err(fail(sys_err("write go")(e), child));
        }
        drop(go_w);
        let t_released = started.elapsed();
        let mut msg = Vec::new();
        let mut err_file = std::fs::File::from(err_r);
        if let Err(e) = err_file.read_to_end(&mut msg) {
            return Err(fail(
                super::io_err("read", std::path::Path::new("init pipe"))(e),
                child,
            ));
        }
        if !msg.is_empty() {
            let err = match InitFailure::decode(&msg) {
                Some(InitFailure {
                    step: Step::Exec,
                    errno,
                }) => ContainerError::Exec {
                    command: spec
                        .process()
                        .as_ref()
                        .and_then(|p| p.args().as_ref())
                        .and_then(|a| a.first().cloned())
                        .unwrap_or_default(),
                    errno,
                },
                Some(InitFailure { step, errno }) => ContainerError::Init { step, errno },
                None => ContainerError::Init {
                    step: Step::WaitParent,
                    errno: nix::errno::Errno::EPROTO,
                },
            };
            return Err(fail(err, child));
        }
        let t_exec = started.elapsed();
        tracing::debug!(
            ?t_cgroup,
            ?t_seccomp,
            ?prepared,
            ?t_cloned,
            ?t_joined,
            ?t_released,
            ?t_exec,
            "start phases"
        );
        let pid_start = proc_start_time(pid);
        self.child = Some(child);
        self.update(|s| {
            s.status = ContainerStatus::Running;
            s.pid = Some(pid);
            s.pid_start = pid_start;
            s.started = Some(now());
            s.finished = None;
            s.exit_code = None;
            s.oom_killed = false;
            s.restarting = false;
            s.error = None;
        })?;
        tracing::info!(id = %self.state.id, pid, ?prepared, elapsed = ?started.elapsed(), "container started");
        Ok(())
    }
}
