//! The block cache: translated blocks keyed by the physical address and RIP of their first
//! instruction plus the mode they were translated for.
//!
//! Blocks never span a page, so a write to a code page (reported by the memory's code-page
//! tracking, with the span of bytes written) can only touch blocks of that page, and drops
//! those decoded from the bytes written; the page's other blocks stay, their links to the
//! dropped ones cut. A small direct-mapped table in front of
//! the hash map makes the common lookup one compare. When the cache holds too many blocks,
//! everything is dropped at once and the executable memory is freed with the backend.

use crate::backend::CompiledFn;
use crate::translate::Mode;
use iced_x86::Instruction;
use softvisor_mmu::CodeWrite;
use std::collections::HashMap;

/// Blocks compiled (held, or dropped after a code write) before a full flush.
pub const MAX_BLOCKS: usize = 1 << 16;

/// Entries of the direct-mapped front table (small enough to stay in cache).
const FRONT: usize = 1 << 13;

/// A front-table entry: everything a dispatch needs, in one cache line.
#[derive(Clone, Copy)]
struct FrontEntry {
    key: Option<Key>,
    code: Option<CompiledFn>,
    len: usize,
}

/// A multiplicative hasher for [`Key`] (the default SipHash costs more than the rest of a
/// lookup; keys are not attacker-chosen in a way that matters for a cache of one guest).
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
}

pub(crate) type KeyMap<V> = HashMap<Key, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// What identifies a translated block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Physical address of the first instruction.
    pub phys: u64,
    /// Its RIP (decoding resolves RIP-relative operands and branch targets against it).
    pub rip: u64,
    /// The mode it was translated for.
    pub mode: Mode,
}

impl Key {
    /// The physical page its block starts in (and, but for an instruction crossing into
    /// the next, lies in).
    pub(crate) fn page(&self) -> u64 {
        self.phys & !0xfff
    }

    /// Its slot in a direct-mapped table of `slots` entries (a power of two up to 2^13).
    pub(crate) fn front_slot(&self, slots: usize) -> usize {
        let h = (self.phys ^ self.rip.rotate_left(20)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 51) as usize % slots
    }
}

/// A translated block.
pub struct Block {
    /// Its host code (tail-call convention; entered through the backend's trampoline).
    pub code: CompiledFn,
    /// Successor slots its direct exits jump through once the dispatcher links them (code
    /// of a block on the same physical page, or 0).
    pub slots: Box<[u64]>,
    /// The decoded guest instructions; generated code points at them (helper calls), so
    /// they live as long as the code (shared with the compile thread while it builds it).
    pub insns: std::sync::Arc<[Instruction]>,
    /// Instructions of the block it is entered at (the first of `insns`; the rest are the
    /// other blocks of its region, see [`crate::region`]).
    pub entry_len: usize,
}

impl Block {
    /// Guest instructions in the block it is entered at.
    pub fn len(&self) -> usize {
        self.entry_len
    }

    /// Whether the block is empty (never, for a translated block).
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
}

/// Translated blocks by key, with the per-page index used for invalidation.
pub struct BlockCache {
    /// Blocks with the key they were inserted under (a freed slot is reused, so the front
    /// table's key alone does not identify what a slot holds now).
    slots: Vec<Option<(Key, Block)>>,
    free: Vec<usize>,
    by_key: KeyMap<usize>,
    by_page: HashMap<u64, Vec<Key>>,
    front: Box<[FrontEntry]>,
    /// Blocks dropped because their page was written.
    pub invalidated: u64,
    /// Bumped whenever blocks are dropped, so a pending link to a dropped block is refused.
    pub generation: u64,
}

impl Default for BlockCache {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            by_key: KeyMap::default(),
            by_page: HashMap::new(),
            front: vec![
                FrontEntry {
                    key: None,
                    code: None,
                    len: 0
                };
                FRONT
            ]
            .into_boxed_slice(),
            invalidated: 0,
            generation: 0,
        }
    }

    fn front_index(key: &Key) -> usize {
        key.front_slot(FRONT)
    }

    /// The code and length of the block for `key` if the front table holds it: one
    /// compare, no hashing.
    #[inline]
    pub fn front_hit(&self, key: &Key) -> Option<(CompiledFn, usize)> {
        let entry = self.front[Self::front_index(key)];
        match (entry.key, entry.code) {
            (Some(k), Some(code)) if k == *key => Some((code, entry.len)),
            _ => None,
        }
    }

    /// The code and length of the block for `key`, if translated: the dispatch path.
    #[inline]
    pub fn lookup(&mut self, key: &Key) -> Option<(CompiledFn, usize)> {
        if let Some(hit) = self.front_hit(key) {
            return Some(hit);
        }
        let f = Self::front_index(key);
        let slot = *self.by_key.get(key)?;
        let (_, block) = self.slots[slot].as_ref()?;
        let (code, len) = (block.code, block.len());
        self.front[f] = FrontEntry {
            key: Some(*key),
            code: Some(code),
            len,
        };
        Some((code, len))
    }

    /// The block for `key`, if translated.
    pub fn get(&self, key: &Key) -> Option<&Block> {
        let slot = *self.by_key.get(key)?;
        self.slots[slot].as_ref().map(|(_, block)| block)
    }

    /// Adds a block.
    pub fn insert(&mut self, key: Key, block: Block) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some((key, block));
                slot
            }
            None => {
                self.slots.push(Some((key, block)));
                self.slots.len() - 1
            }
        };
        self.by_key.insert(key, slot);
        self.by_page.entry(key.phys & !0xfff).or_default().push(key);
        self.front[Self::front_index(&key)] = FrontEntry {
            key: Some(key),
            code: Some(block_code(&self.slots[slot])),
            len: self.slots[slot].as_ref().map_or(0, |(_, b)| b.len()),
        };
    }

    /// Drops the blocks of `written`'s page decoded from the bytes it wrote; returns their
    /// keys and code (whose addresses other tables must forget). Links from the page's
    /// other blocks to them are cut: only blocks of one page link to each other.
    pub fn invalidate_written(&mut self, written: &CodeWrite) -> Vec<(Key, CompiledFn)> {
        let mut dropped = Vec::new();
        let Some(keys) = self.by_page.remove(&written.page) else {
            return dropped;
        };
        let (gone, kept): (Vec<Key>, Vec<Key>) = keys.into_iter().partition(|key| {
            self.get(key)
                .is_none_or(|block| written_over(written, key, &block.insns))
        });
        if gone.is_empty() {
            self.by_page.insert(written.page, kept);
            return dropped;
        }
        self.generation += 1;
        for key in gone {
            let front = &mut self.front[Self::front_index(&key)];
            if front.key == Some(key) {
                *front = FrontEntry {
                    key: None,
                    code: None,
                    len: 0,
                };
            }
            let Some(slot) = self.by_key.remove(&key) else {
                continue;
            };
            if let Some((_, block)) = self.slots[slot].take() {
                self.invalidated += 1;
                self.free.push(slot);
                dropped.push((key, block.code));
            }
        }
        for key in &kept {
            let Some(&slot) = self.by_key.get(key) else {
                continue;
            };
            if let Some((_, block)) = self.slots[slot].as_mut() {
                for link in block.slots.iter_mut() {
                    if dropped
                        .iter()
                        .any(|&(_, code)| *link == code as usize as u64)
                    {
                        *link = 0;
                    }
                }
            }
        }
        if !kept.is_empty() {
            self.by_page.insert(written.page, kept);
        }
        dropped
    }

    /// Whether a block translated from physical page `page` is cached.
    pub fn has_page(&self, page: u64) -> bool {
        self.by_page.contains_key(&page)
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no block is held.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// The physical bytes `insns` (decoded at `key`, the first at its RIP) came from: from the
/// lowest instruction's first byte to the highest's end. A region's blocks may lie on either
/// side of its entry, all on its page; only the bytes of an instruction crossing into the
/// next page lie beyond it (checked when it runs, see `guard_crossing_tail`). Outside
/// 64-bit mode (where an IP may wrap) it is the whole page.
fn code_span(key: &Key, insns: &[Instruction]) -> (u64, u64) {
    if key.mode.bitness != 64 {
        return (key.page(), key.page() + 0x1000);
    }
    let at = |ip: u64| key.phys.wrapping_add(ip.wrapping_sub(key.rip));
    let start = insns.iter().map(|i| at(i.ip())).min().unwrap_or(key.phys);
    let end = insns
        .iter()
        .map(|i| at(i.next_ip()))
        .max()
        .unwrap_or(key.phys);
    (start, end)
}

/// Whether `written` touched bytes of code `insns` decoded at `key`.
pub fn written_over(written: &CodeWrite, key: &Key, insns: &[Instruction]) -> bool {
    let (start, end) = code_span(key, insns);
    key.page() == written.page && written.overlaps(start, end)
}

fn block_code(slot: &Option<(Key, Block)>) -> CompiledFn {
    slot.as_ref().expect("just inserted").1.code
}
