//! Notary v1 trust data: TUF files with their exact bytes, server-held
//! keys (sealed) and the changefeed. See `migrations/sqlite/0003_trust.sql`.
//!
//! Reads of single files go through the reader pool. An upload (and a lazy
//! timestamp refresh) runs inside one [`TrustTx`] on the writer connection:
//! it reads the current state, validates, and writes every role or none.

use sha2::Digest as _;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::{Meta, MetaError, q};

/// One stored version of one role's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TufFile {
    /// Role name (`root`, `targets/releases`, ...).
    pub role: String,
    /// The `signed.version` it was stored under.
    pub version: u64,
    /// Lowercase hex sha256 of `data`.
    pub sha256: String,
    /// The exact bytes, as uploaded or as the server signed them.
    pub data: Vec<u8>,
    /// When it was stored (unix nanoseconds).
    pub created_at: i64,
}

/// A file to store.
#[derive(Debug, Clone)]
pub struct NewTufFile {
    /// Role name.
    pub role: String,
    /// Its `signed.version`.
    pub version: u64,
    /// Exact bytes.
    pub data: Vec<u8>,
}

/// A server-held key row.
#[derive(Debug, Clone)]
pub struct TrustKeyRow {
    /// `timestamp` or `snapshot`.
    pub role: String,
    /// TUF key ID.
    pub key_id: String,
    /// Public key JSON.
    pub public_key: String,
    /// The sealed private key.
    pub sealed: Vec<u8>,
    /// `pending` or `active`.
    pub state: String,
    /// Creation (unix nanoseconds).
    pub created_at: i64,
}

/// One changefeed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustChange {
    /// Record id (increasing, never reused).
    pub id: i64,
    /// When (unix nanoseconds).
    pub created_at: i64,
    /// GUN.
    pub gun: String,
    /// Timestamp version (0 for deletions).
    pub version: u64,
    /// Hex sha256 of the timestamp ("" for deletions).
    pub sha256: String,
    /// `update` or `deletion`.
    pub category: String,
}

/// Why a trust write failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TufWriteError {
    /// A role's version is not newer than the stored one.
    #[error("{role} version {version} is not newer than stored version {current}")]
    OldVersion {
        /// Role.
        role: String,
        /// Version offered.
        version: u64,
        /// Version stored.
        current: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// Unix nanoseconds now.
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file_row(r: SqliteRow) -> TufFile {
    TufFile {
        role: r.get("role"),
        version: r.get::<i64, _>("version").max(0) as u64,
        sha256: r.get("sha256"),
        data: r.get("data"),
        created_at: r.get("created_at"),
    }
}

fn key_row(r: SqliteRow) -> TrustKeyRow {
    TrustKeyRow {
        role: r.get("role"),
        key_id: r.get("key_id"),
        public_key: r.get("public_key"),
        sealed: r.get("sealed"),
        state: r.get("state"),
        created_at: r.get("created_at"),
    }
}

fn change_row(r: SqliteRow) -> TrustChange {
    TrustChange {
        id: r.get("id"),
        created_at: r.get("created_at"),
        gun: r.get("gun"),
        version: r.get::<i64, _>("version").max(0) as u64,
        sha256: r.get("sha256"),
        category: r.get("category"),
    }
}

const FILE_COLS: &str = "role, version, sha256, data, created_at";
const KEY_COLS: &str = "role, key_id, public_key, sealed, state, created_at";

/// Which page of the changefeed to read (Notary's semantics).
#[derive(Debug, Clone, Copy)]
pub struct ChangePage {
    /// Exclusive start id; negative means "from the latest".
    pub change_id: i64,
    /// Page size (> 0).
    pub records: i64,
    /// Page backwards (older records), still returned oldest first.
    pub reversed: bool,
}

impl Meta {
    /// The newest version of `role`.
    pub async fn tuf_current(&self, gun: &str, role: &str) -> Result<Option<TufFile>, MetaError> {
        sqlx::query(&format!(
            "SELECT {FILE_COLS} FROM tuf_files WHERE gun = $1 AND role = $2 \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(gun)
        .bind(role)
        .fetch_optional(&self.reader)
        .await
        .map(|r| r.map(file_row))
        .map_err(q("read current trust metadata"))
    }

    /// The version of `role` whose bytes hash to `sha256` (hex).
    pub async fn tuf_by_checksum(
        &self,
        gun: &str,
        role: &str,
        sha256: &str,
    ) -> Result<Option<TufFile>, MetaError> {
        sqlx::query(&format!(
            "SELECT {FILE_COLS} FROM tuf_files WHERE gun = $1 AND role = $2 AND sha256 = $3 \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(gun)
        .bind(role)
        .bind(sha256)
        .fetch_optional(&self.reader)
        .await
        .map(|r| r.map(file_row))
        .map_err(q("read trust metadata by checksum"))
    }

    /// A given version of `role`.
    pub async fn tuf_by_version(
        &self,
        gun: &str,
        role: &str,
        version: u64,
    ) -> Result<Option<TufFile>, MetaError> {
        sqlx::query(&format!(
            "SELECT {FILE_COLS} FROM tuf_files WHERE gun = $1 AND role = $2 AND version = $3"
        ))
        .bind(gun)
        .bind(role)
        .bind(i64::try_from(version).unwrap_or(i64::MAX))
        .fetch_optional(&self.reader)
        .await
        .map(|r| r.map(file_row))
        .map_err(q("read trust metadata by version"))
    }

    /// Server keys held for `gun` and `role`, newest first.
    pub async fn trust_keys(&self, gun: &str, role: &str) -> Result<Vec<TrustKeyRow>, MetaError> {
        sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM trust_keys WHERE gun = $1 AND role = $2 ORDER BY id DESC"
        ))
        .bind(gun)
        .bind(role)
        .fetch_all(&self.reader)
        .await
        .map(|rows| rows.into_iter().map(key_row).collect())
        .map_err(q("read trust keys"))
    }

    /// Store a new server key (state `pending`).
    pub async fn trust_insert_key(&self, gun: &str, key: &TrustKeyRow) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO trust_keys (gun, role, key_id, public_key, sealed, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (gun, key_id) DO NOTHING",
        )
        .bind(gun)
        .bind(&key.role)
        .bind(&key.key_id)
        .bind(&key.public_key)
        .bind(&key.sealed)
        .bind(&key.state)
        .bind(key.created_at)
        .execute(&self.writer)
        .await
        .map(|_| ())
        .map_err(q("store trust key"))
    }

    /// Delete every TUF file and server key of `gun`; records a `deletion`
    /// change when anything existed. Returns whether it did.
    pub async fn trust_delete_gun(&self, gun: &str) -> Result<bool, MetaError> {
        let mut tx = self.writer.begin().await.map_err(q("begin"))?;
        let files = sqlx::query("DELETE FROM tuf_files WHERE gun = $1")
            .bind(gun)
            .execute(&mut *tx)
            .await
            .map_err(q("delete trust metadata"))?
            .rows_affected();
        sqlx::query("DELETE FROM trust_keys WHERE gun = $1")
            .bind(gun)
            .execute(&mut *tx)
            .await
            .map_err(q("delete trust keys"))?;
        if files > 0 {
            insert_change(&mut tx, gun, 0, "", "deletion").await?;
        }
        tx.commit().await.map_err(q("commit"))?;
        Ok(files > 0)
    }

    /// A page of the changefeed, oldest first, for one GUN or all.
    pub async fn trust_changes(
        &self,
        gun: Option<&str>,
        page: ChangePage,
    ) -> Result<Vec<TrustChange>, MetaError> {
        let filter = if gun.is_some() { "gun = $3 AND " } else { "" };
        let sql = if page.reversed {
            if page.change_id > 0 {
                format!(
                    "SELECT * FROM trust_changes WHERE {filter}id < $1 ORDER BY id DESC LIMIT $2"
                )
            } else {
                format!(
                    "SELECT * FROM trust_changes WHERE {filter}$1 = $1 ORDER BY id DESC LIMIT $2"
                )
            }
        } else {
            format!("SELECT * FROM trust_changes WHERE {filter}id > $1 ORDER BY id ASC LIMIT $2")
        };
        let mut query = sqlx::query(&sql).bind(page.change_id).bind(page.records);
        if let Some(g) = gun {
            query = query.bind(g);
        }
        let mut out: Vec<TrustChange> = query
            .fetch_all(&self.reader)
            .await
            .map_err(q("read changefeed"))?
            .into_iter()
            .map(change_row)
            .collect();
        if page.reversed {
            out.reverse();
        }
        Ok(out)
    }

    /// Start an atomic trust update on the writer connection.
    pub async fn trust_begin(&self) -> Result<TrustTx, MetaError> {
        let tx = self.writer.begin().await.map_err(q("begin"))?;
        Ok(TrustTx { tx })
    }
}

async fn insert_change(
    tx: &mut Transaction<'static, Sqlite>,
    gun: &str,
    version: u64,
    sha256: &str,
    category: &str,
) -> Result<(), MetaError> {
    sqlx::query(
        "INSERT INTO trust_changes (created_at, gun, version, sha256, category) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now_nanos())
    .bind(gun)
    .bind(i64::try_from(version).unwrap_or(i64::MAX))
    .bind(sha256)
    .bind(category)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(q("record change"))
}

/// An open trust transaction; dropped without [`commit`](Self::commit) it
/// rolls back.
pub struct TrustTx {
    tx: Transaction<'static, Sqlite>,
}

impl TrustTx {
    /// The newest version of every role of `gun`.
    pub async fn current_all(&mut self, gun: &str) -> Result<Vec<TufFile>, MetaError> {
        sqlx::query(&format!(
            "SELECT {FILE_COLS} FROM tuf_files t WHERE gun = $1 AND version = \
             (SELECT MAX(version) FROM tuf_files u WHERE u.gun = t.gun AND u.role = t.role)"
        ))
        .bind(gun)
        .fetch_all(&mut *self.tx)
        .await
        .map(|rows| rows.into_iter().map(file_row).collect())
        .map_err(q("read current trust metadata"))
    }

    /// The version of `role` whose bytes hash to `sha256`.
    pub async fn by_checksum(
        &mut self,
        gun: &str,
        role: &str,
        sha256: &str,
    ) -> Result<Option<TufFile>, MetaError> {
        sqlx::query(&format!(
            "SELECT {FILE_COLS} FROM tuf_files WHERE gun = $1 AND role = $2 AND sha256 = $3 \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(gun)
        .bind(role)
        .bind(sha256)
        .fetch_optional(&mut *self.tx)
        .await
        .map(|r| r.map(file_row))
        .map_err(q("read trust metadata by checksum"))
    }

    /// Every server key of `gun`, newest first.
    pub async fn keys(&mut self, gun: &str) -> Result<Vec<TrustKeyRow>, MetaError> {
        sqlx::query(&format!(
            "SELECT {KEY_COLS} FROM trust_keys WHERE gun = $1 ORDER BY id DESC"
        ))
        .bind(gun)
        .fetch_all(&mut *self.tx)
        .await
        .map(|rows| rows.into_iter().map(key_row).collect())
        .map_err(q("read trust keys"))
    }

    /// Mark keys `active` (an uploaded root lists them).
    pub async fn activate_keys(&mut self, gun: &str, key_ids: &[String]) -> Result<(), MetaError> {
        for id in key_ids {
            sqlx::query("UPDATE trust_keys SET state = 'active' WHERE gun = $1 AND key_id = $2")
                .bind(gun)
                .bind(id)
                .execute(&mut *self.tx)
                .await
                .map_err(q("activate trust key"))?;
        }
        Ok(())
    }

    /// Store files; each version must be newer than the stored one of its
    /// role. Every timestamp gets a changefeed `update` record.
    pub async fn insert_files(
        &mut self,
        gun: &str,
        files: &[NewTufFile],
    ) -> Result<Vec<TufFile>, TufWriteError> {
        let t = now_nanos();
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let current = sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(version) FROM tuf_files WHERE gun = $1 AND role = $2",
            )
            .bind(gun)
            .bind(&f.role)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(q("read stored version"))?;
            let version = i64::try_from(f.version).unwrap_or(i64::MAX);
            if let Some(cur) = current
                && cur >= version
            {
                return Err(TufWriteError::OldVersion {
                    role: f.role.clone(),
                    version: f.version,
                    current: cur.max(0) as u64,
                });
            }
            let sha = sha256_hex(&f.data);
            sqlx::query(
                "INSERT INTO tuf_files (gun, role, version, sha256, data, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(gun)
            .bind(&f.role)
            .bind(version)
            .bind(&sha)
            .bind(&f.data)
            .bind(t)
            .execute(&mut *self.tx)
            .await
            .map_err(q("store trust metadata"))?;
            if f.role == "timestamp" {
                insert_change(&mut self.tx, gun, f.version, &sha, "update").await?;
            }
            out.push(TufFile {
                role: f.role.clone(),
                version: f.version,
                sha256: sha,
                data: f.data.clone(),
                created_at: t,
            });
        }
        Ok(out)
    }

    /// Make every write of this transaction visible at once.
    pub async fn commit(self) -> Result<(), MetaError> {
        self.tx.commit().await.map_err(q("commit"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn meta() -> (tempfile::TempDir, Meta) {
        let dir = tempfile::tempdir().unwrap();
        let m = Meta::open_sqlite(&dir.path().join("db"), false)
            .await
            .unwrap();
        (dir, m)
    }

    fn file(role: &str, version: u64, data: &[u8]) -> NewTufFile {
        NewTufFile {
            role: role.into(),
            version,
            data: data.to_vec(),
        }
    }

    #[tokio::test]
    async fn writes_are_atomic_and_versions_must_grow() {
        let (_d, m) = meta().await;
        let mut tx = m.trust_begin().await.unwrap();
        tx.insert_files("g", &[file("root", 1, b"r1"), file("timestamp", 1, b"t1")])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            m.tuf_current("g", "root").await.unwrap().unwrap().data,
            b"r1"
        );
        // targets v1 is fine, but root v1 again fails: nothing of the batch stays.
        let mut tx = m.trust_begin().await.unwrap();
        tx.insert_files("g", &[file("targets", 1, b"x")])
            .await
            .unwrap();
        let err = tx
            .insert_files("g", &[file("root", 1, b"r1b")])
            .await
            .unwrap_err();
        assert!(matches!(err, TufWriteError::OldVersion { current: 1, .. }));
        drop(tx);
        assert!(m.tuf_current("g", "targets").await.unwrap().is_none());
        let sha = sha256_hex(b"t1");
        let by = m.tuf_by_checksum("g", "timestamp", &sha).await.unwrap();
        assert_eq!(by.unwrap().version, 1);
        assert!(m.tuf_by_version("g", "root", 2).await.unwrap().is_none());
        let all = m
            .trust_changes(
                None,
                ChangePage {
                    change_id: 0,
                    records: 100,
                    reversed: false,
                },
            )
            .await
            .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].version, all[0].sha256.as_str()), (1, sha.as_str()));
        assert!(m.trust_delete_gun("g").await.unwrap());
        assert!(!m.trust_delete_gun("g").await.unwrap());
        let last = m
            .trust_changes(
                Some("g"),
                ChangePage {
                    change_id: -1,
                    records: 1,
                    reversed: true,
                },
            )
            .await
            .unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].category, "deletion");
        assert!(last[0].id > all[0].id);
    }
}
