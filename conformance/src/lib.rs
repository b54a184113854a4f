//! A black-box conformance suite for OCI distribution-spec v1.1 registries.
//!
//! The suite speaks plain HTTP to any registry URL and checks the wire contract: status
//! codes, headers, exact bytes, error bodies and the ordering and pagination rules of the
//! spec. It owns no server code and never imports `bay-registry`; it is used three ways:
//! as this library ([`run`]), as the `bay-conformance` CLI against any URL, and from the
//! registry's integration tests against an in-process server.
//!
//! **Shape** (after youki's e2e framework and zot's `CheckWorkflows`): tests are organised
//! in [`Group`]s that follow the official suite's workflows plus ours (errors, robustness,
//! auth, and trust: the Notary v1 API and the content-trust attacks, with metadata built
//! and verified by `bay_signer`). Each test yields an [`Outcome`]:
//! - `Passed`: every requirement checked held;
//! - `Skipped(reason)`: the server does not implement something the spec leaves optional
//!   (MAY/SHOULD), e.g. single-POST uploads, Range, automatic mounts; a spec MUST is never
//!   skipped;
//! - `Failed(reason)`: a requirement failed; the reason names the request and response.
//!
//! **Independence.** Every test creates its own repository
//! `<namespace>/<group>-<test>-<random>`, so runs never interfere with each other or with
//! earlier runs against the same registry. Nothing is cleaned up (deletion is optional).
//!
//! **Leniency where the spec is open.** Relative and absolute `Location`s are both resolved
//! against the request URL; where the spec allows 201 or 202 both are accepted; tag lists may
//! be in byte order or case-insensitive order, but must be sorted in one of them.
//!
//! ```no_run
//! # async fn demo() {
//! let cfg = bay_conformance::Config::new("http://127.0.0.1:5000");
//! let report = bay_conformance::run(&cfg).await;
//! println!("{}", report.summary_line());
//! assert_eq!(report.failed(), 0);
//! # }
//! ```

mod check;
mod ctx;
pub mod http;

mod auth;
mod discovery;
mod errors;
mod management;
mod pull;
mod push;
mod robustness;
mod trust;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;

pub use check::{TagOrder, link_next, parse_content_range, parse_upload_range};

use crate::check::{Check, Stop};
use crate::ctx::Ctx;
use crate::http::{Credentials, Http};

/// What to test and how to reach it.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the registry, e.g. `http://127.0.0.1:5000`.
    pub url: String,
    /// Repository prefix for the test repositories (default `conformance`).
    pub namespace: String,
    /// Groups to run; empty means all.
    pub groups: Vec<Group>,
    /// User name for registry authentication.
    pub username: Option<String>,
    /// Password for registry authentication.
    pub password: Option<String>,
    /// A token known to be expired (for the auth group's expiry check).
    pub expired_token: Option<String>,
}

impl Config {
    /// All groups, namespace `conformance`, no credentials.
    pub fn new(url: impl Into<String>) -> Config {
        Config {
            url: url.into(),
            namespace: "conformance".to_owned(),
            groups: Vec::new(),
            username: None,
            password: None,
            expired_token: None,
        }
    }
}

/// A group of tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Blob and manifest reads, Range requests.
    Pull,
    /// Blob uploads (monolithic, streamed, chunked, mount) and manifest pushes.
    Push,
    /// Tag lists, `_catalog`, referrers.
    Discovery,
    /// Tag, manifest and blob deletion.
    Management,
    /// Error bodies, invalid names/digests/manifests, limits, path traversal.
    Errors,
    /// Concurrent pushes and uploads.
    Robustness,
    /// Token authentication; runs only with credentials.
    Auth,
    /// The Notary v1 trust API and the content-trust attacks (skipped where the URL
    /// serves no trust API).
    Trust,
}

impl Group {
    /// Every group, in run order.
    pub const ALL: [Group; 8] = [
        Group::Pull,
        Group::Push,
        Group::Discovery,
        Group::Management,
        Group::Errors,
        Group::Robustness,
        Group::Auth,
        Group::Trust,
    ];

    /// The lowercase name used on the command line and in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Pull => "pull",
            Group::Push => "push",
            Group::Discovery => "discovery",
            Group::Management => "management",
            Group::Errors => "errors",
            Group::Robustness => "robustness",
            Group::Auth => "auth",
            Group::Trust => "trust",
        }
    }

    fn cases(self) -> Vec<Case> {
        match self {
            Group::Pull => pull::cases(),
            Group::Push => push::cases(),
            Group::Discovery => discovery::cases(),
            Group::Management => management::cases(),
            Group::Errors => errors::cases(),
            Group::Robustness => robustness::cases(),
            Group::Auth => auth::cases(),
            Group::Trust => trust::cases(),
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A group name that is not one of [`Group::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown group {name:?} (expected pull, push, discovery, management, errors, robustness, auth or trust)"
)]
pub struct UnknownGroup {
    /// The rejected name.
    pub name: String,
}

impl FromStr for Group {
    type Err = UnknownGroup;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Group::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownGroup { name: s.to_owned() })
    }
}

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every checked requirement held.
    Passed,
    /// An optional behaviour is absent (or the suite cannot probe it here); the reason says
    /// which.
    Skipped(String),
    /// A requirement failed; the reason names the exchange.
    Failed(String),
}

/// The result of one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// The group it belongs to.
    pub group: Group,
    /// Its name, unique within the group.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl fmt::Display for TestResult {
    /// `PASS group/name`, `FAIL group/name: reason`, `SKIP group/name: reason`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Passed => write!(f, "PASS {}/{}", self.group, self.name),
            Outcome::Skipped(r) => write!(f, "SKIP {}/{}: {r}", self.group, self.name),
            Outcome::Failed(r) => write!(f, "FAIL {}/{}: {r}", self.group, self.name),
        }
    }
}

/// All results of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per test, in run order.
    pub results: Vec<TestResult>,
}

impl Report {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }

    /// Number of passed tests.
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Passed))
    }

    /// Number of failed tests.
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    /// Number of skipped tests.
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped(_)))
    }

    /// `N passed, M failed`, plus `, K skipped` when K > 0.
    pub fn summary_line(&self) -> String {
        let mut s = format!("{} passed, {} failed", self.passed(), self.failed());
        let k = self.skipped();
        if k > 0 {
            s.push_str(&format!(", {k} skipped"));
        }
        s
    }

    /// The failed tests.
    pub fn failures(&self) -> impl Iterator<Item = &TestResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
    }
}

/// A test: name and body.
pub(crate) struct Case {
    pub name: &'static str,
    pub run: fn(Ctx) -> BoxFuture<'static, Check>,
}

/// Build a [`Case`] from an `async fn(Ctx) -> Check`.
macro_rules! case {
    ($name:literal, $f:path) => {
        $crate::Case {
            name: $name,
            run: |c| Box::pin($f(c)),
        }
    };
}
pub(crate) use case;

/// A single test may not take longer than this.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Run the suite and return every result.
pub async fn run(cfg: &Config) -> Report {
    run_with_progress(cfg, |_| {}).await
}

/// Run the suite, calling `progress` with each result as soon as it is known.
pub async fn run_with_progress(cfg: &Config, mut progress: impl FnMut(&TestResult)) -> Report {
    let mut report = Report::default();
    let creds = match (&cfg.username, &cfg.password) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }),
        _ => None,
    };
    let groups: Vec<Group> = if cfg.groups.is_empty() {
        // The auth group needs credentials; without them it is not part of "all".
        Group::ALL
            .into_iter()
            .filter(|g| *g != Group::Auth || creds.is_some())
            .collect()
    } else {
        Group::ALL
            .into_iter()
            .filter(|g| cfg.groups.contains(g))
            .collect()
    };
    let ns = cfg.namespace.trim_matches('/').to_owned();
    // Test repositories are `<ns>/<group>-<test>-<hex>`; a namespace that breaks the name
    // grammar would turn every test into a NAME_INVALID failure.
    let first = groups.first().copied().unwrap_or(Group::Pull);
    if let Err(e) = oci_types::RepoName::parse(&format!("{ns}/probe")) {
        let msg = format!("namespace {ns:?} is not a valid repository prefix: {e}");
        return setup_failure(first, msg, &mut progress);
    }
    let http = match Http::new(&cfg.url, creds) {
        Ok(h) => h,
        Err(e) => return setup_failure(first, Stop::from(e).message(), &mut progress),
    };
    // Preflight: a registry that cannot be reached gives one clear failure instead of a
    // hundred identical ones.
    let ping = crate::http::Request {
        method: reqwest::Method::GET,
        url: http
            .base()
            .join("/v2/")
            .unwrap_or_else(|_| http.base().clone()),
        headers: reqwest::header::HeaderMap::new(),
        body: crate::http::Body::Empty,
    };
    if let Err(e) = http.send(&ping).await {
        let msg = format!("registry unreachable: {}", Stop::from(e).message());
        return setup_failure(first, msg, &mut progress);
    }
    for group in groups {
        let ctx = Ctx {
            http: http.clone(),
            ns: ns.clone(),
            group: group.as_str(),
            expired_token: cfg.expired_token.clone(),
        };
        for case in group.cases() {
            let fut = (case.run)(ctx.clone());
            let outcome = match tokio::time::timeout(TEST_TIMEOUT, fut).await {
                Ok(Ok(())) => Outcome::Passed,
                Ok(Err(Stop::Fail(m))) => Outcome::Failed(m),
                Ok(Err(Stop::Skip(m))) => Outcome::Skipped(m),
                Err(_) => Outcome::Failed(format!("timed out after {}s", TEST_TIMEOUT.as_secs())),
            };
            let r = TestResult {
                group,
                name: case.name.to_owned(),
                outcome,
            };
            tracing::info!(result = %r, "test finished");
            progress(&r);
            report.results.push(r);
        }
    }
    report
}

/// A report holding the single `setup` failure that stopped the run.
fn setup_failure(group: Group, msg: String, progress: &mut impl FnMut(&TestResult)) -> Report {
    let r = TestResult {
        group,
        name: "setup".to_owned(),
        outcome: Outcome::Failed(msg),
    };
    progress(&r);
    Report { results: vec![r] }
}

impl Stop {
    fn message(self) -> String {
        match self {
            Stop::Fail(m) | Stop::Skip(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(o: Outcome) -> TestResult {
        TestResult {
            group: Group::Pull,
            name: "x".into(),
            outcome: o,
        }
    }

    #[test]
    fn summary_line_counts() {
        let mut r = Report::default();
        assert_eq!(r.summary_line(), "0 passed, 0 failed");
        r.results.push(result(Outcome::Passed));
        r.results.push(result(Outcome::Failed("f".into())));
        r.results.push(result(Outcome::Passed));
        assert_eq!(r.summary_line(), "2 passed, 1 failed");
        r.results.push(result(Outcome::Skipped("s".into())));
        assert_eq!(r.summary_line(), "2 passed, 1 failed, 1 skipped");
        assert_eq!(r.failures().count(), 1);
    }

    #[test]
    fn group_names_round_trip() {
        for g in Group::ALL {
            assert_eq!(g.as_str().parse::<Group>().unwrap(), g);
        }
        assert!("PULL".parse::<Group>().is_ok());
        assert!("nonsense".parse::<Group>().is_err());
    }

    #[test]
    fn case_names_are_unique_per_group() {
        for g in Group::ALL {
            let mut names: Vec<_> = g.cases().iter().map(|c| c.name).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "duplicate test name in {g}");
            assert!(n > 0);
        }
    }

    #[tokio::test]
    async fn unreachable_registry_fails_instead_of_hanging() {
        // Port 9 (discard) on loopback is closed on CI machines; every test must fail fast.
        let mut cfg = Config::new("http://127.0.0.1:9");
        cfg.groups = vec![Group::Pull];
        let report = run(&cfg).await;
        assert_eq!(report.failed(), 1, "{report:?}");
        assert_eq!(report.results[0].name, "setup");
        assert_eq!(report.passed(), 0);
    }

    #[tokio::test]
    async fn bad_url_is_a_setup_failure() {
        let report = run(&Config::new("ftp://x")).await;
        assert_eq!(report.failed(), 1);
        assert_eq!(report.results[0].name, "setup");
    }
}
