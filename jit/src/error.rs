//! The JIT crate's error type.

use thiserror::Error;

/// Why code could not be generated.
#[derive(Debug, Error)]
pub enum JitError {
    /// This host has no Cranelift backend, or its flags were rejected.
    #[error("no code generator for this host: {0}")]
    Host(String),
    /// Cranelift rejected or failed to compile a function.
    #[error("code generation failed: {0}")]
    Codegen(String),
}
