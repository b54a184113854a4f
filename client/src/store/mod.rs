//! The local image store: content-addressed blobs plus one small index.
//!
//! **Blobs** (manifests, configs, layers) live under `blobs/<alg>/<hex>` and are
//! shared by every image that lists them. A blob is written to a temporary file
//! on the same filesystem, hashed while it is written, fsynced, and renamed into
//! place only when its digest matches what was expected, so a reader never sees
//! a truncated or wrong blob and two processes writing the same blob are
//! harmless (both rename identical bytes).
//!
//! **The index** (`index.json`, see [`index`]) maps repositories and tags to image
//! IDs and holds the image records. Every change is a read-modify-write under an
//! exclusive `flock` on `index.lock`, and the new document replaces the old by
//! rename, so concurrent `bay` processes never lose each other's updates and a
//! crash leaves either the old or the new index.
//!
//! **Garbage.** Removing an image deletes blobs no remaining image refers to.
//! Processes that add blobs hold a shared [`Lease`] on `gc.lock` from their first
//! blob check until their index commit; the sweep only runs if it can take that
//! lock exclusively without waiting, and otherwise leaves the garbage for the
//! next removal, so a sweep never deletes a blob a concurrent pull is about to use.

pub mod index;
pub mod layout;

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_types::{Algorithm, Digest, Hasher};

use crate::image::{AnyManifest, ImageConfig, ImageError, Manifest};
pub use index::{ImageRecord, Index, LookupError};
pub use layout::Layout;

/// Errors from the local store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What we tried.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Taking a file lock failed.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: nix::Error,
    },
    /// The index file does not decode.
    #[error("the image index {path} is corrupt: {source}")]
    CorruptIndex {
        /// The index path.
        path: PathBuf,
        /// Decoder error.
        #[source]
        source: serde_json::Error,
    },
    /// Content did not hash to the expected digest.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the content should hash to.
        expected: Digest,
        /// What it hashed to.
        actual: Digest,
    },
    /// A blob an image needs is not in the store.
    #[error("blob {digest} is missing from the local store")]
    BlobMissing {
        /// The missing blob.
        digest: Digest,
    },
    /// A stored document does not decode.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The user's image name does not resolve.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// The removal needs `-f` or is impossible.
    #[error("conflict: unable to delete {short} {why}")]
    Conflict {
        /// Short image ID.
        short: String,
        /// Docker's explanation.
        why: String,
    },
    /// The image is an index, which bay does not store as an image.
    #[error("{digest} is an image index, not an image manifest")]
    NotAnImage {
        /// The manifest digest.
        digest: Digest,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Makes a rename into `dir` durable (the directory entry, not just the data).
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

/// Who uses an image (containers); the runtime implements this so `rmi` can refuse.
pub trait ImageUsers {
    /// Containers using the image `id`: `(container id, running)`.
    fn users_of(&self, id: &Digest) -> Vec<(String, bool)>;
}

/// No containers at all (until the runtime plugs in its own [`ImageUsers`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoContainers;

impl ImageUsers for NoContainers {
    fn users_of(&self, _id: &Digest) -> Vec<(String, bool)> {
        Vec::new()
    }
}

/// One line of `rmi`/`prune` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    /// A tag or repo digest was removed.
    Untagged(String),
    /// An image record was deleted.
    Deleted(Digest),
}

/// A shared lease that keeps the blob sweep away while new blobs are added.
#[derive(Debug)]
pub struct Lease {
    _lock: Flock<File>,
}

/// The local image store rooted at a data root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    layout: Layout,
}

impl ImageStore {
    /// Opens (creating directories as needed) the store under `data_root`.
    pub fn open(data_root: &Path) -> Result<Self, StoreError> {
        let layout = Layout::new(data_root);
        for d in [
            layout.blobs_dir().join("sha256"),
            layout.blobs_dir().join("sha512"),
            layout.tmp(),
            layout.base().join("partial"),
            layout.uploads_dir(),
        ] {
            fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        }
        Ok(ImageStore { layout })
    }

    /// The paths of this store.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether a verified blob is present.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.layout.blob(d).is_file()
    }

    /// The size of a present blob.
    pub fn blob_size(&self, d: &Digest) -> Result<u64, StoreError> {
        let p = self.layout.blob(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::BlobMissing { digest: d.clone() })
            }
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, StoreError> {
        let p = self.layout.blob(d);
        File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::BlobMissing { digest: d.clone() }
            } else {
                io_err("open", &p)(e)
            }
        })
    }

    /// Reads a (small) blob into memory.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut f = self.open_blob(d)?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(io_err("read", &self.layout.blob(d)))?;
        Ok(buf)
    }

    /// Stores bytes, verifying them against `expected` when given.
    pub fn put_blob(&self, expected: Option<&Digest>, bytes: &[u8]) -> Result<Digest, StoreError> {
        let alg = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let mut w = self.blob_writer(alg)?;
        w.write_all(bytes)
            .map_err(io_err("write", &self.layout.tmp()))?;
        Ok(w.commit(expected)?.0)
    }

    /// A writer that hashes into a temp file; [`BlobWriter::commit`] moves it into place.
    pub fn blob_writer(&self, alg: Algorithm) -> Result<BlobWriter, StoreError> {
        let tmp = tempfile::NamedTempFile::new_in(self.layout.tmp())
            .map_err(io_err("create a temp file in", &self.layout.tmp()))?;
        Ok(BlobWriter {
            store: self.clone(),
            out: io::BufWriter::with_capacity(1 << 20, tmp),
            hasher: alg.hasher(),
            size: 0,
        })
    }

    /// Opens (or creates) the partial download of `d`, returning it positioned at
    /// its end, its length, and a hasher already fed with the bytes it holds.
    ///
    /// The partial file is locked for the caller (a second process pulling the
    /// same layer waits here); `None` means the blob became complete meanwhile.
    pub fn open_partial(&self, d: &Digest) -> Result<Option<PartialBlob>, StoreError> {
        let path = self.layout.partial(d);
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let lock = self
            .lock_file(Path::new(&lock_path), FlockArg::LockExclusive)?
            .ok_or_else(|| StoreError::Lock {
                path: PathBuf::from(&lock_path),
                source: nix::errno::Errno::EWOULDBLOCK,
            })?;
        if self.has_blob(d) {
            return Ok(None);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        let mut hasher = d.algorithm().hasher();
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(io_err("read", &path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        file.seek(io::SeekFrom::End(0))
            .map_err(io_err("seek", &path))?;
        Ok(Some(PartialBlob {
            store: self.clone(),
            digest: d.clone(),
            path,
            file: io::BufWriter::with_capacity(1 << 20, file),
            hasher,
            len,
            _lock: lock,
        }))
    }

    /// Reads the index. Readers need no lock: the file is only ever replaced whole.
    pub fn read_index(&self) -> Result<Index, StoreError> {
        let p = self.layout.index();
        match fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::CorruptIndex { path: p, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(io_err("read", &p)(e)),
        }
    }

    fn lock_file(&self, path: &Path, arg: FlockArg) -> Result<Option<Flock<File>>, StoreError> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err("open", path))?;
        match Flock::lock(f, arg) {
            Ok(l) => Ok(Some(l)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) if arg == FlockArg::LockExclusiveNonblock => {
                Ok(None)
            }
            Err((_, source)) => Err(StoreError::Lock {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Runs `f` on the index under the exclusive lock and writes the result
    /// atomically if it changed. `f` must not block on other bay processes.
    pub fn update<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, E>,
    ) -> Result<T, E> {
        let lock_path = self.layout.index_lock();
        let _lock = self.lock_file(&lock_path, FlockArg::LockExclusive)?;
        let mut ix = self.read_index()?;
        let before = ix.clone();
        let out = f(&mut ix)?;
        if ix != before {
            self.write_index(&ix)?;
        }
        Ok(out)
    }

    fn write_index(&self, ix: &Index) -> Result<(), StoreError> {
        let base = self.layout.base();
        let mut tmp =
            tempfile::NamedTempFile::new_in(base).map_err(io_err("create a temp file in", base))?;
        let bytes = serde_json::to_vec_pretty(ix).map_err(|source| StoreError::CorruptIndex {
            path: self.layout.index(),
            source,
        })?;
        tmp.write_all(&bytes).map_err(io_err("write", tmp.path()))?;
        tmp.as_file()
            .sync_all()
            .map_err(io_err("sync", tmp.path()))?;
        let target = self.layout.index();
        tmp.persist(&target)
            .map_err(|e| io_err("rename into", &target)(e.error))?;
        sync_dir(base)
    }

    /// Takes the shared lease that keeps the sweep from deleting blobs being added.
    pub fn lease(&self) -> Result<Lease, StoreError> {
        let p = self.layout.gc_lock();
        match self.lock_file(&p, FlockArg::LockShared)? {
            Some(l) => Ok(Lease { _lock: l }),
            None => Err(StoreError::Lock {
                path: p,
                source: nix::errno::Errno::EWOULDBLOCK,
            }),
        }
    }

    /// Decodes the (primary) image manifest of a record.
    pub fn manifest_of(&self, rec: &ImageRecord) -> Result<Manifest, StoreError> {
        self.manifest_at(&rec.manifest, &rec.manifest_media_type)
    }

    /// Decodes the stored image manifest `digest`.
    pub fn manifest_at(&self, digest: &Digest, media_type: &str) -> Result<Manifest, StoreError> {
        let bytes = self.read_blob(digest)?;
        match AnyManifest::parse(Some(media_type), &bytes)? {
            AnyManifest::Image(m) => Ok(m),
            AnyManifest::Index(_) => Err(StoreError::NotAnImage {
                digest: digest.clone(),
            }),
        }
    }

    /// Decodes the config of an image (its ID is the config digest).
    pub fn config_of(&self, id: &Digest) -> Result<(ImageConfig, Vec<u8>), StoreError> {
        let raw = self.read_blob(id)?;
        Ok((ImageConfig::parse(&raw)?, raw))
    }

    /// Builds the record for a manifest whose blobs are all present.
    pub fn make_record(
        &self,
        manifest_digest: &Digest,
        media_type: &str,
        manifest: &Manifest,
    ) -> Result<ImageRecord, StoreError> {
        let (config, _) = self.config_of(&manifest.config.digest)?;
        for l in &manifest.layers {
            if !self.has_blob(&l.digest) {
                return Err(StoreError::BlobMissing {
                    digest: l.digest.clone(),
                });
            }
        }
        Ok(ImageRecord {
            id: manifest.config.digest.clone(),
            manifest: manifest_digest.clone(),
            manifest_media_type: media_type.to_owned(),
            size: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
            created: config.created.clone(),
            repo_digests: BTreeSet::new(),
            last_tag_time: None,
            alternates: std::collections::BTreeMap::new(),
        })
    }

    /// Inserts `rec` (keeping repo digests of an existing record with the same ID).
    pub fn insert_record(ix: &mut Index, mut rec: ImageRecord) {
        if let Some(old) = ix.images.get(&rec.id) {
            rec.repo_digests.extend(old.repo_digests.iter().cloned());
            for (d, mt) in old.all_manifests() {
                if d != rec.manifest {
                    rec.alternates.insert(d, mt);
                }
            }
            if rec.last_tag_time.is_none() {
                rec.last_tag_time.clone_from(&old.last_tag_time);
            }
        }
        ix.images.insert(rec.id.clone(), rec);
    }

    /// `rmi` for one name: untags, and deletes the image when nothing else refers to it.
    pub fn remove(
        &self,
        ix: &mut Index,
        query: &str,
        force: bool,
        users: &dyn ImageUsers,
    ) -> Result<Vec<RemoveEvent>, StoreError> {
        let id = ix.lookup(query)?;
        let short = id.hex()[..12].to_owned();
        let by_ref = crate::reference::ImageRef::parse(query).ok().filter(|r| {
            let tagged = r.tag_or_default().is_some_and(|t| {
                ix.repositories
                    .get(&r.repository())
                    .is_some_and(|m| m.contains_key(t.as_str()))
            });
            tagged || r.digest().is_some()
        });
        let mut events = Vec::new();
        let tags = ix.tags_of(&id);
        let container_users = users.users_of(&id);
        match by_ref {
            Some(r) if tags.len() > 1 || r.digest().is_some() && !tags.is_empty() => {
                // Other names remain: only this name goes.
                if let Some(d) = r.digest() {
                    let rd = format!("{}@{d}", r.repository());
                    if let Some(rec) = ix.images.get_mut(&id) {
                        rec.repo_digests.remove(&rd);
                    }
                    events.push(RemoveEvent::Untagged(rd));
                } else if let Some(t) = r.tag_or_default() {
                    ix.remove_tag(&r.repository(), t.as_str());
                    events.push(RemoveEvent::Untagged(format!("{}:{t}", r.repository())));
                }
                return Ok(events);
            }
            _ => {}
        }
        let repos: BTreeSet<&str> = tags
            .iter()
            .filter_map(|t| t.rsplit_once(':').map(|(r, _)| r))
            .collect();
        if !force && repos.len() > 1 {
            return Err(StoreError::Conflict {
                short,
                why: "(must be forced) - image is referenced in multiple repositories".to_owned(),
            });
        }
        if let Some((cid, running)) = container_users.first()
            && (!force || *running)
        {
            let state = if *running { "running " } else { "" };
            let how = if force {
                "cannot be forced"
            } else {
                "must be forced"
            };
            return Err(StoreError::Conflict {
                short,
                why: format!("({how}) - image is being used by {state}container {cid}"),
            });
        }
        for t in &tags {
            if let Some((repo, tag)) = t.rsplit_once(':') {
                ix.remove_tag(repo, tag);
            }
            events.push(RemoveEvent::Untagged(t.clone()));
        }
        if container_users.is_empty() {
            if let Some(rec) = ix.images.remove(&id) {
                for rd in rec.repo_digests {
                    events.push(RemoveEvent::Untagged(rd));
                }
            }
            events.push(RemoveEvent::Deleted(id));
        }
        Ok(events)
    }

    /// Deletes blobs no image refers to. Returns bytes reclaimed, or `None` when
    /// another process holds a lease (the sweep is then left for later).
    pub fn sweep(&self, ix: &Index) -> Result<Option<u64>, StoreError> {
        let Some(_lock) =
            self.lock_file(&self.layout.gc_lock(), FlockArg::LockExclusiveNonblock)?
        else {
            tracing::debug!("another bay process is adding blobs; sweep deferred");
            return Ok(None);
        };
        let mut keep = BTreeSet::new();
        for rec in ix.images.values() {
            keep.insert(rec.id.clone());
            for (d, mt) in rec.all_manifests() {
                keep.insert(d.clone());
                match self.manifest_at(&d, &mt) {
                    Ok(m) => keep.extend(m.layers.into_iter().map(|l| l.digest)),
                    Err(e) => {
                        // Never delete what we cannot account for.
                        tracing::warn!(error = %e, image = %rec.id, "cannot read manifest; sweep skipped");
                        return Ok(None);
                    }
                }
            }
        }
        let mut reclaimed = 0;
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.layout.blobs_dir().join(alg.as_str());
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &dir)(e)),
            };
            for entry in rd {
                let entry = entry.map_err(io_err("list", &dir))?;
                let name = entry.file_name();
                let Some(d) = name
                    .to_str()
                    .and_then(|n| Digest::parse(&format!("{alg}:{n}")).ok())
                else {
                    continue;
                };
                if keep.contains(&d) {
                    continue;
                }
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                let p = entry.path();
                match fs::remove_file(&p) {
                    Ok(()) => reclaimed += size,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", &p)(e)),
                }
            }
        }
        Ok(Some(reclaimed))
    }
}

/// A hashing writer into a temp file; see [`ImageStore::blob_writer`].
pub struct BlobWriter {
    store: ImageStore,
    out: io::BufWriter<tempfile::NamedTempFile>,
    hasher: Hasher,
    size: u64,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("size", &self.size)
            .finish()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Verifies the digest (when `expected` is given), fsyncs and renames into place.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        let actual = self.hasher.finish();
        if let Some(e) = expected
            && *e != actual
        {
            return Err(StoreError::DigestMismatch {
                expected: e.clone(),
                actual,
            });
        }
        let tmp = self.out.into_inner().map_err(|e| StoreError::Io {
            op: "flush",
            path: self.store.layout.tmp(),
            source: e.into_error(),
        })?;
        tmp.as_file()
            .sync_data()
            .map_err(io_err("sync", tmp.path()))?;
        let target = self.store.layout.blob(&actual);
        if !target.exists() {
            tmp.persist(&target)
                .map_err(|e| io_err("rename into", &target)(e.error))?;
            if let Some(dir) = target.parent() {
                sync_dir(dir)?;
            }
        }
        Ok((actual, self.size))
    }
}

/// An interrupted-download file being extended; see [`ImageStore::open_partial`].
pub struct PartialBlob {
    store: ImageStore,
    digest: Digest,
    path: PathBuf,
    file: io::BufWriter<File>,
    hasher: Hasher,
    len: u64,
    _lock: Flock<File>,
}

impl std::fmt::Debug for PartialBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartialBlob")
            .field("digest", &self.digest)
            .field("len", &self.len)
            .finish()
    }
}

impl PartialBlob {
    /// Bytes already held.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been downloaded yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends downloaded bytes.
    pub fn append(&mut self, data: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all(data)
            .map_err(io_err("write", &self.path))?;
        self.hasher.update(data);
        self.len += data.len() as u64;
        Ok(())
    }

    /// Flushes what has been appended, so a later run can resume from it.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.file.flush().map_err(io_err("write", &self.path))
    }

    /// Starts over (the server ignored our Range request or the data was bad).
    pub fn reset(&mut self) -> Result<(), StoreError> {
        self.file.flush().map_err(io_err("write", &self.path))?;
        let f = self.file.get_mut();
        f.set_len(0).map_err(io_err("truncate", &self.path))?;
        f.seek(io::SeekFrom::Start(0))
            .map_err(io_err("seek", &self.path))?;
        self.hasher = self.digest.algorithm().hasher();
        self.len = 0;
        Ok(())
    }

    /// Verifies the digest and moves the file into the blob store. On a
    /// mismatch the partial file is deleted, so the next attempt starts clean.
    pub fn commit(self) -> Result<(), StoreError> {
        let PartialBlob {
            store,
            digest,
            path,
            file,
            hasher,
            _lock,
            ..
        } = self;
        let file = file.into_inner().map_err(|e| StoreError::Io {
            op: "flush",
            path: path.clone(),
            source: e.into_error(),
        })?;
        let actual = hasher.finish();
        if actual != digest {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(StoreError::DigestMismatch {
                expected: digest,
                actual,
            });
        }
        file.sync_data().map_err(io_err("sync", &path))?;
        let target = store.layout.blob(&digest);
        fs::rename(&path, &target).map_err(io_err("rename into", &target))?;
        match target.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_verified_and_shared() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let d = s.put_blob(None, b"hello").unwrap();
        assert_eq!(d, Digest::sha256_of(b"hello"));
        assert_eq!(s.read_blob(&d).unwrap(), b"hello");
        // Same content again: same blob, no error.
        assert_eq!(s.put_blob(Some(&d), b"hello").unwrap(), d);
        // Wrong content for a digest: refused and nothing stored under it.
        let other = Digest::sha256_of(b"other");
        let err = s.put_blob(Some(&other), b"hello").unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(!s.has_blob(&other));
        // No temp files left behind.
        assert_eq!(fs::read_dir(s.layout().tmp()).unwrap().count(), 0);
    }

    #[test]
    fn partial_downloads_resume_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let data = b"0123456789abcdef";
        let d = Digest::sha256_of(data);
        let mut p = s.open_partial(&d).unwrap().unwrap();
        p.append(&data[..5]).unwrap();
        p.flush().unwrap();
        drop(p); // the "crash"
        let mut p = s.open_partial(&d).unwrap().unwrap();
        assert_eq!(p.len(), 5);
        p.append(&data[5..]).unwrap();
        p.commit().unwrap();
        assert_eq!(s.read_blob(&d).unwrap(), data);
        assert!(
            s.open_partial(&d).unwrap().is_none(),
            "complete blobs need no download"
        );
        // A corrupted partial is refused and removed.
        let d2 = Digest::sha256_of(b"xyz");
        let mut p = s.open_partial(&d2).unwrap().unwrap();
        p.append(b"xyZ").unwrap();
        assert!(p.commit().is_err());
        assert!(!s.layout().partial(&d2).exists());
        assert!(!s.has_blob(&d2));
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        ImageStore::open(&root).unwrap();
        let id = Digest::sha256_of(b"img");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let root = root.clone();
                let id = id.clone();
                std::thread::spawn(move || {
                    // Each thread opens its own store, so each lock is a separate
                    // open file description, exactly as with two processes.
                    let s = ImageStore::open(&root).unwrap();
                    for i in 0..25 {
                        s.update(|ix| {
                            ix.set_tag("repo", &format!("t{t}-{i}"), &id);
                            Ok::<_, StoreError>(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let ix = ImageStore::open(&root).unwrap().read_index().unwrap();
        assert_eq!(ix.repositories["repo"].len(), 200);
    }

    #[test]
    fn a_crashed_writer_leaves_the_old_index() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let id = Digest::sha256_of(b"img");
        s.update(|ix| {
            ix.set_tag("a", "1", &id);
            Ok::<_, StoreError>(())
        })
        .unwrap();
        // A writer that fails midway must not change anything.
        let r: Result<(), StoreError> = s.update(|ix| {
            ix.set_tag("b", "1", &id);
            Err(StoreError::BlobMissing { digest: id.clone() })
        });
        assert!(r.is_err());
        // A half-written temp file from a killed process is ignored.
        fs::write(s.layout().base().join(".tmpDEAD"), b"{\"version\":").unwrap();
        let ix = s.read_index().unwrap();
        assert!(ix.repositories.contains_key("a"));
        assert!(!ix.repositories.contains_key("b"));
    }

    struct Users(Vec<(String, bool)>);
    impl ImageUsers for Users {
        fn users_of(&self, _id: &Digest) -> Vec<(String, bool)> {
            self.0.clone()
        }
    }

    fn one_image(s: &ImageStore) -> Digest {
        let layer = s.put_blob(None, b"layer").unwrap();
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let id = s.put_blob(None, config).unwrap();
        let m = Manifest {
            schema_version: 2,
            media_type: Some(oci_types::MediaType::OCI_MANIFEST.to_owned()),
            config: crate::image::Descriptor::new(
                oci_types::MediaType::OCI_CONFIG,
                id.clone(),
                config.len() as u64,
            ),
            layers: vec![crate::image::Descriptor::new(
                oci_types::MediaType::OCI_LAYER_GZIP,
                layer,
                5,
            )],
            annotations: None,
        };
        let mb = serde_json::to_vec(&m).unwrap();
        let md = s.put_blob(None, &mb).unwrap();
        let rec = s
            .make_record(&md, oci_types::MediaType::OCI_MANIFEST, &m)
            .unwrap();
        s.update(|ix| {
            ImageStore::insert_record(ix, rec);
            ix.set_tag("app", "1", &id);
            Ok::<_, StoreError>(())
        })
        .unwrap();
        id
    }

    #[test]
    fn rmi_respects_containers() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let id = one_image(&s);
        let stopped = Users(vec![("c1".into(), false)]);
        let running = Users(vec![("c2".into(), true)]);
        let mut ix = s.read_index().unwrap();
        let e = s.remove(&mut ix, "app:1", false, &stopped).unwrap_err();
        assert!(
            e.to_string()
                .contains("(must be forced) - image is being used by container c1"),
            "{e}"
        );
        let e = s.remove(&mut ix, "app:1", true, &running).unwrap_err();
        assert!(
            e.to_string()
                .contains("(cannot be forced) - image is being used by running container c2"),
            "{e}"
        );
        // Forced with a stopped container: untagged, but the image stays for it.
        let ev = s.remove(&mut ix, "app:1", true, &stopped).unwrap();
        assert_eq!(ev, vec![RemoveEvent::Untagged("app:1".into())]);
        assert!(ix.images.contains_key(&id));
        // Without users it goes, and the sweep deletes its three blobs.
        let ev = s
            .remove(&mut ix, &id.to_string(), false, &NoContainers)
            .unwrap();
        assert_eq!(ev, vec![RemoveEvent::Deleted(id.clone())]);
        assert!(s.sweep(&ix).unwrap().is_some());
        assert!(!s.has_blob(&id));
        assert_eq!(
            fs::read_dir(s.layout().blobs_dir().join("sha256"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn sweep_waits_for_leases() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageStore::open(dir.path()).unwrap();
        let d = s.put_blob(None, b"orphan").unwrap();
        let lease = s.lease().unwrap();
        assert_eq!(s.sweep(&Index::default()).unwrap(), None);
        assert!(s.has_blob(&d));
        drop(lease);
        assert_eq!(s.sweep(&Index::default()).unwrap(), Some(6));
        assert!(!s.has_blob(&d));
    }
}
