//! `bay trust …`: docker's content-trust commands. Flags only; the work is
//! in `bay_client::commands::trust`.

use std::path::PathBuf;
use std::process::ExitCode;

use bay_client::commands::Env;
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

/// Runs one `bay trust` command.
pub fn run(env: Env, cmd: TrustCmd) -> anyhow::Result<ExitCode> {
    let _ = env;
    let what = match cmd {
        TrustCmd::Inspect(_) => "inspect",
        TrustCmd::Sign(_) => "sign",
        TrustCmd::Revoke(_) => "revoke",
        TrustCmd::Key { .. } => "key",
        TrustCmd::Signer { .. } => "signer",
    };
    anyhow::bail!("bay trust {what} is being built; not available in this build yet")
}
