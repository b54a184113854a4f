//! The container's files for `cp` and `export`: a forked child whose root
//! directory *is* the container's filesystem, so every path the caller
//! resolves (symlinks included) stays inside it, as in docker's chrooted
//! archiver. The overlay is mounted only in the container's own mount
//! namespace, so the child either joins that namespace (a running
//! container, for writes that must be visible to it) or mounts the
//! overlay in a private mount namespace of its own.
#![allow(unsafe_code)]

use std::os::fd::AsFd;

use nix::mount::{MsFlags, mount};
use nix::sched::CloneFlags;

use super::{Container, ContainerError, ContainerStatus, proc_start_time};
use crate::rootfs::Overlay;

/// Which view of the files the child gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsView {
    /// The image layers plus the container's changes, read-only, without
    /// the container's other mounts (`export`, `cp` out of a container).
    ReadOnly,
    /// The container's live root (its mount namespace while it runs, else
    /// its overlay mounted read-write): `cp` into a container.
    Live,
}

/// A child started by [`Container::spawn_in_rootfs`].
#[derive(Debug)]
pub struct RootfsChild {
    pid: nix::unistd::Pid,
}

impl RootfsChild {
    /// Waits for it; its exit code (128 + signal if killed).
    pub fn wait(self) -> Result<i32, ContainerError> {
        use nix::sys::wait::{WaitStatus, waitpid};
        loop {
            match waitpid(self.pid, None) {
                Ok(WaitStatus::Exited(_, c)) => return Ok(c),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(source) => {
                    return Err(ContainerError::Sys {
                        op: "waitpid",
                        source,
                    });
                }
            }
        }
    }
}

fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> ContainerError {
    move |source| ContainerError::Sys { op, source }
}

impl Container<'_> {
    /// Forks a child whose root directory is the container's filesystem
    /// (see [`RootfsView`]) and runs `f` there; its return value is the
    /// child's exit code. Descriptors moved into `f` are the way to talk to
    /// it (pipes for tar streams); the parent's copies close when this
    /// returns.
    ///
    /// The caller must be single-threaded (the `bay` CLI is, outside its
    /// async commands): the child runs ordinary Rust code after `fork`.
    pub fn spawn_in_rootfs(
        &mut self,
        view: RootfsView,
        f: impl FnOnce() -> i32,
    ) -> Result<RootfsChild, ContainerError> {
        self.refresh()?;
        let id = self.state.id.as_str().to_owned();
        let lowers = self.rt.layer_paths(&self.state.layers)?;
        let upper = self.rt.layout.container_upper(&id);
        let target = self.rt.layout.container_rootfs(&id);
        let running = matches!(
            self.state.status,
            ContainerStatus::Running | ContainerStatus::Paused
        );
        // Prepared before the fork: the child only makes system calls.
        enum Plan {
            Join {
                root: std::os::fd::OwnedFd,
                pidfd: std::os::fd::OwnedFd,
            },
            Mount {
                options: String,
                flags: MsFlags,
            },
        }
        let plan = if view == RootfsView::Live && running {
            let pid = self.state.pid.ok_or(ContainerError::IncorrectStatus {
                id: self.state.id.clone(),
                status: self.state.status,
                action: "copy into",
            })?;
            let pidfd = crate::sys::pidfd_open(pid).map_err(sys("pidfd_open"))?;
            let root = nix::fcntl::open(
                format!("/proc/{pid}/root").as_str(),
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map(crate::sys::own_fd)
            .map_err(sys("open container root"))?;
            if proc_start_time(pid) != self.state.pid_start {
                return Err(ContainerError::IncorrectStatus {
                    id: self.state.id.clone(),
                    status: ContainerStatus::Stopped,
                    action: "copy into",
                });
            }
            Plan::Join { root, pidfd }
        } else if view == RootfsView::Live {
            let overlay = Overlay {
                lowers,
                upper,
                work: self.rt.layout.container_work(&id),
                volatile: false,
            };
            overlay.prepare_workdir()?;
            Plan::Mount {
                options: overlay.mount_options()?,
                flags: MsFlags::empty(),
            }
        } else {
            // The upper dir as the top lower layer: its whiteouts and
            // opaque dirs keep their meaning, and nothing is written.
            let mut all = vec![upper];
            all.extend(lowers);
            let joined = all
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(":");
            Plan::Mount {
                options: format!("lowerdir={joined}"),
                flags: MsFlags::MS_RDONLY,
            }
        };
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: the caller is single-threaded (documented above), so the
        // child's copy of the address space has no locks held by threads
        // that do not exist in it; the child never returns from this
        // function (it `_exit`s).
        match unsafe { nix::unistd::fork() }.map_err(sys("fork"))? {
            nix::unistd::ForkResult::Parent { child } => Ok(RootfsChild { pid: child }),
            nix::unistd::ForkResult::Child => {
                let entered = match &plan {
                    Plan::Join { root, pidfd } => {
                        nix::sched::setns(pidfd.as_fd(), CloneFlags::CLONE_NEWNS)
                            .and_then(|()| {
                                nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(root))
                            })
                            .and_then(|()| nix::unistd::chroot("."))
                    }
                    Plan::Mount { options, flags } => nix::sched::unshare(CloneFlags::CLONE_NEWNS)
                        .and_then(|()| {
                            mount(
                                None::<&str>,
                                "/",
                                None::<&str>,
                                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                                None::<&str>,
                            )
                        })
                        .and_then(|()| {
                            mount(
                                Some("overlay"),
                                &target,
                                Some("overlay"),
                                *flags,
                                Some(options.as_str()),
                            )
                        })
                        .and_then(|()| nix::unistd::chdir(&target))
                        .and_then(|()| nix::unistd::chroot(".")),
                };
                let code = match entered.and_then(|()| nix::unistd::chdir("/")) {
                    Ok(()) => f(),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot enter the container's filesystem");
                        125
                    }
                };
                let _ = std::io::stdout().flush();
                let _ = std::io::stderr().flush();
                // SAFETY: `_exit` ends the child without running the
                // parent's atexit handlers or flushing its copied buffers.
                unsafe { libc::_exit(code) }
            }
        }
    }
}
