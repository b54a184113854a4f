//! Blob storage: content-addressed bytes behind `object_store`, and staged
//! uploads that become visible only after their digest is verified.
//!
//! Staging is always a local file (appended chunk by chunk, hashed while
//! streaming, no second pass). Committing moves it into the object store:
//! with the local-filesystem backend that is one atomic `rename`, so a crash
//! at any moment leaves either no blob or the whole verified blob. Other
//! backends (S3) receive the staged file with a multipart upload, which their
//! API also makes visible atomically.

pub mod layout;
mod uploads;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::local::LocalFileSystem;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore};
use oci_types::Digest;

pub use uploads::{Upload, UploadError, Uploads};

/// Errors from blob storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The object store failed.
    #[error("object store failed for {path}")]
    ObjectStore {
        /// Object path.
        path: String,
        /// Cause.
        #[source]
        source: object_store::Error,
    },
    /// Local file I/O failed.
    #[error("i/o failed on {path}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl StorageError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A readable blob body.
pub type BlobStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Read buffer for streaming local blobs: large enough that per-chunk
/// overhead vanishes next to the copy itself.
const READ_CHUNK: usize = 512 * 1024;

/// Content-addressed blob store.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Set when the object store is the local filesystem rooted at the data
    /// root, so staged files can be renamed into place.
    local_root: Option<PathBuf>,
}

impl BlobStore {
    /// The embedded default: the local filesystem under `root`.
    pub fn local(root: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(root.join("blobs")).map_err(|e| StorageError::io(root, e))?;
        let fs =
            LocalFileSystem::new_with_prefix(root).map_err(|source| StorageError::ObjectStore {
                path: root.display().to_string(),
                source,
            })?;
        Ok(BlobStore {
            store: Arc::new(fs),
            local_root: Some(root.to_owned()),
        })
    }

    /// Any other object store (S3, in-memory). Staged uploads are copied in.
    pub fn remote(store: Arc<dyn ObjectStore>) -> Self {
        BlobStore {
            store,
            local_root: None,
        }
    }

    /// Open a blob, optionally a byte range of it.
    pub async fn open(
        &self,
        digest: &Digest,
        range: Option<Range<u64>>,
    ) -> Result<BlobStream, StorageError> {
        let path = layout::blob_path(digest);
        let opts = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..Default::default()
        };
        let res =
            self.store
                .get_opts(&path, opts)
                .await
                .map_err(|source| StorageError::ObjectStore {
                    path: path.to_string(),
                    source,
                })?;
        match res.payload {
            GetResultPayload::File(file, fpath) => {
                let range = res.range;
                Ok(local_stream(file, fpath, range))
            }
            GetResultPayload::Stream(s) => Ok(s.map(|r| r.map_err(std::io::Error::other)).boxed()),
        }
    }

    /// Move a verified staged file into place as `digest`.
    pub async fn commit(&self, staged: &Path, digest: &Digest) -> Result<(), StorageError> {
        let dest = layout::blob_path(digest);
        if let Some(root) = &self.local_root {
            // Same filesystem: the rename is atomic, so readers see no blob or
            // the whole blob. A concurrent identical commit just replaces
            // identical bytes.
            let target = root.join(dest.as_ref());
            let staged_err = staged.to_owned();
            let staged = staged.to_owned();
            tokio::task::spawn_blocking(move || -> Result<(), StorageError> {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| StorageError::io(parent, e))?;
                }
                std::fs::rename(&staged, &target).map_err(|e| StorageError::io(&staged, e))
            })
            .await
            .map_err(|e| StorageError::io(&staged_err, std::io::Error::other(e)))??;
            return Ok(());
        }
        // Remote backends: stream the staged file as a multipart upload,
        // which the object store makes visible only when it completes.
        let oserr = |source| StorageError::ObjectStore {
            path: dest.to_string(),
            source,
        };
        let upload = self.store.put_multipart(&dest).await.map_err(oserr)?;
        let mut writer = object_store::WriteMultipart::new(upload);
        let mut file = tokio::fs::File::open(staged)
            .await
            .map_err(|e| StorageError::io(staged, e))?;
        let mut buf = vec![0u8; 8 * 1024 * 1024];
        loop {
            use tokio::io::AsyncReadExt;
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| StorageError::io(staged, e))?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await.map_err(oserr)?;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(oserr)?;
        tokio::fs::remove_file(staged)
            .await
            .map_err(|e| StorageError::io(staged, e))
    }

    /// Whether the bytes of `digest` are present.
    pub async fn exists(&self, digest: &Digest) -> Result<bool, StorageError> {
        let path = layout::blob_path(digest);
        match self.store.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(StorageError::ObjectStore {
                path: path.to_string(),
                source,
            }),
        }
    }

    /// Move a blob's bytes aside (first step of deleting them). Returns
    /// whether there was anything to move.
    pub async fn trash(&self, digest: &Digest) -> Result<bool, StorageError> {
        self.rename(&layout::blob_path(digest), &layout::trash_path(digest))
            .await
    }

    /// Put trashed bytes back unless the blob was re-committed meanwhile.
    pub async fn restore(&self, digest: &Digest) -> Result<(), StorageError> {
        if self.exists(digest).await? {
            return self.purge(digest).await;
        }
        self.rename(&layout::trash_path(digest), &layout::blob_path(digest))
            .await?;
        Ok(())
    }

    /// Delete trashed bytes for good.
    pub async fn purge(&self, digest: &Digest) -> Result<(), StorageError> {
        let path = layout::trash_path(digest);
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(StorageError::ObjectStore {
                path: path.to_string(),
                source,
            }),
        }
    }

    async fn rename(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
    ) -> Result<bool, StorageError> {
        match self.store.rename(from, to).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(StorageError::ObjectStore {
                path: from.to_string(),
                source,
            }),
        }
    }

    /// Every stored blob: (digest, size, last modified), for finding bytes
    /// that no metadata row refers to.
    pub async fn list(
        &self,
    ) -> Result<Vec<(Digest, u64, chrono::DateTime<chrono::Utc>)>, StorageError> {
        use futures::TryStreamExt;
        let prefix = object_store::path::Path::from("blobs");
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| StorageError::ObjectStore {
                path: prefix.to_string(),
                source,
            })?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let parts: Vec<&str> = m.location.as_ref().split('/').collect();
                let [_, alg, _, hex] = parts.as_slice() else {
                    return None;
                };
                Digest::parse(&format!("{alg}:{hex}"))
                    .ok()
                    .map(|d| (d, m.size, m.last_modified))
            })
            .collect())
    }

    /// Remove a blob's bytes (garbage collection).
    pub async fn delete(&self, digest: &Digest) -> Result<(), StorageError> {
        let path = layout::blob_path(digest);
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(StorageError::ObjectStore {
                path: path.to_string(),
                source,
            }),
        }
    }
}

/// Stream a local file range with large reads (object_store's own stream
/// reads 8 KiB at a time, which caps pull throughput).
fn local_stream(file: std::fs::File, path: PathBuf, range: Range<u64>) -> BlobStream {
    use std::io::{Read, Seek, SeekFrom};
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        if let Err(e) = file.seek(SeekFrom::Start(range.start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut remaining = range.end.saturating_sub(range.start);
        while remaining > 0 {
            let want = remaining.min(READ_CHUNK as u64) as usize;
            let mut buf = vec![0u8; want];
            let mut filled = 0;
            while filled < want {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            if filled == 0 {
                let _ = tx.blocking_send(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{} ended early", path.display()),
                )));
                return;
            }
            buf.truncate(filled);
            remaining -= filled as u64;
            if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                return; // client went away
            }
        }
    });
    tokio_stream_from(rx)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> BlobStream {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
