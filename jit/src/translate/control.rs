//! Stack and control-transfer instructions translated inline (64-bit mode): PUSH, POP,
//! LEAVE, JMP, Jcc, CALL and RET (near). Branches end the block with its exits, except a
//! Jcc inside a block: a side exit to one way while the block goes on at the other. A Jcc
//! tests the pending flags directly (see [`super::flags`]). A run of PUSHes or POPs of
//! registers (a function's prologue or epilogue) probes the TLB once for all its slots.

use super::integer::condition_nibble;
use super::memory::{Access, Extent};
use super::{Flow, Translator};
use cranelift_codegen::entity::EntityRef;
use cranelift_codegen::ir::{types, Block, BlockArg, InstBuilder, Value};
use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register};

/// The most PUSHes or POPs one probe covers.
const MAX_STACK_RUN: usize = 8;

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
                if let Some(continues_at) = self.continues_at {
                    // A side exit to the way the block does not go on at (see
                    // `crate::region::form`), its slot after the two of the block's end.
                    let exit = crate::region::side_exit_target(insn, continues_at);
                    let (leave, go_on) = if exit == insn.next_ip() {
                        (not_taken, taken)
                    } else {
                        (taken, not_taken)
                    };
                    self.b.switch_to_block(leave);
                    let slot = 2 + self.side_exits;
                    self.side_exits += 1;
                    self.exit_chained(exit, slot);
                    self.b.switch_to_block(go_on);
                    return Some(Flow::Next);
                }
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

    /// How many of `insns` (from the first) form a run of PUSH or POP of 64-bit registers
    /// other than RSP that one TLB probe can cover: 0 or 1 when there is no such run.
    pub(super) fn stack_run(&self, insns: &[Instruction]) -> usize {
        if self.mode.bitness != 64 || self.tlb.is_none() {
            return 0;
        }
        let code = match insns.first().map(Instruction::code) {
            Some(code @ (Code::Push_r64 | Code::Pop_r64)) => code,
            _ => return 0,
        };
        let crossing = self.crossing.map(|tail| tail.rip);
        insns
            .iter()
            .take(MAX_STACK_RUN)
            .take_while(|i| {
                i.code() == code && i.op0_register() != Register::RSP && Some(i.ip()) != crossing
            })
            .count()
    }

    /// Translates a run of PUSHes or POPs (see [`Translator::stack_run`]), the first at
    /// `first` in the block: one probe for the run's whole extent, then plain loads or
    /// stores; if it misses (a TLB miss, the extent crossing a page), each instruction is
    /// translated alone, with its own probe, slow path and exact fault. Both ways store the
    /// registers they write in the state as they write them, leave the flags alone, and
    /// meet with the new RSP as the one block parameter.
    pub(super) fn emit_stack_run(&mut self, first: usize, run: &[Instruction]) {
        let tlb = self.tlb.expect("stack runs need the inline TLB");
        let push = run[0].code() == Code::Push_r64;
        let n = run.len() as i64;
        let rsp = self.gpr(RSP);
        // Read before the split, so both ways use (and the merge may keep) these values.
        let pushed: Vec<Value> = if push {
            run.iter()
                .map(|i| self.read_reg(i.op0_register()))
                .collect()
        } else {
            Vec::new()
        };
        // Both ways leave registers in the state (the merge takes only RSP as a value).
        self.store_dirty();
        let before = self.cache.clone();
        let merge = self.b.create_block();
        // Only RSP passes to the merge as a value: a popped register is in the state
        // either way (stored before it), and holding every popped value to the merge had
        // kept them all in registers at once.
        let rsp_after = self.b.append_block_param(merge, types::I64);
        let miss = self.b.create_block();
        self.b.set_cold_block(miss);
        let low = self.add_offset(rsp, if push { -8 * n } else { 0 });
        let kind = if push { Access::Write } else { Access::Read };
        let host = self.tlb_hit(tlb, low, Extent::Bytes(8 * n as u32), kind, miss);
        for (k, insn) in run.iter().enumerate() {
            let k = k as i64;
            if push {
                // The k-th PUSH stores below the k before it: the highest slot first.
                let slot = self.add_offset(host, 8 * (n - 1 - k));
                self.host_store(slot, 8, pushed[k as usize]);
            } else {
                let slot = self.add_offset(host, 8 * k);
                let v = self.host_load(slot, 8);
                self.write_reg(insn.op0_register(), v);
            }
        }
        let end = self.add_offset(rsp, if push { -8 * n } else { 8 * n });
        self.set_gpr(RSP, end);
        self.store_dirty();
        self.b.ins().jump(merge, &[BlockArg::Value(end)]);
        // Each instruction alone, all of it out of the hot path's way.
        self.b.switch_to_block(miss);
        self.cache = before.clone();
        let first_slow_block = self.b.func.dfg.num_blocks();
        for (k, insn) in run.iter().enumerate() {
            let flow = self.emit_insn(first + k, insn);
            debug_assert!(matches!(flow, Flow::Next));
        }
        for n in first_slow_block..self.b.func.dfg.num_blocks() {
            self.b.set_cold_block(Block::new(n));
        }
        let slow_rsp = self.gpr(RSP);
        self.store_dirty();
        self.b.ins().jump(merge, &[BlockArg::Value(slow_rsp)]);
        self.b.switch_to_block(merge);
        self.cache = before;
        if !push {
            for insn in run {
                self.cache.regs[super::gpr_slot(insn.op0_register()).0] = None;
            }
        }
        self.cache.regs[RSP] = Some(rsp_after);
    }
}
