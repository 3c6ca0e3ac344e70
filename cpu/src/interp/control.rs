//! Near control transfer: JMP, Jcc, CALL, RET, LOOP/LOOPE/LOOPNE, JCXZ/JECXZ/JRCXZ.
//! RIP already holds the next instruction's address when these run.

use super::data::condition_nibble;
use super::operand::{Ctx, Exec};
use crate::flags::{size_mask, ZF};
use iced_x86::{Code, Mnemonic, OpKind};

/// Branch target of operand 0: the decoded near target, or a register/memory value
/// truncated to the operand size.
fn target(ctx: &mut Ctx) -> Exec<u64> {
    match ctx.insn.op_kind(0) {
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
            Ok(ctx.insn.near_branch_target())
        }
        _ => {
            let size = ctx.op_size(0);
            Ok(ctx.read(0)? & size_mask(size))
        }
    }
}

/// JMP near (relative or indirect).
pub(super) fn jmp(ctx: &mut Ctx) -> Exec {
    ctx.cpu.rip = target(ctx)?;
    Ok(())
}

/// Jcc.
pub(super) fn jcc(ctx: &mut Ctx) -> Exec {
    if ctx.cpu.flags.condition(condition_nibble(ctx)) {
        ctx.cpu.rip = ctx.insn.near_branch_target();
    }
    Ok(())
}

/// CALL near: pushes the return address, then jumps.
pub(super) fn call(ctx: &mut Ctx) -> Exec {
    let dest = target(ctx)?;
    let size = ctx.stack_op_size();
    ctx.push(ctx.cpu.rip, size)?;
    ctx.cpu.rip = dest;
    Ok(())
}

/// RET near, with an optional immediate count of bytes to release.
pub(super) fn ret(ctx: &mut Ctx) -> Exec {
    let size = match ctx.insn.code() {
        Code::Retnw | Code::Retnw_imm16 => 2,
        Code::Retnd | Code::Retnd_imm16 => 4,
        _ => 8,
    };
    let dest = ctx.pop(size)?;
    if ctx.insn.op_count() == 1 {
        let release = u64::from(ctx.insn.immediate16());
        let width = ctx.stack_width();
        let mask = size_mask(width);
        let sp = ctx.cpu.gpr[4];
        ctx.cpu.gpr[4] = (sp & !mask) | (sp.wrapping_add(release) & mask);
    }
    ctx.cpu.rip = dest & size_mask(size);
    Ok(())
}

/// The counter register (CX, ECX or RCX) of a LOOP/JrCXZ form, as a byte width.
fn counter_width(code: Code) -> u32 {
    match code {
        Code::Loopne_rel8_16_CX
        | Code::Loopne_rel8_32_CX
        | Code::Loope_rel8_16_CX
        | Code::Loope_rel8_32_CX
        | Code::Loop_rel8_16_CX
        | Code::Loop_rel8_32_CX
        | Code::Jcxz_rel8_16
        | Code::Jcxz_rel8_32 => 2,
        Code::Loopne_rel8_16_ECX
        | Code::Loopne_rel8_32_ECX
        | Code::Loopne_rel8_64_ECX
        | Code::Loope_rel8_16_ECX
        | Code::Loope_rel8_32_ECX
        | Code::Loope_rel8_64_ECX
        | Code::Loop_rel8_16_ECX
        | Code::Loop_rel8_32_ECX
        | Code::Loop_rel8_64_ECX
        | Code::Jecxz_rel8_16
        | Code::Jecxz_rel8_32
        | Code::Jecxz_rel8_64 => 4,
        _ => 8,
    }
}

/// LOOP, LOOPE, LOOPNE: decrement the counter (flags untouched) and branch.
pub(super) fn loop_(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let width = counter_width(ctx.insn.code());
    let mask = size_mask(width);
    let count = ctx.cpu.gpr[1].wrapping_sub(1) & mask;
    super::data::set_sized(ctx, 1, width, count);
    let zf = ctx.cpu.flags.test(ZF);
    let take = count != 0
        && match m {
            Mnemonic::Loope => zf,
            Mnemonic::Loopne => !zf,
            _ => true,
        };
    if take {
        ctx.cpu.rip = ctx.insn.near_branch_target();
    }
    Ok(())
}

/// JCXZ, JECXZ, JRCXZ.
pub(super) fn jrcxz(ctx: &mut Ctx) -> Exec {
    let width = counter_width(ctx.insn.code());
    if ctx.cpu.gpr[1] & size_mask(width) == 0 {
        ctx.cpu.rip = ctx.insn.near_branch_target();
    }
    Ok(())
}
