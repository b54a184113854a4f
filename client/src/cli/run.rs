//! `bay run`: the flags, their translation into `RunOptions` and
//! `RunSettings`, the foreground run (a pty under `-t`, stdin under `-i`)
//! with docker's exit codes and signal proxying, and `-d`, which hands the
//! container to its monitor and prints its id.

use std::process::ExitCode;

use bay_client::commands::{self, Env};
use clap::Args;

use super::network::NetworkArgs;
use super::resources::ResourceArgs;

/// `bay run` (docker's `run` flags).
#[derive(Args)]
// `-h` is docker's `--hostname` here, so help is `--help` only.
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Set environment variables (KEY=VALUE, or KEY to pass bay's own)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image ("" resets it)
    #[arg(long)]
    entrypoint: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    read_only: bool,
    /// Add Linux capabilities
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,
    /// Security options (seccomp=unconfined|PROFILE.json, no-new-privileges, ...)
    #[arg(long)]
    security_opt: Vec<String>,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Run container in background and print container ID
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Restart policy to apply when a container exits (no, on-failure[:max-retries], always, unless-stopped)
    #[arg(long, default_value = "no")]
    restart: String,
    /// Logging driver for the container (json-file only)
    #[arg(long, default_value = "json-file")]
    log_driver: String,
    /// Log driver options (max-size=SIZE, max-file=N)
    #[arg(long)]
    log_opt: Vec<String>,
    /// Skip image verification
    #[arg(long)]
    disable_content_trust: bool,
    #[command(flatten)]
    net: NetworkArgs,
    #[command(flatten)]
    res: ResourceArgs,
    /// IMAGE [COMMAND [ARG...]]: everything after IMAGE belongs to the command
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "IMAGE [COMMAND] [ARG...]")]
    args: Vec<String>,
}

/// Turns `bay run` flags into the runtime's options.
fn run_options(a: &RunArgs, cmd: Vec<String>) -> anyhow::Result<bay_runtime::RunOptions> {
    use bay_runtime::spec::SecurityOpts;
    let mut opts = bay_runtime::RunOptions {
        cmd,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        read_only: a.read_only,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        security: SecurityOpts::parse(&a.security_opt)?,
        ..Default::default()
    };
    // docker: `-e KEY` passes bay's own KEY if set, else nothing.
    for e in &a.env {
        if e.contains('=') {
            opts.env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            opts.env.push(format!("{e}={v}"));
        }
    }
    opts.entrypoint = a.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            Vec::new()
        } else {
            vec![e.clone()]
        }
    });
    a.net.apply(&mut opts)?;
    a.res.apply(&mut opts)?;
    Ok(opts)
}

/// `bay run`: exits with the container's status, or docker's 125/126/127
/// (1 when content trust refuses the image).
pub fn run_container(mut env: Env, a: RunArgs) -> ExitCode {
    let code = |c: i32| ExitCode::from(u8::try_from(c).unwrap_or(125));
    let mut args = a.args.clone();
    if args.is_empty() {
        crate::report(&anyhow::anyhow!("\"bay run\" requires at least 1 argument"));
        return code(125);
    }
    let image = args.remove(0);
    let opts = match run_options(&a, args) {
        Ok(o) => o,
        Err(e) => {
            crate::report(&e);
            return code(125);
        }
    };
    let settings = match run_settings(&a, &image) {
        Ok(s) => s,
        Err(e) => {
            crate::report(&e);
            return code(125);
        }
    };
    let verify = crate::trust_on(a.disable_content_trust);
    crate::apply_trust(&mut env, a.disable_content_trust);
    let id = match crate::runtime().map_err(|e| (e, 125)).and_then(|rt| {
        rt.block_on(commands::resolve_image(
            &env,
            &image,
            verify,
            Box::new(std::io::stderr()),
        ))
        .map_err(|e| {
            let c = e.run_exit_code();
            (anyhow::Error::from(e), c)
        })
    }) {
        Ok(id) => id,
        Err((e, c)) => {
            crate::report(&e);
            return code(c);
        }
    };
    if settings.detach {
        return match commands::run_detached(&env, &id, &opts, &settings) {
            Ok(cid) => {
                println!("{cid}");
                code(0)
            }
            Err(e) => {
                let c = e.run_exit_code();
                crate::report(&anyhow::Error::from(e));
                code(c)
            }
        };
    }
    match commands::run_image(&env, &id, &opts, &settings, proxy_signals) {
        Ok(status) => {
            if status.oom_killed {
                tracing::warn!("the container was killed for running out of memory");
            }
            code(status.code)
        }
        Err(e) => {
            let c = e.run_exit_code();
            crate::report(&anyhow::Error::from(e));
            code(c)
        }
    }
}

/// `bay create`: `run`'s flags, the container made but not started; prints its id.
pub fn create_only(mut env: Env, a: RunArgs) -> ExitCode {
    let fail = |e: anyhow::Error, c: i32| {
        crate::report(&e);
        ExitCode::from(u8::try_from(c).unwrap_or(125))
    };
    let mut args = a.args.clone();
    if args.is_empty() {
        return fail(
            anyhow::anyhow!("\"bay create\" requires at least 1 argument"),
            125,
        );
    }
    let image = args.remove(0);
    let (opts, settings) =
        match run_options(&a, args).and_then(|o| Ok((o, run_settings(&a, &image)?))) {
            Ok(x) => x,
            Err(e) => return fail(e, 125),
        };
    let verify = crate::trust_on(a.disable_content_trust);
    crate::apply_trust(&mut env, a.disable_content_trust);
    let id = match crate::runtime().map_err(|e| (e, 125)).and_then(|rt| {
        rt.block_on(commands::resolve_image(
            &env,
            &image,
            verify,
            Box::new(std::io::stderr()),
        ))
        .map_err(|e| {
            let c = e.run_exit_code();
            (anyhow::Error::from(e), c)
        })
    }) {
        Ok(id) => id,
        Err((e, c)) => return fail(e, c),
    };
    match commands::create_container(&env, &id, &opts, &settings) {
        Ok((_, cid)) => {
            println!("{cid}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let c = e.run_exit_code();
            fail(anyhow::Error::from(e), c)
        }
    }
}

/// `--name`, `-d`, `-i`, `-t`, `--rm`, `--restart`, `--log-opt`.
fn run_settings(a: &RunArgs, image: &str) -> anyhow::Result<commands::RunSettings> {
    if a.log_driver != "json-file" {
        anyhow::bail!(
            "logging driver {:?} is not supported: bay writes docker's json-file logs",
            a.log_driver
        );
    }
    let restart: bay_runtime::monitor::RestartPolicy = a.restart.parse()?;
    if a.rm && restart != bay_runtime::monitor::RestartPolicy::No {
        anyhow::bail!("Conflicting options: --restart and --rm");
    }
    Ok(commands::RunSettings {
        name: a.name.clone(),
        image_ref: image.to_owned(),
        remove: a.rm,
        detach: a.detach,
        interactive: a.interactive,
        tty: a.tty,
        restart,
        log: bay_runtime::logs::LogConfig::parse(&a.log_opt)?,
    })
}

/// docker's `--sig-proxy`: from now on the signals a user sends `bay run`
/// (Ctrl-C, `kill`) go to the container's init instead of killing bay, which
/// then still waits for the container and removes it with `--rm`. The
/// runtime resets the signal mask in the container, so blocking here does
/// not leak into it.
pub(crate) fn proxy_signals(pid: i32, pty: Option<std::sync::Arc<std::os::fd::OwnedFd>>) {
    use nix::sys::signal::{SigSet, Signal};
    use std::os::fd::AsFd;
    let mut set = SigSet::empty();
    if pty.is_some() {
        set.add(Signal::SIGWINCH);
    }
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    if let Err(error) = set.thread_block() {
        tracing::warn!(%error, "cannot block signals; they will not reach the container");
        return;
    }
    let target = nix::unistd::Pid::from_raw(pid);
    // Detached: it lives until bay exits, right after the container does.
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            if sig == Signal::SIGWINCH {
                // -t: the user's window changed; so does the container's.
                if let (Some(m), Some(ws)) =
                    (&pty, bay_runtime::tty::winsize(std::io::stdin().as_fd()))
                {
                    let _ = bay_runtime::tty::set_winsize(m.as_fd(), &ws);
                }
                continue;
            }
            if let Err(error) = nix::sys::signal::kill(target, sig) {
                tracing::debug!(%error, ?sig, "container gone; signal not forwarded");
            }
        }
    });
}
