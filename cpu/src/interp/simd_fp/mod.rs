//! SSE/SSE2/SSE3/SSE4.1 floating-point instructions with exact x86 results on any host:
//! arithmetic, comparisons, conversions, horizontal ops, rounding, dot products, MXCSR.
//! All arithmetic goes through `rustc_apfloat`; host floats are never used.

mod approx;
mod arith;
mod compare;
mod convert;
mod dot;
mod horizontal;
mod lanes;
mod mxcsr;
mod round;

#[cfg(test)]
mod tests;

use super::operand::{Ctx, Exec};
use arith::Op;
use iced_x86::Mnemonic as M;
use rustc_apfloat::ieee::{Double as D, Single as S};

/// Executes an instruction of this group, or returns `None` if the mnemonic is not one of its own.
pub(in crate::interp) fn execute(ctx: &mut Ctx) -> Option<Exec> {
    arithmetic(ctx)
        .or_else(|| conversion(ctx))
        .or_else(|| other(ctx))
}

/// ADD/SUB/MUL/DIV/SQRT/MIN/MAX, RCP/RSQRT, CMP, COMIS/UCOMIS.
fn arithmetic(ctx: &mut Ctx) -> Option<Exec> {
    Some(match ctx.insn.mnemonic() {
        M::Addps => arith::basic::<S>(ctx, false, Op::Add),
        M::Addss => arith::basic::<S>(ctx, true, Op::Add),
        M::Addpd => arith::basic::<D>(ctx, false, Op::Add),
        M::Addsd => arith::basic::<D>(ctx, true, Op::Add),
        M::Subps => arith::basic::<S>(ctx, false, Op::Sub),
        M::Subss => arith::basic::<S>(ctx, true, Op::Sub),
        M::Subpd => arith::basic::<D>(ctx, false, Op::Sub),
        M::Subsd => arith::basic::<D>(ctx, true, Op::Sub),
        M::Mulps => arith::basic::<S>(ctx, false, Op::Mul),
        M::Mulss => arith::basic::<S>(ctx, true, Op::Mul),
        M::Mulpd => arith::basic::<D>(ctx, false, Op::Mul),
        M::Mulsd => arith::basic::<D>(ctx, true, Op::Mul),
        M::Divps => arith::basic::<S>(ctx, false, Op::Div),
        M::Divss => arith::basic::<S>(ctx, true, Op::Div),
        M::Divpd => arith::basic::<D>(ctx, false, Op::Div),
        M::Divsd => arith::basic::<D>(ctx, true, Op::Div),
        M::Sqrtps => arith::sqrt::<S>(ctx, false),
        M::Sqrtss => arith::sqrt::<S>(ctx, true),
        M::Sqrtpd => arith::sqrt::<D>(ctx, false),
        M::Sqrtsd => arith::sqrt::<D>(ctx, true),
        M::Minps => arith::min::<S>(ctx, false),
        M::Minss => arith::min::<S>(ctx, true),
        M::Minpd => arith::min::<D>(ctx, false),
        M::Minsd => arith::min::<D>(ctx, true),
        M::Maxps => arith::max::<S>(ctx, false),
        M::Maxss => arith::max::<S>(ctx, true),
        M::Maxpd => arith::max::<D>(ctx, false),
        M::Maxsd => arith::max::<D>(ctx, true),
        M::Rcpps => approx::approx(ctx, false, false),
        M::Rcpss => approx::approx(ctx, true, false),
        M::Rsqrtps => approx::approx(ctx, false, true),
        M::Rsqrtss => approx::approx(ctx, true, true),
        M::Cmpps => compare::cmp::<S>(ctx, false),
        M::Cmpss => compare::cmp::<S>(ctx, true),
        M::Cmppd => compare::cmp::<D>(ctx, false),
        M::Cmpsd => compare::cmp::<D>(ctx, true),
        M::Comiss => compare::comis::<S>(ctx, true),
        M::Comisd => compare::comis::<D>(ctx, true),
        M::Ucomiss => compare::comis::<S>(ctx, false),
        M::Ucomisd => compare::comis::<D>(ctx, false),
        _ => return None,
    })
}

/// Every CVT form.
fn conversion(ctx: &mut Ctx) -> Option<Exec> {
    Some(match ctx.insn.mnemonic() {
        M::Cvtsi2ss => convert::int_to_scalar::<S>(ctx),
        M::Cvtsi2sd => convert::int_to_scalar::<D>(ctx),
        M::Cvtss2si => convert::scalar_to_int::<S>(ctx, false),
        M::Cvttss2si => convert::scalar_to_int::<S>(ctx, true),
        M::Cvtsd2si => convert::scalar_to_int::<D>(ctx, false),
        M::Cvttsd2si => convert::scalar_to_int::<D>(ctx, true),
        M::Cvtss2sd => convert::float_to_float::<S, D>(ctx, true),
        M::Cvtsd2ss => convert::float_to_float::<D, S>(ctx, true),
        M::Cvtps2pd => convert::float_to_float::<S, D>(ctx, false),
        M::Cvtpd2ps => convert::float_to_float::<D, S>(ctx, false),
        M::Cvtdq2ps => convert::ints_to_floats::<S>(ctx, 4, false),
        M::Cvtdq2pd => convert::ints_to_floats::<D>(ctx, 2, false),
        M::Cvtpi2ps => convert::ints_to_floats::<S>(ctx, 2, true),
        M::Cvtpi2pd => convert::ints_to_floats::<D>(ctx, 2, false),
        M::Cvtps2dq => convert::floats_to_ints::<S>(ctx, 4, false),
        M::Cvttps2dq => convert::floats_to_ints::<S>(ctx, 4, true),
        M::Cvtpd2dq => convert::floats_to_ints::<D>(ctx, 2, false),
        M::Cvttpd2dq => convert::floats_to_ints::<D>(ctx, 2, true),
        M::Cvtps2pi => convert::floats_to_ints::<S>(ctx, 2, false),
        M::Cvttps2pi => convert::floats_to_ints::<S>(ctx, 2, true),
        M::Cvtpd2pi => convert::floats_to_ints::<D>(ctx, 2, false),
        M::Cvttpd2pi => convert::floats_to_ints::<D>(ctx, 2, true),
        _ => return None,
    })
}

/// SSE3 horizontal ops, SSE4.1 ROUND/DP, and LDMXCSR/STMXCSR.
fn other(ctx: &mut Ctx) -> Option<Exec> {
    Some(match ctx.insn.mnemonic() {
        M::Addsubps => horizontal::addsub::<S>(ctx),
        M::Addsubpd => horizontal::addsub::<D>(ctx),
        M::Haddps => horizontal::horizontal::<S>(ctx, Op::Add),
        M::Haddpd => horizontal::horizontal::<D>(ctx, Op::Add),
        M::Hsubps => horizontal::horizontal::<S>(ctx, Op::Sub),
        M::Hsubpd => horizontal::horizontal::<D>(ctx, Op::Sub),
        M::Roundps => round::round::<S>(ctx, false),
        M::Roundss => round::round::<S>(ctx, true),
        M::Roundpd => round::round::<D>(ctx, false),
        M::Roundsd => round::round::<D>(ctx, true),
        M::Dpps => dot::dot::<S>(ctx),
        M::Dppd => dot::dot::<D>(ctx),
        M::Ldmxcsr => mxcsr::ldmxcsr(ctx),
        M::Stmxcsr => mxcsr::stmxcsr(ctx),
        _ => return None,
    })
}
