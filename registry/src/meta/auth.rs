//! Accounts, groups, access rules, personal access tokens and refresh tokens.

use sqlx::Row;

use super::{Meta, MetaError, now, q};

/// A user account.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Admins may do everything.
    pub admin: bool,
    /// Groups the user belongs to.
    pub groups: Vec<String>,
}

/// Who an access rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSubject {
    /// One user.
    User(String),
    /// Members of a group.
    Group(String),
    /// Requests without credentials.
    Anonymous,
}

/// A stored access rule.
#[derive(Debug, Clone)]
pub struct StoredRule {
    /// Rule id (for `acl del`).
    pub id: i64,
    /// Who.
    pub subject: RuleSubject,
    /// Repository pattern (`team/app`, `team/*`, `team/**`).
    pub pattern: String,
    /// Actions (`pull`, `push`, `delete`).
    pub actions: Vec<String>,
}

/// A personal access token (without its secret).
#[derive(Debug, Clone)]
pub struct PersonalToken {
    /// Public id (part of the token string).
    pub id: String,
    /// Owner.
    pub user: String,
    /// Label.
    pub name: String,
    /// Scope strings it is limited to.
    pub scopes: Vec<String>,
    /// SHA-256 hex of the secret.
    pub secret_hash: String,
    /// Creation (unix seconds).
    pub created_at: i64,
    /// Expiry (unix seconds), if any.
    pub expires_at: Option<i64>,
    /// Last use at `/token`.
    pub last_used_at: Option<i64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// A refresh token row.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// Owner.
    pub user: String,
    /// Service it is bound to.
    pub service: String,
    /// The personal access token it was obtained with, if any.
    pub pat_id: Option<String>,
}

impl Meta {
    /// Whether any account exists.
    pub async fn has_users(&self) -> Result<bool, MetaError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await
            .map_err(q("count users"))?;
        Ok(n > 0)
    }

    /// Create a user. Returns false if the name is taken.
    pub async fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        admin: bool,
        groups: &[String],
    ) -> Result<bool, MetaError> {
        let mut tx = self.writer.begin().await.map_err(q("begin"))?;
        let res = sqlx::query(
            "INSERT INTO users (name, password_hash, admin, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(password_hash)
        .bind(admin)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(q("add user"))?;
        if res.rows_affected() == 0 {
            return Ok(false);
        }
        for g in groups {
            sqlx::query("INSERT INTO user_groups (user_name, group_name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(name)
                .bind(g)
                .execute(&mut *tx)
                .await
                .map_err(q("add group membership"))?;
        }
        tx.commit().await.map_err(q("commit"))?;
        Ok(true)
    }

    /// Delete a user and (by cascade) its tokens. Returns whether it existed.
    pub async fn delete_user(&self, name: &str) -> Result<bool, MetaError> {
        let res = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&self.writer)
            .await
            .map_err(q("delete user"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Replace a user's password hash.
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, MetaError> {
        let res = sqlx::query("UPDATE users SET password_hash = $2 WHERE name = $1")
            .bind(name)
            .bind(password_hash)
            .execute(&self.writer)
            .await
            .map_err(q("set password"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Look up a user with its groups.
    pub async fn user(&self, name: &str) -> Result<Option<User>, MetaError> {
        let row = sqlx::query("SELECT name, password_hash, admin FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.writer)
            .await
            .map_err(q("look up user"))?;
        let Some(r) = row else { return Ok(None) };
        let groups = sqlx::query_scalar::<_, String>(
            "SELECT group_name FROM user_groups WHERE user_name = $1 ORDER BY group_name",
        )
        .bind(name)
        .fetch_all(&self.writer)
        .await
        .map_err(q("look up groups"))?;
        Ok(Some(User {
            name: r.get(0),
            password_hash: r.get(1),
            admin: r.get(2),
            groups,
        }))
    }

    /// All users, by name.
    pub async fn users(&self) -> Result<Vec<User>, MetaError> {
        let names = sqlx::query_scalar::<_, String>("SELECT name FROM users ORDER BY name")
            .fetch_all(&self.writer)
            .await
            .map_err(q("list users"))?;
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Some(u) = self.user(&n).await? {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// Add an access rule; returns its id.
    pub async fn add_rule(
        &self,
        subject: &RuleSubject,
        pattern: &str,
        actions: &[String],
    ) -> Result<i64, MetaError> {
        let (kind, who) = match subject {
            RuleSubject::User(u) => ("user", u.as_str()),
            RuleSubject::Group(g) => ("group", g.as_str()),
            RuleSubject::Anonymous => ("anonymous", ""),
        };
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO acl_rules (subject_kind, subject, pattern, actions, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(kind)
        .bind(who)
        .bind(pattern)
        .bind(actions.join(","))
        .bind(now())
        .fetch_one(&self.writer)
        .await
        .map_err(q("add rule"))?;
        Ok(id)
    }

    /// Remove a rule. Returns whether it existed.
    pub async fn delete_rule(&self, id: i64) -> Result<bool, MetaError> {
        let res = sqlx::query("DELETE FROM acl_rules WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(q("delete rule"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Every stored rule.
    pub async fn rules(&self) -> Result<Vec<StoredRule>, MetaError> {
        let rows = sqlx::query(
            "SELECT id, subject_kind, subject, pattern, actions FROM acl_rules ORDER BY id",
        )
        .fetch_all(&self.writer)
        .await
        .map_err(q("list rules"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.get(1);
            let who: String = r.get(2);
            let subject = match kind.as_str() {
                "user" => RuleSubject::User(who),
                "group" => RuleSubject::Group(who),
                "anonymous" => RuleSubject::Anonymous,
                _ => {
                    return Err(MetaError::Corrupt {
                        column: "acl_rules.subject_kind",
                        value: kind,
                    });
                }
            };
            let actions: String = r.get(4);
            out.push(StoredRule {
                id: r.get(0),
                subject,
                pattern: r.get(3),
                actions: actions
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Store a personal access token.
    pub async fn add_personal_token(&self, t: &PersonalToken) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO personal_tokens (id, user_name, name, scopes, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.id)
        .bind(&t.user)
        .bind(&t.name)
        .bind(t.scopes.join(" "))
        .bind(&t.secret_hash)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&self.writer)
        .await
        .map_err(q("add personal token"))?;
        Ok(())
    }

    /// Look up a personal access token by id.
    pub async fn personal_token(&self, id: &str) -> Result<Option<PersonalToken>, MetaError> {
        let row = sqlx::query(
            "SELECT id, user_name, name, scopes, secret_hash, created_at, expires_at, last_used_at, revoked_at \
             FROM personal_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.writer)
        .await
        .map_err(q("look up personal token"))?;
        Ok(row.map(pat_row))
    }

    /// Personal access tokens, optionally of one user.
    pub async fn personal_tokens(
        &self,
        user: Option<&str>,
    ) -> Result<Vec<PersonalToken>, MetaError> {
        let rows = sqlx::query(
            "SELECT id, user_name, name, scopes, secret_hash, created_at, expires_at, last_used_at, revoked_at \
             FROM personal_tokens WHERE ($1 IS NULL OR user_name = $1) ORDER BY created_at, id",
        )
        .bind(user)
        .fetch_all(&self.writer)
        .await
        .map_err(q("list personal tokens"))?;
        Ok(rows.into_iter().map(pat_row).collect())
    }

    /// Revoke a personal access token (and refresh tokens obtained with it).
    pub async fn revoke_personal_token(
        &self,
        id: &str,
        user: Option<&str>,
    ) -> Result<bool, MetaError> {
        let t = now();
        let res = sqlx::query(
            "UPDATE personal_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL \
             AND ($3 IS NULL OR user_name = $3)",
        )
        .bind(id)
        .bind(t)
        .bind(user)
        .execute(&self.writer)
        .await
        .map_err(q("revoke personal token"))?;
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE pat_id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(t)
        .execute(&self.writer)
        .await
        .map_err(q("revoke refresh tokens"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Record a use of a personal access token.
    pub async fn touch_personal_token(&self, id: &str) -> Result<(), MetaError> {
        sqlx::query("UPDATE personal_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now())
            .execute(&self.writer)
            .await
            .map_err(q("touch personal token"))?;
        Ok(())
    }

    /// Store a refresh token (by hash).
    pub async fn add_refresh_token(
        &self,
        hash: &str,
        user: &str,
        service: &str,
        client_id: &str,
        pat_id: Option<&str>,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, user_name, service, client_id, pat_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(hash)
        .bind(user)
        .bind(service)
        .bind(client_id)
        .bind(pat_id)
        .bind(now())
        .execute(&self.writer)
        .await
        .map_err(q("add refresh token"))?;
        Ok(())
    }

    /// Look up a live (unrevoked) refresh token by hash.
    pub async fn refresh_token(&self, hash: &str) -> Result<Option<RefreshToken>, MetaError> {
        let row = sqlx::query(
            "SELECT user_name, service, pat_id FROM refresh_tokens WHERE hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(q("look up refresh token"))?;
        Ok(row.map(|r| RefreshToken {
            user: r.get(0),
            service: r.get(1),
            pat_id: r.get(2),
        }))
    }

    /// Revoke every refresh token of a user. Returns how many.
    pub async fn revoke_refresh_tokens(&self, user: &str) -> Result<u64, MetaError> {
        let res = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_name = $1 AND revoked_at IS NULL",
        )
        .bind(user)
        .bind(now())
        .execute(&self.writer)
        .await
        .map_err(q("revoke refresh tokens"))?;
        Ok(res.rows_affected())
    }
}

fn pat_row(r: sqlx::sqlite::SqliteRow) -> PersonalToken {
    let scopes: String = r.get(3);
    PersonalToken {
        id: r.get(0),
        user: r.get(1),
        name: r.get(2),
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        secret_hash: r.get(4),
        created_at: r.get(5),
        expires_at: r.get(6),
        last_used_at: r.get(7),
        revoked_at: r.get(8),
    }
}
