//! SSE4.2 string compares: PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM with every imm8 mode
//! (element format, aggregation, polarity, index/mask output) and their flags.

use super::lanes::{all_ones, from_fn, get};
use super::operand_ext::{imm8, src};
use super::{Ctx, Exec, Handler};
use crate::flags::{ARITH, CF, OF, SF, ZF};
use iced_x86::Mnemonic as M;

/// The two string operands, decoded by imm8[1:0].
struct Strings {
    a: [i32; 16],
    b: [i32; 16],
    /// Elements per register: 16 bytes or 8 words.
    n: usize,
    /// Valid lengths of `a` and `b`.
    la: usize,
    lb: usize,
}

/// Element `i` of `v` as a signed or unsigned byte or word.
fn element(v: u128, i: usize, imm: usize) -> i32 {
    match imm & 3 {
        0 => get::<u8>(v, i).into(),
        1 => get::<u16>(v, i).into(),
        2 => get::<i8>(v, i).into(),
        _ => get::<i16>(v, i).into(),
    }
}

/// Decodes both operands; `explicit` takes the lengths from rAX/rDX, otherwise each
/// string ends at its first zero element.
fn load(ctx: &mut Ctx, explicit: bool, wide: bool) -> Exec<Strings> {
    let imm = imm8(ctx);
    let n = if imm & 1 != 0 { 8 } else { 16 };
    let va = src(ctx, 0)?;
    let vb = src(ctx, 1)?;
    let a: [i32; 16] = core::array::from_fn(|i| element(va, i, imm));
    let b: [i32; 16] = core::array::from_fn(|i| element(vb, i, imm));
    let (la, lb) = if explicit {
        (
            explicit_len(ctx.cpu.gpr[0], wide, n),
            explicit_len(ctx.cpu.gpr[2], wide, n),
        )
    } else {
        (implicit_len(&a, n), implicit_len(&b, n))
    };
    Ok(Strings { a, b, n, la, lb })
}

/// |reg| (32- or 64-bit signed), saturated to `n`.
fn explicit_len(reg: u64, wide: bool, n: usize) -> usize {
    let abs = if wide {
        (reg as i64).unsigned_abs()
    } else {
        u64::from((reg as i32).unsigned_abs())
    };
    abs.min(n as u64) as usize
}

/// The index of the first zero element, or `n`.
fn implicit_len(s: &[i32; 16], n: usize) -> usize {
    s.iter().take(n).position(|&x| x == 0).unwrap_or(n)
}

/// IntRes1: one bit per element, from the aggregation in imm8[3:2].
fn aggregate(s: &Strings, imm: usize) -> u32 {
    let n = s.n;
    let bit = |j: usize| -> bool {
        match (imm >> 2) & 3 {
            // Equal any: b[j] is one of the valid a elements.
            0 => j < s.lb && (0..s.la).any(|i| s.a[i] == s.b[j]),
            // Ranges: b[j] lies in one of the valid [a[i], a[i+1]] pairs.
            1 => {
                j < s.lb && (0..s.la / 2).any(|p| s.a[2 * p] <= s.b[j] && s.b[j] <= s.a[2 * p + 1])
            }
            // Equal each: both invalid match, one invalid does not.
            2 => match (j < s.la, j < s.lb) {
                (true, true) => s.a[j] == s.b[j],
                (va, vb) => !va && !vb,
            },
            // Equal ordered: a occurs in b at j; an invalid a element always matches.
            _ => (0..n - j).all(|k| k >= s.la || (j + k < s.lb && s.a[k] == s.b[j + k])),
        }
    };
    (0..n).fold(0, |r, j| r | (u32::from(bit(j)) << j))
}

/// IntRes2: IntRes1 with the polarity of imm8[5:4] applied.
fn polarity(res1: u32, s: &Strings, imm: usize) -> u32 {
    let all = (1u32 << s.n) - 1;
    let valid_b = (1u32 << s.lb) - 1;
    match (imm >> 4) & 3 {
        1 => !res1 & all,
        3 => res1 ^ valid_b,
        _ => res1,
    }
}

/// Sets CF, ZF, SF, OF as the string instructions define (AF, PF cleared).
fn set_flags(ctx: &mut Ctx, res2: u32, s: &Strings) {
    let mut f = 0;
    f |= if res2 != 0 { CF } else { 0 };
    f |= if s.lb < s.n { ZF } else { 0 };
    f |= if s.la < s.n { SF } else { 0 };
    f |= if res2 & 1 != 0 { OF } else { 0 };
    ctx.cpu.flags.update(ARITH, f);
}

/// PCMPxSTRI (`index`) and PCMPxSTRM: compute IntRes2, then write ECX or XMM0 and flags.
fn string_compare(ctx: &mut Ctx, explicit: bool, wide: bool, index: bool) -> Exec {
    let imm = imm8(ctx);
    let s = load(ctx, explicit, wide)?;
    let res2 = polarity(aggregate(&s, imm), &s, imm);
    let msb_first = imm & 0x40 != 0;
    if index {
        let ecx = match res2 {
            0 => s.n as u32,
            r if msb_first => 31 - r.leading_zeros(),
            r => r.trailing_zeros(),
        };
        ctx.cpu.gpr[1] = u64::from(ecx);
    } else {
        ctx.cpu.xmm[0] = mask(res2, s.n, msb_first);
    }
    set_flags(ctx, res2, &s);
    Ok(())
}

/// XMM0 of PCMPxSTRM: the bit mask, or (imm8[6]) each bit expanded to its element.
fn mask(res2: u32, n: usize, expand: bool) -> u128 {
    let bit = |i: usize| (res2 >> i) & 1 != 0;
    match (expand, n) {
        (false, _) => u128::from(res2),
        (true, 16) => from_fn::<u8>(16, |i| all_ones(bit(i))),
        (true, _) => from_fn::<u16>(16, |i| all_ones(bit(i))),
    }
}

/// The handler of string-compare mnemonic `m`.
pub(super) fn lookup(m: M) -> Option<Handler> {
    let h: Handler = match m {
        M::Pcmpestri => |c| string_compare(c, true, false, true),
        M::Pcmpestri64 => |c| string_compare(c, true, true, true),
        M::Pcmpestrm => |c| string_compare(c, true, false, false),
        M::Pcmpestrm64 => |c| string_compare(c, true, true, false),
        M::Pcmpistri => |c| string_compare(c, false, false, true),
        M::Pcmpistrm => |c| string_compare(c, false, false, false),
        _ => return None,
    };
    Some(h)
}
