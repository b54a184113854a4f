//! The only place that builds paths inside the data root.
//!
//! ```text
//! <data-root>/
//! └── image/
//!     ├── blobs/<alg>/<hex>        content-addressed blobs (manifests, configs, layers)
//!     ├── partial/<alg>-<hex>      interrupted downloads, resumed with Range requests
//!     ├── uploads/<key>.json       interrupted chunked uploads (registry upload URL + offset)
//!     ├── tmp/                     in-flight writes, renamed into blobs/ when verified
//!     ├── index.json               repositories, tags and image records (atomic rename)
//!     ├── index.lock               exclusive flock around read-modify-write of index.json
//!     └── gc.lock                  shared by writers of new blobs, exclusive for sweeping
//! ```

use std::path::{Path, PathBuf};

use oci_types::Digest;

/// Paths of one data root.
#[derive(Debug, Clone)]
pub struct Layout {
    base: PathBuf,
}

impl Layout {
    /// The layout under `data_root`.
    pub fn new(data_root: &Path) -> Self {
        Layout {
            base: data_root.join("image"),
        }
    }

    /// The `image/` directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Directory of all blobs.
    pub fn blobs_dir(&self) -> PathBuf {
        self.base.join("blobs")
    }

    /// Where a verified blob lives.
    pub fn blob(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.algorithm().as_str()).join(d.hex())
    }

    /// Where an interrupted download of `d` is kept.
    pub fn partial(&self, d: &Digest) -> PathBuf {
        self.base
            .join("partial")
            .join(format!("{}-{}", d.algorithm(), d.hex()))
    }

    /// Directory for resumable upload records.
    pub fn uploads_dir(&self) -> PathBuf {
        self.base.join("uploads")
    }

    /// Scratch directory for in-flight writes (same filesystem as blobs, so rename is atomic).
    pub fn tmp(&self) -> PathBuf {
        self.base.join("tmp")
    }

    /// The index file.
    pub fn index(&self) -> PathBuf {
        self.base.join("index.json")
    }

    /// The index lock file.
    pub fn index_lock(&self) -> PathBuf {
        self.base.join("index.lock")
    }

    /// The blob-sweep lock file.
    pub fn gc_lock(&self) -> PathBuf {
        self.base.join("gc.lock")
    }
}
