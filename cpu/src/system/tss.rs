//! Reading the task-state segment: the inner-privilege stacks that interrupt delivery and
//! call gates switch to.

use super::descriptor::read_descriptor;
use crate::{CpuState, Exception, Segment};
use softvisor_mmu::Memory;

/// Reads `size` bytes at `offset` in the current TSS, or #TS(TR) past its limit.
pub fn read(
    cpu: &CpuState,
    mem: &mut dyn Memory,
    offset: u64,
    size: usize,
) -> Result<u64, Exception> {
    if offset + size as u64 - 1 > u64::from(cpu.tr.limit) {
        return Err(Exception::InvalidTss(cpu.tr.selector & !3));
    }
    let mut bytes = [0u8; 8];
    mem.read_supervisor(cpu.tr.base.wrapping_add(offset), &mut bytes[..size])?;
    Ok(u64::from_le_bytes(bytes))
}

/// RSP for privilege `dpl` from a 64-bit TSS.
pub fn long_inner_stack(cpu: &CpuState, mem: &mut dyn Memory, dpl: u8) -> Result<u64, Exception> {
    read(cpu, mem, 4 + 8 * u64::from(dpl), 8)
}

/// The stack for privilege `dpl` from a 16- or 32-bit TSS: the checked SS and the ESP.
/// The SS must be a present writable data segment with DPL and RPL equal to `dpl`.
pub fn legacy_inner_stack(
    cpu: &CpuState,
    mem: &mut dyn Memory,
    dpl: u8,
) -> Result<(Segment, u64), Exception> {
    let wide_tss = cpu.tr.attrs & 8 != 0;
    let (sp_off, ss_off, sp_size) = if wide_tss {
        (4 + 8 * u64::from(dpl), 8 + 8 * u64::from(dpl), 4)
    } else {
        (2 + 4 * u64::from(dpl), 4 + 4 * u64::from(dpl), 2)
    };
    let sp = read(cpu, mem, sp_off, sp_size)?;
    let selector = read(cpu, mem, ss_off, 2)? as u16;
    let invalid = Exception::InvalidTss(selector & !3);
    let (desc, _) = read_descriptor(cpu, mem, selector).map_err(|_| invalid)?;
    if !desc.is_writable_data() || desc.dpl() != dpl || (selector & 3) as u8 != dpl {
        return Err(invalid);
    }
    if !desc.present() {
        return Err(Exception::StackFault(selector & !3));
    }
    Ok((desc.to_segment(selector), sp))
}
