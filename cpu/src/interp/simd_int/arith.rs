//! Lane-wise integer arithmetic: add/subtract (wrapping and saturating), multiplies,
//! PMADDWD, PSADBW, averages, and the MMX/SSE2/SSE4.1 minimum and maximum.

use super::lanes::{get, map2, Lane};
use super::operand_ext::binop;
use super::{Ctx, Exec, Handler};
use iced_x86::Mnemonic as M;

/// `dst = f(dst, src)` lane by lane.
fn lanes2<T: Lane>(ctx: &mut Ctx, f: fn(T, T) -> T) -> Exec {
    binop(ctx, |a, b, w| map2(a, b, w, f))
}

/// The handler of arithmetic mnemonic `m`.
pub(super) fn lookup(m: M) -> Option<Handler> {
    let h: Handler = match m {
        M::Paddb => |c| lanes2(c, u8::wrapping_add),
        M::Paddw => |c| lanes2(c, u16::wrapping_add),
        M::Paddd => |c| lanes2(c, u32::wrapping_add),
        M::Paddq => |c| lanes2(c, u64::wrapping_add),
        M::Psubb => |c| lanes2(c, u8::wrapping_sub),
        M::Psubw => |c| lanes2(c, u16::wrapping_sub),
        M::Psubd => |c| lanes2(c, u32::wrapping_sub),
        M::Psubq => |c| lanes2(c, u64::wrapping_sub),
        M::Paddsb => |c| lanes2(c, i8::saturating_add),
        M::Paddsw => |c| lanes2(c, i16::saturating_add),
        M::Paddusb => |c| lanes2(c, u8::saturating_add),
        M::Paddusw => |c| lanes2(c, u16::saturating_add),
        M::Psubsb => |c| lanes2(c, i8::saturating_sub),
        M::Psubsw => |c| lanes2(c, i16::saturating_sub),
        M::Psubusb => |c| lanes2(c, u8::saturating_sub),
        M::Psubusw => |c| lanes2(c, u16::saturating_sub),
        M::Pmullw => |c| lanes2(c, u16::wrapping_mul),
        M::Pmulld => |c| lanes2(c, u32::wrapping_mul),
        M::Pmulhw => |c| {
            lanes2(c, |a: i16, b: i16| {
                ((i32::from(a) * i32::from(b)) >> 16) as i16
            })
        },
        M::Pmulhuw => |c| {
            lanes2(c, |a: u16, b: u16| {
                ((u32::from(a) * u32::from(b)) >> 16) as u16
            })
        },
        M::Pmuludq => |c| lanes2(c, |a: u64, b: u64| (a & 0xffff_ffff) * (b & 0xffff_ffff)),
        M::Pmuldq => |c| {
            lanes2(c, |a: u64, b: u64| {
                (i64::from(a as i32) * i64::from(b as i32)) as u64
            })
        },
        M::Pmaddwd => |c| lanes2(c, madd_words),
        M::Psadbw => |c| lanes2(c, sum_abs_diff),
        M::Pavgb => |c| {
            lanes2(c, |a: u8, b: u8| {
                ((u16::from(a) + u16::from(b) + 1) >> 1) as u8
            })
        },
        M::Pavgw => |c| {
            lanes2(c, |a: u16, b: u16| {
                ((u32::from(a) + u32::from(b) + 1) >> 1) as u16
            })
        },
        M::Pminub => |c| lanes2(c, u8::min),
        M::Pmaxub => |c| lanes2(c, u8::max),
        M::Pminsw => |c| lanes2(c, i16::min),
        M::Pmaxsw => |c| lanes2(c, i16::max),
        M::Pminsb => |c| lanes2(c, i8::min),
        M::Pmaxsb => |c| lanes2(c, i8::max),
        M::Pminuw => |c| lanes2(c, u16::min),
        M::Pmaxuw => |c| lanes2(c, u16::max),
        M::Pminsd => |c| lanes2(c, i32::min),
        M::Pmaxsd => |c| lanes2(c, i32::max),
        M::Pminud => |c| lanes2(c, u32::min),
        M::Pmaxud => |c| lanes2(c, u32::max),
        _ => return None,
    };
    Some(h)
}

/// PMADDWD on one dword: the sum of the two signed word products. Only
/// 0x8000*0x8000*2 overflows, and wraps to 0x8000_0000 as on hardware.
fn madd_words(a: u32, b: u32) -> u32 {
    let product = |i| i32::from(get::<i16>(a.into(), i)) * i32::from(get::<i16>(b.into(), i));
    product(0).wrapping_add(product(1)) as u32
}

/// PSADBW on one qword: the sum of absolute byte differences, zero-extended.
fn sum_abs_diff(a: u64, b: u64) -> u64 {
    (0..8)
        .map(|i| u64::from(get::<u8>(a.into(), i).abs_diff(get::<u8>(b.into(), i))))
        .sum()
}
