//! Page-walker tests: each paging mode, large pages, each fault kind and its error code,
//! and accessed/dirty updates.

use super::*;

const RAM: u64 = 0x40_0000;

fn ram() -> GuestRam {
    GuestRam::new(RAM).unwrap()
}

fn put(ram: &mut GuestRam, addr: u64, value: u64) {
    ram.write_bytes(addr, &value.to_le_bytes()).unwrap();
}

fn put32(ram: &mut GuestRam, addr: u64, value: u32) {
    ram.write_bytes(addr, &value.to_le_bytes()).unwrap();
}

fn get(ram: &GuestRam, addr: u64) -> u64 {
    let mut b = [0u8; 8];
    ram.read_bytes(addr, &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn long_ctx() -> PagingContext {
    PagingContext {
        cr0: CR0_PG | CR0_WP | 1,
        cr3: 0x1000,
        cr4: CR4_PAE | CR4_PGE,
        efer: EFER_LMA | EFER_NXE | (1 << 8),
        cpl: 0,
        ac: false,
    }
}

/// Long-mode tables: PML4 @0x1000, PDPT @0x2000, PD @0x3000, PT @0x4000. Maps linear
/// 0x40_1000 (PML4 0, PDPT 0, PD 2, PT 1) to 0x9000 with `pte_flags`.
fn long_tables(pte_flags: u64) -> GuestRam {
    let mut ram = ram();
    put(&mut ram, 0x1000, 0x2000 | 7);
    put(&mut ram, 0x2000, 0x3000 | 7);
    put(&mut ram, 0x3000 + 2 * 8, 0x4000 | 7);
    put(&mut ram, 0x4000 + 8, 0x9000 | pte_flags);
    ram
}

const READ: AccessKind = AccessKind::Read;
const WRITE: AccessKind = AccessKind::Write;
const FETCH: AccessKind = AccessKind::Execute;
const ME: Privilege = Privilege::Current;

#[test]
fn paging_off_is_identity_within_4gib() {
    let ctx = PagingContext::default();
    let t = translate(&ctx, &mut ram(), 0x1234_5678, READ, ME).unwrap();
    assert_eq!(t.phys, 0x1234_5678);
}

#[test]
fn long_mode_4k_translation_sets_accessed_then_dirty() {
    let mut ram = long_tables(3);
    let t = translate(&long_ctx(), &mut ram, 0x40_1abc, READ, ME).unwrap();
    assert_eq!((t.phys, t.page_size), (0x9abc, 4096));
    assert!(
        !t.writable,
        "not dirty yet: the first write must take the slow path"
    );
    assert_eq!(get(&ram, 0x4008) & (ACCESSED | DIRTY), ACCESSED);
    assert_eq!(get(&ram, 0x1000) & ACCESSED, ACCESSED);
    let t = translate(&long_ctx(), &mut ram, 0x40_1abc, WRITE, ME).unwrap();
    assert!(t.writable);
    assert_eq!(get(&ram, 0x4008) & DIRTY, DIRTY);
}

#[test]
fn long_mode_large_pages() {
    let mut ram = ram();
    put(&mut ram, 0x1000, 0x2000 | 7);
    put(&mut ram, 0x2000 + 8, 0x4000_0000 | PS | 3); // 1 GiB page at linear 1 GiB
    put(&mut ram, 0x2000, 0x3000 | 3);
    put(&mut ram, 0x3000 + 8, 0x20_0000 | PS | 3); // 2 MiB page at linear 2 MiB
    let t = translate(&long_ctx(), &mut ram, 0x4123_4567, READ, ME).unwrap();
    assert_eq!((t.phys, t.page_size), (0x4123_4567, 1 << 30));
    let t = translate(&long_ctx(), &mut ram, 0x2f_0123, READ, ME).unwrap();
    assert_eq!((t.phys, t.page_size), (0x2f_0123, 1 << 21));
    // A 2 MiB page whose frame has bit 13 set is a reserved-bit fault.
    put(&mut ram, 0x3000 + 8, 0x20_2000 | PS | 3);
    let f = translate(&long_ctx(), &mut ram, 0x20_0000, READ, ME).unwrap_err();
    assert_eq!(f.error_code, error_code::PRESENT | error_code::RESERVED);
}

#[test]
fn not_present_fault_codes() {
    let mut ram = long_tables(0);
    let f = translate(&long_ctx(), &mut ram, 0x40_1000, WRITE, ME).unwrap_err();
    assert_eq!((f.addr, f.error_code), (0x40_1000, error_code::WRITE));
    let user = PagingContext {
        cpl: 3,
        ..long_ctx()
    };
    let f = translate(&user, &mut ram, 0x40_1000, FETCH, ME).unwrap_err();
    assert_eq!(f.error_code, error_code::USER | error_code::FETCH);
    let f = translate(&long_ctx(), &mut ram, 0x7f_0000_0000, READ, ME).unwrap_err();
    assert_eq!(f.error_code, 0, "empty PML4 slot");
}

#[test]
fn protection_faults() {
    let user = PagingContext {
        cpl: 3,
        ..long_ctx()
    };
    // Supervisor-only page from user mode.
    let mut ram = long_tables(3);
    put(&mut ram, 0x3000 + 16, 0x4000 | 3);
    let f = translate(&user, &mut ram, 0x40_1000, READ, ME).unwrap_err();
    assert_eq!(f.error_code, error_code::PRESENT | error_code::USER);
    // Read-only page: user write faults; supervisor write faults only with CR0.WP.
    let mut ram = long_tables(5);
    let f = translate(&user, &mut ram, 0x40_1000, WRITE, ME).unwrap_err();
    assert_eq!(
        f.error_code,
        error_code::PRESENT | error_code::WRITE | error_code::USER
    );
    assert!(translate(&long_ctx(), &mut ram, 0x40_1000, WRITE, ME).is_err());
    let no_wp = PagingContext {
        cr0: long_ctx().cr0 & !CR0_WP,
        ..long_ctx()
    };
    assert!(translate(&no_wp, &mut ram, 0x40_1000, WRITE, ME).is_ok());
    // NX page fetch.
    let mut ram = long_tables(NX | 3);
    let f = translate(&long_ctx(), &mut ram, 0x40_1000, FETCH, ME).unwrap_err();
    assert_eq!(f.error_code, error_code::PRESENT | error_code::FETCH);
    // NX without EFER.NXE is a reserved bit.
    let no_nxe = PagingContext {
        efer: EFER_LMA,
        ..long_ctx()
    };
    let f = translate(&no_nxe, &mut ram, 0x40_1000, READ, ME).unwrap_err();
    assert_eq!(f.error_code, error_code::PRESENT | error_code::RESERVED);
}

#[test]
fn smep_and_smap() {
    let mut ram = long_tables(7);
    let smep = PagingContext {
        cr4: long_ctx().cr4 | CR4_SMEP,
        ..long_ctx()
    };
    let f = translate(&smep, &mut ram, 0x40_1000, FETCH, ME).unwrap_err();
    assert_eq!(f.error_code, error_code::PRESENT | error_code::FETCH);
    let smap = PagingContext {
        cr4: long_ctx().cr4 | CR4_SMAP,
        ..long_ctx()
    };
    assert!(translate(&smap, &mut ram, 0x40_1000, READ, ME).is_err());
    let smap_ac = PagingContext { ac: true, ..smap };
    assert!(translate(&smap_ac, &mut ram, 0x40_1000, READ, ME).is_ok());
    // Implicit supervisor accesses ignore AC.
    assert!(translate(&smap_ac, &mut ram, 0x40_1000, READ, Privilege::Supervisor).is_err());
    // User accesses are not affected by SMAP.
    let user = PagingContext { cpl: 3, ..smap };
    assert!(translate(&user, &mut ram, 0x40_1000, READ, ME).is_ok());
}

#[test]
fn pae_paging() {
    let mut ram = ram();
    // PDPT @0x1000 (32-byte aligned), PD @0x2000, PT @0x3000.
    put(&mut ram, 0x1000 + 8, 0x2000 | 1); // PDPTE 1 covers 1-2 GiB
    put(&mut ram, 0x2000, 0x3000 | 7);
    put(&mut ram, 0x3000 + 5 * 8, 0x7000 | 7);
    put(&mut ram, 0x2000 + 8, 0x60_0000 | PS | 7);
    let ctx = PagingContext {
        cr0: CR0_PG | 1,
        cr3: 0x1000,
        cr4: CR4_PAE,
        efer: 0,
        cpl: 0,
        ac: false,
    };
    let t = translate(&ctx, &mut ram, 0x4000_5123, READ, ME).unwrap();
    assert_eq!(t.phys, 0x7123);
    let t = translate(&ctx, &mut ram, 0x4020_0042, READ, ME).unwrap();
    assert_eq!((t.phys, t.page_size), (0x60_0042, 1 << 21));
    // A PDPTE with RW set is reserved in PAE mode.
    put(&mut ram, 0x1000 + 8, 0x2000 | 3);
    let f = translate(&ctx, &mut ram, 0x4000_5123, READ, ME).unwrap_err();
    assert_eq!(f.error_code, error_code::PRESENT | error_code::RESERVED);
}

#[test]
fn legacy_32bit_paging_with_4mib_pages() {
    let mut ram = ram();
    put32(&mut ram, 0x1000 + 4, 0x2000 | 7); // PDE 1 -> PT @0x2000 (4-8 MiB)
    put32(&mut ram, 0x2000 + 4 * 3, 0x5000 | 7);
    put32(&mut ram, 0x1000 + 4 * 2, 0x0040_0000 | PS as u32 | 7); // PDE 2: 4 MiB page
    let ctx = PagingContext {
        cr0: CR0_PG | 1,
        cr3: 0x1000,
        cr4: CR4_PSE,
        efer: 0,
        cpl: 3,
        ac: false,
    };
    let t = translate(&ctx, &mut ram, 0x0040_3456, READ, ME).unwrap();
    assert_eq!(t.phys, 0x5456);
    let t = translate(&ctx, &mut ram, 0x0080_1234, READ, ME).unwrap();
    assert_eq!((t.phys, t.page_size), (0x0040_1234, 1 << 22));
    // Without CR4.PSE the PS bit is ignored and the entry points at a page table.
    let no_pse = PagingContext { cr4: 0, ..ctx };
    let t = translate(&no_pse, &mut ram, 0x0080_0000, READ, ME);
    assert!(t.is_err() || t.unwrap().page_size == 4096);
    let mut ram2 = ram;
    let f = translate(&ctx, &mut ram2, 0x00c0_0000, WRITE, ME).unwrap_err();
    assert_eq!(f.error_code, error_code::WRITE | error_code::USER);
}
