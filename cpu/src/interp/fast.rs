//! Pre-decoded forms of the instructions cold code runs most: register-only MOV and
//! ADD/SUB/AND/OR/XOR/CMP/TEST (register or immediate source) and direct near JMP and Jcc,
//! in 64-bit code. An engine that decodes a block once and runs it many times (the JIT's
//! cold blocks) classifies each instruction once with [`FastOp::of`] and runs these forms
//! with [`FastOp::run`], without the general path's rollback snapshot (none of them can
//! fault) or its operand dispatch. Each form does exactly what [`super::execute`] does
//! for the same instruction (checked against it in the tests below); every other
//! instruction is [`FastOp::General`], left to `execute`.

use crate::flags::{size_mask, CcOp};
use crate::CpuState;
use iced_x86::{CodeSize, Instruction, Mnemonic, OpKind, Register};

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
    /// JMP to a direct near target.
    Jmp { target: u64 },
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
        let alu = match insn.mnemonic() {
            Mnemonic::Mov => None,
            Mnemonic::Add => Some(AluOp::Add),
            Mnemonic::Sub => Some(AluOp::Sub),
            Mnemonic::And => Some(AluOp::And),
            Mnemonic::Or => Some(AluOp::Or),
            Mnemonic::Xor => Some(AluOp::Xor),
            Mnemonic::Cmp => Some(AluOp::Cmp),
            Mnemonic::Test => Some(AluOp::Test),
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

    /// Runs `insn`, whose form this is, as [`super::execute`] would (RIP past it, the
    /// instruction counted); false for [`FastOp::General`], which it leaves alone.
    #[inline]
    pub fn run(&self, cpu: &mut CpuState, insn: &Instruction) -> bool {
        match *self {
            FastOp::General => return false,
            FastOp::Mov { dst, src } => {
                let value = read(cpu, src);
                cpu.set_reg(dst, value);
                cpu.rip = insn.next_ip();
            }
            FastOp::Alu { op, dst, src, size } => {
                alu(cpu, op, dst, src, size);
                cpu.rip = insn.next_ip();
            }
            FastOp::Jcc { cc, target } => {
                cpu.rip = if cpu.flags.condition(cc) {
                    target
                } else {
                    insn.next_ip()
                };
            }
            FastOp::Jmp { target } => cpu.rip = target,
        }
        cpu.icount += 1;
        true
    }
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
    let (res, cc_op) = match op {
        AluOp::Add => (a.wrapping_add(b), CcOp::Add),
        AluOp::Sub | AluOp::Cmp => (a.wrapping_sub(b), CcOp::Sub),
        AluOp::And | AluOp::Test => (a & b, CcOp::Logic),
        AluOp::Or => (a | b, CcOp::Logic),
        AluOp::Xor => (a ^ b, CcOp::Logic),
    };
    let res = res & size_mask(size);
    if !matches!(op, AluOp::Cmp | AluOp::Test) {
        cpu.set_reg(dst, res);
    }
    cpu.flags.set_lazy_carry(cc_op, size, res, a, b, false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoPlatform;
    use iced_x86::{Decoder, DecoderOptions};
    use softvisor_mmu::{FlatMemory, GuestRam};

    /// Real encodings of every form, and some that must stay general.
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
        &[0xa8, 0x01],                               // test al, 1
        &[0x74, 0x10],                               // je +0x10
        &[0x0f, 0x8c, 0x00, 0x01, 0x00, 0x00],       // jl +0x100
        &[0x7a, 0xf0],                               // jp -0x10
        &[0xeb, 0x05],                               // jmp +5
        &[0xe9, 0x00, 0xf0, 0xff, 0xff],             // jmp -0x1000
    ];
    const GENERAL: &[&[u8]] = &[
        &[0x48, 0x8b, 0x03], // mov rax, [rbx]
        &[0x48, 0x89, 0x03], // mov [rbx], rax
        &[0x48, 0x11, 0xd8], // adc rax, rbx
        &[0x8e, 0xd8],       // mov ds, eax
        &[0x0f, 0x20, 0xc0], // mov rax, cr0
        &[0xff, 0xe0],       // jmp rax
        &[0xe2, 0xfe],       // loop
        &[0x48, 0xff, 0xc0], // inc rax
    ];

    fn decode(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(64, bytes, 0x40_1000, DecoderOptions::NONE).decode()
    }

    /// A small deterministic generator for register values and flag states.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn each_form_does_what_the_interpreter_does() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let mut mem = FlatMemory::new(GuestRam::new(0x1000).unwrap());
        for bytes in FAST {
            let insn = decode(bytes);
            let form = FastOp::of(&insn);
            assert_ne!(form, FastOp::General, "{bytes:02x?}");
            for case in 0..200 {
                let mut cpu = CpuState::new_long_mode();
                cpu.rip = insn.ip();
                for reg in cpu.gpr.iter_mut() {
                    // Small values too, so compares come out equal sometimes.
                    *reg = if case % 3 == 0 {
                        next(&mut seed) & 3
                    } else {
                        next(&mut seed)
                    };
                }
                // Flags pending from an earlier instruction of each kind, INC/DEC included.
                let (a, b) = (next(&mut seed) & 0xff, next(&mut seed) & 0xff);
                let earlier = [CcOp::Add, CcOp::Sub, CcOp::Logic, CcOp::Inc, CcOp::Dec];
                let earlier = earlier[case % earlier.len()];
                cpu.flags.set(0x2 | (next(&mut seed) & 0x8d5));
                cpu.flags
                    .set_lazy(earlier, 1, a.wrapping_sub(b) & 0xff, a, b);
                let mut want = cpu.clone();
                super::super::execute(&mut want, &mut mem, &mut NoPlatform, &insn).unwrap();
                assert!(form.run(&mut cpu, &insn));
                assert_eq!(cpu, want, "{bytes:02x?} case {case}");
            }
        }
        for bytes in GENERAL {
            assert_eq!(FastOp::of(&decode(bytes)), FastOp::General, "{bytes:02x?}");
        }
    }
}
