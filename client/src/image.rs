//! The JSON documents of an image: manifests, indexes and configs.
//!
//! We deliberately model only the fields bay reads and keep every document's
//! exact bytes in the blob store: digests are over bytes, so nothing here is
//! ever re-serialised on the way to a registry. (oci-spec's builder types
//! would force a conversion between its `Digest` and ours at every field and
//! gain us nothing, since we never edit a manifest we did not create.)

use std::collections::BTreeMap;

use oci_types::{Digest, MediaType};
use serde::{Deserialize, Serialize};

/// OCI media type of an uncompressed layer tar.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Docker media type of an uncompressed layer tar (docker-archive).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Every manifest type bay accepts, for `Accept` headers.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Errors decoding image documents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The bytes are not the JSON document we expected.
    #[error("{what} is not valid JSON: {source}")]
    Json {
        /// Which document.
        what: &'static str,
        /// Decoder error.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest's media type is not one bay handles.
    #[error("unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType {
        /// The media type found.
        media_type: String,
    },
    /// No manifest in an index matches the wanted platform.
    #[error("no image for platform {wanted} (available: {available})")]
    NoMatchingPlatform {
        /// The platform asked for.
        wanted: String,
        /// What the index offers.
        available: String,
    },
    /// A `--platform` value is malformed.
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    InvalidPlatform(String),
}

/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Platform (index entries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Foreign-layer URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

impl Descriptor {
    /// A descriptor without platform, annotations or urls.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            platform: None,
            annotations: None,
            urls: None,
        }
    }
}

/// An OS/architecture pair (plus variant).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    /// CPU architecture (GOARCH spelling: amd64, arm64, …).
    pub architecture: String,
    /// Operating system (GOOS spelling).
    pub os: String,
    /// Architecture variant (v7, v8, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on, in GOARCH/GOOS spelling.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = match architecture {
            "arm64" => Some("v8".to_owned()),
            _ => None,
        };
        Platform {
            architecture: architecture.to_owned(),
            os: std::env::consts::OS.to_owned(),
            variant,
        }
    }

    /// Parses `os/arch[/variant]` as given to `--platform`.
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok =
            |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: Some((*v).to_owned()),
            }),
            _ => Err(ImageError::InvalidPlatform(s.to_owned())),
        }
    }

    /// Whether an index entry for `other` can run here. A missing variant matches any.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && match (&self.variant, &other.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (OCI or Docker schema 2; same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest media type (optional in OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index / Docker manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The index media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests it lists.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageIndex {
    /// Picks the manifest for `wanted`, as docker does (first match wins).
    pub fn select(&self, wanted: &Platform) -> Result<&Descriptor, ImageError> {
        self.manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| wanted.matches(p)))
            .ok_or_else(|| ImageError::NoMatchingPlatform {
                wanted: wanted.to_string(),
                available: self
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// A decoded manifest document of either kind.
#[derive(Debug, Clone)]
pub enum AnyManifest {
    /// A single-platform image manifest.
    Image(Manifest),
    /// A multi-platform index.
    Index(ImageIndex),
}

impl AnyManifest {
    /// Decodes `bytes` using the transport media type when given, else the body's `mediaType`.
    pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Self, ImageError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
            what: "manifest",
            source,
        })?;
        let mt = content_type
            .and_then(MediaType::parse)
            .or_else(|| probe.media_type.as_deref().and_then(MediaType::parse));
        let is_index = match mt {
            Some(m) => m.is_index(),
            // OCI allows omitting mediaType: an index is recognised by `manifests`.
            None => probe.manifests.is_some(),
        };
        if is_index {
            serde_json::from_slice(bytes)
                .map(AnyManifest::Index)
                .map_err(|source| ImageError::Json {
                    what: "image index",
                    source,
                })
        } else {
            serde_json::from_slice(bytes)
                .map(AnyManifest::Image)
                .map_err(|source| ImageError::Json {
                    what: "image manifest",
                    source,
                })
        }
    }
}

/// The media type a manifest should be sent with.
pub fn manifest_media_type(content_type: Option<&str>, m: &AnyManifest) -> String {
    if let Some(mt) = content_type.and_then(MediaType::parse) {
        return mt.as_str().to_owned();
    }
    match m {
        AnyManifest::Image(x) => x
            .media_type
            .clone()
            .unwrap_or_else(|| MediaType::OCI_MANIFEST.to_owned()),
        AnyManifest::Index(x) => x
            .media_type
            .clone()
            .unwrap_or_else(|| MediaType::OCI_INDEX.to_owned()),
    }
}

/// One entry of a config's `history`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct History {
    /// When the step ran (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Free-form comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// True when the step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The `rootfs` section of a config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Digests of the uncompressed layer tars, base first.
    pub diff_ids: Vec<Digest>,
}

/// The fields of an image config bay reads; the raw JSON is kept alongside.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// Architecture variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The runtime config (docker's capitalised keys: Env, Cmd, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// Layer diff ids.
    pub rootfs: RootFs,
    /// Build history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

impl ImageConfig {
    /// Decodes a config blob.
    pub fn parse(bytes: &[u8]) -> Result<Self, ImageError> {
        serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
            what: "image config",
            source,
        })
    }

    /// The creation time, if present and valid.
    pub fn created_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.created
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_selects_host_platform_and_reports_choices() {
        let d1 = Digest::sha256_of(b"a");
        let d2 = Digest::sha256_of(b"b");
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d1}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d2}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let AnyManifest::Index(i) = AnyManifest::parse(None, idx.as_bytes()).unwrap() else {
            panic!("not an index")
        };
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(i.select(&amd).unwrap().digest, d2);
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(i.select(&arm).unwrap().digest, d1);
        let err = i
            .select(&Platform::parse("linux/s390x").unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("linux/arm64/v8"), "{err}");
    }

    #[test]
    fn platform_parse_rejects_garbage() {
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/v1/x").is_err());
        assert!(Platform::parse("linux/../x").is_err());
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().variant.as_deref(),
            Some("v7")
        );
    }
}
