//! Exchanges translated inline: XCHG, XADD and CMPXCHG, with or without LOCK (one vCPU:
//! every instruction is already atomic with respect to the guest). As in the interpreter's
//! `data.rs` and `atomic.rs`, a memory operand is written before any register, CMPXCHG
//! writes a memory destination in both outcomes but a register destination only when it
//! matched, and XADD with one register for both operands keeps the sum.

use super::Translator;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::InstBuilder;
use iced_x86::{Instruction, OpKind, Register};
use softvisor_cpu::flags::CcOp;

/// The accumulator of a `size`-byte operation.
fn accumulator(size: u32) -> Register {
    match size {
        1 => Register::AL,
        2 => Register::AX,
        4 => Register::EAX,
        _ => Register::RAX,
    }
}

impl Translator<'_, '_> {
    /// XCHG r/m, reg (or reg, reg).
    pub(super) fn exchange(&mut self, insn: &Instruction) -> Option<()> {
        if insn.op_kind(1) != OpKind::Register {
            return None;
        }
        let size = self.op_size(0);
        let a = self.read_operand(0, size)?;
        let b = self.read_operand(1, size)?;
        self.write_operand0(b)?;
        self.write_reg(insn.op_register(1), a);
        Some(())
    }

    /// XADD r/m, reg.
    pub(super) fn exchange_add(&mut self, insn: &Instruction) -> Option<()> {
        let size = self.op_size(0);
        let dst = self.read_operand(0, size)?;
        let src = self.read_operand(1, size)?;
        let wide = self.b.ins().iadd(dst, src);
        let sum = self.mask(wide, size);
        let reg = insn.op_register(1);
        if insn.op_kind(0) == OpKind::Memory {
            self.write_operand0(sum)?;
            self.write_reg(reg, dst);
        } else {
            self.write_reg(reg, dst);
            self.write_reg(insn.op_register(0), sum);
        }
        self.set_flags(CcOp::Add, size, sum, dst, src);
        Some(())
    }

    /// CMPXCHG r/m, reg.
    pub(super) fn compare_exchange(&mut self, insn: &Instruction) -> Option<()> {
        let size = self.op_size(0);
        let acc_reg = accumulator(size);
        let acc = self.read_reg(acc_reg);
        let dst = self.read_operand(0, size)?;
        let src = self.read_operand(1, size)?;
        let equal = self.b.ins().icmp(IntCC::Equal, acc, dst);
        if insn.op_kind(0) == OpKind::Memory {
            let value = self.b.ins().select(equal, src, dst);
            self.write_operand0(value)?;
        } else {
            self.write_reg_if(equal, insn.op_register(0), src);
        }
        // After the destination (which may be the accumulator itself): a mismatch loads
        // the old destination into the accumulator.
        let mismatch = self.b.ins().icmp(IntCC::NotEqual, acc, dst);
        self.write_reg_if(mismatch, acc_reg, dst);
        let diff = self.b.ins().isub(acc, dst);
        let res = self.mask(diff, size);
        self.set_flags(CcOp::Sub, size, res, acc, dst);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use iced_x86::{Code, Decoder, DecoderOptions};

    fn decode(bytes: &[u8]) -> Code {
        Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE)
            .decode()
            .code()
    }

    #[test]
    fn the_decoder_rejects_lock_where_it_is_invalid() {
        // lock add eax, ebx and lock mov [rax], ebx: #UD, decoded as invalid.
        assert_eq!(decode(&[0xf0, 0x01, 0xd8]), Code::INVALID);
        assert_eq!(decode(&[0xf0, 0x89, 0x18]), Code::INVALID);
        // lock add [rax], ebx and lock cmpxchg [rdi], ecx are valid.
        assert_eq!(decode(&[0xf0, 0x01, 0x18]), Code::Add_rm32_r32);
        assert_eq!(decode(&[0xf0, 0x0f, 0xb1, 0x0f]), Code::Cmpxchg_rm32_r32);
    }
}
