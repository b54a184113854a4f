//! The container verbs behind `bay ps`, `stop`, `start`, `kill`, `rm`,
//! `pause`, `rename`, `wait`, `top`, `stats`, `inspect`, `diff`, `commit`,
//! `export` and `cp`, on `bay_runtime`'s containers under
//! `<data-root>/runtime`. Every verb accepts a name, a full id or a unique
//! id prefix ([`Runtime::resolve`]).
//!
//! Detached containers are run by a monitor process (`bay __monitor`, see
//! `bay_runtime::monitor`), started by [`spawn_monitor`]; the verbs here
//! only read and update the state the monitor keeps on disk, so they work
//! from any `bay` process.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bay_runtime::{ContainerError, ContainerId, ContainerStatus, RootfsView, Runtime, State};
use serde_json::{Value, json};

use super::{CommandError, Env, out_err, runtime_root};
use crate::format::{human_duration, table};
use crate::template::Template;

/// The spec annotation with the image reference as the user typed it (`ps`'s IMAGE).
pub const IMAGE_REF_ANNOTATION: &str = "org.bay.image.ref";

/// Opens the runtime of `env`.
pub fn open_runtime(env: &Env) -> Result<Runtime, CommandError> {
    Ok(Runtime::open(runtime_root(env))?)
}

fn rfc3339(secs: Option<u64>) -> String {
    secs.and_then(|s| chrono::DateTime::from_timestamp(i64::try_from(s).ok()?, 0))
        .map_or_else(
            || "0001-01-01T00:00:00Z".to_owned(),
            bay_runtime::logs::rfc3339_nano,
        )
}

fn ago(secs: Option<u64>) -> i64 {
    let now = chrono::Utc::now().timestamp();
    secs.and_then(|s| i64::try_from(s).ok())
        .map_or(0, |s| (now - s).max(0))
}

/// docker's `State.Status`.
pub fn status_word(s: &State) -> &'static str {
    match s.status {
        _ if s.restarting => "restarting",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Paused => "paused",
        ContainerStatus::Stopped => "exited",
    }
}

/// docker's `ps` STATUS column.
pub fn status_text(s: &State) -> String {
    let code = s.exit_code.unwrap_or(0);
    match s.status {
        _ if s.restarting => format!(
            "Restarting ({code}) {} ago",
            human_duration(ago(s.finished))
        ),
        ContainerStatus::Created => "Created".to_owned(),
        ContainerStatus::Running => format!("Up {}", human_duration(ago(s.started))),
        ContainerStatus::Paused => format!("Up {} (Paused)", human_duration(ago(s.started))),
        ContainerStatus::Stopped if s.started.is_none() => "Created".to_owned(),
        ContainerStatus::Stopped => {
            format!("Exited ({code}) {} ago", human_duration(ago(s.finished)))
        }
    }
}

fn is_running(s: &State) -> bool {
    matches!(s.status, ContainerStatus::Running | ContainerStatus::Paused) || s.restarting
}

/// Resolves what the user typed to a container id.
pub fn resolve(rt: &Runtime, query: &str) -> Result<ContainerId, CommandError> {
    Ok(rt.resolve(query)?)
}

/// `ps` flags.
#[derive(Debug, Clone, Default)]
pub struct PsOptions {
    /// `-a`.
    pub all: bool,
    /// `-q`.
    pub quiet: bool,
    /// `--no-trunc`.
    pub no_trunc: bool,
    /// `-l`.
    pub latest: bool,
    /// `--format`.
    pub format: Option<String>,
}

fn quote_command(args: &[String], no_trunc: bool) -> String {
    let cmd = args.join(" ");
    let cmd = if no_trunc || cmd.chars().count() <= 20 {
        cmd
    } else {
        let mut t: String = cmd.chars().take(19).collect();
        t.push('…');
        t
    };
    serde_json::to_string(&cmd).unwrap_or_default()
}

fn spec_args(spec: &oci_spec::runtime::Spec) -> Vec<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.args().clone())
        .unwrap_or_default()
}

fn annotation(spec: &oci_spec::runtime::Spec, key: &str) -> String {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(key).cloned())
        .unwrap_or_default()
}

/// The row `ps --format` renders.
fn ps_row(rt: &Runtime, s: &State, no_trunc: bool) -> Result<Value, CommandError> {
    let spec = rt.load(&s.id)?.spec()?;
    let id = if no_trunc {
        s.id.as_str()
    } else {
        s.id.short()
    };
    let created = chrono::DateTime::from_timestamp(i64::try_from(s.created).unwrap_or(0), 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default();
    Ok(json!({
        "ID": id,
        "Image": annotation(&spec, IMAGE_REF_ANNOTATION),
        "Command": quote_command(&spec_args(&spec), no_trunc),
        "CreatedAt": created,
        "RunningFor": format!("{} ago", human_duration(ago(Some(s.created)))),
        "Ports": published(rt, s)
            .iter()
            .map(|p| format!("{}->{}", p.host(), p.private()))
            .collect::<Vec<_>>()
            .join(", "),
        "Status": status_text(s),
        "State": status_word(s),
        "Names": s.name.clone().unwrap_or_default(),
        "Labels": "",
        "Mounts": "",
        "Networks": "",
        "Size": "",
    }))
}

/// `bay ps`.
pub fn ps(env: &Env, opts: &PsOptions, out: &mut dyn Write) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let mut states = rt.list()?;
    states.reverse(); // newest first, as docker lists them
    if opts.latest {
        states.truncate(1);
    } else if !opts.all {
        states.retain(is_running);
    }
    if opts.quiet {
        for s in &states {
            let id = if opts.no_trunc {
                s.id.as_str()
            } else {
                s.id.short()
            };
            writeln!(out, "{id}").map_err(out_err)?;
        }
        return Ok(());
    }
    if let Some(f) = opts.format.as_deref().filter(|f| f.trim() != "table") {
        // docker's `table` prefix: a header row, columns split at tabs and aligned.
        let (is_table, f) = match f.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start()),
            None => (false, f),
        };
        let t = Template::parse(&f.replace("\\t", "\t"))?;
        let mut lines = Vec::new();
        if is_table {
            lines.push(t.render(&json!({
                "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
                "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
                "Status": "STATUS", "State": "STATE", "Names": "NAMES", "Labels": "LABELS",
                "Mounts": "MOUNTS", "Networks": "NETWORKS", "Size": "SIZE",
            }))?);
        }
        for s in &states {
            lines.push(t.render(&ps_row(&rt, s, opts.no_trunc)?)?);
        }
        if is_table {
            let rows: Vec<Vec<String>> = lines
                .iter()
                .map(|l| l.split('\t').map(str::to_owned).collect())
                .collect();
            return out.write_all(table(&rows).as_bytes()).map_err(out_err);
        }
        for l in lines {
            writeln!(out, "{l}").map_err(out_err)?;
        }
        return Ok(());
    }
    let mut rows = vec![
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for s in &states {
        let r = ps_row(&rt, s, opts.no_trunc)?;
        let f = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        rows.push(vec![
            f("ID"),
            f("Image"),
            f("Command"),
            f("RunningFor"),
            f("Status"),
            f("Ports"),
            f("Names"),
        ]);
    }
    out.write_all(table(&rows).as_bytes()).map_err(out_err)
}

/// One published port of a running container, as `ps` and `port` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    /// The host address (`0.0.0.0` for every local address).
    pub host_ip: std::net::Ipv4Addr,
    /// The host port.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
}

impl PublishedPort {
    /// `80/tcp`.
    pub fn private(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }
    /// `127.0.0.1:8080`.
    pub fn host(&self) -> String {
        format!("{}:{}", self.host_ip, self.host_port)
    }
}

/// The ports a running container publishes (its network lease holds them,
/// ephemeral host ports resolved); none for a stopped one, as in docker.
fn published(rt: &Runtime, s: &State) -> Vec<PublishedPort> {
    let mut ports: Vec<PublishedPort> = lease_of(rt, s)
        .map(|l| l.ports)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            Some(PublishedPort {
                host_ip: p.host_ip.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                host_port: p.host_port?,
                container_port: p.container_port,
                protocol: p.protocol.as_str(),
            })
        })
        .collect();
    ports.sort_by_key(|p| (p.container_port, p.protocol, p.host_ip, p.host_port));
    ports
}

/// A running container's bridge lease (address and ports).
fn lease_of(rt: &Runtime, s: &State) -> Option<bay_runtime::network::leases::Lease> {
    if !is_running(s) {
        return None;
    }
    match rt.network().lease(&s.id) {
        Ok(l) => l,
        Err(error) => {
            tracing::debug!(id = %s.id, %error, "cannot read the network lease");
            None
        }
    }
}

/// docker's `NetworkSettings` for a running container on the bridge:
/// `IPAddress` and `Ports` (`{"80/tcp": [{"HostIp": …, "HostPort": …}]}`).
fn network_settings(rt: &Runtime, s: &State) -> Value {
    let ip = lease_of(rt, s)
        .map(|l| l.ip.to_string())
        .unwrap_or_default();
    let mut ports = serde_json::Map::new();
    for p in published(rt, s) {
        if let Value::Array(list) = ports
            .entry(p.private())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            list.push(
                json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}),
            );
        }
    }
    json!({"IPAddress": ip, "Ports": ports})
}

/// `bay port CONTAINER [PRIVATE_PORT[/PROTO]]`: docker's lines,
/// `80/tcp -> 127.0.0.1:8080`, or only the host side for one private port.
pub fn port(
    env: &Env,
    query: &str,
    private: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let id = resolve(&rt, query)?;
    let c = rt.load(&id)?;
    let ports = published(&rt, c.state());
    let Some(want) = private else {
        for p in &ports {
            writeln!(out, "{} -> {}", p.private(), p.host()).map_err(out_err)?;
        }
        return Ok(());
    };
    let (num, proto) = want.split_once('/').unwrap_or((want, "tcp"));
    let bad = || CommandError::BadPort {
        port: want.to_owned(),
    };
    let num: u16 = num.parse().map_err(|_| bad())?;
    if !matches!(proto, "tcp" | "udp") {
        return Err(bad());
    }
    let matching: Vec<&PublishedPort> = ports
        .iter()
        .filter(|p| p.container_port == num && p.protocol == proto)
        .collect();
    if matching.is_empty() {
        return Err(CommandError::NoPublicPort {
            port: format!("{num}/{proto}"),
            container: query.to_owned(),
        });
    }
    for p in matching {
        writeln!(out, "{}", p.host()).map_err(out_err)?;
    }
    Ok(())
}

/// Parses `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(s: &str) -> Result<i32, CommandError> {
    let bad = || CommandError::BadSignal {
        signal: s.to_owned(),
    };
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map(|sig| sig as i32)
            .map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| bad())
}

/// Polls until the container is no longer running (its monitor, or the
/// foreground `bay run` that owns it, has recorded the exit).
fn wait_stopped(rt: &Runtime, id: &ContainerId, timeout: Duration) -> Result<bool, CommandError> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = match rt.load(id) {
            Ok(c) => c,
            Err(ContainerError::NotFound { .. }) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        if !matches!(
            c.status(),
            ContainerStatus::Running | ContainerStatus::Paused
        ) && !c.state().restarting
        {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(15));
    }
}

/// Stops one container: its stop signal (SIGTERM by default), then SIGKILL
/// after `timeout`. A stopped container is left alone.
pub fn stop_one(
    rt: &Runtime,
    id: &ContainerId,
    timeout: Duration,
    signal: Option<i32>,
) -> Result<(), CommandError> {
    let mut c = rt.load(id)?;
    c.update(|s| s.manually_stopped = true)?;
    if !matches!(
        c.status(),
        ContainerStatus::Running | ContainerStatus::Paused
    ) {
        // Maybe between restarts: the monitor sees the manual stop and quits.
        wait_stopped(rt, id, Duration::from_secs(2))?;
        return Ok(());
    }
    let sig = signal
        .or(c.state().lifecycle.stop_signal)
        .unwrap_or(nix::libc::SIGTERM);
    match c.kill(sig) {
        Ok(()) | Err(ContainerError::IncorrectStatus { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    if wait_stopped(rt, id, timeout)? {
        return Ok(());
    }
    tracing::info!(%id, "container did not stop in time; killing it");
    let mut c = rt.load(id)?;
    match c.kill(nix::libc::SIGKILL) {
        Ok(()) | Err(ContainerError::IncorrectStatus { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    wait_stopped(rt, id, Duration::from_secs(10))?;
    Ok(())
}

/// Runs `f` for each named container, printing the name on success and
/// docker's error line otherwise; [`CommandError::Partial`] if any failed.
fn each(
    env: &Env,
    names: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
    mut f: impl FnMut(&Runtime, &ContainerId) -> Result<(), CommandError>,
) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let mut failed = 0;
    for n in names {
        match resolve(&rt, n).and_then(|id| f(&rt, &id)) {
            Ok(()) => writeln!(out, "{n}").map_err(out_err)?,
            Err(e) => {
                failed += 1;
                writeln!(err, "Error response from daemon: {e}").map_err(out_err)?;
            }
        }
    }
    if failed > 0 {
        return Err(CommandError::Partial { failed });
    }
    Ok(())
}

/// `bay stop [-t N] [-s SIG]`.
pub fn stop(
    env: &Env,
    names: &[String],
    time: Option<u64>,
    signal: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let sig = signal.map(parse_signal).transpose()?;
    let timeout = Duration::from_secs(time.unwrap_or(10));
    each(env, names, out, err, |rt, id| {
        stop_one(rt, id, timeout, sig)
    })
}

/// `bay kill [-s SIG]`.
pub fn kill(
    env: &Env,
    names: &[String],
    signal: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let sig = parse_signal(signal)?;
    each(env, names, out, err, |rt, id| {
        let mut c = rt.load(id)?;
        if !matches!(
            c.status(),
            ContainerStatus::Running | ContainerStatus::Paused
        ) {
            return Err(CommandError::NotRunning { id: id.clone() });
        }
        c.update(|s| s.manually_stopped = true)?;
        c.kill(sig)?;
        Ok(())
    })
}

/// `bay pause` / `bay unpause`.
pub fn pause(
    env: &Env,
    names: &[String],
    pause: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    each(env, names, out, err, |rt, id| {
        let mut c = rt.load(id)?;
        let r = if pause { c.pause() } else { c.resume() };
        match r {
            Err(ContainerError::IncorrectStatus { status, .. }) => Err(if pause {
                if status == ContainerStatus::Paused {
                    CommandError::AlreadyPaused { id: id.clone() }
                } else {
                    CommandError::NotRunning { id: id.clone() }
                }
            } else {
                CommandError::NotPaused { id: id.clone() }
            }),
            r => Ok(r?),
        }
    })
}

/// `bay rm [-f] [-v]`: with `volumes`, also the anonymous volumes (`-v
/// /path`) made for each container, as docker does.
pub fn rm(
    env: &Env,
    names: &[String],
    force: bool,
    volumes: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let root = runtime_root(env);
    each(env, names, out, err, |rt, id| {
        let anonymous = if volumes {
            super::run::anonymous_volumes(&rt.load(id)?)
        } else {
            Vec::new()
        };
        remove(rt, id, force)?;
        super::run::remove_anonymous_volumes(&root, &anonymous);
        Ok(())
    })
}

/// Removes a container (killing it first with `force`) and its name.
pub fn remove(rt: &Runtime, id: &ContainerId, force: bool) -> Result<(), CommandError> {
    let mut c = rt.load(id)?;
    if is_running(c.state()) {
        if !force {
            return Err(CommandError::RemoveRunning {
                name: c.state().name.clone().unwrap_or_else(|| id.to_string()),
            });
        }
        c.update(|s| s.manually_stopped = true)?;
        match c.kill(nix::libc::SIGKILL) {
            Ok(()) | Err(ContainerError::IncorrectStatus { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        wait_stopped(rt, id, Duration::from_secs(10))?;
    }
    let c = rt.load(id)?;
    let name = c.state().name.clone();
    c.delete(true)?;
    if let Some(n) = name {
        rt.release_name(&n, id);
    }
    Ok(())
}

/// `bay rename`.
pub fn rename(env: &Env, query: &str, new_name: &str) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let id = resolve(&rt, query)?;
    let name = bay_runtime::ContainerName::parse(new_name)?;
    let mut c = rt.load(&id)?;
    let old = c.state().name.clone();
    if old.as_deref() == Some(name.as_str()) {
        return Err(CommandError::SameName {
            name: name.to_string(),
        });
    }
    rt.claim_name(&name, &id)?;
    c.update(|s| s.name = Some(name.to_string()))?;
    if let Some(o) = old {
        rt.release_name(&o, &id);
    }
    Ok(())
}

/// `bay wait`: blocks until each container stops; prints its exit code.
pub fn wait(
    env: &Env,
    names: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let mut failed = 0;
    for n in names {
        let code = resolve(&rt, n).and_then(|id| {
            while !wait_stopped(&rt, &id, Duration::from_secs(3600))? {}
            Ok(match rt.load(&id) {
                Ok(c) => c.state().exit_code.unwrap_or(0),
                Err(ContainerError::NotFound { .. }) => 0,
                Err(e) => return Err(e.into()),
            })
        });
        match code {
            Ok(c) => writeln!(out, "{c}").map_err(out_err)?,
            Err(e) => {
                failed += 1;
                writeln!(err, "Error response from daemon: {e}").map_err(out_err)?;
            }
        }
    }
    if failed > 0 {
        return Err(CommandError::Partial { failed });
    }
    Ok(())
}

/// Starts the monitor of container `id` (`bay __monitor ROOT ID`) and waits
/// for the outcome of the first start.
pub fn spawn_monitor(env: &Env, id: &ContainerId) -> Result<(), CommandError> {
    // The monitor runs in `/`: a relative --data-root must not move.
    let root = std::path::absolute(runtime_root(env)).map_err(|source| CommandError::Io {
        op: "resolve",
        what: "the data root".to_owned(),
        source,
    })?;
    let io = |op: &'static str| {
        move |source| CommandError::Io {
            op,
            what: "the container monitor".to_owned(),
            source,
        }
    };
    let mut child = std::process::Command::new("/proc/self/exe")
        .arg("__monitor")
        .arg(&root)
        .arg(id.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .current_dir("/")
        .spawn()
        .map_err(io("start"))?;
    let mut report = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut report).map_err(io("read"))?;
    }
    let line = report.lines().next().unwrap_or_default();
    if line == "OK" {
        return Ok(());
    }
    // The monitor exits right after a failed first start; reap it.
    let _ = child.wait();
    let (code, message) = match line.strip_prefix("ERR ").and_then(|r| r.split_once(' ')) {
        Some((c, m)) => (c.parse().unwrap_or(125), m.to_owned()),
        None => (
            125,
            "the container monitor exited before starting it".to_owned(),
        ),
    };
    Err(CommandError::StartFailed { code, message })
}

/// `bay start` of one container (already running: nothing to do).
pub fn start_one(env: &Env, rt: &Runtime, id: &ContainerId) -> Result<(), CommandError> {
    let c = rt.load(id)?;
    if is_running(c.state()) {
        return Ok(());
    }
    spawn_monitor(env, id)
}

/// `bay start` without `-a`.
pub fn start(
    env: &Env,
    names: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    each(env, names, out, err, |rt, id| start_one(env, rt, id))
}

/// `bay start -a CONTAINER`: starts it and streams its output until it
/// exits; returns the exit code.
pub fn start_attached(
    env: &Env,
    query: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, CommandError> {
    let rt = open_runtime(env)?;
    let id = resolve(&rt, query)?;
    let log = rt.layout().container_log(id.as_str());
    let from = std::fs::metadata(&log).map_or(0, |m| m.len());
    start_one(env, &rt, &id)?;
    super::logs::follow_from(&rt, &id, from, false, out, err)?;
    wait_stopped(&rt, &id, Duration::from_secs(3600))?;
    Ok(rt.load(&id)?.state().exit_code.unwrap_or(0))
}

/// `bay restart`.
pub fn restart(
    env: &Env,
    names: &[String],
    time: Option<u64>,
    signal: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let sig = signal.map(parse_signal).transpose()?;
    let timeout = Duration::from_secs(time.unwrap_or(10));
    each(env, names, out, err, |rt, id| {
        stop_one(rt, id, timeout, sig)?;
        // Let a monitor that is winding down finish before the new one.
        let deadline = Instant::now() + Duration::from_secs(3);
        while rt.load(id)?.state().monitor_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        start_one(env, rt, id)
    })
}

/// `bay top`: docker's `ps -ef` columns for the container's processes.
pub fn top(env: &Env, query: &str, out: &mut dyn Write) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let id = resolve(&rt, query)?;
    let c = rt.load(&id)?;
    if c.status() != ContainerStatus::Running && c.status() != ContainerStatus::Paused {
        return Err(CommandError::NotRunning { id });
    }
    let pids: std::collections::HashSet<String> =
        c.processes()?.iter().map(ToString::to_string).collect();
    let o = std::process::Command::new("ps")
        .args(["-e", "-o", "user,pid,ppid,c,stime,tty,time,args"])
        .output()
        .map_err(|source| CommandError::Io {
            op: "run",
            what: "ps".to_owned(),
            source,
        })?;
    let text = String::from_utf8_lossy(&o.stdout);
    let mut rows = vec![
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 8 && pids.contains(cols[1]) {
            let mut r: Vec<String> = cols[..7].iter().map(|s| (*s).to_owned()).collect();
            r.push(cols[7..].join(" "));
            rows.push(r);
        }
    }
    out.write_all(table(&rows).as_bytes()).map_err(out_err)
}

/// docker's binary units for `stats`: `1.5MiB`.
fn binary_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .chars()
            .take(5)
            .collect::<String>()
            .trim_end_matches('.')
            .to_owned()
            + UNITS[i]
    }
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// `bay stats --no-stream`: one sample per container (CPU over a short
/// interval), docker's columns.
pub fn stats(
    env: &Env,
    names: &[String],
    all: bool,
    no_trunc: bool,
    format: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let ids: Vec<ContainerId> = if names.is_empty() {
        rt.list()?
            .into_iter()
            .filter(|s| all || is_running(s))
            .map(|s| s.id)
            .collect()
    } else {
        names
            .iter()
            .map(|n| resolve(&rt, n))
            .collect::<Result<_, _>>()?
    };
    let sample = |id: &ContainerId| -> Option<bay_runtime::cgroups::CgroupStats> {
        let c = rt.load(id).ok()?;
        is_running(c.state()).then(|| c.stats().ok()).flatten()
    };
    let first: Vec<_> = ids.iter().map(sample).collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let wall = t0.elapsed().as_nanos().max(1) as f64;
    let mut rows = vec![
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let tmpl = format
        .map(|f| Template::parse(f.strip_prefix("table ").unwrap_or(f)))
        .transpose()?;
    for (id, before) in ids.iter().zip(first) {
        let c = rt.load(id)?;
        let now = sample(id);
        let (cpu, mem, limit, pids) = match (&before, &now) {
            (Some(a), Some(b)) => (
                b.cpu_usage_ns.saturating_sub(a.cpu_usage_ns) as f64 / wall * 100.0,
                b.memory_usage,
                b.memory_limit.unwrap_or_else(host_memory),
                b.pids_current,
            ),
            _ => (0.0, 0, 0, 0),
        };
        let mem_pct = if limit > 0 {
            mem as f64 / limit as f64 * 100.0
        } else {
            0.0
        };
        let short = if no_trunc { id.as_str() } else { id.short() };
        let v = json!({
            "ID": short,
            "Container": short,
            "Name": c.state().name.clone().unwrap_or_default(),
            "CPUPerc": format!("{cpu:.2}%"),
            "MemUsage": format!("{} / {}", binary_size(mem), binary_size(limit)),
            "MemPerc": format!("{mem_pct:.2}%"),
            "NetIO": "0B / 0B",
            "BlockIO": "0B / 0B",
            "PIDs": pids.to_string(),
        });
        if let Some(t) = &tmpl {
            writeln!(out, "{}", t.render(&v)?).map_err(out_err)?;
            continue;
        }
        let f = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        rows.push(vec![
            f("ID"),
            f("Name"),
            f("CPUPerc"),
            f("MemUsage"),
            f("MemPerc"),
            f("NetIO"),
            f("BlockIO"),
            f("PIDs"),
        ]);
    }
    if tmpl.is_none() {
        out.write_all(table(&rows).as_bytes()).map_err(out_err)?;
    }
    Ok(())
}

/// docker's `container inspect` document (plus `Spec`, the OCI runtime spec).
pub fn inspect_container(rt: &Runtime, query: &str) -> Result<Value, CommandError> {
    let id = resolve(rt, query)?;
    let c = rt.load(&id)?;
    let s = c.state();
    let spec = c.spec()?;
    let args = spec_args(&spec);
    let process = spec.process().clone().unwrap_or_default();
    let lowers: Vec<String> = rt
        .layer_paths(&s.layers)
        .unwrap_or_default()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let layout = rt.layout();
    let lc = &s.lifecycle;
    let mut log_cfg = serde_json::Map::new();
    if let Some(m) = lc.log.max_size {
        log_cfg.insert("max-size".into(), json!(m.to_string()));
    }
    if lc.log.max_file > 1 {
        log_cfg.insert("max-file".into(), json!(lc.log.max_file.to_string()));
    }
    Ok(json!({
        "Id": id.as_str(),
        "Created": rfc3339(Some(s.created)),
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.get(1..).unwrap_or_default(),
        "State": {
            "Status": status_word(s),
            "Running": matches!(s.status, ContainerStatus::Running | ContainerStatus::Paused),
            "Paused": s.status == ContainerStatus::Paused,
            "Restarting": s.restarting,
            "OOMKilled": s.oom_killed,
            "Dead": false,
            "Pid": s.pid.unwrap_or(0),
            "ExitCode": s.exit_code.unwrap_or(0),
            "Error": s.error.clone().unwrap_or_default(),
            "StartedAt": rfc3339(s.started),
            "FinishedAt": rfc3339(s.finished),
        },
        "Image": annotation(&spec, super::IMAGE_ANNOTATION),
        "LogPath": layout.container_log(id.as_str()).display().to_string(),
        "Name": format!("/{}", s.name.clone().unwrap_or_default()),
        "RestartCount": s.restart_count,
        "NetworkSettings": network_settings(rt, s),
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": {
            "LogConfig": {"Type": "json-file", "Config": log_cfg},
            "RestartPolicy": {
                "Name": lc.restart.name(),
                "MaximumRetryCount": lc.restart.max_retries(),
            },
        },
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": lowers.join(":"),
                "UpperDir": layout.container_upper(id.as_str()).display().to_string(),
                "WorkDir": layout.container_work(id.as_str()).display().to_string(),
                "MergedDir": layout.container_rootfs(id.as_str()).display().to_string(),
            },
        },
        "Config": {
            "Hostname": spec.hostname().clone().unwrap_or_default(),
            "User": format!("{}:{}", process.user().uid(), process.user().gid()),
            "Tty": lc.tty,
            "OpenStdin": lc.open_stdin,
            "Env": process.env().clone().unwrap_or_default(),
            "Cmd": args,
            "Image": annotation(&spec, IMAGE_REF_ANNOTATION),
            "WorkingDir": process.cwd().display().to_string(),
            "Entrypoint": null,
        },
        "Spec": serde_json::to_value(&spec).unwrap_or(Value::Null),
    }))
}

/// `bay container inspect`.
pub fn inspect(
    env: &Env,
    names: &[String],
    format: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let tmpl = format.map(Template::parse).transpose()?;
    let mut found = Vec::new();
    let mut failed = 0;
    for n in names {
        match inspect_container(&rt, n) {
            Ok(v) => found.push(v),
            Err(CommandError::Runtime(ContainerError::NoSuchContainer { .. })) => {
                failed += 1;
                writeln!(err, "Error: No such container: {n}").map_err(out_err)?;
            }
            Err(e) => return Err(e),
        }
    }
    write_docs(&found, tmpl.as_ref(), out)?;
    if failed > 0 {
        return Err(CommandError::Partial { failed });
    }
    Ok(())
}

/// Prints inspect documents: JSON with docker's 4-space indent, or a template per document.
pub(crate) fn write_docs(
    docs: &[Value],
    tmpl: Option<&Template>,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    match tmpl {
        Some(t) => {
            for v in docs {
                writeln!(out, "{}", t.render(v)?).map_err(out_err)?;
            }
        }
        None => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(docs, &mut ser).map_err(|e| out_err(e.into()))?;
            out.write_all(&buf).map_err(out_err)?;
            writeln!(out).map_err(out_err)?;
        }
    }
    Ok(())
}

/// `bay diff`.
pub fn diff(env: &Env, query: &str, out: &mut dyn Write) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let id = resolve(&rt, query)?;
    for ch in rt.load(&id)?.diff()? {
        writeln!(out, "{ch}").map_err(out_err)?;
    }
    Ok(())
}

/// `bay commit` flags.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `-m`.
    pub message: Option<String>,
    /// `-a`.
    pub author: Option<String>,
    /// `-c`: Dockerfile instructions applied to the new config.
    pub changes: Vec<String>,
}

/// `bay commit CONTAINER [REPOSITORY[:TAG]]`: the container's changes as a
/// new layer on top of its image; prints the new image ID.
pub fn commit(
    env: &Env,
    query: &str,
    reference: Option<&str>,
    opts: &CommitOptions,
    out: &mut dyn Write,
) -> Result<oci_types::Digest, CommandError> {
    use crate::image::{Descriptor, Manifest};
    use crate::store::{ImageStore, StoreError};
    use oci_types::MediaType;

    let tag = reference
        .map(crate::reference::ImageRef::parse)
        .transpose()?;
    let rt = open_runtime(env)?;
    let id = resolve(&rt, query)?;
    let c = rt.load(&id)?;
    let spec = c.spec()?;
    let image_id: oci_types::Digest = annotation(&spec, super::IMAGE_ANNOTATION)
        .parse()
        .map_err(|_| CommandError::NoImage { id: id.clone() })?;
    let store = env.store()?;
    let _lease = store.lease()?;
    let ix = store.read_index()?;
    let rec = ix.record(&image_id).map_err(StoreError::from)?;
    let base = store.manifest_of(rec)?;
    let (_, raw) = store.config_of(&image_id)?;
    let mut config: Value =
        serde_json::from_slice(&raw).map_err(|source| CommandError::ImageConfig {
            id: image_id.clone(),
            source,
        })?;

    let writer = store.blob_writer(oci_types::Algorithm::Sha256)?;
    let mut counting = writer;
    let info = c.commit(&mut counting, bay_runtime::Compression::Gzip)?;
    let (layer_digest, layer_size) = counting.commit(Some(&info.digest))?;

    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    {
        let obj = config
            .as_object_mut()
            .ok_or(CommandError::NoImage { id: id.clone() })?;
        let runtime = obj.entry("config").or_insert_with(|| json!({}));
        if !runtime.is_object() {
            *runtime = json!({});
        }
        if let Value::Object(rc) = runtime {
            // docker commits the container's command as the image's.
            let args = spec_args(&spec);
            if !args.is_empty() {
                rc.insert("Cmd".into(), json!(args));
                rc.insert("Entrypoint".into(), Value::Null);
            }
            crate::import::apply_changes(rc, &opts.changes)?;
        }
        obj.insert("created".into(), json!(now));
        if let Some(a) = &opts.author {
            obj.insert("author".into(), json!(a));
        }
        let diff_ids = obj
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        if let Some(Value::Array(d)) = diff_ids.get_mut("diff_ids") {
            d.push(json!(info.diff_id.to_string()));
        }
        let history = obj.entry("history").or_insert_with(|| json!([]));
        if let Value::Array(h) = history {
            let mut entry = json!({"created": now, "created_by": format!("bay commit {query}")});
            if let Some(m) = &opts.message {
                entry["comment"] = json!(m);
            }
            if let Some(a) = &opts.author {
                entry["author"] = json!(a);
            }
            h.push(entry);
        }
    }
    let config_bytes = serde_json::to_vec(&config).map_err(|e| out_err(e.into()))?;
    let config_digest = store.put_blob(None, &config_bytes)?;
    let mut layers = base.layers.clone();
    layers.push(Descriptor::new(
        MediaType::OCI_LAYER_GZIP,
        layer_digest,
        layer_size,
    ));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MediaType::OCI_MANIFEST.to_owned()),
        config: Descriptor::new(
            MediaType::OCI_CONFIG,
            config_digest.clone(),
            config_bytes.len() as u64,
        ),
        layers,
        annotations: None,
    };
    let mbytes = serde_json::to_vec(&manifest).map_err(|e| out_err(e.into()))?;
    let mdigest = store.put_blob(None, &mbytes)?;
    let rec = store.make_record(&mdigest, MediaType::OCI_MANIFEST, &manifest)?;
    store.update(|ix| {
        ImageStore::insert_record(ix, rec);
        if let Some(t) = &tag
            && let Some(tagname) = t.tag_or_default()
        {
            ix.set_tag(&t.repository(), tagname.as_str(), &config_digest);
        }
        Ok::<_, StoreError>(())
    })?;
    writeln!(out, "{config_digest}").map_err(out_err)?;
    Ok(config_digest)
}

fn pipe() -> Result<(std::fs::File, std::fs::File), CommandError> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| CommandError::Io {
            op: "create",
            what: "a pipe".to_owned(),
            source: e.into(),
        })?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// `bay export`: a tar of the container's filesystem (image plus changes,
/// without its mounts) to `out`.
pub fn export(env: &Env, query: &str, out: &mut dyn Write) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    let id = resolve(&rt, query)?;
    let mut c = rt.load(&id)?;
    let (mut r, w) = pipe()?;
    let child = c.spawn_in_rootfs(RootfsView::ReadOnly, move || {
        let mut b = tar::Builder::new(std::io::BufWriter::new(w));
        b.follow_symlinks(false);
        let ok = b.append_dir_all(".", "/").and_then(|()| b.finish());
        i32::from(ok.is_err())
    })?;
    let copied = std::io::copy(&mut r, out).map_err(out_err);
    let code = child.wait()?;
    copied?;
    if code != 0 {
        return Err(CommandError::CopyFailed {
            what: format!("export of {query}"),
        });
    }
    Ok(())
}

/// One side of `bay cp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpPath {
    /// A host path, or `-` for a tar stream on stdin/stdout.
    Local(String),
    /// `CONTAINER:PATH`.
    Container(String, String),
}

impl CpPath {
    /// docker's `splitCpArg`: a path starting with `/` or `.` is local;
    /// else `NAME:PATH` names a container.
    pub fn parse(arg: &str) -> Self {
        if arg.starts_with('/') || arg.starts_with('.') {
            return Self::Local(arg.to_owned());
        }
        match arg.split_once(':') {
            Some((c, p)) if !c.is_empty() => Self::Container(c.to_owned(), p.to_owned()),
            _ => Self::Local(arg.to_owned()),
        }
    }
}

fn base_name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map_or_else(|| ".".to_owned(), |n| n.to_string_lossy().into_owned())
}

/// Exit codes of the rootfs child of `cp`.
const CP_NOT_FOUND: i32 = 2;
const CP_NOT_DIR: i32 = 3;

/// Unpacks `archive` under `dir`; with `rename`, the first path component
/// of every entry becomes that name. Refuses `..` and absolute paths.
fn unpack_into(archive: impl Read, dir: &Path, rename: Option<&str>) -> std::io::Result<()> {
    let mut a = tar::Archive::new(archive);
    a.set_preserve_permissions(true);
    a.set_preserve_mtime(true);
    a.set_overwrite(true);
    for e in a.entries()? {
        let mut e = e?;
        let path = e.path()?.into_owned();
        let mut rel = PathBuf::new();
        for (i, comp) in path.components().enumerate() {
            match comp {
                std::path::Component::Normal(n) => match (i, rename) {
                    (0, Some(r)) => rel.push(r),
                    _ => rel.push(n),
                },
                std::path::Component::CurDir => {
                    if let (0, Some(r)) = (i, rename) {
                        rel.push(r);
                    }
                }
                _ => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("refusing archive path {}", path.display()),
                    ));
                }
            }
        }
        let full = dir.join(&rel);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        e.unpack(&full)?;
    }
    Ok(())
}

/// `bay cp SRC DEST`: one side is `CONTAINER:PATH`; `-` streams a tar.
pub fn cp(
    env: &Env,
    src: &str,
    dest: &str,
    follow: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let rt = open_runtime(env)?;
    match (CpPath::parse(src), CpPath::parse(dest)) {
        (CpPath::Container(name, path), CpPath::Local(local)) => {
            let id = resolve(&rt, &name)?;
            let mut c = rt.load(&id)?;
            let (mut r, w) = pipe()?;
            let entry = base_name(&path);
            let cpath = if path.is_empty() {
                "/".to_owned()
            } else {
                path.clone()
            };
            let child = c.spawn_in_rootfs(RootfsView::ReadOnly, move || {
                let p = Path::new(&cpath);
                let meta = if follow {
                    std::fs::metadata(p)
                } else {
                    std::fs::symlink_metadata(p)
                };
                let Ok(meta) = meta else { return CP_NOT_FOUND };
                let mut b = tar::Builder::new(std::io::BufWriter::new(w));
                b.follow_symlinks(follow);
                let ok = if meta.is_dir() {
                    b.append_dir_all(&entry, p)
                } else {
                    b.append_path_with_name(p, &entry)
                };
                i32::from(ok.and_then(|()| b.finish()).is_err())
            })?;
            let result = if local == "-" {
                std::io::copy(&mut r, out).map(drop).map_err(out_err)
            } else {
                let dst = Path::new(&local);
                let io = |source| CommandError::Io {
                    op: "copy to",
                    what: local.clone(),
                    source,
                };
                if dst.is_dir() {
                    unpack_into(&mut r, dst, None).map_err(io)
                } else {
                    let parent = dst
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."));
                    unpack_into(&mut r, parent, Some(&base_name(&local))).map_err(io)
                }
            };
            drop(r);
            match child.wait()? {
                0 => result,
                CP_NOT_FOUND => Err(CommandError::CpNotFound {
                    path,
                    container: name,
                }),
                _ => result.and(Err(CommandError::CopyFailed {
                    what: format!("{src} to {dest}"),
                })),
            }
        }
        (CpPath::Local(local), CpPath::Container(name, path)) => {
            let id = resolve(&rt, &name)?;
            let mut c = rt.load(&id)?;
            let (r, mut w) = pipe()?;
            let stream = local == "-";
            let cpath = path.clone();
            let child = c.spawn_in_rootfs(RootfsView::Live, move || {
                let p = Path::new(&cpath);
                let (dir, rename) = if p.is_dir() {
                    (p.to_path_buf(), None)
                } else if stream {
                    return CP_NOT_DIR;
                } else {
                    match p.parent() {
                        Some(d) if d.is_dir() => (d.to_path_buf(), Some(base_name(&cpath))),
                        _ => return CP_NOT_FOUND,
                    }
                };
                i32::from(unpack_into(r, &dir, rename.as_deref()).is_err())
            })?;
            let sent = if stream {
                std::io::copy(&mut std::io::stdin().lock(), &mut w).map(drop)
            } else {
                let src_path = Path::new(&local);
                let mut b = tar::Builder::new(&mut w);
                b.follow_symlinks(follow);
                let name = base_name(&local);
                let r = match std::fs::symlink_metadata(src_path) {
                    Ok(m) if m.is_dir() => b.append_dir_all(&name, src_path),
                    Ok(_) => b.append_path_with_name(src_path, &name),
                    Err(e) => Err(e),
                };
                r.and_then(|()| b.finish())
            };
            drop(w);
            let code = child.wait()?;
            sent.map_err(|source| CommandError::Io {
                op: "copy",
                what: local.clone(),
                source,
            })?;
            match code {
                0 => Ok(()),
                CP_NOT_FOUND => Err(CommandError::CpNotFound {
                    path,
                    container: name,
                }),
                CP_NOT_DIR => Err(CommandError::CopyFailed {
                    what: format!("a tar stream to {path}: not a directory"),
                }),
                _ => Err(CommandError::CopyFailed {
                    what: format!("{src} to {dest}"),
                }),
            }
        }
        _ => Err(CommandError::CpUsage),
    }
}

/// `bay exec` flags.
#[derive(Debug, Clone, Default)]
pub struct ExecFlags {
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
    /// `-d`.
    pub detach: bool,
    /// What to run, as whom, where.
    pub opts: bay_runtime::ExecOptions,
}

/// `bay exec`: runs a command in a running container; its exit code
/// (0 at once with `-d`). `on_start` gets the process's pid and, under
/// `-t`, the pty master.
pub fn exec(
    env: &Env,
    query: &str,
    flags: ExecFlags,
    on_start: impl FnOnce(i32, Option<std::sync::Arc<std::os::fd::OwnedFd>>),
) -> Result<i32, CommandError> {
    let rt = open_runtime(env)?;
    let id = resolve(&rt, query)?;
    let mut c = rt.load(&id)?;
    match c.status() {
        ContainerStatus::Running => {}
        ContainerStatus::Paused => return Err(CommandError::ExecPaused { id }),
        _ => return Err(CommandError::NotRunning { id }),
    }
    let (stdio, term) = if flags.detach {
        (
            bay_runtime::StdioConfig {
                stdin: bay_runtime::Stdio::Null,
                stdout: bay_runtime::Stdio::Null,
                stderr: bay_runtime::Stdio::Null,
            },
            None,
        )
    } else {
        super::foreground_stdio(flags.interactive, flags.tty, None)?
    };
    let mut opts = flags.opts;
    opts.tty = term.is_some();
    let p = c.exec(opts, stdio)?;
    if flags.detach {
        return Ok(0);
    }
    on_start(p.pid(), term.as_ref().and_then(|t| t.master.clone()));
    let status = p.wait()?;
    if let Some(t) = term {
        t.finish();
    }
    Ok(status.code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_arguments_split_like_docker() {
        assert_eq!(
            CpPath::parse("web:/etc/hosts"),
            CpPath::Container("web".into(), "/etc/hosts".into())
        );
        assert_eq!(CpPath::parse("./a:b"), CpPath::Local("./a:b".into()));
        assert_eq!(CpPath::parse("/x:y"), CpPath::Local("/x:y".into()));
        assert_eq!(CpPath::parse("-"), CpPath::Local("-".into()));
        assert_eq!(CpPath::parse(":x"), CpPath::Local(":x".into()));
    }

    #[test]
    fn signals_parse_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), nix::libc::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), nix::libc::SIGTERM);
        assert_eq!(parse_signal("1").unwrap(), nix::libc::SIGHUP);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn sizes_and_commands_print_like_docker() {
        assert_eq!(binary_size(512), "512B");
        assert_eq!(binary_size(1536), "1.5KiB");
        assert_eq!(binary_size(3 << 20), "3MiB");
        assert_eq!(
            quote_command(
                &[
                    "sh".into(),
                    "-c".into(),
                    "echo hello world; sleep 100".into()
                ],
                false
            ),
            "\"sh -c echo hello wo…\""
        );
        assert_eq!(quote_command(&["top".into()], false), "\"top\"");
    }
}
