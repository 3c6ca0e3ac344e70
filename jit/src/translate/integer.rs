//! Integer instructions translated inline: MOV, MOVZX/MOVSX/MOVSXD, LEA, the two-operand
//! ALU group, INC/DEC/NEG/NOT, SETcc, CMOVcc, CBW..CQO, NOPs, PAUSE and the prefetch
//! hints; the dispatch to the other groups ([`super::sse`], [`super::shift`],
//! [`super::muldiv`], [`super::bits`], [`super::exchange`], [`super::tsc`],
//! [`super::control`]). Their semantics follow the
//! interpreter's `alu.rs` and `data.rs`; the lockstep mode and the host-differential suite
//! hold the two together.

use super::{Flow, Translator};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use softvisor_cpu::flags::CcOp;
use softvisor_cpu::interp::is_integer_immediate;

impl Translator<'_, '_> {
    /// Translates `insn` inline if this module or [`super::control`] knows how; `None`
    /// sends it to the interpreter. Nothing is emitted when `None` is returned.
    pub(super) fn emit_inline(&mut self, insn: &Instruction) -> Option<Flow> {
        if let Some(flow) = self.emit_sse(insn) {
            return Some(flow);
        }
        if let Some(flow) = self.emit_repeated_string(insn) {
            return Some(flow);
        }
        if !self.operands_supported(insn) {
            return None;
        }
        let m = insn.mnemonic();
        match m {
            Mnemonic::Nop | Mnemonic::Pause | Mnemonic::Endbr64 | Mnemonic::Endbr32 => {}
            _ if is_prefetch(m) => {}
            Mnemonic::Mov => self.mov()?,
            Mnemonic::Movzx | Mnemonic::Movsx | Mnemonic::Movsxd => self.extend(insn, m)?,
            Mnemonic::Lea => self.lea(insn)?,
            Mnemonic::Add
            | Mnemonic::Sub
            | Mnemonic::And
            | Mnemonic::Or
            | Mnemonic::Xor
            | Mnemonic::Cmp
            | Mnemonic::Test
            | Mnemonic::Adc
            | Mnemonic::Sbb => self.binary(m)?,
            Mnemonic::Inc | Mnemonic::Dec | Mnemonic::Neg | Mnemonic::Not => self.unary(m)?,
            Mnemonic::Cmove
            | Mnemonic::Cmovne
            | Mnemonic::Cmovb
            | Mnemonic::Cmovae
            | Mnemonic::Cmovbe
            | Mnemonic::Cmova
            | Mnemonic::Cmovl
            | Mnemonic::Cmovge
            | Mnemonic::Cmovle
            | Mnemonic::Cmovg
            | Mnemonic::Cmovs
            | Mnemonic::Cmovns
            | Mnemonic::Cmovo
            | Mnemonic::Cmovno
            | Mnemonic::Cmovp
            | Mnemonic::Cmovnp => self.cmov(insn)?,
            Mnemonic::Shl
            | Mnemonic::Sal
            | Mnemonic::Shr
            | Mnemonic::Sar
            | Mnemonic::Rol
            | Mnemonic::Ror => self.shift(insn, m)?,
            Mnemonic::Imul | Mnemonic::Mul => self.multiply(insn, m)?,
            Mnemonic::Div | Mnemonic::Idiv => self.divide(m)?,
            Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc => {
                self.bit_test(insn, m)?
            }
            Mnemonic::Bsf | Mnemonic::Bsr => self.bit_scan(insn, m)?,
            Mnemonic::Bswap => self.byte_swap(insn)?,
            Mnemonic::Xchg => self.exchange(insn)?,
            Mnemonic::Xadd => self.exchange_add(insn)?,
            Mnemonic::Cmpxchg => self.compare_exchange(insn)?,
            Mnemonic::Rdtsc => self.read_tsc(false)?,
            Mnemonic::Rdtscp => self.read_tsc(true)?,
            Mnemonic::Cbw | Mnemonic::Cwde | Mnemonic::Cdqe => self.widen_accumulator(m),
            Mnemonic::Cwd | Mnemonic::Cdq | Mnemonic::Cqo => self.sign_to_rdx(m),
            _ if is_setcc(m) => self.setcc(insn)?,
            _ => return self.emit_control(insn),
        }
        Some(Flow::Next)
    }

    /// Whether every operand is a GPR, an immediate or a plain memory operand.
    fn operands_supported(&self, insn: &Instruction) -> bool {
        (0..insn.op_count()).all(|op| match insn.op_kind(op) {
            OpKind::Register => super::is_gpr(insn.op_register(op)),
            // LEA, the multi-byte NOPs and the prefetch hints only compute an address (no
            // size), or not even that.
            OpKind::Memory
                if matches!(insn.mnemonic(), Mnemonic::Lea | Mnemonic::Nop)
                    || is_prefetch(insn.mnemonic()) =>
            {
                !insn.memory_index().is_xmm() && !insn.memory_index().is_ymm()
            }
            OpKind::Memory => {
                self.mode.inline_memory
                    && matches!(insn.memory_size().size(), 1 | 2 | 4 | 8)
                    && !insn.memory_index().is_xmm()
                    && !insn.memory_index().is_ymm()
            }
            OpKind::NearBranch64 => true,
            kind if is_integer_immediate(kind) => true,
            _ => false,
        })
    }

    /// Size in bytes of operand `op`.
    pub(super) fn op_size(&self, op: u32) -> u32 {
        match self.insn.op_kind(op) {
            OpKind::Register => self.insn.op_register(op).size() as u32,
            OpKind::Memory => self.insn.memory_size().size() as u32,
            _ => self.op_size(0),
        }
    }

    /// Writes operand 0: a register or memory. Memory stores must come before any other
    /// state change of the instruction (see the module docs of `translate`).
    pub(super) fn write_operand0(&mut self, v: cranelift_codegen::ir::Value) -> Option<()> {
        match self.insn.op_kind(0) {
            OpKind::Register => self.write_reg(self.insn.op_register(0), v),
            OpKind::Memory => {
                let size = self.op_size(0);
                let linear = self.mem_linear();
                self.store(linear, size, v);
            }
            _ => return None,
        }
        Some(())
    }

    /// CBW/CWDE/CDQE: sign-extend the low half of the accumulator into all of it.
    fn widen_accumulator(&mut self, m: Mnemonic) {
        let (from, to) = match m {
            Mnemonic::Cbw => (1, Register::AX),
            Mnemonic::Cwde => (2, Register::EAX),
            _ => (4, Register::RAX),
        };
        let rax = self.gpr(0);
        let v = self.sign_extend(rax, from);
        self.write_reg(to, v);
    }

    /// CWD/CDQ/CQO: fill rDX with the sign of rAX.
    fn sign_to_rdx(&mut self, m: Mnemonic) {
        let (size, to) = match m {
            Mnemonic::Cwd => (2, Register::DX),
            Mnemonic::Cdq => (4, Register::EDX),
            _ => (8, Register::RDX),
        };
        let rax = self.gpr(0);
        let v = self.sign_extend(rax, size);
        let sign = self.b.ins().sshr_imm_s(v, 63);
        self.write_reg(to, sign);
    }

    fn mov(&mut self) -> Option<()> {
        let size = self.op_size(0);
        let v = self.read_operand(1, size)?;
        self.write_operand0(v)
    }

    fn extend(&mut self, insn: &Instruction, m: Mnemonic) -> Option<()> {
        let src_size = self.op_size(1);
        let v = self.read_operand(1, src_size)?;
        let v = if m == Mnemonic::Movzx {
            v
        } else {
            self.sign_extend(v, src_size)
        };
        self.write_reg(insn.op_register(0), v);
        Some(())
    }

    fn lea(&mut self, insn: &Instruction) -> Option<()> {
        if insn.op_kind(1) != OpKind::Memory {
            return None;
        }
        // LEA computes the offset only: no segment base.
        let seg = insn.memory_segment();
        if matches!(seg, iced_x86::Register::FS | iced_x86::Register::GS) {
            return None;
        }
        let v = self.mem_linear();
        self.write_reg(insn.op_register(0), v);
        Some(())
    }

    fn binary(&mut self, m: Mnemonic) -> Option<()> {
        let size = self.op_size(0);
        if matches!(m, Mnemonic::Xor | Mnemonic::Sub) && self.same_register_operands() {
            // Zero whatever the register held, with the flags of a logic result of zero
            // (SUB's CF, OF and AF are clear as well): the old value is never read.
            let zero = self.constant(0);
            self.write_operand0(zero)?;
            self.set_flags(CcOp::Logic, size, zero, zero, zero);
            return Some(());
        }
        let a = self.read_operand(0, size)?;
        let b = self.read_operand(1, size)?;
        let cin = matches!(m, Mnemonic::Adc | Mnemonic::Sbb).then(|| self.carry());
        if self.constant_value(b) == Some(0) && matches!(m, Mnemonic::Cmp | Mnemonic::Sub) {
            // `cmp byte [rdi], 0`: the result is the operand, already of its size (a
            // quick compile would have kept the subtraction and masked it again), and its
            // flags are a logic result's (CF, OF and AF clear): pending as one, an exit
            // stores no second operand.
            if m == Mnemonic::Sub {
                self.write_operand0(a)?;
            }
            self.set_flags(CcOp::Logic, size, a, a, b);
            return Some(());
        }
        if matches!(m, Mnemonic::Test | Mnemonic::And | Mnemonic::Or)
            && self.same_register_operands()
        {
            // `test eax, eax`: the result is the operand (a quick compile had copied it and
            // ANDed the copy with itself).
            if m != Mnemonic::Test {
                self.write_operand0(a)?;
            }
            self.set_flags(CcOp::Logic, size, a, a, b);
            return Some(());
        }
        let i = self.b.ins();
        let (res, op) = match m {
            Mnemonic::Add if size == 4 => (self.add_or_sub_32(a, b, true), CcOp::Add),
            Mnemonic::Sub if size == 4 => (self.add_or_sub_32(a, b, false), CcOp::Sub),
            Mnemonic::Add => (i.iadd(a, b), CcOp::Add),
            Mnemonic::Adc => {
                let sum = i.iadd(a, b);
                (self.b.ins().iadd(sum, cin?), CcOp::Adc)
            }
            Mnemonic::Sub | Mnemonic::Cmp => (i.isub(a, b), CcOp::Sub),
            Mnemonic::Sbb => {
                let diff = i.isub(a, b);
                (self.b.ins().isub(diff, cin?), CcOp::Sbb)
            }
            Mnemonic::And | Mnemonic::Test => (i.band(a, b), CcOp::Logic),
            Mnemonic::Or => (i.bor(a, b), CcOp::Logic),
            _ => (i.bxor(a, b), CcOp::Logic),
        };
        let res = self.mask(res, size);
        if matches!(m, Mnemonic::Cmp | Mnemonic::Test) {
            self.set_flags(op, size, res, a, b);
        } else {
            self.write_operand0(res)?;
            self.set_flags_of_written(op, size, res, a, b);
        }
        if let (Some(cin), super::flags::Flags::Pending(p)) = (cin, &mut self.cache.flags) {
            p.extra = Some(cin);
        }
        Some(())
    }

    /// `a + b` (`add`) or `a - b` of 32-bit operands, computed in 32 bits and
    /// zero-extended, which x64 does for free: in 64 bits the result had been masked again
    /// (`sub %r9,%r11; mov %r11d,%r8d`).
    fn add_or_sub_32(&mut self, a: Value, b: Value, add: bool) -> Value {
        let a32 = self.b.ins().ireduce(types::I32, a);
        let b32 = self.b.ins().ireduce(types::I32, b);
        let res32 = if add {
            self.b.ins().iadd(a32, b32)
        } else {
            self.b.ins().isub(a32, b32)
        };
        self.b.ins().uextend(types::I64, res32)
    }

    /// Whether the instruction's two operands are the same register (`xor eax, eax`,
    /// `test eax, eax`).
    pub(super) fn same_register_operands(&self) -> bool {
        let insn = &self.insn;
        insn.op_kind(0) == OpKind::Register
            && insn.op_kind(1) == OpKind::Register
            && insn.op0_register() == insn.op1_register()
    }

    fn unary(&mut self, m: Mnemonic) -> Option<()> {
        let size = self.op_size(0);
        let a = self.read_operand(0, size)?;
        // (INC/DEC take the carry they keep in `set_inc_dec_flags`: writing the operand
        // changes no flags.)
        let res = match m {
            Mnemonic::Not => self.b.ins().bnot(a),
            Mnemonic::Neg => self.b.ins().ineg(a),
            Mnemonic::Inc => self.b.ins().iadd_imm_s(a, 1),
            _ => self.b.ins().iadd_imm_s(a, -1),
        };
        let res = self.mask(res, size);
        self.write_operand0(res)?;
        match m {
            Mnemonic::Not => {}
            Mnemonic::Neg => {
                let zero = self.constant(0);
                self.set_flags(CcOp::Sub, size, res, zero, a);
            }
            _ => {
                let op = if m == Mnemonic::Inc {
                    CcOp::Inc
                } else {
                    CcOp::Dec
                };
                self.set_inc_dec_flags(op, size, res);
            }
        }
        Some(())
    }

    fn setcc(&mut self, insn: &Instruction) -> Option<()> {
        let cc = condition_nibble(insn)?;
        let c = self.condition(cc);
        let v = self.widen(c, cranelift_codegen::ir::types::I64);
        self.write_operand0(v)
    }

    fn cmov(&mut self, insn: &Instruction) -> Option<()> {
        let cc = condition_nibble(insn)?;
        let size = self.op_size(0);
        // The source is read (and may fault) whatever the condition.
        let src = self.read_operand(1, size)?;
        let old = self.read_operand(0, size)?;
        let c = self.condition(cc);
        let v = self.b.ins().select(c, src, old);
        // A 32-bit CMOV zero-extends its destination even when the condition is false.
        self.write_reg(insn.op_register(0), v);
        Some(())
    }
}

/// Whether `m` is one of the SETcc mnemonics.
fn is_setcc(m: Mnemonic) -> bool {
    matches!(
        m,
        Mnemonic::Seto
            | Mnemonic::Setno
            | Mnemonic::Setb
            | Mnemonic::Setae
            | Mnemonic::Sete
            | Mnemonic::Setne
            | Mnemonic::Setbe
            | Mnemonic::Seta
            | Mnemonic::Sets
            | Mnemonic::Setns
            | Mnemonic::Setp
            | Mnemonic::Setnp
            | Mnemonic::Setl
            | Mnemonic::Setge
            | Mnemonic::Setle
            | Mnemonic::Setg
    )
}

/// The condition nibble (as in the low bits of Jcc's opcode) of a conditional instruction.
pub(super) fn condition_nibble(insn: &Instruction) -> Option<u8> {
    match insn.condition_code() as u8 {
        0 => None,
        n => Some(n - 1),
    }
}

/// The prefetch hints: no architectural effect, and they never fault.
fn is_prefetch(m: Mnemonic) -> bool {
    matches!(
        m,
        Mnemonic::Prefetch
            | Mnemonic::Prefetchw
            | Mnemonic::Prefetchwt1
            | Mnemonic::Prefetchnta
            | Mnemonic::Prefetcht0
            | Mnemonic::Prefetcht1
            | Mnemonic::Prefetcht2
    )
}
