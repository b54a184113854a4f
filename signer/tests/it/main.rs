//! Integration tests of bay-signer: whole repositories signed by the editor
//! and verified, every attack of issue 4 by name, key files, and interop
//! with Debian's notary CLI and notary-server.

// Test helpers outside #[test] fns (fixtures, the notary-server harness) are
// not covered by clippy.toml's allow-unwrap-in-tests; a failed unwrap there
// is a failed test, which is what we want.
#![allow(clippy::unwrap_used)]

mod attacks;
mod fixtures;
mod interop;
mod keystore;
mod repo;
mod support;
