//! Pre-decoded forms of the instructions cold code runs most, in 64-bit code: MOV
//! between registers, from an immediate, and to or from memory; MOVZX/MOVSX/MOVSXD; LEA;
//! ADD/SUB/AND/OR/XOR/CMP/TEST on a register (register, immediate or memory source) and
//! CMP/TEST on memory; PUSH/POP of a register; direct near JMP, Jcc and CALL; RET; NOP. An engine that decodes a block once and
//! runs it many times (the JIT's cold blocks) classifies each instruction once with
//! [`FastOp::of`] and runs these forms with [`FastOp::run`], without the general path's
//! rollback snapshot or its operand dispatch. Each form does exactly what
//! [`super::execute`] does for the same instruction (checked against it in the tests
//! below). A form makes its one memory access before it changes anything, and leaves
//! whatever would fault (a non-canonical address, alignment checking on, a failed access)
//! to `execute`, which then raises the exception from an untouched state; every other
//! instruction is [`FastOp::General`], also left to `execute`.

use crate::flags::{size_mask, CcOp};
use crate::{CpuState, SegReg};
use iced_x86::{CodeSize, Instruction, Mnemonic, OpKind, Register};
use softvisor_mmu::Memory;

/// An instruction's pre-decoded form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastOp {
    /// Not one of the forms below: run it with [`super::execute`].
    General,
    /// MOV to a general-purpose register.
    Mov { dst: Register, src: Source },
    /// A two-operand ALU instruction on a general-purpose register.
    Alu {
        op: AluOp,
        dst: Register,
        src: Source,
        size: u32,
    },
    /// Jcc with its condition nibble and target.
    Jcc { cc: u8, target: u64 },
    /// SHL/SAL, SHR, SAR, ROL or ROR of a general-purpose register by an immediate (or 1),
    /// the count already masked.
    Shift {
        op: Mnemonic,
        dst: Register,
        count: u8,
        size: u32,
    },
    /// JMP to a direct near target.
    Jmp { target: u64 },
    /// MOV, MOVZX, MOVSX or MOVSXD from memory to a general-purpose register (`signed`:
    /// the value is sign-extended from the access size).
    Load {
        dst: Register,
        at: Address,
        signed: bool,
    },
    /// MOV from a register or an immediate to memory.
    Store { at: Address, src: Source },
    /// MOVZX/MOVSX/MOVSXD from a register.
    Extend {
        dst: Register,
        src: Register,
        signed: bool,
    },
    /// LEA with 64-bit addressing.
    Lea { dst: Register, at: Address },
    /// PUSH of a 64-bit register.
    Push { src: Register },
    /// POP into a 64-bit register.
    Pop { dst: Register },
    /// CALL to a direct near target.
    Call { target: u64 },
    /// RET without an immediate.
    Ret,
    /// NOP (any length; a memory operand is never accessed).
    Nop,
    /// An ALU instruction with a memory operand that it does not write: a register
    /// destination with a memory source, or CMP/TEST with memory as either operand.
    AluLoad {
        op: AluOp,
        at: Address,
        /// The register operand, or the immediate; `memory_first` says which side memory is.
        other: Source,
        memory_first: bool,
    },
}

/// A memory operand with 64-bit addressing, and the size of its access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    /// FS or GS when it has a base; every other segment has none in 64-bit mode.
    segment: Option<SegReg>,
    base: Option<Register>,
    index: Option<Register>,
    /// 1, 2, 4 or 8 (a byte keeps forms small: cold blocks hold one form per instruction).
    scale: u8,
    /// The access size in bytes (0 for LEA).
    size: u8,
    /// The displacement (for RIP-relative operands, the whole address).
    displacement: u64,
}

/// What [`FastOp::run`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    /// Nothing: the instruction is for [`super::execute`].
    General,
    /// The instruction, touching no memory.
    Registers,
    /// The instruction, with a memory access (the caller checks for side exits as after
    /// `execute`).
    Memory,
}

/// A source operand: a general-purpose register, or an immediate already masked to the
/// operand size (as [`super::operand::Ctx::read`] masks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Reg(Register),
    Imm(u64),
}

/// The ALU operations with a pre-decoded form (ADC and SBB, which read the carry, have
/// none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    Add,
    Sub,
    And,
    Or,
    Xor,
    Cmp,
    Test,
}

impl FastOp {
    /// The form of `insn`.
    pub fn of(insn: &Instruction) -> FastOp {
        if insn.code_size() != CodeSize::Code64 || insn.has_lock_prefix() {
            return FastOp::General;
        }
        if let Some(form) = FastOp::memory_form(insn) {
            return form;
        }
        if let Some(form) = shift_form(insn) {
            return form;
        }
        let alu = match insn.mnemonic() {
            Mnemonic::Mov => None,
            m if alu_op(m).is_some() => alu_op(m),
            Mnemonic::Jmp if insn.op_kind(0) == OpKind::NearBranch64 => {
                return FastOp::Jmp {
                    target: insn.near_branch_target(),
                }
            }
            _ if insn.is_jcc_short_or_near() => {
                return FastOp::Jcc {
                    cc: insn.condition_code() as u8 - 1,
                    target: insn.near_branch_target(),
                }
            }
            _ => return FastOp::General,
        };
        let Some((dst, src)) = register_destination_and_source(insn) else {
            return FastOp::General;
        };
        match alu {
            None => FastOp::Mov { dst, src },
            Some(op) => FastOp::Alu {
                op,
                dst,
                src,
                size: dst.size() as u32,
            },
        }
    }

    /// The forms with a memory or stack access, and LEA and the register extensions.
    fn memory_form(insn: &Instruction) -> Option<FastOp> {
        let m = insn.mnemonic();
        let dst_gpr = insn.op_count() >= 1
            && insn.op_kind(0) == OpKind::Register
            && insn.op0_register().is_gpr();
        let form = match m {
            Mnemonic::Mov if dst_gpr && insn.op_kind(1) == OpKind::Memory => FastOp::Load {
                dst: insn.op0_register(),
                at: Address::of(insn)?,
                signed: false,
            },
            Mnemonic::Mov if insn.op_kind(0) == OpKind::Memory => {
                let at = Address::of(insn)?;
                let src = match insn.op_kind(1) {
                    OpKind::Register if insn.op1_register().is_gpr() => {
                        Source::Reg(insn.op1_register())
                    }
                    kind if super::is_integer_immediate(kind) => {
                        Source::Imm(insn.immediate(1) & size_mask(u32::from(at.size)))
                    }
                    _ => return None,
                };
                FastOp::Store { at, src }
            }
            Mnemonic::Movzx | Mnemonic::Movsx | Mnemonic::Movsxd if dst_gpr => {
                let signed = m != Mnemonic::Movzx;
                match insn.op_kind(1) {
                    OpKind::Memory => FastOp::Load {
                        dst: insn.op0_register(),
                        at: Address::of(insn)?,
                        signed,
                    },
                    OpKind::Register if insn.op1_register().is_gpr() => FastOp::Extend {
                        dst: insn.op0_register(),
                        src: insn.op1_register(),
                        signed,
                    },
                    _ => return None,
                }
            }
            Mnemonic::Lea if dst_gpr => FastOp::Lea {
                dst: insn.op0_register(),
                at: Address::of(insn)?,
            },
            Mnemonic::Push
                if dst_gpr
                    && insn.op0_register().size() == 8
                    && insn.stack_pointer_increment() == -8 =>
            {
                FastOp::Push {
                    src: insn.op0_register(),
                }
            }
            Mnemonic::Pop
                if dst_gpr
                    && insn.op0_register().size() == 8
                    && insn.stack_pointer_increment() == 8 =>
            {
                FastOp::Pop {
                    dst: insn.op0_register(),
                }
            }
            Mnemonic::Call if insn.op_kind(0) == OpKind::NearBranch64 => FastOp::Call {
                target: insn.near_branch_target(),
            },
            Mnemonic::Ret if insn.op_count() == 0 && insn.stack_pointer_increment() == 8 => {
                FastOp::Ret
            }
            Mnemonic::Nop => FastOp::Nop,
            m => return alu_load_form(insn, alu_op(m)?),
        };
        Some(form)
    }

    /// Runs the instruction whose form this is, and which ends at `next_ip`, as
    /// [`super::execute`] would (RIP past it, the instruction counted), unless it is
    /// [`FastOp::General`] or would fault: then it changes nothing and says
    /// [`Ran::General`]. Only the form and `next_ip` are read, not the decoded instruction:
    /// cold code stalls on cache misses, and a form with its `next_ip` is one line.
    #[inline]
    pub fn run(&self, cpu: &mut CpuState, mem: &mut dyn Memory, next_ip: u64) -> Ran {
        let ran = match *self {
            FastOp::General => return Ran::General,
            FastOp::Mov { .. }
            | FastOp::Alu { .. }
            | FastOp::Shift { .. }
            | FastOp::Jcc { .. }
            | FastOp::Jmp { .. } => {
                self.run_registers(cpu, next_ip);
                Ran::Registers
            }
            _ => match self.run_memory(cpu, mem, next_ip) {
                Some(ran) => ran,
                None => return Ran::General,
            },
        };
        cpu.icount += 1;
        ran
    }

    /// The forms with a memory access (or an address): `None`, changing nothing, where
    /// the access would fault.
    fn run_memory(&self, cpu: &mut CpuState, mem: &mut dyn Memory, next_ip: u64) -> Option<Ran> {
        match *self {
            FastOp::Load { dst, at, signed } => {
                let value = mem.read_sized(at.linear(cpu)?, at.size.into()).ok()?;
                let value = if signed {
                    super::data::sign_extend(value, u32::from(at.size))
                } else {
                    value
                };
                cpu.set_reg(dst, value & size_mask(dst.size() as u32));
            }
            FastOp::Store { at, src } => {
                let value = read(cpu, src);
                mem.write_sized(at.linear(cpu)?, at.size.into(), value)
                    .ok()?;
            }
            FastOp::Extend { dst, src, signed } => {
                let value = cpu.reg(src);
                let value = if signed {
                    super::data::sign_extend(value, src.size() as u32)
                } else {
                    value
                };
                cpu.set_reg(dst, value & size_mask(dst.size() as u32));
                cpu.rip = next_ip;
                return Some(Ran::Registers);
            }
            FastOp::Lea { dst, at } => {
                cpu.set_reg(dst, at.offset(cpu) & size_mask(dst.size() as u32));
                cpu.rip = next_ip;
                return Some(Ran::Registers);
            }
            FastOp::Push { src } => {
                let value = cpu.reg(src);
                let sp = cpu.gpr[4].wrapping_sub(8);
                mem.write_sized(stack_linear(cpu, sp)?, 8, value).ok()?;
                cpu.gpr[4] = sp;
            }
            FastOp::Pop { dst } => {
                let sp = cpu.gpr[4];
                let value = mem.read_sized(stack_linear(cpu, sp)?, 8).ok()?;
                cpu.gpr[4] = sp.wrapping_add(8);
                cpu.set_reg(dst, value);
            }
            FastOp::Call { target } => {
                let sp = cpu.gpr[4].wrapping_sub(8);
                mem.write_sized(stack_linear(cpu, sp)?, 8, next_ip).ok()?;
                cpu.gpr[4] = sp;
                cpu.rip = target;
                return Some(Ran::Memory);
            }
            FastOp::Ret => {
                let sp = cpu.gpr[4];
                let target = mem.read_sized(stack_linear(cpu, sp)?, 8).ok()?;
                cpu.gpr[4] = sp.wrapping_add(8);
                cpu.rip = target;
                return Some(Ran::Memory);
            }
            FastOp::Nop => {
                cpu.rip = next_ip;
                return Some(Ran::Registers);
            }
            FastOp::AluLoad {
                op,
                at,
                other,
                memory_first,
            } => {
                let loaded = mem.read_sized(at.linear(cpu)?, at.size.into()).ok()?;
                let value = read(cpu, other);
                let (a, b) = if memory_first {
                    (loaded, value)
                } else {
                    (value, loaded)
                };
                let res = alu_result(cpu, op, a, b, u32::from(at.size));
                if let (Source::Reg(dst), false) = (other, memory_first) {
                    if !matches!(op, AluOp::Cmp | AluOp::Test) {
                        cpu.set_reg(dst, res);
                    }
                }
            }
            _ => return None,
        }
        cpu.rip = next_ip;
        Some(Ran::Memory)
    }

    /// The register-only forms.
    fn run_registers(&self, cpu: &mut CpuState, next_ip: u64) {
        match *self {
            FastOp::Mov { dst, src } => {
                let value = read(cpu, src);
                cpu.set_reg(dst, value);
                cpu.rip = next_ip;
            }
            FastOp::Alu { op, dst, src, size } => {
                alu(cpu, op, dst, src, size);
                cpu.rip = next_ip;
            }
            FastOp::Jcc { cc, target } => {
                cpu.rip = if cpu.flags.condition(cc) {
                    target
                } else {
                    next_ip
                };
            }
            FastOp::Jmp { target } => cpu.rip = target,
            FastOp::Shift {
                op,
                dst,
                count,
                size,
            } => {
                let value = cpu.reg(dst);
                if count == 0 {
                    // Flags stay; a 32-bit register is still written (its upper half zeroed).
                    cpu.set_reg(dst, value);
                } else {
                    let (res, flags, changed) =
                        super::shift::shifted(op, value, count.into(), size, 0);
                    cpu.set_reg(dst, res);
                    cpu.flags.update(changed, flags);
                }
                cpu.rip = next_ip;
            }
            _ => {}
        }
    }
}

/// The form of a shift or rotate (not RCL/RCR, which read CF) of a general-purpose register
/// by an immediate or by 1.
fn shift_form(insn: &Instruction) -> Option<FastOp> {
    let op = insn.mnemonic();
    if !matches!(
        op,
        Mnemonic::Shl
            | Mnemonic::Sal
            | Mnemonic::Shr
            | Mnemonic::Sar
            | Mnemonic::Rol
            | Mnemonic::Ror
    ) || insn.op_kind(0) != OpKind::Register
    {
        return None;
    }
    let dst = insn.op0_register();
    if !dst.is_gpr() {
        return None;
    }
    let size = dst.size() as u32;
    let raw = match insn.op_count() {
        1 => 1,
        _ if insn.op_kind(1) == OpKind::Immediate8 => insn.immediate(1),
        _ => return None,
    };
    let count = (raw & if size == 8 { 63 } else { 31 }) as u8;
    Some(FastOp::Shift {
        op,
        dst,
        count,
        size,
    })
}

impl Address {
    /// The explicit memory operand of `insn`, if it uses 64-bit addressing and an access
    /// of 1, 2, 4 or 8 bytes (LEA's size does not matter).
    fn of(insn: &Instruction) -> Option<Address> {
        let register = |reg: Register| match reg {
            Register::None | Register::RIP => Some(None),
            reg if reg.is_gpr64() => Some(Some(reg)),
            _ => None,
        };
        let base = register(insn.memory_base())?;
        let index = register(insn.memory_index())?;
        if insn.memory_base() == Register::None
            && insn.memory_index() == Register::None
            && insn.memory_displ_size() < 8
        {
            // An absolute address narrower than 64 bits: the interpreter masks it to the
            // address size.
            return None;
        }
        let size = insn.memory_size().size();
        if insn.mnemonic() != Mnemonic::Lea && !matches!(size, 1 | 2 | 4 | 8) {
            return None;
        }
        let segment = match insn.memory_segment() {
            Register::FS => Some(SegReg::Fs),
            Register::GS => Some(SegReg::Gs),
            _ => None,
        };
        Some(Address {
            segment,
            base,
            index,
            scale: insn.memory_index_scale() as u8,
            size: size as u8,
            displacement: insn.memory_displacement64(),
        })
    }

    /// The offset before the segment base.
    fn offset(&self, cpu: &CpuState) -> u64 {
        let mut offset = self.displacement;
        if let Some(base) = self.base {
            offset = offset.wrapping_add(cpu.reg(base));
        }
        if let Some(index) = self.index {
            offset = offset.wrapping_add(cpu.reg(index).wrapping_mul(u64::from(self.scale)));
        }
        offset
    }

    /// The linear address, or `None` where the interpreter would fault on it.
    fn linear(&self, cpu: &CpuState) -> Option<u64> {
        let offset = self.offset(cpu);
        let addr = match self.segment {
            Some(seg) => cpu.segment(seg).base.wrapping_add(offset),
            None => offset,
        };
        checked(cpu, addr)
    }
}

/// `addr` if an access there raises nothing before the memory system sees it: canonical,
/// and alignment checking off.
fn checked(cpu: &CpuState, addr: u64) -> Option<u64> {
    let alignment_checks =
        cpu.cr0 & (1 << 18) != 0 && cpu.flags.bits & crate::flags::AC != 0 && cpu.cpl() == 3;
    (super::operand::is_canonical(addr) && !alignment_checks).then_some(addr)
}

/// The linear address of the stack slot at `sp` (SS has no base in 64-bit mode).
fn stack_linear(cpu: &CpuState, sp: u64) -> Option<u64> {
    checked(cpu, sp)
}

/// Operand 0 as a general-purpose register and operand 1 as a general-purpose register or
/// an integer immediate (masked to operand 0's size), if the instruction has that shape.
fn register_destination_and_source(insn: &Instruction) -> Option<(Register, Source)> {
    if insn.op_count() != 2 || insn.op_kind(0) != OpKind::Register {
        return None;
    }
    let dst = insn.op0_register();
    if !dst.is_gpr() {
        return None;
    }
    let src = match insn.op_kind(1) {
        OpKind::Register if insn.op1_register().is_gpr() => Source::Reg(insn.op1_register()),
        kind if super::is_integer_immediate(kind) => {
            Source::Imm(insn.immediate(1) & size_mask(dst.size() as u32))
        }
        _ => return None,
    };
    Some((dst, src))
}

fn read(cpu: &CpuState, src: Source) -> u64 {
    match src {
        Source::Reg(reg) => cpu.reg(reg),
        Source::Imm(value) => value,
    }
}

/// What `alu::binary` does for these operations, with register operands.
fn alu(cpu: &mut CpuState, op: AluOp, dst: Register, src: Source, size: u32) {
    let a = cpu.reg(dst);
    let b = read(cpu, src);
    let res = alu_result(cpu, op, a, b, size);
    if !matches!(op, AluOp::Cmp | AluOp::Test) {
        cpu.set_reg(dst, res);
    }
}

/// The result of `a op b` at `size` bytes, with the flags left pending as `alu::binary`
/// leaves them.
fn alu_result(cpu: &mut CpuState, op: AluOp, a: u64, b: u64, size: u32) -> u64 {
    let (res, cc_op) = match op {
        AluOp::Add => (a.wrapping_add(b), CcOp::Add),
        AluOp::Sub | AluOp::Cmp => (a.wrapping_sub(b), CcOp::Sub),
        AluOp::And | AluOp::Test => (a & b, CcOp::Logic),
        AluOp::Or => (a | b, CcOp::Logic),
        AluOp::Xor => (a ^ b, CcOp::Logic),
    };
    let res = res & size_mask(size);
    cpu.flags.set_lazy_carry(cc_op, size, res, a, b, false);
    res
}

/// The operation of an ALU mnemonic that has pre-decoded forms.
fn alu_op(m: Mnemonic) -> Option<AluOp> {
    Some(match m {
        Mnemonic::Add => AluOp::Add,
        Mnemonic::Sub => AluOp::Sub,
        Mnemonic::And => AluOp::And,
        Mnemonic::Or => AluOp::Or,
        Mnemonic::Xor => AluOp::Xor,
        Mnemonic::Cmp => AluOp::Cmp,
        Mnemonic::Test => AluOp::Test,
        _ => return None,
    })
}

/// The [`FastOp::AluLoad`] form of an ALU instruction, if it has one: a register
/// destination and a memory source, or CMP/TEST with memory and a register or immediate.
fn alu_load_form(insn: &Instruction, op: AluOp) -> Option<FastOp> {
    if insn.op_count() != 2 {
        return None;
    }
    let compares = matches!(op, AluOp::Cmp | AluOp::Test);
    let register = |reg: Register| reg.is_gpr().then_some(Source::Reg(reg));
    let (other, memory_first) = match (insn.op_kind(0), insn.op_kind(1)) {
        (OpKind::Register, OpKind::Memory) => (register(insn.op0_register())?, false),
        (OpKind::Memory, OpKind::Register) if compares => (register(insn.op1_register())?, true),
        (OpKind::Memory, kind) if compares && super::is_integer_immediate(kind) => {
            let size = insn.memory_size().size() as u32;
            (Source::Imm(insn.immediate(1) & size_mask(size)), true)
        }
        _ => return None,
    };
    Some(FastOp::AluLoad {
        op,
        at: Address::of(insn)?,
        other,
        memory_first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoPlatform;
    use iced_x86::{Decoder, DecoderOptions};
    use softvisor_mmu::{FlatMemory, GuestRam};

    /// Where the instructions are decoded (RIP-relative operands land in RAM).
    const IP: u64 = 0x1000;
    const RAM: usize = 0x10000;

    /// Real encodings of every form.
    const FAST: &[&[u8]] = &[
        &[0x48, 0x89, 0xd8],                         // mov rax, rbx
        &[0x89, 0xd8],                               // mov eax, ebx
        &[0x66, 0x89, 0xd8],                         // mov ax, bx
        &[0x88, 0xfc],                               // mov ah, bh
        &[0x41, 0x88, 0xc0],                         // mov r8b, al
        &[0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff], // mov rax, -1
        &[0xb8, 0x78, 0x56, 0x34, 0x12],             // mov eax, 0x12345678
        &[0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8],       // movabs rax, imm64
        &[0x48, 0x01, 0xd8],                         // add rax, rbx
        &[0x01, 0xd8],                               // add eax, ebx
        &[0x48, 0x83, 0xc0, 0xff],                   // add rax, -1
        &[0x2c, 0x80],                               // sub al, 0x80
        &[0x48, 0x29, 0xc8],                         // sub rax, rcx
        &[0x21, 0xc8],                               // and eax, ecx
        &[0x66, 0x09, 0xc8],                         // or ax, cx
        &[0x31, 0xc0],                               // xor eax, eax
        &[0x48, 0x39, 0xd8],                         // cmp rax, rbx
        &[0x80, 0xfc, 0x7f],                         // cmp ah, 0x7f
        &[0x48, 0x85, 0xc0],                         // test rax, rax
        &[0xc1, 0xc8, 0x07],                         // ror eax, 7
        &[0x48, 0xc1, 0xc3, 0x3d],                   // rol rbx, 61
        &[0xc1, 0xe9, 0x08],                         // shr ecx, 8
        &[0x48, 0xc1, 0xe2, 0x04],                   // shl rdx, 4
        &[0x48, 0xc1, 0xff, 0x3f],                   // sar rdi, 63
        &[0xd1, 0xe0],                               // shl eax, 1
        &[0xc0, 0xec, 0x03],                         // shr ah, 3
        &[0x66, 0xc1, 0xc0, 0x11],                   // rol ax, 17 (masked to 17)
        &[0xc1, 0xe0, 0x20],                         // shl eax, 32 (masked to 0)
        &[0xc0, 0xe0, 0x09],                         // shl al, 9 (beyond the width)
        &[0xa8, 0x01],                               // test al, 1
        &[0x74, 0x10],                               // je +0x10
        &[0x0f, 0x8c, 0x00, 0x01, 0x00, 0x00],       // jl +0x100
        &[0x7a, 0xf0],                               // jp -0x10
        &[0xeb, 0x05],                               // jmp +5
        &[0xe9, 0x00, 0xf0, 0xff, 0xff],             // jmp -0x1000
        &[0x48, 0x8b, 0x03],                         // mov rax, [rbx]
        &[0x8b, 0x44, 0x8b, 0x10],                   // mov eax, [rbx+rcx*4+0x10]
        &[0x66, 0x8b, 0x46, 0xfe],                   // mov ax, [rsi-2]
        &[0x8a, 0x26],                               // mov ah, [rsi]
        &[0x48, 0x8b, 0x05, 0x00, 0x10, 0x00, 0x00], // mov rax, [rip+0x1000]
        &[0x48, 0x89, 0x03],                         // mov [rbx], rax
        &[0x88, 0x64, 0x24, 0x08],                   // mov [rsp+8], ah
        &[0xc7, 0x43, 0x04, 0x78, 0x56, 0x34, 0x12], // mov dword [rbx+4], 0x12345678
        &[0x48, 0xc7, 0x03, 0xff, 0xff, 0xff, 0xff], // mov qword [rbx], -1
        &[0x66, 0xc7, 0x06, 0x34, 0x12],             // mov word [rsi], 0x1234
        &[0x0f, 0xb6, 0x03],                         // movzx eax, byte [rbx]
        &[0x48, 0x0f, 0xbf, 0x06],                   // movsx rax, word [rsi]
        &[0x48, 0x63, 0x03],                         // movsxd rax, dword [rbx]
        &[0x0f, 0xb6, 0xc4],                         // movzx eax, ah
        &[0x48, 0x0f, 0xbe, 0xc1],                   // movsx rax, cl
        &[0x48, 0x63, 0xc1],                         // movsxd rax, ecx
        &[0x48, 0x8d, 0x44, 0x8b, 0x10],             // lea rax, [rbx+rcx*4+0x10]
        &[0x8d, 0x44, 0x8b, 0xf0],                   // lea eax, [rbx+rcx*4-0x10]
        &[0x48, 0x8d, 0x05, 0x00, 0x10, 0x00, 0x00], // lea rax, [rip+0x1000]
        &[0x53],                                     // push rbx
        &[0x54],                                     // push rsp
        &[0x41, 0x57],                               // push r15
        &[0x5b],                                     // pop rbx
        &[0x5c],                                     // pop rsp
        &[0xe8, 0x00, 0x01, 0x00, 0x00],             // call +0x100
        &[0xc3],                                     // ret
        &[0x8b, 0x04, 0x25, 0, 0x10, 0, 0],          // mov eax, [0x1000]
        &[0x64, 0x48, 0x8b, 0x03],                   // mov rax, fs:[rbx]
        &[0x65, 0x89, 0x06],                         // mov gs:[rsi], eax
        &[0x90],                                     // nop
        &[0x0f, 0x1f, 0x44, 0x00, 0x00],             // nop dword [rax+rax]
        &[0x48, 0x03, 0x03],                         // add rax, [rbx]
        &[0x2b, 0x46, 0x04],                         // sub eax, [rsi+4]
        &[0x22, 0x26],                               // and ah, [rsi]
        &[0x48, 0x0b, 0x04, 0x8b],                   // or rax, [rbx+rcx*4]
        &[0x33, 0x03],                               // xor eax, [rbx]
        &[0x48, 0x3b, 0x03],                         // cmp rax, [rbx]
        &[0x48, 0x39, 0x03],                         // cmp [rbx], rax
        &[0x80, 0x3e, 0x2f],                         // cmp byte [rsi], 0x2f
        &[0x48, 0x83, 0x7c, 0x24, 0x08, 0xff],       // cmp qword [rsp+8], -1
        &[0x66, 0x81, 0x3b, 0x34, 0x12],             // cmp word [rbx], 0x1234
        &[0x84, 0x06],                               // test [rsi], al
        &[0xf6, 0x43, 0x01, 0x80],                   // test byte [rbx+1], 0x80
    ];
    /// Encodings that must stay general.
    const GENERAL: &[&[u8]] = &[
        &[0x48, 0x11, 0xd8], // adc rax, rbx
        &[0x8e, 0xd8],       // mov ds, eax
        &[0x0f, 0x20, 0xc0], // mov rax, cr0
        &[0xff, 0xe0],       // jmp rax
        &[0xe2, 0xfe],       // loop
        &[0x48, 0xff, 0xc0], // inc rax
        &[0x67, 0x8b, 0x03], // mov eax, [ebx] (32-bit addressing)
        &[0x66, 0x53],       // push bx
        &[0xc2, 0x08, 0x00], // ret 8
        &[0x48, 0x01, 0x03], // add [rbx], rax (writes memory)
        &[0x83, 0x03, 0x01], // add dword [rbx], 1
        &[0x48, 0xd3, 0xe0], // shl rax, cl
        &[0xc1, 0xd0, 0x03], // rcl eax, 3
        &[0xc1, 0x20, 0x03], // shl dword [rax], 3
    ];

    fn decode(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(64, bytes, IP, DecoderOptions::NONE).decode()
    }

    /// A small deterministic generator for register values and flag states.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Memory with a recognisable pattern.
    fn memory() -> FlatMemory {
        let mut ram = GuestRam::new(RAM as u64).unwrap();
        let bytes: Vec<u8> = (0..RAM).map(|i| (i * 7 + i / 256) as u8).collect();
        ram.write_bytes(0, &bytes).unwrap();
        FlatMemory::new(ram)
    }

    fn ram_bytes(mem: &mut FlatMemory) -> Vec<u8> {
        let mut bytes = vec![0; RAM];
        mem.ram.read_bytes(0, &mut bytes).unwrap();
        bytes
    }

    /// A random state whose pointer registers (RBX, RSI, RSP; RCX as an index) point into
    /// RAM, with flags pending from an earlier instruction of each kind.
    fn state(seed: &mut u64, case: usize) -> CpuState {
        let mut cpu = CpuState::new_long_mode();
        cpu.rip = IP;
        for reg in cpu.gpr.iter_mut() {
            // Small values too, so compares come out equal sometimes.
            *reg = if case % 3 == 0 {
                next(seed) & 3
            } else {
                next(seed)
            };
        }
        cpu.gpr[1] = next(seed) & 0xff;
        cpu.gpr[3] = 0x4000 + (next(seed) & 0xfff);
        cpu.gpr[4] = 0x8000 + (next(seed) & 0xff8);
        cpu.gpr[6] = 0x6000 + (next(seed) & 0xfff);
        cpu.seg[SegReg::Fs as usize].base = 0x100;
        cpu.seg[SegReg::Gs as usize].base = 0x2000;
        let (a, b) = (next(seed) & 0xff, next(seed) & 0xff);
        let earlier = [CcOp::Add, CcOp::Sub, CcOp::Logic, CcOp::Inc, CcOp::Dec];
        cpu.flags.set(0x2 | (next(seed) & 0x8d5));
        cpu.flags.set_lazy(
            earlier[case % earlier.len()],
            1,
            a.wrapping_sub(b) & 0xff,
            a,
            b,
        );
        cpu
    }

    #[test]
    fn each_form_does_what_the_interpreter_does() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for bytes in FAST {
            let insn = decode(bytes);
            let form = FastOp::of(&insn);
            assert_ne!(form, FastOp::General, "{bytes:02x?}");
            for case in 0..200 {
                let mut cpu = state(&mut seed, case);
                let mut want = cpu.clone();
                let (mut mem, mut want_mem) = (memory(), memory());
                super::super::execute(&mut want, &mut want_mem, &mut NoPlatform, &insn).unwrap();
                assert_ne!(
                    form.run(&mut cpu, &mut mem, insn.next_ip()),
                    Ran::General,
                    "{bytes:02x?}"
                );
                assert_eq!(cpu, want, "{bytes:02x?} case {case}");
                assert!(
                    ram_bytes(&mut mem) == ram_bytes(&mut want_mem),
                    "{bytes:02x?} memory"
                );
            }
        }
        for bytes in GENERAL {
            assert_eq!(FastOp::of(&decode(bytes)), FastOp::General, "{bytes:02x?}");
        }
    }

    #[test]
    fn a_form_that_would_fault_changes_nothing_and_is_left_to_the_interpreter() {
        let mut seed = 1;
        let cases: [(&[u8], usize, u64); 5] = [
            (&[0x48, 0x8b, 0x03], 3, RAM as u64), // mov rax, [rbx]: outside RAM
            (&[0x48, 0x89, 0x03], 3, 1 << 47),    // mov [rbx], rax: non-canonical
            (&[0x53], 4, 4),                      // push rbx: below RAM's start
            (&[0x5b], 4, RAM as u64),             // pop rbx: outside RAM
            (&[0xc3], 4, 0x0000_8000_0000_0000),  // ret: non-canonical
        ];
        for (bytes, reg, value) in cases {
            let insn = decode(bytes);
            let mut cpu = state(&mut seed, 1);
            cpu.gpr[reg] = value;
            let before = cpu.clone();
            let mut mem = memory();
            if FastOp::of(&insn).run(&mut cpu, &mut mem, insn.next_ip()) == Ran::General {
                assert_eq!(cpu, before, "{bytes:02x?}");
                assert!(ram_bytes(&mut mem) == ram_bytes(&mut memory()));
                let mut want = before.clone();
                assert!(
                    super::super::execute(&mut want, &mut mem, &mut NoPlatform, &insn).is_err()
                );
            } else {
                panic!("{bytes:02x?} ran where it faults");
            }
        }
    }
}
