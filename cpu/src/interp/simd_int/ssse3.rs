//! SSSE3: PSHUFB, PALIGNR, horizontal add/subtract, PABS, PSIGN, PMADDUBSW, PMULHRSW.

use super::lanes::{count, from_fn, get, map1, map2, Lane};
use super::operand_ext::{binop, imm8, unop};
use super::{Ctx, Exec, Handler};
use iced_x86::Mnemonic as M;

/// PSHUFB: each result byte is the dst byte indexed by the src byte, or zero if that
/// src byte has its top bit set.
fn pshufb(ctx: &mut Ctx) -> Exec {
    binop(ctx, |a, b, w| {
        from_fn::<u8>(w, |i| {
            let s = get::<u8>(b, i);
            if s & 0x80 != 0 {
                0
            } else {
                get(a, usize::from(s) % w)
            }
        })
    })
}

/// PALIGNR: the concatenation dst:src shifted right by imm8 bytes, low half kept.
fn palignr(ctx: &mut Ctx) -> Exec {
    let shift = imm8(ctx);
    binop(ctx, |a, b, w| {
        from_fn::<u8>(w, |i| match i + shift {
            k if k < w => get(b, k),
            k if k < 2 * w => get(a, k - w),
            _ => 0,
        })
    })
}

/// Horizontal ops: adjacent lane pairs of dst fill the low half, those of src the high.
fn horizontal<T: Lane>(ctx: &mut Ctx, f: fn(T, T) -> T) -> Exec {
    binop(ctx, |a, b, w| {
        let half = count::<T>(w) / 2;
        from_fn::<T>(w, |i| {
            let (v, j) = if i < half { (a, i) } else { (b, i - half) };
            f(get(v, 2 * j), get(v, 2 * j + 1))
        })
    })
}

/// PSIGN lane: negate, zero or keep `x` by the sign of `s`.
macro_rules! sign {
    ($t:ty) => {
        |x: $t, s: $t| match s.signum() {
            -1 => x.wrapping_neg(),
            0 => 0,
            _ => x,
        }
    };
}

/// PMADDUBSW on one word: unsigned dst bytes times signed src bytes, pair-summed with
/// signed saturation.
fn madd_ubsw(a: u16, b: u16) -> u16 {
    let product = |i| i32::from(get::<u8>(a.into(), i)) * i32::from(get::<i8>(b.into(), i));
    (product(0) + product(1)).clamp(i16::MIN.into(), i16::MAX.into()) as i16 as u16
}

/// PMULHRSW lane: the rounded high half of the doubled product.
fn mulhrs(a: i16, b: i16) -> i16 {
    ((((i32::from(a) * i32::from(b)) >> 14) + 1) >> 1) as i16
}

/// The handler of SSSE3 mnemonic `m`.
pub(super) fn lookup(m: M) -> Option<Handler> {
    let h: Handler = match m {
        M::Pshufb => pshufb,
        M::Palignr => palignr,
        M::Phaddw => |c| horizontal(c, u16::wrapping_add),
        M::Phaddd => |c| horizontal(c, u32::wrapping_add),
        M::Phaddsw => |c| horizontal(c, i16::saturating_add),
        M::Phsubw => |c| horizontal(c, u16::wrapping_sub),
        M::Phsubd => |c| horizontal(c, u32::wrapping_sub),
        M::Phsubsw => |c| horizontal(c, i16::saturating_sub),
        M::Pabsb => |c| unop(c, |b, w| map1(b, w, i8::wrapping_abs)),
        M::Pabsw => |c| unop(c, |b, w| map1(b, w, i16::wrapping_abs)),
        M::Pabsd => |c| unop(c, |b, w| map1(b, w, i32::wrapping_abs)),
        M::Psignb => |c| binop(c, |a, b, w| map2(a, b, w, sign!(i8))),
        M::Psignw => |c| binop(c, |a, b, w| map2(a, b, w, sign!(i16))),
        M::Psignd => |c| binop(c, |a, b, w| map2(a, b, w, sign!(i32))),
        M::Pmaddubsw => |c| binop(c, |a, b, w| map2(a, b, w, madd_ubsw)),
        M::Pmulhrsw => |c| binop(c, |a, b, w| map2(a, b, w, mulhrs)),
        _ => return None,
    };
    Some(h)
}
