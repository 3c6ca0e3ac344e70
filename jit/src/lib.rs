//! The softvisor JIT: guest basic blocks translated to host code with Cranelift.
//!
//! Being built (the JIT issue). What exists: the host code generator ([`backend`]) and the
//! block former ([`block`]). Until the translator and the block cache land, `--engine jit`
//! reports that it is not built and every guest instruction runs in the reference
//! interpreter of `softvisor-cpu`.

pub mod backend;
pub mod block;
mod error;

pub use error::JitError;

/// Whether this build has a JIT engine that can run guests.
pub const AVAILABLE: bool = false;
