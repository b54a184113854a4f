//! The `trust` administration verbs on [`NotaryTrust`]: inspect, sign,
//! revoke, signer add/remove, key generate/load — docker CLI 28's
//! semantics, with two deliberate differences:
//! - `remove_signer` really removes the delegation and its keys (docker ≥ 26
//!   silently does nothing), and it does not refuse to remove a signer of a
//!   repository that has no signed release yet (docker's "all signed tags are
//!   currently revoked" error).
//! - `sign` on a repository without trust data signs with the repository key
//!   (like a signed `docker push`), instead of creating a signer named after
//!   the registry login.
//!
//! Keys live in the key store under `<trust dir>/private` (see
//! [`bay_signer::keystore`]); a signer's key is stored with the signer's
//! name as its role, as docker does.

use std::path::{Path, PathBuf};

use bay_signer::cert::{default_cert_validity, generate_root_certificate};
use bay_signer::editor::{NewRepoKeys, RepoEditor};
use bay_signer::key::{KeyAlgorithm, KeyId, PrivateKey, PublicKey, Sign};
use bay_signer::keystore::{KeyInfo, KeyRole, KeySource, KeyStoreError};
use bay_signer::names::{Gun, RoleName};
use bay_signer::schema::{FileMeta, RoleType};
use bay_signer::verify::TrustedRepo;
use oci_types::Digest;

use super::TrustError;
use super::notary::{Failure, NotaryError, NotaryTrust, Outcome, failed};
use crate::reference::ImageRef;
use crate::registry::RegistryClient;

/// Failures of the administration verbs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// Fetching, verifying or publishing trust data failed.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A signer or key name docker would refuse.
    #[error(
        "{what} name \"{name}\" must start with lowercase alphanumeric characters and can include \"-\" or \"_\" after the first character"
    )]
    InvalidName {
        /// `signer` or `key`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// `releases` is docker's role for released tags.
    #[error("releases is a reserved keyword, use a different signer name")]
    ReservedName,
    /// The repository has no trust data.
    #[error("{gun} does not have trust data")]
    NotInitialized {
        /// The GUN.
        gun: Gun,
    },
    /// No such signer.
    #[error("no signer {name} for repository {repo}")]
    NoSigner {
        /// The signer.
        name: String,
        /// The repository as named.
        repo: String,
    },
    /// The tag is not signed.
    #[error("No trust data for {tag}")]
    NoSuchTarget {
        /// The tag.
        tag: String,
    },
    /// Nothing is signed in a released role.
    #[error("no signed tags to remove")]
    NothingSigned,
    /// None of our keys may sign this repository.
    #[error(
        "no valid signing keys for {gun}: none of its signers' keys nor its repository key is in {dir} (see `bay trust key load`)"
    )]
    NoSigningKeys {
        /// The GUN.
        gun: Gun,
        /// The key store.
        dir: PathBuf,
    },
    /// The tag is signed only in roles we cannot sign.
    #[error("cannot revoke {tag}: it is signed in {roles}, and this client holds no key for them")]
    NotRevocable {
        /// The tag.
        tag: String,
        /// The roles that still hold it.
        roles: String,
    },
    /// A key or metadata operation.
    #[error(transparent)]
    Notary(#[from] NotaryError),
}

/// What [`NotaryTrust::sign`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOutcome {
    /// The repository had no trust data and was created.
    pub initialized: bool,
    /// The roles the tag was signed into.
    pub roles: Vec<RoleName>,
    /// Who had signed this tag before (docker prints them), empty if nobody.
    pub previous_signers: Vec<String>,
    /// The digest signed before, if the tag was signed.
    pub previous_digest: Option<String>,
}

/// What [`NotaryTrust::remove_signer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// Removed and published.
    Removed,
    /// The user declined the confirmation.
    Aborted,
}

/// docker's rule for signer and key names.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn check_signer_name(name: &str) -> Result<(), AdminError> {
    if !valid_name(name) {
        return Err(AdminError::InvalidName {
            what: "signer",
            name: name.to_owned(),
        });
    }
    if name == "releases" {
        return Err(AdminError::ReservedName);
    }
    Ok(())
}

fn trust_err(image: &ImageRef, f: Failure) -> AdminError {
    AdminError::Trust(f.into_trust(image))
}

fn notary_err(image: &ImageRef, e: NotaryError) -> AdminError {
    AdminError::Trust(failed(image, e))
}

impl NotaryTrust {
    /// Connects to where the trust data of images on `host` lives: the
    /// `DOCKER_CONTENT_TRUST_SERVER` host when set, else `host` itself.
    pub async fn connect(
        &self,
        host: &str,
        opts: crate::registry::ClientOptions,
    ) -> Result<RegistryClient, NotaryError> {
        let target = match &self.server {
            Some(url) => Self::parse_server_url(url)?,
            None => host.to_owned(),
        };
        RegistryClient::connect(&target, opts)
            .await
            .map_err(|source| NotaryError::TrustServer {
                host: target,
                source: Box::new(source),
            })
    }

    /// The verified trust data of the image's repository; None when the
    /// server has none.
    pub async fn inspect_repo(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
    ) -> Result<Option<TrustedRepo>, AdminError> {
        let gun = Self::gun_of(image).map_err(|e| notary_err(image, e))?;
        let registry = self
            .trust_client(registry)
            .await
            .map_err(|e| notary_err(image, e))?;
        match self.verify(registry, &gun).await {
            Ok(Outcome::Repo(r)) => Ok(Some(*r)),
            Ok(Outcome::Missing) => Ok(None),
            Err(f) => Err(trust_err(image, f)),
        }
    }

    /// A new repository for `gun`: the root key (reused when the key store
    /// has one, else created), a new repository key, the server's snapshot
    /// and timestamp keys; checked against the root pins.
    async fn init_editor(
        &self,
        registry: &RegistryClient,
        gun: &Gun,
    ) -> Result<(RepoEditor, PrivateKey, PrivateKey), Failure> {
        let now = chrono::Utc::now();
        let timestamp = Self::server_key(registry, gun, "timestamp").await?;
        let snapshot = Self::server_key(registry, gun, "snapshot").await?;
        let (root, targets) = self.new_repo_keys(gun).await?;
        let cert = generate_root_certificate(&root, gun, now, default_cert_validity()).map_err(
            |source| NotaryError::Cert {
                gun: gun.clone(),
                source,
            },
        )?;
        let ed = RepoEditor::create(
            gun.clone(),
            NewRepoKeys {
                root: cert,
                targets: targets.public_key().clone(),
                snapshot,
                timestamp,
            },
            now,
        )
        .map_err(|source| NotaryError::Sign {
            gun: gun.clone(),
            source,
        })?;
        self.check_pinned_root(gun, ed.root())?;
        Ok((ed, root, targets))
    }

    /// Every key of ours that may sign a targets role of `ed`: keys of the
    /// direct `targets/*` delegations and the repository key.
    async fn held_signing_keys(
        &self,
        gun: &Gun,
        ed: &RepoEditor,
    ) -> Result<Vec<PrivateKey>, NotaryError> {
        // Stored keys are named by their plain key (an X.509 key's
        // certificate wraps one), so compare plain key IDs.
        let mut wanted: Vec<KeyId> = Vec::new();
        let mut want = |key: Option<&PublicKey>| {
            if let Some(id) = key.and_then(|k| k.plain().ok()).map(|k| k.key_id())
                && !wanted.contains(&id)
            {
                wanted.push(id);
            }
        };
        if let Some(t) = ed.targets(&RoleName::targets()) {
            for d in &t.delegations.roles {
                if d.name.parent() == Some(RoleName::targets()) {
                    for id in &d.keyids {
                        want(t.delegations.keys.get(id));
                    }
                }
            }
        }
        if let Some(rk) = ed.root().role(RoleType::Targets) {
            for id in &rk.keyids {
                want(ed.root().keys.get(id));
            }
        }
        let store = self.keystore(gun)?;
        let stored = store.list().map_err(|source| NotaryError::Keys {
            gun: gun.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for id in wanted {
            if stored.iter().any(|k| k.public.key_id() == id)
                && let Some(key) = self.load_key(gun, vec![id]).await?
            {
                out.push(key);
            }
        }
        Ok(out)
    }

    async fn publish(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
        gun: &Gun,
        ed: &mut RepoEditor,
        signers: &[&dyn Sign],
    ) -> Result<TrustedRepo, AdminError> {
        let files = ed.sign(signers).map_err(|source| {
            notary_err(
                image,
                NotaryError::Sign {
                    gun: gun.clone(),
                    source,
                },
            )
        })?;
        Self::upload(registry, gun, &files)
            .await
            .map_err(|e| notary_err(image, e))?;
        tracing::info!(%gun, roles = files.len(), "published trust data");
        match self.verify(registry, gun).await {
            Ok(Outcome::Repo(r)) => Ok(*r),
            Ok(Outcome::Missing) => Err(AdminError::NotInitialized { gun: gun.clone() }),
            Err(f) => Err(trust_err(image, f)),
        }
    }

    /// docker's `trust sign IMAGE:TAG` for an image already in the
    /// registry: signs `tag` → (`digest`, `size`) into every role our keys
    /// can sign (each direct `targets/*` delegation we hold a key of, else
    /// `targets`); a repository without trust data is created first.
    pub async fn sign(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
        tag: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<SignOutcome, AdminError> {
        let gun = Self::gun_of(image).map_err(|e| notary_err(image, e))?;
        let sha: [u8; 32] = (digest.algorithm() == oci_types::Algorithm::Sha256)
            .then(|| hex::decode(digest.hex()).ok())
            .flatten()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                notary_err(
                    image,
                    NotaryError::NotSha256 {
                        digest: digest.clone(),
                    },
                )
            })?;
        let meta = FileMeta::docker(sha, size);
        let registry = self
            .trust_client(registry)
            .await
            .map_err(|e| notary_err(image, e))?;
        let sign_err = |source| {
            notary_err(
                image,
                NotaryError::Sign {
                    gun: gun.clone(),
                    source,
                },
            )
        };
        match self.verify(registry, &gun).await {
            Ok(Outcome::Missing) => {
                let (mut ed, root, targets) = self
                    .init_editor(registry, &gun)
                    .await
                    .map_err(|f| trust_err(image, f))?;
                ed.add_target(&RoleName::targets(), tag, meta)
                    .map_err(sign_err)?;
                self.publish(registry, image, &gun, &mut ed, &[&root, &targets])
                    .await?;
                Ok(SignOutcome {
                    initialized: true,
                    roles: vec![RoleName::targets()],
                    previous_signers: Vec::new(),
                    previous_digest: None,
                })
            }
            Ok(Outcome::Repo(repo)) => {
                let before = super::inspect::TrustInfo::from_repo(&repo, Some(tag));
                let mut ed = self.editor(&repo).map_err(sign_err)?;
                let keys = self
                    .held_signing_keys(&gun, &ed)
                    .await
                    .map_err(|e| notary_err(image, e))?;
                let signers: Vec<&dyn Sign> = keys.iter().map(|k| k as &dyn Sign).collect();
                let roles = ed.signable_roles(&signers);
                if roles.is_empty() {
                    return Err(AdminError::NoSigningKeys {
                        gun,
                        dir: self.dir.join("private"),
                    });
                }
                for role in &roles {
                    ed.add_target(role, tag, meta.clone()).map_err(sign_err)?;
                }
                self.publish(registry, image, &gun, &mut ed, &signers)
                    .await?;
                let previous = before.rows.first();
                Ok(SignOutcome {
                    initialized: false,
                    roles,
                    previous_signers: previous.map(|r| r.signers.clone()).unwrap_or_default(),
                    previous_digest: previous.map(|r| r.digest.clone()),
                })
            }
            Err(f) => Err(trust_err(image, f)),
        }
    }

    /// docker's `trust revoke IMAGE[:TAG]`: removes the tag (every released
    /// tag when None) from every role our keys can sign, and publishes.
    /// Returns the roles changed.
    pub async fn revoke(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
        tag: Option<&str>,
    ) -> Result<Vec<RoleName>, AdminError> {
        let gun = Self::gun_of(image).map_err(|e| notary_err(image, e))?;
        let registry = self
            .trust_client(registry)
            .await
            .map_err(|e| notary_err(image, e))?;
        let repo = match self.verify(registry, &gun).await {
            Ok(Outcome::Repo(r)) => r,
            Ok(Outcome::Missing) => return Err(AdminError::NotInitialized { gun }),
            Err(f) => return Err(trust_err(image, f)),
        };
        let released = [RoleName::releases(), RoleName::targets()];
        let tags: Vec<String> = match tag {
            Some(t) => {
                if repo.lookup_in(t, &released).is_none() {
                    return Err(AdminError::NoSuchTarget { tag: t.to_owned() });
                }
                vec![t.to_owned()]
            }
            None => {
                let mut all: Vec<String> = repo
                    .all_targets()
                    .into_iter()
                    .filter(|t| released.contains(&t.role))
                    .map(|t| t.name)
                    .collect();
                all.sort();
                all.dedup();
                if all.is_empty() {
                    return Err(AdminError::NothingSigned);
                }
                all
            }
        };
        let sign_err = |source| {
            notary_err(
                image,
                NotaryError::Sign {
                    gun: gun.clone(),
                    source,
                },
            )
        };
        let mut ed = self.editor(&repo).map_err(sign_err)?;
        let keys = self
            .held_signing_keys(&gun, &ed)
            .await
            .map_err(|e| notary_err(image, e))?;
        let signers: Vec<&dyn Sign> = keys.iter().map(|k| k as &dyn Sign).collect();
        let mut roles = ed.signable_roles(&signers);
        // Unlike a signature, a revocation also clears `targets` when we
        // hold the repository key, so no released copy of the tag is left.
        let repo_keys = ed
            .root()
            .role(RoleType::Targets)
            .map(|rk| rk.keyids.clone())
            .unwrap_or_default();
        if !roles.contains(&RoleName::targets())
            && keys.iter().any(|k| repo_keys.contains(&k.key_id()))
        {
            roles.push(RoleName::targets());
        }
        if roles.is_empty() {
            return Err(AdminError::NoSigningKeys {
                gun,
                dir: self.dir.join("private"),
            });
        }
        let mut changed = Vec::new();
        for t in &tags {
            for role in &roles {
                if ed.remove_target(role, t).map_err(sign_err)? && !changed.contains(role) {
                    changed.push(role.clone());
                }
            }
        }
        // A tag still released in a role we cannot sign stays pullable:
        // say so rather than report success.
        for t in &tags {
            let holders: Vec<String> = released
                .iter()
                .filter(|r| ed.targets(r).is_some_and(|b| b.targets.contains_key(t)))
                .map(ToString::to_string)
                .collect();
            if !holders.is_empty() {
                return Err(AdminError::NotRevocable {
                    tag: t.clone(),
                    roles: holders.join(", "),
                });
            }
        }
        self.publish(registry, image, &gun, &mut ed, &signers)
            .await?;
        Ok(changed)
    }

    /// docker's `trust signer add --key K… NAME REPO`: adds `keys` to
    /// `targets/NAME` and `targets/releases`, signed with the repository
    /// key; a repository without trust data is created first. Returns
    /// whether it was created.
    pub async fn add_signer_keys(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
        name: &str,
        keys: &[PublicKey],
    ) -> Result<bool, AdminError> {
        check_signer_name(name)?;
        let gun = Self::gun_of(image).map_err(|e| notary_err(image, e))?;
        let registry = self
            .trust_client(registry)
            .await
            .map_err(|e| notary_err(image, e))?;
        let sign_err = |source| {
            notary_err(
                image,
                NotaryError::Sign {
                    gun: gun.clone(),
                    source,
                },
            )
        };
        match self.verify(registry, &gun).await {
            Ok(Outcome::Missing) => {
                let (mut ed, root, targets) = self
                    .init_editor(registry, &gun)
                    .await
                    .map_err(|f| trust_err(image, f))?;
                ed.add_signer(name, keys).map_err(sign_err)?;
                self.publish(registry, image, &gun, &mut ed, &[&root, &targets])
                    .await?;
                Ok(true)
            }
            Ok(Outcome::Repo(repo)) => {
                let targets = self
                    .targets_key(&repo)
                    .await
                    .map_err(|e| notary_err(image, e))?;
                let mut ed = self.editor(&repo).map_err(sign_err)?;
                ed.add_signer(name, keys).map_err(sign_err)?;
                self.publish(registry, image, &gun, &mut ed, &[&targets])
                    .await?;
                Ok(false)
            }
            Err(f) => Err(trust_err(image, f)),
        }
    }

    /// docker's `trust signer remove NAME REPO`, which really removes:
    /// `targets/NAME` goes, and its keys leave `targets/releases` (which goes
    /// too when no key is left). When the signer's keys carry the last valid
    /// signatures of `targets/releases`, `confirm` is asked first unless
    /// `force` (the repository becomes unpullable by tag through releases).
    pub async fn remove_signer(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
        name: &str,
        force: bool,
        confirm: &mut (dyn FnMut(&str) -> bool + Send),
    ) -> Result<RemoveOutcome, AdminError> {
        let gun = Self::gun_of(image).map_err(|e| notary_err(image, e))?;
        let repo_name = image.to_string();
        let no_signer = || AdminError::NoSigner {
            name: name.to_owned(),
            repo: repo_name.clone(),
        };
        if name == "releases" {
            return Err(AdminError::ReservedName);
        }
        let role = RoleName::new(format!("targets/{name}")).map_err(|_| no_signer())?;
        let registry = self
            .trust_client(registry)
            .await
            .map_err(|e| notary_err(image, e))?;
        let repo = match self.verify(registry, &gun).await {
            Ok(Outcome::Repo(r)) => r,
            Ok(Outcome::Missing) => return Err(AdminError::NotInitialized { gun }),
            Err(f) => return Err(trust_err(image, f)),
        };
        let sign_err = |source| {
            notary_err(
                image,
                NotaryError::Sign {
                    gun: gun.clone(),
                    source,
                },
            )
        };
        let mut ed = self.editor(&repo).map_err(sign_err)?;
        let Some(entry) = ed.delegation(&role).cloned() else {
            return Err(no_signer());
        };
        if !force && last_release_signer(&repo, &ed, &entry.keyids) {
            let question = format!(
                "The signer \"{name}\" signed the last released version of {repo_name}. Removing this signer will make {repo_name} unpullable. Are you sure you want to continue?"
            );
            if !confirm(&question) {
                return Ok(RemoveOutcome::Aborted);
            }
        }
        let targets = self
            .targets_key(&repo)
            .await
            .map_err(|e| notary_err(image, e))?;
        ed.remove_signer(name).map_err(sign_err)?;
        let after = self
            .publish(registry, image, &gun, &mut ed, &[&targets])
            .await?;
        let still = after
            .targets()
            .is_some_and(|t| t.signed.delegations.roles.iter().any(|d| d.name == role));
        if still {
            return Err(AdminError::NotRevocable {
                tag: format!("signer {name}"),
                roles: "targets".to_owned(),
            });
        }
        Ok(RemoveOutcome::Removed)
    }

    /// docker's `trust key generate NAME`: a new ECDSA P-256 key stored
    /// (encrypted) with role `NAME`; returns the public key to hand out.
    /// Blocking (key derivation, passphrase prompts).
    pub fn generate_signer_key(&self, name: &str) -> Result<PublicKey, AdminError> {
        if !valid_name(name) {
            return Err(AdminError::InvalidName {
                what: "key",
                name: name.to_owned(),
            });
        }
        let store =
            bay_signer::keystore::KeyStore::open(self.dir.join("private")).map_err(keys_err)?;
        let role = KeyRole::new(name).map_err(keys_err)?;
        let (key, _) = store
            .generate(
                KeyAlgorithm::EcdsaP256,
                &role,
                None,
                self.passphrases.as_ref(),
            )
            .map_err(keys_err)?;
        Ok(key.public_key().clone())
    }

    /// docker's `trust key load --name NAME FILE`: imports a Notary/docker
    /// encrypted PEM key (mode 0600 required) as role `NAME`. Blocking.
    pub fn load_signer_key(&self, path: &Path, name: &str) -> Result<KeyInfo, AdminError> {
        if !valid_name(name) {
            return Err(AdminError::InvalidName {
                what: "key",
                name: name.to_owned(),
            });
        }
        let store =
            bay_signer::keystore::KeyStore::open(self.dir.join("private")).map_err(keys_err)?;
        let role = KeyRole::new(name).map_err(keys_err)?;
        store
            .import_notary_file(
                path,
                Some(role),
                self.passphrases.as_ref(),
                self.passphrases.as_ref(),
            )
            .map_err(keys_err)
    }
}

fn keys_err(source: KeyStoreError) -> AdminError {
    AdminError::Notary(NotaryError::LocalKeys { source })
}

/// True when `targets/releases` holds released tags and its valid
/// signatures without `keyids` would fall below its threshold.
fn last_release_signer(repo: &TrustedRepo, ed: &RepoEditor, keyids: &[KeyId]) -> bool {
    let Some(rel) = repo.delegation(&RoleName::releases()) else {
        return false;
    };
    if rel.signed.targets.is_empty() {
        return false;
    }
    let threshold = ed
        .delegation(&RoleName::releases())
        .map_or(1, |d| d.threshold);
    let left = rel.signers.iter().filter(|k| !keyids.contains(k)).count() as u64;
    left < threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker() {
        for ok in ["alice", "a", "0x", "a-b_c"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "Alice", "-a", "_a", "a/b", "a.b", "a b"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(matches!(
            check_signer_name("releases"),
            Err(AdminError::ReservedName)
        ));
        let e = check_signer_name("Bob").unwrap_err().to_string();
        assert_eq!(
            e,
            "signer name \"Bob\" must start with lowercase alphanumeric characters and can include \"-\" or \"_\" after the first character"
        );
    }
}
