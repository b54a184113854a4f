//! `bay trust …`: docker's content-trust commands. Flags only; the work is
//! in `bay_client::commands::trust`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bay_client::commands::{self, Env, trust};
use bay_client::progress::ProgressMode;
use bay_client::trust::NotaryTrust;
use clap::{Args, Subcommand};

/// `bay trust` subcommands (docker's `docker trust`).
#[derive(Subcommand)]
pub enum TrustCmd {
    /// Return low-level information about keys and signatures
    Inspect(InspectArgs),
    /// Sign an image (already pushed: signs the tag's current manifest)
    Sign(SignArgs),
    /// Remove trust for an image
    Revoke(RevokeArgs),
    /// Manage keys for signing Docker images
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Manage entities who can sign Docker images
    Signer {
        #[command(subcommand)]
        cmd: SignerCmd,
    },
}

/// `bay trust key …`.
#[derive(Subcommand)]
pub enum KeyCmd {
    /// Generate and load a signing key-pair
    Generate(KeyGenerateArgs),
    /// Load a private key file for signing
    Load(KeyLoadArgs),
}

/// `bay trust signer …`.
#[derive(Subcommand)]
pub enum SignerCmd {
    /// Add a signer
    Add(SignerAddArgs),
    /// Remove a signer
    Remove(SignerRemoveArgs),
}

/// `bay trust inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    /// Images (all signed tags without a tag)
    #[arg(required = true, value_name = "IMAGE[:TAG]")]
    pub images: Vec<String>,
}

/// `bay trust sign`.
#[derive(Args)]
pub struct SignArgs {
    /// Sign a locally tagged image (pushes it, signed, like `DOCKER_CONTENT_TRUST=1 bay push`)
    #[arg(long)]
    pub local: bool,
    /// The pushed image to sign
    #[arg(value_name = "IMAGE:TAG")]
    pub image: String,
}

/// `bay trust revoke`.
#[derive(Args)]
pub struct RevokeArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub yes: bool,
    /// The tag to revoke (all signed tags without a tag)
    #[arg(value_name = "IMAGE[:TAG]")]
    pub image: String,
}

/// `bay trust key generate`.
#[derive(Args)]
pub struct KeyGenerateArgs {
    /// Directory to generate key in, defaults to current directory
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Name of the signer
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// `bay trust key load`.
#[derive(Args)]
pub struct KeyLoadArgs {
    /// Name for the loaded key
    #[arg(long, default_value = "signer")]
    pub name: String,
    /// An encrypted private key PEM (docker/notary format, mode 0600)
    #[arg(value_name = "KEYFILE")]
    pub keyfile: PathBuf,
}

/// `bay trust signer add`.
#[derive(Args)]
pub struct SignerAddArgs {
    /// Path to the signer's public key file (repeatable)
    #[arg(long = "key", required = true, value_name = "FILE")]
    pub keys: Vec<PathBuf>,
    /// The signer's name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Repositories to add the signer to
    #[arg(required = true, value_name = "REPOSITORY")]
    pub repos: Vec<String>,
}

/// `bay trust signer remove`.
#[derive(Args)]
pub struct SignerRemoveArgs {
    /// Do not prompt for confirmation before removing the most recent signer
    #[arg(short, long)]
    pub force: bool,
    /// The signer's name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Repositories to remove the signer from
    #[arg(required = true, value_name = "REPOSITORY")]
    pub repos: Vec<String>,
}

/// Asks `question [y/N] ` on stdout and reads the answer from stdin
/// (end of input is "no"), like docker's `PromptForConfirmation`.
fn confirm(question: &str) -> bool {
    use std::io::{BufRead as _, Write as _};
    let mut out = std::io::stdout();
    let _ = write!(out, "{question} [y/N] ");
    let _ = out.flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Runs one `bay trust` command.
pub fn run(mut env: Env, cmd: TrustCmd) -> anyhow::Result<ExitCode> {
    let new_trust = || {
        NotaryTrust::new(
            commands::bay_home().join("trust"),
            std::sync::Arc::new(crate::CliPassphrase),
        )
    };
    if let TrustCmd::Sign(a) = &cmd
        && a.local
    {
        // docker's `trust sign --local`: a signed push of the local image.
        env.trust = std::sync::Arc::new(new_trust());
        let mode = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            ProgressMode::Tty
        } else {
            ProgressMode::Plain
        };
        crate::runtime()?.block_on(commands::push(
            &env,
            &a.image,
            mode,
            Box::new(std::io::stdout()),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let trust = new_trust();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let mut ask = confirm;
    let result = match cmd {
        TrustCmd::Inspect(a) => crate::runtime()?.block_on(trust::inspect(
            &env, &trust, &a.images, a.pretty, &mut out, &mut err,
        )),
        TrustCmd::Sign(a) => {
            crate::runtime()?.block_on(trust::sign(&env, &trust, &a.image, &mut out))
        }
        TrustCmd::Revoke(a) => crate::runtime()?.block_on(trust::revoke(
            &env, &trust, &a.image, a.yes, &mut ask, &mut out,
        )),
        TrustCmd::Key {
            cmd: KeyCmd::Generate(a),
        } => {
            let dir = match a.dir {
                Some(d) => d,
                None => std::env::current_dir().context("cannot read the current directory")?,
            };
            trust::key_generate(&trust, &a.name, &dir, &mut out).map(|_| ())
        }
        TrustCmd::Key {
            cmd: KeyCmd::Load(a),
        } => trust::key_load(&trust, &a.keyfile, &a.name, &mut out),
        TrustCmd::Signer {
            cmd: SignerCmd::Add(a),
        } => crate::runtime()?.block_on(trust::signer_add(
            &env, &trust, &a.name, &a.keys, &a.repos, &mut out, &mut err,
        )),
        TrustCmd::Signer {
            cmd: SignerCmd::Remove(a),
        } => crate::runtime()?.block_on(trust::signer_remove(
            &env,
            &trust,
            &trust::SignerRemove {
                name: &a.name,
                repos: &a.repos,
                force: a.force,
            },
            &mut ask,
            &mut out,
            &mut err,
        )),
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.already_reported() => Ok(ExitCode::from(1)),
        Err(e) => Err(e.into()),
    }
}
