//! SSE4.1 integer and bitwise forms: blends, PMOVSX/PMOVZX, element insert/extract
//! (PEXTRB/D/Q, PINSRB/D/Q, INSERTPS, EXTRACTPS), PTEST, PHMINPOSUW and MPSADBW.

use super::lanes::{count, from_fn, get, msb, select, set, Lane};
use super::operand_ext::{binop, imm8, put, src};
use super::{Ctx, Exec, Handler};
use crate::flags::{ARITH, CF, ZF};
use iced_x86::{Mnemonic as M, OpKind};

/// PBLENDW/BLENDPS/BLENDPD: lane `i` from src where imm8 bit `i` is set.
fn blend_imm<T: Lane>(ctx: &mut Ctx) -> Exec {
    let imm = imm8(ctx);
    binop(ctx, |a, b, w| select::<T>(a, b, w, |i| (imm >> i) & 1 != 0))
}

/// PBLENDVB/BLENDVPS/BLENDVPD: lane from src where the XMM0 lane's top bit is set.
fn blend_var<T: Lane>(ctx: &mut Ctx) -> Exec {
    let mask = ctx.cpu.xmm[0];
    binop(ctx, |a, b, w| select::<T>(a, b, w, |i| msb::<T>(mask, i)))
}

/// PMOVSX*/PMOVZX*: widen the low source lanes with `f`.
fn widen<S: Lane, D: Lane>(ctx: &mut Ctx, f: fn(S) -> D) -> Exec {
    let s = src(ctx, 1)?;
    put(ctx, 0, from_fn::<D>(16, |i| f(get(s, i))))
}

/// PEXTRB/PEXTRD/PEXTRQ/EXTRACTPS: one lane, selected by imm8, to a GPR or memory.
fn extract<T: Lane>(ctx: &mut Ctx) -> Exec {
    let index = imm8(ctx) % count::<T>(16);
    let s = src(ctx, 1)?;
    ctx.write(0, get::<T>(s, index).to_bits() as u64)
}

/// PINSRB/PINSRD/PINSRQ: a GPR or memory value into the lane selected by imm8.
fn insert<T: Lane>(ctx: &mut Ctx) -> Exec {
    let index = imm8(ctx) % count::<T>(16);
    let a = src(ctx, 0)?;
    let x = T::from_bits(u128::from(ctx.read(1)?));
    put(ctx, 0, set(a, index, x))
}

/// INSERTPS: a dword (source lane imm[7:6], or m32) into dst lane imm[5:4], then zero
/// the dst lanes in imm[3:0].
fn insertps(ctx: &mut Ctx) -> Exec {
    let imm = imm8(ctx);
    let s = src(ctx, 1)?;
    let x = if ctx.insn.op_kind(1) == OpKind::Register {
        get::<u32>(s, imm >> 6)
    } else {
        s as u32
    };
    let d = set(src(ctx, 0)?, (imm >> 4) & 3, x);
    put(
        ctx,
        0,
        from_fn::<u32>(16, |i| if (imm >> i) & 1 != 0 { 0 } else { get(d, i) }),
    )
}

/// PTEST: ZF = (dst AND src) == 0, CF = (NOT dst AND src) == 0, other flags cleared.
fn ptest(ctx: &mut Ctx) -> Exec {
    let a = src(ctx, 0)?;
    let b = src(ctx, 1)?;
    let zf = if a & b == 0 { ZF } else { 0 };
    let cf = if !a & b == 0 { CF } else { 0 };
    ctx.cpu.flags.update(ARITH, zf | cf);
    Ok(())
}

/// PHMINPOSUW: the smallest unsigned word (lowest index on ties) and its index.
fn phminposuw(ctx: &mut Ctx) -> Exec {
    let s = src(ctx, 1)?;
    let (index, min) = (0..8)
        .map(|i| (i, get::<u16>(s, i)))
        .min_by_key(|&(i, x)| (x, i))
        .unwrap_or((0, 0));
    put(ctx, 0, u128::from(min) | ((index as u128) << 16))
}

/// MPSADBW: eight sums of absolute differences between a 4-byte block of src (imm[1:0])
/// and the sliding 4-byte windows of dst starting at byte imm[2]*4.
fn mpsadbw(ctx: &mut Ctx) -> Exec {
    let imm = imm8(ctx);
    let (a_off, b_off) = (((imm >> 2) & 1) * 4, (imm & 3) * 4);
    binop(ctx, |a, b, w| {
        from_fn::<u16>(w, |i| {
            (0..4)
                .map(|j| u16::from(get::<u8>(a, a_off + i + j).abs_diff(get::<u8>(b, b_off + j))))
                .sum()
        })
    })
}

/// The handler of SSE4.1 mnemonic `m`.
pub(super) fn lookup(m: M) -> Option<Handler> {
    let h: Handler = match m {
        M::Pblendw => blend_imm::<u16>,
        M::Blendps => blend_imm::<u32>,
        M::Blendpd => blend_imm::<u64>,
        M::Pblendvb => blend_var::<u8>,
        M::Blendvps => blend_var::<u32>,
        M::Blendvpd => blend_var::<u64>,
        M::Pmovsxbw => |c| widen(c, |x: i8| x as u16),
        M::Pmovsxbd => |c| widen(c, |x: i8| x as u32),
        M::Pmovsxbq => |c| widen(c, |x: i8| x as u64),
        M::Pmovsxwd => |c| widen(c, |x: i16| x as u32),
        M::Pmovsxwq => |c| widen(c, |x: i16| x as u64),
        M::Pmovsxdq => |c| widen(c, |x: i32| x as u64),
        M::Pmovzxbw => |c| widen(c, |x: u8| u16::from(x)),
        M::Pmovzxbd => |c| widen(c, |x: u8| u32::from(x)),
        M::Pmovzxbq => |c| widen(c, |x: u8| u64::from(x)),
        M::Pmovzxwd => |c| widen(c, |x: u16| u32::from(x)),
        M::Pmovzxwq => |c| widen(c, |x: u16| u64::from(x)),
        M::Pmovzxdq => |c| widen(c, |x: u32| u64::from(x)),
        M::Pextrb => extract::<u8>,
        M::Pextrd | M::Extractps => extract::<u32>,
        M::Pextrq => extract::<u64>,
        M::Pinsrb => insert::<u8>,
        M::Pinsrd => insert::<u32>,
        M::Pinsrq => insert::<u64>,
        M::Insertps => insertps,
        M::Ptest => ptest,
        M::Phminposuw => phminposuw,
        M::Mpsadbw => mpsadbw,
        _ => return None,
    };
    Some(h)
}
