//! The softvisor JIT: guest basic blocks translated to host code with Cranelift.
//!
//! Not built yet (it is the JIT issue). Until then every guest instruction runs in the
//! reference interpreter of `softvisor-cpu`, and this crate only states that.

/// Whether this build has a JIT engine.
pub const AVAILABLE: bool = false;
