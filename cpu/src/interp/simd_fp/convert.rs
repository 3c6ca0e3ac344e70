//! Conversions between single, double, 32/64-bit integers and the MMX packed forms:
//! CVTSI2SS/SD, CVT(T)SS2SI, CVT(T)SD2SI, CVTSS2SD, CVTSD2SS, CVTPS2PD, CVTPD2PS,
//! CVTDQ2PS, CVT(T)PS2DQ, CVTDQ2PD, CVT(T)PD2DQ, CVTPI2PS, CVT(T)PS2PI, CVTPI2PD,
//! CVT(T)PD2PI.

use super::super::operand::{Ctx, Exec};
use super::lanes::read_src;
use super::mxcsr::{check_sse, is_denormal, is_nan, is_snan, Env, Fp, IE};
use crate::state::CR0_NE;
use crate::Exception;
use iced_x86::{OpKind, Register};
use rustc_apfloat::{FloatConvert, Round, StatusAnd};

/// FSW.ES: an unmasked x87 exception is pending.
const FSW_ES: u16 = 1 << 7;

/// Lane `i` of width `w` bits.
fn get(v: u128, w: u32, i: u32) -> u128 {
    (v >> (i * w)) & (u128::MAX >> (128 - w))
}

/// `v` with lane `i` of width `w` replaced by `x`.
fn put(v: u128, w: u32, i: u32, x: u128) -> u128 {
    let mask = (u128::MAX >> (128 - w)) << (i * w);
    (v & !mask) | ((x << (i * w)) & mask)
}

/// The MMX register index of operand `op`, if it is one.
fn mm_operand(ctx: &Ctx, op: u32) -> Option<usize> {
    let reg = ctx.insn.op_register(op);
    (ctx.insn.op_kind(op) == OpKind::Register && reg.is_mm())
        .then(|| reg as usize - Register::MM0 as usize)
}

/// Converts `count` source lanes of `src_w` bits into destination lanes of `dst_w` bits.
/// With `keep` the other destination bits are kept, else zeroed. An MMX register operand
/// makes this an MMX instruction: x87 TOP=0 and all tags valid.
fn convert(
    ctx: &mut Ctx,
    src_w: u32,
    dst_w: u32,
    count: u32,
    keep: bool,
    f: impl Fn(&mut Env, u128) -> u128,
) -> Exec {
    check_sse(ctx)?;
    let mmx = mm_operand(ctx, 0).is_some() || mm_operand(ctx, 1).is_some();
    if mmx && ctx.cpu.x87.fsw & FSW_ES != 0 && ctx.cpu.cr0 & CR0_NE != 0 {
        // A pending x87 exception is delivered before an MMX instruction.
        return Err(Exception::X87Fpu);
    }
    let base = if keep { ctx.read_vec(0)? } else { 0 };
    let src = read_src(ctx, 1)?;
    // The switch to MMX mode happens even if the conversion then raises #XM.
    if mmx {
        ctx.cpu.x87.top = 0;
        ctx.cpu.x87.ftw = 0;
    }
    let mut env = Env::new(ctx);
    let out = (0..count).fold(base, |out, i| {
        put(out, dst_w, i, f(&mut env, get(src, src_w, i)))
    });
    env.commit(ctx)?;
    match mm_operand(ctx, 0) {
        Some(n) => {
            ctx.cpu.x87.regs[n].signif = out as u64;
            ctx.cpu.x87.regs[n].sign_exp = 0xffff;
            Ok(())
        }
        None => ctx.write_vec(0, out),
    }
}

/// A signed integer of `w` bits to `F`, rounded per MXCSR.RC.
fn from_int<F: Fp>(env: &mut Env, v: u128, w: u32) -> u128 {
    let signed = ((v << (128 - w)) as i128) >> (128 - w);
    let r = F::from_i128_r(signed, env.round());
    env.inexact(r.status);
    r.value.to_bits()
}

/// `F` to a signed integer of `w` bits, truncating or per MXCSR.RC. NaN and out-of-range
/// values give the integer indefinite (only the sign bit set) and IE. No DE is raised.
fn to_int<F: Fp>(env: &mut Env, v: u128, w: u32, truncate: bool) -> u128 {
    let indefinite = 1u128 << (w - 1);
    if is_nan::<F>(v) {
        env.flags |= IE;
        return indefinite;
    }
    let v = if is_denormal::<F>(v) && env.daz() {
        v & F::sign()
    } else {
        v
    };
    let round = if truncate {
        Round::TowardZero
    } else {
        env.round()
    };
    let r = F::from_bits(v).to_i128_r(w as usize, round, &mut false);
    if r.status.contains(rustc_apfloat::Status::INVALID_OP) {
        env.flags |= IE;
        return indefinite;
    }
    env.inexact(r.status);
    r.value as u128 & (u128::MAX >> (128 - w))
}

/// Between the two float formats: NaNs keep sign and payload (quieted), denormal inputs
/// follow DAZ/DE, narrowing can overflow or underflow.
fn fp_to_fp<S: Fp + FloatConvert<D>, D: Fp>(env: &mut Env, v: u128) -> u128 {
    if is_nan::<S>(v) {
        if is_snan::<S>(v) {
            env.flags |= IE;
        }
        return nan_convert::<S, D>(v);
    }
    let x = env.operand::<S>(v);
    let round = env.round();
    let r: StatusAnd<D> = x.convert_r(round, &mut false);
    env.result(r, || x.quad())
}

/// A quieted NaN of `S` in format `D`: the fraction's top bits carry over.
fn nan_convert<S: Fp, D: Fp>(v: u128) -> u128 {
    let (sf, df) = (S::FRAC.count_ones(), D::FRAC.count_ones());
    let frac = v & S::FRAC;
    let frac = if df >= sf {
        frac << (df - sf)
    } else {
        frac >> (sf - df)
    };
    let sign = if v & S::sign() != 0 { D::sign() } else { 0 };
    sign | D::EXP | D::QUIET | frac
}

/// CVTSI2SS/CVTSI2SD: the integer width is that of the source operand.
pub(super) fn int_to_scalar<F: Fp>(ctx: &mut Ctx) -> Exec {
    let w = ctx.op_size(1) * 8;
    convert(ctx, w, F::WIDTH, 1, true, |env, v| from_int::<F>(env, v, w))
}

/// CVT(T)SS2SI/CVT(T)SD2SI: the integer width is that of the destination register.
pub(super) fn scalar_to_int<F: Fp>(ctx: &mut Ctx, truncate: bool) -> Exec {
    let w = ctx.op_size(0) * 8;
    convert(ctx, F::WIDTH, w, 1, false, |env, v| {
        to_int::<F>(env, v, w, truncate)
    })
}

/// CVTSS2SD/CVTSD2SS (scalar, other lanes kept) and CVTPS2PD/CVTPD2PS (two lanes, the
/// rest zeroed).
pub(super) fn float_to_float<A: Fp + FloatConvert<B>, B: Fp>(ctx: &mut Ctx, scalar: bool) -> Exec {
    let count = if scalar { 1 } else { 2 };
    convert(ctx, A::WIDTH, B::WIDTH, count, scalar, fp_to_fp::<A, B>)
}

/// CVTDQ2PS/CVTDQ2PD/CVTPI2PS/CVTPI2PD: `count` 32-bit integers; `keep` for CVTPI2PS,
/// which leaves the upper half of the destination alone.
pub(super) fn ints_to_floats<F: Fp>(ctx: &mut Ctx, count: u32, keep: bool) -> Exec {
    convert(ctx, 32, F::WIDTH, count, keep, |env, v| {
        from_int::<F>(env, v, 32)
    })
}

/// CVT(T)PS2DQ/CVT(T)PD2DQ/CVT(T)PS2PI/CVT(T)PD2PI: `count` lanes to 32-bit integers.
pub(super) fn floats_to_ints<F: Fp>(ctx: &mut Ctx, count: u32, truncate: bool) -> Exec {
    convert(ctx, F::WIDTH, 32, count, false, |env, v| {
        to_int::<F>(env, v, 32, truncate)
    })
}
