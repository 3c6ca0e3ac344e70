//! Miscellaneous instructions: NOPs and hints, fences, CPUID, RDTSC/RDTSCP, HLT, traps
//! (INT3, INT1, INTO, UD0/1/2), and the segment/control-register moves that need
//! privilege checks.

use super::operand::{Ctx, Exec};
use crate::flags::OF;
use crate::{Exception, SegReg};
use iced_x86::Register;

/// CPUID: the virtual CPU model of [`crate::cpuid`].
pub(super) fn cpuid(ctx: &mut Ctx) -> Exec {
    let leaf = ctx.cpu.gpr[0] as u32;
    let subleaf = ctx.cpu.gpr[1] as u32;
    let regs = crate::cpuid::cpuid(leaf, subleaf, 0);
    for (index, value) in [0usize, 3, 1, 2].into_iter().zip(regs) {
        ctx.cpu.gpr[index] = u64::from(value);
    }
    Ok(())
}

/// The guest TSC: the virtual clock (retired instructions) plus the TSC offset.
fn tsc(ctx: &Ctx) -> u64 {
    ctx.cpu.icount.wrapping_add(ctx.cpu.tsc_offset)
}

/// RDTSC, and RDTSCP (which also returns TSC_AUX in ECX). CR4.TSD restricts both to ring 0.
pub(super) fn rdtsc(ctx: &mut Ctx, with_aux: bool) -> Exec {
    if ctx.cpu.cr4 & (1 << 2) != 0 && ctx.cpu.cpl() != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let value = tsc(ctx);
    ctx.cpu.gpr[0] = value & 0xffff_ffff;
    ctx.cpu.gpr[2] = value >> 32;
    if with_aux {
        ctx.cpu.gpr[1] = ctx.cpu.msr.tsc_aux & 0xffff_ffff;
    }
    Ok(())
}

/// INTO: #OF when OF is set (the decoder rejects it in 64-bit mode).
pub(super) fn into(ctx: &mut Ctx) -> Exec {
    if ctx.cpu.flags.test(OF) {
        return Err(Exception::Overflow);
    }
    Ok(())
}

/// Loads a data segment register. In 64-bit mode the descriptor checks and cache loads of
/// protected mode come with system mode; until then the selector is recorded and the
/// segment keeps a flat base (FS/GS bases are set through their MSRs).
pub(crate) fn load_segment(ctx: &mut Ctx, seg: SegReg, selector: u16) -> Exec {
    if !ctx.cpu.in_64bit_mode() && ctx.cpu.cr0 & crate::state::CR0_PE == 0 {
        let entry = &mut ctx.cpu.seg[seg as usize];
        entry.selector = selector;
        entry.base = u64::from(selector) << 4;
        return Ok(());
    }
    if seg == SegReg::Ss && selector & !3 == 0 && ctx.cpu.cpl() == 3 {
        return Err(Exception::GeneralProtection(0));
    }
    ctx.cpu.seg[seg as usize].selector = selector;
    Ok(())
}

/// MOV to or from a control or debug register (ring 0 only).
pub(crate) fn mov_control(ctx: &mut Ctx) -> Exec {
    if ctx.cpu.cpl() != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let (dst, src) = (ctx.insn.op_register(0), ctx.insn.op_register(1));
    if src.is_cr() || src.is_dr() {
        let value = match src {
            Register::CR0 => ctx.cpu.cr0,
            Register::CR2 => ctx.cpu.cr2,
            Register::CR3 => ctx.cpu.cr3,
            Register::CR4 => ctx.cpu.cr4,
            Register::CR8 => ctx.cpu.cr8,
            r if r.is_dr() => ctx.cpu.dr[r as usize - Register::DR0 as usize],
            _ => return ctx.architectural_ud(),
        };
        ctx.cpu.set_reg(dst, value);
        return Ok(());
    }
    let value = ctx.cpu.reg(src);
    match dst {
        Register::CR0 => ctx.cpu.cr0 = value,
        Register::CR2 => ctx.cpu.cr2 = value,
        Register::CR3 => ctx.cpu.cr3 = value,
        Register::CR4 => ctx.cpu.cr4 = value,
        Register::CR8 => ctx.cpu.cr8 = value & 0xf,
        r if r.is_dr() => ctx.cpu.dr[r as usize - Register::DR0 as usize] = value,
        _ => return ctx.architectural_ud(),
    }
    Ok(())
}
