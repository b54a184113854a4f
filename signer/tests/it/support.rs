//! A repository fixture: four keys, an editor, and the files "served".

use std::collections::BTreeMap;

use bay_signer::cert::{default_cert_validity, generate_root_certificate};
use bay_signer::editor::{NewRepoKeys, RepoEditor, SignedRole};
use bay_signer::key::{KeyAlgorithm, PrivateKey, Sign};
use bay_signer::names::{Gun, RoleName};
use bay_signer::schema::FileMeta;
use bay_signer::verify::{FetchedRepo, TrustedRepo, VerifyError, VerifyOptions, verify_repository};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub struct Fixture {
    pub gun: Gun,
    pub now: DateTime<Utc>,
    pub root: PrivateKey,
    pub targets: PrivateKey,
    pub snapshot: PrivateKey,
    pub timestamp: PrivateKey,
    pub editor: RepoEditor,
    /// Latest bytes per role, as a server would serve them.
    pub files: BTreeMap<RoleName, Vec<u8>>,
    /// `files` after each publish.
    pub history: Vec<BTreeMap<RoleName, Vec<u8>>>,
    /// The first root (what a TOFU client pinned).
    pub first_root: Vec<u8>,
}

pub fn digest(n: u8) -> [u8; 32] {
    [n; 32]
}

impl Fixture {
    pub fn with_gun(gun: &str, cert_gun: &str) -> Fixture {
        let gun = Gun::new(gun).unwrap();
        let now = Utc::now();
        let root = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let targets = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let snapshot = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let timestamp = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let cert = generate_root_certificate(
            &root,
            &Gun::new(cert_gun).unwrap(),
            now,
            default_cert_validity(),
        )
        .unwrap();
        let editor = RepoEditor::create(
            gun.clone(),
            NewRepoKeys {
                root: cert,
                targets: targets.public_key().clone(),
                snapshot: snapshot.public_key().clone(),
                timestamp: timestamp.public_key().clone(),
            },
            now,
        )
        .unwrap();
        let mut f = Fixture {
            gun,
            now,
            root,
            targets,
            snapshot,
            timestamp,
            editor,
            files: BTreeMap::new(),
            history: Vec::new(),
            first_root: Vec::new(),
        };
        f.publish(&[]);
        f.first_root = f.files[&RoleName::root()].clone();
        f
    }

    pub fn new() -> Fixture {
        Self::with_gun("example.com/test/repo", "example.com/test/repo")
    }

    /// Signs every change with the four keys plus `extra`, records the files.
    pub fn publish(&mut self, extra: &[&dyn Sign]) -> Vec<SignedRole> {
        let mut signers: Vec<&dyn Sign> =
            vec![&self.root, &self.targets, &self.snapshot, &self.timestamp];
        signers.extend_from_slice(extra);
        let out = self.editor.sign(&signers).unwrap();
        for role in &out {
            self.files.insert(role.role.clone(), role.bytes.clone());
        }
        self.history.push(self.files.clone());
        out
    }

    pub fn add_tag(&mut self, role: &RoleName, tag: &str, n: u8) {
        self.editor
            .add_target(role, tag, FileMeta::docker(digest(n), 100 + u64::from(n)))
            .unwrap();
    }

    pub fn fetched_from(files: &BTreeMap<RoleName, Vec<u8>>) -> FetchedRepo {
        let mut f = FetchedRepo {
            newer_roots: vec![],
            timestamp: files[&RoleName::timestamp()].clone(),
            snapshot: files[&RoleName::snapshot()].clone(),
            targets: files[&RoleName::targets()].clone(),
            delegations: BTreeMap::new(),
        };
        for (name, bytes) in files {
            if name.is_delegation() {
                f.delegations.insert(name.clone(), bytes.clone());
            }
        }
        f
    }

    pub fn fetched(&self) -> FetchedRepo {
        Self::fetched_from(&self.files)
    }

    pub fn verify(&self, opts: VerifyOptions) -> Result<TrustedRepo, VerifyError> {
        self.verify_files(&self.fetched(), opts)
    }

    pub fn verify_files(
        &self,
        fetched: &FetchedRepo,
        opts: VerifyOptions,
    ) -> Result<TrustedRepo, VerifyError> {
        verify_repository(
            self.gun.clone(),
            &self.files[&RoleName::root()],
            fetched,
            opts,
        )
    }

    /// Re-signs snapshot and timestamp over `files` (what a server holding
    /// those keys, or an attacker who stole them, can do).
    pub fn resnapshot(
        &self,
        files: &mut BTreeMap<RoleName, Vec<u8>>,
        snap_version: u64,
        ts_version: u64,
    ) {
        let expires = self.now + chrono::Duration::days(10);
        let roles: Vec<(&RoleName, &[u8])> = files
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "snapshot" | "timestamp"))
            .map(|(n, b)| (n, b.as_slice()))
            .collect();
        let snap = bay_signer::editor::build_snapshot(snap_version, expires, roles, &self.snapshot)
            .unwrap();
        let ts =
            bay_signer::editor::build_timestamp(ts_version, expires, &snap.bytes, &self.timestamp)
                .unwrap();
        files.insert(RoleName::snapshot(), snap.bytes);
        files.insert(RoleName::timestamp(), ts.bytes);
    }
}

/// Edits the JSON of a file (keeping its signatures) and re-serializes it.
pub fn tamper(bytes: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(bytes).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

pub fn version_of(bytes: &[u8]) -> u64 {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    v["signed"]["version"].as_u64().unwrap()
}
