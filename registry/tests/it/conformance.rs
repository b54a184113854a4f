//! Our conformance suite, every group, against an in-process bay-registry.

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_in_full() {
    let reg = support::spawn().await;
    let cfg = bay_conformance::Config::new(reg.url.clone());
    let report = bay_conformance::run(&cfg).await;
    for r in report.failures() {
        eprintln!("FAIL {r}");
    }
    eprintln!("conformance: {}", report.summary_line());
    assert_eq!(report.failed(), 0, "{}", report.summary_line());
    assert!(
        report.passed() > 50,
        "suspiciously few tests ran: {}",
        report.summary_line()
    );
}
