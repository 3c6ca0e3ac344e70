//! Transcendental instructions: FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1.
//!
//! Best effort, not bit-exact with any hardware: the series are evaluated in 113-bit quad
//! precision (`rustc_apfloat::ieee::Quad`) and rounded once more to 64 bits, so results are
//! within 1 ulp and identical on every host. The host-differential comparison excludes
//! these mnemonics. Arguments of FSIN/FCOS/FSINCOS/FPTAN are reduced with a 336-bit π/2.

use super::{commit, masked, pop, push, set_st, st, status, underflow, Ctx, Exec};
use crate::x87::{self, from_quad, to_quad, Class, OpResult, Val, C1, C2, EXTENDED, IE, PE, ZE};
use crate::{X87State, F80};
use iced_x86::Mnemonic as M;
use rustc_apfloat::ieee::Quad;
use rustc_apfloat::{Float, Round};

pub(super) fn owns(m: M) -> bool {
    matches!(
        m,
        M::Fsin | M::Fcos | M::Fsincos | M::Fptan | M::Fpatan | M::F2xm1 | M::Fyl2x | M::Fyl2xp1
    )
}

pub(super) fn execute(ctx: &mut Ctx, m: M) -> Exec {
    let x = &mut ctx.cpu.x87;
    match m {
        M::Fsin | M::Fcos | M::Fsincos | M::Fptan => trig(x, m),
        M::F2xm1 => {
            let res = st(x, 0).map_or_else(underflow, |v| f2xm1(v, x87::Env::from_fcw(x.fcw)));
            commit(x, 0, res);
        }
        _ => binary(x, m),
    }
    Ok(())
}

fn q(v: i128) -> Quad {
    Quad::from_i128(v).value
}

/// π/2 as three quads whose sum carries 336 bits.
fn pio2_parts() -> [Quad; 3] {
    [
        Quad::from_u128(0x0001_921f_b544_42d1_8469_898c_c517_01b8)
            .value
            .scalbn(-112),
        Quad::from_u128(0x39a2_5204_9c11_14cf_98e8_0417_7d4c)
            .value
            .scalbn(-224),
        Quad::from_u128(0x7627_3644_a294_10f3_1c68_09bb_df2a)
            .value
            .scalbn(-336),
    ]
}

fn ln2() -> Quad {
    Quad::from_u128(0xb172_17f7_d1cf_79ab_c9e3_b398_03f2_f6af)
        .value
        .scalbn(-128)
}

fn pi() -> Quad {
    let [a, b, _] = pio2_parts();
    (a + b).value.scalbn(1)
}

/// Sums a power series Σ c_n t^n given the ratio of consecutive terms.
fn series(first: Quad, mut next: impl FnMut(u32, Quad) -> Quad) -> Quad {
    let mut sum = first;
    let mut term = first;
    for n in 1..200 {
        term = next(n, term);
        let before = sum;
        sum += term;
        if sum.bitwise_eq(before) {
            break;
        }
    }
    sum
}

/// sin and cos of `x`, |x| < 2^63, after reduction by π/2.
fn sin_cos(x: Quad) -> (Quad, Quad) {
    // π/2 to 66 bits, the approximation the x87 reduces with: x − k·π/2 is exact in quad.
    let pio2 = Quad::from_u128((0xc90f_daa2_2168_c234 << 2) | 3)
        .value
        .scalbn(-65);
    let k = (x / pio2)
        .value
        .round_to_integral(Round::NearestTiesToEven)
        .value;
    let r = (-k).mul_add(pio2, x).value;
    let r2 = (r * r).value;
    let mut s = series(r, |n, t| {
        (-(t * r2).value / q(i128::from((2 * n) * (2 * n + 1)))).value
    });
    let mut c = series(q(1), |n, t| {
        (-(t * r2).value / q(i128::from((2 * n - 1) * (2 * n)))).value
    });
    // Where a series added nothing at quad precision, step one quad ulp toward the true
    // value (|sin r| < |r|, cos r < 1) so that directed rounding sees it is inexact.
    if !r.is_zero() && s.bitwise_eq(r) {
        s = if s.is_negative() {
            s.next_up().value
        } else {
            s.next_down().value
        };
    }
    if !r.is_zero() && c.bitwise_eq(q(1)) {
        c = c.next_down().value;
    }
    let quadrant = k.to_i128(128).value.rem_euclid(4);
    match quadrant {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// FSIN, FCOS, FSINCOS, FPTAN. Out-of-range (|x| ≥ 2^63) operands set C2 and are kept.
fn trig(x: &mut X87State, m: M) {
    let pushes = matches!(m, M::Fsincos | M::Fptan);
    x.fsw &= !C2;
    let Some(v) = st(x, 0) else {
        if pushes {
            return super::replace_and_push_underflow(x);
        }
        commit(x, 0, underflow());
        return;
    };
    if pushes && super::replace_and_push_overflow(x) {
        return;
    }
    let (va, de) = x87::unpack(v);
    let (first, second) = match va {
        Val::NaN(_) => {
            let r = x87::propagate_nan(va, Val::Zero(false));
            (r, Some(r))
        }
        Val::Inf(_) => (x87::invalid(), Some(x87::invalid())),
        Val::Fin(_, e, _) if e >= 63 => {
            status(x, de);
            x.fsw |= C2;
            return;
        }
        Val::Zero(_) if m == M::Fcos => ((x87::from_int(false, 1), 0), None),
        Val::Zero(_) => ((v, 0), Some((x87::from_int(false, 1), 0))),
        Val::Fin(..) => trig_values(m, v, x87::Env::from_fcw(x.fcw)),
    };
    // C1 reports the rounding of the first result (the sine for FSINCOS).
    let flags = first.1 | (second.map_or(0, |s| s.1) & !C1) | de;
    if !masked(x, flags & (IE | x87::DE)) {
        status(x, flags);
        return;
    }
    set_st(x, 0, first.0);
    if let Some(second) = second.filter(|_| pushes) {
        push(x, second.0);
    }
    status(x, flags);
}

/// The results of FSIN/FCOS/FSINCOS/FPTAN for a finite nonzero |x| < 2^63 (always
/// inexact): the value replacing ST(0), and the value pushed (cosine, or 1.0 for FPTAN).
fn trig_values(m: M, v: F80, env: x87::Env) -> (OpResult, Option<OpResult>) {
    let round = |q: Quad| {
        let (f, flags) = from_quad(q, EXTENDED, env);
        (f, flags | PE)
    };
    let (s, c) = sin_cos(to_quad(v));
    match m {
        M::Fsin => (round(s), None),
        M::Fcos => (round(c), None),
        M::Fsincos => (round(s), Some(round(c))),
        _ => {
            let mut t = (s / c).value;
            if t.bitwise_eq(to_quad(v)) {
                // tan x is a little larger than a tiny x.
                t = if t.is_negative() {
                    t.next_down().value
                } else {
                    t.next_up().value
                };
            }
            (round(t), Some((x87::from_int(false, 1), 0)))
        }
    }
}

/// 2^x − 1.
fn f2xm1(v: F80, env: x87::Env) -> OpResult {
    let (va, de) = x87::unpack(v);
    match va {
        Val::NaN(_) => x87::propagate_nan(va, Val::Zero(false)),
        Val::Zero(_) => (v, 0),
        Val::Inf(false) => (v, 0),
        Val::Inf(true) => (x87::from_int(true, 1), 0),
        // Outside −1..+1 the operand is left as it is, as on hardware.
        Val::Fin(_, e, m) if e > 0 || (e == 0 && m != 1 << 63) => (v, PE),
        Val::Fin(..) => {
            let t = (to_quad(v) * ln2()).value;
            let r = series(t, |n, term| ((term * t).value / q(i128::from(n) + 1)).value);
            let (f, flags) = from_quad(r, EXTENDED, env);
            (f, flags | de | PE)
        }
    }
}

/// atanh-based natural logarithm of m in [0.75, 1.5): 2·atanh((m−1)/(m+1)).
fn ln_near_one(num: Quad, den: Quad) -> Quad {
    let s = (num / den).value;
    let s2 = (s * s).value;
    let mut power = s;
    let sum = series(s, |n, _| {
        power = (power * s2).value;
        (power / q(i128::from(2 * n + 1))).value
    });
    sum.scalbn(1)
}

/// log2 of a positive finite value.
fn log2(v: Quad) -> Quad {
    let mut e = 0;
    let mut m = v.frexp(&mut e).scalbn(1);
    e -= 1;
    if !(m - q(3).scalbn(-1)).value.is_negative() {
        m = m.scalbn(-1);
        e += 1;
    }
    let ln = ln_near_one((m - q(1)).value, (m + q(1)).value);
    ((ln / ln2()).value + q(i128::from(e))).value
}

/// FPATAN, FYL2X, FYL2XP1: ST(1) = f(ST(1), ST(0)), then pop.
fn binary(x: &mut X87State, m: M) {
    let res = match (st(x, 0), st(x, 1)) {
        (Some(a), Some(b)) => {
            let env = x87::Env::from_fcw(x.fcw);
            match m {
                M::Fpatan => atan2(b, a, env),
                M::Fyl2x => yl2x(b, a, false, env),
                _ => yl2x(b, a, true, env),
            }
        }
        _ => underflow(),
    };
    if commit(x, 1, res) {
        pop(x);
    }
}

/// atan(z) for 0 ≤ z ≤ 1 by Euler's series: Σ 2^2n (n!)^2/(2n+1)! · z^(2n+1)/(1+z²)^(n+1).
fn atan_unit(z: Quad) -> Quad {
    let z2 = (z * z).value;
    let w = (z2 / (q(1) + z2).value).value;
    let first = (z / (q(1) + z2).value).value;
    series(first, |n, t| {
        ((t * w).value * (q(i128::from(2 * n)) / q(i128::from(2 * n + 1))).value).value
    })
}

/// FPATAN: atan(y/x) with the quadrant of (x, y).
fn atan2(y: F80, xv: F80, env: x87::Env) -> OpResult {
    let ((vy, dy), (vx, dx)) = (x87::unpack(y), x87::unpack(xv));
    if let (Val::NaN(_), _) | (_, Val::NaN(_)) = (vy, vx) {
        return x87::propagate_nan(vy, vx);
    }
    let (qy, qx) = (to_quad(y).abs(), to_quad(xv).abs());
    let a = match (vy, vx) {
        (Val::Zero(_), _) | (Val::Fin(..), Val::Inf(_)) => q(0),
        (Val::Inf(_), Val::Inf(_)) => pi().scalbn(-2),
        (Val::Inf(_), _) | (_, Val::Zero(_)) => pi().scalbn(-1),
        _ if qy.partial_cmp(&qx) != Some(core::cmp::Ordering::Greater) => {
            atan_unit((qy / qx).value)
        }
        _ => (pi().scalbn(-1) - atan_unit((qx / qy).value)).value,
    };
    let a = if xv.sign() { (pi() - a).value } else { a };
    let a = if y.sign() { -a } else { a };
    if a.is_zero() {
        // Zero only by underflow when y is finite and nonzero.
        let uf = if matches!(vy, Val::Fin(..)) && !matches!(vx, Val::Inf(_)) {
            x87::UE | PE
        } else {
            0
        };
        return (F80::zero(y.sign()), dx | dy | uf);
    }
    let (f, flags) = from_quad(a, EXTENDED, env);
    (f, flags | dx | dy | PE)
}

/// FYL2X (y·log2 x) and FYL2XP1 (y·log2(x+1)).
fn yl2x(y: F80, xv: F80, plus1: bool, env: x87::Env) -> OpResult {
    let ((vy, dy), (vx, dx)) = (x87::unpack(y), x87::unpack(xv));
    if let (Val::NaN(_), _) | (_, Val::NaN(_)) = (vy, vx) {
        return x87::propagate_nan(vy, vx);
    }
    let de = dx | dy;
    let qx = to_quad(xv);
    let arg = if plus1 { (qx + q(1)).value } else { qx };
    if arg.is_negative() && !arg.is_zero() || (plus1 && xv.class() == Class::Inf && xv.sign()) {
        return x87::invalid();
    }
    let small = matches!(vx, Val::Fin(_, e, _) if e < -1);
    let l = if plus1 && small {
        let ln = ln_near_one(qx, (qx + q(2)).value);
        (ln / ln2()).value
    } else if arg.is_zero() {
        -Quad::INFINITY
    } else if arg.is_infinite() {
        Quad::INFINITY
    } else {
        log2(arg)
    };
    let qy = to_quad(y);
    if plus1 && matches!(vx, Val::Zero(_)) && !qy.is_infinite() {
        return (F80::zero(xv.sign() ^ y.sign()), de);
    }
    if (l.is_zero() && qy.is_infinite()) || (l.is_infinite() && qy.is_zero()) {
        return x87::invalid();
    }
    let zero_divide = !plus1 && matches!(vx, Val::Zero(_)) && !qy.is_infinite();
    let r = (qy * l).value;
    if r.is_zero() || r.is_infinite() {
        let f = if r.is_zero() {
            F80::zero(r.is_negative())
        } else {
            F80::inf(r.is_negative())
        };
        return (f, de | if zero_divide { ZE } else { 0 });
    }
    let (f, flags) = from_quad(r, EXTENDED, env);
    (f, flags | de | PE)
}
