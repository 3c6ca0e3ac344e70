//! Miscellaneous instructions: CPUID, RDTSC/RDTSCP, STAC/CLAC and BOUND (NOPs, fences and
//! UD0/1/2 are handled inline by the dispatcher).

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
    ctx.cpu.tsc()
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

/// STAC/CLAC: set or clear RFLAGS.AC (CPL 0 only; SMAP is advertised).
pub(super) fn stac_clac(ctx: &mut Ctx, set: bool) -> Exec {
    if ctx.cpu.cpl() != 0 {
        return ctx.architectural_ud();
    }
    ctx.cpu
        .flags
        .update(crate::flags::AC, if set { crate::flags::AC } else { 0 });
    crate::system::sync_paging(ctx.cpu, ctx.mem);
    Ok(())
}

/// BOUND (16/32-bit modes): #BR unless lower <= index <= upper, all signed.
pub(super) fn bound(ctx: &mut Ctx) -> Exec {
    let size = ctx.op_size(0);
    let index = super::data::sign_extend(ctx.read(0)?, size) as i64;
    let addr = ctx.mem_addr()?;
    let lower = super::data::sign_extend(ctx.read_mem(addr, size as usize)?, size) as i64;
    let upper_addr = addr.wrapping_add(u64::from(size));
    let upper = super::data::sign_extend(ctx.read_mem(upper_addr, size as usize)?, size) as i64;
    if index < lower || index > upper {
        return Err(Exception::BoundRange);
    }
    Ok(())
}
