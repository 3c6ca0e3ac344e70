//! The x86 Linux boot protocol's structures (`struct setup_header`, `struct boot_e820_entry`,
//! `struct boot_params`, the "zero page") with the offsets of Linux's
//! Documentation/arch/x86/boot.rst and zero-page.rst.
//!
//! linux-loader has these too, but only when the *host* is x86: it is a library for KVM
//! VMMs, whose guest architecture is the host's. softvisor's guest is x86 on every host, so
//! the layouts are declared here, with explicit little-endian fields so that they read and
//! write the same bytes on any host. On x86 hosts a test checks them against linux-loader's.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The real-mode kernel header, at offset 0x1f1 of a bzImage and of the zero page.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SetupHeader {
    pub setup_sects: u8,
    pub root_flags: U16,
    pub syssize: U32,
    pub ram_size: U16,
    pub vid_mode: U16,
    pub root_dev: U16,
    pub boot_flag: U16,
    pub jump: U16,
    /// "HdrS".
    pub header: U32,
    pub version: U16,
    pub realmode_swtch: U32,
    pub start_sys_seg: U16,
    pub kernel_version: U16,
    pub type_of_loader: u8,
    pub loadflags: u8,
    pub setup_move_size: U16,
    pub code32_start: U32,
    pub ramdisk_image: U32,
    pub ramdisk_size: U32,
    pub bootsect_kludge: U32,
    pub heap_end_ptr: U16,
    pub ext_loader_ver: u8,
    pub ext_loader_type: u8,
    pub cmd_line_ptr: U32,
    pub initrd_addr_max: U32,
    pub kernel_alignment: U32,
    pub relocatable_kernel: u8,
    pub min_alignment: u8,
    pub xloadflags: U16,
    pub cmdline_size: U32,
    pub hardware_subarch: U32,
    pub hardware_subarch_data: U64,
    pub payload_offset: U32,
    pub payload_length: U32,
    pub setup_data: U64,
    pub pref_address: U64,
    pub init_size: U32,
    pub handover_offset: U32,
    pub kernel_info_offset: U32,
}

/// One e820 memory-map entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
pub struct E820Entry {
    pub addr: U64,
    pub size: U64,
    pub kind: U32,
}

/// The zero page: 4 KiB, of which the loader fills the header, the e820 map and the RSDP
/// address; the rest stays zero, as for a loader that has no BIOS data to pass on.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct BootParams {
    _screen_apm_tboot_ist: [u8; 0x70],
    pub acpi_rsdp_addr: U64,
    _disk_tables_ofw: [u8; 0x48],
    pub ext_ramdisk_image: U32,
    pub ext_ramdisk_size: U32,
    pub ext_cmd_line_ptr: U32,
    _edid_efi: [u8; 0x1e8 - 0xcc],
    pub e820_entries: u8,
    _edd_kbd_sentinel: [u8; 8],
    pub hdr: SetupHeader,
    _pad_to_mbr_sig: [u8; 0x290 - 0x1f1 - 123],
    _edd_mbr_sig_buffer: [u8; 0x40],
    pub e820_table: [E820Entry; 128],
    _edd_tail: [u8; 0x1000 - 0xcd0],
}

// The offsets the boot protocol fixes; a wrong field width above fails the build.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<SetupHeader>() == 123);
    assert!(size_of::<E820Entry>() == 20);
    assert!(size_of::<BootParams>() == 0x1000);
    assert!(offset_of!(BootParams, acpi_rsdp_addr) == 0x70);
    assert!(offset_of!(BootParams, ext_ramdisk_image) == 0xc0);
    assert!(offset_of!(BootParams, e820_entries) == 0x1e8);
    assert!(offset_of!(BootParams, hdr) == 0x1f1);
    assert!(offset_of!(BootParams, e820_table) == 0x2d0);
    assert!(offset_of!(SetupHeader, header) == 0x202 - 0x1f1);
    assert!(offset_of!(SetupHeader, cmd_line_ptr) == 0x228 - 0x1f1);
    assert!(offset_of!(SetupHeader, xloadflags) == 0x236 - 0x1f1);
    assert!(offset_of!(SetupHeader, init_size) == 0x260 - 0x1f1);
};

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_linux_loader() {
        assert_eq!(size_of::<BootParams>(), size_of::<boot_params>());
        assert_eq!(size_of::<E820Entry>(), size_of::<boot_e820_entry>());
        assert!(size_of::<SetupHeader>() >= size_of::<setup_header>());
        macro_rules! same {
            ($ours:ty, $theirs:ty, $($ours_field:ident = $theirs_field:ident),*) => {
                $(assert_eq!(
                    offset_of!($ours, $ours_field),
                    offset_of!($theirs, $theirs_field),
                    stringify!($ours_field)
                );)*
            };
        }
        same!(
            BootParams,
            boot_params,
            acpi_rsdp_addr = acpi_rsdp_addr,
            ext_ramdisk_image = ext_ramdisk_image,
            ext_cmd_line_ptr = ext_cmd_line_ptr,
            e820_entries = e820_entries,
            hdr = hdr,
            e820_table = e820_table
        );
        same!(
            SetupHeader,
            setup_header,
            setup_sects = setup_sects,
            boot_flag = boot_flag,
            header = header,
            version = version,
            type_of_loader = type_of_loader,
            loadflags = loadflags,
            code32_start = code32_start,
            ramdisk_image = ramdisk_image,
            ramdisk_size = ramdisk_size,
            heap_end_ptr = heap_end_ptr,
            cmd_line_ptr = cmd_line_ptr,
            initrd_addr_max = initrd_addr_max,
            kernel_alignment = kernel_alignment,
            xloadflags = xloadflags,
            cmdline_size = cmdline_size,
            pref_address = pref_address,
            init_size = init_size
        );
        same!(
            E820Entry,
            boot_e820_entry,
            addr = addr,
            size = size,
            kind = r#type
        );
    }
}
