//! Loading segment registers: real-mode and virtual-8086 loads (base = selector * 16), and
//! protected/long-mode loads with the descriptor checks and error codes of the SDM.

use super::descriptor::{is_null, mark_accessed, read_descriptor, Descriptor};
use crate::state::CR0_PE;
use crate::{CpuState, Exception, SegReg, Segment};
use softvisor_mmu::Memory;

/// Whether the CPU is in real or virtual-8086 mode (segments are paragraph-based).
pub fn real_addressing(cpu: &CpuState) -> bool {
    cpu.cr0 & CR0_PE == 0 || cpu.flags.bits & crate::flags::VM != 0
}

/// Loads a selector in real/V86 mode: only the selector and base change.
fn load_real(cpu: &mut CpuState, seg: SegReg, selector: u16) {
    let entry = &mut cpu.seg[seg as usize];
    entry.selector = selector;
    entry.base = u64::from(selector) << 4;
    if cpu.flags.bits & crate::flags::VM != 0 {
        *entry = Segment {
            base: u64::from(selector) << 4,
            limit: 0xffff,
            selector,
            attrs: 0xf3,
        };
    }
}

/// MOV/POP/LxS to DS, ES, FS, GS or SS.
pub fn load_data_or_stack(
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    seg: SegReg,
    selector: u16,
) -> Result<(), Exception> {
    if real_addressing(cpu) {
        load_real(cpu, seg, selector);
        return Ok(());
    }
    let cpl = cpu.cpl();
    let rpl = (selector & 3) as u8;
    let error = Exception::GeneralProtection(selector & !3);
    if is_null(selector) {
        // A null SS is only allowed in 64-bit mode below ring 3 with RPL = CPL.
        if seg == SegReg::Ss && !(cpu.in_64bit_mode() && cpl < 3 && rpl == cpl) {
            return Err(Exception::GeneralProtection(0));
        }
        let keep_base = cpu.in_64bit_mode() && matches!(seg, SegReg::Fs | SegReg::Gs);
        let base = if keep_base {
            cpu.seg[seg as usize].base
        } else {
            0
        };
        cpu.seg[seg as usize] = Segment {
            base,
            limit: 0,
            selector,
            attrs: 0,
        };
        return Ok(());
    }
    let (desc, addr) = read_descriptor(cpu, mem, selector)?;
    if seg == SegReg::Ss {
        if rpl != cpl || desc.dpl() != cpl || !desc.is_writable_data() {
            return Err(error);
        }
        if !desc.present() {
            return Err(Exception::StackFault(selector & !3));
        }
    } else {
        if !desc.is_readable() {
            return Err(error);
        }
        let privileged = !desc.is_conforming() && (rpl > desc.dpl() || cpl > desc.dpl());
        if privileged {
            return Err(error);
        }
        if !desc.present() {
            return Err(Exception::SegmentNotPresent(selector & !3));
        }
    }
    mark_accessed(mem, addr, desc)?;
    cpu.seg[seg as usize] = desc.accessed().to_segment(selector);
    Ok(())
}

/// Checks a code-segment descriptor for a far JMP/CALL to the same privilege level and
/// returns it with the CPL in its selector. Gates and TSS descriptors are not accepted here.
pub fn check_far_code(
    cpu: &CpuState,
    mem: &mut dyn Memory,
    selector: u16,
) -> Result<(Descriptor, u64), Exception> {
    if is_null(selector) {
        return Err(Exception::GeneralProtection(0));
    }
    let (desc, addr) = read_descriptor(cpu, mem, selector)?;
    let error = Exception::GeneralProtection(selector & !3);
    let cpl = cpu.cpl();
    if !desc.is_code() {
        return Err(error);
    }
    let allowed = if desc.is_conforming() {
        desc.dpl() <= cpl
    } else {
        (selector & 3) as u8 <= cpl && desc.dpl() == cpl
    };
    if !allowed || (cpu.in_long_mode() && desc.long() && desc.0 & (1 << 54) != 0) {
        return Err(error);
    }
    if !desc.present() {
        return Err(Exception::SegmentNotPresent(selector & !3));
    }
    Ok((desc, addr))
}

/// Loads CS from a checked descriptor (its selector's RPL becomes the CPL) and tells the
/// memory system, since the CPL or code size may have changed.
pub fn load_code(
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    desc: Descriptor,
    addr: u64,
    selector: u16,
) -> Result<(), Exception> {
    mark_accessed(mem, addr, desc)?;
    cpu.seg[SegReg::Cs as usize] = desc.accessed().to_segment(selector);
    super::sync_paging(cpu, mem);
    Ok(())
}

/// After a return to an outer privilege level, data segments the new CPL may not use are
/// nulled (their DPL is below the CPL and they are not conforming code).
pub fn null_inaccessible_segments(cpu: &mut CpuState) {
    let cpl = cpu.cpl();
    for seg in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
        let s = cpu.seg[seg as usize];
        let dpl = ((s.attrs >> 5) & 3) as u8;
        let conforming_code = s.attrs & 0x1c == 0x1c;
        if s.attrs & Segment::ATTR_P != 0 && !conforming_code && dpl < cpl {
            let base = if cpu.in_64bit_mode() { s.base } else { 0 };
            cpu.seg[seg as usize] = Segment {
                base,
                limit: 0,
                selector: 0,
                attrs: 0,
            };
        }
    }
}
