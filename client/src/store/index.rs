//! The small local index: repositories and tags, image records, and which
//! registry repositories are known to hold each blob (for cross-repo mounts).
//!
//! It is one JSON document, rewritten whole (temp file + rename) under the
//! store's exclusive lock; see [`super::ImageStore::update`].

use std::collections::{BTreeMap, BTreeSet};

use oci_types::Digest;
use serde::{Deserialize, Serialize};

use crate::reference::ImageRef;

/// Current on-disk format version.
pub const INDEX_VERSION: u32 = 1;

/// One image: a config (whose digest is the image ID) and the manifest that lists its layers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// Image ID: the digest of the config blob.
    pub id: Digest,
    /// The image manifest stored for this image.
    pub manifest: Digest,
    /// Media type of that manifest.
    pub manifest_media_type: String,
    /// Bytes of the config and layer blobs.
    pub size: u64,
    /// The config's `created` time (RFC 3339).
    #[serde(default)]
    pub created: Option<String>,
    /// `repository@digest` under which a registry knows this image.
    #[serde(default)]
    pub repo_digests: BTreeSet<String>,
    /// When a tag was last pointed at this image.
    #[serde(default)]
    pub last_tag_time: Option<String>,
    /// Other manifests stored for the same config (digest → media type), e.g.
    /// the Docker and the OCI encoding of one image pulled from two places.
    /// Each repository gets back the manifest it gave us (see [`Self::manifest_for`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alternates: BTreeMap<Digest, String>,
}

impl ImageRecord {
    /// Every manifest of this image: the primary one first.
    pub fn all_manifests(&self) -> Vec<(Digest, String)> {
        let mut v = vec![(self.manifest.clone(), self.manifest_media_type.clone())];
        v.extend(
            self.alternates
                .iter()
                .filter(|(d, _)| **d != self.manifest)
                .map(|(d, m)| (d.clone(), m.clone())),
        );
        v
    }

    /// The manifest to push to `repository` (`host/path`): the one that
    /// repository already knows this image by, else the primary one.
    pub fn manifest_for(&self, repository: &str) -> (Digest, String) {
        let prefix = format!("{repository}@");
        let known: Vec<Digest> = self
            .repo_digests
            .iter()
            .filter_map(|rd| rd.strip_prefix(&prefix))
            .filter_map(|d| Digest::parse(d).ok())
            .collect();
        self.all_manifests()
            .into_iter()
            .find(|(d, _)| known.contains(d))
            .unwrap_or_else(|| (self.manifest.clone(), self.manifest_media_type.clone()))
    }
}

/// The whole index document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Index {
    /// Format version.
    pub version: u32,
    /// Images by ID.
    #[serde(default)]
    pub images: BTreeMap<Digest, ImageRecord>,
    /// repository → tag → image ID. A repository is `host/path` or a local `path`.
    #[serde(default)]
    pub repositories: BTreeMap<String, BTreeMap<String, Digest>>,
    /// blob digest → registry repositories (`host/path`) known to hold it.
    #[serde(default)]
    pub blob_repos: BTreeMap<Digest, BTreeSet<String>>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            version: INDEX_VERSION,
            images: BTreeMap::new(),
            repositories: BTreeMap::new(),
            blob_repos: BTreeMap::new(),
        }
    }
}

/// Why a user's image name did not resolve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// Nothing matches.
    #[error("No such image: {query}")]
    NoSuchImage {
        /// What the user typed (normalised when it parsed as a reference).
        query: String,
    },
    /// An ID prefix matches several images.
    #[error("short image ID {prefix} is ambiguous ({count} images match)")]
    Ambiguous {
        /// The prefix.
        prefix: String,
        /// How many images match.
        count: usize,
    },
}

impl Index {
    /// The record of `id`, or `NoSuchImage` (a tag left pointing at a removed
    /// image, say, after a hand-edited index).
    pub fn record(&self, id: &Digest) -> Result<&ImageRecord, LookupError> {
        self.images.get(id).ok_or_else(|| LookupError::NoSuchImage {
            query: id.to_string(),
        })
    }

    /// `repo:tag` strings pointing at `id`, sorted.
    pub fn tags_of(&self, id: &Digest) -> Vec<String> {
        let mut out = Vec::new();
        for (repo, tags) in &self.repositories {
            for (tag, target) in tags {
                if target == id {
                    out.push(format!("{repo}:{tag}"));
                }
            }
        }
        out
    }

    /// Points `repo:tag` at `id`; returns the image it pointed at before, if different.
    pub fn set_tag(&mut self, repo: &str, tag: &str, id: &Digest) -> Option<Digest> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        if let Some(rec) = self.images.get_mut(id) {
            rec.last_tag_time = Some(now);
        }
        let prev = self
            .repositories
            .entry(repo.to_owned())
            .or_default()
            .insert(tag.to_owned(), id.clone());
        prev.filter(|p| p != id)
    }

    /// Removes `repo:tag`; returns the image it pointed at.
    pub fn remove_tag(&mut self, repo: &str, tag: &str) -> Option<Digest> {
        let tags = self.repositories.get_mut(repo)?;
        let prev = tags.remove(tag);
        if tags.is_empty() {
            self.repositories.remove(repo);
        }
        prev
    }

    /// Records that `repository` (`host/path`) holds `blob`.
    pub fn note_blob_repo(&mut self, blob: &Digest, repository: &str) {
        self.blob_repos
            .entry(blob.clone())
            .or_default()
            .insert(repository.to_owned());
    }

    /// Registry repositories known to hold `blob`.
    pub fn repos_with_blob(&self, blob: &Digest) -> impl Iterator<Item = &str> {
        self.blob_repos
            .get(blob)
            .into_iter()
            .flat_map(|s| s.iter().map(String::as_str))
    }

    /// Resolves what a user typed: a reference (`name[:tag]`, `name@digest`) first,
    /// then a full or short image ID, as docker does.
    pub fn lookup(&self, query: &str) -> Result<Digest, LookupError> {
        let mut shown = query.to_owned();
        if let Ok(r) = ImageRef::parse(query) {
            shown = r.normalized();
            if let Some(d) = r.digest() {
                let wanted = format!("{}@{d}", r.repository());
                if let Some(rec) = self.images.values().find(|rec| {
                    rec.repo_digests.contains(&wanted)
                        || (&rec.manifest == d && !self.tags_of(&rec.id).is_empty())
                }) {
                    return Ok(rec.id.clone());
                }
            } else if let Some(tag) = r.tag_or_default()
                && let Some(id) = self
                    .repositories
                    .get(&r.repository())
                    .and_then(|t| t.get(tag.as_str()))
            {
                return Ok(id.clone());
            }
        }
        let hex = query.strip_prefix("sha256:").unwrap_or(query);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let matches: Vec<&Digest> = self
                .images
                .keys()
                .filter(|d| d.hex().starts_with(&hex))
                .collect();
            match matches.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                many => {
                    return Err(LookupError::Ambiguous {
                        prefix: hex,
                        count: many.len(),
                    });
                }
            }
        }
        Err(LookupError::NoSuchImage { query: shown })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &Digest) -> ImageRecord {
        ImageRecord {
            id: id.clone(),
            manifest: Digest::sha256_of(id.hex().as_bytes()),
            manifest_media_type: oci_types::MediaType::OCI_MANIFEST.to_owned(),
            size: 1,
            created: None,
            repo_digests: BTreeSet::new(),
            last_tag_time: None,
            alternates: BTreeMap::new(),
        }
    }

    #[test]
    fn lookup_by_tag_id_prefix_and_repo_digest() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let mut ix = Index::default();
        ix.images.insert(a.clone(), rec(&a));
        ix.images.insert(b.clone(), rec(&b));
        ix.set_tag("busybox", "latest", &a);
        ix.set_tag("localhost:5000/team/app", "v1", &b);
        assert_eq!(ix.lookup("busybox").unwrap(), a);
        assert_eq!(ix.lookup("busybox:latest").unwrap(), a);
        assert_eq!(ix.lookup("localhost:5000/team/app:v1").unwrap(), b);
        assert_eq!(ix.lookup(&a.hex()[..12]).unwrap(), a);
        assert_eq!(ix.lookup(&a.to_string()).unwrap(), a);
        assert!(matches!(
            ix.lookup("busybox:nope"),
            Err(LookupError::NoSuchImage { .. })
        ));
        let m = ix.images[&b].manifest.clone();
        ix.images
            .get_mut(&b)
            .unwrap()
            .repo_digests
            .insert(format!("localhost:5000/team/app@{m}"));
        assert_eq!(
            ix.lookup(&format!("localhost:5000/team/app@{m}")).unwrap(),
            b
        );
        let err = ix.lookup("busybox:nope").unwrap_err().to_string();
        assert_eq!(err, "No such image: busybox:nope");
    }

    #[test]
    fn retagging_reports_the_previous_image() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let mut ix = Index::default();
        assert_eq!(ix.set_tag("x", "1", &a), None);
        assert_eq!(ix.set_tag("x", "1", &a), None);
        assert_eq!(ix.set_tag("x", "1", &b), Some(a.clone()));
        assert_eq!(ix.remove_tag("x", "1"), Some(b));
        assert!(ix.repositories.is_empty());
    }

    #[test]
    fn index_json_round_trips() {
        let a = Digest::sha256_of(b"a");
        let mut ix = Index::default();
        ix.images.insert(a.clone(), rec(&a));
        ix.set_tag("x", "1", &a);
        ix.note_blob_repo(&a, "localhost:5000/x");
        let j = serde_json::to_vec(&ix).unwrap();
        let back: Index = serde_json::from_slice(&j).unwrap();
        assert_eq!(back, ix);
    }
}
