//! The per-container monitor behind `bay run -d` and `bay start`.
//!
//! `bay` re-executes itself as `bay __monitor ROOT ID` (before any flag
//! parsing, no async runtime, no tracing subscriber), and that small
//! process is the container's parent for as long as the container lives:
//! it starts it (so it can reap it), owns its stdio (pipes, or a pty under
//! `-t`), writes docker's json-file log ([`crate::logs`]), records each exit
//! in `state.json`, and applies the restart policy with docker's backoff
//! (100 ms doubling to one minute, reset after ten seconds of running). It
//! exits when the container is done for good: an exit the policy does not
//! restart, a manual stop (`stop`, `kill`, `rm -f`), or the container's
//! removal.
//!
//! The first start's outcome is written to the report descriptor (`bay
//! run -d` is waiting on it): `OK\n`, or `ERR <exit code> <message>\n`.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::container::{ContainerError, ContainerStatus, ExitStatus, Runtime, Stdio, StdioConfig};
use crate::id::ContainerId;
use crate::logs::{LineSplitter, LogConfig, LogWriter, Stream};

/// docker's `--restart` policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (the default).
    #[default]
    No,
    /// Restart on a non-zero exit, at most `max` times (0: no limit).
    OnFailure {
        /// `on-failure:N`.
        max: u32,
    },
    /// Always restart, unless stopped by hand.
    Always,
    /// Like `always` (the difference, daemon restarts, does not arise here).
    UnlessStopped,
}

/// A `--restart` value docker would refuse.
#[derive(Debug, thiserror::Error)]
#[error("invalid restart policy {value:?}: {why}")]
pub struct BadRestartPolicy {
    /// The value.
    pub value: String,
    /// What is wrong.
    pub why: &'static str,
}

impl std::str::FromStr for RestartPolicy {
    type Err = BadRestartPolicy;
    fn from_str(s: &str) -> Result<Self, BadRestartPolicy> {
        let bad = |why| BadRestartPolicy {
            value: s.to_owned(),
            why,
        };
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        let policy = match name {
            "" | "no" => Self::No,
            "always" => Self::Always,
            "unless-stopped" => Self::UnlessStopped,
            "on-failure" => Self::OnFailure {
                max: match count {
                    Some(c) => c
                        .parse()
                        .map_err(|_| bad("the retry count must be a number"))?,
                    None => 0,
                },
            },
            _ => {
                return Err(bad(
                    "use no, on-failure[:max-retries], always or unless-stopped",
                ));
            }
        };
        if count.is_some() && !matches!(policy, Self::OnFailure { .. }) {
            return Err(bad(
                "maximum retry count can only be used with 'on-failure'",
            ));
        }
        Ok(policy)
    }
}

impl RestartPolicy {
    /// docker's `HostConfig.RestartPolicy.Name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::OnFailure { .. } => "on-failure",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
        }
    }

    /// docker's `MaximumRetryCount`.
    pub fn max_retries(self) -> u32 {
        match self {
            Self::OnFailure { max } => max,
            _ => 0,
        }
    }

    /// docker's restart manager: whether an exit with `code`, after
    /// `restarts` restarts so far, is followed by another start.
    pub fn should_restart(self, code: i32, restarts: u32, manually_stopped: bool) -> bool {
        if manually_stopped {
            return false;
        }
        match self {
            Self::No => false,
            Self::Always | Self::UnlessStopped => true,
            Self::OnFailure { max } => code != 0 && (max == 0 || restarts < max),
        }
    }
}

/// docker's restart backoff: 100 ms, doubled per restart up to a minute,
/// back to 100 ms after a run of ten seconds or more.
#[derive(Debug, Default, Clone, Copy)]
pub struct Backoff {
    delay: Duration,
}

impl Backoff {
    /// The delay before the next start, after a run of `ran`.
    pub fn next(&mut self, ran: Duration) -> Duration {
        const MAX: Duration = Duration::from_secs(60);
        if ran >= Duration::from_secs(10) {
            self.delay = Duration::ZERO;
        }
        self.delay = if self.delay.is_zero() {
            Duration::from_millis(100)
        } else {
            (self.delay * 2).min(MAX)
        };
        self.delay
    }
}

/// How a container is run beyond its spec: restart policy, logging,
/// terminal and stdin (docker's `HostConfig` bits bay keeps in the state).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lifecycle {
    /// `--restart`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// `--log-opt`.
    #[serde(default)]
    pub log: LogConfig,
    /// `-t`.
    #[serde(default)]
    pub tty: bool,
    /// `-i`.
    #[serde(default)]
    pub open_stdin: bool,
    /// The image's `StopSignal` (a signal number), for `stop`.
    #[serde(default)]
    pub stop_signal: Option<i32>,
    /// `--rm` with `-d`: the monitor removes the container when it is done.
    #[serde(default)]
    pub auto_remove: bool,
}

fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> ContainerError {
    move |source| ContainerError::Sys { op, source }
}

/// The container's end of its streams, and ours.
struct Streams {
    stdio: StdioConfig,
    out: OwnedFd,
    err: Option<OwnedFd>,
    _stdin_writer: Option<OwnedFd>,
}

fn streams(lc: &Lifecycle) -> Result<Streams, ContainerError> {
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe2"));
    let (stdin, stdin_writer) = if lc.open_stdin && !lc.tty {
        // Open but never written: `-di` keeps a reader of stdin waiting, as docker does.
        let (r, w) = pipe()?;
        (Stdio::Fd(r), Some(w))
    } else {
        (Stdio::Null, None)
    };
    if lc.tty {
        let ws = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).map_err(sys("openpty"))?;
        let dup = |fd: &OwnedFd| {
            fd.try_clone()
                .map_err(|e| sys("dup")(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))))
        };
        let stdio = StdioConfig {
            stdin: Stdio::Fd(dup(&pty.slave)?),
            stdout: Stdio::Fd(dup(&pty.slave)?),
            stderr: Stdio::Fd(pty.slave),
        };
        set_cloexec(&pty.master);
        return Ok(Streams {
            stdio,
            out: pty.master,
            err: None,
            _stdin_writer: stdin_writer,
        });
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    Ok(Streams {
        stdio: StdioConfig {
            stdin,
            stdout: Stdio::Fd(out_w),
            stderr: Stdio::Fd(err_w),
        },
        out: out_r,
        err: Some(err_r),
        _stdin_writer: stdin_writer,
    })
}

fn set_cloexec(fd: &OwnedFd) {
    let _ = nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
}

/// Copies the container's output into the log until the container exits
/// and its streams are drained.
fn pump(
    c: &mut crate::container::Container<'_>,
    s: Streams,
    log: &mut LogWriter,
) -> Result<ExitStatus, ContainerError> {
    let mut open: Vec<(std::fs::File, Stream, LineSplitter)> = vec![(
        std::fs::File::from(s.out),
        Stream::Stdout,
        LineSplitter::default(),
    )];
    if let Some(e) = s.err {
        open.push((
            std::fs::File::from(e),
            Stream::Stderr,
            LineSplitter::default(),
        ));
    }
    let mut buf = vec![0u8; 32 * 1024];
    let mut status = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut write_err = None;
    let mut emit = |log: &mut LogWriter, stream: Stream, msg: &[u8]| {
        if let Err(e) = log.write(stream, msg, chrono::Utc::now()) {
            write_err.get_or_insert(e);
        }
    };
    loop {
        if open.is_empty() && status.is_some() {
            break;
        }
        if drain_deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let mut fds: Vec<nix::poll::PollFd<'_>> = open
            .iter()
            .map(|(f, _, _)| nix::poll::PollFd::new(f.as_fd(), nix::poll::PollFlags::POLLIN))
            .collect();
        let pidfd = if status.is_none() { c.pidfd() } else { None };
        if let Some(p) = pidfd {
            fds.push(nix::poll::PollFd::new(p, nix::poll::PollFlags::POLLIN));
        }
        let timeout = if status.is_some() {
            nix::poll::PollTimeout::from(100u16)
        } else {
            nix::poll::PollTimeout::NONE
        };
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(sys("poll")(e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let exited = pidfd.is_some() && ready.last().copied().unwrap_or(false);
        let mut closed = Vec::new();
        for (i, (f, stream, split)) in open.iter_mut().enumerate() {
            if !ready[i] {
                continue;
            }
            match f.read(&mut buf) {
                Ok(0) | Err(_) => closed.push(i),
                Ok(n) => split.feed(&buf[..n], |m| emit(log, *stream, m)),
            }
        }
        for i in closed.into_iter().rev() {
            let (_, stream, mut split) = open.remove(i);
            split.finish(|m| emit(log, stream, m));
        }
        if exited {
            status = Some(c.wait()?);
            // Everything in the pid namespace died with its init; what is
            // still buffered in the pipes arrives within moments.
            drain_deadline = Some(Instant::now() + Duration::from_secs(2));
        }
        if open.is_empty() && status.is_none() {
            status = Some(c.wait()?);
        }
    }
    for (_, stream, mut split) in open {
        split.finish(|m| emit(log, stream, m));
    }
    if let Some(e) = write_err {
        tracing::warn!(error = %e, "could not write the container log");
    }
    status.ok_or(ContainerError::IncorrectStatus {
        id: c.id().clone(),
        status: ContainerStatus::Running,
        action: "wait for",
    })
}

/// Gives back what starting the container needed and the monitor's loop
/// does not: freed heap (`malloc_trim`), and the pages of code and
/// read-only data that only start-up touched. The monitor is a re-exec of
/// the whole `bay` binary, so this is what keeps each detached container's
/// overhead near a minimal process's.
///
/// Pages are dropped with `MADV_DONTNEED` only from mappings that are
/// file-backed, not writable, and hold no private (copied-on-write) page
/// (`Anonymous: 0 kB` in smaps, which excludes RELRO data the loader
/// relocated): such a mapping's pages are exactly the file's page-cache
/// pages, so a later access maps the very same content again. The monitor
/// is single-threaded and never changes its mappings' protection, so
/// nothing can change between reading smaps and the advice.
/// (`MADV_PAGEOUT` would be the gentler hint, but it leaves pages that the
/// page cache still wants resident, which is all of them here.)
#[allow(unsafe_code)]
fn shrink() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize, bool)> = None;
    let mut droppable = Vec::new();
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or_default();
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            let perms = f.next().unwrap_or_default();
            let inode = f.nth(2).unwrap_or("0");
            let path = f.next().unwrap_or_default();
            let candidate = inode != "0"
                && path.starts_with('/')
                && !perms.contains('w')
                && perms.ends_with('p');
            current = Some((start, end, candidate));
        } else if first == "Anonymous:"
            && let Some((start, end, true)) = current.take()
            && f.next() == Some("0")
        {
            droppable.push((start, end));
        }
    }
    for (start, end) in droppable {
        // SAFETY: see above: a private, read-only file mapping without
        // copied pages; dropping its pages does not change what it reads.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// Closes every descriptor above stderr but `keep`: the monitor outlives
/// the `bay` that started it and must not hold that process's pipes open
/// (a caller reading `bay run -d`'s output would never see EOF).
fn close_inherited(keep: i32) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2 && *fd != keep)
        .collect();
    for fd in fds {
        // The directory's own descriptor is among them; closing it after
        // the listing is harmless (EBADF is ignored).
        let _ = nix::unistd::close(fd);
    }
}

fn self_start_time() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    s.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Runs the monitor of container `id` under the runtime at `root` and
/// returns the process exit code. `report` gets the first start's outcome.
pub fn run(root: &Path, id: &ContainerId, report: impl Write + AsFd) -> i32 {
    close_inherited(report.as_fd().as_raw_fd());
    let mut report = Some(report);
    let mut tell = |msg: String| {
        if let Some(mut r) = report.take() {
            let _ = r.write_all(msg.as_bytes());
            let _ = r.flush();
        }
    };
    let rt = match Runtime::open(root) {
        Ok(rt) => rt,
        Err(e) => {
            tell(format!("ERR 125 {e}\n"));
            return 125;
        }
    };
    match supervise(&rt, id, &mut tell) {
        Ok(()) => 0,
        Err(e) => {
            tell(format!("ERR {} {e}\n", e.exit_code()));
            tracing::warn!(error = %e, "monitor failed");
            1
        }
    }
}

fn supervise(
    rt: &Runtime,
    id: &ContainerId,
    tell: &mut dyn FnMut(String),
) -> Result<(), ContainerError> {
    let mut c = rt.load(id)?;
    let me = std::process::id() as i32;
    let my_start = self_start_time();
    // A start by hand begins a fresh restart budget (docker resets its
    // restart manager on every start).
    c.update(|s| {
        s.monitor_pid = Some(me);
        s.monitor_start = my_start;
        s.manually_stopped = false;
        s.restart_count = 0;
    })?;
    let lc = c.state().lifecycle.clone();
    let log_path = rt.layout().container_log(id.as_str());
    let mut log = LogWriter::open(&log_path, lc.log).map_err(|e| ContainerError::Io {
        op: "open log",
        path: log_path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut backoff = Backoff::default();
    let result = loop {
        let s = streams(&lc)?;
        let Streams {
            stdio,
            out,
            err,
            _stdin_writer,
        } = s;
        let started = Instant::now();
        if let Err(e) = c.start(stdio) {
            let msg = e.to_string();
            let code = e.exit_code();
            let _ = c.update(|s| {
                s.error = Some(msg.clone());
                s.exit_code = Some(code);
                s.restarting = false;
            });
            break Err(e);
        }
        tell("OK\n".to_owned());
        if c.state().restart_count == 0 {
            shrink();
        }
        let status = pump(
            &mut c,
            Streams {
                stdio: StdioConfig::default(),
                out,
                err,
                _stdin_writer,
            },
            &mut log,
        )?;
        if c.reload().is_err() {
            break Ok(()); // removed
        }
        let st = c.state();
        if !lc
            .restart
            .should_restart(status.code, st.restart_count, st.manually_stopped)
        {
            break Ok(());
        }
        let delay = backoff.next(started.elapsed());
        c.update(|s| s.restarting = true)?;
        let until = Instant::now() + delay;
        let mut cancelled = false;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
            match c.reload() {
                Ok(()) if c.state().manually_stopped => {
                    cancelled = true;
                    break;
                }
                Ok(()) => {}
                Err(_) => return Ok(()),
            }
        }
        if cancelled {
            c.update(|s| s.restarting = false)?;
            break Ok(());
        }
        c.update(|s| s.restart_count += 1)?;
        tracing::info!(%id, restarts = c.state().restart_count, "restarting container");
    };
    let _ = c.update(|s| {
        s.monitor_pid = None;
        s.monitor_start = None;
        s.restarting = false;
    });
    if lc.auto_remove && result.is_ok() {
        let name = c.state().name.clone();
        c.delete(true)?;
        if let Some(n) = name {
            rt.release_name(&n, id);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_and_decide_like_docker() {
        assert_eq!("no".parse::<RestartPolicy>().unwrap(), RestartPolicy::No);
        assert_eq!(
            "on-failure:2".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::OnFailure { max: 2 }
        );
        assert_eq!(
            "unless-stopped".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::UnlessStopped
        );
        assert!("always:3".parse::<RestartPolicy>().is_err());
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
        let p = RestartPolicy::OnFailure { max: 2 };
        assert!(p.should_restart(1, 0, false) && p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false) && !p.should_restart(0, 0, false));
        assert!(!p.should_restart(1, 0, true));
        assert!(RestartPolicy::Always.should_restart(0, 100, false));
        assert!(!RestartPolicy::Always.should_restart(0, 0, true));
        assert!(!RestartPolicy::No.should_restart(1, 0, false));
    }

    #[test]
    fn backoff_doubles_to_a_minute_and_resets_after_ten_seconds() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(5);
        let d: Vec<u128> = (0..4).map(|_| b.next(quick).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800]);
        for _ in 0..20 {
            b.next(quick);
        }
        assert_eq!(b.next(quick), Duration::from_secs(60));
        assert_eq!(b.next(Duration::from_secs(10)), Duration::from_millis(100));
    }
}
