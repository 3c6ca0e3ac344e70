//! Guest firmware: what a BIOS and bootloader would leave behind, built directly.
//!
//! [`linux::load`] follows the x86 Linux boot protocol (bzImage, zero page, e820, command
//! line, initrd) and prepares the 64-bit entry (identity page tables, a boot GDT). It returns
//! a plain [`BootDescription`]; applying it to a CPU is the caller's job, so `firmware` does
//! not depend on `cpu`.

pub mod acpi;
pub mod bootparam;
pub mod elf;
mod error;
pub mod layout;
pub mod linux;
pub mod multiboot;

pub use error::FirmwareError;

/// The CPU state a loaded guest starts in (64-bit mode for Linux, 32-bit protected mode
/// for multiboot; flat segments).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootDescription {
    /// Entry point.
    pub rip: u64,
    /// RAX at entry (the multiboot magic).
    pub rax: u64,
    /// RBX at entry (the multiboot information).
    pub rbx: u64,
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
pub const KERNEL_FORMATS: &[&str] = &[
    "bzImage (x86 boot protocol 2.12+, 64-bit entry)",
    "ELF64 vmlinux (64-bit entry with a zero page)",
    "multiboot v1 (ELF32, or a.out-style address fields)",
];

/// Loads `kernel` in whichever format it is (bzImage, ELF64 vmlinux, multiboot), with
/// `initrd` and `cmdline`; `acpi_rsdp` reaches Linux kernels through the zero page.
pub fn load_kernel(
    ram: &mut softvisor_mmu::GuestRam,
    kernel: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    acpi_rsdp: Option<u64>,
) -> Result<BootDescription, FirmwareError> {
    if multiboot::is_multiboot(kernel) {
        multiboot::load(ram, kernel, initrd, cmdline)
    } else if elf::is_elf(kernel) {
        linux::load_vmlinux(ram, kernel, initrd, cmdline, acpi_rsdp)
    } else {
        linux::load(ram, kernel, initrd, cmdline, acpi_rsdp)
    }
}
