//! `save` and `load`: docker-archive and OCI image-layout tarballs.
//!
//! **docker-archive** (`bay save`, the default) is written the way docker 25+
//! writes it, which is at once a docker-archive and an OCI layout: layers as
//! *uncompressed* tars (their digest is the config's `diff_id`, which is what
//! `manifest.json` readers such as `docker load` and `skopeo` expect), the
//! config, an OCI manifest for those layers, `index.json`, `oci-layout`,
//! `manifest.json` and `repositories`.
//!
//! **OCI layout** (`--format oci`) holds the stored blobs unchanged, so the
//! manifest digest survives the round trip.
//!
//! `load` reads both (and old docker-archives with `<id>/layer.tar` and
//! symlinked duplicate layers). Members are located in one pass over the tar
//! and then read by offset, so nothing is extracted to disk first; every blob
//! is digest-checked on its way into the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use oci_types::{Algorithm, Digest, MediaType};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::image::{AnyManifest, Descriptor, ImageConfig, Manifest, OCI_LAYER_TAR, Platform};
use crate::reference::ImageRef;
use crate::store::{ImageStore, StoreError};

/// Archive failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Reading or writing the archive failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What we tried.
        op: &'static str,
        /// The archive or member.
        path: PathBuf,
        /// OS error.
        #[source]
        source: io::Error,
    },
    /// The tar lacks `manifest.json` and `index.json`.
    #[error("{path} is neither a docker-archive (manifest.json) nor an OCI layout (index.json)")]
    UnknownFormat {
        /// The archive.
        path: PathBuf,
    },
    /// A member named by the archive's metadata is missing.
    #[error("the archive has no member {member}")]
    MissingMember {
        /// The member path.
        member: String,
    },
    /// Metadata JSON is malformed.
    #[error("{member} in the archive is not valid: {source}")]
    BadJson {
        /// The member path.
        member: String,
        /// Decoder error.
        #[source]
        source: serde_json::Error,
    },
    /// A layer does not match the config's diff_id.
    #[error(
        "layer {index} of {config} does not match its diff_id: expected {expected}, got {actual}"
    )]
    DiffIdMismatch {
        /// The config member.
        config: String,
        /// Layer index.
        index: usize,
        /// diff_id from the config.
        expected: Digest,
        /// What the layer hashed to.
        actual: Digest,
    },
    /// The number of layers and diff_ids differ.
    #[error("{config} lists {diff_ids} diff_ids but the archive has {layers} layers")]
    LayerCount {
        /// The config member.
        config: String,
        /// Count of diff_ids.
        diff_ids: usize,
        /// Count of layers.
        layers: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A document failed to decode.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
}

/// Which archive `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveFormat {
    /// docker-archive (also a valid OCI layout, with uncompressed layers).
    #[default]
    Docker,
    /// OCI image layout with the stored blobs unchanged.
    Oci,
}

#[derive(Debug, Serialize, Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn io_at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ArchiveError + 'a {
    move |source| ArchiveError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

struct TarOut<W: Write> {
    b: tar::Builder<W>,
    written: BTreeSet<String>,
    out: PathBuf,
}

impl<W: Write> TarOut<W> {
    fn add_bytes(&mut self, name: &str, data: &[u8]) -> Result<(), ArchiveError> {
        self.add_reader(name, data.len() as u64, data)
    }

    fn add_reader(&mut self, name: &str, size: u64, r: impl Read) -> Result<(), ArchiveError> {
        if !self.written.insert(name.to_owned()) {
            return Ok(());
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(name).map_err(io_at("write", &self.out))?;
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        self.b.append(&h, r).map_err(io_at("write", &self.out))
    }

    fn add_dir(&mut self, name: &str) -> Result<(), ArchiveError> {
        if !self.written.insert(name.to_owned()) {
            return Ok(());
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(name).map_err(io_at("write", &self.out))?;
        h.set_size(0);
        h.set_mode(0o755);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_cksum();
        self.b
            .append(&h, io::empty())
            .map_err(io_at("write", &self.out))
    }
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// Writes `names` (image references or IDs) from `store` as one archive to `out`.
pub fn save<W: Write>(
    store: &ImageStore,
    names: &[String],
    format: SaveFormat,
    out: W,
    out_name: &Path,
) -> Result<(), ArchiveError> {
    let ix = store.read_index()?;
    // Resolve everything before writing a byte, so a typo leaves no half archive.
    let mut images: Vec<(Digest, Vec<String>)> = Vec::new();
    for n in names {
        let id = ix.lookup(n).map_err(StoreError::from)?;
        let tag = ImageRef::parse(n)
            .ok()
            .filter(|r| r.digest().is_none())
            .map(|r| r.normalized())
            .filter(|t| ix.tags_of(&id).contains(t));
        match images.iter_mut().find(|(i, _)| *i == id) {
            Some((_, tags)) => tags.extend(tag),
            None => images.push((id, tag.into_iter().collect())),
        }
    }
    let mut t = TarOut {
        b: tar::Builder::new(out),
        written: BTreeSet::new(),
        out: out_name.to_owned(),
    };
    t.add_dir("blobs")?;
    t.add_dir("blobs/sha256")?;
    let mut index_entries = Vec::new();
    let mut docker_entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let tmp = store.layout().tmp();
    let mut layer_sizes: HashMap<String, u64> = HashMap::new();
    for (id, tags) in &images {
        let rec = ix.record(id).map_err(StoreError::from)?;
        let manifest = store.manifest_of(rec)?;
        let (config, config_raw) = store.config_of(id)?;
        t.add_bytes(&blob_name(id), &config_raw)?;
        let manifest_desc = match format {
            SaveFormat::Oci => {
                for l in &manifest.layers {
                    let size = store.blob_size(&l.digest)?;
                    t.add_reader(&blob_name(&l.digest), size, store.open_blob(&l.digest)?)?;
                }
                if rec.manifest_media_type == MediaType::OCI_MANIFEST {
                    let mbytes = store.read_blob(&rec.manifest)?;
                    t.add_bytes(&blob_name(&rec.manifest), &mbytes)?;
                    Descriptor::new(
                        rec.manifest_media_type.clone(),
                        rec.manifest.clone(),
                        mbytes.len() as u64,
                    )
                } else {
                    // OCI-layout readers (skopeo, containerd) only follow OCI media
                    // types, so a Docker schema-2 manifest is converted, as
                    // `skopeo copy` does; its digest changes with it.
                    let m = to_oci(&manifest);
                    let mbytes = to_json(&m)?;
                    let md = Digest::sha256_of(&mbytes);
                    t.add_bytes(&blob_name(&md), &mbytes)?;
                    Descriptor::new(MediaType::OCI_MANIFEST, md, mbytes.len() as u64)
                }
            }
            SaveFormat::Docker => {
                if config.rootfs.diff_ids.len() != manifest.layers.len() {
                    return Err(ArchiveError::LayerCount {
                        config: id.to_string(),
                        diff_ids: config.rootfs.diff_ids.len(),
                        layers: manifest.layers.len(),
                    });
                }
                let mut layers = Vec::new();
                for (i, (l, diff_id)) in manifest
                    .layers
                    .iter()
                    .zip(&config.rootfs.diff_ids)
                    .enumerate()
                {
                    let name = blob_name(diff_id);
                    let size = match layer_sizes.get(&name) {
                        Some(s) => *s,
                        None => {
                            let (size, file) = uncompressed_layer(store, l, &tmp)?;
                            // Verify while we copy: a hashing reader over the plain tar.
                            let mut hashing = HashingReader {
                                inner: BufReader::new(file),
                                hasher: diff_id.algorithm().hasher(),
                            };
                            t.add_reader(&name, size, &mut hashing)?;
                            let actual = hashing.hasher.finish();
                            if &actual != diff_id {
                                return Err(ArchiveError::DiffIdMismatch {
                                    config: id.to_string(),
                                    index: i,
                                    expected: diff_id.clone(),
                                    actual,
                                });
                            }
                            layer_sizes.insert(name, size);
                            size
                        }
                    };
                    layers.push(Descriptor::new(OCI_LAYER_TAR, diff_id.clone(), size));
                }
                let m = Manifest {
                    schema_version: 2,
                    media_type: Some(MediaType::OCI_MANIFEST.to_owned()),
                    config: Descriptor::new(
                        MediaType::OCI_CONFIG,
                        id.clone(),
                        config_raw.len() as u64,
                    ),
                    layers,
                    annotations: None,
                };
                let mbytes = serde_json::to_vec(&m).map_err(|source| ArchiveError::BadJson {
                    member: "manifest".into(),
                    source,
                })?;
                let md = Digest::sha256_of(&mbytes);
                t.add_bytes(&blob_name(&md), &mbytes)?;
                docker_entries.push(DockerManifestEntry {
                    config: blob_name(id),
                    repo_tags: Some(tags.clone()),
                    layers: config.rootfs.diff_ids.iter().map(blob_name).collect(),
                });
                for tag in tags {
                    if let Some((repo, tg)) = tag.rsplit_once(':') {
                        let top = config
                            .rootfs
                            .diff_ids
                            .last()
                            .map(|d| d.hex().to_owned())
                            .unwrap_or_default();
                        repositories
                            .entry(repo.to_owned())
                            .or_default()
                            .insert(tg.to_owned(), top);
                    }
                }
                Descriptor::new(MediaType::OCI_MANIFEST, md, mbytes.len() as u64)
            }
        };
        if tags.is_empty() {
            index_entries.push(manifest_desc.clone());
        }
        for tag in tags {
            let mut d = manifest_desc.clone();
            let short = tag.rsplit_once(':').map_or(tag.as_str(), |(_, t)| t);
            d.annotations = Some(BTreeMap::from([
                ("io.containerd.image.name".to_owned(), tag.clone()),
                (
                    "org.opencontainers.image.ref.name".to_owned(),
                    short.to_owned(),
                ),
            ]));
            index_entries.push(d);
        }
    }
    let index =
        json!({"schemaVersion": 2, "mediaType": MediaType::OCI_INDEX, "manifests": index_entries});
    t.add_bytes("index.json", &to_json(&index)?)?;
    t.add_bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if format == SaveFormat::Docker {
        t.add_bytes("manifest.json", &to_json(&docker_entries)?)?;
        if !repositories.is_empty() {
            t.add_bytes("repositories", &to_json(&repositories)?)?;
        }
    }
    let mut w = t.b.into_inner().map_err(io_at("write", out_name))?;
    w.flush().map_err(io_at("write", out_name))?;
    Ok(())
}

/// The OCI twin of a Docker schema-2 manifest (same blobs, OCI media types).
fn to_oci(m: &Manifest) -> Manifest {
    let map = |mt: &str| -> String {
        match mt {
            MediaType::DOCKER_CONFIG => MediaType::OCI_CONFIG,
            MediaType::DOCKER_LAYER_GZIP => MediaType::OCI_LAYER_GZIP,
            crate::image::DOCKER_LAYER_TAR => OCI_LAYER_TAR,
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            }
            other => other,
        }
        .to_owned()
    };
    let mut out = m.clone();
    out.media_type = Some(MediaType::OCI_MANIFEST.to_owned());
    out.config.media_type = map(&m.config.media_type);
    for l in &mut out.layers {
        l.media_type = map(&l.media_type);
    }
    out
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec(v).map_err(|source| ArchiveError::BadJson {
        member: "archive metadata".into(),
        source,
    })
}

struct HashingReader<R> {
    inner: R,
    hasher: oci_types::Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// An uncompressed copy of a layer: the blob itself when it is a plain tar,
/// else a decompressed temp file (deleted when dropped).
fn uncompressed_layer(
    store: &ImageStore,
    l: &Descriptor,
    tmp: &Path,
) -> Result<(u64, File), ArchiveError> {
    let mut f = store.open_blob(&l.digest)?;
    let mut magic = [0u8; 2];
    let n = f
        .read(&mut magic)
        .map_err(io_at("read", &store.layout().blob(&l.digest)))?;
    f.seek(SeekFrom::Start(0))
        .map_err(io_at("seek", &store.layout().blob(&l.digest)))?;
    if n < 2 || magic != [0x1f, 0x8b] {
        let size = store.blob_size(&l.digest)?;
        return Ok((size, f));
    }
    let mut out = tempfile::tempfile_in(tmp).map_err(io_at("create a temp file in", tmp))?;
    let size = io::copy(&mut GzDecoder::new(BufReader::new(f)), &mut out)
        .map_err(io_at("decompress", &store.layout().blob(&l.digest)))?;
    out.seek(SeekFrom::Start(0)).map_err(io_at("seek", tmp))?;
    Ok((size, out))
}

/// Where each member of an archive sits.
struct Members {
    file: PathBuf,
    regular: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl Members {
    fn scan(path: &Path) -> Result<Self, ArchiveError> {
        let f = File::open(path).map_err(io_at("open", path))?;
        let mut a = tar::Archive::new(BufReader::new(f));
        let mut regular = HashMap::new();
        let mut links = HashMap::new();
        for e in a.entries().map_err(io_at("read", path))? {
            let e = e.map_err(io_at("read", path))?;
            let name = clean(&e.path().map_err(io_at("read", path))?.to_string_lossy());
            match e.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    regular.insert(name, (e.raw_file_position(), e.size()));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Ok(Some(target)) = e.link_name() {
                        let target = target.to_string_lossy().into_owned();
                        let resolved = if e.header().entry_type() == tar::EntryType::Symlink {
                            let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                            clean(&format!("{dir}/{target}"))
                        } else {
                            clean(&target)
                        };
                        links.insert(name, resolved);
                    }
                }
                _ => {}
            }
        }
        Ok(Members {
            file: path.to_owned(),
            regular,
            links,
        })
    }

    fn locate(&self, name: &str) -> Option<(u64, u64)> {
        let mut n = clean(name);
        for _ in 0..16 {
            if let Some(x) = self.regular.get(&n) {
                return Some(*x);
            }
            n = self.links.get(&n)?.clone();
        }
        None
    }

    fn open(&self, name: &str) -> Result<(io::Take<BufReader<File>>, u64), ArchiveError> {
        let (off, size) = self
            .locate(name)
            .ok_or_else(|| ArchiveError::MissingMember {
                member: name.to_owned(),
            })?;
        let mut f = File::open(&self.file).map_err(io_at("open", &self.file))?;
        f.seek(SeekFrom::Start(off))
            .map_err(io_at("seek", &self.file))?;
        Ok((BufReader::with_capacity(1 << 20, f).take(size), size))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, ArchiveError> {
        let (mut r, size) = self.open(name)?;
        let mut v = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        r.read_to_end(&mut v).map_err(io_at("read", &self.file))?;
        Ok(v)
    }

    fn has(&self, name: &str) -> bool {
        self.locate(name).is_some()
    }
}

/// What `load` brought in: `Loaded image: x` or `Loaded image ID: sha256:…` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// A tagged image.
    Tagged(String),
    /// An untagged image.
    Id(Digest),
}

/// Copies a member into the store, verifying it against `expected` when given.
fn copy_member(
    store: &ImageStore,
    m: &Members,
    name: &str,
    expected: Option<&Digest>,
) -> Result<(Digest, u64), ArchiveError> {
    if let Some(d) = expected
        && store.has_blob(d)
    {
        return Ok((d.clone(), store.blob_size(d)?));
    }
    let (mut r, _) = m.open(name)?;
    let alg = expected.map_or(Algorithm::Sha256, Digest::algorithm);
    let mut w = store.blob_writer(alg)?;
    io::copy(&mut r, &mut w).map_err(io_at("read", &m.file))?;
    Ok(w.commit(expected)?)
}

/// Loads a docker-archive or OCI-layout tar at `path` into `store`.
pub fn load(store: &ImageStore, path: &Path) -> Result<Vec<Loaded>, ArchiveError> {
    let m = Members::scan(path)?;
    let _lease = store.lease()?;
    if m.has("manifest.json") {
        load_docker(store, &m)
    } else if m.has("index.json") {
        load_oci(store, &m)
    } else {
        Err(ArchiveError::UnknownFormat {
            path: path.to_owned(),
        })
    }
}

fn load_docker(store: &ImageStore, m: &Members) -> Result<Vec<Loaded>, ArchiveError> {
    let raw = m.read("manifest.json")?;
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&raw).map_err(|source| ArchiveError::BadJson {
            member: "manifest.json".into(),
            source,
        })?;
    let mut out = Vec::new();
    for e in entries {
        let config_raw = m.read(&e.config)?;
        let config = ImageConfig::parse(&config_raw)?;
        let config_digest = store.put_blob(None, &config_raw)?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(ArchiveError::LayerCount {
                config: e.config.clone(),
                diff_ids: config.rootfs.diff_ids.len(),
                layers: e.layers.len(),
            });
        }
        let mut layers = Vec::new();
        for (i, (lp, diff_id)) in e.layers.iter().zip(&config.rootfs.diff_ids).enumerate() {
            let (mut head, _) = m.open(lp)?;
            let mut magic = [0u8; 2];
            let n = head.read(&mut magic).map_err(io_at("read", &m.file))?;
            if n == 2 && magic == [0x1f, 0x8b] {
                // A compressed layer: keep it compressed (its digest is its own).
                let (d, size) = copy_member(store, m, lp, None)?;
                layers.push(Descriptor::new(MediaType::OCI_LAYER_GZIP, d, size));
            } else {
                let (d, size) = copy_member(store, m, lp, None)?;
                if &d != diff_id {
                    return Err(ArchiveError::DiffIdMismatch {
                        config: e.config.clone(),
                        index: i,
                        expected: diff_id.clone(),
                        actual: d,
                    });
                }
                layers.push(Descriptor::new(OCI_LAYER_TAR, d, size));
            }
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MediaType::OCI_MANIFEST.to_owned()),
            config: Descriptor::new(
                MediaType::OCI_CONFIG,
                config_digest.clone(),
                config_raw.len() as u64,
            ),
            layers,
            annotations: None,
        };
        let mbytes = serde_json::to_vec(&manifest).map_err(|source| ArchiveError::BadJson {
            member: "manifest".into(),
            source,
        })?;
        let md = store.put_blob(None, &mbytes)?;
        let rec = store.make_record(&md, MediaType::OCI_MANIFEST, &manifest)?;
        let tags: Vec<ImageRef> = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .filter_map(|t| ImageRef::parse(t).ok())
            .collect();
        commit(store, rec, &tags, &mut out)?;
    }
    Ok(out)
}

fn commit(
    store: &ImageStore,
    rec: crate::store::ImageRecord,
    tags: &[ImageRef],
    out: &mut Vec<Loaded>,
) -> Result<(), ArchiveError> {
    let id = rec.id.clone();
    store.update(|ix| {
        ImageStore::insert_record(ix, rec);
        for t in tags {
            if let Some(tag) = t.tag_or_default() {
                ix.set_tag(&t.repository(), tag.as_str(), &id);
            }
        }
        Ok::<_, StoreError>(())
    })?;
    if tags.is_empty() {
        out.push(Loaded::Id(id));
    } else {
        out.extend(tags.iter().map(|t| Loaded::Tagged(t.normalized())));
    }
    Ok(())
}

fn load_oci(store: &ImageStore, m: &Members) -> Result<Vec<Loaded>, ArchiveError> {
    let raw = m.read("index.json")?;
    let index = match AnyManifest::parse(Some(MediaType::OCI_INDEX), &raw)? {
        AnyManifest::Index(i) => i,
        AnyManifest::Image(_) => {
            return Err(ArchiveError::MissingMember {
                member: "index.json manifests".into(),
            });
        }
    };
    let mut out = Vec::new();
    for desc in &index.manifests {
        let mut d = desc.clone();
        // Nested indexes: follow the host platform.
        for _ in 0..4 {
            let bytes = m.read(&blob_name(&d.digest))?;
            let actual = Digest::of(d.digest.algorithm(), &bytes);
            if actual != d.digest {
                return Err(StoreError::DigestMismatch {
                    expected: d.digest.clone(),
                    actual,
                }
                .into());
            }
            match AnyManifest::parse(Some(&d.media_type), &bytes)? {
                AnyManifest::Index(i) => {
                    let next = i.select(&Platform::host())?.clone();
                    d = Descriptor {
                        annotations: desc.annotations.clone(),
                        ..next
                    };
                }
                AnyManifest::Image(man) => {
                    copy_member(
                        store,
                        m,
                        &blob_name(&man.config.digest),
                        Some(&man.config.digest),
                    )?;
                    for l in &man.layers {
                        copy_member(store, m, &blob_name(&l.digest), Some(&l.digest))?;
                    }
                    store.put_blob(Some(&d.digest), &bytes)?;
                    let mt = crate::image::manifest_media_type(
                        Some(&d.media_type),
                        &AnyManifest::Image(man.clone()),
                    );
                    let rec = store.make_record(&d.digest, &mt, &man)?;
                    let ann = desc.annotations.clone().unwrap_or_default();
                    let name = ann
                        .get("io.containerd.image.name")
                        .or_else(|| {
                            ann.get("org.opencontainers.image.ref.name")
                                .filter(|n| n.contains('/') || n.contains(':'))
                        })
                        .and_then(|n| ImageRef::parse(n).ok());
                    commit(store, rec, name.as_slice(), &mut out)?;
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{ImportOptions, import};

    fn tarball() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in [("a.txt", &b"alpha"[..]), ("dir/b.txt", &b"beta"[..])] {
            let mut h = tar::Header::new_ustar();
            h.set_path(name).unwrap();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, body).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn save_then_load_round_trips_in_both_formats() {
        let src = tempfile::tempdir().unwrap();
        let store = ImageStore::open(src.path()).unwrap();
        let r = ImageRef::parse("team/app:1").unwrap();
        let id = import(
            &store,
            &tarball()[..],
            "t.tar",
            Some(&r),
            &ImportOptions::default(),
        )
        .unwrap();
        let rec = store.read_index().unwrap().images[&id].clone();
        for format in [SaveFormat::Docker, SaveFormat::Oci] {
            let out = src.path().join(format!("{format:?}.tar"));
            save(
                &store,
                &["team/app:1".to_owned()],
                format,
                File::create(&out).unwrap(),
                &out,
            )
            .unwrap();
            let dst = tempfile::tempdir().unwrap();
            let fresh = ImageStore::open(dst.path()).unwrap();
            let loaded = load(&fresh, &out).unwrap();
            assert_eq!(loaded, vec![Loaded::Tagged("team/app:1".to_owned())]);
            let ix = fresh.read_index().unwrap();
            assert_eq!(
                ix.lookup("team/app:1").unwrap(),
                id,
                "{format:?}: same image ID"
            );
            let got = &ix.images[&id];
            if format == SaveFormat::Oci {
                assert_eq!(
                    got.manifest, rec.manifest,
                    "OCI layout keeps the manifest digest"
                );
            }
            // The layer content survived (uncompressed in docker-archive, gzip in OCI).
            let m = fresh.manifest_of(got).unwrap();
            let mut plain = Vec::new();
            let f = fresh.open_blob(&m.layers[0].digest).unwrap();
            if m.layers[0].media_type.ends_with("gzip") {
                GzDecoder::new(f).read_to_end(&mut plain).unwrap();
            } else {
                BufReader::new(f).read_to_end(&mut plain).unwrap();
            }
            assert_eq!(plain, tarball());
        }
    }

    #[test]
    fn unknown_archives_and_missing_members_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let p = dir.path().join("x.tar");
        std::fs::write(&p, tarball()).unwrap();
        assert!(matches!(
            load(&store, &p),
            Err(ArchiveError::UnknownFormat { .. })
        ));
        let mut b = tar::Builder::new(Vec::new());
        let body = br#"[{"Config":"nope.json","RepoTags":["a:1"],"Layers":[]}]"#;
        let mut h = tar::Header::new_ustar();
        h.set_path("manifest.json").unwrap();
        h.set_size(body.len() as u64);
        h.set_cksum();
        b.append(&h, &body[..]).unwrap();
        std::fs::write(&p, b.into_inner().unwrap()).unwrap();
        assert!(matches!(
            load(&store, &p),
            Err(ArchiveError::MissingMember { .. })
        ));
    }
}
