//! Guest firmware: what a BIOS and bootloader would leave behind, built directly.
//!
//! [`linux::load`] follows the x86 Linux boot protocol (bzImage, zero page, e820, command
//! line, initrd) and prepares the 64-bit entry (identity page tables, a boot GDT). It returns
//! a plain [`BootDescription`]; applying it to a CPU is the caller's job, so `firmware` does
//! not depend on `cpu`.

pub mod acpi;
mod error;
pub mod layout;
pub mod linux;

pub use error::FirmwareError;

/// The CPU state a loaded guest starts in (64-bit mode, flat segments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootDescription {
    /// Entry point.
    pub rip: u64,
    /// RSI at entry (the zero page for Linux).
    pub rsi: u64,
    /// Initial stack pointer.
    pub rsp: u64,
    /// CR0 (PE, PG, ET, NE).
    pub cr0: u64,
    /// CR3 (the identity-mapping PML4).
    pub cr3: u64,
    /// CR4 (PAE).
    pub cr4: u64,
    /// EFER (LME, LMA).
    pub efer: u64,
    /// GDT base and limit.
    pub gdt: (u64, u16),
    /// The code selector and its descriptor.
    pub code: (u16, u64),
    /// The data selector (DS, ES, SS, FS, GS) and its descriptor.
    pub data: (u16, u64),
}

/// The kernel formats this build can load.
pub const KERNEL_FORMATS: &[&str] = &["bzImage (x86 boot protocol 2.12+, 64-bit entry)"];
