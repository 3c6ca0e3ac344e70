//! Read-modify-write exchanges: XADD, CMPXCHG, CMPXCHG8B, CMPXCHG16B. The interpreter runs
//! one vCPU at a time on a memory that nothing else writes meanwhile, so LOCK needs no
//! host atomics here; the memory side is always written before any register.

use super::data::set_sized;
use super::operand::{Ctx, Exec};
use crate::flags::{size_mask, CcOp, ZF};
use crate::Exception;

/// XADD: dst = dst + src, src = old dst.
pub(super) fn xadd(ctx: &mut Ctx) -> Exec {
    let size = ctx.op_size(0);
    let dst = ctx.read(0)?;
    let src = ctx.read(1)?;
    let sum = dst.wrapping_add(src) & size_mask(size);
    if ctx.insn.op_kind(0) == iced_x86::OpKind::Memory {
        // Store before the register changes: the register may be part of the address.
        ctx.write(0, sum)?;
        ctx.write(1, dst)?;
    } else {
        // SRC gets the old DEST first, so with one register for both the sum wins.
        ctx.write(1, dst)?;
        ctx.write(0, sum)?;
    }
    ctx.cpu.flags.set_lazy(CcOp::Add, size, sum, dst, src);
    Ok(())
}

/// CMPXCHG: compare rAX with dst; equal: dst = src, else rAX = dst. A memory destination
/// is written in both cases, as on hardware.
pub(super) fn cmpxchg(ctx: &mut Ctx) -> Exec {
    let size = ctx.op_size(0);
    let mask = size_mask(size);
    let acc = ctx.cpu.gpr[0] & mask;
    let dst = ctx.read(0)?;
    let src = ctx.read(1)?;
    let equal = acc == dst;
    if equal {
        ctx.write(0, src)?;
    } else {
        if ctx.insn.op_kind(0) == iced_x86::OpKind::Memory {
            ctx.write(0, dst)?;
        }
        set_sized(ctx, 0, size, dst);
    }
    ctx.cpu
        .flags
        .set_lazy(CcOp::Sub, size, acc.wrapping_sub(dst) & mask, acc, dst);
    Ok(())
}

/// CMPXCHG8B / CMPXCHG16B: compare rDX:rAX with the memory operand.
pub(super) fn cmpxchg_wide(ctx: &mut Ctx) -> Exec {
    let half = (ctx.mem_size() / 2) as u32;
    let addr = ctx.mem_addr()?;
    if half == 8 && addr % 16 != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let mask = size_mask(half);
    let (low, high) = if half == 8 {
        let v = ctx.mem.read_u128(addr)?;
        (v as u64, (v >> 64) as u64)
    } else {
        let v = ctx.mem.read_u64(addr)?;
        (v & mask, v >> 32)
    };
    let equal = low == ctx.cpu.gpr[0] & mask && high == ctx.cpu.gpr[2] & mask;
    let (new_low, new_high) = if equal {
        (ctx.cpu.gpr[3] & mask, ctx.cpu.gpr[1] & mask)
    } else {
        (low, high)
    };
    if half == 8 {
        ctx.mem
            .write_u128(addr, u128::from(new_low) | (u128::from(new_high) << 64))?;
    } else {
        ctx.mem.write_u64(addr, new_low | (new_high << 32))?;
    }
    if !equal {
        set_sized(ctx, 0, half, low);
        set_sized(ctx, 2, half, high);
    }
    ctx.cpu.flags.update(ZF, if equal { ZF } else { 0 });
    Ok(())
}
