//! The jump cache: a direct-mapped table from a guest RIP to translated code, which
//! generated code consults at exits whose target is not a linked successor (indirect jumps,
//! calls, returns, and direct jumps to another page), so most of them go straight to the
//! next block instead of through the dispatcher.
//!
//! The block cache is keyed by physical address, which generated code cannot compute
//! cheaply; this table is keyed by RIP within one privilege set and is a cache of the
//! dispatcher's lookups. It stays right because:
//! - an entry records the TLB's flush count when it was filled, and generated code only
//!   uses it while the count is unchanged, so a CR3 write, INVLPG or paging change (which
//!   may remap the RIP) retires every entry at once;
//! - the dispatcher removes the entries of blocks it drops (written code pages, full
//!   flushes) before their code is freed;
//! - exits that use it are only in 64-bit blocks (CS base 0) whose last instruction does
//!   not change the mode, so the target runs in the block's own mode.
//!
//! Layout (generated code indexes it): `[set][index]` with `set` the TLB privilege set and
//! `index` from [`index`], entries of [`JumpEntry`].

use crate::backend::CompiledFn;
use core::mem::offset_of;

/// Entries per privilege set.
pub const ENTRIES: usize = 1 << 12;

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
    /// Keeps entries 32 bytes, so an index scales by a shift.
    _pad: u64,
}

impl JumpEntry {
    const EMPTY: JumpEntry = JumpEntry {
        rip: 0,
        flushes: u64::MAX,
        code: 0,
        _pad: 0,
    };
}

/// Offset of [`JumpEntry::rip`].
pub const RIP: i32 = offset_of!(JumpEntry, rip) as i32;
/// Offset of [`JumpEntry::flushes`].
pub const FLUSHES: i32 = offset_of!(JumpEntry, flushes) as i32;
/// Offset of [`JumpEntry::code`].
pub const CODE: i32 = offset_of!(JumpEntry, code) as i32;
/// log2 of the entry size.
pub const ENTRY_SHIFT: i64 = 5;
const _: () = assert!(core::mem::size_of::<JumpEntry>() == 1 << ENTRY_SHIFT);

/// How far [`index`] folds the page number into the offset.
pub const HASH_SHIFT: i64 = 10;

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

    /// Records that `rip` in privilege set `set` runs `code`, valid while the TLB's flush
    /// count is `flushes`.
    pub fn fill(&mut self, set: usize, rip: u64, flushes: u64, code: CompiledFn) {
        *self.slot(set, rip) = JumpEntry {
            rip,
            flushes,
            code: code as usize as u64,
            _pad: 0,
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

    /// The code recorded for `rip` in `set` while the flush count is `flushes` (what
    /// generated code finds).
    pub fn lookup(&self, set: usize, rip: u64, flushes: u64) -> Option<u64> {
        let entry = &self.entries[set * ENTRIES + index(rip)];
        (entry.rip == rip && entry.flushes == flushes).then_some(entry.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(n: usize) -> CompiledFn {
        // SAFETY: never called; only compared as an address.
        unsafe { std::mem::transmute::<usize, CompiledFn>(n) }
    }

    #[test]
    fn entries_are_per_set_and_retired_by_flushes_and_forgetting() {
        let mut jc = JumpCache::new();
        assert_eq!(jc.lookup(0, 0, 0), None, "empty entries match nothing");
        jc.fill(0, 0xffff_ffff_8100_0010, 7, code(0x1000));
        assert_eq!(jc.lookup(0, 0xffff_ffff_8100_0010, 7), Some(0x1000));
        assert_eq!(jc.lookup(1, 0xffff_ffff_8100_0010, 7), None, "other set");
        assert_eq!(jc.lookup(0, 0xffff_ffff_8100_0010, 8), None, "TLB flushed");
        let alias = 0xffff_ffff_8100_0010 - (1u64 << 34);
        assert_eq!(index(alias), index(0xffff_ffff_8100_0010));
        assert_eq!(jc.lookup(0, alias, 7), None, "same index, other RIP");
        jc.forget(0, 0xffff_ffff_8100_0010, code(0x2000));
        assert_eq!(
            jc.lookup(0, 0xffff_ffff_8100_0010, 7),
            Some(0x1000),
            "another block's code is not forgotten"
        );
        jc.forget(0, 0xffff_ffff_8100_0010, code(0x1000));
        assert_eq!(jc.lookup(0, 0xffff_ffff_8100_0010, 7), None);
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
