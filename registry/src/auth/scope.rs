//! Docker token scopes: `type[(class)]:name:action[,action]`.
//!
//! The name may itself contain `host:port` (`repository:localhost:5000/foo:pull`),
//! so a scope is split at its **first** and **last** colon, never at every one.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An action on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Read.
    Pull,
    /// Write (uploads, manifests).
    Push,
    /// Delete manifests, tags, blobs.
    Delete,
    /// `*`: everything (catalog, trust administration).
    #[serde(rename = "*")]
    All,
}

impl Action {
    /// Parse one action word.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            "*" => Some(Action::All),
            _ => None,
        }
    }

    /// The wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::All => "*",
        }
    }
}

/// One requested or granted scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource name (`team/app`, `catalog`).
    pub name: String,
    /// Actions.
    pub actions: BTreeSet<Action>,
}

impl Scope {
    /// A repository scope.
    pub fn repository(name: &str, actions: &[Action]) -> Self {
        Scope {
            kind: "repository".into(),
            name: name.into(),
            actions: actions.iter().copied().collect(),
        }
    }

    /// `registry:catalog:*`.
    pub fn catalog() -> Self {
        Scope {
            kind: "registry".into(),
            name: "catalog".into(),
            actions: [Action::All].into_iter().collect(),
        }
    }

    /// Parse a scope string; unknown actions are dropped (a partial grant is
    /// not an error), an empty or malformed scope is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let first = s.find(':')?;
        let last = s.rfind(':')?;
        if first == last {
            return None;
        }
        let kind = &s[..first];
        let name = &s[first + 1..last];
        let kind = kind.split('(').next().unwrap_or(kind);
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        let actions = s[last + 1..].split(',').filter_map(Action::parse).collect();
        Some(Scope {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions,
        })
    }

    /// Whether this scope grants `action` on `kind:name`.
    pub fn allows(&self, kind: &str, name: &str, action: Action) -> bool {
        self.kind == kind
            && self.name == name
            && (self.actions.contains(&action) || self.actions.contains(&Action::All))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let acts: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
        write!(f, "{}:{}:{}", self.kind, self.name, acts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_first_and_last_colon() {
        let s = Scope::parse("repository:localhost:5000/foo:pull,push").unwrap();
        assert_eq!(s.name, "localhost:5000/foo");
        assert!(s.allows("repository", "localhost:5000/foo", Action::Push));
        assert!(!s.allows("repository", "localhost:5000/foo", Action::Delete));
        let c = Scope::parse("registry:catalog:*").unwrap();
        assert!(c.allows("registry", "catalog", Action::Pull));
        let classed = Scope::parse("repository(plugin):a/b:pull").unwrap();
        assert_eq!(classed.kind, "repository");
        assert!(Scope::parse("repository:foo").is_none());
        assert!(Scope::parse("nonsense").is_none());
        let odd = Scope::parse("repository:a:pull,fly").unwrap();
        assert_eq!(odd.actions.len(), 1);
        assert_eq!(odd.to_string(), "repository:a:pull");
    }
}
