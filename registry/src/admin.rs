//! Admin commands behind `bay-registry user|token|acl`, working directly on
//! the metadata database (safe while the server runs: SQLite WAL).
//! Every change is recorded as an audit log line, without secrets.

use std::path::Path;

use crate::auth::{self, AuthError, scope::Scope};
use crate::meta::{Meta, MetaError, PersonalToken, RuleSubject, StoredRule, User};

/// Errors of admin commands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Hashing failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The user already exists.
    #[error("user {0} already exists")]
    UserExists(String),
    /// No such user.
    #[error("no user named {0}")]
    NoUser(String),
    /// No such token.
    #[error("no active token with id {0}")]
    NoToken(String),
    /// No such rule.
    #[error("no rule with id {0}")]
    NoRule(i64),
    /// Input is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// Open the metadata database of a data root.
pub async fn open(root: &Path) -> Result<Meta, AdminError> {
    std::fs::create_dir_all(root)
        .map_err(|e| AdminError::Invalid(format!("cannot create {}: {e}", root.display())))?;
    Ok(Meta::open_sqlite(&crate::storage::layout::database_file(root), false).await?)
}

fn check_user_name(name: &str) -> Result<(), AdminError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "user name {name:?} must be 1-64 characters of letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

/// Minimum password length.
pub const MIN_PASSWORD: usize = 8;

fn check_password(pw: &str) -> Result<(), AdminError> {
    if pw.chars().count() < MIN_PASSWORD {
        return Err(AdminError::Invalid(format!(
            "passwords must have at least {MIN_PASSWORD} characters"
        )));
    }
    Ok(())
}

/// `user add`
pub async fn user_add(
    meta: &Meta,
    name: &str,
    password: &str,
    admin: bool,
    groups: &[String],
) -> Result<(), AdminError> {
    check_user_name(name)?;
    check_password(password)?;
    let pw = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
        .await
        .map_err(|e| AdminError::Invalid(e.to_string()))??;
    if !meta.add_user(name, &hash, admin, groups).await? {
        return Err(AdminError::UserExists(name.to_owned()));
    }
    tracing::info!(target: "audit", event = "user-add", user = name, admin, groups = ?groups, "user created");
    Ok(())
}

/// `user del`: the user's tokens and refresh tokens go with it.
pub async fn user_del(meta: &Meta, name: &str) -> Result<(), AdminError> {
    if !meta.delete_user(name).await? {
        return Err(AdminError::NoUser(name.to_owned()));
    }
    tracing::info!(target: "audit", event = "user-del", user = name, "user deleted");
    Ok(())
}

/// `user passwd`: also revokes the user's refresh tokens.
pub async fn user_passwd(meta: &Meta, name: &str, password: &str) -> Result<(), AdminError> {
    check_password(password)?;
    let pw = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pw))
        .await
        .map_err(|e| AdminError::Invalid(e.to_string()))??;
    if !meta.set_password(name, &hash).await? {
        return Err(AdminError::NoUser(name.to_owned()));
    }
    let n = meta.revoke_refresh_tokens(name).await?;
    tracing::info!(target: "audit", event = "user-passwd", user = name, revoked_refresh_tokens = n, "password changed");
    Ok(())
}

/// `user logout`: revoke every refresh token (login session) of a user.
pub async fn user_logout(meta: &Meta, name: &str) -> Result<u64, AdminError> {
    if meta.user(name).await?.is_none() {
        return Err(AdminError::NoUser(name.to_owned()));
    }
    let n = meta.revoke_refresh_tokens(name).await?;
    tracing::info!(target: "audit", event = "user-logout", user = name, revoked_refresh_tokens = n, "sessions revoked");
    Ok(n)
}

/// `user list`
pub async fn user_list(meta: &Meta) -> Result<Vec<User>, AdminError> {
    Ok(meta.users().await?)
}

/// Parse `30d`, `12h`, `90m`, `3600s` or a bare number of days.
pub fn parse_duration_secs(s: &str) -> Result<i64, AdminError> {
    let (num, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(s.trim().len()),
    );
    let n: i64 = num
        .parse()
        .map_err(|_| AdminError::Invalid(format!("bad duration {s:?}: use e.g. 30d, 12h, 90m")))?;
    let mult = match unit {
        "" | "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        "w" => 7 * 86_400,
        _ => {
            return Err(AdminError::Invalid(format!(
                "bad duration unit in {s:?}: use s, m, h, d or w"
            )));
        }
    };
    if n < 0 || (n == 0 && unit != "s") {
        return Err(AdminError::Invalid(
            "durations must be positive (0s is allowed for gc --grace)".into(),
        ));
    }
    Ok(n * mult)
}

/// `token create`: returns the record and the secret (shown once).
pub async fn token_create(
    meta: &Meta,
    user: &str,
    name: &str,
    scopes: &[String],
    expires_secs: Option<i64>,
) -> Result<(PersonalToken, String), AdminError> {
    if meta.user(user).await?.is_none() {
        return Err(AdminError::NoUser(user.to_owned()));
    }
    if scopes.is_empty() {
        return Err(AdminError::Invalid(
            "at least one --scope is required, e.g. 'repository:team/*:pull'".into(),
        ));
    }
    for s in scopes {
        if Scope::parse(s).is_none_or(|p| p.actions.is_empty()) {
            return Err(AdminError::Invalid(format!(
                "scope {s:?} is not type:name:actions (e.g. repository:team/*:pull,push)"
            )));
        }
    }
    let expires_at = expires_secs.map(|s| chrono::Utc::now().timestamp() + s);
    let (record, secret) = auth::new_personal_token(user, name, scopes.to_vec(), expires_at);
    meta.add_personal_token(&record).await?;
    tracing::info!(target: "audit", event = "token-create", user, id = %record.id, scopes = ?scopes, "personal access token created");
    Ok((record, secret))
}

/// `token list`
pub async fn token_list(meta: &Meta, user: Option<&str>) -> Result<Vec<PersonalToken>, AdminError> {
    Ok(meta.personal_tokens(user).await?)
}

/// `token revoke`
pub async fn token_revoke(meta: &Meta, id: &str, user: Option<&str>) -> Result<(), AdminError> {
    if !meta.revoke_personal_token(id, user).await? {
        return Err(AdminError::NoToken(id.to_owned()));
    }
    tracing::info!(target: "audit", event = "token-revoke", id, "personal access token revoked");
    Ok(())
}

/// `acl add`
pub async fn acl_add(
    meta: &Meta,
    subject: RuleSubject,
    pattern: &str,
    actions: &[String],
) -> Result<i64, AdminError> {
    if actions.is_empty()
        || actions
            .iter()
            .any(|a| !matches!(a.as_str(), "pull" | "push" | "delete" | "*"))
    {
        return Err(AdminError::Invalid(
            "actions must be a list of pull, push, delete or *".into(),
        ));
    }
    let valid = pattern.split('/').all(|seg| {
        !seg.is_empty()
            && seg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-*".contains(&b))
    });
    if !valid {
        return Err(AdminError::Invalid(format!(
            "repository pattern {pattern:?} is not a name with optional * or ** components"
        )));
    }
    let id = meta.add_rule(&subject, pattern, actions).await?;
    tracing::info!(target: "audit", event = "acl-add", id, subject = ?subject, pattern, actions = ?actions, "rule added");
    Ok(id)
}

/// `acl list`
pub async fn acl_list(meta: &Meta) -> Result<Vec<StoredRule>, AdminError> {
    Ok(meta.rules().await?)
}

/// `acl del`
pub async fn acl_del(meta: &Meta, id: i64) -> Result<(), AdminError> {
    if !meta.delete_rule(id).await? {
        return Err(AdminError::NoRule(id));
    }
    tracing::info!(target: "audit", event = "acl-del", id, "rule removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_duration_secs("12h").unwrap(), 12 * 3_600);
        assert_eq!(parse_duration_secs("7").unwrap(), 7 * 86_400);
        assert!(parse_duration_secs("soon").is_err());
        assert!(parse_duration_secs("0d").is_err());
        assert!(parse_duration_secs("3y").is_err());
    }
}
