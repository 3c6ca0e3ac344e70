//! Where the firmware puts things in guest-physical memory (all below 1 MiB except the
//! kernel and initrd), in one place.

/// The boot GDT.
pub const GDT: u64 = 0x500;
/// The zero page (struct boot_params).
pub const ZERO_PAGE: u64 = 0x7000;
/// The identity-mapping PML4; the PDPT and four page directories follow it.
pub const PML4: u64 = 0x9000;
/// Boot stack top (grows down below the zero page's neighbourhood).
pub const BOOT_STACK: u64 = 0x8ff0;
/// The kernel command line.
pub const CMDLINE: u64 = 0x20000;
/// Room reserved for the command line.
pub const CMDLINE_MAX: u64 = 0x10000;
/// Start of the EBDA-style reserved area below 1 MiB.
pub const LOW_RESERVED: u64 = 0x9fc00;
/// The ACPI tables, RSDP first (inside the reserved BIOS area, where a kernel that scans for
/// the RSDP would also look).
pub const ACPI_TABLES: u64 = 0xe_0000;
/// Where the protected-mode kernel is loaded (1 MiB), as bootloaders do.
pub const KERNEL_LOAD: u64 = 0x10_0000;
/// Start of the 32-bit MMIO hole (LAPIC, IOAPIC, ...): RAM stops below it.
pub const MMIO_HOLE: u64 = 0xc000_0000;
