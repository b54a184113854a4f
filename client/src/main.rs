//! The `bay` command-line client: flag parsing and exit codes only; the work
//! is in the `bay_client` library.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bay_client::archive::SaveFormat;
use bay_client::commands::{self, Env, HistoryOptions, ImagesOptions};
use bay_client::import::ImportOptions;
use bay_client::progress::ProgressMode;
use bay_signer::passphrase::{
    EnvPassphrase, PassphraseError, PassphraseRequest, PassphraseSource, Purpose,
};
use clap::{Args, Parser, Subcommand, ValueEnum};

mod cli;

/// bay: push, pull, verify and run container images.
#[derive(Parser)]
#[command(name = "bay", version, disable_help_subcommand = true)]
struct Cli {
    /// Root of bay's image and container state.
    #[arg(long, global = true, env = "BAY_DATA_ROOT", value_name = "DIR")]
    data_root: Option<PathBuf>,
    /// Registry reachable over plain HTTP (loopback hosts always are); repeatable.
    #[arg(long = "insecure-registry", global = true, value_name = "HOST:PORT")]
    insecure_registries: Vec<String>,
    /// Debug logging.
    #[arg(short = 'D', long, global = true)]
    debug: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List images
    Images(ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Return low-level information on images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Create and run a new container from an image
    Run(Box<cli::run::RunArgs>),
    /// Log in to a registry (stores a refresh token, never the password)
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Manage images
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Manage trust on Docker images
    Trust {
        #[command(subcommand)]
        cmd: cli::trust::TrustCmd,
    },
    #[command(flatten)]
    Container(cli::container::ContainerCmd),
    /// Manage containers
    #[command(name = "container")]
    ContainerGroup {
        #[command(subcommand)]
        cmd: cli::container::ContainerGroup,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        cmd: cli::volume::VolumeCmd,
    },
}

#[derive(Subcommand)]
enum ImageCmd {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    Rm(RmiArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
}

#[derive(Args)]
struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    all: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Filter output (dangling=true|false, reference=PATTERN)
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template (.ID .Repository .Tag .Digest .CreatedSince .CreatedAt .Size)
    #[arg(long)]
    format: Option<String>,
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    repository: Option<String>,
}

#[derive(Args)]
struct TagArgs {
    /// The image to tag
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    /// The new name
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

#[derive(Args)]
struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents (accepted for compatibility)
    #[arg(long)]
    no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

#[derive(Args)]
struct InspectArgs {
    /// Format output using a Go template
    #[arg(short, long)]
    format: Option<String>,
    /// Return JSON for specified type
    #[arg(long, value_parser = ["image", "container"])]
    r#type: Option<String>,
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

#[derive(Args)]
struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    image: String,
}

#[derive(Args)]
struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ArchiveFormat {
    Docker,
    Oci,
}

#[derive(Args)]
struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, default_value = "docker")]
    format: ArchiveFormat,
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

#[derive(Args)]
struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    message: Option<String>,
    /// Set platform (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    /// file or - for STDIN
    file: String,
    /// Name for the new image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

#[derive(Args)]
struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short, long)]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    /// Skip image verification
    #[arg(long)]
    disable_content_trust: bool,
    /// The image to pull
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    name: String,
}

#[derive(Args)]
struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short, long)]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Skip image signing
    #[arg(long)]
    disable_content_trust: bool,
    /// The image to push
    #[arg(value_name = "NAME[:TAG]")]
    name: String,
}

#[derive(Args)]
struct LoginArgs {
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password (insecure: it shows in the process list and shell history; use --password-stdin)
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// The registry (host[:port]); bay has no default registry
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

#[derive(Args)]
struct LogoutArgs {
    /// The registry (host[:port])
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

fn env_list(var: &str) -> Vec<String> {
    std::env::var(var)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn env_num(var: &str) -> Option<u64> {
    std::env::var(var).ok().and_then(|v| v.trim().parse().ok())
}

fn mode(quiet: bool) -> ProgressMode {
    if quiet {
        ProgressMode::Quiet
    } else if std::io::stdout().is_terminal() {
        ProgressMode::Tty
    } else {
        ProgressMode::Plain
    }
}

/// True when `DOCKER_CONTENT_TRUST` asks for content trust and the command
/// did not pass `--disable-content-trust`.
fn trust_on(disabled: bool) -> bool {
    let on = std::env::var("DOCKER_CONTENT_TRUST")
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    on && !disabled
}

/// Plugs the Notary policy into `env` when content trust is on.
fn apply_trust(env: &mut Env, disabled: bool) {
    if trust_on(disabled) {
        env.trust = std::sync::Arc::new(bay_client::trust::NotaryTrust::new(
            commands::bay_home().join("trust"),
            std::sync::Arc::new(CliPassphrase),
        ));
    }
}

/// docker's passphrase habits: the `DOCKER_CONTENT_TRUST_*_PASSPHRASE`
/// variables first, then a prompt on a terminal (asked twice for a new key).
struct CliPassphrase;

impl PassphraseSource for CliPassphrase {
    fn passphrase(
        &self,
        req: &PassphraseRequest<'_>,
    ) -> Result<zeroize::Zeroizing<String>, PassphraseError> {
        if let Ok(p) = EnvPassphrase::new().passphrase(req) {
            return Ok(p);
        }
        let unavailable = || PassphraseError::Unavailable {
            role: req.role.to_string(),
        };
        if !std::io::stdin().is_terminal() {
            return Err(unavailable());
        }
        let what = match req.key_id {
            Some(id) => format!(
                "{} key with ID {}",
                req.role,
                &id.as_str()[..7.min(id.as_str().len())]
            ),
            None => format!("{} key", req.role),
        };
        let ask = |prompt: &str| {
            rpassword::prompt_password(prompt)
                .map(zeroize::Zeroizing::new)
                .map_err(|_| PassphraseError::Cancelled)
        };
        match req.purpose {
            Purpose::Create => loop {
                let p = ask(&format!("Enter passphrase for new {what}: "))?;
                let again = ask(&format!("Repeat passphrase for new {what}: "))?;
                if p.is_empty() {
                    eprintln!("Passphrase is empty. Please retry.");
                } else if *p == *again {
                    return Ok(p);
                } else {
                    eprintln!("Passphrases do not match. Please retry.");
                }
            },
            _ => ask(&format!("Enter passphrase for {what}: ")),
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut env = Env::new(cli.data_root.unwrap_or_else(commands::default_data_root));
    env.insecure_registries = cli.insecure_registries;
    env.insecure_registries
        .extend(env_list("BAY_INSECURE_REGISTRIES"));
    if let Some(n) = env_num("BAY_MAX_CONCURRENT_TRANSFERS") {
        env.concurrency = usize::try_from(n.max(1)).unwrap_or(1);
    }
    if let Some(n) = env_num("BAY_PUSH_CHUNK_SIZE") {
        env.chunk_size = n.max(1);
    }
    env.users = std::sync::Arc::new(commands::RuntimeUsers::new(commands::runtime_root(&env)));
    env.auth = std::sync::Arc::new(bay_client::credentials::ConfigAuth::new(
        env.config_file.clone(),
        bay_client::credentials::docker_config_path(),
    ));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let cmd = match cli.cmd {
        Cmd::Image { cmd } => match cmd {
            ImageCmd::Ls(a) => Cmd::Images(a),
            ImageCmd::Rm(a) => Cmd::Rmi(a),
            ImageCmd::Inspect(a) => {
                commands::inspect(
                    &env,
                    &a.names,
                    a.format.as_deref(),
                    "image",
                    &mut out,
                    &mut err,
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            ImageCmd::History(a) => Cmd::History(a),
            ImageCmd::Prune(a) => return prune(&env, &a, &mut out).map(|()| ExitCode::SUCCESS),
            ImageCmd::Tag(a) => Cmd::Tag(a),
            ImageCmd::Save(a) => Cmd::Save(a),
            ImageCmd::Load(a) => Cmd::Load(a),
            ImageCmd::Import(a) => Cmd::Import(a),
            ImageCmd::Pull(a) => Cmd::Pull(a),
            ImageCmd::Push(a) => Cmd::Push(a),
        },
        other => other,
    };
    match cmd {
        Cmd::Images(a) => commands::images(
            &env,
            &ImagesOptions {
                all: a.all,
                digests: a.digests,
                quiet: a.quiet,
                no_trunc: a.no_trunc,
                repository: a.repository,
                filters: a.filter,
                format: a.format,
            },
            &mut out,
        )?,
        Cmd::Tag(a) => commands::tag(&env, &a.source, &a.target)?,
        Cmd::Rmi(a) => commands::rmi(&env, &a.images, a.force, &mut out, &mut err)?,
        Cmd::Inspect(a) => commands::inspect(
            &env,
            &a.names,
            a.format.as_deref(),
            a.r#type.as_deref().unwrap_or("object"),
            &mut out,
            &mut err,
        )?,
        Cmd::History(a) => commands::history(
            &env,
            &a.image,
            &HistoryOptions {
                no_trunc: a.no_trunc,
                quiet: a.quiet,
                human: a.human,
            },
            &mut out,
        )?,
        Cmd::Save(a) => {
            let format = match a.format {
                ArchiveFormat::Docker => SaveFormat::Docker,
                ArchiveFormat::Oci => SaveFormat::Oci,
            };
            drop(out);
            commands::save(&env, &a.images, a.output.as_deref(), format)?;
        }
        Cmd::Load(a) => {
            let mut sink = std::io::sink();
            let w: &mut dyn Write = if a.quiet { &mut sink } else { &mut out };
            commands::load(&env, a.input.as_deref(), w)?;
        }
        Cmd::Import(a) => {
            let opts = ImportOptions {
                changes: a.change,
                message: a.message,
                platform: a
                    .platform
                    .as_deref()
                    .map(bay_client::image::Platform::parse)
                    .transpose()?,
            };
            commands::import(&env, &a.file, a.reference.as_deref(), &opts, &mut out)?;
        }
        Cmd::Pull(a) => {
            apply_trust(&mut env, a.disable_content_trust);
            drop(out);
            let rt = runtime()?;
            let out = Box::new(std::io::stdout());
            if a.all_tags {
                rt.block_on(commands::pull_all_tags(
                    &env,
                    &a.name,
                    a.platform.as_deref(),
                    mode(a.quiet),
                    out,
                ))?;
            } else {
                rt.block_on(commands::pull(
                    &env,
                    &a.name,
                    a.platform.as_deref(),
                    mode(a.quiet),
                    out,
                ))?;
            }
        }
        Cmd::Push(a) => {
            apply_trust(&mut env, a.disable_content_trust);
            drop(out);
            let rt = runtime()?;
            let out = Box::new(std::io::stdout());
            if a.all_tags {
                rt.block_on(commands::push_all_tags(&env, &a.name, mode(a.quiet), out))?;
            } else {
                rt.block_on(commands::push(&env, &a.name, mode(a.quiet), out))?;
            }
        }
        Cmd::Run(a) => {
            drop(out);
            return Ok(cli::run::run_container(env, *a));
        }
        Cmd::Login(a) => {
            drop(out);
            login(&env, a)?;
        }
        Cmd::Logout(a) => {
            let server = a.server.ok_or_else(no_server)?;
            commands::logout(&env, &server, &mut out)?;
        }
        Cmd::Container(c) => {
            drop(out);
            return Ok(cli::container::run_verb(env, c));
        }
        Cmd::ContainerGroup { cmd } => {
            drop(out);
            return Ok(cli::container::run_group(env, cmd));
        }
        Cmd::Volume { cmd } => {
            drop(out);
            return Ok(cli::volume::run(env, cmd));
        }
        Cmd::Trust { cmd } => {
            drop(out);
            return cli::trust::run(env, cmd);
        }
        Cmd::Image { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints `Error: …` with the deeper causes our messages do not already name.
fn report(e: &anyhow::Error) {
    // Our messages already embed their direct causes; add only
    // deeper ones (e.g. "connection refused" under reqwest's text).
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    eprintln!("Error: {msg}");
}

fn no_server() -> anyhow::Error {
    anyhow::anyhow!("bay has no default registry: name the server, e.g. `bay login 127.0.0.1:5000`")
}

/// Collects the username and password the way docker does (flags, stdin, or
/// a prompt on a terminal), then logs in.
fn login(env: &Env, a: LoginArgs) -> anyhow::Result<()> {
    let server = a.server.ok_or_else(no_server)?;
    let mut err = std::io::stderr();
    let stdin = std::io::stdin();
    if a.password_stdin && a.password.is_some() {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    if a.password_stdin && a.username.is_none() {
        anyhow::bail!("Must provide --username with --password-stdin");
    }
    let username = match a.username {
        Some(u) => u,
        None => {
            if !stdin.is_terminal() {
                anyhow::bail!(
                    "cannot prompt for a username: standard input is not a terminal (use --username and --password-stdin)"
                );
            }
            let stored = commands::stored_username(env, &server);
            match &stored {
                Some(s) => eprint!("Username ({s}): "),
                None => eprint!("Username: "),
            }
            err.flush()?;
            let mut line = String::new();
            stdin
                .lock()
                .read_line(&mut line)
                .context("cannot read the username")?;
            match (line.trim(), stored) {
                ("", Some(s)) => s,
                (u, _) => u.to_owned(),
            }
        }
    };
    let password = if a.password_stdin {
        commands::read_password_line(&mut stdin.lock())?
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        zeroize::Zeroizing::new(p)
    } else {
        if !stdin.is_terminal() {
            anyhow::bail!(
                "cannot prompt for a password: standard input is not a terminal (use --password-stdin)"
            );
        }
        zeroize::Zeroizing::new(
            rpassword::prompt_password("Password: ").context("cannot read the password")?,
        )
    };
    let rt = runtime()?;
    let mut out = std::io::stdout();
    rt.block_on(commands::login(
        env, &server, &username, &password, &mut out, &mut err,
    ))?;
    Ok(())
}

fn prune(env: &Env, a: &PruneArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if !a.force {
        let what = if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        write!(
            out,
            "WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] "
        )?;
        out.flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    Ok(commands::prune(env, a.all, out)?)
}

fn main() -> ExitCode {
    if let Some(code) = cli::container::monitor_entry() {
        return code;
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let filter = if cli.debug {
        tracing_subscriber::EnvFilter::new("debug")
    } else {
        tracing_subscriber::EnvFilter::try_from_env("BAY_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let reported = e
                .downcast_ref::<commands::CommandError>()
                .is_some_and(commands::CommandError::already_reported);
            if !reported {
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                {
                    return ExitCode::SUCCESS;
                }
                report(&e);
            }
            ExitCode::from(1)
        }
    }
}
