//! SSE4.1 ROUNDPS/ROUNDPD/ROUNDSS/ROUNDSD: round to an integral value in the format.

use super::super::operand::{Ctx, Exec};
use super::lanes::binary;
use super::mxcsr::{is_denormal, is_nan, is_snan, rc_round, Env, Fp, IE, PE};
use rustc_apfloat::Status;

/// One lane. Immediate bit 2 selects MXCSR.RC instead of bits 0-1; bit 3 suppresses PE.
/// SNaN raises IE; no DE is raised, but DAZ still turns denormals into zeros.
fn round_lane<F: Fp>(env: &mut Env, v: u128, imm: u8) -> u128 {
    if is_nan::<F>(v) {
        if is_snan::<F>(v) {
            env.flags |= IE;
        }
        return v | F::QUIET;
    }
    let v = if is_denormal::<F>(v) && env.daz() {
        v & F::sign()
    } else {
        v
    };
    let round = if imm & 4 != 0 {
        env.round()
    } else {
        rc_round(u32::from(imm))
    };
    let r = F::from_bits(v).round_to_integral(round);
    if r.status.contains(Status::INEXACT) && imm & 8 == 0 {
        env.flags |= PE;
    }
    r.value.to_bits()
}

/// ROUNDPS/ROUNDPD (all lanes) and ROUNDSS/ROUNDSD (lane 0, the rest of the destination
/// kept).
pub(super) fn round<F: Fp>(ctx: &mut Ctx, scalar: bool) -> Exec {
    let imm = ctx.insn.immediate8();
    binary::<F>(ctx, scalar, |env, _, b| round_lane::<F>(env, b, imm))
}
