//! The container verbs (`ps`, `stop`, `start`, `logs`, `exec`, …), flattened
//! into `bay`'s top level like docker's, and the `bay container <verb>` group.
//! Each handler parses its flags into `bay_client::commands::container`
//! options and maps failures to docker's exit codes (1 for a failed verb,
//! 125 for bay's own errors where docker uses it, the container's status
//! for `start -a`, `wait` and `exec`).

use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;

use bay_client::commands::Env;
use clap::{Args, Subcommand};

/// The container verbs at bay's top level.
#[derive(Subcommand)]
pub enum ContainerCmd {
    /// Create a new container (start it with `bay start`)
    Create(Box<super::run::RunArgs>),
    /// List containers
    Ps(PsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
}

/// `bay container <verb>`.
#[derive(Subcommand)]
pub enum ContainerGroup {
    /// List containers
    #[command(visible_alias = "list")]
    Ls(PsArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Create and run a new container from an image
    Run(Box<super::run::RunArgs>),
    #[command(flatten)]
    Verb(ContainerCmd),
}

/// `ps`.
#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the latest created container
    #[arg(short, long)]
    pub latest: bool,
    /// Format output using a Go template (.ID .Image .Command .CreatedAt .RunningFor .Status .State .Names .Ports)
    #[arg(long)]
    pub format: Option<String>,
}

/// `stop` and `restart`.
#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<u64>,
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `start`.
#[derive(Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN (accepted; the monitor owns stdin)
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `kill`.
#[derive(Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `rm`.
#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `exec`.
#[derive(Args)]
pub struct ExecArgs {
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER COMMAND [ARG...]")]
    pub args: Vec<String>,
}

/// `top`.
#[derive(Args)]
pub struct TopArgs {
    pub container: String,
    /// ps options (accepted: the columns are docker's default `-ef`)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `bay port`.
#[derive(Args)]
pub struct PortArgs {
    /// The container
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub private_port: Option<String>,
}

/// Verbs taking one or more containers.
#[derive(Args)]
pub struct ContainersArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Verbs taking one container.
#[derive(Args)]
pub struct ContainerArg {
    pub container: String,
}

/// `rename`.
#[derive(Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

/// `cp`.
#[derive(Args)]
pub struct CpArgs {
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Archive mode (accepted: ownership is always kept)
    #[arg(short, long)]
    pub archive: bool,
    /// CONTAINER:SRC_PATH, DEST_PATH|- or SRC_PATH|-, CONTAINER:DEST_PATH
    pub src: String,
    pub dest: String,
}

/// `export`.
#[derive(Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    pub container: String,
}

/// `commit`.
#[derive(Args)]
pub struct CommitArgs {
    /// Author
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit (accepted; the upper layer is read as is)
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// `stats`.
#[derive(Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a Go template
    #[arg(long)]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `logs`.
#[derive(Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long)]
    pub until: Option<String>,
    /// Show extra details (accepted)
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

/// `container inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes (accepted)
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(125))
}

/// Reports a failure the way `main` does: exit 1, messages already printed
/// for partial failures.
fn failed(e: bay_client::commands::CommandError) -> ExitCode {
    if !e.already_reported() {
        crate::report(&anyhow::Error::from(e));
    }
    ExitCode::from(1)
}

fn done(r: Result<(), bay_client::commands::CommandError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(e),
    }
}

/// Runs a top-level container verb.
pub fn run_verb(env: Env, cmd: ContainerCmd) -> ExitCode {
    use bay_client::commands::container as c;
    use bay_client::commands::logs;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    match cmd {
        ContainerCmd::Create(a) => {
            drop(out);
            super::run::create_only(env, *a)
        }
        ContainerCmd::Ps(a) => done(c::ps(
            &env,
            &c::PsOptions {
                all: a.all,
                quiet: a.quiet,
                no_trunc: a.no_trunc,
                latest: a.latest,
                format: a.format,
            },
            &mut out,
        )),
        ContainerCmd::Stop(a) => done(c::stop(
            &env,
            &a.containers,
            a.time,
            a.signal.as_deref(),
            &mut out,
            &mut err,
        )),
        ContainerCmd::Restart(a) => done(c::restart(
            &env,
            &a.containers,
            a.time,
            a.signal.as_deref(),
            &mut out,
            &mut err,
        )),
        ContainerCmd::Start(a) => {
            if !a.attach {
                return done(c::start(&env, &a.containers, &mut out, &mut err));
            }
            if a.containers.len() != 1 {
                crate::report(&anyhow::anyhow!(
                    "you cannot start and attach multiple containers at once"
                ));
                return exit(1);
            }
            match c::start_attached(&env, &a.containers[0], &mut out, &mut err) {
                Ok(code) => exit(code),
                Err(e) => {
                    let code = match e.run_exit_code() {
                        125 => 1,
                        c => c,
                    };
                    crate::report(&anyhow::Error::from(e));
                    exit(code)
                }
            }
        }
        ContainerCmd::Kill(a) => done(c::kill(&env, &a.containers, &a.signal, &mut out, &mut err)),
        ContainerCmd::Rm(a) => done(c::rm(
            &env,
            &a.containers,
            a.force,
            a.volumes,
            &mut out,
            &mut err,
        )),
        ContainerCmd::Pause(a) => done(c::pause(&env, &a.containers, true, &mut out, &mut err)),
        ContainerCmd::Unpause(a) => done(c::pause(&env, &a.containers, false, &mut out, &mut err)),
        ContainerCmd::Rename(a) => done(c::rename(&env, &a.container, &a.new_name)),
        ContainerCmd::Wait(a) => done(c::wait(&env, &a.containers, &mut out, &mut err)),
        ContainerCmd::Top(a) => done(c::top(&env, &a.container, &mut out)),
        ContainerCmd::Port(a) => done(c::port(
            &env,
            &a.container,
            a.private_port.as_deref(),
            &mut out,
        )),
        ContainerCmd::Diff(a) => done(c::diff(&env, &a.container, &mut out)),
        ContainerCmd::Stats(a) => {
            let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
            loop {
                if !a.no_stream && tty {
                    // docker redraws the table in place.
                    let _ = std::io::Write::write_all(&mut out, b"\x1b[2J\x1b[H");
                }
                let r = c::stats(
                    &env,
                    &a.containers,
                    a.all,
                    a.no_trunc,
                    a.format.as_deref(),
                    &mut out,
                );
                let _ = std::io::Write::flush(&mut out);
                if a.no_stream || r.is_err() {
                    return done(r);
                }
                // c::stats samples for 200 ms; docker refreshes every second.
                std::thread::sleep(std::time::Duration::from_millis(800));
            }
        }
        ContainerCmd::Commit(a) => done(
            c::commit(
                &env,
                &a.container,
                a.reference.as_deref(),
                &c::CommitOptions {
                    message: a.message,
                    author: a.author,
                    changes: a.change,
                },
                &mut out,
            )
            .map(drop),
        ),
        ContainerCmd::Export(a) => match a.output {
            Some(path) => {
                let file = std::fs::File::create(&path);
                match file {
                    Ok(f) => {
                        let mut w = std::io::BufWriter::new(f);
                        done(c::export(&env, &a.container, &mut w).and_then(|()| {
                            std::io::Write::flush(&mut w).map_err(|source| {
                                bay_client::commands::CommandError::Io {
                                    op: "write",
                                    what: path.display().to_string(),
                                    source,
                                }
                            })
                        }))
                    }
                    Err(e) => {
                        crate::report(&anyhow::anyhow!("cannot create {}: {e}", path.display()));
                        exit(1)
                    }
                }
            }
            None => {
                if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    crate::report(&anyhow::anyhow!(
                        "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                    ));
                    return exit(1);
                }
                done(c::export(&env, &a.container, &mut out))
            }
        },
        ContainerCmd::Cp(a) => done(c::cp(&env, &a.src, &a.dest, a.follow_link, &mut out)),
        ContainerCmd::Logs(a) => {
            let now = chrono::Utc::now();
            let parsed = (|| {
                Ok::<_, bay_client::commands::CommandError>(logs::LogsOptions {
                    follow: a.follow,
                    tail: match a.tail.as_str() {
                        "all" | "-1" => None,
                        n => Some(n.parse().map_err(|_| {
                            bay_client::commands::CommandError::BadTime {
                                value: n.to_owned(),
                            }
                        })?),
                    },
                    timestamps: a.timestamps,
                    since: a
                        .since
                        .as_deref()
                        .map(|s| logs::parse_time(s, now))
                        .transpose()?,
                    until: a
                        .until
                        .as_deref()
                        .map(|s| logs::parse_time(s, now))
                        .transpose()?,
                })
            })();
            match parsed {
                Ok(o) => done(logs::logs(&env, &a.container, &o, &mut out, &mut err)),
                Err(e) => failed(e),
            }
        }
        ContainerCmd::Exec(a) => {
            drop(out);
            let mut args = a.args;
            let container = args.remove(0);
            let mut envs = Vec::new();
            for e in a.env {
                if e.contains('=') {
                    envs.push(e);
                } else if let Ok(v) = std::env::var(&e) {
                    envs.push(format!("{e}={v}"));
                }
            }
            let flags = c::ExecFlags {
                interactive: a.interactive,
                tty: a.tty,
                detach: a.detach,
                opts: bay_runtime::ExecOptions {
                    args,
                    env: envs,
                    workdir: a.workdir,
                    user: a.user,
                    tty: a.tty,
                },
            };
            match c::exec(&env, &container, flags, super::run::proxy_signals) {
                Ok(code) => exit(code),
                Err(e) => {
                    let code = match e.run_exit_code() {
                        125 => 1,
                        c => c,
                    };
                    crate::report(&anyhow::Error::from(e));
                    exit(code)
                }
            }
        }
    }
}

/// Runs `bay container <verb>`.
pub fn run_group(env: Env, cmd: ContainerGroup) -> ExitCode {
    match cmd {
        ContainerGroup::Run(a) => super::run::run_container(env, *a),
        ContainerGroup::Ls(a) => run_verb(env, ContainerCmd::Ps(a)),
        ContainerGroup::Verb(v) => run_verb(env, v),
        ContainerGroup::Inspect(a) => {
            let mut out = std::io::stdout().lock();
            let mut err = std::io::stderr();
            done(bay_client::commands::container::inspect(
                &env,
                &a.containers,
                a.format.as_deref(),
                &mut out,
                &mut err,
            ))
        }
    }
}

/// The detached monitor's entry: `bay __monitor ROOT ID` runs before any
/// flag parsing, so the monitor never builds clap's command tree or a
/// tracing subscriber and stays small. Its stdout is the pipe `bay run -d`
/// reads the first start's outcome from; it is replaced by /dev/null at
/// once, so the pipe closes when the report is written. `None` when this
/// is not a monitor.
pub fn monitor_entry() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new("__monitor")) {
        return None;
    }
    let (Some(root), Some(id)) = (args.next(), args.next()) else {
        return Some(exit(125));
    };
    let Some(id) = id
        .to_str()
        .and_then(|s| bay_runtime::ContainerId::parse(s).ok())
    else {
        return Some(exit(125));
    };
    // A session of its own: no terminal's hangup or Ctrl-C reaches it.
    let _ = nix::unistd::setsid();
    let report = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(_) => return Some(exit(125)),
    };
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
    let code = bay_runtime::monitor::run(std::path::Path::new(&root), &id, report);
    Some(exit(code))
}
