//! End-to-end tests of the runtime against a busybox-static image built
//! here. They need root, overlayfs and cgroups; each test prints `SKIP`
//! and returns when those are missing.

mod support;

mod isolation;
mod layers;
mod limits;
mod lifecycle;
