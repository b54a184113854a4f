//! `bay trust …`: docker's content-trust verbs, writing docker's output.
//! The trust logic is in [`crate::trust::admin`] and
//! [`crate::trust::inspect`]; this file parses references, reaches the
//! registry (for manifests) and the trust server, and prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use bay_signer::key::PublicKey;

use super::Env;
use crate::reference::{ImageRef, ReferenceError};
use crate::registry::{RegistryClient, RegistryError};
use crate::trust::NotaryTrust;
use crate::trust::admin::{AdminError, RemoveOutcome, valid_name};
use crate::trust::inspect::TrustInfo;
use crate::trust::notary::NotaryError;

/// Failures of the `trust` verbs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustCommandError {
    /// A trust operation.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// Reaching the registry or the trust server.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Reaching the trust server.
    #[error(transparent)]
    Notary(#[from] NotaryError),
    /// A reference that does not parse.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// `sign` needs a tag.
    #[error("no tag specified for {name}")]
    NoTag {
        /// The image as named.
        name: String,
    },
    /// A digest where docker wants a tag.
    #[error("cannot use a digest reference for IMAGE:TAG")]
    DigestReference,
    /// `trust inspect --pretty` of a repository without (accessible) trust data.
    #[error("no signatures or cannot access {remote}{cause}")]
    NoTrustData {
        /// The image as named.
        remote: String,
        /// `: <why>` when it is an error rather than an absence.
        cause: String,
    },
    /// Errors already printed, one per failed name.
    #[error("{failed} of the requested operations failed")]
    Partial {
        /// How many failed.
        failed: usize,
    },
    /// `revoke` without a tag was not confirmed.
    #[error("trust revoke has been cancelled")]
    Cancelled,
    /// `revoke` failed.
    #[error("could not remove signature for {remote}: {source}")]
    Revoke {
        /// The image as named.
        remote: String,
        /// Why.
        #[source]
        source: Box<TrustCommandError>,
    },
    /// `signer add` failed for some repositories (each error was printed).
    #[error("failed to add signer to: {repos}")]
    SignerAdd {
        /// Comma list.
        repos: String,
    },
    /// `signer remove` failed for some repositories (each error was printed).
    #[error("error removing signer from: {repos}")]
    SignerRemove {
        /// Comma list.
        repos: String,
    },
    /// `key generate --dir` names a missing directory.
    #[error("public key path does not exist: \"{}\"", path.display())]
    NoKeyDir {
        /// The directory.
        path: PathBuf,
    },
    /// `key generate` would overwrite a public key file.
    #[error("public key file already exists: \"{}\"", path.display())]
    KeyFileExists {
        /// The file.
        path: PathBuf,
    },
    /// `signer add --key` names a file that is not a public key.
    #[error("could not parse public key from file: {}", path.display())]
    PublicKey {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: bay_signer::key::KeyError,
    },
    /// A file could not be read or written.
    #[error("cannot {op} {}", path.display())]
    Io {
        /// What we tried.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// `key load` of a file readable by others.
    #[error(
        "refusing to load key from {}: private key file {} must not be readable or writable by others",
        path.display(),
        path.display()
    )]
    InsecureKeyFile {
        /// The file.
        path: PathBuf,
    },
}

impl TrustCommandError {
    /// True when the messages were already printed.
    pub fn already_reported(&self) -> bool {
        matches!(self, TrustCommandError::Partial { .. })
    }
}

fn write_err(source: std::io::Error) -> TrustCommandError {
    TrustCommandError::Io {
        op: "write",
        path: PathBuf::from("output"),
        source,
    }
}

/// A reference with a registry host; the tag only when the user gave one.
fn parse(remote: &str) -> Result<(ImageRef, Option<String>), TrustCommandError> {
    let image = ImageRef::parse(remote)?;
    image.require_host()?;
    if image.digest().is_some() {
        return Err(TrustCommandError::DigestReference);
    }
    let tag = image.tag().map(ToString::to_string);
    Ok((image, tag))
}

async fn trust_client(
    env: &Env,
    trust: &NotaryTrust,
    image: &ImageRef,
) -> Result<RegistryClient, TrustCommandError> {
    let host = image.require_host()?;
    Ok(trust.connect(host, env.client_options()).await?)
}

async fn info_for(
    env: &Env,
    trust: &NotaryTrust,
    remote: &str,
) -> Result<TrustInfo, TrustCommandError> {
    let (image, tag) = parse(remote)?;
    let no_data = |cause: String| TrustCommandError::NoTrustData {
        remote: remote.to_owned(),
        cause,
    };
    let client = trust_client(env, trust, &image)
        .await
        .map_err(|e| no_data(format!(": {}", chain(&e))))?;
    match trust.inspect_repo(&client, &image).await {
        Ok(Some(repo)) => Ok(TrustInfo::from_repo(&repo, tag.as_deref())),
        Ok(None) => Err(no_data(String::new())),
        Err(e) => Err(no_data(format!(": {}", chain(&e)))),
    }
}

/// An error and its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !msg.contains(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        cur = c.source();
    }
    msg
}

/// `bay trust inspect [--pretty] IMAGE[:TAG]...`: docker's JSON array (4
/// spaces of indent), or its tables; names that fail are reported on `err`
/// (JSON) or stop the command (`--pretty`), as docker does.
pub async fn inspect(
    env: &Env,
    trust: &NotaryTrust,
    remotes: &[String],
    pretty: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), TrustCommandError> {
    if pretty {
        for (i, remote) in remotes.iter().enumerate() {
            let info = info_for(env, trust, remote).await?;
            out.write_all(info.pretty(remote).as_bytes())
                .map_err(write_err)?;
            if i + 1 < remotes.len() {
                out.write_all(b"\n\n").map_err(write_err)?;
            }
        }
        return Ok(());
    }
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for remote in remotes {
        match info_for(env, trust, remote).await {
            Ok(info) => reports.push(info.report(remote)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(&reports, &mut ser).map_err(|e| write_err(e.into()))?;
    buf.push(b'\n');
    out.write_all(&buf).map_err(write_err)?;
    if errors.is_empty() {
        return Ok(());
    }
    writeln!(err, "{}", errors.join("\n")).map_err(write_err)?;
    Err(TrustCommandError::Partial {
        failed: errors.len(),
    })
}

/// `bay trust sign IMAGE:TAG`: signs the manifest the registry serves for
/// the tag now (the image must have been pushed).
pub async fn sign(
    env: &Env,
    trust: &NotaryTrust,
    remote: &str,
    out: &mut dyn Write,
) -> Result<(), TrustCommandError> {
    let (image, tag) = parse(remote)?;
    let Some(tag) = tag else {
        return Err(TrustCommandError::NoTag {
            name: image.repository(),
        });
    };
    let host = image.require_host()?;
    let registry = RegistryClient::connect(host, env.client_options()).await?;
    let manifest = registry.get_manifest(image.repo(), &tag).await?;
    let size = manifest.bytes.len() as u64;
    tracing::info!(%image, digest = %manifest.digest, size, "signing the pushed manifest");
    writeln!(out, "Signing and pushing trust metadata for {remote}").map_err(write_err)?;
    let outcome = trust
        .sign(&registry, &image, &tag, &manifest.digest, size)
        .await?;
    if outcome.initialized {
        writeln!(out, "Finished initializing signed repository for {remote}").map_err(write_err)?;
    }
    if let Some(d) = &outcome.previous_digest {
        writeln!(
            out,
            "Existing signatures for tag {tag} digest {d} from:\n{}",
            if outcome.previous_signers.is_empty() {
                crate::trust::inspect::RELEASED_ROLE_NAME.to_owned()
            } else {
                outcome.previous_signers.join(", ")
            }
        )
        .map_err(write_err)?;
    }
    writeln!(out, "Successfully signed {}:{tag}", image.repository()).map_err(write_err)?;
    Ok(())
}

/// `bay trust revoke [-y] IMAGE[:TAG]`: without a tag, every signed tag
/// goes, after `confirm` (skipped with `yes`).
pub async fn revoke(
    env: &Env,
    trust: &NotaryTrust,
    remote: &str,
    yes: bool,
    confirm: &mut (dyn FnMut(&str) -> bool + Send),
    out: &mut dyn Write,
) -> Result<(), TrustCommandError> {
    let (image, tag) = parse(remote)?;
    if tag.is_none()
        && !yes
        && !confirm(&format!(
            "Confirm you would like to delete all signature data for {remote}?"
        ))
    {
        return Err(TrustCommandError::Cancelled);
    }
    let run = async {
        let client = trust_client(env, trust, &image).await?;
        trust.revoke(&client, &image, tag.as_deref()).await?;
        Ok::<(), TrustCommandError>(())
    };
    run.await.map_err(|e| TrustCommandError::Revoke {
        remote: remote.to_owned(),
        source: Box::new(e),
    })?;
    writeln!(out, "Successfully deleted signature for {remote}").map_err(write_err)?;
    Ok(())
}

/// `bay trust key generate NAME [--dir DIR]`: the private key goes into the
/// key store (encrypted), `NAME.pub` into `dir`. Blocking.
pub fn key_generate(
    trust: &NotaryTrust,
    name: &str,
    dir: &Path,
    out: &mut dyn Write,
) -> Result<PathBuf, TrustCommandError> {
    if !valid_name(name) {
        return Err(AdminError::InvalidName {
            what: "key",
            name: name.to_owned(),
        }
        .into());
    }
    if !dir.is_dir() {
        return Err(TrustCommandError::NoKeyDir {
            path: dir.to_owned(),
        });
    }
    let path = dir.join(format!("{name}.pub"));
    if path.exists() {
        return Err(TrustCommandError::KeyFileExists { path });
    }
    writeln!(out, "Generating key for {name}...").map_err(write_err)?;
    let public = trust.generate_signer_key(name)?;
    let pem = public
        .to_pem(name)
        .map_err(|source| TrustCommandError::PublicKey {
            path: path.clone(),
            source,
        })?;
    write_private(&path, pem.as_bytes())?;
    writeln!(
        out,
        "Successfully generated and loaded private key. Corresponding public key available: {}",
        path.display()
    )
    .map_err(write_err)?;
    Ok(path)
}

/// Writes a new file with mode 0600 (docker's mode for `.pub` files too).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TrustCommandError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |op, source| TrustCommandError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io("create", e))?;
    f.write_all(bytes).map_err(|e| io("write", e))
}

/// `bay trust key load [--name NAME] KEYFILE`: imports a docker/Notary
/// encrypted private key. Blocking.
pub fn key_load(
    trust: &NotaryTrust,
    path: &Path,
    name: &str,
    out: &mut dyn Write,
) -> Result<(), TrustCommandError> {
    if !valid_name(name) {
        return Err(AdminError::InvalidName {
            what: "key",
            name: name.to_owned(),
        }
        .into());
    }
    writeln!(out, "Loading key from \"{}\"...", path.display()).map_err(write_err)?;
    match trust.load_signer_key(path, name) {
        Ok(info) => {
            tracing::info!(key = %info.key_id, role = %info.role, "imported key");
        }
        Err(AdminError::Notary(NotaryError::LocalKeys {
            source: bay_signer::keystore::KeyStoreError::InsecurePermissions { .. },
        })) => {
            return Err(TrustCommandError::InsecureKeyFile {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(e.into()),
    }
    writeln!(out, "Successfully imported key from {}", path.display()).map_err(write_err)?;
    Ok(())
}

fn read_public_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, TrustCommandError> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|source| TrustCommandError::Io {
                op: "read",
                path: p.clone(),
                source,
            })?;
            let parsed = if text.contains(CERT_BEGIN) {
                certificate_key(&text)
            } else {
                PublicKey::from_pem(&text)
            };
            parsed.map_err(|source| TrustCommandError::PublicKey {
                path: p.clone(),
                source,
            })
        })
        .collect()
}

const CERT_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const CERT_END: &str = "-----END CERTIFICATE-----";

/// A `CERTIFICATE` PEM as an `ecdsa-x509` key, as docker's
/// `ParsePEMPublicKey` makes it: the first certificate re-encoded the way
/// Go's `pem.EncodeToMemory` writes it (64-column base64, no headers), so
/// the key ID is the one docker computes.
fn certificate_key(text: &str) -> Result<PublicKey, bay_signer::key::KeyError> {
    use base64::Engine as _;
    let bad = |reason| bay_signer::key::KeyError::MalformedPem { reason };
    let start = text.find(CERT_BEGIN).ok_or(bad("no CERTIFICATE block"))? + CERT_BEGIN.len();
    let len = text[start..]
        .find(CERT_END)
        .ok_or(bad("unterminated CERTIFICATE block"))?;
    let body: String = text[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| bad("certificate body is not base64"))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("{CERT_BEGIN}\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str(CERT_END);
    pem.push('\n');
    let key = PublicKey::new(bay_signer::key::KeyType::EcdsaX509, pem.into_bytes());
    // Only certificates over keys we can verify with (P-256, Ed25519).
    key.plain()?;
    Ok(key)
}

/// `bay trust signer add --key K.pub… NAME REPO…` (`PUBLIC KEY` PEMs as
/// `trust key generate` writes them, or X.509 `CERTIFICATE` PEMs).
pub async fn signer_add(
    env: &Env,
    trust: &NotaryTrust,
    name: &str,
    key_files: &[PathBuf],
    repos: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), TrustCommandError> {
    if !valid_name(name) {
        return Err(AdminError::InvalidName {
            what: "signer",
            name: name.to_owned(),
        }
        .into());
    }
    if name == "releases" {
        return Err(AdminError::ReservedName.into());
    }
    let keys = read_public_keys(key_files)?;
    let mut failed = Vec::new();
    for repo in repos {
        writeln!(out, "Adding signer \"{name}\" to {repo}...").map_err(write_err)?;
        let one = async {
            let (image, _) = parse(repo)?;
            let client = trust_client(env, trust, &image).await?;
            Ok::<bool, TrustCommandError>(
                trust.add_signer_keys(&client, &image, name, &keys).await?,
            )
        };
        match one.await {
            Ok(initialized) => {
                if initialized {
                    writeln!(
                        out,
                        "Initializing signed repository for {repo}...\nSuccessfully initialized {repo:?}"
                    )
                    .map_err(write_err)?;
                }
                writeln!(out, "Successfully added signer: {name} to {repo}\n")
                    .map_err(write_err)?;
            }
            Err(e) => {
                writeln!(err, "{}\n", chain(&e)).map_err(write_err)?;
                failed.push(repo.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(TrustCommandError::SignerAdd {
            repos: failed.join(", "),
        })
    }
}

/// What `signer remove` removes from where.
#[derive(Debug, Clone, Copy)]
pub struct SignerRemove<'a> {
    /// The signer.
    pub name: &'a str,
    /// The repositories.
    pub repos: &'a [String],
    /// `-f`: no confirmation.
    pub force: bool,
}

/// `bay trust signer remove [-f] NAME REPO…`: really removes the signer
/// (unlike docker ≥ 26); `confirm` is asked when the signer carries the
/// last release signatures and `force` is off.
pub async fn signer_remove(
    env: &Env,
    trust: &NotaryTrust,
    opts: &SignerRemove<'_>,
    confirm: &mut (dyn FnMut(&str) -> bool + Send),
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), TrustCommandError> {
    let SignerRemove { name, repos, force } = *opts;
    let mut failed = Vec::new();
    for repo in repos {
        writeln!(out, "Removing signer \"{name}\" from {repo}...").map_err(write_err)?;
        let one = async {
            let (image, _) = parse(repo)?;
            let client = trust_client(env, trust, &image).await?;
            Ok::<RemoveOutcome, TrustCommandError>(
                trust
                    .remove_signer(&client, &image, name, force, &mut *confirm)
                    .await?,
            )
        };
        match one.await {
            Ok(RemoveOutcome::Removed) => {
                writeln!(out, "Successfully removed {name} from {repo}\n").map_err(write_err)?;
            }
            Ok(RemoveOutcome::Aborted) => {
                writeln!(out, "\nAborting action.").map_err(write_err)?;
            }
            Err(e) => {
                writeln!(err, "{}\n", chain(&e)).map_err(write_err)?;
                failed.push(repo.clone());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(TrustCommandError::SignerRemove {
            repos: failed.join(", "),
        })
    }
}
