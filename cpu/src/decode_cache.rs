//! A cache of decoded instructions for the interpreter, so a loop is decoded once.
//!
//! Entries are keyed by the physical address of the instruction, the RIP it was decoded at
//! (iced resolves RIP-relative operands and branch targets against it) and the code size.
//! The memory tracks the pages entries came from: a write to one is reported through
//! [`Memory::take_written_code`] and drops that page's entries before the next instruction,
//! so self-modifying code and reused code pages are decoded afresh. Instructions that cross a
//! page boundary, or run from MMIO, are never cached.

use crate::interp::{decode_at, execute, StepOutcome, MAX_INSN_LEN};
use crate::{CpuState, Exception, Platform, SegReg};
use iced_x86::Instruction;
use softvisor_mmu::{CodeWrite, Memory, PAGE_SIZE};

/// Entries in the direct-mapped table: sixteen pages' worth of byte offsets.
const ENTRIES: usize = 1 << 16;

#[derive(Clone, Copy)]
struct Entry {
    /// Physical address, or `u64::MAX` when empty.
    phys: u64,
    rip: u64,
    bitness: u32,
    insn: Instruction,
}

impl Entry {
    fn empty() -> Self {
        Entry {
            phys: u64::MAX,
            rip: 0,
            bitness: 0,
            insn: Instruction::new(),
        }
    }
}

/// Decoded instructions by physical address.
pub struct DecodeCache {
    entries: Box<[Entry]>,
}

impl Default for DecodeCache {
    fn default() -> Self {
        Self::new()
    }
}

impl DecodeCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            entries: vec![Entry::empty(); ENTRIES].into_boxed_slice(),
        }
    }

    fn slot(phys: u64) -> usize {
        (phys as usize) & (ENTRIES - 1)
    }

    /// Drops every entry decoded from the physical page at `page` (a caller that drains
    /// [`Memory::take_written_code`] itself passes the pages on here).
    pub fn invalidate_page(&mut self, page: u64) {
        let start = Self::slot(page);
        for entry in &mut self.entries[start..start + PAGE_SIZE as usize] {
            if entry.phys & !(PAGE_SIZE - 1) == page {
                *entry = Entry::empty();
            }
        }
    }

    /// Drops the entries decoded from bytes `written` covered: those starting up to an
    /// instruction's length before it (entries never cross their page), a handful of slots
    /// rather than the page's 4,096 for the few bytes a kernel patches at a time. Only for a
    /// caller that keeps the page tracked ([`Memory::track_code_page`]): the entries left
    /// would otherwise miss the next write.
    pub fn invalidate_written(&mut self, written: &CodeWrite) {
        let first = written
            .start
            .saturating_sub(MAX_INSN_LEN as u64 - 1)
            .max(written.page);
        let end = written.end.min(written.page + PAGE_SIZE);
        for phys in first..end {
            let entry = &mut self.entries[Self::slot(phys)];
            if entry.phys == phys {
                *entry = Entry::empty();
            }
        }
    }

    /// Decodes the instruction at CS:RIP, or finds it decoded.
    fn decode(&mut self, cpu: &CpuState, mem: &mut dyn Memory) -> Result<Instruction, Exception> {
        // The page is no longer tracked (see `invalidate_written`): all of it goes.
        for written in mem.take_written_code() {
            self.invalidate_page(written.page);
        }
        let linear = cpu.segment(SegReg::Cs).base.wrapping_add(cpu.rip);
        let Some(phys) = mem.code_address(linear) else {
            return decode_at(cpu, mem);
        };
        let bitness = cpu.bitness();
        let entry = &mut self.entries[Self::slot(phys)];
        if entry.phys == phys && entry.rip == cpu.rip && entry.bitness == bitness {
            return Ok(entry.insn);
        }
        let insn = decode_at(cpu, mem)?;
        if (phys & (PAGE_SIZE - 1)) + insn.len() as u64 <= PAGE_SIZE {
            *entry = Entry {
                phys,
                rip: cpu.rip,
                bitness,
                insn,
            };
        }
        Ok(insn)
    }

    /// [`crate::interp::step_on`] through the cache.
    pub fn step(
        &mut self,
        cpu: &mut CpuState,
        mem: &mut dyn Memory,
        platform: &mut dyn Platform,
    ) -> Result<StepOutcome, Exception> {
        let insn = self.decode(cpu, mem)?;
        execute(cpu, mem, platform, &insn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoPlatform;
    use softvisor_mmu::bus::Bus;
    use softvisor_mmu::{GuestRam, SystemMemory};

    fn machine(code: &[u8]) -> (CpuState, SystemMemory) {
        let mut ram = GuestRam::new(0x10000).unwrap();
        ram.write_bytes(0x1000, code).unwrap();
        let mut cpu = CpuState::new_real_mode();
        cpu.rip = 0x1000;
        cpu.gpr[4] = 0x8000;
        let mut mem = SystemMemory::new(ram, Bus::new());
        crate::system::sync_paging(&cpu, &mut mem);
        (cpu, mem)
    }

    #[test]
    fn a_store_into_cached_code_is_seen() {
        // 0x1000: inc ax                  ff c0 (the store turns it into inc cx, ff c1)
        // 0x1002: mov byte [0x1001], 0xc1 c6 06 01 10 c1
        // 0x1007: jmp 0x1000              eb f7
        let code = [0xff, 0xc0, 0xc6, 0x06, 0x01, 0x10, 0xc1, 0xeb, 0xf7];
        let (mut cpu, mut mem) = machine(&code);
        let mut cache = DecodeCache::new();
        for _ in 0..6 {
            cache.step(&mut cpu, &mut mem, &mut NoPlatform).unwrap();
        }
        assert_eq!((cpu.gpr[0], cpu.gpr[1]), (1, 1), "second pass ran inc cx");
        assert_eq!(cpu.rip, 0x1000);
    }
}
