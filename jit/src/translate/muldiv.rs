//! Multiplies and divides translated inline: IMUL in its one-, two- and three-operand
//! forms, MUL, DIV and IDIV. As in the interpreter's `muldiv.rs`, CF and OF say whether a
//! product did not fit the destination, SF, ZF and PF follow the low half, and AF is
//! cleared; divides leave the flags alone. A divide the host cannot do in one 64-bit
//! division (a zero divisor, a quotient that does not fit, a 128-bit dividend that is not
//! just RAX extended, or the one signed overflow) is redone in the interpreter, which
//! raises #DE or computes it; the host division is never reached with those operands.

use super::Translator;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value};
use iced_x86::{Instruction, Mnemonic, Register};
use softvisor_cpu::flags::{CF, OF};

/// RAX's index.
const RAX: usize = 0;
/// RDX's index.
const RDX: usize = 2;

impl Translator<'_, '_> {
    /// Translates MUL or IMUL, or `None` (nothing emitted) to interpret it.
    pub(super) fn multiply(&mut self, insn: &Instruction, m: Mnemonic) -> Option<()> {
        let size = self.op_size(0);
        let signed = m == Mnemonic::Imul;
        if insn.op_count() == 1 {
            return self.widening_multiply(signed, size);
        }
        if !signed {
            return None;
        }
        let (x, y) = if insn.op_count() == 2 {
            (self.read_operand(0, size)?, self.read_operand(1, size)?)
        } else {
            (self.read_operand(1, size)?, self.read_operand(2, size)?)
        };
        let (low, _, overflow) = self.product(true, x, y, size);
        self.write_reg(insn.op_register(0), low);
        self.set_multiply_flags(low, overflow, size);
        Some(())
    }

    /// MUL/IMUL r/m: rDX:rAX (AX for bytes) = rAX * r/m.
    fn widening_multiply(&mut self, signed: bool, size: u32) -> Option<()> {
        let src = self.read_operand(0, size)?;
        let rax = self.gpr(RAX);
        let a = self.mask(rax, size);
        let (low, high, overflow) = self.product(signed, a, src, size);
        self.set_double(size, low, high);
        self.set_multiply_flags(low, overflow, size);
        Some(())
    }

    /// DIV or IDIV r/m: rDX:rAX (AX for bytes) / r/m, quotient to rAX (AL), remainder to
    /// rDX (AH).
    pub(super) fn divide(&mut self, m: Mnemonic) -> Option<()> {
        let size = self.op_size(0);
        let signed = m == Mnemonic::Idiv;
        let src = self.read_operand(0, size)?;
        let rax = self.gpr(RAX);
        let rdx = self.gpr(RDX);
        let (dividend, divisor) = if size == 8 {
            // Only a dividend that is RAX extended: one 64-bit host division.
            let high = if signed {
                self.b.ins().sshr_imm_s(rax, 63)
            } else {
                self.constant(0)
            };
            let wide = self.b.ins().icmp(IntCC::NotEqual, rdx, high);
            self.redo_if(wide);
            (rax, src)
        } else {
            self.narrow_dividend(signed, size, rax, rdx, src)
        };
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, divisor, 0);
        self.redo_if(zero);
        if signed {
            // i64::MIN / -1 traps on the host (and never fits the quotient).
            let min = self.b.ins().icmp_imm_s(IntCC::Equal, dividend, i64::MIN);
            let minus_one = self.b.ins().icmp_imm_s(IntCC::Equal, divisor, -1);
            let overflow = self.b.ins().band(min, minus_one);
            self.redo_if(overflow);
        }
        let (quotient, remainder) = if signed {
            let q = self.b.ins().sdiv(dividend, divisor);
            (q, self.b.ins().srem(dividend, divisor))
        } else {
            let q = self.b.ins().udiv(dividend, divisor);
            (q, self.b.ins().urem(dividend, divisor))
        };
        if size < 8 {
            let back = if signed {
                self.sign_extend(quotient, size)
            } else {
                self.mask(quotient, size)
            };
            let misfit = self.b.ins().icmp(IntCC::NotEqual, back, quotient);
            self.redo_if(misfit);
        }
        self.set_double(size, quotient, remainder);
        Some(())
    }

    /// The dividend (2 * `size` bytes, extended to 64 bits) and divisor of a divide of at
    /// most 32 bits.
    fn narrow_dividend(
        &mut self,
        signed: bool,
        size: u32,
        rax: Value,
        rdx: Value,
        src: Value,
    ) -> (Value, Value) {
        let bits = i64::from(size * 8);
        let wide = if size == 1 {
            self.mask(rax, 2)
        } else {
            let low = self.mask(rax, size);
            let high = self.mask(rdx, size);
            let placed = self.b.ins().ishl_imm_s(high, bits);
            self.b.ins().bor(placed, low)
        };
        if signed {
            let dividend = self.sign_extend(wide, 2 * size);
            (dividend, self.sign_extend(src, size))
        } else {
            (wide, src)
        }
    }

    /// Writes a double-width result: AX = `high:low` for bytes, else rDX:rAX.
    fn set_double(&mut self, size: u32, low: Value, high: Value) {
        if size == 1 {
            let low = self.mask(low, 1);
            let high = self.mask(high, 1);
            let placed = self.b.ins().ishl_imm_s(high, 8);
            let ax = self.b.ins().bor(low, placed);
            self.write_reg(Register::AX, ax);
        } else {
            let (acc, data) = match size {
                2 => (Register::AX, Register::DX),
                4 => (Register::EAX, Register::EDX),
                _ => (Register::RAX, Register::RDX),
            };
            self.write_reg(acc, low);
            self.write_reg(data, high);
        }
    }

    /// The `size`-byte product of `x` and `y` (masked to `size`): its low half, its high
    /// half (masked) and whether it does not fit the low half (an I8 boolean).
    fn product(&mut self, signed: bool, x: Value, y: Value, size: u32) -> (Value, Value, Value) {
        if size == 8 {
            let low = self.b.ins().imul(x, y);
            let high = if signed {
                self.b.ins().smulhi(x, y)
            } else {
                self.b.ins().umulhi(x, y)
            };
            let overflow = if signed {
                let sign = self.b.ins().sshr_imm_s(low, 63);
                self.b.ins().icmp(IntCC::NotEqual, high, sign)
            } else {
                self.b.ins().icmp_imm_s(IntCC::NotEqual, high, 0)
            };
            return (low, high, overflow);
        }
        // Operands of at most 32 bits: the full product fits an I64.
        let (x, y) = if signed {
            (self.sign_extend(x, size), self.sign_extend(y, size))
        } else {
            (x, y)
        };
        let product = self.b.ins().imul(x, y);
        let low = self.mask(product, size);
        let shifted = self.b.ins().ushr_imm_s(product, i64::from(size * 8));
        let high = self.mask(shifted, size);
        let overflow = if signed {
            let back = self.sign_extend(low, size);
            self.b.ins().icmp(IntCC::NotEqual, back, product)
        } else {
            self.b.ins().icmp_imm_s(IntCC::NotEqual, high, 0)
        };
        (low, high, overflow)
    }

    /// CF = OF = `overflow`, SF/ZF/PF from `low`, AF clear.
    fn set_multiply_flags(&mut self, low: Value, overflow: Value, size: u32) {
        let zsp = self.zsp(low, size);
        let wide = self.widen(overflow, cranelift_codegen::ir::types::I64);
        let co = self.b.ins().imul_imm_s(wide, (CF | OF) as i64);
        let arith = self.b.ins().bor(zsp, co);
        self.set_computed_flags(arith);
    }
}
