//! Data movement: MOVD/MOVQ, full-register moves (MOVDQA/U, MOVAPS/UPS/APD/UPD, LDDQU,
//! MOVNT*), scalar and half moves (MOVSS/MOVSD, MOVH/L PS/PD, MOVHLPS/MOVLHPS), SSE3
//! duplicates, MOVQ2DQ/MOVDQ2Q, sign-mask extraction, masked stores and EMMS.

use super::lanes::{from_fn, get, msb, sign_mask, Lane};
use super::operand_ext::{put, src, width};
use super::{Ctx, Exec, Handler};
use iced_x86::{Mnemonic as M, OpKind};
use softvisor_mmu::AccessKind;

/// The low 64 bits of a vector.
const LOW64: u128 = u64::MAX as u128;

/// All ones in the low `bytes` bytes.
fn low_mask(bytes: u32) -> u128 {
    u128::MAX >> (128 - 8 * bytes)
}

/// MOVD/MOVQ and MOVQ2DQ/MOVDQ2Q: the low `bytes` of the source, zero-extended into a
/// register destination (a memory destination takes just those bytes).
fn mov_low_bytes(ctx: &mut Ctx, bytes: u32) -> Exec {
    let v = src(ctx, 1)? & low_mask(bytes);
    put(ctx, 0, v)
}

/// Full-width moves; the alignment rule depends on the mnemonic.
fn mov_full(ctx: &mut Ctx) -> Exec {
    let v = src(ctx, 1)?;
    put(ctx, 0, v)
}

/// MOVSS/MOVSD: register to register merges the low lane; a load zeroes the rest.
fn mov_scalar(ctx: &mut Ctx, bytes: u32) -> Exec {
    let mask = low_mask(bytes);
    let s = src(ctx, 1)? & mask;
    let both_regs =
        ctx.insn.op_kind(0) == OpKind::Register && ctx.insn.op_kind(1) == OpKind::Register;
    let v = if both_regs {
        (src(ctx, 0)? & !mask) | s
    } else {
        s
    };
    put(ctx, 0, v)
}

/// MOVHPS/MOVHPD (`high`) and MOVLPS/MOVLPD: move a quadword between memory and one half
/// of an XMM register, keeping the other half.
fn mov_half(ctx: &mut Ctx, high: bool) -> Exec {
    let shift = if high { 64 } else { 0 };
    let s = src(ctx, 1)?;
    if ctx.insn.op_kind(0) == OpKind::Memory {
        return put(ctx, 0, (s >> shift) & LOW64);
    }
    let d = src(ctx, 0)?;
    put(ctx, 0, (d & !(LOW64 << shift)) | ((s & LOW64) << shift))
}

/// MOVHLPS (src high half to dst low half) and MOVLHPS (src low half to dst high half).
fn mov_hl(ctx: &mut Ctx, to_high: bool) -> Exec {
    let s = src(ctx, 1)?;
    let d = src(ctx, 0)?;
    let v = if to_high {
        (d & LOW64) | (s << 64)
    } else {
        (d & !LOW64) | (s >> 64)
    };
    put(ctx, 0, v)
}

/// MOVSLDUP/MOVSHDUP/MOVDDUP: lane `i` of the result is source lane `pick(i)`.
fn duplicate<T: Lane>(ctx: &mut Ctx, pick: fn(usize) -> usize) -> Exec {
    let s = src(ctx, 1)?;
    put(ctx, 0, from_fn::<T>(16, |i| get(s, pick(i))))
}

/// MOVMSKPS/MOVMSKPD/PMOVMSKB: the lane sign bits into a GPR.
fn move_mask<T: Lane>(ctx: &mut Ctx) -> Exec {
    let w = width(ctx);
    let s = src(ctx, 1)?;
    ctx.write(0, sign_mask::<T>(s, w))
}

/// MASKMOVDQU/MASKMOVQ: store the bytes of operand 1 whose byte in operand 2 has its top
/// bit set, at (E/R)DI in DS (or the override segment).
fn mask_move(ctx: &mut Ctx) -> Exec {
    let w = width(ctx);
    let data = src(ctx, 1)?;
    let mask = src(ctx, 2)?;
    let rdi = ctx.cpu.gpr[7];
    let offset = match ctx.insn.op_kind(0) {
        OpKind::MemorySegDI => rdi & 0xffff,
        OpKind::MemorySegEDI => rdi & 0xffff_ffff,
        _ => rdi,
    };
    let base = ctx.linear(ctx.insn.memory_segment(), offset)?;
    let wrap = if ctx.cpu.in_64bit_mode() {
        u64::MAX
    } else {
        0xffff_ffff
    };
    let addr = |i: usize| base.wrapping_add(i as u64) & wrap;
    let selected = || (0..w).filter(|&i| msb::<u8>(mask, i));
    // The selected bytes span at most two pages, holding the first and the last of them:
    // probe both for writing so a fault leaves memory untouched.
    for i in selected().take(1).chain(selected().next_back()) {
        ctx.mem.read(addr(i), &mut [0u8], AccessKind::Write)?;
    }
    for i in selected() {
        ctx.write_mem(addr(i), 1, u64::from(get::<u8>(data, i)))?;
    }
    Ok(())
}

/// EMMS: mark every x87 register empty; like the other MMX instructions it also sets
/// TOP to 0 (Intel SDM table 9-2, and what the host does).
fn emms(ctx: &mut Ctx) -> Exec {
    ctx.cpu.x87.ftw = 0xffff;
    ctx.cpu.x87.top = 0;
    Ok(())
}

/// The handler of move mnemonic `m`.
pub(super) fn lookup(m: M) -> Option<Handler> {
    let h: Handler = match m {
        M::Movd => |c| mov_low_bytes(c, 4),
        M::Movq | M::Movq2dq | M::Movdq2q => |c| mov_low_bytes(c, 8),
        M::Movdqa | M::Movdqu | M::Movaps | M::Movups | M::Movapd | M::Movupd | M::Lddqu => {
            mov_full
        }
        M::Movntdq | M::Movntdqa | M::Movntps | M::Movntpd | M::Movntq => mov_full,
        M::Movss => |c| mov_scalar(c, 4),
        M::Movsd => |c| mov_scalar(c, 8),
        M::Movhps | M::Movhpd => |c| mov_half(c, true),
        M::Movlps | M::Movlpd => |c| mov_half(c, false),
        M::Movhlps => |c| mov_hl(c, false),
        M::Movlhps => |c| mov_hl(c, true),
        M::Movsldup => |c| duplicate::<u32>(c, |i| i & !1),
        M::Movshdup => |c| duplicate::<u32>(c, |i| i | 1),
        M::Movddup => |c| duplicate::<u64>(c, |_| 0),
        M::Movmskps => move_mask::<u32>,
        M::Movmskpd => move_mask::<u64>,
        M::Pmovmskb => move_mask::<u8>,
        M::Maskmovdqu | M::Maskmovq => mask_move,
        M::Emms => emms,
        _ => return None,
    };
    Some(h)
}
