//! The mmu crate's error type, for set-up failures (as opposed to guest faults, which are
//! [`crate::MemFault`] values handed to the CPU).

use thiserror::Error;

/// Errors from creating or configuring guest memory.
#[derive(Debug, Error)]
pub enum MmuError {
    /// The requested RAM size is zero or not a multiple of the page size.
    #[error("guest RAM size {0:#x} must be a non-zero multiple of 4 KiB")]
    BadRamSize(u64),
    /// The host refused the anonymous mapping that backs guest RAM.
    #[error("cannot map {size} bytes of guest RAM: {source}")]
    MapFailed {
        /// Bytes requested.
        size: u64,
        /// The host error.
        source: std::io::Error,
    },
    /// A physical range handed to a set-up routine lies outside RAM.
    #[error("guest physical range {addr:#x}+{len:#x} is outside RAM")]
    OutOfRange {
        /// Start of the range.
        addr: u64,
        /// Length of the range.
        len: u64,
    },
}
