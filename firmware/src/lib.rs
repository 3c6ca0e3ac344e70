//! Guest firmware: the Linux boot protocol, multiboot, boot page tables and ACPI tables.
//!
//! Not built yet: it arrives with the machine issue. The crate exists so the workspace has
//! its final shape and the dependency direction (src -> firmware -> mmu) is fixed from day one.

/// The kernel formats this build can load.
pub const KERNEL_FORMATS: &[&str] = &[];
