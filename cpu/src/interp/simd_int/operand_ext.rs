//! Vector operand access shared by the SIMD integer groups: alignment rules, MMX registers
//! and the MMX/SSE state checks.

use crate::interp::operand::{Ctx, Exec};
use crate::state::{CR0_EM, CR0_NE, CR0_TS, CR4_OSFXSR};
use crate::Exception;
use iced_x86::{Instruction, MemorySize, Mnemonic as M, OpKind, Register};

/// Whether operand `op` is a register for which `is` holds.
fn reg_is(ctx: &Ctx, op: u32, is: fn(Register) -> bool) -> bool {
    ctx.insn.op_kind(op) == OpKind::Register && is(ctx.insn.op_register(op))
}

/// Whether any operand is an XMM register.
pub(super) fn has_xmm(ctx: &Ctx) -> bool {
    (0..ctx.insn.op_count()).any(|op| reg_is(ctx, op, Register::is_xmm))
}

/// Whether any operand is an MMX register (the instruction uses the MMX state).
pub(super) fn has_mm(ctx: &Ctx) -> bool {
    (0..ctx.insn.op_count()).any(|op| reg_is(ctx, op, Register::is_mm))
}

/// Vector width in bytes: 16 for an XMM form, 8 for an MMX-only form.
pub(super) fn width(ctx: &Ctx) -> usize {
    if !has_xmm(ctx) && has_mm(ctx) {
        8
    } else {
        16
    }
}

/// The instruction's imm8.
pub(super) fn imm8(ctx: &Ctx) -> usize {
    usize::from(ctx.insn.immediate8())
}

/// Legacy SSE m128 operands must be 16-byte aligned, except for the explicitly unaligned
/// loads/stores and the SSE4.2 string instructions. The JIT applies the same rule.
pub fn needs_alignment(insn: &Instruction) -> bool {
    let unaligned = matches!(
        insn.mnemonic(),
        M::Movups
            | M::Movupd
            | M::Movdqu
            | M::Lddqu
            | M::Pcmpestri
            | M::Pcmpestri64
            | M::Pcmpestrm
            | M::Pcmpestrm64
            | M::Pcmpistri
            | M::Pcmpistrm
    );
    insn.memory_size().size() == 16 && insn.memory_size() != MemorySize::Unknown && !unaligned
}

/// Reads vector operand `op` (XMM, MMX, GPR or memory, zero-extended to 128 bits).
pub(super) fn src(ctx: &mut Ctx, op: u32) -> Exec<u128> {
    if needs_alignment(ctx.insn) {
        ctx.read_vec_aligned(op)
    } else {
        ctx.read_vec(op)
    }
}

/// Writes vector operand `op`: a whole XMM register, an MMX register, a GPR (x86 merge
/// rules) or memory of the instruction's memory size.
pub(super) fn put(ctx: &mut Ctx, op: u32, value: u128) -> Exec {
    match ctx.insn.op_kind(op) {
        OpKind::Register if ctx.insn.op_register(op).is_mm() => {
            set_mm(ctx, ctx.insn.op_register(op), value as u64);
            Ok(())
        }
        OpKind::Register => ctx.write_vec(op, value),
        _ if needs_alignment(ctx.insn) => ctx.write_vec_aligned(op, value),
        _ => ctx.write_vec(op, value),
    }
}

/// Writes MMX register `reg`: the aliased x87 register gets exponent bits all ones.
fn set_mm(ctx: &mut Ctx, reg: Register, value: u64) {
    let index = (reg as usize).wrapping_sub(Register::MM0 as usize);
    if let Some(r) = ctx.cpu.x87.regs.get_mut(index) {
        r.signif = value;
        r.sign_exp = 0xffff;
    }
}

/// FSW.ES: an unmasked x87 exception is pending.
const FSW_ES: u16 = 1 << 7;

/// The #UD/#NM checks made before any MMX or SSE instruction: SSE forms also need
/// CR4.OSFXSR, and MMX forms first deliver a pending x87 exception (#MF, when CR0.NE
/// selects native reporting).
pub(super) fn check_state(ctx: &Ctx, sse: bool, mmx: bool) -> Exec {
    let cpu = &ctx.cpu;
    if cpu.cr0 & CR0_EM != 0 || (sse && cpu.cr4 & CR4_OSFXSR == 0) {
        return Err(Exception::InvalidOpcode);
    }
    if cpu.cr0 & CR0_TS != 0 {
        return Err(Exception::DeviceNotAvailable);
    }
    if mmx && cpu.x87.fsw & FSW_ES != 0 && cpu.cr0 & CR0_NE != 0 {
        return Err(Exception::X87Fpu);
    }
    Ok(())
}

/// An MMX instruction switches the x87 unit to MMX mode: TOP = 0, all tags valid.
pub(super) fn enter_mmx_mode(ctx: &mut Ctx) {
    ctx.cpu.x87.top = 0;
    ctx.cpu.x87.ftw = 0;
}

/// The common shape `dst = f(dst, src, width)` with dst operand 0 and src operand 1.
pub(super) fn binop(ctx: &mut Ctx, f: impl Fn(u128, u128, usize) -> u128) -> Exec {
    let w = width(ctx);
    let a = src(ctx, 0)?;
    let b = src(ctx, 1)?;
    put(ctx, 0, f(a, b, w))
}

/// The shape `dst = f(src, width)`.
pub(super) fn unop(ctx: &mut Ctx, f: impl Fn(u128, usize) -> u128) -> Exec {
    let w = width(ctx);
    let b = src(ctx, 1)?;
    put(ctx, 0, f(b, w))
}
