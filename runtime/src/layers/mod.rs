//! The content-addressed layer store.
//!
//! A layer blob (a tar, plain or gzip-compressed) is unpacked **once** into
//! `layers/<alg>/<hex>/fs`, named by the digest it was verified against while
//! streaming. Unpacking happens in a private temporary directory that is
//! renamed into place only after the digest matched, so a layer directory
//! that exists is always complete and verified. OCI whiteouts become
//! overlayfs whiteouts, so the directories stack directly as `lowerdir`s.
//! See [`unpack`] for what a layer may and may not contain.

mod unpack;

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use oci_types::Digest;
use serde::{Deserialize, Serialize};

use crate::fsutil::PathRefusal;
use crate::layout::Layout;

pub use unpack::{Compression, UnpackStats};

/// One unpacked, verified layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The digest the blob was verified against (the manifest's layer digest).
    pub digest: Digest,
    /// The sha256 digest of the uncompressed tar (the image config's diff_id).
    pub diff_id: Digest,
    /// Compression of the blob.
    pub compression: Compression,
    /// Size of the blob in bytes.
    pub blob_size: u64,
    /// Number of tar entries unpacked.
    pub entries: u64,
    /// The unpacked files (an overlayfs lowerdir). Not serialized.
    #[serde(skip)]
    pub path: PathBuf,
}

/// Errors of the layer store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// A filesystem operation on the store failed.
    #[error("layer store: {op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading the (possibly compressed) tar stream failed.
    #[error("reading layer {digest}")]
    Read {
        /// The layer.
        digest: Digest,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The blob's digest is not the expected one; nothing was kept.
    #[error("layer digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the caller asked for.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// The blob is compressed with something we cannot read.
    #[error("layer {digest}: unsupported compression {kind}")]
    UnsupportedCompression {
        /// The layer.
        digest: Digest,
        /// What we detected.
        kind: &'static str,
    },
    /// An entry's path would escape the layer.
    #[error("layer entry {path:?} refused: {reason}")]
    UnsafePath {
        /// The raw entry path.
        path: String,
        /// Why.
        reason: PathRefusal,
    },
    /// An entry's parent (or a hard link's target) resolves outside the
    /// layer, through a symlink or otherwise.
    #[error("layer entry {path} refused: it resolves outside the layer")]
    Escape {
        /// The entry path.
        path: String,
    },
    /// A hard link's target is not inside the layer.
    #[error("layer entry {path} refused: hard link target {target:?} {reason}")]
    HardLinkOutside {
        /// The entry path.
        path: String,
        /// The raw link target.
        target: String,
        /// Why.
        reason: PathRefusal,
    },
    /// Device nodes are not allowed in image layers.
    #[error("layer entry {path} refused: device nodes are not allowed in image layers")]
    DeviceNode {
        /// The entry path.
        path: String,
    },
    /// An entry type we do not unpack (e.g. GNU sparse files).
    #[error("layer entry {path} has unsupported type {kind}")]
    UnsupportedEntry {
        /// The entry path.
        path: String,
        /// The tar type byte.
        kind: u8,
    },
    /// A kernel call on an entry failed.
    #[error("layer entry {path}: {op} failed")]
    Entry {
        /// The entry path.
        path: String,
        /// The failing operation.
        op: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The layer's metadata file is unreadable.
    #[error("layer metadata {path}")]
    Meta {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The layer store under a runtime root.
#[derive(Debug)]
pub struct LayerStore {
    layout: Layout,
}

static NONCE: AtomicU64 = AtomicU64::new(0);

fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LayerError {
    let path = path.into();
    move |source| LayerError::Io { op, path, source }
}

impl LayerStore {
    /// Opens (creating if needed) the layer store of `layout`.
    pub fn open(layout: Layout) -> Result<Self, LayerError> {
        let tmp = layout.layers_dir().join("tmp");
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        Ok(Self { layout })
    }

    /// The layer unpacked from `digest`, if present.
    pub fn get(&self, digest: &Digest) -> Result<Option<Layer>, LayerError> {
        let meta = self.layout.layer_meta(digest);
        let bytes = match fs::read(&meta) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &meta)(e)),
        };
        let mut layer: Layer = serde_json::from_slice(&bytes)
            .map_err(|source| LayerError::Meta { path: meta, source })?;
        layer.path = self.layout.layer_fs(digest);
        Ok(Some(layer))
    }

    /// Unpacks the blob read from `blob`, verifying that it hashes to
    /// `digest`. Returns the existing layer without reading if it is already
    /// present. On any error nothing is left in the store.
    pub fn unpack(&self, digest: &Digest, blob: impl Read) -> Result<Layer, LayerError> {
        if let Some(layer) = self.get(digest)? {
            return Ok(layer);
        }
        let tmp = self
            .layout
            .layer_tmp(digest, NONCE.fetch_add(1, Ordering::Relaxed));
        let fs_dir = tmp.join("fs");
        fs::create_dir_all(&fs_dir).map_err(io_err("create", &fs_dir))?;
        let result = unpack::unpack(digest, blob, &fs_dir);
        let stats = match result {
            Ok(stats) => stats,
            Err(e) => {
                remove_tree(&tmp);
                return Err(e);
            }
        };
        let layer = Layer {
            digest: digest.clone(),
            diff_id: stats.diff_id.clone(),
            compression: stats.compression,
            blob_size: stats.blob_size,
            entries: stats.entries,
            path: self.layout.layer_fs(digest),
        };
        let meta = serde_json::to_vec_pretty(&layer).map_err(|source| LayerError::Meta {
            path: tmp.join("layer.json"),
            source,
        })?;
        fs::write(tmp.join("layer.json"), meta).map_err(io_err("write", tmp.join("layer.json")))?;
        let dest = self.layout.layer_dir(digest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        match fs::rename(&tmp, &dest) {
            Ok(()) => {}
            // Someone else unpacked the same layer meanwhile: theirs wins.
            Err(e) if dest.join("layer.json").exists() => {
                tracing::debug!(%digest, error = %e, "layer unpacked concurrently");
                remove_tree(&tmp);
            }
            Err(e) => {
                remove_tree(&tmp);
                return Err(io_err("rename", &dest)(e));
            }
        }
        tracing::info!(%digest, diff_id = %layer.diff_id, entries = layer.entries, "layer unpacked");
        Ok(layer)
    }

    /// The digests of every unpacked layer.
    pub fn list(&self) -> Result<Vec<Digest>, LayerError> {
        let mut out = Vec::new();
        let dir = self.layout.layers_dir();
        for alg in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let alg = alg.map_err(io_err("list", &dir))?;
            let name = alg.file_name();
            let Some(alg_name) = name.to_str() else {
                continue;
            };
            if alg_name == "tmp" {
                continue;
            }
            for layer in fs::read_dir(alg.path()).map_err(io_err("list", alg.path()))? {
                let layer = layer.map_err(io_err("list", alg.path()))?;
                if let Some(hex) = layer.file_name().to_str()
                    && let Ok(d) = Digest::parse(&format!("{alg_name}:{hex}"))
                {
                    out.push(d);
                }
            }
        }
        out.sort_by_key(|d| d.to_string());
        Ok(out)
    }

    /// Removes an unpacked layer (the caller makes sure no container uses it).
    pub fn remove(&self, digest: &Digest) -> Result<(), LayerError> {
        let dir = self.layout.layer_dir(digest);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &dir)(e)),
        }
    }
}

fn remove_tree(path: &std::path::Path) {
    if let Err(e) = fs::remove_dir_all(path) {
        tracing::warn!(path = %path.display(), error = %e, "could not remove temporary layer dir");
    }
}

#[cfg(test)]
mod tests;
