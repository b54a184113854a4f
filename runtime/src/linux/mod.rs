//! The Linux half of the runtime: the syscall boundary ([`syscall`]), the
//! init plan computed from a spec ([`plan`]), the container's init sequence
//! ([`init`]) and the `clone3` that starts it ([`spawn`]).

pub(crate) mod exec;
pub mod init;
pub(crate) mod plan;
pub(crate) mod spawn;
pub mod syscall;

pub use plan::PlanError;
