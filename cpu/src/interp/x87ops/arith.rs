//! Arithmetic: FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR in all forms (one generic path), FSQRT,
//! FCHS, FABS, FRNDINT, FSCALE, FXTRACT, FPREM and FPREM1.

use super::load_store::read_operand;
use super::{commit, env, masked, pop, push, st, st_index, status, underflow, Ctx, Exec};
use crate::x87::{self, Class, Op, OpResult, Rc, Val, C0, C1, C2, C3, EXTENDED, IE, ZE};
use crate::{X87State, F80};
use iced_x86::{Mnemonic as M, OpKind};

pub(super) fn owns(m: M) -> bool {
    binary_op(m).is_some()
        || matches!(
            m,
            M::Fsqrt
                | M::Fchs
                | M::Fabs
                | M::Frndint
                | M::Fscale
                | M::Fxtract
                | M::Fprem
                | M::Fprem1
        )
}

/// The operation, whether its operands are reversed, and whether it pops.
fn binary_op(m: M) -> Option<(Op, bool, bool)> {
    Some(match m {
        M::Fadd | M::Fiadd => (Op::Add, false, false),
        M::Faddp => (Op::Add, false, true),
        M::Fsub | M::Fisub => (Op::Sub, false, false),
        M::Fsubp => (Op::Sub, false, true),
        M::Fsubr | M::Fisubr => (Op::Sub, true, false),
        M::Fsubrp => (Op::Sub, true, true),
        M::Fmul | M::Fimul => (Op::Mul, false, false),
        M::Fmulp => (Op::Mul, false, true),
        M::Fdiv | M::Fidiv => (Op::Div, false, false),
        M::Fdivp => (Op::Div, false, true),
        M::Fdivr | M::Fidivr => (Op::Div, true, false),
        M::Fdivrp => (Op::Div, true, true),
        _ => return None,
    })
}

pub(super) fn execute(ctx: &mut Ctx, m: M) -> Exec {
    if let Some((op, reverse, popping)) = binary_op(m) {
        return binary(ctx, op, reverse, popping);
    }
    let x = &mut ctx.cpu.x87;
    match m {
        M::Fsqrt => unary(x, |x, v| {
            let (fmt, env) = env(x);
            x87::sqrt(v, fmt, env)
        }),
        M::Fchs => unary(x, |_, v| (v.with_sign(!v.sign()), 0)),
        M::Fabs => unary(x, |_, v| (v.with_sign(false), 0)),
        M::Frndint => unary(x, |x, v| frndint(v, Rc::from_fcw(x.fcw))),
        M::Fscale => fscale(x),
        M::Fxtract => fxtract(x),
        _ => fprem(x, m == M::Fprem1),
    }
    Ok(())
}

/// All FADD..FDIVRP forms: `dst = a op b` (or `b op a` when reversed), then maybe pop.
fn binary(ctx: &mut Ctx, op: Op, reverse: bool, popping: bool) -> Exec {
    let (dst, src, mem) = if ctx.insn.op_kind(0) == OpKind::Memory {
        (0, None, Some(read_operand(ctx)?))
    } else {
        (st_index(ctx, 0), Some(st_index(ctx, 1)), None)
    };
    let x = &mut ctx.cpu.x87;
    let b = match (src, mem) {
        (Some(i), _) => st(x, i).map(|v| (v, 0)),
        (None, m) => m,
    };
    let res = match (st(x, dst), b) {
        (Some(a), Some((b, mem_flags))) => {
            let (fmt, env) = env(x);
            let (l, r) = if reverse { (b, a) } else { (a, b) };
            let (v, flags) = x87::arith(op, l, r, fmt, env);
            // A denormal memory operand is not reported when the other one is a NaN.
            let nan = matches!(a.class(), Class::QNaN | Class::SNaN | Class::Unsupported);
            (
                v,
                flags
                    | if flags & (IE | ZE) == 0 && !nan {
                        mem_flags
                    } else {
                        0
                    },
            )
        }
        _ => underflow(),
    };
    if commit(x, dst, res) && popping {
        pop(x);
    }
    Ok(())
}

/// Replaces ST(0) with `f(ST(0))`.
fn unary(x: &mut X87State, f: impl Fn(&X87State, F80) -> OpResult) {
    let res = st(x, 0).map_or_else(underflow, |v| f(x, v));
    commit(x, 0, res);
}

/// ST(0) rounded to an integer value under the rounding control.
fn frndint(v: F80, rc: Rc) -> OpResult {
    match x87::unpack(v) {
        (Val::Fin(s, e, m), de) if e < 63 => {
            let (mag, flags) = x87::round_to_int(s, e, m, rc);
            (x87::from_int(s, mag.unwrap_or(0)), flags | de)
        }
        (Val::NaN(_), _) => x87::propagate_nan(x87::unpack(v).0, Val::Zero(false)),
        (_, de) => (v, de),
    }
}

/// FSCALE: ST(0) × 2^trunc(ST(1)).
fn fscale(x: &mut X87State) {
    let res = match (st(x, 0), st(x, 1)) {
        (Some(a), Some(b)) => scale(a, b, x87::Env::from_fcw(x.fcw)),
        _ => underflow(),
    };
    commit(x, 0, res);
}

fn scale(a: F80, b: F80, env: x87::Env) -> OpResult {
    let ((va, da), (vb, db)) = (x87::unpack(a), x87::unpack(b));
    let de = da | db;
    match (va, vb) {
        (Val::NaN(_), _) | (_, Val::NaN(_)) => x87::propagate_nan(va, vb),
        (Val::Zero(_), Val::Inf(false)) | (Val::Inf(_), Val::Inf(true)) => x87::invalid(),
        (Val::Fin(s, ..), Val::Inf(false)) => (F80::inf(s), de),
        (Val::Fin(s, ..), Val::Inf(true)) => (F80::zero(s), de),
        (Val::Fin(s, e, m), Val::Fin(..) | Val::Zero(_)) => {
            let n = match vb {
                Val::Fin(sb, eb, mb) => {
                    let n = x87::round_to_int(sb, eb.min(40), mb, Rc::Zero)
                        .0
                        .unwrap_or(0)
                        .min(1 << 20) as i32;
                    if sb {
                        -n
                    } else {
                        n
                    }
                }
                _ => 0,
            };
            let r = x87::round(s, e + n, u128::from(m) << 64, EXTENDED, env);
            (r.to_f80(), r.flags | de)
        }
        _ => (a, de),
    }
}

/// FXTRACT: ST(0) becomes the exponent, then the significand is pushed.
fn fxtract(x: &mut X87State) {
    let Some(v) = st(x, 0) else {
        return super::replace_and_push_underflow(x);
    };
    if super::replace_and_push_overflow(x) {
        return;
    }
    let (va, de) = x87::unpack(v);
    let (exp, sig, flags) = match va {
        Val::Zero(s) => (F80::inf(true), F80::zero(s), ZE),
        Val::Inf(s) => (F80::inf(false), F80::inf(s), 0),
        Val::NaN(_) => {
            let (n, f) = x87::propagate_nan(va, Val::Zero(false));
            (n, n, f)
        }
        Val::Fin(s, e, m) => (
            x87::from_int(e < 0, e.unsigned_abs().into()),
            F80 {
                signif: m,
                sign_exp: 0x3fff,
            }
            .with_sign(s),
            de,
        ),
    };
    if !masked(x, flags) {
        status(x, flags);
        return;
    }
    super::set_st(x, 0, exp);
    push(x, sig);
    status(x, flags);
}

/// FPREM (truncating) and FPREM1 (IEEE, round to nearest) partial remainders.
fn fprem(x: &mut X87State, ieee: bool) {
    let (Some(a), Some(b)) = (st(x, 0), st(x, 1)) else {
        commit(x, 0, underflow());
        x.fsw &= !C2;
        return;
    };
    let ((va, da), (vb, db)) = (x87::unpack(a), x87::unpack(b));
    // `None`: no quotient, C0 and C3 are kept.
    let (res, cc) = match (va, vb) {
        (Val::NaN(_), _) | (_, Val::NaN(_)) => (x87::propagate_nan(va, vb), None),
        (Val::Inf(_), _) | (_, Val::Zero(_)) => (x87::invalid(), None),
        (Val::Fin(sa, ea, ma), Val::Fin(_, eb, mb)) => {
            let (r, cc) = remainder(sa, ea, ma, eb, mb, ieee, x87::Env::from_fcw(x.fcw));
            (r, Some(cc))
        }
        // Repacked, so a pseudo-denormal dividend comes back normalized.
        (Val::Fin(sa, ea, ma), _) => {
            let r = x87::round(
                sa,
                ea,
                u128::from(ma) << 64,
                EXTENDED,
                x87::Env::from_fcw(x.fcw),
            );
            ((r.to_f80(), r.flags & !C1), Some(0))
        }
        _ => ((a, 0), Some(0)),
    };
    let (v, flags) = res;
    let nan = matches!(va, Val::NaN(_)) || matches!(vb, Val::NaN(_));
    let res = (
        v,
        if flags & IE == 0 && !nan {
            flags | da | db
        } else {
            flags
        },
    );
    x.fsw = match cc {
        Some(cc) if commit(x, 0, res) => (x.fsw & !(C0 | C1 | C2 | C3)) | cc,
        _ => {
            commit(x, 0, res);
            x.fsw & !(C1 | C2)
        }
    };
}

/// The remainder of finite `a / b` and the condition codes (C2 for an incomplete
/// reduction, else the low three quotient bits in C0, C3, C1).
fn remainder(
    sign: bool,
    ea: i32,
    ma: u64,
    eb: i32,
    mb: u64,
    ieee: bool,
    env: x87::Env,
) -> (OpResult, u16) {
    let d = ea - eb;
    if d >= 64 {
        // Reduce the exponent difference by 32..63 bits per step.
        let n = 32 + (d - 32) % 32;
        let num = u128::from(ma) << n;
        let r = num % u128::from(mb);
        return (pack(sign, ea - n - 63, r, env), C2);
    }
    // Quotient, remainder and divisor in units of 2^unit.
    let (mut q, mut r, divisor, unit) = if d < 0 {
        // Only d = -1 can round up to a quotient of 1.
        let divisor = if d == -1 {
            u128::from(mb) << 1
        } else {
            u128::MAX
        };
        (0u64, u128::from(ma), divisor, ea - 63)
    } else {
        let num = u128::from(ma) << d;
        (
            (num / u128::from(mb)) as u64,
            num % u128::from(mb),
            u128::from(mb),
            eb - 63,
        )
    };
    let mut rsign = sign;
    let twice = r << 1;
    if ieee && (twice > divisor || (twice == divisor && q & 1 == 1)) {
        q = q.wrapping_add(1);
        r = divisor - r;
        rsign = !sign;
    }
    let cc = (if q & 4 != 0 { C0 } else { 0 })
        | (if q & 2 != 0 { C3 } else { 0 })
        | (if q & 1 != 0 { C1 } else { 0 });
    (pack(rsign, unit, r, env), cc)
}

fn pack(sign: bool, exp: i32, mag: u128, env: x87::Env) -> OpResult {
    if mag == 0 {
        return (F80::zero(sign), 0);
    }
    let r = x87::round(sign, exp + 127, mag, EXTENDED, env);
    (r.to_f80(), r.flags & !x87::C1)
}
