//! The softvisor JIT: guest basic blocks translated to host code with Cranelift.
//!
//! [`block`] forms a guest block with iced-x86 ([`region`]: with the blocks of a loop
//! through it), [`translate`] emits it as Cranelift IR
//! (registers in SSA values, lazy flags folded into branches, memory through the TLB
//! inline, the interpreter as a helper for everything else), [`compiler`] compiles it for
//! the host (on a thread of its own, if asked), [`backend`] places the code in
//! [`code_memory`], [`cache`] keeps blocks by physical address and mode, and
//! [`engine::Jit`] runs them with the interpreter's exact contract. [`check`] runs both
//! engines side by side.

pub mod backend;
pub mod block;
pub mod cache;
pub mod check;
pub mod code_memory;
pub mod compiler;
pub mod context;
pub mod engine;
mod error;
mod heat;
pub mod helpers;
pub mod jump_cache;
pub mod region;
pub mod translate;

pub use engine::{Jit, Stats, TRANSLATE_AFTER};
pub use error::JitError;

/// Whether this build has a JIT engine that can run guests.
pub const AVAILABLE: bool = true;
