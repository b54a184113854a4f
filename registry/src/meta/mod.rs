//! Registry metadata in SQL: repositories, blob links, manifests and their
//! references, tags, referrer subjects and upload sessions.
//!
//! The embedded default is one SQLite file (WAL mode). Writes go through a
//! single connection so they serialize without `SQLITE_BUSY`; reads use a
//! small pool. Queries use `$N` placeholders and portable SQL only, so a
//! PostgreSQL backend needs its own DDL but no redesign.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use oci_types::{Digest, RepoName, Tag};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

mod auth;
mod gc;
pub use auth::{PersonalToken, RefreshToken, RuleSubject, StoredRule, User};
mod trust;
pub use trust::{
    ChangePage, NewTufFile, TrustChange, TrustKeyRow, TrustTx, TufFile, TufWriteError, now_nanos,
};

/// Errors from the metadata database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// A query failed.
    #[error("metadata query failed: {op}")]
    Query {
        /// What was being done.
        op: &'static str,
        /// Cause.
        #[source]
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("metadata schema migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value no longer parses (database edited by hand?).
    #[error("stored value {value:?} in {column} is corrupt")]
    Corrupt {
        /// Column.
        column: &'static str,
        /// Value.
        value: String,
    },
}

fn q(op: &'static str) -> impl FnOnce(sqlx::Error) -> MetaError {
    move |source| MetaError::Query { op, source }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn parse_digest(column: &'static str, s: String) -> Result<Digest, MetaError> {
    Digest::parse(&s).map_err(|_| MetaError::Corrupt { column, value: s })
}

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Its digest.
    pub digest: Digest,
    /// The media type it was pushed with.
    pub media_type: String,
    /// Exact bytes (empty for HEAD lookups).
    pub content: Vec<u8>,
    /// Length of the bytes.
    pub size: u64,
}

/// What a manifest points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// A blob (config or layer) that must exist in the repository.
    Blob,
    /// A child manifest (of an index) that must exist in the repository.
    Manifest,
}

impl RefKind {
    fn as_str(self) -> &'static str {
        match self {
            RefKind::Blob => "blob",
            RefKind::Manifest => "manifest",
        }
    }
}

/// A manifest to store.
#[derive(Debug, Clone)]
pub struct NewManifest {
    /// Digest of `content`.
    pub digest: Digest,
    /// Media type.
    pub media_type: String,
    /// `artifactType`, or the config media type for image manifests.
    pub artifact_type: Option<String>,
    /// `subject` digest.
    pub subject: Option<Digest>,
    /// Annotations as a JSON object string.
    pub annotations: Option<String>,
    /// Exact bytes.
    pub content: Vec<u8>,
    /// Descriptors that must already exist.
    pub references: Vec<(Digest, RefKind)>,
}

/// Why a manifest was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PutManifestError {
    /// A referenced blob or manifest is missing.
    #[error("manifest references {0}, which is not in the repository")]
    Missing(Digest),
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// A referrer row.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// Manifest digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its artifact type (with the config fallback applied at write time).
    pub artifact_type: Option<String>,
    /// Its annotations (JSON object).
    pub annotations: Option<String>,
}

/// An upload session row.
#[derive(Debug, Clone)]
pub struct UploadRow {
    /// Upload id.
    pub id: Uuid,
    /// Repository.
    pub repository: RepoName,
    /// Digest algorithm being computed.
    pub algorithm: oci_types::Algorithm,
    /// Acknowledged size.
    pub size: u64,
    /// Last update (unix seconds).
    pub updated_at: i64,
}

/// The metadata database.
#[derive(Clone, Debug)]
pub struct Meta {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl Meta {
    /// Open (creating and migrating) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path, sync: bool) -> Result<Self, MetaError> {
        let opts = SqliteConnectOptions::from_str("sqlite:")
            .map_err(q("parse sqlite url"))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if sync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .statement_cache_capacity(256);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(opts.clone())
            .await
            .map_err(q("open database"))?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts.read_only(true))
            .await
            .map_err(q("open database for reading"))?;
        Ok(Meta { writer, reader })
    }

    /// Repository id, if the repository exists.
    pub async fn repo_id(&self, name: &RepoName) -> Result<Option<i64>, MetaError> {
        sqlx::query_scalar::<_, i64>("SELECT id FROM repositories WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(q("look up repository"))
    }

    async fn ensure_repo(
        tx: &mut Transaction<'_, Sqlite>,
        name: &RepoName,
    ) -> Result<i64, MetaError> {
        sqlx::query(
            "INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.as_str())
        .bind(now())
        .execute(&mut **tx)
        .await
        .map_err(q("create repository"))?;
        sqlx::query_scalar::<_, i64>("SELECT id FROM repositories WHERE name = $1")
            .bind(name.as_str())
            .fetch_one(&mut **tx)
            .await
            .map_err(q("look up repository"))
    }

    /// Size of `digest` if the repository may read it.
    pub async fn repo_blob_size(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> Result<Option<u64>, MetaError> {
        let size = sqlx::query_scalar::<_, i64>(
            "SELECT b.size FROM repository_blobs rb \
             JOIN repositories r ON r.id = rb.repository_id \
             JOIN blobs b ON b.digest = rb.digest \
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(name.as_str())
        .bind(digest.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(q("look up blob"))?;
        Ok(size.map(|s| s as u64))
    }

    /// Size of `digest` if any repository holds it.
    pub async fn global_blob_size(&self, digest: &Digest) -> Result<Option<u64>, MetaError> {
        let size = sqlx::query_scalar::<_, i64>("SELECT size FROM blobs WHERE digest = $1")
            .bind(digest.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(q("look up blob"))?;
        Ok(size.map(|s| s as u64))
    }

    /// Record that `digest` (of `size` bytes, already stored) belongs to `name`.
    pub async fn link_blob(
        &self,
        name: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> Result<(), MetaError> {
        let mut tx = self.writer.begin().await.map_err(q("begin"))?;
        let repo = Self::ensure_repo(&mut tx, name).await?;
        let t = now();
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest.to_string())
        .bind(size as i64)
        .bind(t)
        .execute(&mut *tx)
        .await
        .map_err(q("insert blob"))?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (repository_id, digest) DO NOTHING",
        )
        .bind(repo)
        .bind(digest.to_string())
        .bind(t)
        .execute(&mut *tx)
        .await
        .map_err(q("link blob"))?;
        tx.commit().await.map_err(q("commit"))
    }

    /// Remove a blob from a repository. Returns whether it was linked.
    pub async fn unlink_blob(&self, name: &RepoName, digest: &Digest) -> Result<bool, MetaError> {
        let res = sqlx::query(
            "DELETE FROM repository_blobs WHERE digest = $2 AND repository_id = \
             (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(name.as_str())
        .bind(digest.to_string())
        .execute(&self.writer)
        .await
        .map_err(q("unlink blob"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Look up a manifest by tag.
    pub async fn manifest_by_tag(
        &self,
        name: &RepoName,
        tag: &Tag,
        with_content: bool,
    ) -> Result<Option<StoredManifest>, MetaError> {
        let sql = if with_content {
            "SELECT m.digest, m.media_type, m.size, m.content FROM tags t \
             JOIN repositories r ON r.id = t.repository_id \
             JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest \
             WHERE r.name = $1 AND t.name = $2"
        } else {
            "SELECT m.digest, m.media_type, m.size, NULL FROM tags t \
             JOIN repositories r ON r.id = t.repository_id \
             JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest \
             WHERE r.name = $1 AND t.name = $2"
        };
        let row = sqlx::query(sql)
            .bind(name.as_str())
            .bind(tag.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(q("look up tag"))?;
        row.map(manifest_row).transpose()
    }

    /// Look up a manifest by digest.
    pub async fn manifest_by_digest(
        &self,
        name: &RepoName,
        digest: &Digest,
        with_content: bool,
    ) -> Result<Option<StoredManifest>, MetaError> {
        let sql = if with_content {
            "SELECT m.digest, m.media_type, m.size, m.content FROM manifests m \
             JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.digest = $2"
        } else {
            "SELECT m.digest, m.media_type, m.size, NULL FROM manifests m \
             JOIN repositories r ON r.id = m.repository_id WHERE r.name = $1 AND m.digest = $2"
        };
        let row = sqlx::query(sql)
            .bind(name.as_str())
            .bind(digest.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(q("look up manifest"))?;
        row.map(manifest_row).transpose()
    }

    /// Look up a manifest with its bytes by tag or digest.
    pub async fn manifest(
        &self,
        name: &RepoName,
        r: &oci_types::Reference,
    ) -> Result<Option<StoredManifest>, MetaError> {
        match r {
            oci_types::Reference::Tag(t) => self.manifest_by_tag(name, t, true).await,
            oci_types::Reference::Digest(d) => self.manifest_by_digest(name, d, true).await,
        }
    }

    /// Store a manifest and point `tags` at it, atomically. Every reference
    /// must already exist in the repository.
    pub async fn put_manifest(
        &self,
        name: &RepoName,
        m: &NewManifest,
        tags: &[Tag],
    ) -> Result<(), PutManifestError> {
        let mut tx = self.writer.begin().await.map_err(q("begin"))?;
        let repo = Self::ensure_repo(&mut tx, name).await?;
        for (d, kind) in &m.references {
            let sql = match kind {
                RefKind::Blob => {
                    "SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = $2"
                }
                RefKind::Manifest => {
                    "SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2"
                }
            };
            let found = sqlx::query_scalar::<_, i64>(sql)
                .bind(repo)
                .bind(d.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(q("check reference"))?;
            if found.is_none() {
                return Err(PutManifestError::Missing(d.clone()));
            }
        }
        let t = now();
        let inserted = sqlx::query(
            "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject, \
             annotations, size, content, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (repository_id, digest) DO NOTHING",
        )
        .bind(repo)
        .bind(m.digest.to_string())
        .bind(&m.media_type)
        .bind(&m.artifact_type)
        .bind(m.subject.as_ref().map(ToString::to_string))
        .bind(&m.annotations)
        .bind(m.content.len() as i64)
        .bind(&m.content)
        .bind(t)
        .execute(&mut *tx)
        .await
        .map_err(q("insert manifest"))?;
        if inserted.rows_affected() > 0 {
            for (d, kind) in &m.references {
                sqlx::query(
                    "INSERT INTO manifest_references (repository_id, parent, child, kind) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(repo)
                .bind(m.digest.to_string())
                .bind(d.to_string())
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await
                .map_err(q("insert reference"))?;
            }
        }
        for tag in tags {
            sqlx::query(
                "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, \
                 updated_at = excluded.updated_at",
            )
            .bind(repo)
            .bind(tag.as_str())
            .bind(m.digest.to_string())
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(q("set tag"))?;
        }
        tx.commit().await.map_err(q("commit"))?;
        Ok(())
    }

    /// Delete a manifest (and the tags pointing at it). Returns whether it existed.
    pub async fn delete_manifest(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> Result<bool, MetaError> {
        let res = sqlx::query(
            "DELETE FROM manifests WHERE digest = $2 AND repository_id = \
             (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(name.as_str())
        .bind(digest.to_string())
        .execute(&self.writer)
        .await
        .map_err(q("delete manifest"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Remove a tag only. Returns whether it existed.
    pub async fn delete_tag(&self, name: &RepoName, tag: &Tag) -> Result<bool, MetaError> {
        let res = sqlx::query(
            "DELETE FROM tags WHERE name = $2 AND repository_id = \
             (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(name.as_str())
        .bind(tag.as_str())
        .execute(&self.writer)
        .await
        .map_err(q("delete tag"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Tags of a repository in byte order, strictly after `last`, at most
    /// `n`; `None` if the repository does not exist.
    pub async fn list_tags(
        &self,
        name: &RepoName,
        last: Option<&str>,
        n: usize,
    ) -> Result<Option<Vec<String>>, MetaError> {
        // One aggregated row instead of a row per tag: sqlx hands rows over
        // one by one, which dominated the cost of long lists. Tags cannot
        // contain ',' (spec grammar). `string_agg` exists in SQLite >= 3.44
        // and PostgreSQL alike. The repository's existence is only looked up
        // when the page is empty.
        let joined = sqlx::query_scalar::<_, Option<String>>(
            "SELECT string_agg(name, ',' ORDER BY name) FROM \
             (SELECT t.name AS name FROM tags t JOIN repositories r ON r.id = t.repository_id \
              WHERE r.name = $1 AND t.name > $2 ORDER BY t.name LIMIT $3) AS page",
        )
        .bind(name.as_str())
        .bind(last.unwrap_or(""))
        .bind(n as i64)
        .fetch_one(&self.reader)
        .await
        .map_err(q("list tags"))?;
        match joined {
            Some(j) => Ok(Some(j.split(',').map(str::to_owned).collect())),
            None => Ok(self.repo_id(name).await?.map(|_| Vec::new())),
        }
    }

    /// Repository names in byte order, strictly after `last`, at most `n`.
    pub async fn list_repositories(
        &self,
        last: Option<&str>,
        n: usize,
    ) -> Result<Vec<String>, MetaError> {
        sqlx::query_scalar::<_, String>(
            "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
        )
        .bind(last.unwrap_or(""))
        .bind(n as i64)
        .fetch_all(&self.reader)
        .await
        .map_err(q("list repositories"))
    }

    /// Manifests in `repo_id` whose subject is `subject`.
    pub async fn referrers(
        &self,
        repo_id: i64,
        subject: &Digest,
    ) -> Result<Vec<Referrer>, MetaError> {
        let rows = sqlx::query(
            "SELECT digest, media_type, size, artifact_type, annotations FROM manifests \
             WHERE repository_id = $1 AND subject = $2 ORDER BY created_at, digest",
        )
        .bind(repo_id)
        .bind(subject.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(q("list referrers"))?;
        rows.into_iter()
            .map(|r| {
                Ok(Referrer {
                    digest: parse_digest("manifests.digest", r.get(0))?,
                    media_type: r.get(1),
                    size: r.get::<i64, _>(2) as u64,
                    artifact_type: r.get(3),
                    annotations: r.get(4),
                })
            })
            .collect()
    }

    /// Start an upload session.
    pub async fn create_upload(
        &self,
        id: Uuid,
        name: &RepoName,
        algorithm: oci_types::Algorithm,
    ) -> Result<(), MetaError> {
        let t = now();
        sqlx::query(
            "INSERT INTO uploads (id, repository, algorithm, size, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4)",
        )
        .bind(id.to_string())
        .bind(name.as_str())
        .bind(algorithm.as_str())
        .bind(t)
        .execute(&self.writer)
        .await
        .map_err(q("create upload"))?;
        Ok(())
    }

    /// Look up an upload session.
    pub async fn upload(&self, id: Uuid) -> Result<Option<UploadRow>, MetaError> {
        let row = sqlx::query(
            "SELECT repository, algorithm, size, updated_at FROM uploads WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.writer)
        .await
        .map_err(q("look up upload"))?;
        let Some(r) = row else { return Ok(None) };
        let repo: String = r.get(0);
        let alg: String = r.get(1);
        Ok(Some(UploadRow {
            id,
            repository: RepoName::parse(&repo).map_err(|_| MetaError::Corrupt {
                column: "uploads.repository",
                value: repo.clone(),
            })?,
            algorithm: oci_types::Algorithm::parse(&alg).map_err(|_| MetaError::Corrupt {
                column: "uploads.algorithm",
                value: alg.clone(),
            })?,
            size: r.get::<i64, _>(2) as u64,
            updated_at: r.get(3),
        }))
    }

    /// Record the acknowledged size of an upload.
    pub async fn set_upload_size(&self, id: Uuid, size: u64) -> Result<(), MetaError> {
        sqlx::query("UPDATE uploads SET size = $2, updated_at = $3 WHERE id = $1")
            .bind(id.to_string())
            .bind(size as i64)
            .bind(now())
            .execute(&self.writer)
            .await
            .map_err(q("update upload"))?;
        Ok(())
    }

    /// Forget an upload session.
    pub async fn delete_upload(&self, id: Uuid) -> Result<bool, MetaError> {
        let res = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.writer)
            .await
            .map_err(q("delete upload"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Upload sessions not touched since `before` (unix seconds).
    pub async fn stale_uploads(&self, before: i64) -> Result<Vec<Uuid>, MetaError> {
        let ids = sqlx::query_scalar::<_, String>("SELECT id FROM uploads WHERE updated_at < $1")
            .bind(before)
            .fetch_all(&self.writer)
            .await
            .map_err(q("list stale uploads"))?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }
}

fn manifest_row(r: sqlx::sqlite::SqliteRow) -> Result<StoredManifest, MetaError> {
    Ok(StoredManifest {
        digest: parse_digest("manifests.digest", r.get(0))?,
        media_type: r.get(1),
        size: r.get::<i64, _>(2) as u64,
        content: r.get::<Option<Vec<u8>>, _>(3).unwrap_or_default(),
    })
}
