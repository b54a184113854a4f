//! Assertions shared by every test, and the pure header parsers they use.
//!
//! A test body is an `async fn(Ctx) -> Check`. `Ok(())` means passed; the first failed
//! assertion returns [`Stop::Fail`] with a message naming the exchange; [`Stop::Skip`] records
//! that the server legitimately does not implement something the spec leaves optional.

use std::cmp::Ordering;

use crate::http::{HttpError, Response};

/// Why a test stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A spec requirement was violated.
    Fail(String),
    /// An optional behaviour is absent.
    Skip(String),
}

/// The result type of test steps.
pub(crate) type Check<T = ()> = Result<T, Stop>;

impl From<HttpError> for Stop {
    fn from(e: HttpError) -> Self {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        Stop::Fail(msg)
    }
}

/// Fail the test with a formatted message.
macro_rules! fail {
    ($($arg:tt)+) => { return Err($crate::check::Stop::Fail(format!($($arg)+))) };
}

/// Skip the test (optional behaviour absent) with a formatted reason.
macro_rules! skip {
    ($($arg:tt)+) => { return Err($crate::check::Stop::Skip(format!($($arg)+))) };
}

/// Fail unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond { return Err($crate::check::Stop::Fail(format!($($arg)+))); }
    };
}

pub(crate) use {ensure, fail, skip};

/// The 14 error codes of distribution-spec v1.1 §"Error Codes".
pub(crate) const SPEC_CODES: [&str; 14] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

/// Parse a spec error body `{"errors":[{"code":…}, …]}` and return its codes. Every code must
/// be one of [`SPEC_CODES`] and the list must not be empty.
pub(crate) fn error_codes(body: &[u8]) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON ({e})"))?;
    let errors = v
        .get("errors")
        .and_then(|e| e.as_array())
        .ok_or("body has no \"errors\" array")?;
    if errors.is_empty() {
        return Err("\"errors\" is empty".into());
    }
    let mut codes = Vec::new();
    for e in errors {
        let code = e
            .get("code")
            .and_then(|c| c.as_str())
            .ok_or("an error has no string \"code\"")?;
        if !SPEC_CODES.contains(&code) {
            return Err(format!("code {code:?} is not one of the 14 spec codes"));
        }
        if e.get("message").is_some_and(|m| !m.is_string()) {
            return Err("\"message\" is not a string".into());
        }
        codes.push(code.to_owned());
    }
    Ok(codes)
}

/// Require one of the given status codes.
pub(crate) fn expect_status(resp: &Response, allowed: &[u16]) -> Check {
    ensure!(
        allowed.contains(&resp.status.as_u16()),
        "expected {}: {}",
        fmt_statuses(allowed),
        resp.describe()
    );
    Ok(())
}

fn fmt_statuses(allowed: &[u16]) -> String {
    let v: Vec<String> = allowed.iter().map(u16::to_string).collect();
    v.join(" or ")
}

/// Require an error response: a status from `allowed` and, unless it is a HEAD response, a
/// spec error body carrying at least one of `codes` (any spec code when `codes` is empty).
pub(crate) fn expect_error(resp: &Response, allowed: &[u16], codes: &[&str]) -> Check<Vec<String>> {
    expect_status(resp, allowed)?;
    if resp.method == reqwest::Method::HEAD {
        return Ok(Vec::new());
    }
    let got = match error_codes(&resp.body) {
        Ok(c) => c,
        Err(why) => fail!("error body is not spec JSON ({why}): {}", resp.describe()),
    };
    if !codes.is_empty() {
        ensure!(
            got.iter().any(|c| codes.contains(&c.as_str())),
            "expected error code {}: {}",
            codes.join(" or "),
            resp.describe()
        );
    }
    Ok(got)
}

/// A required header.
pub(crate) fn require_header<'r>(resp: &'r Response, name: &str) -> Check<&'r str> {
    match resp.header(name) {
        Some(v) => Ok(v),
        None => fail!("missing {name} header: {}", resp.describe()),
    }
}

/// If `Docker-Content-Digest` is present it must equal `expected`.
pub(crate) fn digest_header_if_present(resp: &Response, expected: &str) -> Check {
    if let Some(d) = resp.header("docker-content-digest") {
        ensure!(
            d == expected,
            "Docker-Content-Digest {d} != {expected}: {}",
            resp.describe()
        );
    }
    Ok(())
}

/// The target of the first `rel="next"` link in `Link` header values (RFC 8288).
/// Handles several links per value, quoted or bare `rel`, and several relation types.
pub fn link_next<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    for value in values {
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>')?;
            let target = &after[..close];
            let params_all = &after[close + 1..];
            let params = match params_all.find('<') {
                Some(next) => &params_all[..next],
                None => params_all,
            };
            for p in params.split(';') {
                let p = p.trim().trim_end_matches(',').trim();
                if let Some((k, v)) = p.split_once('=')
                    && k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                {
                    return Some(target.to_owned());
                }
            }
            rest = params_all;
        }
    }
    None
}

/// Parse an upload `Range: <start>-<end>` header (inclusive, `^[0-9]+-[0-9]+$`).
pub fn parse_upload_range(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.trim().split_once('-')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A parsed `Content-Range: bytes <first>-<last>/<complete>` (RFC 9110 §14.4); `complete` is
/// `None` for `*`.
pub fn parse_content_range(s: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = s.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = parse_upload_range(range)?;
    if last < first {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => {
            let n: u64 = t.parse().ok()?;
            if last >= n {
                return None;
            }
            Some(n)
        }
    };
    Some((first, last, total))
}

/// Orders a registry may use for tag lists: distribution-spec v1.1.1 says lexical
/// ("case-insensitive alphanumeric"), main also allows plain byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOrder {
    /// Byte order (Go `sort.Strings`, Rust `str::cmp`).
    Bytewise,
    /// Case-insensitive order.
    CaseInsensitive,
}

impl TagOrder {
    /// Compare two tags in this order.
    pub fn cmp(self, a: &str, b: &str) -> Ordering {
        match self {
            TagOrder::Bytewise => a.cmp(b),
            TagOrder::CaseInsensitive => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
        }
    }

    /// Whether `tags` is non-decreasing in this order.
    pub fn is_sorted(self, tags: &[String]) -> bool {
        tags.windows(2)
            .all(|w| self.cmp(&w[0], &w[1]) != Ordering::Greater)
    }

    /// The order a list is sorted in (byte order preferred when both fit), if any.
    pub fn detect(tags: &[String]) -> Option<TagOrder> {
        [TagOrder::Bytewise, TagOrder::CaseInsensitive]
            .into_iter()
            .find(|o| o.is_sorted(tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_next_variants() {
        assert_eq!(
            link_next(["</v2/a/tags/list?n=2&last=b>; rel=\"next\""]).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            link_next(["<http://x/p?n=1>; rel=next"]).as_deref(),
            Some("http://x/p?n=1")
        );
        assert_eq!(
            link_next(["</first>; rel=\"prev\", </second>; rel=\"next last\""]).as_deref(),
            Some("/second")
        );
        assert_eq!(
            link_next(["</first>; rel=\"prev\"", "</third>; REL=\"Next\""]).as_deref(),
            Some("/third")
        );
        assert_eq!(link_next(["</only>; rel=\"prev\""]), None);
        assert_eq!(link_next(Vec::<&str>::new()), None);
        assert_eq!(link_next(["garbage <unclosed"]), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_upload_range("0-1023"), Some((0, 1023)));
        assert_eq!(parse_upload_range(" 0-0 "), Some((0, 0)));
        assert_eq!(parse_upload_range("bytes=0-1"), None);
        assert_eq!(parse_upload_range("0-"), None);
        assert_eq!(parse_upload_range("-5"), None);
        assert_eq!(
            parse_content_range("bytes 500-1499/2000"),
            Some((500, 1499, Some(2000)))
        );
        assert_eq!(parse_content_range("bytes 0-1/*"), Some((0, 1, None)));
        assert_eq!(parse_content_range("bytes 5-2/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("bytes */10"), None);
        assert_eq!(parse_content_range("500-1499/2000"), None);
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_codes(br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"x","detail":{}}]}"#)
                .unwrap(),
            ["BLOB_UNKNOWN"]
        );
        assert!(error_codes(br#"{"errors":[{"code":"UNKNOWN"}]}"#).is_err());
        assert!(error_codes(br#"{"errors":[]}"#).is_err());
        assert!(error_codes(b"404 page not found").is_err());
        assert!(error_codes(br#"{"errors":[{"message":"no code"}]}"#).is_err());
    }

    #[test]
    fn tag_orders() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let bytewise = s(&["A-2", "B4", "a3", "latest", "v1"]);
        let ci = s(&["A-2", "a3", "B4", "latest", "v1"]);
        let unsorted = s(&["latest", "v1", "B4", "v2", "a3"]);
        assert_eq!(TagOrder::detect(&bytewise), Some(TagOrder::Bytewise));
        assert_eq!(TagOrder::detect(&ci), Some(TagOrder::CaseInsensitive));
        assert_eq!(TagOrder::detect(&unsorted), None);
    }
}
