//! Stack instructions: PUSH, POP, PUSHF, POPF, ENTER, LEAVE, PUSHA, POPA.

use super::operand::{Ctx, Exec};
use crate::flags::{self, size_mask};
use crate::{Exception, SegReg};
use iced_x86::{OpKind, Register};

/// PUSH r/m, imm, or a segment register.
pub(super) fn push(ctx: &mut Ctx) -> Exec {
    let size = ctx.stack_op_size();
    let value = match ctx.insn.op_kind(0) {
        OpKind::Register if ctx.insn.op_register(0).is_segment_register() => {
            let seg =
                SegReg::from_register(ctx.insn.op_register(0)).ok_or(Exception::InvalidOpcode)?;
            u64::from(ctx.cpu.segment(seg).selector)
        }
        OpKind::Register | OpKind::Memory => ctx.read(0)?,
        _ => ctx.insn.immediate(0) & size_mask(size),
    };
    ctx.push(value, size)
}

/// POP r/m or a segment register. A memory destination based on RSP uses the
/// incremented RSP, as on hardware.
pub(super) fn pop(ctx: &mut Ctx) -> Exec {
    let size = ctx.stack_op_size();
    if ctx.insn.op_kind(0) == OpKind::Register && ctx.insn.op_register(0).is_segment_register() {
        let seg = SegReg::from_register(ctx.insn.op_register(0)).ok_or(Exception::InvalidOpcode)?;
        let selector = ctx.peek(size, 0)? as u16;
        crate::system::segments::load_data_or_stack(ctx.cpu, ctx.mem, seg, selector)?;
        ctx.pop(size)?;
        if seg == SegReg::Ss {
            ctx.cpu.interrupt_shadow = true;
        }
        return Ok(());
    }
    let value = ctx.pop(size)?;
    ctx.write(0, value)
}

/// In virtual-8086 mode below IOPL 3, PUSHF and POPF raise #GP(0) (no VME).
fn v86_sensitive(ctx: &Ctx) -> Exec {
    let flags = ctx.cpu.rflags();
    if flags & flags::VM != 0 && (flags & flags::IOPL) >> 12 < 3 {
        return Err(Exception::GeneralProtection(0));
    }
    Ok(())
}

/// PUSHF/PUSHFD/PUSHFQ: RF and VM read as zero.
pub(super) fn pushf(ctx: &mut Ctx) -> Exec {
    v86_sensitive(ctx)?;
    let size = ctx.stack_op_size();
    let value = ctx.cpu.rflags() & !(flags::RF | flags::VM);
    ctx.push(value, size)
}

/// The RFLAGS bits POPF/IRET may change at the current privilege level.
pub(crate) fn writable_flags(ctx: &Ctx, size: u32) -> u64 {
    let cpl = ctx.cpu.cpl();
    let iopl = (ctx.cpu.rflags() & flags::IOPL) >> 12;
    let mut mask = flags::ARITH | flags::TF | flags::DF | flags::NT | flags::AC | flags::ID;
    if cpl <= iopl as u8 {
        mask |= flags::IF;
    }
    if cpl == 0 {
        mask |= flags::IOPL;
    }
    mask & size_mask(size)
}

/// POPF/POPFD/POPFQ.
pub(super) fn popf(ctx: &mut Ctx) -> Exec {
    v86_sensitive(ctx)?;
    let size = ctx.stack_op_size();
    let value = ctx.pop(size)?;
    let mask = writable_flags(ctx, size);
    ctx.cpu.flags.update(mask, value);
    // AC decides SMAP for kernel accesses.
    crate::system::sync_paging(ctx.cpu, ctx.mem);
    Ok(())
}

/// Operand size of ENTER/LEAVE (their stack increment is not one slot).
fn frame_op_size(ctx: &Ctx) -> u32 {
    use iced_x86::Code;
    match ctx.insn.code() {
        Code::Enterw_imm16_imm8 | Code::Leavew => 2,
        Code::Enterd_imm16_imm8 | Code::Leaved => 4,
        _ => 8,
    }
}

/// ENTER imm16, imm8: builds a stack frame with `level` nesting levels.
pub(super) fn enter(ctx: &mut Ctx) -> Exec {
    let size = frame_op_size(ctx);
    let alloc = u64::from(ctx.insn.immediate16());
    let level = ctx.insn.immediate8_2nd() % 32;
    let width = ctx.stack_width();
    let bp_reg = match size {
        2 => Register::BP,
        4 => Register::EBP,
        _ => Register::RBP,
    };
    let rbp = ctx.cpu.reg(bp_reg);
    ctx.push(rbp, size)?;
    let frame = ctx.cpu.gpr[4] & size_mask(width);
    // Outer frame pointers are read through the stack-sized frame pointer.
    let mut bp = ctx.cpu.gpr[5] & size_mask(width);
    for _ in 1..level {
        bp = bp.wrapping_sub(u64::from(size)) & size_mask(width);
        let addr = ctx.linear(Register::SS, bp)?;
        let value = ctx.read_mem(addr, size as usize)?;
        ctx.push(value, size)?;
    }
    if level > 0 {
        ctx.push(frame, size)?;
    }
    // The last write of the frame must be reachable before anything commits.
    let new_sp = (ctx.cpu.gpr[4].wrapping_sub(alloc)) & size_mask(width);
    let probe = ctx.linear(Register::SS, new_sp)?;
    ctx.read_mem(probe, 1)?;
    ctx.cpu.set_reg(bp_reg, frame);
    let sp = ctx.cpu.gpr[4];
    ctx.cpu.gpr[4] = (sp & !size_mask(width)) | new_sp;
    Ok(())
}

/// LEAVE: RSP = RBP, then pop RBP.
pub(super) fn leave(ctx: &mut Ctx) -> Exec {
    let size = frame_op_size(ctx);
    let width = ctx.stack_width();
    let mask = size_mask(width);
    let sp = ctx.cpu.gpr[4];
    ctx.cpu.gpr[4] = (sp & !mask) | (ctx.cpu.gpr[5] & mask);
    let value = ctx.pop(size)?;
    super::data::set_sized(ctx, 5, size, value);
    Ok(())
}

/// PUSHA/PUSHAD (16/32-bit modes only; the decoder rejects them in 64-bit mode).
pub(super) fn pusha(ctx: &mut Ctx) -> Exec {
    let size = ctx.stack_op_size() / 8;
    let original_sp = ctx.cpu.gpr[4];
    for i in 0..8 {
        let value = if i == 4 { original_sp } else { ctx.cpu.gpr[i] };
        ctx.push(value & size_mask(size), size)?;
    }
    Ok(())
}

/// POPA/POPAD: the saved SP is skipped.
pub(super) fn popa(ctx: &mut Ctx) -> Exec {
    let size = ctx.stack_op_size() / 8;
    for i in (0..8).rev() {
        let value = ctx.pop(size)?;
        if i != 4 {
            super::data::set_sized(ctx, i, size, value);
        }
    }
    Ok(())
}
