//! `exec`: run another process in a running container (`bay exec`).

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;

use super::start::{Stdio, StdioConfig};
use super::{Container, ContainerError, ExitStatus, proc_start_time};
use crate::linux::exec::{ExecPlan, PID_TAG};
use crate::linux::init::{InitFailure, Step};
use crate::linux::plan::ProcessPlan;
use crate::linux::spawn::{self, Entry};

/// `bay exec` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// The command (searched along the container's `PATH`).
    pub args: Vec<String>,
    /// `-e KEY=VALUE`, on top of the container's environment.
    pub env: Vec<String>,
    /// `-w`; default: the container's working directory.
    pub workdir: Option<String>,
    /// `-u user[:group]`; default: the container's user.
    pub user: Option<String>,
    /// `-t`: stdin is a pty slave to become the controlling terminal.
    pub tty: bool,
}

/// A process started by [`Container::exec`].
#[derive(Debug)]
pub struct ExecProcess {
    pid: i32,
    _pidfd: OwnedFd,
}

impl ExecProcess {
    /// The host pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for it; docker's exit-code convention.
    pub fn wait(self) -> Result<ExitStatus, ContainerError> {
        loop {
            match waitpid(Pid::from_raw(self.pid), None) {
                Ok(WaitStatus::Exited(_, c)) => {
                    return Ok(ExitStatus {
                        code: c,
                        signal: None,
                        oom_killed: false,
                    });
                }
                Ok(WaitStatus::Signaled(_, s, _)) => {
                    return Ok(ExitStatus {
                        code: 128 + s as i32,
                        signal: Some(s as i32),
                        oom_killed: false,
                    });
                }
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

fn sys_err(op: &'static str) -> impl FnOnce(nix::Error) -> ContainerError {
    move |source| ContainerError::Sys { op, source }
}

impl Container<'_> {
    /// Starts a process in the running container: same namespaces and
    /// cgroup, and the same seccomp filter, capabilities and
    /// no_new_privs as its init.
    pub fn exec(
        &mut self,
        opts: ExecOptions,
        stdio: StdioConfig,
    ) -> Result<ExecProcess, ContainerError> {
        self.refresh()?;
        self.require(
            self.state.status == super::ContainerStatus::Running,
            "exec in",
        )?;
        let rt = self.rt;
        let spec = self.spec()?;
        let linux = spec.linux().clone().unwrap_or_default();
        let mut process = spec
            .process()
            .clone()
            .ok_or(crate::linux::PlanError::Missing { what: "process" })?;
        if opts.args.is_empty() {
            return Err(crate::linux::PlanError::Missing {
                what: "exec command",
            }
            .into());
        }
        process.set_args(Some(opts.args.clone()));
        let mut env = process.env().clone().unwrap_or_default();
        for kv in &opts.env {
            let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
            env.push(kv.clone());
        }
        process.set_env(Some(env));
        if let Some(w) = &opts.workdir {
            process.set_cwd(w.into());
        }
        process.set_terminal(Some(opts.tty));
        if let Some(u) = &opts.user {
            let layers = rt.layer_paths(&self.state.layers)?;
            let user =
                crate::spec::resolve_user(Some(u), &layers).map_err(|_| ContainerError::Exec {
                    command: u.clone(),
                    errno: nix::errno::Errno::ENOENT,
                })?;
            let mut pu = process.user().clone();
            pu.set_uid(user.uid);
            pu.set_gid(user.gid);
            pu.set_additional_gids(Some(user.additional_gids));
            process.set_user(pu);
        }
        let seccomp = match linux.seccomp() {
            Some(s) => Some(rt.filters.get(s)?),
            None => None,
        };
        let process_plan = ProcessPlan::build(&process, seccomp)?;

        // The init, pinned by a pidfd (ours, or opened and checked).
        let init_pidfd = match self.pidfd() {
            Some(fd) => fd.try_clone_to_owned().map_err(|e| ContainerError::Sys {
                op: "dup pidfd",
                source: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)),
            })?,
            None => {
                let pid = self.state.pid.ok_or(ContainerError::IncorrectStatus {
                    id: self.state.id.clone(),
                    status: self.state.status,
                    action: "exec in",
                })?;
                let fd = crate::sys::pidfd_open(pid).map_err(sys_err("pidfd_open"))?;
                if proc_start_time(pid) != self.state.pid_start {
                    return Err(ContainerError::IncorrectStatus {
                        id: self.state.id.clone(),
                        status: super::ContainerStatus::Stopped,
                        action: "exec in",
                    });
                }
                fd
            }
        };
        let mut namespaces = 0;
        for ns in linux.namespaces().iter().flatten() {
            namespaces |= match ns.typ() {
                LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
                LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
                LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
                LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
                LinuxNamespaceType::Network => libc::CLONE_NEWNET,
                LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
                _ => 0,
            };
        }

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
        let null = || {
            nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map(crate::sys::own_fd)
            .map_err(sys_err("open /dev/null"))
        };
        let mut keep = Vec::new();
        let mut fd_of = |s: &Stdio| -> Result<Option<i32>, ContainerError> {
            Ok(match s {
                Stdio::Inherit => None,
                Stdio::Fd(fd) => Some(fd.as_raw_fd()),
                Stdio::Null => {
                    let fd = null()?;
                    let raw = fd.as_raw_fd();
                    keep.push(fd);
                    Some(raw)
                }
            })
        };
        let stdio_fds = [
            fd_of(&stdio.stdin)?,
            fd_of(&stdio.stdout)?,
            fd_of(&stdio.stderr)?,
        ];
        let (go_r, go_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys_err("pipe2"))?;
        let (err_r, err_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys_err("pipe2"))?;
        let plan = ExecPlan {
            go_read: go_r.as_raw_fd(),
            go_write: go_w.as_raw_fd(),
            err_read: err_r.as_raw_fd(),
            err_write: err_w.as_raw_fd(),
            stdio: stdio_fds,
            wait_for_go: cgroup_fd.is_none(),
            init_pidfd: init_pidfd.as_raw_fd(),
            namespaces,
            terminal: opts.tty,
            reset_signals: crate::linux::plan::non_default_signals(),
            process: process_plan,
        };
        let child = spawn::spawn_entry(
            Entry::Exec(&plan),
            0,
            cgroup_fd.as_ref().map(AsRawFd::as_raw_fd),
        )
        .map_err(sys_err("clone3"))?;
        drop((go_r, err_w, plan, keep, stdio, init_pidfd));
        let reap = |pid: i32| {
            let _ = waitpid(Pid::from_raw(pid), None);
        };
        if clone_dir.is_none() {
            if let Err(e) = rt.cgroups.add_task(&self.state.cgroup, child.pid) {
                let _ = crate::sys::pidfd_send_signal(
                    std::os::fd::AsFd::as_fd(&child.pidfd),
                    libc::SIGKILL,
                );
                reap(child.pid);
                return Err(e.into());
            }
            nix::unistd::write(&go_w, b"1").map_err(sys_err("write go"))?;
        }
        drop(go_w);
        let mut msg = Vec::new();
        std::fs::File::from(err_r)
            .read_to_end(&mut msg)
            .map_err(super::io_err("read", std::path::Path::new("exec pipe")))?;
        reap(child.pid);
        // Two writers share the pipe: the intermediate sends the exec'd
        // process's pid (tag 0), that process its failure if it has one; EOF
        // when it exec'd. Each message is one atomic 8-byte write.
        let mut pid = None;
        let mut failure = None;
        for m in msg.chunks(8) {
            match m {
                [a, b, c, d, e, f, g, h] if u32::from_le_bytes([*a, *b, *c, *d]) == PID_TAG => {
                    pid = Some(i32::from_le_bytes([*e, *f, *g, *h]));
                }
                other => {
                    failure = Some(InitFailure::decode(other).unwrap_or(InitFailure {
                        step: Step::WaitParent,
                        errno: nix::errno::Errno::EPROTO,
                    }))
                }
            }
        }
        if let Some(pid) = pid
            && failure.is_some()
        {
            reap(pid);
        }
        let err = |f: InitFailure| match f {
            InitFailure {
                step: Step::Exec,
                errno,
            } => ContainerError::Exec {
                command: opts.args[0].clone(),
                errno,
            },
            InitFailure { step, errno } => ContainerError::Init { step, errno },
        };
        if let Some(f) = failure {
            return Err(err(f));
        }
        let Some(pid) = pid else {
            return Err(ContainerError::Init {
                step: Step::WaitParent,
                errno: nix::errno::Errno::EPROTO,
            });
        };
        let pidfd = crate::sys::pidfd_open(pid).map_err(sys_err("pidfd_open"))?;
        tracing::info!(id = %self.state.id, pid, "exec started");
        Ok(ExecProcess { pid, _pidfd: pidfd })
    }
}
