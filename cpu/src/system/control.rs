//! Control-register and EFER writes with the checks the SDM specifies, long-mode
//! activation, and the memory system's TLB kept in step.

use crate::state::{CR0_ET, CR0_PE, CR0_PG, EFER_LMA, EFER_LME};
use crate::{CpuState, Exception, Platform, SegReg, Segment};
use softvisor_mmu::Memory;

/// CR0.NW.
const CR0_NW: u64 = 1 << 29;
/// CR0.CD.
const CR0_CD: u64 = 1 << 30;
/// CR4.PAE.
const CR4_PAE: u64 = 1 << 5;
/// CR4 bits the virtual CPU supports: VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT,
/// OSXSAVE, SMEP and SMAP.
pub const CR4_SUPPORTED: u64 = 0x7ff | (1 << 18) | (1 << 20) | (1 << 21);
/// EFER bits that can be written: SCE, LME, NXE (LMA is set by the CPU).
const EFER_WRITABLE: u64 = 1 | EFER_LME | (1 << 11);

/// MOV to CR0.
pub fn write_cr0(cpu: &mut CpuState, mem: &mut dyn Memory, value: u64) -> Result<(), Exception> {
    let gp = Exception::GeneralProtection(0);
    if value >> 32 != 0
        || (value & CR0_PG != 0 && value & CR0_PE == 0)
        || (value & CR0_NW != 0 && value & CR0_CD == 0)
    {
        return Err(gp);
    }
    let enabling_paging = value & CR0_PG != 0 && cpu.cr0 & CR0_PG == 0;
    let disabling_paging = value & CR0_PG == 0 && cpu.cr0 & CR0_PG != 0;
    if enabling_paging && cpu.efer & EFER_LME != 0 {
        if cpu.cr4 & CR4_PAE == 0 || cpu.seg[SegReg::Cs as usize].attrs & Segment::ATTR_L != 0 {
            return Err(gp);
        }
        cpu.efer |= EFER_LMA;
    }
    if disabling_paging && cpu.efer & EFER_LMA != 0 {
        if cpu.in_64bit_mode() {
            return Err(gp);
        }
        cpu.efer &= !EFER_LMA;
    }
    cpu.cr0 = value | CR0_ET;
    super::sync_paging(cpu, mem);
    Ok(())
}

/// MOV to CR3.
pub fn write_cr3(cpu: &mut CpuState, mem: &mut dyn Memory, value: u64) -> Result<(), Exception> {
    if cpu.in_long_mode() && value >> softvisor_mmu::paging::PHYS_ADDR_BITS != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    cpu.cr3 = value;
    super::sync_paging(cpu, mem);
    mem.flush_tlb();
    Ok(())
}

/// MOV to CR4.
pub fn write_cr4(cpu: &mut CpuState, mem: &mut dyn Memory, value: u64) -> Result<(), Exception> {
    if value & !CR4_SUPPORTED != 0 || (cpu.in_long_mode() && value & CR4_PAE == 0) {
        return Err(Exception::GeneralProtection(0));
    }
    cpu.cr4 = value;
    super::sync_paging(cpu, mem);
    Ok(())
}

/// MOV to CR8: the task priority, which lives in the local APIC.
pub fn write_cr8(
    cpu: &mut CpuState,
    platform: &mut dyn Platform,
    value: u64,
) -> Result<(), Exception> {
    if value > 15 {
        return Err(Exception::GeneralProtection(0));
    }
    cpu.cr8 = value;
    platform.set_task_priority((value as u8) << 4);
    Ok(())
}

/// WRMSR to IA32_EFER.
pub fn write_efer(cpu: &mut CpuState, mem: &mut dyn Memory, value: u64) -> Result<(), Exception> {
    let gp = Exception::GeneralProtection(0);
    if value & !(EFER_WRITABLE | EFER_LMA) != 0 {
        return Err(gp);
    }
    if cpu.cr0 & CR0_PG != 0 && (value ^ cpu.efer) & EFER_LME != 0 {
        return Err(gp);
    }
    cpu.efer = (value & EFER_WRITABLE) | (cpu.efer & EFER_LMA);
    super::sync_paging(cpu, mem);
    Ok(())
}
