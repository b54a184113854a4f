//! `login` and `logout`.
//!
//! `bay login` trades a password (or personal access token) for a refresh
//! token and stores only that token; see [`crate::credentials`] for the file.

use std::io::Write;

use zeroize::Zeroizing;

use super::{CommandError, Env, out_err};
use crate::credentials::{self, AuthEntry, ConfigFile};
use crate::registry::{Anonymous, Challenge, RegistryClient, RegistryError};

/// What `bay login` ended up storing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// A refresh (identity) token; no password.
    Token,
    /// The registry issues no refresh tokens (Basic auth): the password, base64.
    Password,
    /// The registry asks for no credentials; nothing stored.
    Open,
}

/// `bay login [-u U] [--password-stdin] SERVER`: checks the credentials
/// against `server` (following its challenge, with the same plain-HTTP rule
/// as every other command) and stores the refresh token it hands out in
/// `env.config_file`. Messages go to `out` ("Login Succeeded") and `err`
/// (warnings).
pub async fn login(
    env: &Env,
    server: &str,
    username: &str,
    password: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<LoginOutcome, CommandError> {
    let host = credentials::parse_server(server)?;
    if username.is_empty() {
        return Err(CommandError::LoginInput {
            what: "a username is required",
        });
    }
    if password.is_empty() {
        return Err(CommandError::LoginInput {
            what: "a password is required",
        });
    }
    let mut opts = env.client_options();
    // The login checks exactly the credentials typed, never stored ones.
    opts.auth = std::sync::Arc::new(Anonymous);
    let client = RegistryClient::connect(&host, opts).await?;
    if client.challenge().is_none() {
        writeln!(
            err,
            "WARNING! {host} asks for no credentials; nothing was stored."
        )
        .map_err(out_err)?;
        writeln!(out, "Login Succeeded").map_err(out_err)?;
        return Ok(LoginOutcome::Open);
    }
    let token = match client.login(username, password).await {
        Ok(t) => t,
        Err(RegistryError::Unauthorized { host }) => {
            return Err(CommandError::LoginFailed { host });
        }
        Err(e) => return Err(e.into()),
    };
    let (entry, outcome) = match token {
        Some(t) => (
            AuthEntry {
                identitytoken: Some(t.to_string()),
                username: Some(username.to_owned()),
                ..AuthEntry::default()
            },
            LoginOutcome::Token,
        ),
        None => {
            let why = match client.challenge() {
                Some(Challenge::Bearer { .. }) => {
                    "its token server issued no refresh token (offline_token=true was ignored)"
                }
                _ => "it uses HTTP Basic authentication and cannot issue a token",
            };
            writeln!(
                err,
                "WARNING! {host}: {why}, so bay must store your password to use it later: it is saved \
                 base64-encoded (not encrypted) in {}, like docker does. Anyone who can read that file can \
                 read the password; prefer a personal access token, and `bay logout {host}` when you are done.",
                env.config_file.display()
            )
            .map_err(out_err)?;
            (
                AuthEntry {
                    auth: Some(credentials::encode_auth(username, password)),
                    username: Some(username.to_owned()),
                    ..AuthEntry::default()
                },
                LoginOutcome::Password,
            )
        }
    };
    ConfigFile::update(&env.config_file, |cfg| {
        // One entry per host, whatever form (`https://…`) an older one used.
        cfg.remove(&host);
        cfg.auths.insert(host.clone(), entry);
    })?;
    tracing::debug!(host, file = %env.config_file.display(), ?outcome, "login stored");
    writeln!(out, "Login Succeeded").map_err(out_err)?;
    Ok(outcome)
}

/// `bay logout SERVER`: removes the stored login from `env.config_file`
/// (docker's own file is left alone). Returns whether there was one.
pub fn logout(env: &Env, server: &str, out: &mut dyn Write) -> Result<bool, CommandError> {
    let host = credentials::parse_server(server)?;
    if ConfigFile::load(&env.config_file)?.entry(&host).is_none() {
        writeln!(out, "Not logged in to {host}").map_err(out_err)?;
        return Ok(false);
    }
    writeln!(out, "Removing login credentials for {host}").map_err(out_err)?;
    ConfigFile::update(&env.config_file, |cfg| cfg.remove(&host))?;
    Ok(true)
}

/// The user name stored for `server`, for the `Username (alice):` prompt.
pub fn stored_username(env: &Env, server: &str) -> Option<String> {
    let host = credentials::parse_server(server).ok()?;
    let cfg = ConfigFile::load(&env.config_file).ok()?;
    cfg.entry(&host)?.username.clone().filter(|u| !u.is_empty())
}

/// Reads one line of `input` as a password (`--password-stdin`), without the
/// line ending.
pub fn read_password_line(
    input: &mut dyn std::io::BufRead,
) -> Result<Zeroizing<String>, CommandError> {
    let mut line = Zeroizing::new(String::new());
    input
        .read_line(&mut line)
        .map_err(|source| CommandError::Io {
            op: "read",
            what: "the password from standard input".to_owned(),
            source,
        })?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    Ok(Zeroizing::new(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_line_keeps_inner_spaces() {
        let mut r = std::io::Cursor::new(b"  pass word \r\nsecond\n".to_vec());
        assert_eq!(read_password_line(&mut r).unwrap().as_str(), "  pass word ");
        let mut r = std::io::Cursor::new(Vec::new());
        assert_eq!(read_password_line(&mut r).unwrap().as_str(), "");
    }
}
