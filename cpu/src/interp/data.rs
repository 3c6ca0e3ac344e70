//! Data movement: MOV (incl. segment registers), MOVZX/MOVSX/MOVSXD, LEA, XCHG, BSWAP,
//! CBW..CQO, CMOVcc, SETcc, MOVBE, XLAT.

use super::operand::{Ctx, Exec};
use crate::flags::size_mask;
use crate::{Exception, SegReg};
use iced_x86::{Mnemonic, OpKind};

/// The condition-code nibble of a Jcc/SETcc/CMOVcc/LOOPcc instruction.
pub(super) fn condition_nibble(ctx: &Ctx) -> u8 {
    ctx.insn.condition_code() as u8 - 1
}

/// MOV in all its forms, including to and from segment registers.
pub(super) fn mov(ctx: &mut Ctx) -> Exec {
    let insn = ctx.insn;
    if insn.op_kind(1) == OpKind::Register && insn.op_register(1).is_segment_register() {
        let seg = SegReg::from_register(insn.op_register(1)).ok_or(Exception::InvalidOpcode)?;
        let selector = u64::from(ctx.cpu.segment(seg).selector);
        return ctx.write(0, selector);
    }
    if insn.op_kind(0) == OpKind::Register && insn.op_register(0).is_segment_register() {
        let seg = SegReg::from_register(insn.op_register(0)).ok_or(Exception::InvalidOpcode)?;
        if seg == SegReg::Cs {
            return ctx.architectural_ud();
        }
        let selector = ctx.read(1)? as u16;
        crate::system::segments::load_data_or_stack(ctx.cpu, ctx.mem, seg, selector)?;
        if seg == SegReg::Ss {
            ctx.cpu.interrupt_shadow = true;
        }
        return Ok(());
    }
    if super::privileged::is_control_move(ctx) {
        return super::privileged::mov_control(ctx);
    }
    let value = ctx.read(1)?;
    ctx.write(0, value)
}

/// MOVZX, MOVSX, MOVSXD.
pub(super) fn extend(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let src_size = ctx.op_size(1);
    let value = ctx.read(1)?;
    let value = if m == Mnemonic::Movzx {
        value
    } else {
        sign_extend(value, src_size)
    };
    ctx.write(0, value & size_mask(ctx.op_size(0)))
}

/// Sign-extends the low `size` bytes of `value` to 64 bits.
pub(crate) fn sign_extend(value: u64, size: u32) -> u64 {
    let shift = 64 - size * 8;
    (((value << shift) as i64) >> shift) as u64
}

/// LEA: the effective address (no segment), truncated to the operand size.
pub(super) fn lea(ctx: &mut Ctx) -> Exec {
    let offset = ctx.mem_offset();
    ctx.write(0, offset & size_mask(ctx.op_size(0)))
}

/// XCHG. The memory side (operand 0 when there is one) is written first, so a fault
/// leaves the registers alone.
pub(super) fn xchg(ctx: &mut Ctx) -> Exec {
    let a = ctx.read(0)?;
    let b = ctx.read(1)?;
    ctx.write(0, b)?;
    ctx.write(1, a)
}

/// BSWAP (the 16-bit form clears the register's low word, as hardware does).
pub(super) fn bswap(ctx: &mut Ctx) -> Exec {
    let value = ctx.read(0)?;
    let swapped = match ctx.op_size(0) {
        8 => value.swap_bytes(),
        4 => u64::from((value as u32).swap_bytes()),
        _ => 0,
    };
    ctx.write(0, swapped)
}

/// CBW/CWDE/CDQE: sign-extend the low half of the accumulator into all of it.
pub(super) fn widen_accumulator(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let (from, to) = match m {
        Mnemonic::Cbw => (1, 2),
        Mnemonic::Cwde => (2, 4),
        _ => (4, 8),
    };
    let value = sign_extend(ctx.cpu.gpr[0] & size_mask(from), from) & size_mask(to);
    set_sized(ctx, 0, to, value);
    Ok(())
}

/// CWD/CDQ/CQO: fill rDX with the sign of rAX.
pub(super) fn sign_to_rdx(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = match m {
        Mnemonic::Cwd => 2,
        Mnemonic::Cdq => 4,
        _ => 8,
    };
    let negative = ctx.cpu.gpr[0] & crate::flags::sign_bit(size) != 0;
    set_sized(ctx, 2, size, if negative { u64::MAX } else { 0 });
    Ok(())
}

/// Writes GPR `index` with an operand of `size` bytes (x86 merge/zero-extend rules).
pub(super) fn set_sized(ctx: &mut Ctx, index: usize, size: u32, value: u64) {
    let cell = &mut ctx.cpu.gpr[index];
    *cell = match size {
        8 => value,
        4 => value & 0xffff_ffff,
        _ => (*cell & !size_mask(size)) | (value & size_mask(size)),
    };
}

/// CMOVcc: the source is read (and can fault) whatever the condition; a 32-bit
/// destination is zero-extended even when the move does not happen.
pub(super) fn cmov(ctx: &mut Ctx) -> Exec {
    let src = ctx.read(1)?;
    let dst = ctx.read(0)?;
    let take = ctx.cpu.flags.condition(condition_nibble(ctx));
    ctx.write(0, if take { src } else { dst })
}

/// SETcc.
pub(super) fn setcc(ctx: &mut Ctx) -> Exec {
    let value = ctx.cpu.flags.condition(condition_nibble(ctx));
    ctx.write(0, u64::from(value))
}

/// MOVBE: a load or store with the bytes reversed.
pub(super) fn movbe(ctx: &mut Ctx) -> Exec {
    let size = ctx.op_size(0);
    let value = ctx.read(1)?;
    let swapped = value.swap_bytes() >> (64 - size * 8);
    ctx.write(0, swapped)
}

/// XLAT: AL = [seg:rBX + AL].
pub(super) fn xlat(ctx: &mut Ctx) -> Exec {
    let value = ctx.read(0)?;
    ctx.cpu.set_reg(iced_x86::Register::AL, value);
    Ok(())
}
