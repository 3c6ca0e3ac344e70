//! The cpu crate's error type, for host-side misuse (as opposed to guest exceptions, which
//! are [`crate::Exception`] values).

use thiserror::Error;

/// Errors the cpu crate reports to its caller.
#[derive(Debug, Error)]
pub enum CpuError {
    /// The decoder bitness derived from the CPU mode is not 16, 32 or 64.
    #[error("unsupported code bitness {0}")]
    BadBitness(u32),
}
