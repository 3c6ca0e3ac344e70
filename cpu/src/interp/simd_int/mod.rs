//! SIMD integer and data-movement instructions: MMX, SSE/SSE2 integer and moves, SSE3
//! moves, SSSE3, SSE4.1 integer and blends, SSE4.2 (legacy encodings; VEX/EVEX are not
//! decoded to these mnemonics).
//!
//! Each group file maps the mnemonics it owns to a [`Handler`]; this module makes the
//! MMX/SSE state checks before running one, and switches the x87 unit to MMX mode after an
//! MMX form retires (so a faulting instruction leaves the x87 state as it was).

mod arith;
mod compare;
mod lanes;
mod logic;
mod moves;
mod operand_ext;
mod pack;
mod shift;
mod shuffle;
mod sse41;
mod sse42_string;
mod ssse3;

#[cfg(test)]
mod tests;

use super::operand::{Ctx, Exec};
use iced_x86::Mnemonic as M;
pub use operand_ext::needs_alignment;
use operand_ext::{check_state, enter_mmx_mode, has_mm, has_xmm};

/// Executes one instruction of this group (its operands come from `ctx.insn`).
type Handler = fn(&mut Ctx) -> Exec;

/// Executes an instruction of this group, or returns `None` if the mnemonic is not one of its own.
pub(in crate::interp) fn execute(ctx: &mut Ctx) -> Option<Exec> {
    let m = ctx.insn.mnemonic();
    if m == M::Movnti {
        // A GPR store that uses no MMX/SSE state.
        return Some(ctx.read(1).and_then(|v| ctx.write(0, v)));
    }
    let handler = lookup(m)?;
    Some(run(ctx, m, handler))
}

/// Finds the handler of mnemonic `m` in the group files.
fn lookup(m: M) -> Option<Handler> {
    moves::lookup(m)
        .or_else(|| logic::lookup(m))
        .or_else(|| arith::lookup(m))
        .or_else(|| compare::lookup(m))
        .or_else(|| shift::lookup(m))
        .or_else(|| shuffle::lookup(m))
        .or_else(|| pack::lookup(m))
        .or_else(|| ssse3::lookup(m))
        .or_else(|| sse41::lookup(m))
        .or_else(|| sse42_string::lookup(m))
}

/// Checks the MMX/SSE state, runs `handler`, and enters MMX mode after an MMX form.
fn run(ctx: &mut Ctx, m: M, handler: Handler) -> Exec {
    let sse = has_xmm(ctx);
    let mmx = has_mm(ctx) || m == M::Emms;
    check_state(ctx, sse, mmx)?;
    handler(ctx)?;
    if mmx && m != M::Emms {
        enter_mmx_mode(ctx);
    }
    Ok(())
}
