//! Where passphrases come from: docker's environment variables, a prompt
//! the CLI provides, or a fixed value. Every passphrase is `Zeroizing`.

use zeroize::Zeroizing;

use crate::key::KeyId;
use crate::keystore::KeyRole;
use crate::names::Gun;

/// docker's passphrase for the root ("offline") key.
pub const ROOT_PASSPHRASE_ENV: &str = "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE";
/// docker's passphrase for every other key (targets, snapshot, delegations).
pub const REPOSITORY_PASSPHRASE_ENV: &str = "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE";

/// Errors getting a passphrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PassphraseError {
    /// No source had one (e.g. the env var is unset and there is no prompt).
    #[error("no passphrase available for the {role} key")]
    Unavailable {
        /// Role of the key.
        role: String,
    },
    /// The user cancelled the prompt.
    #[error("passphrase entry cancelled")]
    Cancelled,
}

/// Why a passphrase is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// To decrypt an existing key.
    Unlock,
    /// To encrypt a new key (a prompt should ask twice).
    Create,
    /// To decrypt a key being imported from another tool.
    Import,
}

/// What the passphrase is for.
#[derive(Debug, Clone, Copy)]
pub struct PassphraseRequest<'a> {
    /// The key's role (`root`, `targets`, a signer name...).
    pub role: &'a KeyRole,
    /// The repository, for per-repository keys.
    pub gun: Option<&'a Gun>,
    /// The key ID (canonical), when known.
    pub key_id: Option<&'a KeyId>,
    /// Why.
    pub purpose: Purpose,
    /// How many wrong attempts came before this one.
    pub attempt: u32,
}

/// A source of passphrases.
pub trait PassphraseSource {
    /// The passphrase for `req`.
    fn passphrase(&self, req: &PassphraseRequest<'_>)
    -> Result<Zeroizing<String>, PassphraseError>;
}

/// docker's environment variables: [`ROOT_PASSPHRASE_ENV`] for root keys,
/// [`REPOSITORY_PASSPHRASE_ENV`] for all others.
#[derive(Clone, Copy)]
pub struct EnvPassphrase {
    lookup: fn(&str) -> Option<String>,
}

impl std::fmt::Debug for EnvPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvPassphrase")
    }
}

impl Default for EnvPassphrase {
    fn default() -> Self {
        EnvPassphrase {
            lookup: |name| std::env::var(name).ok(),
        }
    }
}

impl EnvPassphrase {
    /// Reads the process environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses another lookup (tests, or a config layer).
    pub fn with_lookup(lookup: fn(&str) -> Option<String>) -> Self {
        EnvPassphrase { lookup }
    }

    /// The variable consulted for a role.
    pub fn var_for(role: &KeyRole) -> &'static str {
        if role.is_root() {
            ROOT_PASSPHRASE_ENV
        } else {
            REPOSITORY_PASSPHRASE_ENV
        }
    }
}

impl PassphraseSource for EnvPassphrase {
    fn passphrase(
        &self,
        req: &PassphraseRequest<'_>,
    ) -> Result<Zeroizing<String>, PassphraseError> {
        // A wrong passphrase from the environment will not get better.
        if req.attempt > 0 {
            return Err(PassphraseError::Unavailable {
                role: req.role.to_string(),
            });
        }
        (self.lookup)(Self::var_for(req.role))
            .filter(|p| !p.is_empty())
            .map(Zeroizing::new)
            .ok_or_else(|| PassphraseError::Unavailable {
                role: req.role.to_string(),
            })
    }
}

/// A callback, e.g. the CLI's terminal prompt.
pub struct PromptPassphrase<F>(pub F);

impl<F> PassphraseSource for PromptPassphrase<F>
where
    F: Fn(&PassphraseRequest<'_>) -> Result<Zeroizing<String>, PassphraseError>,
{
    fn passphrase(
        &self,
        req: &PassphraseRequest<'_>,
    ) -> Result<Zeroizing<String>, PassphraseError> {
        (self.0)(req)
    }
}

/// A fixed passphrase (automation, tests).
pub struct FixedPassphrase(pub Zeroizing<String>);

impl FixedPassphrase {
    /// Wraps a passphrase.
    pub fn new(p: impl Into<String>) -> Self {
        FixedPassphrase(Zeroizing::new(p.into()))
    }
}

impl PassphraseSource for FixedPassphrase {
    fn passphrase(
        &self,
        req: &PassphraseRequest<'_>,
    ) -> Result<Zeroizing<String>, PassphraseError> {
        if req.attempt > 0 {
            return Err(PassphraseError::Unavailable {
                role: req.role.to_string(),
            });
        }
        Ok(self.0.clone())
    }
}

/// Tries sources in order (env first, then a prompt, like docker).
pub struct ChainPassphrase<'a>(pub Vec<&'a dyn PassphraseSource>);

impl PassphraseSource for ChainPassphrase<'_> {
    fn passphrase(
        &self,
        req: &PassphraseRequest<'_>,
    ) -> Result<Zeroizing<String>, PassphraseError> {
        let mut last = PassphraseError::Unavailable {
            role: req.role.to_string(),
        };
        for s in &self.0 {
            match s.passphrase(req) {
                Ok(p) => return Ok(p),
                Err(PassphraseError::Cancelled) => return Err(PassphraseError::Cancelled),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(role: &KeyRole) -> PassphraseRequest<'_> {
        PassphraseRequest {
            role,
            gun: None,
            key_id: None,
            purpose: Purpose::Unlock,
            attempt: 0,
        }
    }

    #[test]
    fn env_uses_docker_variables_per_role() {
        let env = EnvPassphrase::with_lookup(|name| match name {
            ROOT_PASSPHRASE_ENV => Some("r00t".into()),
            REPOSITORY_PASSPHRASE_ENV => Some("repo".into()),
            _ => None,
        });
        let root = KeyRole::root();
        let alice = KeyRole::new("alice").unwrap();
        assert_eq!(env.passphrase(&req(&root)).unwrap().as_str(), "r00t");
        assert_eq!(
            env.passphrase(&req(&KeyRole::targets())).unwrap().as_str(),
            "repo"
        );
        assert_eq!(env.passphrase(&req(&alice)).unwrap().as_str(), "repo");
        let retry = PassphraseRequest {
            attempt: 1,
            ..req(&root)
        };
        assert!(env.passphrase(&retry).is_err());
    }

    #[test]
    fn chain_falls_back_to_the_prompt() {
        let env = EnvPassphrase::with_lookup(|_| None);
        let prompt = PromptPassphrase(|r: &PassphraseRequest<'_>| {
            Ok(Zeroizing::new(format!("typed-{}", r.role)))
        });
        let chain = ChainPassphrase(vec![&env, &prompt]);
        assert_eq!(
            chain.passphrase(&req(&KeyRole::root())).unwrap().as_str(),
            "typed-root"
        );
        let cancel = PromptPassphrase(|_: &PassphraseRequest<'_>| Err(PassphraseError::Cancelled));
        let chain = ChainPassphrase(vec![&cancel, &prompt]);
        assert_eq!(
            chain.passphrase(&req(&KeyRole::root())),
            Err(PassphraseError::Cancelled)
        );
    }
}
