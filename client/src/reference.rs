//! Image references as users type them, normalised the way docker does.
//!
//! Grammar (docker's `reference` package, minus the default registry):
//!
//! ```text
//! reference := [host "/"] path [":" tag] ["@" digest]
//! host      := first path component containing "." or ":", or exactly "localhost"
//! ```
//!
//! bay has **no default registry**: a reference without a host names an image
//! in the local store only, and `push`/`pull` refuse it with a clear error
//! (see [`ImageRef::require_host`]). A reference without tag or digest means
//! the tag `latest`.

use std::fmt;

use oci_types::{Digest, NameError, RepoName, Tag};

/// The tag used when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

/// Why a string is not an image reference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The input was empty.
    #[error("invalid reference format: empty reference")]
    Empty,
    /// The registry host part is malformed.
    #[error("invalid reference format: {host:?} is not a valid registry host")]
    InvalidHost {
        /// The offending host text.
        host: String,
    },
    /// The repository path has upper-case characters (docker's special message).
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    Uppercase {
        /// The repository path as typed.
        name: String,
    },
    /// The repository path, tag or digest does not follow the grammar.
    #[error("invalid reference format: {input:?}: {source}")]
    Invalid {
        /// The whole reference as typed.
        input: String,
        /// The grammar violation.
        #[source]
        source: NameError,
    },
    /// The reference has no registry host but the operation needs one.
    #[error(
        "{reference} names no registry: bay has no default registry, so push and pull need a host, e.g. localhost:5000/{repo}"
    )]
    NoHost {
        /// The reference as typed.
        reference: String,
        /// Its repository path.
        repo: String,
    },
}

/// A parsed and normalised image reference.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ImageRef {
    host: Option<String>,
    repo: RepoName,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses `name`, `name:tag`, `name@sha256:…`, `host:port/ns/name:tag[@digest]`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let invalid = |source| ReferenceError::Invalid {
            input: input.to_owned(),
            source,
        };
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|e| invalid(e.into()))?)),
            None => (input, None),
        };
        // A tag is a ':' after the last '/', so a host port is never mistaken for one.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (
                    &rest[..at],
                    Some(Tag::parse(&rest[at + 1..]).map_err(invalid)?),
                )
            }
            None => (rest, None),
        };
        let (host, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                validate_host(first)?;
                (Some(first.to_owned()), path)
            }
            _ => (None, name),
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                name: path.to_owned(),
            });
        }
        let repo = RepoName::parse(path).map_err(invalid)?;
        Ok(ImageRef {
            host,
            repo,
            tag,
            digest,
        })
    }

    /// Builds a reference from its parts.
    pub fn new(
        host: Option<String>,
        repo: RepoName,
        tag: Option<Tag>,
        digest: Option<Digest>,
    ) -> Self {
        ImageRef {
            host,
            repo,
            tag,
            digest,
        }
    }

    /// The registry host (`host[:port]`), if the reference names one.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The repository path inside the registry (without host).
    pub fn repo(&self) -> &RepoName {
        &self.repo
    }

    /// The tag as written, if any.
    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    /// The digest as written, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The tag, or `latest` when the reference has neither tag nor digest.
    pub fn tag_or_default(&self) -> Option<Tag> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(_)) => None,
            (None, None) => Tag::parse(DEFAULT_TAG).ok(),
        }
    }

    /// The local repository name: `host/path` or just `path`.
    pub fn repository(&self) -> String {
        match &self.host {
            Some(h) => format!("{h}/{}", self.repo),
            None => self.repo.to_string(),
        }
    }

    /// Returns a copy with the tag replaced and the digest dropped.
    pub fn with_tag(&self, tag: Tag) -> Self {
        ImageRef {
            tag: Some(tag),
            digest: None,
            ..self.clone()
        }
    }

    /// Returns a copy pinned to `digest` (tag kept for display).
    pub fn with_digest(&self, digest: Digest) -> Self {
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The host, or [`ReferenceError::NoHost`] for a local-only reference.
    pub fn require_host(&self) -> Result<&str, ReferenceError> {
        self.host.as_deref().ok_or_else(|| ReferenceError::NoHost {
            reference: self.to_string(),
            repo: self.repo.to_string(),
        })
    }

    /// The normalised form with the default tag filled in (`name:latest`).
    pub fn normalized(&self) -> String {
        let mut s = self.repository();
        if let Some(t) = self.tag_or_default() {
            s.push(':');
            s.push_str(t.as_str());
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// Host names: DNS labels or an IPv4/bracketed IPv6 address, optional `:port`.
pub fn validate_host(host: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::InvalidHost {
        host: host.to_owned(),
    };
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        match after {
            "" => ("", None),
            p => ("", Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(bad());
    }
    if !host.starts_with('[') {
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if name.is_empty() || !name.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    Ok(())
}

/// True when `host` (`name[:port]`) is a loopback address, where plain HTTP is allowed.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    if name == "localhost" {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn plain_name_gets_latest_and_no_host() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.host(), None);
        assert_eq!(r.repo().as_str(), "busybox");
        assert_eq!(r.tag(), None);
        assert_eq!(r.tag_or_default().unwrap().as_str(), "latest");
        assert_eq!(r.normalized(), "busybox:latest");
        assert!(matches!(
            r.require_host(),
            Err(ReferenceError::NoHost { .. })
        ));
    }

    #[test]
    fn host_port_namespace_tag() {
        let r = ImageRef::parse("127.0.0.1:5000/team/app:v2").unwrap();
        assert_eq!(r.host(), Some("127.0.0.1:5000"));
        assert_eq!(r.repo().as_str(), "team/app");
        assert_eq!(r.tag().unwrap().as_str(), "v2");
        assert_eq!(r.repository(), "127.0.0.1:5000/team/app");
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/app:v2");
    }

    #[test]
    fn host_detection_rules() {
        // '.' in the first component: a host.
        assert_eq!(
            ImageRef::parse("reg.example/app").unwrap().host(),
            Some("reg.example")
        );
        // 'localhost' alone: a host.
        assert_eq!(
            ImageRef::parse("localhost/app").unwrap().host(),
            Some("localhost")
        );
        // port without dots: a host.
        assert_eq!(
            ImageRef::parse("myreg:5000/app").unwrap().host(),
            Some("myreg:5000")
        );
        // plain namespace: not a host.
        let r = ImageRef::parse("team/app:1").unwrap();
        assert_eq!(r.host(), None);
        assert_eq!(r.repo().as_str(), "team/app");
        // a single component with a dot is a repository, not a host.
        assert_eq!(ImageRef::parse("my.app").unwrap().host(), None);
    }

    #[test]
    fn digest_references() {
        let r = ImageRef::parse(&format!("localhost:5000/x@{D}")).unwrap();
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.tag(), None);
        assert_eq!(r.tag_or_default(), None);
        let both = ImageRef::parse(&format!("x:1@{D}")).unwrap();
        assert_eq!(both.tag().unwrap().as_str(), "1");
        assert_eq!(both.to_string(), format!("x:1@{D}"));
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER/app",
            "app:",
            "app:bad tag",
            "app@sha256:nothex",
            "reg:notaport/app",
            "-bad.host/app",
            "a//b",
            "app/../etc",
            ":tag",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(
            ImageRef::parse("Foo"),
            Err(ReferenceError::Uppercase { .. })
        ));
    }

    #[test]
    fn ipv6_host() {
        let r = ImageRef::parse("[::1]:5000/app:1").unwrap();
        assert_eq!(r.host(), Some("[::1]:5000"));
        assert!(is_loopback_host(r.host().unwrap()));
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_host("127.0.0.1:5000"));
        assert!(is_loopback_host("localhost:1"));
        assert!(is_loopback_host("localhost"));
        assert!(!is_loopback_host("reg.example:5000"));
        assert!(!is_loopback_host("10.0.0.1"));
    }
}
