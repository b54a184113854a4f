//! Parsing `/v2/…` paths from the right into typed routes.
//!
//! Repository names contain `/`, so the suffix (`/blobs/<d>`,
//! `/blobs/uploads/<id>`, `/manifests/<ref>`, `/tags/list`,
//! `/referrers/<d>`, `/_trust/…`) decides the route and whatever precedes it
//! is the name, checked by [`RepoName::parse`]. The raw (still
//! percent-encoded) path is used, so `%2e%2e` is just an invalid name.

use bay_signer::names::Gun;
use oci_types::{Digest, Reference, RepoName};
use uuid::Uuid;

use crate::error::ApiError;

/// A parsed registry route.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags(RepoName),
    /// `/v2/<name>/manifests/<reference>`
    Manifest(RepoName, Reference),
    /// `/v2/<name>/blobs/<digest>`
    Blob(RepoName, Digest),
    /// `/v2/<name>/blobs/uploads/`
    UploadStart(RepoName),
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload(RepoName, Uuid),
    /// `/v2/<name>/referrers/<digest>`
    Referrers(RepoName, Digest),
    /// `/v2/<gun>/_trust/<rest…>` (Notary v1 API): the GUN as sent, the
    /// repository it maps to, and the path after `_trust/`.
    Trust {
        /// The GUN (includes the registry host, e.g. `127.0.0.1:5000/team/app`).
        gun: Gun,
        /// The repository name the GUN maps to (ACLs and scopes use it).
        repo: RepoName,
        /// The rest of the path (`tuf/root.json`, `changefeed`, ...).
        rest: String,
    },
    /// `/v2/_trust/changefeed` (changes of every GUN).
    TrustChangefeed,
    /// `/v2/<gun>/_trust/…` whose GUN maps to no repository name.
    TrustInvalidGun(String),
}

impl Route {
    /// The repository this route acts on, if any.
    pub fn repository(&self) -> Option<&RepoName> {
        match self {
            Route::Base | Route::Catalog | Route::TrustChangefeed | Route::TrustInvalidGun(_) => {
                None
            }
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::UploadStart(n)
            | Route::Upload(n, _)
            | Route::Referrers(n, _)
            | Route::Trust { repo: n, .. } => Some(n),
        }
    }
}

fn name(segs: &[&str]) -> Result<RepoName, ApiError> {
    Ok(RepoName::parse(&segs.join("/"))?)
}

/// A GUN and the repository it names: a leading `host[:port]/` component
/// (one containing `.` or `:`, or `localhost`) is dropped, as docker
/// normalizes names.
fn trust_route(gun: &str, rest: String) -> Route {
    match (Gun::new(gun), gun_repository(gun)) {
        (Ok(g), Some(repo)) => Route::Trust { gun: g, repo, rest },
        _ => Route::TrustInvalidGun(gun.to_owned()),
    }
}

/// The repository a GUN (or a token scope name, which for trust requests is
/// the GUN) names: `127.0.0.1:5000/team/app` → `team/app`, `team/app` →
/// `team/app`; `None` when the rest is not a valid repository name.
pub fn gun_repository(gun: &str) -> Option<RepoName> {
    let repo = match gun.split_once('/') {
        Some((host, repo)) if host.contains(['.', ':']) || host == "localhost" => repo,
        _ => gun,
    };
    RepoName::parse(repo).ok()
}

/// Parse a request path. `None` means no such endpoint.
pub fn parse(path: &str) -> Result<Option<Route>, ApiError> {
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Ok((path == "/v2").then_some(Route::Base));
    };
    if rest.is_empty() {
        return Ok(Some(Route::Base));
    }
    if rest == "_catalog" {
        return Ok(Some(Route::Catalog));
    }
    if rest == "_trust/changefeed" {
        return Ok(Some(Route::TrustChangefeed));
    }
    let segs: Vec<&str> = rest.split('/').collect();
    if let Some(i) = segs.iter().position(|s| *s == "_trust")
        && i > 0
    {
        return Ok(Some(trust_route(
            &segs[..i].join("/"),
            segs[i + 1..].join("/"),
        )));
    }
    let n = segs.len();
    if n < 3 {
        return Ok(None);
    }
    let (last, prev) = (segs[n - 1], segs[n - 2]);
    if n >= 4 && segs[n - 3] == "blobs" && prev == "uploads" {
        let who = name(&segs[..n - 3])?;
        if last.is_empty() {
            return Ok(Some(Route::UploadStart(who)));
        }
        return Ok(Some(match Uuid::parse_str(last) {
            Ok(id) if id.hyphenated().to_string() == last => Route::Upload(who, id),
            _ => return Err(ApiError::upload_unknown()),
        }));
    }
    Ok(Some(match prev {
        "blobs" if last == "uploads" => Route::UploadStart(name(&segs[..n - 2])?),
        "blobs" => Route::Blob(name(&segs[..n - 2])?, Digest::parse(last)?),
        "manifests" => Route::Manifest(name(&segs[..n - 2])?, Reference::parse(last)?),
        "tags" if last == "list" => Route::Tags(name(&segs[..n - 2])?),
        "referrers" => Route::Referrers(name(&segs[..n - 2])?, Digest::parse(last)?),
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn ok(p: &str) -> Route {
        parse(p).unwrap().unwrap()
    }

    fn code(p: &str) -> Code {
        parse(p).unwrap_err().code
    }

    #[test]
    fn routes_parse_from_the_right() {
        assert_eq!(ok("/v2/"), Route::Base);
        assert_eq!(ok("/v2/_catalog"), Route::Catalog);
        let n = RepoName::parse("a/blobs").unwrap();
        assert!(matches!(ok("/v2/a/blobs/manifests/latest"), Route::Manifest(ref x, _) if *x == n));
        assert!(matches!(
            ok(&format!("/v2/team/app/blobs/{D}")),
            Route::Blob(..)
        ));
        assert!(matches!(
            ok("/v2/team/app/blobs/uploads/"),
            Route::UploadStart(..)
        ));
        assert!(matches!(
            ok("/v2/team/app/blobs/uploads/8d1f7b9e-25b5-4a8e-9b8e-2c9d5e4f0a11"),
            Route::Upload(..)
        ));
        assert!(matches!(ok("/v2/x/tags/list"), Route::Tags(..)));
        assert!(matches!(
            ok(&format!("/v2/x/referrers/{D}")),
            Route::Referrers(..)
        ));
        assert!(
            matches!(ok("/v2/example.com/x/_trust/tuf/root.json"), Route::Trust { ref repo, ref rest, .. } if rest == "tuf/root.json" && repo.as_str() == "x")
        );
        assert!(
            matches!(ok("/v2/127.0.0.1:5000/team/app/_trust/tuf/"), Route::Trust { ref gun, ref repo, .. } if gun.as_str() == "127.0.0.1:5000/team/app" && repo.as_str() == "team/app")
        );
        assert!(
            matches!(ok("/v2/localhost/a/_trust/changefeed"), Route::Trust { ref repo, .. } if repo.as_str() == "a")
        );
        assert!(
            matches!(ok("/v2/team/app/_trust/tuf/root.json"), Route::Trust { ref repo, .. } if repo.as_str() == "team/app")
        );
        assert_eq!(ok("/v2/_trust/changefeed"), Route::TrustChangefeed);
        assert!(matches!(
            ok("/v2/reg:5000/UPPER/_trust/tuf/root.json"),
            Route::TrustInvalidGun(_)
        ));
        assert!(matches!(
            ok("/v2/reg:5000/_trust/tuf/root.json"),
            Route::TrustInvalidGun(_)
        ));
        assert!(parse("/v2/x/unknown/thing").unwrap().is_none());
        assert!(parse("/other").unwrap().is_none());
    }

    #[test]
    fn bad_input_gets_spec_codes() {
        assert_eq!(code("/v2/UPPER/manifests/latest"), Code::NameInvalid);
        assert_eq!(code("/v2/a/../b/manifests/latest"), Code::NameInvalid);
        assert_eq!(
            code("/v2/%2e%2e/%2e%2e/etc/manifests/latest"),
            Code::NameInvalid
        );
        assert_eq!(code("/v2/a//b/tags/list"), Code::NameInvalid);
        assert_eq!(
            code(&format!("/v2/{}/tags/list", "a".repeat(256))),
            Code::NameInvalid
        );
        assert_eq!(code("/v2/a/blobs/sha256:xyz"), Code::DigestInvalid);
        assert_eq!(
            code("/v2/a/manifests/sha256:totallywrong"),
            Code::DigestInvalid
        );
        assert_eq!(code("/v2/a/manifests/-bad"), Code::ManifestInvalid);
        assert_eq!(
            code("/v2/a/blobs/uploads/not-a-uuid"),
            Code::BlobUploadUnknown
        );
        assert_eq!(code("/v2/a/referrers/md5:abc"), Code::DigestInvalid);
    }
}
