//! The firmware crate's error type: everything that makes a kernel or initrd unbootable,
//! each with a message fit for a one-line report.

use thiserror::Error;

/// Why a guest could not be set up.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FirmwareError {
    /// The file is too short to hold a setup header.
    #[error("not a kernel: the file is too short ({0} bytes) for a bzImage")]
    TooShort(usize),
    /// The "HdrS" magic is missing (and it is not ELF or multiboot either).
    #[error("not a kernel: no bzImage \"HdrS\" signature, ELF header or multiboot header")]
    NoSignature,
    /// An ELF image that cannot be loaded.
    #[error("bad ELF kernel: {0}")]
    BadElf(&'static str),
    /// A multiboot image that cannot be loaded.
    #[error("bad multiboot kernel: {0}")]
    BadMultiboot(&'static str),
    /// The multiboot header requires what this loader does not offer.
    #[error("the multiboot kernel requires features this loader lacks (flags {0:#x}; video modes are not offered)")]
    MultibootRequirement(u32),
    /// The boot protocol is too old for a 64-bit entry.
    #[error("kernel boot protocol {major}.{minor:02} is too old (2.12 or later with a 64-bit entry point is needed)")]
    OldProtocol {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// The kernel has no 64-bit entry point.
    #[error("the kernel has no 64-bit entry point")]
    No64BitEntry,
    /// The kernel (with its decompression space) does not fit in RAM.
    #[error("the kernel needs {needed} MiB of memory but the guest has {available} MiB")]
    KernelTooLarge {
        /// MiB the kernel needs.
        needed: u64,
        /// MiB of RAM.
        available: u64,
    },
    /// The initrd does not fit below its highest allowed address.
    #[error("the initrd ({size} bytes) does not fit in guest memory below {limit:#x}")]
    InitrdTooLarge {
        /// Initrd size.
        size: u64,
        /// Highest usable address.
        limit: u64,
    },
    /// The command line is too long for the kernel.
    #[error("the kernel command line is {len} bytes; this kernel accepts at most {max}")]
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The kernel's limit.
        max: u32,
    },
    /// Guest RAM is too small for the boot structures.
    #[error("guest memory of {0} MiB is too small to boot Linux")]
    MemoryTooSmall(u64),
}
