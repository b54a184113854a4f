//! Container identifiers.

use std::io::Read;

/// A validated container id: 1–128 characters from `[A-Za-z0-9_.-]`,
/// starting with an alphanumeric (docker's name rule), so it is safe as a
/// path component and a cgroup name.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

/// An invalid container id.
#[derive(Debug, thiserror::Error)]
#[error("invalid container id {0:?}: use 1-128 of [A-Za-z0-9_.-], starting with a letter or digit")]
pub struct InvalidId(pub String);

impl ContainerId {
    /// Parses an id.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidId(s.to_owned()))
        }
    }

    /// A fresh random 64-hex-digit id, like docker's.
    pub fn generate() -> Result<Self, std::io::Error> {
        let mut buf = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
        Ok(Self(hex::encode(buf)))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 characters (docker's short id and default hostname).
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

impl TryFrom<String> for ContainerId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        Self::parse(&s)
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_path_safe() {
        assert!(ContainerId::parse("web-1.a_b").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b", &"x".repeat(129)] {
            assert!(ContainerId::parse(bad).is_err(), "{bad:?}");
        }
        let id = ContainerId::generate().unwrap();
        assert_eq!(id.as_str().len(), 64);
        assert_eq!(id.short().len(), 12);
    }
}
