//! RCPPS/RCPSS/RSQRTPS/RSQRTSS: reciprocal and reciprocal square-root approximations.

use super::super::operand::{Ctx, Exec};
use super::arith::sqrt_finite;
use super::lanes::unary;
use super::mxcsr::{is_denormal, is_nan, Fp};
use rustc_apfloat::ieee::Single as S;
use rustc_apfloat::{Float, Round, Status};

/// Bits kept by the RCP/RSQRT approximations: 12 significant bits (11 fraction bits).
const APPROX_KEEP: u128 = !((1 << 12) - 1) & 0x7fff_ffff;

/// RCPPS/RCPSS/RSQRTPS/RSQRTSS. These are implementation-specific approximations (relative
/// error at most 1.5 * 2^-12), so they are excluded from bit-exact host comparison. This
/// one is documented as: the exact reciprocal (square root) truncated to 12 significant
/// bits; denormal inputs act as zeros and tiny results flush to zero, as on hardware. No
/// MXCSR flag is ever raised.
pub(super) fn approx(ctx: &mut Ctx, scalar: bool, rsqrt: bool) -> Exec {
    unary::<S>(ctx, scalar, |_, a| approx_lane(a, rsqrt))
}

/// One lane: NaNs quieted, a negative RSQRT operand gives the default NaN.
fn approx_lane(a: u128, rsqrt: bool) -> u128 {
    let sign = a & S::sign();
    if is_nan::<S>(a) {
        return a | S::QUIET;
    }
    let a = if is_denormal::<S>(a) { sign } else { a };
    let x = S::from_bits(a);
    if rsqrt && x.is_negative() && !x.is_zero() {
        return S::DEFAULT_NAN;
    }
    let base = if rsqrt { sqrt_finite_or_special(x) } else { x };
    let r = S::from_u128(1).value.div_r(base, Round::NearestTiesToEven);
    let bits = r.value.to_bits();
    if r.status.contains(Status::DIV_BY_ZERO) || bits & S::EXP == S::EXP {
        return bits;
    }
    if bits & S::EXP == 0 {
        return sign;
    }
    (bits & APPROX_KEEP) | sign
}

/// sqrt for the RSQRT approximation (zero and infinity pass through).
fn sqrt_finite_or_special(x: S) -> S {
    if x.is_zero() || x.is_infinite() {
        x
    } else {
        sqrt_finite(x, Round::NearestTiesToEven).value
    }
}
