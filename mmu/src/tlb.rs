//! The software TLB: a direct-mapped cache of linear-to-host translations, one set per
//! privilege (see [`tlb_set`]), with separate read, write and execute tags.
//!
//! Layout (fixed; generated code indexes it, so it is `#[repr(C)]`):
//! `Tlb::entries[mode][index]` with `index = (linear >> 12) % TLB_ENTRIES` and
//! `mode` the set of [`tlb_set`]. An entry is 32 bytes:
//! `read_tag, write_tag, exec_tag, addend`, all `u64`. A tag is the page-aligned linear
//! address when that kind of access may use the fast path, and the slot's
//! [`invalid_tag`] otherwise. The fast path is: compute the index, check that the page of
//! the access's last byte is the tag (`(tag ^ last) < 4096`, which also rejects an access
//! crossing into the next page), and access host memory at `linear + addend`.
//!
//! A write tag is only filled for RAM pages that are writable, already dirty, and hold no
//! translated code; MMIO pages get no tags at all. Everything else takes the slow path.

use crate::paging::{PagingContext, PagingMode, CR4_SMAP};
use crate::PAGE_SIZE;
use std::collections::HashSet;

/// Sizes a large page can have: 2 MiB (PAE, long mode), 4 MiB (32-bit paging), 1 GiB.
const LARGE_PAGE_SIZES: [u64; 3] = [1 << 21, 1 << 22, 1 << 30];

/// Entries per privilege set.
pub const TLB_ENTRIES: usize = 4096;
/// The high bits of every invalid tag: a non-canonical address.
const INVALID_HIGH: u64 = 1 << 63;

/// The tag of slot `index` for a kind of access that may not use the fast path: a
/// non-canonical page whose index bits are `index + 2`. The page of an access's last byte,
/// looked up in slot `index`, has index bits `index` or (crossing into the next page)
/// `index + 1`, so it is never this page, even when the access is non-canonical: compared
/// by `(tag ^ last) < 4096` or by equality, an invalid tag never hits.
#[inline]
pub const fn invalid_tag(index: usize) -> u64 {
    INVALID_HIGH | ((((index + 2) % TLB_ENTRIES) as u64) << 12)
}
/// Privilege sets: supervisor, user, and supervisor while SMAP lets explicit accesses
/// reach user pages (RFLAGS.AC set): that set's entries may map user pages for the kernel,
/// so they are used only while AC stays set, by the slow path and by blocks translated
/// for it alike.
pub const TLB_MODES: usize = 3;
/// The set of supervisor accesses under SMAP with RFLAGS.AC set.
pub const SUPERVISOR_AC_SET: usize = 2;

/// One fast-path entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// Page tag for reads.
    pub read_tag: u64,
    /// Page tag for writes.
    pub write_tag: u64,
    /// Page tag for instruction fetches.
    pub exec_tag: u64,
    /// Host address minus linear address for this page (wrapping).
    pub addend: u64,
}

impl TlbEntry {
    /// The entry of slot `index` with no fast path at all.
    const fn empty(index: usize) -> TlbEntry {
        let invalid = invalid_tag(index);
        TlbEntry {
            read_tag: invalid,
            write_tag: invalid,
            exec_tag: invalid,
            addend: 0,
        }
    }
}

/// Slow-path facts about an entry, kept apart so the fast-path entry stays 32 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbMeta {
    /// Physical address of the 4 KiB page.
    pub phys_page: u64,
    /// Size of the guest page that produced the entry.
    pub page_size: u64,
    /// Global mapping (kept across CR3 writes).
    pub global: bool,
    /// The slot is in [`Tlb::filled`]'s list of global entries.
    in_global_list: bool,
    /// The slot is in [`Tlb::filled`]'s list of non-global entries.
    in_local_list: bool,
}

/// What a fill may allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbFill {
    /// Linear address inside the page.
    pub linear: u64,
    /// Physical address of the 4 KiB page.
    pub phys_page: u64,
    /// Host address of the page's first byte.
    pub host_page: u64,
    /// Reads may use the fast path.
    pub read: bool,
    /// Writes may use the fast path.
    pub write: bool,
    /// Fetches may use the fast path.
    pub exec: bool,
    /// Size of the guest page.
    pub page_size: u64,
    /// Global mapping.
    pub global: bool,
}

/// The per-vCPU TLB.
#[repr(C)]
pub struct Tlb {
    /// Fast-path entries, `[mode][index]`.
    pub entries: [[TlbEntry; TLB_ENTRIES]; TLB_MODES],
    /// Flushes so far (whole, non-global or one page): whatever caches translations
    /// outside the TLB (the JIT's jump cache) is valid only while this stays the same.
    pub flushes: u64,
    /// Flushes that may drop global translations (whole or one page): what is cached of a
    /// global page stays valid while this stays the same, across CR3 writes.
    pub global_flushes: u64,
    meta: [[TlbMeta; TLB_ENTRIES]; TLB_MODES],
    filled: Filled,
}

/// The slots (`mode * TLB_ENTRIES + index`) filled since a flush last visited them, split
/// by globalness: flushes and code-page protection visit these, not the whole TLB, so
/// their cost follows what the guest used instead of the TLB's size (every context switch
/// flushes the non-global entries; md5's pipe makes 260,000 of them). A listed slot may
/// have been emptied (INVLPG) or refilled with the other globalness since (then it is in
/// both lists): visiting it again is harmless.
#[derive(Default)]
struct Filled {
    global: Vec<u32>,
    local: Vec<u32>,
    /// The linear bases of the pages larger than 4 KiB that listed slots were filled from:
    /// INVLPG of an address in one of them must visit every listed slot, any other only
    /// the address's own slot in each set.
    large: HashSet<u64>,
}

/// Offset of [`Tlb::flushes`] from the first entry, for generated code that holds a
/// pointer to the entries.
pub const FLUSHES_FROM_ENTRIES: i32 = core::mem::offset_of!(Tlb, flushes) as i32;
/// Offset of [`Tlb::global_flushes`] from the first entry.
pub const GLOBAL_FLUSHES_FROM_ENTRIES: i32 = core::mem::offset_of!(Tlb, global_flushes) as i32;
const _: () = assert!(core::mem::offset_of!(Tlb, entries) == 0);

/// The set index of a linear address.
#[inline]
pub fn tlb_index(linear: u64) -> usize {
    ((linear >> 12) as usize) % TLB_ENTRIES
}

/// The set explicit accesses use under paging context `ctx`: 1 at CPL 3, else
/// [`SUPERVISOR_AC_SET`] when SMAP is on and RFLAGS.AC set, else 0. Generated code picks its
/// set with the same function, from the CPU state the paging context is synced from.
#[inline]
pub fn tlb_set(ctx: &PagingContext) -> usize {
    if ctx.cpl == 3 {
        1
    } else if ctx.ac && ctx.cr4 & CR4_SMAP != 0 && ctx.mode() != PagingMode::Off {
        SUPERVISOR_AC_SET
    } else {
        0
    }
}

impl Tlb {
    /// An empty TLB, built in place on the heap (it is too big for a thread's stack).
    pub fn new() -> Box<Self> {
        let mut tlb = Box::<Tlb>::new_uninit();
        let at = tlb.as_mut_ptr();
        // Each field is written through a raw pointer to its place: no reference to
        // uninitialised memory is made.
        // SAFETY: a projection to a field of the allocation.
        let entries = unsafe { &raw mut (*at).entries }.cast::<TlbEntry>();
        // SAFETY: as above.
        let meta = unsafe { &raw mut (*at).meta }.cast::<TlbMeta>();
        for slot in 0..TLB_MODES * TLB_ENTRIES {
            // SAFETY: `slot` is within the array `entries` points to.
            unsafe {
                entries
                    .wrapping_add(slot)
                    .write(TlbEntry::empty(slot % TLB_ENTRIES))
            };
            // SAFETY: `slot` is within the array `meta` points to.
            unsafe { meta.wrapping_add(slot).write(TlbMeta::default()) };
        }
        // SAFETY: as for `entries`.
        let flushes = unsafe { &raw mut (*at).flushes };
        // SAFETY: as for `entries`.
        let global_flushes = unsafe { &raw mut (*at).global_flushes };
        // SAFETY: as for `entries`.
        let filled = unsafe { &raw mut (*at).filled };
        // SAFETY: the places of fields of the allocation, written once each.
        unsafe { flushes.write(0) };
        // SAFETY: as above.
        unsafe { global_flushes.write(0) };
        // SAFETY: as above.
        unsafe { filled.write(Filled::default()) };
        // SAFETY: every field was written above.
        unsafe { tlb.assume_init() }
    }

    /// Looks up a page for a read, write or fetch; returns the host address of `linear`.
    #[inline]
    pub fn lookup(&self, mode: usize, linear: u64, kind: crate::AccessKind) -> Option<u64> {
        let entry = &self.entries[mode][tlb_index(linear)];
        let tag = match kind {
            crate::AccessKind::Read => entry.read_tag,
            crate::AccessKind::Write => entry.write_tag,
            crate::AccessKind::Execute => entry.exec_tag,
        };
        (tag == linear & !0xfff).then(|| linear.wrapping_add(entry.addend))
    }

    /// The slow-path facts of the entry that covers `linear`, if it is for that page.
    pub fn meta(&self, mode: usize, linear: u64) -> Option<TlbMeta> {
        let index = tlb_index(linear);
        let entry = &self.entries[mode][index];
        let page = linear & !0xfff;
        (entry.read_tag == page || entry.write_tag == page || entry.exec_tag == page)
            .then_some(self.meta[mode][index])
    }

    /// Installs a translation.
    pub fn fill(&mut self, mode: usize, fill: &TlbFill) {
        let page = fill.linear & !0xfff;
        let index = tlb_index(page);
        let tag = |allowed: bool| if allowed { page } else { invalid_tag(index) };
        self.entries[mode][index] = TlbEntry {
            read_tag: tag(fill.read),
            write_tag: tag(fill.write),
            exec_tag: tag(fill.exec),
            addend: fill.host_page.wrapping_sub(page),
        };
        let slot = (mode * TLB_ENTRIES + index) as u32;
        let meta = &mut self.meta[mode][index];
        if fill.global && !meta.in_global_list {
            self.filled.global.push(slot);
            meta.in_global_list = true;
        } else if !fill.global && !meta.in_local_list {
            self.filled.local.push(slot);
            meta.in_local_list = true;
        }
        if fill.page_size > PAGE_SIZE {
            self.filled
                .large
                .insert(fill.linear & !(fill.page_size - 1));
        }
        meta.phys_page = fill.phys_page;
        meta.page_size = fill.page_size;
        meta.global = fill.global;
    }

    /// Drops every entry (CR0/CR4/EFER paging changes, CR3 writes without PGE).
    pub fn flush_all(&mut self) {
        self.flushes += 1;
        self.global_flushes += 1;
        let filled = std::mem::take(&mut self.filled);
        for &slot in filled.global.iter().chain(&filled.local) {
            let (entry, meta) = self.slot_mut(slot);
            *entry = TlbEntry::empty(slot_index(slot));
            (meta.in_global_list, meta.in_local_list) = (false, false);
        }
        self.filled = filled.emptied();
    }

    /// Drops every non-global entry (CR3 writes with CR4.PGE set).
    pub fn flush_non_global(&mut self) {
        self.flushes += 1;
        let mut local = std::mem::take(&mut self.filled.local);
        for &slot in &local {
            let (entry, meta) = self.slot_mut(slot);
            meta.in_local_list = false;
            // Refilled as global since it was listed: the global list has it too.
            if !meta.global {
                *entry = TlbEntry::empty(slot_index(slot));
            }
        }
        local.clear();
        self.filled.local = local;
    }

    /// INVLPG: drops the entries for the page containing `linear`, including every 4 KiB
    /// entry that came from the same large page.
    pub fn flush_page(&mut self, linear: u64) {
        self.flushes += 1;
        self.global_flushes += 1;
        let in_large = LARGE_PAGE_SIZES
            .iter()
            .any(|size| self.filled.large.contains(&(linear & !(size - 1))));
        if !in_large {
            // Only a 4 KiB entry can cover it: its own slot in each set.
            for mode in 0..TLB_MODES {
                self.drop_if_covering((mode * TLB_ENTRIES + tlb_index(linear)) as u32, linear);
            }
            return;
        }
        let filled = std::mem::take(&mut self.filled);
        for &slot in filled.global.iter().chain(&filled.local) {
            self.drop_if_covering(slot, linear);
        }
        self.filled = filled;
    }

    /// Empties the entry at `slot` if its page covers `linear`.
    fn drop_if_covering(&mut self, slot: u32, linear: u64) {
        let invalid = invalid_tag(slot_index(slot));
        let (entry, meta) = self.slot_mut(slot);
        let tag = [entry.read_tag, entry.write_tag, entry.exec_tag]
            .into_iter()
            .find(|&t| t != invalid);
        let span = !(meta.page_size.max(PAGE_SIZE) - 1);
        if tag.is_some_and(|page| page & span == linear & span) {
            *entry = TlbEntry::empty(slot_index(slot));
        }
    }

    /// Drops the write fast path of every entry for physical page `phys_page`, so writes to
    /// it reach the slow path (it now holds translated code).
    pub fn protect_phys_page(&mut self, phys_page: u64) {
        let filled = std::mem::take(&mut self.filled);
        for &slot in filled.global.iter().chain(&filled.local) {
            let (entry, meta) = self.slot_mut(slot);
            if meta.phys_page == phys_page {
                entry.write_tag = invalid_tag(slot_index(slot));
            }
        }
        self.filled = filled;
    }

    fn slot_mut(&mut self, slot: u32) -> (&mut TlbEntry, &mut TlbMeta) {
        let (mode, index) = (slot as usize / TLB_ENTRIES, slot_index(slot));
        (&mut self.entries[mode][index], &mut self.meta[mode][index])
    }
}

/// The index within its set of a slot of [`Filled`]'s lists.
fn slot_index(slot: u32) -> usize {
    slot as usize % TLB_ENTRIES
}

impl Filled {
    /// The lists emptied, keeping their capacity.
    fn emptied(mut self) -> Self {
        self.global.clear();
        self.local.clear();
        self.large.clear();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccessKind;

    fn fill(linear: u64, write: bool, global: bool, page_size: u64) -> TlbFill {
        TlbFill {
            linear,
            phys_page: linear & !0xfff,
            host_page: 0x7000_0000 + (linear & !0xfff),
            read: true,
            write,
            exec: false,
            page_size,
            global,
        }
    }

    #[test]
    fn entry_layout_is_32_bytes() {
        assert_eq!(core::mem::size_of::<TlbEntry>(), 32);
        assert_eq!(core::mem::offset_of!(TlbEntry, addend), 24);
    }

    #[test]
    fn separate_tags_and_modes() {
        let mut tlb = Tlb::new();
        tlb.fill(0, &fill(0x40_1234, false, false, 4096));
        assert_eq!(
            tlb.lookup(0, 0x40_1abc, AccessKind::Read),
            Some(0x7040_1abc)
        );
        assert_eq!(tlb.lookup(0, 0x40_1abc, AccessKind::Write), None);
        assert_eq!(tlb.lookup(0, 0x40_1abc, AccessKind::Execute), None);
        assert_eq!(
            tlb.lookup(1, 0x40_1abc, AccessKind::Read),
            None,
            "user set is separate"
        );
        // A different page with the same index misses.
        assert_eq!(
            tlb.lookup(0, 0x40_1abc + (TLB_ENTRIES as u64) * 4096, AccessKind::Read),
            None
        );
    }

    #[test]
    fn flushes() {
        let mut tlb = Tlb::new();
        tlb.fill(0, &fill(0x1000, true, true, 4096));
        tlb.fill(0, &fill(0x2000, true, false, 4096));
        tlb.flush_non_global();
        assert!(tlb.lookup(0, 0x1000, AccessKind::Read).is_some());
        assert!(tlb.lookup(0, 0x2000, AccessKind::Read).is_none());
        tlb.flush_page(0x1fff);
        assert!(tlb.lookup(0, 0x1000, AccessKind::Read).is_none());
        tlb.fill(1, &fill(0x3000, true, true, 4096));
        tlb.flush_all();
        assert!(tlb.lookup(1, 0x3000, AccessKind::Read).is_none());
        assert_eq!(tlb.flushes, 3, "every kind of flush is counted");
    }

    #[test]
    fn a_slot_refilled_after_a_flush_is_flushed_again() {
        let mut tlb = Tlb::new();
        for _ in 0..3 {
            tlb.fill(0, &fill(0x1000, true, false, 4096));
            tlb.fill(0, &fill(0x1000, true, false, 4096));
            tlb.fill(2, &fill(0x7000, true, true, 4096));
            tlb.flush_non_global();
            assert!(tlb.lookup(0, 0x1000, AccessKind::Read).is_none());
            assert!(tlb.lookup(2, 0x7000, AccessKind::Read).is_some());
            tlb.fill(0, &fill(0x1000, true, false, 4096));
            tlb.flush_page(0x1000);
            assert!(tlb.lookup(0, 0x1000, AccessKind::Read).is_none());
            tlb.fill(0, &fill(0x1000, true, false, 4096));
            assert_eq!(
                (tlb.filled.local.len(), tlb.filled.global.len()),
                (1, 1),
                "a slot is listed once"
            );
            tlb.flush_all();
            assert!(tlb.lookup(0, 0x1000, AccessKind::Read).is_none());
            assert!(tlb.lookup(2, 0x7000, AccessKind::Read).is_none());
        }
        // Listed as non-global, then refilled as global: a CR3 write keeps it.
        tlb.fill(0, &fill(0x1000, true, false, 4096));
        tlb.fill(0, &fill(0x1000, true, true, 4096));
        tlb.flush_non_global();
        assert!(tlb.lookup(0, 0x1000, AccessKind::Read).is_some());
    }

    #[test]
    fn invlpg_drops_all_pieces_of_a_large_page() {
        let mut tlb = Tlb::new();
        tlb.fill(0, &fill(0x20_0000, true, false, 1 << 21));
        tlb.fill(0, &fill(0x20_5000, true, false, 1 << 21));
        tlb.fill(0, &fill(0x40_0000, true, false, 4096));
        tlb.flush_page(0x21_0000);
        assert!(tlb.lookup(0, 0x20_0000, AccessKind::Read).is_none());
        assert!(tlb.lookup(0, 0x20_5000, AccessKind::Read).is_none());
        assert!(tlb.lookup(0, 0x40_0000, AccessKind::Read).is_some());
    }

    #[test]
    fn protecting_a_code_page_removes_only_the_write_path() {
        let mut tlb = Tlb::new();
        tlb.fill(0, &fill(0x5000, true, false, 4096));
        tlb.protect_phys_page(0x5000);
        assert!(tlb.lookup(0, 0x5000, AccessKind::Write).is_none());
        assert!(tlb.lookup(0, 0x5000, AccessKind::Read).is_some());
    }

    /// Generated code tests `(tag ^ last) < 4096`, `last` the access's last byte, whose page
    /// is the slot's own or the next: an invalid tag must fail that for every address the
    /// slot can be probed with (a false hit would reach host memory through `addend`).
    #[test]
    fn no_access_probing_a_slot_matches_its_invalid_tag() {
        let highs = [
            0,
            INVALID_HIGH,
            0xffff_8000_0000_0000,
            0x7fff_ffff_f000_0000,
            !0xff_ffff,
        ];
        for index in 0..TLB_ENTRIES {
            let invalid = invalid_tag(index);
            for high in highs {
                let first = (high & !0xff_ffff) | (index as u64) << 12;
                for offset in [0, 1, 0x7ff, 0xfff] {
                    let linear = first | offset;
                    assert_eq!(tlb_index(linear), index);
                    for size in [1u64, 2, 8, 16, 4096] {
                        let last = linear.wrapping_add(size - 1);
                        assert!(invalid ^ last >= 4096, "{linear:#x}+{size} at {index}");
                    }
                }
            }
        }
        // And a flushed TLB looks up nothing.
        let mut tlb = Tlb::new();
        tlb.fill(1, &fill(0x8000_0000_0000_3000, true, false, 4096));
        tlb.flush_all();
        for linear in [0x8000_0000_0000_5000u64, 0x8000_0000_0000_3000, 0] {
            assert!(tlb.lookup(1, linear, AccessKind::Read).is_none());
        }
    }
}
