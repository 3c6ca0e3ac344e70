//! Stack and control-transfer instructions translated inline (64-bit mode): PUSH, POP,
//! LEAVE, JMP, Jcc, CALL and RET (near). Branches end the block with its exits; a Jcc
//! tests the pending flags directly (see [`super::flags`]).

use super::integer::condition_nibble;
use super::{Flow, Translator};
use cranelift_codegen::ir::InstBuilder;
use iced_x86::{Code, Instruction, Mnemonic, OpKind};

/// RSP's index.
const RSP: usize = 4;
/// RBP's index.
const RBP: usize = 5;

impl Translator<'_, '_> {
    /// Translates a stack or branch instruction, or `None` to interpret it.
    pub(super) fn emit_control(&mut self, insn: &Instruction) -> Option<Flow> {
        match insn.mnemonic() {
            Mnemonic::Push if insn.stack_pointer_increment() == -8 => {
                let v = self.read_operand(0, 8)?;
                self.push(v);
                Some(Flow::Next)
            }
            Mnemonic::Pop
                if insn.stack_pointer_increment() == 8 && insn.op_kind(0) == OpKind::Register =>
            {
                let rsp = self.gpr(RSP);
                let v = self.load(rsp, 8);
                let up = self.add_offset(rsp, 8);
                self.set_gpr(RSP, up);
                self.write_reg(insn.op_register(0), v);
                Some(Flow::Next)
            }
            Mnemonic::Leave if insn.code() == Code::Leaveq => {
                let rbp = self.gpr(RBP);
                let v = self.load(rbp, 8);
                let up = self.add_offset(rbp, 8);
                self.set_gpr(RSP, up);
                self.set_gpr(RBP, v);
                Some(Flow::Next)
            }
            Mnemonic::Jmp if insn.op_kind(0) == OpKind::NearBranch64 => {
                self.exit_chained(insn.near_branch_target(), 0);
                Some(Flow::Terminated)
            }
            Mnemonic::Jmp => {
                let target = self.branch_target()?;
                self.exit_to(target);
                Some(Flow::Terminated)
            }
            Mnemonic::Call if insn.stack_pointer_increment() == -8 => {
                // A direct call chains like a JMP; the target operand is read (and may
                // fault) before the push.
                let target = match insn.op_kind(0) {
                    OpKind::NearBranch64 => None,
                    _ => Some(self.branch_target()?),
                };
                let ret = self.constant(insn.next_ip());
                self.push(ret);
                match target {
                    None => self.exit_chained(insn.near_branch_target(), 0),
                    Some(target) => self.exit_to(target),
                }
                Some(Flow::Terminated)
            }
            Mnemonic::Ret if insn.code() == Code::Retnq || insn.code() == Code::Retnq_imm16 => {
                let rsp = self.gpr(RSP);
                let target = self.load(rsp, 8);
                let release = 8 + i64::from(insn.immediate16());
                let release = if insn.op_count() == 1 { release } else { 8 };
                let up = self.add_offset(rsp, release);
                self.set_gpr(RSP, up);
                self.exit_to(target);
                Some(Flow::Terminated)
            }
            _ if insn.is_jcc_short_or_near() => {
                let cc = condition_nibble(insn)?;
                let taken = self.b.create_block();
                let not_taken = self.b.create_block();
                let c = self.condition(cc);
                self.b.ins().brif(c, taken, &[], not_taken, &[]);
                for (slot, (block, rip)) in [
                    (taken, insn.near_branch_target()),
                    (not_taken, insn.next_ip()),
                ]
                .into_iter()
                .enumerate()
                {
                    self.b.switch_to_block(block);
                    self.exit_chained(rip, slot);
                }
                Some(Flow::Terminated)
            }
            _ => None,
        }
    }

    /// The target of a near JMP/CALL: the decoded relative target, or a 64-bit register
    /// or memory operand.
    fn branch_target(&mut self) -> Option<cranelift_codegen::ir::Value> {
        match self.insn.op_kind(0) {
            OpKind::NearBranch64 => Some(self.constant(self.insn.near_branch_target())),
            OpKind::Register | OpKind::Memory if self.op_size(0) == 8 => self.read_operand(0, 8),
            _ => None,
        }
    }

    /// Stores `v` below RSP and moves RSP down (RSP changes only after the store).
    fn push(&mut self, v: cranelift_codegen::ir::Value) {
        let rsp = self.gpr(RSP);
        let down = self.add_offset(rsp, -8);
        self.store(down, 8, v);
        self.set_gpr(RSP, down);
    }
}
