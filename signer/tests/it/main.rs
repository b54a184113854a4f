//! Integration tests of bay-signer: whole repositories signed by the editor
//! and verified, every attack of issue 4 by name, key files, and interop
//! with Debian's notary CLI and notary-server.

mod attacks;
mod interop;
mod keystore;
mod repo;
mod support;
