//! Manifest media types the registry understands.

/// The manifest media types bay stores and serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `application/vnd.oci.image.manifest.v1+json`
    OciManifest,
    /// `application/vnd.oci.image.index.v1+json`
    OciIndex,
    /// `application/vnd.docker.distribution.manifest.v2+json`
    DockerManifest,
    /// `application/vnd.docker.distribution.manifest.list.v2+json`
    DockerManifestList,
}

impl MediaType {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &'static str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &'static str = "application/vnd.oci.image.index.v1+json";
    /// Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &'static str =
        "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &'static str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// OCI image config.
    pub const OCI_CONFIG: &'static str = "application/vnd.oci.image.config.v1+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &'static str = "application/vnd.docker.container.image.v1+json";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &'static str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &'static str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// Parse a media type string, ignoring parameters such as `; charset=utf-8`.
    pub fn parse(s: &str) -> Option<Self> {
        let base = s.split(';').next().unwrap_or("").trim();
        match base {
            Self::OCI_MANIFEST => Some(MediaType::OciManifest),
            Self::OCI_INDEX => Some(MediaType::OciIndex),
            Self::DOCKER_MANIFEST => Some(MediaType::DockerManifest),
            Self::DOCKER_MANIFEST_LIST => Some(MediaType::DockerManifestList),
            _ => None,
        }
    }

    /// The canonical string.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::OciManifest => Self::OCI_MANIFEST,
            MediaType::OciIndex => Self::OCI_INDEX,
            MediaType::DockerManifest => Self::DOCKER_MANIFEST,
            MediaType::DockerManifestList => Self::DOCKER_MANIFEST_LIST,
        }
    }

    /// Whether this is an index / manifest list (its children are manifests).
    pub fn is_index(self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerManifestList)
    }
}
