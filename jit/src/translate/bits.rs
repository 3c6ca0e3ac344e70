//! Bit instructions translated inline: BT/BTS/BTR/BTC on a register, or on memory with an
//! immediate bit offset (a register offset into memory can reach any byte, so it is
//! interpreted), BSF/BSR and BSWAP. Results and flags follow the interpreter's `bits.rs`
//! and `data.rs`: the bit tests change only CF; a bit scan of zero sets ZF and PF, clears
//! the other arithmetic flags and leaves the destination alone.

use super::Translator;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder};
use iced_x86::{Instruction, Mnemonic, OpKind};
use softvisor_cpu::flags::{CF, PF, ZF};

impl Translator<'_, '_> {
    /// BT, BTS, BTR or BTC, or `None` (nothing emitted) to interpret it.
    pub(super) fn bit_test(&mut self, insn: &Instruction, m: Mnemonic) -> Option<()> {
        if insn.op_kind(0) == OpKind::Memory && insn.op_kind(1) == OpKind::Register {
            return None;
        }
        let size = self.op_size(0);
        let bits = u64::from(size * 8);
        let index = match insn.op_kind(1) {
            OpKind::Register => {
                let raw = self.read_reg(insn.op_register(1));
                self.b.ins().band_imm_s(raw, (bits - 1) as i64)
            }
            _ => self.constant(insn.immediate(1) % bits),
        };
        let value = self.read_operand(0, size)?;
        let shifted = self.b.ins().ushr(value, index);
        let bit = self.b.ins().band_imm_s(shifted, 1);
        let one = self.constant(1);
        let mask = self.b.ins().ishl(one, index);
        let new = match m {
            Mnemonic::Bts => Some(self.b.ins().bor(value, mask)),
            Mnemonic::Btr => Some(self.b.ins().band_not(value, mask)),
            Mnemonic::Btc => Some(self.b.ins().bxor(value, mask)),
            _ => None,
        };
        if let Some(new) = new {
            self.write_operand0(new)?;
        }
        let old = self.arith_flags();
        let kept = self.b.ins().band_imm_s(old, !(CF as i64));
        let arith = self.b.ins().bor(kept, bit);
        self.set_computed_flags(arith);
        Some(())
    }

    /// BSF or BSR.
    pub(super) fn bit_scan(&mut self, insn: &Instruction, m: Mnemonic) -> Option<()> {
        let size = self.op_size(0);
        let src = self.read_operand(1, size)?;
        let index = if m == Mnemonic::Bsf {
            self.b.ins().ctz(src)
        } else {
            let leading = self.b.ins().clz(src);
            let top = self.constant(63);
            self.b.ins().isub(top, leading)
        };
        let found = self.b.ins().icmp_imm_s(IntCC::NotEqual, src, 0);
        self.write_reg_if(found, insn.op_register(0), index);
        let zsp = self.zsp(index, size);
        let index_flags = self.b.ins().band_imm_s(zsp, !(ZF as i64));
        let none = self.constant(ZF | PF);
        let arith = self.b.ins().select(found, index_flags, none);
        self.set_computed_flags(arith);
        Some(())
    }

    /// BSWAP (the 16-bit form clears the low word, as the interpreter and hardware do).
    pub(super) fn byte_swap(&mut self, insn: &Instruction) -> Option<()> {
        let reg = insn.op_register(0);
        let v = match self.op_size(0) {
            8 => {
                let v = self.read_reg(reg);
                self.b.ins().bswap(v)
            }
            4 => {
                let v = self.read_reg(reg);
                let narrow = self.b.ins().ireduce(types::I32, v);
                let swapped = self.b.ins().bswap(narrow);
                self.b.ins().uextend(types::I64, swapped)
            }
            _ => self.constant(0),
        };
        self.write_reg(reg, v);
        Some(())
    }
}
