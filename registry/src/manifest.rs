//! Parsing pushed manifests just far enough to index them: their media type,
//! the descriptors they reference, `subject`, `artifactType` and annotations.
//!
//! Structure is checked with `oci-spec`'s image-spec types; the bytes
//! themselves are stored and served untouched.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use oci_types::{Digest, MediaType};
use serde_json::Value;

use crate::meta::RefKind;

/// Why a manifest was rejected (answered as `MANIFEST_INVALID`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON at all.
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    /// Not a schema-2 manifest.
    #[error("manifest schemaVersion must be 2")]
    SchemaVersion,
    /// `mediaType` in the body disagrees with `Content-Type`.
    #[error("manifest mediaType {body:?} does not match Content-Type {header:?}")]
    MediaTypeMismatch {
        /// From the body.
        body: String,
        /// From the header.
        header: String,
    },
    /// Structure does not match the image-spec.
    #[error("manifest does not match the OCI image-spec: {0}")]
    Structure(String),
    /// A descriptor digest is not one we can store.
    #[error("descriptor digest is invalid: {0}")]
    Digest(String),
}

/// What the registry indexes about a manifest.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The media type to store and serve.
    pub media_type: String,
    /// `artifactType`, falling back to the config media type for images.
    pub artifact_type: Option<String>,
    /// The `subject` digest, if any.
    pub subject: Option<Digest>,
    /// Annotations as a JSON object string.
    pub annotations: Option<String>,
    /// Descriptors that must exist before this manifest is accepted.
    pub references: Vec<(Digest, RefKind)>,
}

fn digest_of(d: &Descriptor) -> Result<Digest, ManifestError> {
    let s = d.digest().to_string();
    Digest::parse(&s).map_err(|e| ManifestError::Digest(e.to_string()))
}

/// Parse `body` pushed with `content_type` (parameters ignored).
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Parsed, ManifestError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ManifestError::Structure("top level must be an object".into()))?;
    if obj.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(ManifestError::SchemaVersion);
    }
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|c| !c.is_empty());
    let body_type = obj
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let (Some(b), Some(h)) = (&body_type, &header)
        && b != h
    {
        return Err(ManifestError::MediaTypeMismatch {
            body: b.clone(),
            header: h.clone(),
        });
    }
    let declared = header.clone().or(body_type.clone());
    let is_index = match declared.as_deref().and_then(MediaType::parse) {
        Some(mt) => mt.is_index(),
        None => obj.contains_key("manifests") && !obj.contains_key("config"),
    };
    let annotations = |a: &Option<std::collections::HashMap<String, String>>| {
        a.as_ref()
            .filter(|m| !m.is_empty())
            .and_then(|m| serde_json::to_string(m).ok())
    };
    if is_index {
        let idx: ImageIndex = serde_json::from_value(value.clone())
            .map_err(|e| ManifestError::Structure(e.to_string()))?;
        let mut references = Vec::with_capacity(idx.manifests().len());
        for m in idx.manifests() {
            references.push((digest_of(m)?, RefKind::Manifest));
        }
        Ok(Parsed {
            media_type: declared.unwrap_or_else(|| MediaType::OCI_INDEX.to_owned()),
            artifact_type: idx.artifact_type().as_ref().map(ToString::to_string),
            subject: idx.subject().as_ref().map(digest_of).transpose()?,
            annotations: annotations(idx.annotations()),
            references,
        })
    } else {
        let m: ImageManifest = serde_json::from_value(value.clone())
            .map_err(|e| ManifestError::Structure(e.to_string()))?;
        let mut references = vec![(digest_of(m.config())?, RefKind::Blob)];
        for l in m.layers() {
            let d = digest_of(l)?;
            // Non-distributable layers (with `urls`) live elsewhere.
            if l.urls().as_ref().is_some_and(|u| !u.is_empty()) {
                continue;
            }
            references.push((d, RefKind::Blob));
        }
        references.dedup();
        let artifact_type = m
            .artifact_type()
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| Some(m.config().media_type().to_string()));
        Ok(Parsed {
            media_type: declared.unwrap_or_else(|| MediaType::OCI_MANIFEST.to_owned()),
            artifact_type,
            subject: m.subject().as_ref().map(digest_of).transpose()?,
            annotations: annotations(m.annotations()),
            references,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D}","size":0}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D}","size":0}}]{extra}}}"#
        )
    }

    #[test]
    fn image_manifest() {
        let p = parse(Some(MediaType::OCI_MANIFEST), image("").as_bytes()).unwrap();
        assert_eq!(p.media_type, MediaType::OCI_MANIFEST);
        assert_eq!(
            p.references.len(),
            1,
            "config and layer are the same digest"
        );
        assert_eq!(p.artifact_type.as_deref(), Some(MediaType::OCI_CONFIG));
        assert!(p.subject.is_none());
    }

    #[test]
    fn subject_and_artifact_type() {
        let body = image(&format!(
            r#","artifactType":"application/x-test","subject":{{"mediaType":"{}","digest":"{D}","size":1}},"annotations":{{"a":"b"}}"#,
            MediaType::OCI_MANIFEST
        ));
        let p = parse(None, body.as_bytes()).unwrap();
        assert_eq!(p.artifact_type.as_deref(), Some("application/x-test"));
        assert_eq!(p.subject.unwrap().to_string(), D);
        assert_eq!(p.annotations.as_deref(), Some(r#"{"a":"b"}"#));
    }

    #[test]
    fn rejects_bad_manifests() {
        assert!(matches!(parse(None, b"{nope"), Err(ManifestError::Json(_))));
        assert!(matches!(
            parse(None, br#"{"schemaVersion":1,"fsLayers":[]}"#),
            Err(ManifestError::SchemaVersion)
        ));
        assert!(matches!(
            parse(Some(MediaType::DOCKER_MANIFEST), image("").as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(parse(None, br#"{"schemaVersion":2,"config":{}}"#).is_err());
        assert!(parse(None, b"[]").is_err());
    }

    #[test]
    fn index_children_are_manifest_references() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{D}","size":3}}]}}"#,
            MediaType::OCI_INDEX,
            MediaType::OCI_MANIFEST
        );
        let p = parse(Some(MediaType::OCI_INDEX), body.as_bytes()).unwrap();
        assert_eq!(
            p.references,
            vec![(Digest::parse(D).unwrap(), RefKind::Manifest)]
        );
    }
}
