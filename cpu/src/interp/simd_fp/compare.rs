//! Comparisons: CMPPS/CMPSS/CMPPD/CMPSD (predicates 0-7 of the immediate) producing lane
//! masks, and COMISS/COMISD/UCOMISS/UCOMISD setting ZF/PF/CF.

use super::super::operand::{Ctx, Exec};
use super::lanes::{binary, read_src};
use super::mxcsr::{check_sse, is_nan, is_snan, Env, Fp, IE};
use crate::flags::{ARITH, CF, PF, ZF};
use std::cmp::Ordering;

/// Compares two lanes; `None` is unordered. IE for an SNaN, or for any NaN if `signaling`.
fn compare<F: Fp>(env: &mut Env, a: u128, b: u128, signaling: bool) -> Option<Ordering> {
    if is_nan::<F>(a) || is_nan::<F>(b) {
        if signaling || is_snan::<F>(a) || is_snan::<F>(b) {
            env.flags |= IE;
        }
        return None;
    }
    let (x, y) = (env.flush_input::<F>(a), env.flush_input::<F>(b));
    F::from_bits(x).partial_cmp(&F::from_bits(y))
}

/// One CMPxx lane for predicate `pred` (EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD): all ones
/// if true. LT/LE/NLT/NLE signal on a QNaN too.
fn cmp_lane<F: Fp>(env: &mut Env, a: u128, b: u128, pred: u8) -> u128 {
    let ord = compare::<F>(env, a, b, matches!(pred, 1 | 2 | 5 | 6));
    let truth = match pred & 3 {
        0 => ord == Some(Ordering::Equal),
        1 => ord == Some(Ordering::Less),
        2 => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        _ => ord.is_none(),
    };
    if truth != (pred >= 4) {
        F::mask()
    } else {
        0
    }
}

/// CMPPS/CMPSS/CMPPD/CMPSD: legacy SSE uses the low 3 bits of the immediate.
pub(super) fn cmp<F: Fp>(ctx: &mut Ctx, scalar: bool) -> Exec {
    let pred = ctx.insn.immediate8() & 7;
    binary::<F>(ctx, scalar, |env, a, b| cmp_lane::<F>(env, a, b, pred))
}

/// COMISS/COMISD (`signaling`: any NaN raises IE) and UCOMISS/UCOMISD (only an SNaN):
/// unordered gives ZF=PF=CF=1, less CF=1, equal ZF=1; OF, SF and AF are cleared.
pub(super) fn comis<F: Fp>(ctx: &mut Ctx, signaling: bool) -> Exec {
    check_sse(ctx)?;
    let a = ctx.read_vec(0)?;
    let b = read_src(ctx, 1)?;
    let mut env = Env::new(ctx);
    let ord = compare::<F>(&mut env, a & F::mask(), b & F::mask(), signaling);
    env.commit(ctx)?;
    let flags = match ord {
        None => ZF | PF | CF,
        Some(Ordering::Less) => CF,
        Some(Ordering::Equal) => ZF,
        Some(Ordering::Greater) => 0,
    };
    ctx.cpu.flags.update(ARITH, flags);
    Ok(())
}
