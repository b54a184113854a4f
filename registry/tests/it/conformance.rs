//! Our conformance suite, every group (the trust group included), against an
//! in-process bay-registry, with and without auth.

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_in_full() {
    let reg = support::spawn().await;
    let cfg = bay_conformance::Config::new(reg.url.clone());
    let report = bay_conformance::run(&cfg).await;
    for r in report.failures() {
        eprintln!("{r}");
    }
    eprintln!("conformance: {}", report.summary_line());
    assert_eq!(report.failed(), 0, "{}", report.summary_line());
    assert!(
        report.passed() > 50,
        "suspiciously few tests ran: {}",
        report.summary_line()
    );
    assert_trust_group_ran(&report, 0);
}

/// Every trust test ran (the group skips as a whole where no trust API is
/// served, which must not happen here) and at most `skips` were skipped.
fn assert_trust_group_ran(report: &bay_conformance::Report, skips: usize) {
    let trust: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.group == bay_conformance::Group::Trust)
        .collect();
    assert!(trust.len() >= 26, "trust group: only {} tests", trust.len());
    let skipped: Vec<_> = trust
        .iter()
        .filter(|r| matches!(r.outcome, bay_conformance::Outcome::Skipped(_)))
        .collect();
    assert!(skipped.len() <= skips, "trust tests skipped: {skipped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_with_auth_on() {
    use bay_registry::admin;
    use bay_registry::meta::RuleSubject;
    let reg = support::spawn_setup(
        |_| {},
        |meta| async move {
            admin::user_add(&meta, "conf", "conformance-pw", false, &[])
                .await
                .unwrap();
            admin::acl_add(
                &meta,
                RuleSubject::User("conf".into()),
                "conformance/**",
                &["pull".into(), "push".into(), "delete".into()],
            )
            .await
            .unwrap();
            // The trust API needs `*` for DELETE and POST …key (notary-server's
            // rule); grant it where the trust group's repositories live.
            admin::acl_add(
                &meta,
                RuleSubject::User("conf".into()),
                "conformance/trust-*",
                &["*".into()],
            )
            .await
            .unwrap();
        },
    )
    .await;
    // A genuinely expired token signed with the registry's own key.
    let keys = bay_registry::auth::jwt::TokenKeys::load_or_generate(
        &reg.root.join("token-signing-key.der"),
        "bay-registry",
        "bay-registry",
        300,
    )
    .unwrap();
    let (expired, _) = keys
        .issue_at("conf", vec![], chrono::Utc::now().timestamp() - 3600)
        .unwrap();
    let mut cfg = bay_conformance::Config::new(reg.url.clone());
    cfg.username = Some("conf".into());
    cfg.password = Some("conformance-pw".into());
    cfg.expired_token = Some(expired);
    let report = bay_conformance::run(&cfg).await;
    for r in report
        .results
        .iter()
        .filter(|r| !matches!(r.outcome, bay_conformance::Outcome::Passed))
    {
        eprintln!("{r}");
    }
    eprintln!("conformance with auth: {}", report.summary_line());
    assert_eq!(report.failed(), 0, "{}", report.summary_line());
    let auth_passed = report
        .results
        .iter()
        .filter(|r| {
            r.group == bay_conformance::Group::Auth && r.outcome == bay_conformance::Outcome::Passed
        })
        .count();
    assert_eq!(auth_passed, 8, "every auth test must run and pass");
    // Only the all-GUN changefeed may skip: it needs registry:catalog:*,
    // which a non-admin user does not get.
    assert_trust_group_ran(&report, 1);
}

/// The trust group against Debian's notary-server, the reference for the
/// wire: everything passes except the one place bay is deliberately
/// stricter (notary-server stores a validly signed 5 MiB targets file). This
/// keeps the suite honest about what is Notary's contract and what is ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_group_against_notary_server() {
    if !support::have("notary-server") {
        eprintln!("SKIP: notary-server (Debian package `notary`) is not installed");
        return;
    }
    let mut ns = crate::trust::start_notary_server().await;
    let mut cfg = bay_conformance::Config::new(ns.url.clone());
    cfg.groups = vec![bay_conformance::Group::Trust];
    let report = bay_conformance::run(&cfg).await;
    let _ = ns.child.kill().await;
    let failed: Vec<&str> = report.failures().map(|r| r.name.as_str()).collect();
    for r in report.failures() {
        eprintln!("{r}");
    }
    assert_eq!(
        failed,
        ["attack-oversized-metadata"],
        "{}",
        report.summary_line()
    );
    assert_eq!(report.skipped(), 0, "{}", report.summary_line());
    assert!(report.passed() >= 25, "{}", report.summary_line());
}
