//! Constant loads: FLD1, FLDZ, FLDPI, FLDL2E, FLDL2T, FLDLG2, FLDLN2. The irrational
//! constants are rounded from 128 bits to 64 under the rounding control, as hardware does
//! (so FLDPI gives ...C235 to nearest and up, ...C234 down and toward zero).

use super::{push, Ctx, Exec};
use crate::x87::{Env, Format, EXTENDED};
use iced_x86::Mnemonic as M;

pub(super) fn owns(m: M) -> bool {
    matches!(
        m,
        M::Fld1 | M::Fldz | M::Fldpi | M::Fldl2e | M::Fldl2t | M::Fldlg2 | M::Fldln2
    )
}

/// Biased exponent and the first 128 significand bits of each constant.
fn constant(m: M) -> (u16, u128) {
    match m {
        M::Fld1 => (0x3fff, 1 << 127),
        M::Fldz => (0, 0),
        M::Fldpi => (0x4000, 0xc90f_daa2_2168_c234_c4c6_628b_80dc_1cd1),
        M::Fldl2e => (0x3fff, 0xb8aa_3b29_5c17_f0bb_be87_fed0_691d_3e88),
        M::Fldl2t => (0x4000, 0xd49a_784b_cd1b_8afe_492b_f6ff_4daf_db4c),
        M::Fldlg2 => (0x3ffd, 0x9a20_9a84_fbcf_f798_8f89_59ac_0b7c_9178),
        _ => (0x3ffe, 0xb172_17f7_d1cf_79ab_c9e3_b398_03f2_f6af),
    }
}

pub(super) fn execute(ctx: &mut Ctx, m: M) -> Exec {
    let x = &mut ctx.cpu.x87;
    let (exp, sig) = constant(m);
    let v = if sig == 0 {
        crate::F80::ZERO
    } else {
        let env = Env {
            om: true,
            um: true,
            ..Env::from_fcw(x.fcw)
        };
        let fmt: Format = EXTENDED;
        crate::x87::round(false, i32::from(exp) - 16383, sig, fmt, env).to_f80()
    };
    let overflow = !super::is_empty(x, 7);
    push(x, v);
    if !overflow {
        super::status(x, 0);
    }
    Ok(())
}
