//! The x86 Linux boot protocol for a bzImage with a 64-bit entry point: validate the setup
//! header, load the protected-mode kernel at 1 MiB, place the initrd as high as allowed,
//! write the command line and the zero page (with an e820 map), and build identity page
//! tables and a GDT with the selectors the protocol expects (__BOOT_CS 0x10, __BOOT_DS 0x18).
//!
//! The structures are [`crate::bootparam`]'s, little-endian on any host.

use crate::bootparam::{BootParams, E820Entry, SetupHeader};
use crate::layout::{CMDLINE, GDT, KERNEL_LOAD, LOW_RESERVED, MMIO_HOLE, PML4, ZERO_PAGE};
use crate::{elf, BootDescription, FirmwareError};
use softvisor_mmu::GuestRam;
use std::mem::size_of;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Offset of the setup header in a bzImage.
const HEADER_OFFSET: usize = 0x1f1;
/// "HdrS".
const HDRS: u32 = 0x5372_6448;
/// xloadflags: the kernel has a 64-bit entry point at load address + 0x200.
const XLF_KERNEL_64: u16 = 1;
/// loadflags: the protected-mode kernel is loaded at 1 MiB or above.
const LOADED_HIGH: u8 = 0x01;
/// The command-line limit of x86 Linux (COMMAND_LINE_SIZE), for a vmlinux without a header.
const VMLINUX_CMDLINE_SIZE: u32 = 2048;
/// loadflags: the heap end pointer is valid.
const CAN_USE_HEAP: u8 = 0x80;
const E820_RAM: u32 = 1;
const E820_RESERVED: u32 = 2;
/// The smallest guest the loader accepts.
const MIN_RAM: u64 = 16 << 20;

/// Reads the setup header of `kernel`, validated for a 64-bit boot.
pub fn read_header(kernel: &[u8]) -> Result<SetupHeader, FirmwareError> {
    let end = HEADER_OFFSET + size_of::<SetupHeader>();
    if kernel.len() < end.max(0x1000) {
        return Err(FirmwareError::TooShort(kernel.len()));
    }
    let header = SetupHeader::read_from_bytes(&kernel[HEADER_OFFSET..end])
        .map_err(|_| FirmwareError::TooShort(kernel.len()))?;
    if header.header.get() != HDRS {
        return Err(FirmwareError::NoSignature);
    }
    let version = header.version.get();
    if version < 0x020c {
        return Err(FirmwareError::OldProtocol {
            major: (version >> 8) as u8,
            minor: version as u8,
        });
    }
    if header.xloadflags.get() & XLF_KERNEL_64 == 0 {
        return Err(FirmwareError::No64BitEntry);
    }
    Ok(header)
}

/// The e820 map for `ram_size` bytes of RAM: low memory, the reserved area below 1 MiB,
/// and the rest.
pub(crate) fn e820_map(ram_size: u64) -> Vec<E820Entry> {
    let entry = |addr: u64, size: u64, kind: u32| E820Entry {
        addr: addr.into(),
        size: size.into(),
        kind: kind.into(),
    };
    vec![
        entry(0, LOW_RESERVED, E820_RAM),
        entry(LOW_RESERVED, 0x10_0000 - LOW_RESERVED, E820_RESERVED),
        entry(0x10_0000, ram_size - 0x10_0000, E820_RAM),
    ]
}

/// Identity-maps the first 4 GiB with 2 MiB pages (PML4, one PDPT, four PDs).
fn write_page_tables(ram: &mut GuestRam) -> Result<(), FirmwareError> {
    let pdpt = PML4 + 0x1000;
    let put = |ram: &mut GuestRam, addr: u64, value: u64| {
        ram.write_bytes(addr, &value.to_le_bytes())
            .map_err(|_| FirmwareError::MemoryTooSmall(ram.size() >> 20))
    };
    put(ram, PML4, pdpt | 3)?;
    for gib in 0..4u64 {
        let pd = pdpt + 0x1000 * (gib + 1);
        put(ram, pdpt + 8 * gib, pd | 3)?;
        for i in 0..512u64 {
            put(ram, pd + 8 * i, ((gib << 30) + (i << 21)) | 0x83)?;
        }
    }
    Ok(())
}

/// The boot GDT: null, null, 64-bit code (0x10), data (0x18).
const BOOT_CODE: u64 = 0x00af_9b00_0000_ffff;
const BOOT_DATA: u64 = 0x00cf_9300_0000_ffff;

/// Loads `kernel` (a bzImage), `initrd` and `cmdline` into `ram` and describes the entry.
/// `acpi_rsdp` is recorded in the zero page when the machine has ACPI tables.
pub fn load(
    ram: &mut GuestRam,
    kernel: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    acpi_rsdp: Option<u64>,
) -> Result<BootDescription, FirmwareError> {
    check_ram(ram)?;
    let header = read_header(kernel)?;
    let setup_sects = if header.setup_sects == 0 {
        4
    } else {
        usize::from(header.setup_sects)
    };
    let payload = &kernel[((setup_sects + 1) * 512).min(kernel.len())..];
    let needed = u64::from(header.init_size.get()).max(payload.len() as u64);
    if KERNEL_LOAD + needed > ram.size() {
        return Err(FirmwareError::KernelTooLarge {
            needed: (KERNEL_LOAD + needed) >> 20,
            available: ram.size() >> 20,
        });
    }
    let ram_size = ram.size();
    ram.write_bytes(KERNEL_LOAD, payload)
        .map_err(|_| FirmwareError::MemoryTooSmall(ram_size >> 20))?;
    let kernel = Placed {
        header,
        end: KERNEL_LOAD + needed,
        entry: KERNEL_LOAD + 0x200,
    };
    finish(ram, kernel, initrd, cmdline, acpi_rsdp)
}

/// Loads an uncompressed ELF64 `vmlinux` at its physical addresses and enters it at its
/// 64-bit entry point (`startup_64`) with a zero page built by this loader, as the boot
/// protocol's 64-bit entry allows. Such a kernel is not relocated (no KASLR).
pub fn load_vmlinux(
    ram: &mut GuestRam,
    kernel: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    acpi_rsdp: Option<u64>,
) -> Result<BootDescription, FirmwareError> {
    check_ram(ram)?;
    let image = elf::parse(kernel)?;
    if image.class != elf::Class::Elf64 {
        return Err(FirmwareError::BadElf("a vmlinux must be ELF64"));
    }
    image.load(kernel, ram)?;
    let pref_address = image.segments.iter().map(|s| s.paddr).min().unwrap_or(0);
    let header = SetupHeader {
        header: HDRS.into(),
        version: 0x020f.into(),
        boot_flag: 0xaa55.into(),
        loadflags: LOADED_HIGH,
        cmdline_size: VMLINUX_CMDLINE_SIZE.into(),
        initrd_addr_max: 0x7fff_ffff.into(),
        kernel_alignment: 0x20_0000.into(),
        pref_address: pref_address.into(),
        ..Default::default()
    };
    let kernel = Placed {
        header,
        end: image.end(),
        entry: image.entry,
    };
    finish(ram, kernel, initrd, cmdline, acpi_rsdp)
}

/// A kernel in memory, before the zero page is written.
struct Placed {
    header: SetupHeader,
    /// First byte past the kernel (and its decompression space).
    end: u64,
    /// The 64-bit entry point.
    entry: u64,
}

fn check_ram(ram: &GuestRam) -> Result<(), FirmwareError> {
    if ram.size() < MIN_RAM {
        return Err(FirmwareError::MemoryTooSmall(ram.size() >> 20));
    }
    Ok(())
}

/// Writes the command line, the initrd and the zero page, then the page tables and GDT of
/// the 64-bit entry.
fn finish(
    ram: &mut GuestRam,
    kernel: Placed,
    initrd: Option<&[u8]>,
    cmdline: &str,
    acpi_rsdp: Option<u64>,
) -> Result<BootDescription, FirmwareError> {
    let ram_size = ram.size();
    let too_small = |_| FirmwareError::MemoryTooSmall(ram_size >> 20);
    let mut header = kernel.header;
    write_cmdline(ram, cmdline, header.cmdline_size.get())?;

    header.type_of_loader = 0xff;
    header.loadflags |= CAN_USE_HEAP;
    header.heap_end_ptr.set(0xfe00);
    header.cmd_line_ptr.set(CMDLINE as u32);
    header.code32_start.set(KERNEL_LOAD as u32);
    if let Some(initrd) = initrd {
        let addr = place_initrd(&header, ram_size, kernel.end, initrd.len() as u64)?;
        ram.write_bytes(addr, initrd).map_err(too_small)?;
        header.ramdisk_image.set(addr as u32);
        header.ramdisk_size.set(initrd.len() as u32);
    }

    let mut params = BootParams::new_zeroed();
    params.hdr = header;
    let map = e820_map(ram_size);
    for (slot, entry) in params.e820_table.iter_mut().zip(&map) {
        *slot = *entry;
    }
    params.e820_entries = map.len() as u8;
    params.acpi_rsdp_addr.set(acpi_rsdp.unwrap_or(0));
    ram.write_bytes(ZERO_PAGE, params.as_bytes())
        .map_err(too_small)?;

    write_page_tables(ram)?;
    let gdt = [0u64, 0, BOOT_CODE, BOOT_DATA];
    let gdt_bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
    ram.write_bytes(GDT, &gdt_bytes).map_err(too_small)?;

    Ok(BootDescription {
        rip: kernel.entry,
        rsi: ZERO_PAGE,
        rsp: crate::layout::BOOT_STACK,
        cr0: 0x8000_0031, // PG | NE | ET | PE
        cr3: PML4,
        cr4: 0x20,   // PAE
        efer: 0x500, // LME | LMA
        gdt: (GDT, (gdt_bytes.len() - 1) as u16),
        code: (0x10, BOOT_CODE),
        data: (0x18, BOOT_DATA),
        ..Default::default()
    })
}

/// Writes the NUL-terminated command line at [`CMDLINE`], if the kernel accepts its length.
pub(crate) fn write_cmdline(
    ram: &mut GuestRam,
    cmdline: &str,
    limit: u32,
) -> Result<(), FirmwareError> {
    if cmdline.len() >= limit as usize || cmdline.len() as u64 >= crate::layout::CMDLINE_MAX {
        return Err(FirmwareError::CmdlineTooLong {
            len: cmdline.len(),
            max: limit.saturating_sub(1),
        });
    }
    let mut line = cmdline.as_bytes().to_vec();
    line.push(0);
    ram.write_bytes(CMDLINE, &line)
        .map_err(|_| FirmwareError::MemoryTooSmall(ram.size() >> 20))
}

/// The highest page-aligned address for the initrd below the kernel's limit and the top of
/// RAM (and the MMIO hole), above the kernel.
fn place_initrd(
    header: &SetupHeader,
    ram_size: u64,
    kernel_end: u64,
    size: u64,
) -> Result<u64, FirmwareError> {
    let limit = u64::from(header.initrd_addr_max.get())
        .min(ram_size - 1)
        .min(MMIO_HOLE - 1);
    let top = limit + 1;
    let addr = top.checked_sub(size).map(|a| a & !0xfff);
    match addr {
        Some(addr) if addr >= kernel_end => Ok(addr),
        _ => Err(FirmwareError::InitrdTooLarge { size, limit }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic bzImage: one setup sector plus the boot sector, protocol 2.15, 64-bit.
    fn bzimage(payload: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; 2 * 512];
        image[HEADER_OFFSET] = 1; // setup_sects
        image[0x202..0x206].copy_from_slice(&HDRS.to_le_bytes());
        image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        image[0x211] = 1; // loadflags: LOADED_HIGH
        image[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
        image[0x236..0x238].copy_from_slice(&XLF_KERNEL_64.to_le_bytes());
        image[0x238..0x23c].copy_from_slice(&2048u32.to_le_bytes()); // cmdline_size
        image[0x260..0x264].copy_from_slice(&(4u32 << 20).to_le_bytes()); // init_size
        image.extend_from_slice(payload);
        image.resize(image.len().max(0x1000), 0);
        image
    }

    #[test]
    fn loads_kernel_initrd_cmdline_and_zero_page() {
        let mut ram = GuestRam::new(64 << 20).unwrap();
        let kernel = bzimage(&[0xeb, 0xfe, 0x90]);
        let boot = load(
            &mut ram,
            &kernel,
            Some(&[7u8; 5000]),
            "console=ttyS0",
            Some(0xe0000),
        )
        .unwrap();
        assert_eq!((boot.rip, boot.rsi), (0x10_0200, ZERO_PAGE));
        let mut b = [0u8; 3];
        ram.read_bytes(KERNEL_LOAD, &mut b).unwrap();
        assert_eq!(b, [0xeb, 0xfe, 0x90]);
        let page = ram.slice(ZERO_PAGE, size_of::<BootParams>()).unwrap();
        let params = BootParams::read_from_bytes(page).unwrap();
        assert_eq!(params.hdr.type_of_loader, 0xff);
        assert_eq!(params.hdr.cmd_line_ptr.get(), CMDLINE as u32);
        assert_eq!(params.e820_entries, 3);
        assert_eq!(params.acpi_rsdp_addr.get(), 0xe0000);
        assert_eq!(page[0x1e8], 3, "e820_entries at its protocol offset");
        let initrd = u64::from(params.hdr.ramdisk_image.get());
        assert_eq!(initrd % 4096, 0);
        assert!(initrd + 5000 <= 64 << 20 && initrd >= KERNEL_LOAD + (4 << 20));
        let mut line = [0u8; 14];
        ram.read_bytes(CMDLINE, &mut line).unwrap();
        assert_eq!(&line, b"console=ttyS0\0");
        let mut pde = [0u8; 8];
        ram.read_bytes(PML4 + 0x2000 + 8, &mut pde).unwrap();
        assert_eq!(u64::from_le_bytes(pde), 0x20_0083, "2 MiB identity page");
    }

    #[test]
    fn rejects_bad_kernels_and_sizes() {
        let mut ram = GuestRam::new(64 << 20).unwrap();
        assert_eq!(
            load(&mut ram, &[0u8; 100], None, "", None),
            Err(FirmwareError::TooShort(100))
        );
        assert_eq!(
            load(&mut ram, &vec![0u8; 8192], None, "", None),
            Err(FirmwareError::NoSignature)
        );
        let mut old = bzimage(&[]);
        old[0x206..0x208].copy_from_slice(&0x0204u16.to_le_bytes());
        assert_eq!(
            load(&mut ram, &old, None, "", None),
            Err(FirmwareError::OldProtocol { major: 2, minor: 4 })
        );
        let long = "x".repeat(3000);
        assert!(matches!(
            load(&mut ram, &bzimage(&[]), None, &long, None),
            Err(FirmwareError::CmdlineTooLong { .. })
        ));
        let mut small = GuestRam::new(8 << 20).unwrap();
        assert_eq!(
            load(&mut small, &bzimage(&[]), None, "", None),
            Err(FirmwareError::MemoryTooSmall(8))
        );
        let mut ram = GuestRam::new(16 << 20).unwrap();
        let err = load(
            &mut ram,
            &bzimage(&[]),
            Some(&vec![0u8; 15 << 20]),
            "",
            None,
        )
        .unwrap_err();
        assert!(matches!(err, FirmwareError::InitrdTooLarge { .. }));
    }
}
