//! Queries for online garbage collection.

use oci_types::Digest;
use sqlx::Row;

use super::{Meta, MetaError, parse_digest, q};

impl Meta {
    /// Repository→blob links older than `before` that no manifest of that
    /// repository references (pushed but never used, or left behind by a
    /// manifest delete).
    pub async fn unreferenced_links(
        &self,
        before: i64,
    ) -> Result<Vec<(String, Digest)>, MetaError> {
        let rows = sqlx::query(
            "SELECT r.name, rb.digest FROM repository_blobs rb \
             JOIN repositories r ON r.id = rb.repository_id \
             WHERE rb.created_at < $1 AND NOT EXISTS (SELECT 1 FROM manifest_references mr \
               WHERE mr.repository_id = rb.repository_id AND mr.child = rb.digest) \
             ORDER BY r.name, rb.digest",
        )
        .bind(before)
        .fetch_all(&self.writer)
        .await
        .map_err(q("list unreferenced links"))?;
        rows.into_iter()
            .map(|r| {
                Ok((
                    r.get::<String, _>(0),
                    parse_digest("repository_blobs.digest", r.get(1))?,
                ))
            })
            .collect()
    }

    /// Remove a link if it is still unreferenced and older than `before`.
    pub async fn drop_link_if_unreferenced(
        &self,
        repo: &str,
        digest: &Digest,
        before: i64,
    ) -> Result<bool, MetaError> {
        let res = sqlx::query(
            "DELETE FROM repository_blobs WHERE digest = $2 AND created_at < $3 \
             AND repository_id = (SELECT id FROM repositories WHERE name = $1) \
             AND NOT EXISTS (SELECT 1 FROM manifest_references mr \
               WHERE mr.repository_id = repository_blobs.repository_id AND mr.child = $2)",
        )
        .bind(repo)
        .bind(digest.to_string())
        .bind(before)
        .execute(&self.writer)
        .await
        .map_err(q("drop link"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Blobs no repository links to, created before `before`.
    pub async fn orphan_blobs(&self, before: i64) -> Result<Vec<(Digest, u64)>, MetaError> {
        let rows = sqlx::query(
            "SELECT digest, size FROM blobs b WHERE created_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest) ORDER BY digest",
        )
        .bind(before)
        .fetch_all(&self.writer)
        .await
        .map_err(q("list orphan blobs"))?;
        rows.into_iter()
            .map(|r| {
                Ok((
                    parse_digest("blobs.digest", r.get(0))?,
                    r.get::<i64, _>(1) as u64,
                ))
            })
            .collect()
    }

    /// Delete a blob row if still no repository links to it.
    pub async fn drop_blob_if_orphan(&self, digest: &Digest) -> Result<bool, MetaError> {
        let res = sqlx::query(
            "DELETE FROM blobs WHERE digest = $1 AND NOT EXISTS \
             (SELECT 1 FROM repository_blobs rb WHERE rb.digest = $1)",
        )
        .bind(digest.to_string())
        .execute(&self.writer)
        .await
        .map_err(q("drop blob"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Whether a blob row exists (again).
    pub async fn blob_known(&self, digest: &Digest) -> Result<bool, MetaError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blobs WHERE digest = $1")
            .bind(digest.to_string())
            .fetch_optional(&self.writer)
            .await
            .map_err(q("look up blob"))?;
        Ok(n.is_some())
    }

    /// Repositories linking to `digest`.
    pub async fn blob_links(&self, digest: &Digest) -> Result<Vec<String>, MetaError> {
        sqlx::query_scalar::<_, String>(
            "SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id \
             WHERE rb.digest = $1 ORDER BY r.name",
        )
        .bind(digest.to_string())
        .fetch_all(&self.writer)
        .await
        .map_err(q("list blob links"))
    }
}
