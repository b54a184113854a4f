//! Flag groups and handlers of the commands that outgrew `main.rs`. Each
//! `docker run` flag group lives in its own file so that the run path, the
//! network and the resource/storage flags can change independently:
//! [`run`] holds `RunArgs` and flattens [`network::NetworkArgs`] and
//! [`resources::ResourceArgs`] into it; each group turns its flags into
//! fields of `bay_runtime::RunOptions` with `apply`.

pub mod container;
pub mod network;
pub mod resources;
pub mod run;
pub mod trust;
pub mod volume;
