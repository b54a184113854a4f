//! End-to-end tests of the runtime against a busybox-static image built
//! here. They need root, overlayfs and cgroups; each test prints `SKIP`
//! and returns when those are missing.

// Tests may unwrap (house rules); helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

mod support;

mod cgroup_v2;
mod isolation;
mod layers;
mod lifecycle;
mod limits;
mod network;
