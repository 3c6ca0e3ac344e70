//! Shifts: PSLL/PSRL W/D/Q, PSRA W/D by an XMM/MMX/memory count or an imm8, and the
//! whole-register byte shifts PSLLDQ/PSRLDQ.

use super::lanes::{map1, Lane};
use super::operand_ext::{put, src, width};
use super::{Ctx, Exec, Handler};
use iced_x86::{Mnemonic as M, OpKind};

/// The shift count: the imm8, or the whole low quadword of the source operand.
fn count(ctx: &mut Ctx) -> Exec<u64> {
    if ctx.insn.op_kind(1) == OpKind::Immediate8 {
        Ok(u64::from(ctx.insn.immediate8()))
    } else {
        Ok(src(ctx, 1)? as u64)
    }
}

/// Shifts every lane of the destination by the count with `f(lane, count)`.
fn shift<T: Lane>(ctx: &mut Ctx, f: fn(T, u64) -> T) -> Exec {
    let w = width(ctx);
    let n = count(ctx)?;
    let a = src(ctx, 0)?;
    put(ctx, 0, map1::<T>(a, w, |x| f(x, n)))
}

/// Logical left shift; counts of the lane width or more give zero.
macro_rules! shl {
    ($t:ty) => {
        |x: $t, n: u64| if n < u64::from(<$t>::BITS) { x << n } else { 0 }
    };
}

/// Logical right shift; counts of the lane width or more give zero.
macro_rules! shr {
    ($t:ty) => {
        |x: $t, n: u64| if n < u64::from(<$t>::BITS) { x >> n } else { 0 }
    };
}

/// Arithmetic right shift; large counts fill with the sign bit.
macro_rules! sar {
    ($t:ty) => {
        |x: $t, n: u64| x >> n.min(u64::from(<$t>::BITS) - 1)
    };
}

/// PSLLDQ/PSRLDQ: shift the whole XMM register by imm8 bytes (above 15 clears it).
fn byte_shift(ctx: &mut Ctx, left: bool) -> Exec {
    let bits = u32::from(ctx.insn.immediate8()).saturating_mul(8);
    let a = src(ctx, 0)?;
    let v = if left {
        a.checked_shl(bits)
    } else {
        a.checked_shr(bits)
    };
    put(ctx, 0, v.unwrap_or(0))
}

/// The handler of shift mnemonic `m`.
pub(super) fn lookup(m: M) -> Option<Handler> {
    let h: Handler = match m {
        M::Psllw => |c| shift(c, shl!(u16)),
        M::Pslld => |c| shift(c, shl!(u32)),
        M::Psllq => |c| shift(c, shl!(u64)),
        M::Psrlw => |c| shift(c, shr!(u16)),
        M::Psrld => |c| shift(c, shr!(u32)),
        M::Psrlq => |c| shift(c, shr!(u64)),
        M::Psraw => |c| shift(c, sar!(i16)),
        M::Psrad => |c| shift(c, sar!(i32)),
        M::Pslldq => |c| byte_shift(c, true),
        M::Psrldq => |c| byte_shift(c, false),
        _ => return None,
    };
    Some(h)
}
