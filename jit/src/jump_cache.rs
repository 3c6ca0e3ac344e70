//! The jump cache: a direct-mapped table from a guest RIP to translated code, which
//! generated code consults at exits whose target is not a linked successor (indirect jumps,
//! calls, returns, and direct jumps to another page), so most of them go straight to the
//! next block instead of through the dispatcher.
//!
//! The block cache is keyed by physical address, which generated code cannot compute
//! cheaply; this table is keyed by RIP within one privilege set and is a cache of the
//! dispatcher's lookups. It stays right because:
//! - an entry records a TLB flush count when it was filled, and generated code only uses
//!   it while the count is unchanged, so a CR3 write, INVLPG or paging change (which may
//!   remap the RIP) retires every entry at once; an entry for a global page records the
//!   count of flushes that drop global translations, so it outlives CR3 writes (the
//!   kernel's code across context switches);
//! - the dispatcher removes the entries of blocks it drops (written code pages, full
//!   flushes) before their code is freed;
//! - exits that use it are only in 64-bit blocks (CS base 0) whose last instruction does
//!   not change the mode, so the target runs in the block's own mode.
//!
//! Layout (generated code indexes it): `[set][index]` with `set` the TLB privilege set and
//! `index` from [`index`], entries of [`JumpEntry`].

use crate::backend::CompiledFn;
use core::mem::offset_of;
use softvisor_mmu::tlb::{Tlb, FLUSHES_FROM_ENTRIES, GLOBAL_FLUSHES_FROM_ENTRIES};

/// Entries per privilege set.
pub const ENTRIES: usize = 1 << 14;

/// Privilege sets (as the TLB's).
const SETS: usize = softvisor_mmu::tlb::TLB_MODES;

/// One entry. `#[repr(C)]`: generated code reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JumpEntry {
    /// The RIP of the block's first instruction.
    pub rip: u64,
    /// [`softvisor_mmu::tlb::Tlb::flushes`] when the entry was filled; `u64::MAX`, which
    /// the count never reaches, in an empty entry, so that no RIP matches it.
    pub flushes: u64,
    /// The block's code, or 0.
    pub code: u64,
    /// Which count `flushes` is of: the offset from the TLB's first entry of
    /// [`softvisor_mmu::tlb::Tlb::flushes`] or of `global_flushes`.
    pub counter: u64,
}

impl JumpEntry {
    const EMPTY: JumpEntry = JumpEntry {
        rip: 0,
        flushes: u64::MAX,
        code: 0,
        counter: FLUSHES_FROM_ENTRIES as u64,
    };
}

/// Offset of [`JumpEntry::rip`].
pub const RIP: i32 = offset_of!(JumpEntry, rip) as i32;
/// Offset of [`JumpEntry::flushes`].
pub const FLUSHES: i32 = offset_of!(JumpEntry, flushes) as i32;
/// Offset of [`JumpEntry::code`].
pub const CODE: i32 = offset_of!(JumpEntry, code) as i32;
/// Offset of [`JumpEntry::counter`].
pub const COUNTER: i32 = offset_of!(JumpEntry, counter) as i32;
/// log2 of the entry size.
pub const ENTRY_SHIFT: i64 = 5;
const _: () = assert!(core::mem::size_of::<JumpEntry>() == 1 << ENTRY_SHIFT);

/// How far [`index`] folds the page number into the offset.
pub const HASH_SHIFT: i64 = 10;
// Generated code rotates instead of shifting: the bits that wrap around must land above
// the index.
const _: () = assert!(ENTRIES.trailing_zeros() as i64 <= 64 - HASH_SHIFT);

/// The entry index of `rip` within its set; generated code computes the same as
/// `(rip ^ (rip >> HASH_SHIFT)) & (ENTRIES - 1)`.
#[inline]
pub fn index(rip: u64) -> usize {
    ((rip ^ (rip >> HASH_SHIFT)) as usize) & (ENTRIES - 1)
}

/// The table, in one allocation that never moves.
pub struct JumpCache {
    entries: Box<[JumpEntry]>,
}

impl Default for JumpCache {
    fn default() -> Self {
        Self::new()
    }
}

impl JumpCache {
    /// An empty table.
    pub fn new() -> Self {
        Self {
            entries: vec![JumpEntry::EMPTY; SETS * ENTRIES].into_boxed_slice(),
        }
    }

    /// The first entry, for the context generated code receives.
    pub fn as_ptr(&self) -> *const JumpEntry {
        self.entries.as_ptr()
    }

    fn slot(&mut self, set: usize, rip: u64) -> &mut JumpEntry {
        &mut self.entries[set * ENTRIES + index(rip)]
    }

    /// Records that `rip` in privilege set `set` runs `code`, valid while `tlb`'s flush
    /// counts stay as they are now (only those that drop global entries, when `rip`'s page
    /// is mapped global).
    pub fn fill(&mut self, set: usize, rip: u64, tlb: &Tlb, code: CompiledFn) {
        let global = tlb.meta(set, rip).is_some_and(|m| m.global);
        let (flushes, counter) = if global {
            (tlb.global_flushes, GLOBAL_FLUSHES_FROM_ENTRIES)
        } else {
            (tlb.flushes, FLUSHES_FROM_ENTRIES)
        };
        *self.slot(set, rip) = JumpEntry {
            rip,
            flushes,
            code: code as usize as u64,
            counter: counter as u64,
        };
    }

    /// Forgets `code` at `rip` (its block is being dropped).
    pub fn forget(&mut self, set: usize, rip: u64, code: CompiledFn) {
        let entry = self.slot(set, rip);
        if entry.code == code as usize as u64 {
            *entry = JumpEntry::EMPTY;
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.fill(JumpEntry::EMPTY);
    }

    /// The code recorded for `rip` in `set` that is still valid for `tlb` (what generated
    /// code finds).
    pub fn lookup(&self, set: usize, rip: u64, tlb: &Tlb) -> Option<u64> {
        let entry = &self.entries[set * ENTRIES + index(rip)];
        let now = if entry.counter == GLOBAL_FLUSHES_FROM_ENTRIES as u64 {
            tlb.global_flushes
        } else {
            tlb.flushes
        };
        (entry.rip == rip && entry.flushes == now).then_some(entry.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(n: usize) -> CompiledFn {
        // SAFETY: never called; only compared as an address.
        unsafe { std::mem::transmute::<usize, CompiledFn>(n) }
    }

    /// A TLB holding `linear`'s page in set 0, global or not.
    fn tlb_with(linear: u64, global: bool) -> Box<Tlb> {
        let mut tlb = Tlb::new();
        let fill = softvisor_mmu::tlb::TlbFill {
            linear,
            phys_page: 0x1000,
            host_page: 0x10_0000,
            read: true,
            write: false,
            exec: true,
            page_size: 4096,
            global,
        };
        tlb.fill(0, &fill);
        tlb
    }

    #[test]
    fn entries_are_per_set_and_retired_by_flushes_and_forgetting() {
        let rip = 0xffff_ffff_8100_0010;
        let mut tlb = tlb_with(rip, false);
        let mut jc = JumpCache::new();
        assert_eq!(jc.lookup(0, 0, &tlb), None, "empty entries match nothing");
        jc.fill(0, rip, &tlb, code(0x1000));
        assert_eq!(jc.lookup(0, rip, &tlb), Some(0x1000));
        assert_eq!(jc.lookup(1, rip, &tlb), None, "other set");
        let alias = rip - (1u64 << 34);
        assert_eq!(index(alias), index(rip));
        assert_eq!(jc.lookup(0, alias, &tlb), None, "same index, other RIP");
        jc.forget(0, rip, code(0x2000));
        assert_eq!(
            jc.lookup(0, rip, &tlb),
            Some(0x1000),
            "another block's code is not forgotten"
        );
        tlb.flush_non_global();
        assert_eq!(jc.lookup(0, rip, &tlb), None, "CR3 write");
        jc.fill(0, rip, &tlb, code(0x1000));
        jc.forget(0, rip, code(0x1000));
        assert_eq!(jc.lookup(0, rip, &tlb), None);
    }

    #[test]
    fn entries_of_global_pages_outlive_cr3_writes_only() {
        let rip = 0xffff_ffff_8100_0010;
        let mut tlb = tlb_with(rip, true);
        let mut jc = JumpCache::new();
        jc.fill(0, rip, &tlb, code(0x1000));
        tlb.flush_non_global();
        assert_eq!(jc.lookup(0, rip, &tlb), Some(0x1000), "CR3 write");
        tlb.flush_page(0x40_0000);
        assert_eq!(jc.lookup(0, rip, &tlb), None, "INVLPG of any page");
        jc.fill(0, rip, &tlb, code(0x1000));
        tlb.flush_all();
        assert_eq!(jc.lookup(0, rip, &tlb), None, "paging change");
    }

    #[test]
    fn index_spreads_aligned_targets() {
        let used: std::collections::HashSet<usize> =
            (0..1024u64).map(|i| index(0x40_0000 + i * 16)).collect();
        assert!(
            used.len() > 900,
            "16-byte aligned entries collide: {}",
            used.len()
        );
    }
}
