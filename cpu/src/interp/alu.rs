//! Integer arithmetic and logic: ADD ADC SUB SBB AND OR XOR CMP TEST NEG NOT INC DEC.
//! All of them leave their flags lazy.

use super::operand::{Ctx, Exec};
use crate::flags::{size_mask, CcOp, CF};
use iced_x86::Mnemonic;

/// Two-operand ALU instructions; CMP and TEST only set flags.
pub(super) fn binary(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let a = ctx.read(0)?;
    let b = ctx.read(1)?;
    // Only ADC and SBB read the carry; computing it for the rest is wasted work.
    let cin = matches!(m, Mnemonic::Adc | Mnemonic::Sbb) && ctx.cpu.flags.test(CF);
    let (res, op) = match m {
        Mnemonic::Add => (a.wrapping_add(b), CcOp::Add),
        Mnemonic::Adc => (a.wrapping_add(b).wrapping_add(u64::from(cin)), CcOp::Adc),
        Mnemonic::Sub | Mnemonic::Cmp => (a.wrapping_sub(b), CcOp::Sub),
        Mnemonic::Sbb => (a.wrapping_sub(b).wrapping_sub(u64::from(cin)), CcOp::Sbb),
        Mnemonic::And | Mnemonic::Test => (a & b, CcOp::Logic),
        Mnemonic::Or => (a | b, CcOp::Logic),
        _ => (a ^ b, CcOp::Logic),
    };
    let res = res & size_mask(size);
    if !matches!(m, Mnemonic::Cmp | Mnemonic::Test) {
        ctx.write(0, res)?;
    }
    ctx.cpu.flags.set_lazy_carry(op, size, res, a, b, cin);
    Ok(())
}

/// One-operand ALU instructions.
pub(super) fn unary(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let a = ctx.read(0)?;
    let mask = size_mask(size);
    match m {
        Mnemonic::Not => ctx.write(0, !a & mask),
        Mnemonic::Neg => {
            let res = a.wrapping_neg() & mask;
            ctx.write(0, res)?;
            ctx.cpu.flags.set_lazy(CcOp::Sub, size, res, 0, a);
            Ok(())
        }
        Mnemonic::Inc => {
            let res = a.wrapping_add(1) & mask;
            ctx.write(0, res)?;
            ctx.cpu.flags.set_lazy(CcOp::Inc, size, res, a, 1);
            Ok(())
        }
        _ => {
            let res = a.wrapping_sub(1) & mask;
            ctx.write(0, res)?;
            ctx.cpu.flags.set_lazy(CcOp::Dec, size, res, a, 1);
            Ok(())
        }
    }
}
