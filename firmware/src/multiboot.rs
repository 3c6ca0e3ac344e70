//! Multiboot (version 1) for 32-bit kernels, the format many test kernels use: find the
//! header in the first 8 KiB, load the image (ELF32 segments, or the header's address fields
//! for a.out-style images), pass the initrd as module 0, and enter in 32-bit protected mode
//! without paging, EAX = 0x2BADB002 and EBX pointing at the multiboot information (memory
//! sizes, command line, module, memory map, loader name).

use crate::layout::{CMDLINE, GDT, KERNEL_LOAD, MMIO_HOLE};
use crate::linux::{e820_map, write_cmdline};
use crate::{elf, BootDescription, FirmwareError};
use softvisor_mmu::GuestRam;
use zerocopy::IntoBytes;

/// The header's magic.
const HEADER_MAGIC: u32 = 0x1bad_b002;
/// What EAX holds at entry.
pub const BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
/// The header must lie in the first 8 KiB, 4-byte aligned.
const SEARCH_LIMIT: usize = 8192;
/// Header flags: modules page-aligned (0), memory information (1), video mode (2), address
/// fields valid (16).
const FLAG_PAGE_ALIGN: u32 = 1 << 0;
const FLAG_MEMORY_INFO: u32 = 1 << 1;
const FLAG_ADDRESSES: u32 = 1 << 16;
/// Requirement bits (0-15) this loader meets; video modes are not offered.
const SUPPORTED_REQUIREMENTS: u32 = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO;

/// Information flags: mem_lower/upper (0), cmdline (2), mods (3), mmap (6), loader name (9).
const INFO_MEMORY: u32 = 1 << 0;
const INFO_CMDLINE: u32 = 1 << 2;
const INFO_MODS: u32 = 1 << 3;
const INFO_MMAP: u32 = 1 << 6;
const INFO_LOADER_NAME: u32 = 1 << 9;

/// Where the information structure, its module list, memory map and strings go.
const INFO: u64 = 0x6000;
const MODULES: u64 = INFO + 0x100;
const MMAP: u64 = INFO + 0x200;
const LOADER_NAME: u64 = INFO + 0x400;
const LOADER_NAME_TEXT: &[u8] = b"softvisor\0";
const MODULE_NAME: u64 = INFO + 0x420;
const MODULE_NAME_TEXT: &[u8] = b"initrd\0";
/// The kernel command-line limit offered (the multiboot spec sets none).
const CMDLINE_LIMIT: u32 = 4096;

const CODE32: u64 = 0x00cf_9b00_0000_ffff;
const DATA32: u64 = 0x00cf_9300_0000_ffff;

/// A multiboot header: where it was found and its fields.
#[derive(Clone, Copy, Debug)]
struct Header {
    offset: usize,
    flags: u32,
    header_addr: u32,
    load_addr: u32,
    load_end_addr: u32,
    bss_end_addr: u32,
    entry_addr: u32,
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Finds a valid multiboot header (magic + flags + checksum = 0).
fn find_header(kernel: &[u8]) -> Option<Header> {
    let end = kernel.len().min(SEARCH_LIMIT).saturating_sub(12);
    (0..=end).step_by(4).find_map(|at| {
        let (magic, flags, checksum) =
            (word(kernel, at), word(kernel, at + 4), word(kernel, at + 8));
        if magic != HEADER_MAGIC || magic.wrapping_add(flags).wrapping_add(checksum) != 0 {
            return None;
        }
        let field = |i: usize| {
            kernel
                .get(at + 12 + 4 * i..at + 16 + 4 * i)
                .map(|b| word(b, 0))
        };
        Some(Header {
            offset: at,
            flags,
            header_addr: field(0).unwrap_or(0),
            load_addr: field(1).unwrap_or(0),
            load_end_addr: field(2).unwrap_or(0),
            bss_end_addr: field(3).unwrap_or(0),
            entry_addr: field(4).unwrap_or(0),
        })
    })
}

/// Whether `kernel` carries a multiboot header.
pub fn is_multiboot(kernel: &[u8]) -> bool {
    find_header(kernel).is_some()
}

/// Loads an image with the header's address fields (a.out kludge); returns entry and end.
fn load_by_addresses(
    ram: &mut GuestRam,
    kernel: &[u8],
    h: &Header,
) -> Result<(u64, u64), FirmwareError> {
    let bad = FirmwareError::BadMultiboot;
    let file_start = (h.offset as u64)
        .checked_sub(u64::from(h.header_addr.wrapping_sub(h.load_addr)))
        .ok_or(bad("load_addr is after header_addr"))?;
    let load_len = if h.load_end_addr == 0 {
        kernel.len() as u64 - file_start
    } else {
        u64::from(h.load_end_addr.saturating_sub(h.load_addr))
    };
    let data = kernel
        .get(file_start as usize..(file_start + load_len) as usize)
        .ok_or(bad("the load range runs past the end of the file"))?;
    let load = u64::from(h.load_addr);
    let end = u64::from(h.bss_end_addr).max(load + load_len);
    if end > ram.size() {
        return Err(FirmwareError::KernelTooLarge {
            needed: end.div_ceil(1 << 20),
            available: ram.size() >> 20,
        });
    }
    let ram_mib = ram.size() >> 20;
    let too_small = |_| FirmwareError::MemoryTooSmall(ram_mib);
    ram.write_bytes(load, data).map_err(too_small)?;
    let bss = vec![0u8; (end - load - load_len) as usize];
    ram.write_bytes(load + load_len, &bss).map_err(too_small)?;
    Ok((u64::from(h.entry_addr), end))
}

/// Loads a multiboot kernel, the initrd as its one module, and the information structure.
pub fn load(
    ram: &mut GuestRam,
    kernel: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
) -> Result<BootDescription, FirmwareError> {
    let header = find_header(kernel).ok_or(FirmwareError::BadMultiboot("no multiboot header"))?;
    let unsupported = header.flags & 0xffff & !SUPPORTED_REQUIREMENTS;
    if unsupported != 0 {
        return Err(FirmwareError::MultibootRequirement(unsupported));
    }
    let (entry, end) = if header.flags & FLAG_ADDRESSES != 0 {
        load_by_addresses(ram, kernel, &header)?
    } else {
        let image = elf::parse(kernel)?;
        if image.class != elf::Class::Elf32 {
            return Err(FirmwareError::BadMultiboot(
                "without address fields it must be ELF32",
            ));
        }
        image.load(kernel, ram)?;
        (image.entry, image.end())
    };
    let ram_size = ram.size();
    let too_small = |_| FirmwareError::MemoryTooSmall(ram_size >> 20);
    write_cmdline(ram, cmdline, CMDLINE_LIMIT)?;
    let mut flags = INFO_MEMORY | INFO_CMDLINE | INFO_MMAP | INFO_LOADER_NAME;
    let mut mods_count = 0u32;
    if let Some(initrd) = initrd {
        let top = ram_size.min(MMIO_HOLE);
        let addr = top
            .checked_sub(initrd.len() as u64)
            .map(|a| a & !0xfff)
            .filter(|&a| a >= end.max(KERNEL_LOAD))
            .ok_or(FirmwareError::InitrdTooLarge {
                size: initrd.len() as u64,
                limit: top - 1,
            })?;
        ram.write_bytes(addr, initrd).map_err(too_small)?;
        let module = [
            addr as u32,
            (addr + initrd.len() as u64) as u32,
            MODULE_NAME as u32,
            0,
        ];
        ram.write_bytes(MODULES, &words(&module))
            .map_err(too_small)?;
        ram.write_bytes(MODULE_NAME, MODULE_NAME_TEXT)
            .map_err(too_small)?;
        flags |= INFO_MODS;
        mods_count = 1;
    }
    // The memory map: entries of (size = 20, base, length, type).
    let mut mmap = Vec::new();
    for e in e820_map(ram_size.min(MMIO_HOLE)) {
        mmap.extend_from_slice(&20u32.to_le_bytes());
        mmap.extend_from_slice(e.as_bytes());
    }
    ram.write_bytes(MMAP, &mmap).map_err(too_small)?;
    ram.write_bytes(LOADER_NAME, LOADER_NAME_TEXT)
        .map_err(too_small)?;
    // mem_lower: KiB below 640 KiB; mem_upper: KiB from 1 MiB to the first hole.
    let mem_upper = (ram_size.min(MMIO_HOLE) - 0x10_0000) >> 10;
    let mut info = [0u32; 18];
    info[0] = flags;
    info[1] = 639;
    info[2] = mem_upper as u32;
    info[4] = CMDLINE as u32;
    info[5] = mods_count;
    info[6] = MODULES as u32;
    info[11] = mmap.len() as u32;
    info[12] = MMAP as u32;
    info[16] = LOADER_NAME as u32;
    ram.write_bytes(INFO, &words(&info)).map_err(too_small)?;

    let gdt = [0u64, CODE32, DATA32];
    let gdt_bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
    ram.write_bytes(GDT, &gdt_bytes).map_err(too_small)?;
    Ok(BootDescription {
        rip: entry,
        rax: u64::from(BOOTLOADER_MAGIC),
        rbx: INFO,
        rsp: crate::layout::BOOT_STACK,
        cr0: 0x11, // ET | PE
        gdt: (GDT, (gdt_bytes.len() - 1) as u16),
        code: (0x08, CODE32),
        data: (0x10, DATA32),
        ..Default::default()
    })
}

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::tests::executable;
    use crate::elf::Class;

    fn header(flags: u32) -> Vec<u8> {
        let checksum = 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags);
        words(&[HEADER_MAGIC, flags, checksum])
    }

    fn read_u32(ram: &GuestRam, addr: u64) -> u32 {
        let mut b = [0u8; 4];
        ram.read_bytes(addr, &mut b).unwrap();
        u32::from_le_bytes(b)
    }

    #[test]
    fn elf32_kernel_gets_magic_info_cmdline_and_module() {
        let mut code = header(FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO);
        code.extend_from_slice(&[0xf4; 4]);
        let kernel = executable(Class::Elf32, 0x10_0000, &code, 0x100);
        let mut ram = GuestRam::new(32 << 20).unwrap();
        let boot = load(&mut ram, &kernel, Some(b"module!"), "console=ttyS0").unwrap();
        assert_eq!(
            (boot.rip, boot.rax, boot.rbx),
            (0x10_0000, 0x2bad_b002, INFO)
        );
        assert_eq!((boot.cr0, boot.efer, boot.code.0), (0x11, 0, 0x08));
        let flags = read_u32(&ram, INFO);
        assert_eq!(
            flags & (INFO_MEMORY | INFO_CMDLINE | INFO_MODS | INFO_MMAP),
            0x4d
        );
        assert_eq!(read_u32(&ram, INFO + 8), (31 << 10), "mem_upper in KiB");
        let mut line = [0u8; 14];
        ram.read_bytes(u64::from(read_u32(&ram, INFO + 16)), &mut line)
            .unwrap();
        assert_eq!(&line, b"console=ttyS0\0");
        assert_eq!(read_u32(&ram, INFO + 20), 1, "one module");
        let start = read_u32(&ram, MODULES);
        assert_eq!(read_u32(&ram, MODULES + 4) - start, 7);
        assert_eq!(start % 4096, 0, "page-aligned");
        let mut module = [0u8; 7];
        ram.read_bytes(u64::from(start), &mut module).unwrap();
        assert_eq!(&module, b"module!");
    }

    #[test]
    fn address_fields_load_a_flat_image() {
        // Header at file offset 0 describes: loaded at 0x200000, header there too.
        let mut image = header(FLAG_ADDRESSES);
        image.extend_from_slice(&words(&[0x20_0000, 0x20_0000, 0, 0x20_1000, 0x20_0020]));
        image.resize(0x20, 0);
        image.extend_from_slice(&[0xf4]);
        let mut ram = GuestRam::new(32 << 20).unwrap();
        let boot = load(&mut ram, &image, None, "").unwrap();
        assert_eq!(boot.rip, 0x20_0020);
        let mut byte = [0u8; 1];
        ram.read_bytes(0x20_0020, &mut byte).unwrap();
        assert_eq!(byte[0], 0xf4);
    }

    #[test]
    fn video_mode_requirement_is_refused() {
        let mut code = header(1 << 2);
        code.push(0xf4);
        let kernel = executable(Class::Elf32, 0x10_0000, &code, 0);
        let mut ram = GuestRam::new(32 << 20).unwrap();
        assert_eq!(
            load(&mut ram, &kernel, None, "").unwrap_err(),
            FirmwareError::MultibootRequirement(4)
        );
    }
}
