//! The only place that maps registry objects to storage paths.
//!
//! ```text
//! <root>/
//! ├── registry.db                 metadata (SQLite, embedded default)
//! ├── blobs/<alg>/<hex[0..2]>/<hex>   content-addressed blob bytes (object store)
//! ├── trash/<alg>/<hex>           blobs being garbage-collected (object store)
//! └── uploads/<uuid>              staged upload data, appended in place
//! ```
//!
//! Blob paths are built from a validated [`Digest`] only (lowercase hex of a
//! fixed length), and upload paths from a [`Uuid`], so no client-controlled
//! string ever becomes a path component.

use std::path::{Path, PathBuf};

use object_store::path::Path as ObjectPath;
use oci_types::Digest;
use uuid::Uuid;

/// Object-store path of a blob.
pub fn blob_path(d: &Digest) -> ObjectPath {
    ObjectPath::from(format!(
        "blobs/{}/{}/{}",
        d.algorithm(),
        &d.hex()[..2],
        d.hex()
    ))
}

/// Object-store path where garbage collection parks a blob before deleting it.
pub fn trash_path(d: &Digest) -> ObjectPath {
    ObjectPath::from(format!("trash/{}/{}", d.algorithm(), d.hex()))
}

/// Object-store path of an upload's staging file, for backends whose
/// staging area is inside the object store's root (local filesystem).
pub fn upload_object_path(id: &Uuid) -> ObjectPath {
    ObjectPath::from(format!("uploads/{id}"))
}

/// Directory holding staged uploads.
pub fn uploads_dir(root: &Path) -> PathBuf {
    root.join("uploads")
}

/// Local file of an upload's staged data.
pub fn upload_file(root: &Path, id: &Uuid) -> PathBuf {
    uploads_dir(root).join(id.to_string())
}

/// The SQLite database file.
pub fn database_file(root: &Path) -> PathBuf {
    root.join("registry.db")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_are_sharded() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            blob_path(&d).as_ref(),
            "blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
