//! System-level CPU behaviour shared by the interpreter and the run loop: descriptors,
//! exception and interrupt delivery, and keeping the memory system's view of paging
//! registers and CPL current.

pub mod control;
pub mod deliver;
pub mod descriptor;
pub mod msr;
pub mod segments;
pub mod tss;

use crate::flags::AC;
use crate::CpuState;
use softvisor_mmu::paging::PagingContext;
use softvisor_mmu::Memory;

/// The paging context the memory system needs, taken from the CPU.
pub fn paging_context(cpu: &CpuState) -> PagingContext {
    PagingContext {
        cr0: cpu.cr0,
        cr3: cpu.cr3,
        cr4: cpu.cr4,
        efer: cpu.efer,
        cpl: cpu.cpl(),
        // AC is never one of the pending arithmetic flags: no need to compute those.
        ac: cpu.flags.test(AC),
    }
}

/// Tells the memory system about the current paging registers and CPL. Called after
/// anything that may change them (control-register writes, CS loads, delivery, IRET).
pub fn sync_paging(cpu: &CpuState, mem: &mut dyn Memory) {
    mem.set_paging(&paging_context(cpu));
}

#[cfg(test)]
mod tests;
