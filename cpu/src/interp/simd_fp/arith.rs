//! Basic arithmetic: ADD/SUB/MUL/DIV/SQRT/MIN/MAX in PS/PD/SS/SD forms.

use super::super::operand::{Ctx, Exec};
use super::lanes::{binary, unary};
use super::mxcsr::{is_nan, round_odd, Env, Fp, IE};
use rustc_apfloat::{Float, Round, StatusAnd};
use std::cmp::Ordering;

/// The four basic IEEE operations.
#[derive(Clone, Copy)]
pub(super) enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// `a op b` rounded per `round`.
fn apply<F: Float>(op: Op, a: F, b: F, round: Round) -> StatusAnd<F> {
    match op {
        Op::Add => a.add_r(b, round),
        Op::Sub => a.sub_r(b, round),
        Op::Mul => a.mul_r(b, round),
        Op::Div => a.div_r(b, round),
    }
}

/// One lane of an x86 ADD/SUB/MUL/DIV: NaN rules, DAZ/DE, then the rounded result.
pub(super) fn arith<F: Fp>(env: &mut Env, op: Op, a: u128, b: u128) -> u128 {
    if let Some(nan) = env.nan2::<F>(a, b) {
        return nan;
    }
    let (x, y) = (env.operand::<F>(a), env.operand::<F>(b));
    let round = env.round();
    let exact = || round_odd(apply(op, x.quad(), y.quad(), Round::TowardZero));
    env.result(apply(op, x, y, round), exact)
}

/// ADDPS/ADDSS/.../DIVSD.
pub(super) fn basic<F: Fp>(ctx: &mut Ctx, scalar: bool, op: Op) -> Exec {
    binary::<F>(ctx, scalar, |env, a, b| arith::<F>(env, op, a, b))
}

/// SQRTPS/SQRTSS/SQRTPD/SQRTSD.
pub(super) fn sqrt<F: Fp>(ctx: &mut Ctx, scalar: bool) -> Exec {
    unary::<F>(ctx, scalar, sqrt_lane::<F>)
}

/// One square-root lane. The negative-operand test comes after DAZ, so -denormal gives -0.
fn sqrt_lane<F: Fp>(env: &mut Env, a: u128) -> u128 {
    if let Some(nan) = env.nan2::<F>(a, a) {
        return nan;
    }
    let x = env.operand::<F>(a);
    if x.is_zero() || x.is_pos_infinity() {
        return x.to_bits();
    }
    if x.is_negative() {
        return env.invalid::<F>();
    }
    let r = sqrt_finite(x, env.round());
    env.inexact(r.status);
    r.value.to_bits()
}

/// Correctly rounded square root of a positive finite nonzero value, with integers only:
/// `x = m * 2^e` with `e` even, the root of `m` scaled to at least precision + 2 bits with
/// a sticky bit for a nonzero remainder, rounded once by the integer conversion.
pub(super) fn sqrt_finite<F: Fp>(x: F, round: Round) -> StatusAnd<F> {
    let bits = x.to_bits();
    let frac_bits = F::FRAC.count_ones() as i32;
    let field = ((bits & F::EXP) >> frac_bits) as i32;
    let bias = (F::EXP >> (frac_bits + 1)) as i32;
    let (mut m, mut e) = if field == 0 {
        (bits & F::FRAC, 1 - bias - frac_bits)
    } else {
        ((bits & F::FRAC) | (F::FRAC + 1), field - bias - frac_bits)
    };
    // Put the significand's top bit at bit 120 or 121 so the root has 60-61 bits.
    let shift = 120 - (127 - m.leading_zeros() as i32);
    let shift = if (e - shift) % 2 != 0 {
        shift + 1
    } else {
        shift
    };
    m <<= shift;
    e -= shift;
    let root = m.isqrt();
    let sticky = u128::from(root * root != m);
    let value = F::from_u128_r((root << 1) | sticky, round);
    value.map(|v| v.scalbn(e / 2 - 1))
}

/// One MIN/MAX lane: x86 returns the second source if either is a NaN (raising IE even
/// for a QNaN) or both are zeros, else the smaller (larger).
fn minmax_lane<F: Fp>(env: &mut Env, a: u128, b: u128, want: Ordering) -> u128 {
    if is_nan::<F>(a) || is_nan::<F>(b) {
        env.flags |= IE;
        return env.daz_input::<F>(b);
    }
    let (a, b) = (env.flush_input::<F>(a), env.flush_input::<F>(b));
    match F::from_bits(a).partial_cmp(&F::from_bits(b)) {
        Some(ord) if ord == want => a,
        _ => b,
    }
}

/// MINPS/MINSS/MINPD/MINSD.
pub(super) fn min<F: Fp>(ctx: &mut Ctx, scalar: bool) -> Exec {
    binary::<F>(ctx, scalar, |env, a, b| {
        minmax_lane::<F>(env, a, b, Ordering::Less)
    })
}

/// MAXPS/MAXSS/MAXPD/MAXSD.
pub(super) fn max<F: Fp>(ctx: &mut Ctx, scalar: bool) -> Exec {
    binary::<F>(ctx, scalar, |env, a, b| {
        minmax_lane::<F>(env, a, b, Ordering::Greater)
    })
}
