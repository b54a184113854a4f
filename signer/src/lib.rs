//! # bay-signer: Docker Content Trust (Notary v1) metadata
//!
//! This crate owns the trust data of bay: TUF metadata exactly as Notary 0.7
//! writes it, the keys that sign it, and the verification a client runs
//! before it trusts a tag. It does no network I/O; the registry's trust
//! server and the `bay trust` commands are built on it.
//!
//! ## What is where
//!
//! - [`schema`]: the roles (`Root`, `Targets` with its always-present
//!   `delegations`, `Snapshot`, `Timestamp`) in [`Signed<T>`](schema::Signed)
//!   envelopes. Unknown fields are kept, `expires` is written like Go's
//!   RFC3339Nano in UTC.
//! - [`canonical`]: docker/go's canonical JSON. Signatures always cover the
//!   canonical form of `signed`; verification parses and re-canonicalizes
//!   (Go HTML-escapes `<>&` on the wire, so raw bytes are never sliced).
//! - [`key`]: public keys (`ed25519`, `ecdsa`, `ecdsa-x509`), key IDs
//!   (TUF ID and, for certificates, the canonical ID), raw r‖s ECDSA
//!   signatures, in-memory [`PrivateKey`](key::PrivateKey)s and the
//!   [`Sign`](key::Sign) trait.
//! - [`cert`]: root keys are self-signed certificates whose CN is the GUN.
//! - [`editor`]: [`RepoEditor`](editor::RepoEditor) creates and changes a
//!   repository and ends in [`SignedRole`](editor::SignedRole)s: the exact
//!   bytes to upload per role (Go's own serialization, so notary-server's
//!   checksums stay consistent). [`build_snapshot`](editor::build_snapshot)
//!   and [`build_timestamp`](editor::build_timestamp) are for the server.
//! - [`verify`]: [`TrustedRepo`](verify::TrustedRepo) takes raw fetched
//!   bytes in TUF order (root chain, timestamp, snapshot, targets,
//!   delegations) and checks sizes, thresholds (a key counts once), expiry
//!   ([`ExpirationEnforcement`](verify::ExpirationEnforcement), Safe by
//!   default), versions against the previously trusted ones, hashes and
//!   lengths, and delegation paths. `lookup` answers like docker:
//!   `targets/releases`, then `targets`, with the signing role and keys.
//! - [`keystore`] and [`passphrase`]: private keys at rest (Argon2id +
//!   XChaCha20-Poly1305, one 0600 file per key with role/gun headers),
//!   import of Notary's encrypted PEM keys, and passphrases from docker's
//!   environment variables or a prompt.
//! - [`names`]: validated [`Gun`](names::Gun) and [`RoleName`](names::RoleName).
//!
//! ## Sign, then verify
//!
//! ```
//! use bay_signer::cert::{default_cert_validity, generate_root_certificate};
//! use bay_signer::editor::{NewRepoKeys, RepoEditor};
//! use bay_signer::key::{KeyAlgorithm, PrivateKey, Sign};
//! use bay_signer::names::{Gun, RoleName};
//! use bay_signer::schema::FileMeta;
//! use bay_signer::verify::{FetchedRepo, VerifyOptions, verify_repository};
//!
//! let gun = Gun::new("registry.example.com/team/app")?;
//! let now = chrono::Utc::now();
//! let root = PrivateKey::generate(KeyAlgorithm::EcdsaP256); // the offline key
//! let targets = PrivateKey::generate(KeyAlgorithm::EcdsaP256); // the tagging key
//! let snapshot = PrivateKey::generate(KeyAlgorithm::Ed25519);
//! let timestamp = PrivateKey::generate(KeyAlgorithm::Ed25519); // the server's
//!
//! let mut editor = RepoEditor::create(
//!     gun.clone(),
//!     NewRepoKeys {
//!         root: generate_root_certificate(&root, &gun, now, default_cert_validity())?,
//!         targets: targets.public_key().clone(),
//!         snapshot: snapshot.public_key().clone(),
//!         timestamp: timestamp.public_key().clone(),
//!     },
//!     now,
//! )?;
//! // docker's target for `app:v1`: the manifest digest and size.
//! editor.add_target(&RoleName::targets(), "v1", FileMeta::docker([7; 32], 525))?;
//! let files = editor.sign(&[&root, &targets, &snapshot, &timestamp])?;
//! let file = |role: &str| files.iter().find(|f| f.role.as_str() == role).map(|f| f.bytes.clone());
//!
//! // A client trusts the root on first use and verifies the rest.
//! let fetched = FetchedRepo {
//!     timestamp: file("timestamp").unwrap(),
//!     snapshot: file("snapshot").unwrap(),
//!     targets: file("targets").unwrap(),
//!     ..FetchedRepo::default()
//! };
//! let repo = verify_repository(gun, &file("root").unwrap(), &fetched, VerifyOptions::default())?;
//! let v1 = repo.lookup("v1").expect("v1 is signed");
//! assert_eq!(v1.digest(), format!("sha256:{}", "07".repeat(32)));
//! assert_eq!(v1.role, RoleName::targets());
//! assert_eq!(v1.signers, vec![targets.public_key().key_id()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Invariants
//!
//! - Signatures are over canonical bytes; hashes are over the exact bytes
//!   served; the editor hands out exactly the bytes it hashed.
//! - Expiry is enforced unless a caller asks for `Unsafe` by name.
//! - Secrets live in types that zeroize on drop and are never logged.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod canonical;
pub mod cert;
pub mod editor;
pub mod key;
pub mod keystore;
pub mod names;
pub mod passphrase;
pub mod schema;
pub mod verify;
