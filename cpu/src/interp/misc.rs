//! Miscellaneous instructions: CPUID and RDTSC/RDTSCP (NOPs, fences and UD0/1/2 are
//! handled inline by the dispatcher).

use super::operand::{Ctx, Exec};
use crate::Exception;

/// CPUID: the virtual CPU model of [`crate::cpuid`].
pub(super) fn cpuid(ctx: &mut Ctx) -> Exec {
    let leaf = ctx.cpu.gpr[0] as u32;
    let subleaf = ctx.cpu.gpr[1] as u32;
    let state = crate::cpuid::CpuidState {
        apic_id: 0,
        osxsave: ctx.cpu.cr4 & (1 << 18) != 0,
    };
    let regs = crate::cpuid::cpuid(leaf, subleaf, state);
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
