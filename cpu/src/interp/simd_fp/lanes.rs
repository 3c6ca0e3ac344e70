//! Generic drivers: read the operands, run a per-lane or whole-vector computation, decide
//! on #XM, then write, so each instruction is one call.

use super::super::operand::{Ctx, Exec};
use super::mxcsr::{check_sse, lane, lanes, set_lane, Env, Fp};

/// Reads a vector source; a 16-byte memory operand must be 16-byte aligned.
pub(super) fn read_src(ctx: &mut Ctx, op: u32) -> Exec<u128> {
    if ctx.is_mem128() {
        ctx.read_vec_aligned(op)
    } else {
        ctx.read_vec(op)
    }
}

/// `dst = f(dst, src)` on whole vectors, with the #XM decision before the write.
pub(super) fn vector(ctx: &mut Ctx, f: impl FnOnce(&mut Env, u128, u128) -> u128) -> Exec {
    check_sse(ctx)?;
    let a = ctx.read_vec(0)?;
    let b = read_src(ctx, 1)?;
    let mut env = Env::new(ctx);
    let out = f(&mut env, a, b);
    env.commit(ctx)?;
    ctx.write_vec(0, out)
}

/// Applies `f(dst_lane, src_lane)` to every lane (packed) or lane 0 only (scalar, the
/// other destination lanes are kept).
pub(super) fn binary<F: Fp>(
    ctx: &mut Ctx,
    scalar: bool,
    f: impl Fn(&mut Env, u128, u128) -> u128,
) -> Exec {
    let count = if scalar { 1 } else { lanes::<F>() };
    vector(ctx, |env, a, b| {
        (0..count).fold(a, |out, i| {
            set_lane::<F>(out, i, f(env, lane::<F>(a, i), lane::<F>(b, i)))
        })
    })
}

/// Applies `f(src_lane)` to every lane (packed) or lane 0 (scalar).
pub(super) fn unary<F: Fp>(
    ctx: &mut Ctx,
    scalar: bool,
    f: impl Fn(&mut Env, u128) -> u128,
) -> Exec {
    binary::<F>(ctx, scalar, |env, _, b| f(env, b))
}
