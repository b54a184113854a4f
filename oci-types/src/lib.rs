//! Validated OCI distribution-spec types shared by every bay crate.
//!
//! Everything that arrives from a user or the network as a string — a digest, a
//! repository name, a tag, a manifest reference — is parsed into one of these
//! types at the edge, using the grammars of the OCI distribution-spec v1.1
//! (§"Pulling manifests" and the `<name>`/`<reference>` grammar). Code behind
//! the edge never handles raw strings, so a path-traversal attempt such as
//! `../` or `%2e%2e` cannot reach storage: it does not parse.
//!
//! This crate does no I/O.
//!
//! ```
//! use oci_types::{Digest, RepoName, Reference};
//! let name = RepoName::parse("team/app").unwrap();
//! let d = Digest::sha256_of(b"hello");
//! assert_eq!(d.algorithm().as_str(), "sha256");
//! assert!(matches!(Reference::parse("v1.0").unwrap(), Reference::Tag(_)));
//! assert!(RepoName::parse("Team/App").is_err());
//! assert!(RepoName::parse("a/../b").is_err());
//! # let _ = name;
//! ```

mod digest;
mod media;
mod name;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use media::MediaType;
pub use name::{NameError, Reference, RepoName, Tag};
