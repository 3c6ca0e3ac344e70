//! SSE3 ADDSUBPS/ADDSUBPD and horizontal HADDPS/HADDPD/HSUBPS/HSUBPD.

use super::super::operand::{Ctx, Exec};
use super::arith::{arith, Op};
use super::lanes::vector;
use super::mxcsr::{lane, lanes, set_lane, Fp};

/// ADDSUBPS/ADDSUBPD: even lanes subtract, odd lanes add.
pub(super) fn addsub<F: Fp>(ctx: &mut Ctx) -> Exec {
    vector(ctx, |env, a, b| {
        (0..lanes::<F>()).fold(0, |out, i| {
            let op = if i % 2 == 0 { Op::Sub } else { Op::Add };
            set_lane::<F>(
                out,
                i,
                arith::<F>(env, op, lane::<F>(a, i), lane::<F>(b, i)),
            )
        })
    })
}

/// HADDPS/HADDPD (`op` Add) and HSUBPS/HSUBPD (`op` Sub): the low half of the result
/// combines adjacent lanes of the destination, the high half those of the source.
pub(super) fn horizontal<F: Fp>(ctx: &mut Ctx, op: Op) -> Exec {
    vector(ctx, |env, a, b| {
        let half = lanes::<F>() / 2;
        (0..lanes::<F>()).fold(0, |out, i| {
            let (v, j) = if i < half {
                (a, 2 * i)
            } else {
                (b, 2 * (i - half))
            };
            set_lane::<F>(
                out,
                i,
                arith::<F>(env, op, lane::<F>(v, j), lane::<F>(v, j + 1)),
            )
        })
    })
}
