//! TUF metadata in the Notary v1 format.
#![forbid(unsafe_code)]

pub mod canonical;
pub mod cert;
pub mod editor;
pub mod key;
pub mod keystore;
pub mod names;
pub mod passphrase;
pub mod schema;
pub mod verify;
