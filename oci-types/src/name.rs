//! Repository names, tags and manifest references.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::digest::{Digest, DigestError};

/// Longest repository name accepted. Many clients cap `host[:port]/name` at 255
/// characters; we cap the name itself at 255 so no valid name is refused by us
/// while an unbounded one can never reach storage.
pub const MAX_NAME_LEN: usize = 255;

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    // distribution-spec v1.1 `<name>` grammar, anchored.
    #[allow(clippy::unwrap_used)] // a constant pattern, covered by tests
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$").unwrap()
});

static TAG_RE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern, covered by tests
    Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").unwrap()
});

/// Why a name, tag or reference was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The repository name is empty or does not match the spec grammar.
    #[error("repository name {0:?} does not match the distribution-spec grammar")]
    InvalidName(String),
    /// The repository name is longer than [`MAX_NAME_LEN`].
    #[error("repository name is {0} characters long; the limit is {MAX_NAME_LEN}")]
    NameTooLong(usize),
    /// The tag does not match `[a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}`.
    #[error("tag {0:?} does not match the distribution-spec grammar")]
    InvalidTag(String),
    /// The reference looked like a digest but was not a valid one.
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// A validated repository name such as `team/app`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    /// Parse a repository name with the distribution-spec grammar.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::NameTooLong(s.len()));
        }
        if !NAME_RE.is_match(s) {
            return Err(NameError::InvalidName(truncate(s)));
        }
        Ok(RepoName(s.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoName({})", self.0)
    }
}

/// A validated tag such as `v1.0`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Parse a tag with the distribution-spec grammar.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if !TAG_RE.is_match(s) {
            return Err(NameError::InvalidTag(truncate(s)));
        }
        Ok(Tag(s.to_owned()))
    }

    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Reference {
    /// By tag.
    Tag(Tag),
    /// By digest.
    Digest(Digest),
}

impl Reference {
    /// Parse a reference: anything containing `:` must be a valid digest,
    /// anything else a valid tag (tags cannot contain `:`).
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.contains(':') {
            Ok(Reference::Digest(Digest::parse(s)?))
        } else {
            Ok(Reference::Tag(Tag::parse(s)?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// Keep error messages bounded even for megabyte-long inputs.
fn truncate(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "library/busybox",
            "a.b_c__d---e/f0",
            "team/sub/app",
            "x9",
        ] {
            assert!(RepoName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "Team/app",
            "a/../b",
            "..",
            "a//b",
            "/a",
            "a/",
            "a___b",
            "%2e%2e",
            "a/%2e%2e/b",
            "-a",
            "a-",
            "a b",
            "a\u{0}b",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            RepoName::parse(&"a".repeat(256)),
            Err(NameError::NameTooLong(256))
        );
        assert!(RepoName::parse(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn tags() {
        assert!(Tag::parse("latest").is_ok());
        assert!(Tag::parse("_v1.0-rc.1").is_ok());
        assert!(Tag::parse(&"a".repeat(128)).is_ok());
        for bad in ["", ".a", "-a", "a:b", "a/b", &"a".repeat(129)] {
            assert!(Tag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!(Reference::parse("v1"), Ok(Reference::Tag(_))));
        assert!(matches!(
            Reference::parse(&Digest::sha256_of(b"").to_string()),
            Ok(Reference::Digest(_))
        ));
        assert!(matches!(
            Reference::parse("sha256:totallywrong"),
            Err(NameError::Digest(_))
        ));
    }
}
