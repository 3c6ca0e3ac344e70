//! Shuffles and interleaves: PSHUFD/PSHUFHW/PSHUFLW/PSHUFW, SHUFPS/SHUFPD, PUNPCKL/H*,
//! UNPCKL/H PS/PD, and the word insert/extract PINSRW/PEXTRW.

use super::lanes::{count, from_fn, get, set, Lane};
use super::operand_ext::{binop, imm8, put, src, width};
use super::{Ctx, Exec, Handler};
use iced_x86::Mnemonic as M;

/// The 2-bit selector for lane `i` in a shuffle imm8.
fn sel(imm: usize, i: usize) -> usize {
    (imm >> (2 * (i % 4))) & 3
}

/// PSHUFD/PSHUFW and the halves of PSHUFHW/PSHUFLW: lanes `lo..lo + 4` of the result are
/// picked from the same four source lanes by imm8; the other lanes are copied.
fn shuffle4<T: Lane>(ctx: &mut Ctx, lo: usize) -> Exec {
    let w = width(ctx);
    let imm = imm8(ctx);
    let s = src(ctx, 1)?;
    let v = from_fn::<T>(w, |i| {
        if (lo..lo + 4).contains(&i) {
            get(s, lo + sel(imm, i))
        } else {
            get(s, i)
        }
    });
    put(ctx, 0, v)
}

/// SHUFPS/SHUFPD: the low half of the result from dst, the high half from src, each lane
/// selected by consecutive imm8 fields of `bits` bits.
fn shufp<T: Lane>(ctx: &mut Ctx, bits: usize) -> Exec {
    let imm = imm8(ctx);
    binop(ctx, |a, b, w| {
        let n = count::<T>(w);
        let field = |i: usize| (imm >> (bits * i)) & ((1 << bits) - 1);
        from_fn::<T>(w, |i| get(if i < n / 2 { a } else { b }, field(i)))
    })
}

/// PUNPCKL*/PUNPCKH*: interleave the low (or high) half lanes of dst and src.
fn unpack<T: Lane>(ctx: &mut Ctx, high: bool) -> Exec {
    binop(ctx, |a, b, w| {
        let base = if high { count::<T>(w) / 2 } else { 0 };
        from_fn::<T>(w, |i| get(if i % 2 == 0 { a } else { b }, base + i / 2))
    })
}

/// PEXTRW: a word of the source register, zero-extended into a GPR or stored to m16.
fn pextrw(ctx: &mut Ctx) -> Exec {
    let n = count::<u16>(width(ctx));
    let index = imm8(ctx) % n;
    let s = src(ctx, 1)?;
    ctx.write(0, u64::from(get::<u16>(s, index)))
}

/// PINSRW: replace a word of the destination with the low word of a GPR or m16.
fn pinsrw(ctx: &mut Ctx) -> Exec {
    let n = count::<u16>(width(ctx));
    let index = imm8(ctx) % n;
    let a = src(ctx, 0)?;
    let x = ctx.read(1)? as u16;
    put(ctx, 0, set(a, index, x))
}

/// The handler of shuffle mnemonic `m`.
pub(super) fn lookup(m: M) -> Option<Handler> {
    let h: Handler = match m {
        M::Pshufd => |c| shuffle4::<u32>(c, 0),
        M::Pshufw | M::Pshuflw => |c| shuffle4::<u16>(c, 0),
        M::Pshufhw => |c| shuffle4::<u16>(c, 4),
        M::Shufps => |c| shufp::<u32>(c, 2),
        M::Shufpd => |c| shufp::<u64>(c, 1),
        M::Punpcklbw => |c| unpack::<u8>(c, false),
        M::Punpcklwd => |c| unpack::<u16>(c, false),
        M::Punpckldq | M::Unpcklps => |c| unpack::<u32>(c, false),
        M::Punpcklqdq | M::Unpcklpd => |c| unpack::<u64>(c, false),
        M::Punpckhbw => |c| unpack::<u8>(c, true),
        M::Punpckhwd => |c| unpack::<u16>(c, true),
        M::Punpckhdq | M::Unpckhps => |c| unpack::<u32>(c, true),
        M::Punpckhqdq | M::Unpckhpd => |c| unpack::<u64>(c, true),
        M::Pextrw => pextrw,
        M::Pinsrw => pinsrw,
        _ => return None,
    };
    Some(h)
}
