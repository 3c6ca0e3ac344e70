//! The software TLB: a direct-mapped cache of linear-to-host translations, one set per
//! privilege (see [`tlb_set`]), with separate read, write and execute tags.
//!
//! Layout (fixed; generated code indexes it, so it is `#[repr(C)]`):
//! `Tlb::entries[mode][index]` with `index = (linear >> 12) % TLB_ENTRIES` and
//! `mode` the set of [`tlb_set`]. An entry is 32 bytes:
//! `read_tag, write_tag, exec_tag, addend`, all `u64`. A tag is the page-aligned linear
//! address when that kind of access may use the fast path, and [`INVALID_TAG`] otherwise.
//! The fast path is: compute the index, compare `linear & !0xfff` with the tag, check the
//! access does not cross the page, and access host memory at `linear + addend`.
//!
//! A write tag is only filled for RAM pages that are writable, already dirty, and hold no
//! translated code; MMIO pages get no tags at all. Everything else takes the slow path.

use crate::paging::{PagingContext, PagingMode, CR4_SMAP};

/// Entries per privilege set.
pub const TLB_ENTRIES: usize = 256;
/// A tag that matches no page-aligned address.
pub const INVALID_TAG: u64 = u64::MAX;
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
    const EMPTY: TlbEntry = TlbEntry {
        read_tag: INVALID_TAG,
        write_tag: INVALID_TAG,
        exec_tag: INVALID_TAG,
        addend: 0,
    };
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
}

/// Offset of [`Tlb::flushes`] from the first entry, for generated code that holds a
/// pointer to the entries.
pub const FLUSHES_FROM_ENTRIES: i32 = core::mem::offset_of!(Tlb, flushes) as i32;
/// Offset of [`Tlb::global_flushes`] from the first entry.
pub const GLOBAL_FLUSHES_FROM_ENTRIES: i32 = core::mem::offset_of!(Tlb, global_flushes) as i32;
const _: () = assert!(core::mem::offset_of!(Tlb, entries) == 0);

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

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
    /// An empty TLB.
    pub fn new() -> Self {
        Tlb {
            entries: [[TlbEntry::EMPTY; TLB_ENTRIES]; TLB_MODES],
            flushes: 0,
            global_flushes: 0,
            meta: [[TlbMeta::default(); TLB_ENTRIES]; TLB_MODES],
        }
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
        let tag = |allowed: bool| if allowed { page } else { INVALID_TAG };
        self.entries[mode][index] = TlbEntry {
            read_tag: tag(fill.read),
            write_tag: tag(fill.write),
            exec_tag: tag(fill.exec),
            addend: fill.host_page.wrapping_sub(page),
        };
        self.meta[mode][index] = TlbMeta {
            phys_page: fill.phys_page,
            page_size: fill.page_size,
            global: fill.global,
        };
    }

    /// Drops every entry (CR0/CR4/EFER paging changes, CR3 writes without PGE).
    pub fn flush_all(&mut self) {
        self.flushes += 1;
        self.global_flushes += 1;
        for set in self.entries.iter_mut() {
            set.fill(TlbEntry::EMPTY);
        }
    }

    /// Drops every non-global entry (CR3 writes with CR4.PGE set).
    pub fn flush_non_global(&mut self) {
        self.flushes += 1;
        for (set, meta) in self.entries.iter_mut().zip(self.meta.iter()) {
            for (entry, meta) in set.iter_mut().zip(meta.iter()) {
                if !meta.global {
                    *entry = TlbEntry::EMPTY;
                }
            }
        }
    }

    /// INVLPG: drops the entries for the page containing `linear`, including every 4 KiB
    /// entry that came from the same large page.
    pub fn flush_page(&mut self, linear: u64) {
        self.flushes += 1;
        self.global_flushes += 1;
        for (set, meta) in self.entries.iter_mut().zip(self.meta.iter()) {
            for (entry, meta) in set.iter_mut().zip(meta.iter()) {
                let tag = [entry.read_tag, entry.write_tag, entry.exec_tag]
                    .into_iter()
                    .find(|&t| t != INVALID_TAG);
                let Some(page) = tag else { continue };
                let span = !(meta.page_size.max(4096) - 1);
                if page & span == linear & span {
                    *entry = TlbEntry::EMPTY;
                }
            }
        }
    }

    /// Drops the write fast path of every entry for physical page `phys_page`, so writes to
    /// it reach the slow path (it now holds translated code).
    pub fn protect_phys_page(&mut self, phys_page: u64) {
        for (set, meta) in self.entries.iter_mut().zip(self.meta.iter()) {
            for (entry, meta) in set.iter_mut().zip(meta.iter()) {
                if meta.phys_page == phys_page {
                    entry.write_tag = INVALID_TAG;
                }
            }
        }
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
}
