//! Upload sessions: a staged local file per upload, hashed while streaming.
//!
//! The acknowledged size of each upload lives in the metadata database and is
//! updated after the bytes are written, so after a crash the staged file may
//! be longer than acknowledged; it is truncated back when the session is next
//! touched, and its hash state is rebuilt from the file. The upload URL stays
//! stable for the whole life of the session.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use oci_types::{Algorithm, Digest, Hasher, RepoName};
use uuid::Uuid;

use super::layout;
use crate::meta::{Meta, MetaError, UploadRow};

/// Bytes gathered before one blocking hash-and-write step.
const WRITE_CHUNK: usize = 1024 * 1024;

/// Errors from upload staging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// No such session (or it expired).
    #[error("upload {0} is unknown")]
    Unknown(Uuid),
    /// The body would make the blob larger than allowed.
    #[error("blob would exceed the {limit}-byte limit")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The client's body stream failed (disconnect).
    #[error("request body ended early: {0}")]
    Body(String),
    /// Staging file I/O failed.
    #[error("staging i/o failed on {path}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Metadata failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// An open upload session, held locked while a request works on it.
#[derive(Debug)]
pub struct Upload {
    /// Session id.
    pub id: Uuid,
    /// Repository the upload belongs to.
    pub repo: RepoName,
    /// Acknowledged size.
    pub size: u64,
    algorithm: Algorithm,
    path: PathBuf,
    file: Option<std::fs::File>,
    hasher: Option<Hasher>,
    /// Set once the session is finished or cancelled.
    closed: bool,
}

impl Upload {
    /// The staged file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the session was finished or cancelled by another request.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Digest of the bytes so far under `algorithm`; re-reads the file only
    /// when the client asks for another algorithm than the session hashed.
    pub async fn digest(&self, algorithm: Algorithm) -> Result<Digest, UploadError> {
        if algorithm == self.algorithm
            && let Some(h) = &self.hasher
        {
            return Ok(h.clone().finish());
        }
        let path = self.path.clone();
        let size = self.size;
        let h = tokio::task::spawn_blocking(move || hash_file(&path, algorithm, size))
            .await
            .map_err(|e| UploadError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(e),
            })??;
        Ok(h.finish())
    }

    /// Append a body stream at the current end, hashing as it goes. On a
    /// client disconnect the bytes fully received are kept (the upload stays
    /// resumable from its reported range); on a limit error they are dropped.
    pub async fn append<S, E>(
        &mut self,
        meta: &Meta,
        body: S,
        limit: u64,
    ) -> Result<u64, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let start = self.size;
        let saved_hasher = self.hasher.clone();
        let result = self.append_inner(body, limit).await;
        match &result {
            Err(UploadError::TooLarge { .. }) | Err(UploadError::Io { .. }) => {
                self.truncate_to(start, saved_hasher).await?;
            }
            _ => {}
        }
        if self.size != start {
            meta.set_upload_size(self.id, self.size).await?;
        }
        result.map(|()| self.size)
    }

    async fn append_inner<S, E>(&mut self, mut body: S, limit: u64) -> Result<(), UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        // Network frames are kept as they arrive (no copy into a bigger
        // buffer) and handed to the blocking writer about 1 MiB at a time.
        let mut buf: Vec<Bytes> = Vec::new();
        let mut buffered = 0usize;
        let mut pending: Option<tokio::task::JoinHandle<WriteResult>> = None;
        let mut received = self.size;
        let mut body_err = None;
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    received += chunk.len() as u64;
                    if received > limit {
                        self.finish_pending(pending.take()).await?;
                        return Err(UploadError::TooLarge { limit });
                    }
                    buffered += chunk.len();
                    buf.push(chunk);
                    if buffered >= WRITE_CHUNK {
                        self.finish_pending(pending.take()).await?;
                        pending = Some(self.spawn_write(std::mem::take(&mut buf)));
                        buffered = 0;
                    }
                }
                Some(Err(e)) => {
                    body_err = Some(e.to_string());
                    break;
                }
                None => break,
            }
        }
        self.finish_pending(pending.take()).await?;
        if !buf.is_empty() {
            let h = self.spawn_write(buf);
            self.finish_pending(Some(h)).await?;
        }
        match body_err {
            Some(e) => Err(UploadError::Body(e)),
            None => Ok(()),
        }
    }

    fn spawn_write(&mut self, data: Vec<Bytes>) -> tokio::task::JoinHandle<WriteResult> {
        let file = self.file.take();
        let hasher = self.hasher.take();
        let algorithm = self.algorithm;
        tokio::task::spawn_blocking(move || {
            let mut hasher = hasher.unwrap_or_else(|| algorithm.hasher());
            let Some(mut file) = file else {
                return WriteResult {
                    file: None,
                    hasher,
                    written: 0,
                    error: Some(std::io::Error::other("staging file is not open")),
                };
            };
            let mut error = None;
            let mut written = 0u64;
            for chunk in &data {
                hasher.update(chunk);
                if let Err(e) = file.write_all(chunk) {
                    error = Some(e);
                    break;
                }
                written += chunk.len() as u64;
            }
            WriteResult {
                file: Some(file),
                hasher,
                written: if error.is_none() { written } else { 0 },
                error,
            }
        })
    }

    async fn finish_pending(
        &mut self,
        pending: Option<tokio::task::JoinHandle<WriteResult>>,
    ) -> Result<(), UploadError> {
        let Some(h) = pending else { return Ok(()) };
        let r = h.await.map_err(|e| UploadError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.file = r.file;
        self.hasher = Some(r.hasher);
        self.size += r.written;
        match r.error {
            Some(source) => Err(UploadError::Io {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    async fn truncate_to(&mut self, size: u64, hasher: Option<Hasher>) -> Result<(), UploadError> {
        let path = self.path.clone();
        let algorithm = self.algorithm;
        let (file, hasher) = tokio::task::spawn_blocking(move || {
            let file = open_truncated(&path, size)?;
            let hasher = match hasher {
                Some(h) => h,
                None => hash_file(&path, algorithm, size)?,
            };
            Ok::<_, UploadError>((file, hasher))
        })
        .await
        .map_err(|e| UploadError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })??;
        self.file = Some(file);
        self.hasher = Some(hasher);
        self.size = size;
        Ok(())
    }

    /// Flush staged data to disk (when `storage.sync` is on).
    pub async fn sync(&mut self) -> Result<(), UploadError> {
        if let Some(f) = &self.file {
            let f = f.try_clone().map_err(|source| UploadError::Io {
                path: self.path.clone(),
                source,
            })?;
            let path = self.path.clone();
            tokio::task::spawn_blocking(move || f.sync_data())
                .await
                .map_err(|e| UploadError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(e),
                })?
                .map_err(|source| UploadError::Io { path, source })?;
        }
        Ok(())
    }
}

struct WriteResult {
    file: Option<std::fs::File>,
    hasher: Hasher,
    written: u64,
    error: Option<std::io::Error>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> UploadError + '_ {
    move |source| UploadError::Io {
        path: path.to_owned(),
        source,
    }
}

fn open_truncated(path: &Path, size: u64) -> Result<std::fs::File, UploadError> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    f.set_len(size).map_err(io_err(path))?;
    f.seek(SeekFrom::Start(size)).map_err(io_err(path))?;
    Ok(f)
}

fn hash_file(path: &Path, algorithm: Algorithm, size: u64) -> Result<Hasher, UploadError> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut r = f.take(size);
    let mut h = algorithm.hasher();
    let mut buf = vec![0u8; WRITE_CHUNK];
    loop {
        let n = r.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h)
}

type Slot = Arc<tokio::sync::Mutex<Upload>>;

/// All upload sessions of this process: the live ones in memory, the rest
/// recoverable from the database.
#[derive(Clone)]
pub struct Uploads {
    root: PathBuf,
    meta: Meta,
    live: Arc<Mutex<HashMap<Uuid, Slot>>>,
}

impl Uploads {
    /// Manage uploads staged under `root/uploads`.
    pub fn new(root: &Path, meta: Meta) -> Result<Self, UploadError> {
        let dir = layout::uploads_dir(root);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Uploads {
            root: root.to_owned(),
            meta,
            live: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Start a new session.
    pub async fn create(&self, repo: &RepoName, algorithm: Algorithm) -> Result<Uuid, UploadError> {
        let id = Uuid::new_v4();
        let path = layout::upload_file(&self.root, &id);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.meta.create_upload(id, repo, algorithm).await?;
        let up = Upload {
            id,
            repo: repo.clone(),
            size: 0,
            algorithm,
            path,
            file: Some(file),
            hasher: Some(algorithm.hasher()),
            closed: false,
        };
        self.lock_map()
            .insert(id, Arc::new(tokio::sync::Mutex::new(up)));
        Ok(id)
    }

    fn lock_map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Slot>> {
        // A poisoned map only means another request panicked mid-insert;
        // the map itself is still consistent.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Get a session of `repo`, loading it from the database after a restart.
    pub async fn get(&self, repo: &RepoName, id: Uuid) -> Result<Slot, UploadError> {
        let existing = self.lock_map().get(&id).cloned();
        let slot = match existing {
            Some(s) => s,
            None => {
                let row = self
                    .meta
                    .upload(id)
                    .await?
                    .ok_or(UploadError::Unknown(id))?;
                let slot = self.recover(row).await?;
                self.lock_map().entry(id).or_insert(slot).clone()
            }
        };
        {
            let up = slot.lock().await;
            if up.closed || &up.repo != repo {
                return Err(UploadError::Unknown(id));
            }
        }
        Ok(slot)
    }

    async fn recover(&self, row: UploadRow) -> Result<Slot, UploadError> {
        let path = layout::upload_file(&self.root, &row.id);
        if !path.exists() {
            // The staged file was committed (or removed) just before a crash
            // that kept the session row: the session is over.
            self.meta.delete_upload(row.id).await?;
            return Err(UploadError::Unknown(row.id));
        }
        let (p, size, alg) = (path.clone(), row.size, row.algorithm);
        let (file, hasher) = tokio::task::spawn_blocking(move || {
            let file = open_truncated(&p, size)?;
            let hasher = hash_file(&p, alg, size)?;
            Ok::<_, UploadError>((file, hasher))
        })
        .await
        .map_err(|e| UploadError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })??;
        tracing::info!(upload = %row.id, size = row.size, "recovered upload session");
        Ok(Arc::new(tokio::sync::Mutex::new(Upload {
            id: row.id,
            repo: row.repository,
            size: row.size,
            algorithm: row.algorithm,
            path,
            file: Some(file),
            hasher: Some(hasher),
            closed: false,
        })))
    }

    /// Close a session whose staged file has been committed or discarded.
    pub async fn finish(&self, up: &mut Upload) -> Result<(), UploadError> {
        up.closed = true;
        up.file = None;
        self.lock_map().remove(&up.id);
        self.meta.delete_upload(up.id).await?;
        match std::fs::remove_file(&up.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&up.path)(e)),
        }
    }

    /// Remove sessions idle for longer than `ttl_secs`. Returns how many.
    pub async fn expire(&self, ttl_secs: u64) -> Result<usize, UploadError> {
        let before = chrono::Utc::now().timestamp() - ttl_secs as i64;
        let ids = self.meta.stale_uploads(before).await?;
        let mut n = 0;
        for id in ids {
            let slot = self.lock_map().get(&id).cloned();
            if let Some(slot) = slot {
                // Busy sessions are in use, hence not stale.
                if let Ok(mut up) = slot.try_lock() {
                    self.finish(&mut up).await?;
                    n += 1;
                }
            } else {
                self.meta.delete_upload(id).await?;
                let path = layout::upload_file(&self.root, &id);
                let _ = std::fs::remove_file(&path);
                n += 1;
            }
        }
        Ok(n)
    }
}
