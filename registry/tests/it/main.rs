//! bay-registry integration tests: one binary, grouped by concern.
//!
//! - `conformance`: our black-box suite against an in-process server;
//! - `bad_input`: the acceptance list of malformed requests;
//! - `crash`: SIGKILL in the middle of uploads and manifest PUTs;
//! - `skopeo`: round trips with the real skopeo client.

// Test helpers panic on failure by design: that is how a test reports it.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

mod auth;
mod bad_input;
mod conformance;
mod crash;
mod gc;
mod skopeo;
mod tls;
mod trust;
