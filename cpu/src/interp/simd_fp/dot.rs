//! SSE4.1 DPPS/DPPD dot products: selected products summed pairwise (each step rounded),
//! the sum broadcast to the selected destination lanes and +0.0 elsewhere.

use super::super::operand::{Ctx, Exec};
use super::arith::{arith, Op};
use super::lanes::vector;
use super::mxcsr::{lane, lanes, set_lane, Env, Fp};

/// Products of the lanes selected by immediate bits 4-7; unselected products are +0.0
/// and are not computed (so raise nothing).
fn products<F: Fp>(env: &mut Env, a: u128, b: u128, imm: u8) -> Vec<u128> {
    (0..lanes::<F>())
        .map(|i| {
            if imm & (0x10 << i) != 0 {
                arith::<F>(env, Op::Mul, lane::<F>(a, i), lane::<F>(b, i))
            } else {
                0
            }
        })
        .collect()
}

/// DPPS/DPPD: the sum is (p0 + p1) + (p2 + p3) for singles, p0 + p1 for doubles.
pub(super) fn dot<F: Fp>(ctx: &mut Ctx) -> Exec {
    let imm = ctx.insn.immediate8();
    vector(ctx, |env, a, b| {
        let p = products::<F>(env, a, b, imm);
        if env.settle() {
            return 0;
        }
        let mut sums: Vec<u128> = p
            .chunks(2)
            .map(|pair| arith::<F>(env, Op::Add, pair[0], pair[1]))
            .collect();
        while sums.len() > 1 {
            sums = sums
                .chunks(2)
                .map(|pair| arith::<F>(env, Op::Add, pair[0], pair[1]))
                .collect();
        }
        let sum = sums[0];
        (0..lanes::<F>()).fold(0, |out, i| {
            if imm & (1 << i) != 0 {
                set_lane::<F>(out, i, sum)
            } else {
                out
            }
        })
    })
}
