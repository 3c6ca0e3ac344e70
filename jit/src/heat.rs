//! Block starts reached but not translated yet (see [`crate::engine`]'s hotness rule): how
//! often each was reached, and its instructions decoded once for the interpreter.
//!
//! Every reach of a cold block start looks it up here, millions of times in a kernel boot,
//! so entries live in a slab and a direct-mapped front table (like the block cache's) finds
//! the common ones with one compare; the hash map behind it holds them all.

use crate::cache::{written_over, Key, KeyMap};
use iced_x86::Instruction;
use smallvec::SmallVec;
use softvisor_cpu::interp::fast::FastOp;
use softvisor_mmu::CodeWrite;
use std::collections::HashMap;

/// Entries of the direct-mapped front table.
const FRONT: usize = 1 << 13;

/// Steps a heat entry holds inline (cold blocks average under five instructions).
const INLINE_STEPS: usize = 4;

/// A block start not translated yet. The fields a cold run reads come first, and the
/// first steps are inline, so a run reads a few adjacent cache lines of the slab rather
/// than chasing a pointer to its steps (that had been a cache miss per cold run).
#[repr(C)]
pub(crate) struct Heat {
    /// Times it was reached.
    pub reached: u32,
    /// Instructions the block would hold.
    pub insns: u32,
    /// Those instructions, decoded once, when they lie in one page (the page is tracked as
    /// code, so a write to it drops this entry): the interpreter runs them without a
    /// lookup per instruction.
    pub decoded: Option<Box<[Instruction]>>,
    /// Whether the block ends quietly ([`crate::block::ends_quietly`]), so the engine may
    /// go on to the next cold block without the dispatcher.
    pub ends_quietly: bool,
    /// Once submitted to the compile thread, the job's urgency (see
    /// [`crate::compiler::Urgency`]).
    pub urgency: Option<crate::compiler::Urgency>,
    /// What the interpreter needs of them, one per decoded instruction (see [`ColdStep`]).
    pub steps: SmallVec<[ColdStep; INLINE_STEPS]>,
}

/// One instruction of a cold block as [`crate::engine`] runs it: its pre-decoded form
/// ([`FastOp`]) and where it ends. A run reads only these for an instruction with a form,
/// one cache line, and the decoded instruction only for the others: the cold path had
/// stalled on misses in both arrays.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ColdStep {
    pub form: FastOp,
    /// The RIP after it when the block goes on.
    pub next_ip: u64,
}

impl ColdStep {
    pub fn of(insn: &Instruction) -> Self {
        // Where the block goes on after it: a direct JMP inside a block is one that
        // decoding followed (see `crate::block::decode_block`).
        let next_ip = if insn.is_jmp_short_or_near() {
            insn.near_branch_target()
        } else {
            insn.next_ip()
        };
        Self {
            form: FastOp::of(insn),
            next_ip,
        }
    }
}

/// Where an entry lives in the slab; valid until the table next changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeatIndex(u32);

/// The cold block starts.
pub(crate) struct HeatTable {
    slab: Vec<Option<(Key, Heat)>>,
    free: Vec<u32>,
    by_key: KeyMap<u32>,
    /// A slab index per front slot; an entry is current when the slab holds its key there.
    front: Box<[u32]>,
    /// The keys of each physical page's entries (a code write looks at its page's only).
    by_page: HashMap<u64, Vec<Key>>,
}

impl Default for HeatTable {
    fn default() -> Self {
        Self {
            slab: Vec::new(),
            free: Vec::new(),
            by_key: KeyMap::default(),
            front: vec![u32::MAX; FRONT].into_boxed_slice(),
            by_page: HashMap::new(),
        }
    }
}

impl HeatTable {
    /// The entry of `key`, made by `make` on its first reach.
    pub fn entry(&mut self, key: &Key, make: impl FnOnce() -> Heat) -> HeatIndex {
        let slot = key.front_slot(FRONT);
        let at = self.front[slot];
        if self.key_at(at) == Some(key) {
            return HeatIndex(at);
        }
        let at = match self.by_key.get(key) {
            Some(&at) => at,
            None => self.insert(*key, make()),
        };
        self.front[slot] = at;
        HeatIndex(at)
    }

    /// The entry of `key` if the front table holds it: one compare, no hashing. The
    /// dispatcher asks this before the block cache, since a key with an entry has no block.
    #[inline]
    pub fn cached(&self, key: &Key) -> Option<HeatIndex> {
        let at = self.front[key.front_slot(FRONT)];
        (self.key_at(at) == Some(key)).then_some(HeatIndex(at))
    }

    /// The key of the entry at `index`.
    pub fn key_of(&self, index: HeatIndex) -> Option<Key> {
        self.key_at(index.0).copied()
    }

    /// The entry at `index`.
    pub fn get(&self, index: HeatIndex) -> Option<&Heat> {
        match self.slab.get(index.0 as usize) {
            Some(Some((_, heat))) => Some(heat),
            _ => None,
        }
    }

    /// The entry at `index`, to update.
    pub fn get_mut(&mut self, index: HeatIndex) -> Option<&mut Heat> {
        match self.slab.get_mut(index.0 as usize) {
            Some(Some((_, heat))) => Some(heat),
            _ => None,
        }
    }

    /// The entry of `key`, if it has one.
    pub fn find(&self, key: &Key) -> Option<&Heat> {
        let &at = self.by_key.get(key)?;
        self.slab[at as usize].as_ref().map(|(_, heat)| heat)
    }

    /// The entry of `key`, if it has one, to update.
    pub fn find_mut(&mut self, key: &Key) -> Option<&mut Heat> {
        let &at = self.by_key.get(key)?;
        self.slab[at as usize].as_mut().map(|(_, heat)| heat)
    }

    /// Forgets `key` (its block is being translated).
    pub fn remove(&mut self, key: &Key) {
        if let Some(at) = self.by_key.remove(key) {
            self.slab[at as usize] = None;
            self.free.push(at);
            let page = key.page();
            if let Some(keys) = self.by_page.get_mut(&page) {
                keys.retain(|k| k != key);
                if keys.is_empty() {
                    self.by_page.remove(&page);
                }
            }
        }
    }

    /// Forgets the entries of `written`'s page decoded from the bytes it wrote (and those
    /// not decoded, whose bytes are not known); returns whether the page keeps any.
    pub fn drop_written(&mut self, written: &CodeWrite) -> bool {
        let Some(keys) = self.by_page.get(&written.page) else {
            return false;
        };
        let touched: Vec<Key> = keys
            .iter()
            .filter(|key| match self.find(key) {
                Some(Heat {
                    decoded: Some(insns),
                    ..
                }) => written_over(written, key, insns),
                _ => true,
            })
            .copied()
            .collect();
        for key in touched {
            self.remove(&key);
        }
        self.by_page.contains_key(&written.page)
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    fn key_at(&self, at: u32) -> Option<&Key> {
        match self.slab.get(at as usize) {
            Some(Some((key, _))) => Some(key),
            _ => None,
        }
    }

    fn insert(&mut self, key: Key, heat: Heat) -> u32 {
        self.by_page.entry(key.page()).or_default().push(key);
        let at = match self.free.pop() {
            Some(at) => {
                self.slab[at as usize] = Some((key, heat));
                at
            }
            None => {
                self.slab.push(Some((key, heat)));
                (self.slab.len() - 1) as u32
            }
        };
        self.by_key.insert(key, at);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::Mode;

    fn key(phys: u64) -> Key {
        Key {
            phys,
            rip: phys,
            mode: Mode {
                bitness: 64,
                tlb_mode: 0,
                inline_memory: true,
            },
        }
    }

    fn heat() -> Heat {
        Heat {
            reached: 0,
            insns: 1,
            decoded: None,
            steps: SmallVec::new(),
            ends_quietly: false,
            urgency: None,
        }
    }

    #[test]
    fn a_cold_step_fits_in_a_cache_line() {
        assert!(
            core::mem::size_of::<ColdStep>() <= 64,
            "{} bytes",
            core::mem::size_of::<ColdStep>()
        );
    }

    #[test]
    fn a_short_blocks_steps_are_in_its_entry() {
        // add rax,1; mov [rbx],rax; xor ecx,ecx; ret: the cold path reads these from the
        // slab entry itself, with no pointer to follow.
        let bytes = [0x48, 0x83, 0xc0, 0x01, 0x48, 0x89, 0x03, 0x31, 0xc9, 0xc3];
        let mut decoder = iced_x86::Decoder::with_ip(64, &bytes, 0x1000, 0);
        let steps: SmallVec<[ColdStep; INLINE_STEPS]> =
            decoder.iter().map(|insn| ColdStep::of(&insn)).collect();
        assert_eq!(steps.len(), 4);
        assert!(!steps.spilled());
        assert_eq!(steps[3].next_ip, 0x100a);
    }

    #[test]
    fn a_write_drops_only_the_entries_decoded_from_its_bytes() {
        // add rax,1; mov [rbx],rax; xor ecx,ecx; ret, decoded at 0x1000 and at 0x1800.
        let bytes = [0x48, 0x83, 0xc0, 0x01, 0x48, 0x89, 0x03, 0x31, 0xc9, 0xc3];
        let decoded_at = |at: u64| {
            let decoder = iced_x86::Decoder::with_ip(64, &bytes, at, 0);
            Heat {
                decoded: Some(decoder.into_iter().collect()),
                ..heat()
            }
        };
        let mut table = HeatTable::default();
        table.entry(&key(0x1000), || decoded_at(0x1000));
        table.entry(&key(0x1800), || decoded_at(0x1800));
        table.entry(&key(0x1c00), heat);
        // One byte of the second block's last instruction; the undecoded entry's bytes are
        // unknown, so it goes too.
        let written = CodeWrite {
            page: 0x1000,
            start: 0x1809,
            end: 0x180a,
        };
        assert!(
            table.drop_written(&written),
            "the first block's entry stays"
        );
        assert!(table.find(&key(0x1000)).is_some());
        assert!(table.find(&key(0x1800)).is_none());
        assert!(table.find(&key(0x1c00)).is_none());
        // Just past its last byte: it stays.
        let beside = CodeWrite {
            page: 0x1000,
            start: 0x100a,
            end: 0x1010,
        };
        assert!(table.drop_written(&beside));
        assert!(table.find(&key(0x1000)).is_some());
    }

    #[test]
    fn entries_survive_front_collisions_and_go_with_their_page() {
        let mut table = HeatTable::default();
        // Enough keys that front slots collide.
        let keys: Vec<Key> = (0..3 * FRONT as u64)
            .map(|i| key(0x1000 + 16 * i))
            .collect();
        for (n, k) in keys.iter().enumerate() {
            let at = table.entry(k, heat);
            table.get_mut(at).unwrap().reached = n as u32;
        }
        for (n, k) in keys.iter().enumerate() {
            let at = table.entry(k, || panic!("{k:?} was made twice"));
            assert_eq!(table.get_mut(at).unwrap().reached, n as u32);
        }
        let whole_page = CodeWrite {
            page: 0x1000,
            start: 0x1000,
            end: 0x2000,
        };
        assert!(!table.drop_written(&whole_page), "nothing left on the page");
        assert!(table.find(&keys[0]).is_none());
        assert!(table.find(&keys[256]).is_some(), "another page");
        let again = table.entry(&keys[0], heat);
        assert_eq!(table.get_mut(again).unwrap().reached, 0, "made afresh");
        table.remove(&keys[256]);
        assert!(table.find(&keys[256]).is_none());
    }
}
