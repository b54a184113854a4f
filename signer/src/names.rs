//! Validated names: the GUN (globally unique name) of a trust repository and
//! TUF role names, including delegations such as `targets/releases`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Errors from parsing names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The GUN is empty, too long, or holds forbidden characters.
    #[error("invalid gun {gun:?}: {reason}")]
    InvalidGun {
        /// The rejected input.
        gun: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The role name is not a base role nor a clean `targets/...` delegation.
    #[error("invalid role name {role:?}: {reason}")]
    InvalidRole {
        /// The rejected input.
        role: String,
        /// Why it was rejected.
        reason: &'static str,
    },
}

/// A Notary GUN: the normalized repository name including the registry host,
/// e.g. `docker.io/library/alpine` or `127.0.0.1:5000/team/app`.
///
/// It is also the CN that every root certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gun(String);

impl Gun {
    /// Parses a GUN: 1..=255 bytes, no whitespace or control characters, no
    /// `*` (Notary's router forbids it), no leading or trailing `/`.
    pub fn new(gun: impl Into<String>) -> Result<Self, NameError> {
        let gun = gun.into();
        let err = |reason| NameError::InvalidGun {
            gun: gun.clone(),
            reason,
        };
        if gun.is_empty() || gun.len() > 255 {
            return Err(err("must be 1 to 255 bytes long"));
        }
        if gun
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '*')
        {
            return Err(err(
                "must not contain whitespace, control characters or '*'",
            ));
        }
        if gun.starts_with('/') || gun.ends_with('/') || gun.contains("//") {
            return Err(err("must not start or end with '/' or contain '//'"));
        }
        Ok(Self(gun))
    }

    /// The GUN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role name: `root`, `targets`, `snapshot`, `timestamp`, or a delegation
/// `targets/<a>[/<b>...]` whose segments match `[-a-z0-9_]+` (Notary's rule).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(String);

impl RoleName {
    /// `root`.
    pub fn root() -> Self {
        Self("root".into())
    }
    /// `targets`.
    pub fn targets() -> Self {
        Self("targets".into())
    }
    /// `snapshot`.
    pub fn snapshot() -> Self {
        Self("snapshot".into())
    }
    /// `timestamp`.
    pub fn timestamp() -> Self {
        Self("timestamp".into())
    }
    /// `targets/releases`, the delegation docker trusts first.
    pub fn releases() -> Self {
        Self("targets/releases".into())
    }

    /// Parses and validates a role name.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        if matches!(name.as_str(), "root" | "targets" | "snapshot" | "timestamp") {
            return Ok(Self(name));
        }
        let err = |reason| NameError::InvalidRole {
            role: name.clone(),
            reason,
        };
        if name.len() >= 256 {
            return Err(err("must be shorter than 256 bytes"));
        }
        let Some(rest) = name.strip_prefix("targets/") else {
            return Err(err("must be a base role or start with 'targets/'"));
        };
        for segment in rest.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(err("must be a clean path"));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(err("segments must match [-a-z0-9_]+"));
            }
        }
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `targets/...` delegations.
    pub fn is_delegation(&self) -> bool {
        self.0.starts_with("targets/")
    }

    /// The parent of a delegation (`targets/a/b` -> `targets/a`), `None` for
    /// base roles.
    pub fn parent(&self) -> Option<RoleName> {
        if !self.is_delegation() {
            return None;
        }
        self.0.rfind('/').map(|i| RoleName(self.0[..i].to_owned()))
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RoleName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RoleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RoleName::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gun_rules() {
        assert!(Gun::new("docker.io/library/alpine").is_ok());
        assert!(Gun::new("127.0.0.1:5000/team/app").is_ok());
        assert!(Gun::new("").is_err());
        assert!(Gun::new("a/*").is_err());
        assert!(Gun::new("a b").is_err());
        assert!(Gun::new("/a").is_err());
        assert!(Gun::new("x".repeat(256)).is_err());
    }

    #[test]
    fn role_rules() {
        for ok in [
            "root",
            "targets",
            "snapshot",
            "timestamp",
            "targets/releases",
            "targets/a-b_1/c",
        ] {
            assert!(RoleName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Targets",
            "targets/",
            "targets//a",
            "targets/../x",
            "targets/A",
            "foo",
            "targets/a b",
        ] {
            assert!(RoleName::new(bad).is_err(), "{bad}");
        }
        assert_eq!(
            RoleName::new("targets/a/b").unwrap().parent(),
            Some(RoleName::new("targets/a").unwrap())
        );
        assert_eq!(RoleName::releases().parent(), Some(RoleName::targets()));
        assert_eq!(RoleName::targets().parent(), None);
    }
}
