//! Registry authentication: where credentials come from ([`AuthProvider`]) and
//! how `WWW-Authenticate` challenges are answered.
//!
//! The client never decides *how* a user logged in. It asks the provider for
//! the host's [`Credentials`] when a registry challenges it: Basic credentials
//! go to a Basic realm or a token server's GET endpoint; a refresh (identity)
//! token is exchanged with OAuth2 `POST grant_type=refresh_token`, so bay never
//! needs a password once `bay login` has stored a token.

use std::collections::HashMap;

use zeroize::Zeroizing;

/// Secrets for one registry host.
#[derive(Clone)]
pub enum Credentials {
    /// A user name and password (or personal access token).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: Zeroizing<String>,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`) from `bay login`.
    RefreshToken {
        /// User name the token belongs to (sent as `account`).
        username: String,
        /// The refresh token.
        token: Zeroizing<String>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::RefreshToken { username, .. } => {
                write!(f, "RefreshToken({username}, ***)")
            }
        }
    }
}

/// Where the registry client gets credentials; `bay login` implements this over `$BAY_HOME/config.json`.
pub trait AuthProvider: Send + Sync {
    /// Credentials for `host` (`name[:port]`), or `None` for anonymous access.
    fn credentials(&self, host: &str) -> Option<Credentials>;
}

/// No credentials anywhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct Anonymous;

impl AuthProvider for Anonymous {
    fn credentials(&self, _host: &str) -> Option<Credentials> {
        None
    }
}

/// A fixed host → credentials map (tests, `--username/--password-stdin` one-offs).
#[derive(Debug, Default, Clone)]
pub struct StaticAuth(pub HashMap<String, Credentials>);

impl AuthProvider for StaticAuth {
    fn credentials(&self, host: &str) -> Option<Credentials> {
        self.0.get(host).cloned()
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm="…"`.
    Basic,
    /// `Bearer realm="…",service="…",scope="…"`.
    Bearer {
        /// Token endpoint URL.
        realm: String,
        /// `service` parameter, if any.
        service: Option<String>,
        /// `scope` parameter, if any (space-separated scopes).
        scope: Option<String>,
    },
}

/// Parses the first challenge we understand from a `WWW-Authenticate` value.
/// Parameters are `key=value` or `key="quoted, value"`, comma separated.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(pk, _)| pk.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_owned();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                // Push whole UTF-8 characters.
                let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
                val.push_str(&s[i..i + ch_len]);
                i += ch_len;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i].trim().to_owned();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

/// A token-server scope, e.g. `repository:team/app:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// `repository:<repo>:<actions>`.
    pub fn repository(repo: &str, actions: &str) -> Self {
        Scope(format!("repository:{repo}:{actions}"))
    }

    /// The scope text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_with_commas_in_quotes() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:foo/bar:pull,push",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:foo/bar:pull,push".into()),
            }
        );
    }

    #[test]
    fn parses_basic_and_unquoted() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        let c = parse_challenge("bearer realm=http://127.0.0.1:1/token, service=x").unwrap();
        assert!(
            matches!(c, Challenge::Bearer { realm, service: Some(s), scope: None }
            if realm == "http://127.0.0.1:1/token" && s == "x")
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "realm is required"
        );
    }
}
