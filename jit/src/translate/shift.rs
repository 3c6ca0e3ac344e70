//! Shifts and rotates translated inline: SHL/SAL, SHR, SAR, ROL and ROR by 1, by an
//! immediate or by CL. Their results and flags follow the interpreter's `shift.rs`: shifts
//! set all six arithmetic flags (AF to 1, OF to 0 for SAR), rotates only CF and OF, and a
//! masked count of zero changes no flag (with CL that is only known at run time, so the
//! translated code selects between the old and the new flags). RCL/RCR and the double
//! shifts go to the interpreter.

use super::Translator;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use softvisor_cpu::flags::{AF, CF, OF};

/// Where a shift's count comes from.
enum Count {
    /// The implicit 1 or an immediate, already masked (never 0: those are interpreted).
    Constant(u32),
    /// CL, masked at run time.
    Cl,
}

impl Translator<'_, '_> {
    /// Translates a shift or rotate, or `None` (nothing emitted) to interpret it.
    pub(super) fn shift(&mut self, insn: &Instruction, m: Mnemonic) -> Option<()> {
        let size = self.op_size(0);
        let count_mask = if size == 8 { 63 } else { 31 };
        let count = match insn.op_count() {
            1 => Count::Constant(1),
            _ => match insn.op_kind(1) {
                OpKind::Immediate8 => Count::Constant(insn.immediate(1) as u32 & count_mask),
                OpKind::Register if insn.op_register(1) == Register::CL => Count::Cl,
                _ => return None,
            },
        };
        if matches!(count, Count::Constant(0)) {
            return None;
        }
        let a = self.read_operand(0, size)?;
        let n = match count {
            Count::Constant(n) => self.constant(u64::from(n)),
            Count::Cl => {
                let rcx = self.gpr(1);
                self.b.ins().band_imm_s(rcx, i64::from(count_mask))
            }
        };
        let (res, arith) = match m {
            Mnemonic::Rol | Mnemonic::Ror => self.rotate(m == Mnemonic::Rol, a, n, size),
            _ => self.plain_shift(m, a, n, size),
        };
        let (res, arith) = match count {
            Count::Constant(_) => (res, arith),
            Count::Cl => {
                // A zero count leaves the flags and (but for the write) the operand.
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, n, 0);
                let old = self.arith_flags();
                let res = self.b.ins().select(zero, a, res);
                (res, self.b.ins().select(zero, old, arith))
            }
        };
        self.write_operand0(res)?;
        self.set_computed_flags(arith);
        Some(())
    }

    /// SHL, SHR or SAR of `a` by `n` (1..=63, or garbage when 0): the masked result and the
    /// six arithmetic flags.
    fn plain_shift(&mut self, m: Mnemonic, a: Value, n: Value, size: u32) -> (Value, Value) {
        let bits = i64::from(size * 8);
        let one = self.b.ins().iadd_imm_s(n, -1);
        let (res, cf, of) = match m {
            Mnemonic::Shl | Mnemonic::Sal => {
                let wide = self.b.ins().ishl(a, n);
                let res = self.mask(wide, size);
                // The last bit shifted out: bit `bits - n` of `a`, 0 once n > bits.
                let cf = if size == 8 {
                    let width = self.constant(64);
                    let at = self.b.ins().isub(width, n);
                    self.bit_at(a, at)
                } else {
                    self.bit(wide, bits)
                };
                let msb = self.bit(res, bits - 1);
                (res, cf, Some(self.b.ins().bxor(msb, cf)))
            }
            Mnemonic::Shr => {
                let res = self.b.ins().ushr(a, n);
                let cf = self.bit_at(a, one);
                (res, cf, Some(self.bit(a, bits - 1)))
            }
            _ => {
                let signed = self.sign_extend(a, size);
                let shifted = self.b.ins().sshr(signed, n);
                let res = self.mask(shifted, size);
                let last = self.b.ins().sshr(signed, one);
                (res, self.b.ins().band_imm_s(last, 1), None)
            }
        };
        let zsp = self.zsp(res, size);
        let mut arith = self.b.ins().bor_imm_s(zsp, AF as i64);
        arith = self.b.ins().bor(arith, cf);
        if let Some(of) = of {
            let placed = self.b.ins().ishl_imm_s(of, OF.trailing_zeros() as i64);
            arith = self.b.ins().bor(arith, placed);
        }
        (res, arith)
    }

    /// ROL (`left`) or ROR of `a` by `n` modulo the width: the result and the arithmetic
    /// flags with CF and OF replaced.
    fn rotate(&mut self, left: bool, a: Value, n: Value, size: u32) -> (Value, Value) {
        let bits = i64::from(size * 8);
        let ty = match size {
            1 => types::I8,
            2 => types::I16,
            4 => types::I32,
            _ => types::I64,
        };
        // Cranelift rotates modulo the type's width, as x86 does modulo the operand's.
        let narrow = if size == 8 {
            a
        } else {
            self.b.ins().ireduce(ty, a)
        };
        let rotated = if left {
            self.b.ins().rotl(narrow, n)
        } else {
            self.b.ins().rotr(narrow, n)
        };
        let res = if size == 8 {
            rotated
        } else {
            self.b.ins().uextend(types::I64, rotated)
        };
        let msb = self.bit(res, bits - 1);
        let (cf, other) = if left {
            let cf = self.b.ins().band_imm_s(res, 1);
            (cf, cf)
        } else {
            (msb, self.bit(res, bits - 2))
        };
        let of = self.b.ins().bxor(msb, other);
        let old = self.arith_flags();
        let kept = self.b.ins().band_imm_s(old, !((CF | OF) as i64));
        let placed = self.b.ins().ishl_imm_s(of, OF.trailing_zeros() as i64);
        let arith = self.b.ins().bor(kept, placed);
        (res, self.b.ins().bor(arith, cf))
    }

    /// Bit `at` (a constant) of `v`, as an I64 0/1.
    fn bit(&mut self, v: Value, at: i64) -> Value {
        let shifted = self.b.ins().ushr_imm_s(v, at);
        self.b.ins().band_imm_s(shifted, 1)
    }

    /// Bit `at` (a value below 64) of `v`, as an I64 0/1.
    fn bit_at(&mut self, v: Value, at: Value) -> Value {
        let shifted = self.b.ins().ushr(v, at);
        self.b.ins().band_imm_s(shifted, 1)
    }
}
