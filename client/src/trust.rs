//! The content-trust hook.
//!
//! Pulls and pushes call a [`TrustPolicy`] at the two points where Docker
//! Content Trust acts: before a pull by tag, the policy may pin the tag to a
//! digest it verified through signed trust data (and may refuse the pull);
//! after a push, it may sign the tag. The registry client then pulls by that
//! digest and checks the manifest's bytes against it, so a registry serving
//! anything but the signed manifest is caught.
//!
//! [`NoTrust`] is the policy with `DOCKER_CONTENT_TRUST` off;
//! [`NotaryTrust`] (module [`notary`]) verifies and signs with bay-signer
//! against the registry's Notary v1 endpoints.

use oci_types::Digest;

use crate::reference::ImageRef;
use crate::registry::RegistryClient;

/// A trust decision or failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The policy refuses this image (unsigned, expired, rolled back, …).
    #[error("{reason}")]
    Refused {
        /// The image as the user named it.
        reference: String,
        /// One clear sentence for the user, e.g. "image is not signed; see `bay trust` or set DOCKER_CONTENT_TRUST=0".
        reason: String,
    },
    /// The policy could not do its work (trust server unreachable, key problem, …).
    #[error("content trust failed for {reference}: {source}")]
    Failed {
        /// The image as the user named it.
        reference: String,
        /// The implementation's error. Boxed because trust backends live in
        /// other crates and this hook must not depend on them.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What a pull by tag should fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// No trust data involved: fetch the tag and take what the registry serves.
    Unverified,
    /// Fetch exactly this manifest digest (the tag's signed target).
    Pinned(Digest),
}

/// The hook between the registry client and content trust.
#[async_trait::async_trait]
pub trait TrustPolicy: Send + Sync {
    /// Called before pulling `image` by tag (never for pulls by digest).
    /// `registry` is the authenticated client for the image's host, for trust
    /// data served by the registry itself (`/v2/<gun>/_trust/tuf/…`).
    async fn resolve(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
    ) -> Result<Resolution, TrustError>;

    /// Called after `image` was pushed with manifest `digest` of `size` bytes
    /// and media type `media_type`. An error makes the push fail.
    async fn after_push(
        &self,
        registry: &RegistryClient,
        image: &ImageRef,
        digest: &Digest,
        size: u64,
        media_type: &str,
    ) -> Result<(), TrustError>;
}

/// Content trust off: tags are taken as served, pushes are not signed.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTrust;

#[async_trait::async_trait]
impl TrustPolicy for NoTrust {
    async fn resolve(
        &self,
        _registry: &RegistryClient,
        _image: &ImageRef,
    ) -> Result<Resolution, TrustError> {
        Ok(Resolution::Unverified)
    }

    async fn after_push(
        &self,
        _registry: &RegistryClient,
        _image: &ImageRef,
        _digest: &Digest,
        _size: u64,
        _media_type: &str,
    ) -> Result<(), TrustError> {
        Ok(())
    }
}

pub mod admin;
pub mod inspect;
pub mod notary;
pub mod pinning;
/// Docker content trust through the registry's Notary endpoints.
pub use notary::NotaryTrust;
