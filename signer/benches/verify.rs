//! Full verification of a repository with 1,000 signed tags (issue 4 asks
//! for < 50 ms on one core). Run with `cargo bench -p bay-signer`.
//!
//! The repository is docker-shaped: 1,000 tags in `targets/releases` (one
//! ECDSA signer) and the same 1,000 in `targets`; verification starts from
//! the TOFU root and runs timestamp → snapshot → targets → releases, then
//! looks every tag up.

use std::time::{Duration, Instant};

use bay_signer::cert::{default_cert_validity, generate_root_certificate};
use bay_signer::editor::{NewRepoKeys, RepoEditor};
use bay_signer::key::{KeyAlgorithm, PrivateKey, Sign};
use bay_signer::names::{Gun, RoleName};
use bay_signer::schema::FileMeta;
use bay_signer::verify::{FetchedRepo, VerifyOptions, verify_repository};

const TAGS: usize = 1000;

fn main() {
    let gun = Gun::new("registry.example.com/team/app").expect("gun");
    let now = chrono::Utc::now();
    let root = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let targets = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let snapshot = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let timestamp = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let signer = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let mut ed = RepoEditor::create(
        gun.clone(),
        NewRepoKeys {
            root: generate_root_certificate(&root, &gun, now, default_cert_validity())
                .expect("cert"),
            targets: targets.public_key().clone(),
            snapshot: snapshot.public_key().clone(),
            timestamp: timestamp.public_key().clone(),
        },
        now,
    )
    .expect("editor");
    ed.add_delegation(
        &RoleName::releases(),
        &[signer.public_key().clone()],
        1,
        vec![String::new()],
    )
    .expect("delegation");
    for i in 0..TAGS {
        let mut digest = [0u8; 32];
        digest[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let meta = FileMeta::docker(digest, 1000 + i as u64);
        ed.add_target(&RoleName::releases(), &format!("v1.{i}"), meta.clone())
            .expect("add");
        ed.add_target(&RoleName::targets(), &format!("v1.{i}"), meta)
            .expect("add");
    }
    let t = Instant::now();
    let out = ed
        .sign(&[&root, &targets, &snapshot, &timestamp, &signer])
        .expect("sign");
    let sign_time = t.elapsed();
    let file = |name: &str| {
        out.iter()
            .find(|r| r.role.as_str() == name)
            .map(|r| r.bytes.clone())
            .expect("role signed")
    };
    let root_bytes = file("root");
    let fetched = FetchedRepo {
        newer_roots: vec![],
        timestamp: file("timestamp"),
        snapshot: file("snapshot"),
        targets: file("targets"),
        delegations: [(RoleName::releases(), file("targets/releases"))].into(),
    };
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let repo = verify_repository(gun.clone(), &root_bytes, &fetched, VerifyOptions::default())
            .expect("verify");
        let mut found = 0;
        for i in 0..TAGS {
            if repo.lookup(&format!("v1.{i}")).is_some() {
                found += 1;
            }
        }
        times.push(t.elapsed());
        assert_eq!(found, TAGS);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "full verification of {TAGS} signed tags (targets {} KiB, releases {} KiB): min {:.2} ms, median {:.2} ms, max {:.2} ms (signing all roles once: {:.2} ms)",
        fetched.targets.len() / 1024,
        fetched.delegations[&RoleName::releases()].len() / 1024,
        times[0].as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        sign_time.as_secs_f64() * 1e3,
    );
    assert!(
        median < Duration::from_millis(50),
        "median {median:?} is over the 50 ms budget"
    );
}
