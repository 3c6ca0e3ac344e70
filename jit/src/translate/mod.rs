//! The translator: one guest block to one Cranelift function.
//!
//! Guest registers are cached in SSA values while a block runs and written back only where
//! something else needs them: before an interpreter helper, and at exits. Flags stay lazy:
//! the last flag producer is known at translation time, so a following `jcc`, `setcc` or
//! `cmovcc` tests its operands directly, and only the last producer before an exit is
//! stored (in the interpreter's lazy form, so both engines share one representation).
//!
//! Instructions the translator does not handle inline run in the interpreter through
//! [`crate::helpers::interpret`], so every instruction the interpreter supports runs here.
//!
//! Exceptions stay precise: within one translated instruction every memory access happens
//! before any register or flag is changed, so when a slow-path access cannot be made as a
//! plain RAM access (a fault, MMIO, a write to a tracked code page) the state at the start
//! of the instruction is still in hand; the block writes it back and exits with
//! [`exit::INTERPRET`], and the interpreter redoes the instruction, raising the exact fault
//! or making the device access once.

mod bits;
mod control;
mod exchange;
mod flags;
mod integer;
mod memory;
mod muldiv;
mod shift;
mod sse;
mod string;
mod tsc;

use crate::context::{exit, JitContext};
use crate::helpers;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, InstBuilder, MemFlagsData, SigRef, Signature, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::FunctionBuilder;
use flags::Flags;
use iced_x86::{Instruction, Register};
use softvisor_cpu::offsets;
use std::ops::Range;

/// Facts about the guest mode a block was translated for (part of the block's key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mode {
    /// Code size: 16, 32 or 64.
    pub bitness: u32,
    /// TLB set of explicit accesses (`softvisor_mmu::tlb::tlb_set`: supervisor, user, or
    /// supervisor with SMAP overridden by RFLAGS.AC).
    pub tlb_mode: usize,
    /// Memory operands may probe the TLB inline (64-bit mode, a TLB present, no alignment
    /// checking).
    pub inline_memory: bool,
}

/// How one translated instruction left the block.
enum Flow {
    /// Inline code that continues with the next instruction (RIP not stored).
    Next,
    /// The interpreter ran it; RIP and everything else are in the CPU state.
    Interpreted,
    /// It emitted the block's exits itself.
    Terminated,
}

/// The register and flag cache at one point of the block.
#[derive(Clone)]
struct Cache {
    regs: [Option<Value>; 16],
    /// Registers written since they were last stored to the CPU state (bit n: GPR n).
    dirty: u16,
    flags: Flags,
    /// XMM registers as I8X16, written through to the state at once (`sse.rs`).
    xmm: [Option<Value>; 16],
}

impl Cache {
    /// Nothing cached: registers and flags are in the CPU state.
    const EMPTY: Cache = Cache {
        regs: [None; 16],
        dirty: 0,
        flags: Flags::InMemory,
        xmm: [None; 16],
    };
}

/// Where a block may jump straight to its successor (see [`crate::cache`] and
/// [`crate::jump_cache`]).
#[derive(Clone, Copy)]
pub struct Chaining {
    /// The successor slots (see [`crate::region::slot_bases`]: two for each guest block's
    /// end, taken and not taken, and one per side exit), or null: no chaining (and no
    /// jumps within a region).
    pub slots: *mut u64,
    /// Physical page of the block.
    pub page: u64,
    /// Whether exits to other targets may look them up in the jump cache.
    pub jump_cache: bool,
}

// SAFETY: the slots are only embedded as addresses in the IR of the block that owns them
// (possibly built on the compile thread); generated code uses them on the guest's thread.
unsafe impl Send for Chaining {}

pub use crate::backend::SlowPaths;

/// What an instruction crossing into the next page has there, as it was decoded: its
/// translation runs only while that page still maps there and holds these bytes (see
/// `guard_crossing_tail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrossingTail {
    /// RIP of the instruction.
    pub rip: u64,
    /// The linear address of the second page.
    pub page: u64,
    /// Its bytes there, from the page's start.
    pub bytes: [u8; 16],
    /// How many of `bytes` it has (1 to 14).
    pub len: usize,
}

/// One guest block of a region.
struct RegionBlock {
    rip: u64,
    /// Where the function enters or jumps to the block (with the CPU state's instruction
    /// count that of its entry).
    header: cranelift_codegen::ir::Block,
    /// Its instructions in the region's.
    range: Range<usize>,
    /// Where its successor slots start in the region's (see [`crate::region::slot_bases`]).
    slot_base: usize,
}

/// Signatures of the helpers generated code calls.
struct Sigs {
    /// Blocks themselves (tail calls to a chained successor).
    block: SigRef,
    interpret: SigRef,
    load: SigRef,
    store: SigRef,
    condition: SigRef,
    /// `fn(cpu, ctx) -> u64`: `rflags` and `interpret_fetched`.
    pointers_only: SigRef,
    /// `helpers::copy_guest`.
    copy: SigRef,
    /// `helpers::fill_guest`.
    fill: SigRef,
}

/// Translation state of one block.
pub(crate) struct Translator<'a, 'f> {
    b: &'a mut FunctionBuilder<'f>,
    cpu: Value,
    mode: Mode,
    cache: Cache,
    /// Instructions of the current guest block the CPU state's count already includes
    /// (those interpreted through the helper): the count is read back from the state where
    /// it is needed, rather than held in a register for the whole function.
    counted: usize,
    tlb: Option<Value>,
    sigs: Sigs,
    slow: SlowPaths,
    /// The exit redoing the current instruction in the interpreter, once one is needed.
    redo: Option<cranelift_codegen::ir::Block>,
    /// State at the start of the current instruction.
    start: Cache,
    /// Index of the current instruction in the block.
    index: usize,
    insn: Instruction,
    chaining: Chaining,
    /// The page of the region's code.
    page: u64,
    /// The region's guest blocks (see `emit_region`).
    blocks: Vec<RegionBlock>,
    /// Index of the guest block being translated.
    current: usize,
    /// Side exits of the current guest block translated so far.
    side_exits: usize,
    /// Where the guest block goes on after the current instruction, unless it is its last.
    continues_at: Option<u64>,
    /// Whether the SSE state checks were made since the last interpreted instruction.
    sse_checked: bool,
    /// The region's instruction crossing into the next page, if it has one.
    crossing: Option<CrossingTail>,
    /// Whether the instruction after the current one (in its guest block) replaces all
    /// six arithmetic flags without reading any.
    next_overwrites_flags: bool,
    /// The bytes a guest load's result (the merge of its fast and slow paths, a block
    /// parameter) can have non-zero: both paths zero-extend (0: not a narrow load).
    narrow_loads: cranelift_codegen::entity::SecondaryMap<Value, u8>,
}

/// Memory flags for the CPU state and context: always valid and aligned.
fn state_flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

impl<'a, 'f> Translator<'a, 'f> {
    fn signatures(
        b: &mut FunctionBuilder<'f>,
        call_conv: CallConv,
        ptr: Type,
        block_sig: Signature,
    ) -> Sigs {
        let block = b.import_signature(block_sig);
        let load = preserve_all(b, 4);
        let store = preserve_all(b, 4);
        let mut sig = |params: &[Type], ret: bool| {
            let mut s = Signature::new(call_conv);
            s.params.push(AbiParam::new(ptr));
            s.params.push(AbiParam::new(ptr));
            s.params.extend(params.iter().map(|&t| AbiParam::new(t)));
            if ret {
                s.returns.push(AbiParam::new(types::I64));
            }
            b.import_signature(s)
        };
        let i64 = types::I64;
        Sigs {
            block,
            interpret: sig(&[ptr], true),
            load,
            store,
            condition: sig(&[i64], true),
            pointers_only: sig(&[], true),
            copy: sig(&[ptr, ptr, i64], false),
            fill: sig(&[ptr, i64, i64, i64], false),
        }
    }

    /// Emits a region into `b`, whose entry block is current and has the CPU-state
    /// pointer `cpu`: the guest blocks `blocks` (ranges of `insns`,
    /// the entered one first, all on one page). A direct branch from one to another is a
    /// jump inside the function (see [`crate::region`]). `insns` must outlive the
    /// generated code.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit_region(
        b: &'a mut FunctionBuilder<'f>,
        call_conv: CallConv,
        block_sig: Signature,
        cpu: Value,
        mode: Mode,
        chaining: Chaining,
        slow: SlowPaths,
        insns: &[Instruction],
        blocks: &[Range<usize>],
        crossing: Option<CrossingTail>,
    ) {
        let ptr = types::I64;
        let sigs = Self::signatures(b, call_conv, ptr, block_sig);
        let tlb = mode
            .inline_memory
            .then(|| b.ins().load(ptr, state_flags(), cpu, crate::context::TLB));
        // Each guest block's header: entering it (from the function's entry, a loop or
        // another block of the region) comes here with registers, flags and the
        // instruction count in the CPU state.
        let (slot_bases, _) = crate::region::slot_bases(insns, blocks);
        let headers: Vec<RegionBlock> = blocks
            .iter()
            .zip(slot_bases)
            .map(|(range, slot_base)| RegionBlock {
                rip: insns[range.start].ip(),
                header: b.create_block(),
                range: range.clone(),
                slot_base,
            })
            .collect();
        b.ins().jump(headers[0].header, &[]);
        let empty = Cache::EMPTY;
        let mut t = Translator {
            b,
            cpu,
            mode,
            cache: empty.clone(),
            counted: 0,
            tlb,
            sigs,
            slow,
            redo: None,
            start: empty,
            index: 0,
            insn: Instruction::default(),
            chaining,
            page: headers[0].rip & !0xfff,
            blocks: headers,
            current: 0,
            side_exits: 0,
            continues_at: None,
            sse_checked: false,
            crossing,
            next_overwrites_flags: false,
            narrow_loads: Default::default(),
        };
        for n in 0..t.blocks.len() {
            t.emit_guest_block(n, &insns[t.blocks[n].range.clone()]);
        }
    }

    /// Emits region block `n`: its header's budget check, then its instructions and exits.
    fn emit_guest_block(&mut self, n: usize, insns: &[Instruction]) {
        let RegionBlock { rip, header, .. } = self.blocks[n];
        self.current = n;
        self.side_exits = 0;
        self.counted = 0;
        self.cache = Cache::EMPTY;
        self.sse_checked = false;
        self.b.switch_to_block(header);
        // A block that does not fit in the budget returns before its first instruction
        // (reached by chaining or a jump in the region; the dispatcher checks before it
        // enters one).
        let left = self.left_after(0);
        let over = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThan, left, insns.len() as i64);
        let stop = self.b.create_block();
        let body = self.b.create_block();
        self.b.set_cold_block(stop);
        self.b.ins().brif(over, stop, &[], body, &[]);
        self.b.switch_to_block(stop);
        // The state already holds the entry count.
        self.store_rip(rip);
        let normal = self.b.ins().iconst(types::I64, exit::NORMAL as i64);
        self.b.ins().return_(&[normal]);
        self.b.switch_to_block(body);
        let mut last = Flow::Next;
        let mut index = 0;
        while let Some(insn) = insns.get(index) {
            if crate::block::is_followed_jump(insn, insns.get(index + 1)) {
                // Decoding went on at its target, the next instruction: nothing to do but
                // count it (RIP is a constant wherever an exit stores it).
                index += 1;
                last = Flow::Next;
                continue;
            }
            let run = self.stack_run(&insns[index..]);
            if run > 1 {
                self.emit_stack_run(index, &insns[index..index + run]);
                index += run;
                last = Flow::Next;
                continue;
            }
            self.next_overwrites_flags =
                next_executed(insns, index + 1).is_some_and(overwrites_flags);
            self.continues_at = insns.get(index + 1).map(Instruction::ip);
            last = self.emit_insn(index, insn);
            if matches!(last, Flow::Terminated) {
                return;
            }
            index += 1;
        }
        let end = insns.last().map_or(0, |i| i.next_ip());
        match last {
            Flow::Next => self.exit_chained(end, 0),
            Flow::Interpreted if insns.last().is_some_and(may_chain_after) => {
                self.exit_after_interpreted(end)
            }
            _ => self.exit_with(None, insns.len(), exit::NORMAL),
        }
    }

    /// Ends the block after an interpreted last instruction that leaves the mode alone:
    /// straight on to the block at `next` when the interpreter left RIP there, else (a
    /// REP string instruction resuming itself, a branch) through the jump cache.
    fn exit_after_interpreted(&mut self, next: u64) {
        let rip = self
            .b
            .ins()
            .load(types::I64, state_flags(), self.cpu, offsets::RIP as i32);
        let straight = self.b.create_block();
        let elsewhere = self.b.create_block();
        let is_next = self.b.ins().icmp_imm_s(IntCC::Equal, rip, next as i64);
        self.b.ins().brif(is_next, straight, &[], elsewhere, &[]);
        self.b.switch_to_block(straight);
        self.exit_chained(next, 0);
        self.b.switch_to_block(elsewhere);
        self.exit_to(rip);
    }

    /// Translates one instruction, inline where possible.
    fn emit_insn(&mut self, index: usize, insn: &Instruction) -> Flow {
        if !registers_only(insn) {
            self.store_dirty();
        }
        self.index = index;
        self.insn = *insn;
        self.start = self.cache.clone();
        self.redo = None;
        // LOCK needs nothing more with one vCPU (the decoder already rejects it where it
        // is invalid).
        let mut fetched = crate::block::runs_fetched(insn, self.mode.bitness);
        let tail = self.crossing.filter(|tail| tail.rip == insn.ip());
        if let (true, Some(tail), Some(tlb)) = (fetched, tail, self.tlb) {
            self.guard_crossing_tail(tlb, &tail);
            fetched = false;
        }
        let flow = if self.mode.bitness == 64 && !fetched {
            self.emit_inline(insn)
        } else {
            None
        };
        let flow = match flow {
            Some(flow) => flow,
            None => self.emit_interpreted(insn, fetched),
        };
        self.finish_insn();
        flow
    }

    /// After an instruction: emit its redo exit if it needs one.
    fn finish_insn(&mut self) {
        if let Some(redo) = self.redo.take() {
            let current = self.b.current_block();
            self.b.switch_to_block(redo);
            let start = self.start.clone();
            self.emit_exit(&start, Some(self.insn.ip()), self.index, exit::INTERPRET);
            if let Some(current) = current {
                self.b.switch_to_block(current);
            }
        }
    }

    /// The block that redoes the current instruction in the interpreter.
    fn redo_block(&mut self) -> cranelift_codegen::ir::Block {
        if let Some(block) = self.redo {
            return block;
        }
        let block = self.b.create_block();
        self.b.set_cold_block(block);
        self.redo = Some(block);
        block
    }

    /// Runs `insn` through the interpreter helper; `fetched`: decoded afresh at run time (an
    /// instruction crossing into the next page, whose bytes there the block does not track).
    fn emit_interpreted(&mut self, insn: &Instruction, fetched: bool) -> Flow {
        self.flush();
        self.store_rip(insn.ip());
        self.store_retired(self.index);
        let ctx = self.ctx();
        let code = if fetched {
            let f = helpers::interpret_fetched as *const ();
            self.call_helper(self.sigs.pointers_only, f, &[self.cpu, ctx])
        } else {
            let insn_ptr = self
                .b
                .ins()
                .iconst(types::I64, insn as *const Instruction as i64);
            let f = helpers::interpret as *const ();
            self.call_helper(self.sigs.interpret, f, &[self.cpu, ctx, insn_ptr])
        };
        let code = code.expect("the interpreter helpers return an exit code");
        self.cache = Cache::EMPTY;
        self.sse_checked = false;
        let leave = self.b.create_block();
        let go_on = self.b.create_block();
        self.b.set_cold_block(leave);
        self.b.ins().brif(code, leave, &[], go_on, &[]);
        self.b.switch_to_block(leave);
        self.b.ins().return_(&[code]);
        self.b.switch_to_block(go_on);
        // The interpreter counted it.
        self.counted = self.index + 1;
        Flow::Interpreted
    }

    // ----- registers -----

    /// The 64-bit value of GPR `n`.
    fn gpr(&mut self, n: usize) -> Value {
        if let Some(v) = self.cache.regs[n] {
            return v;
        }
        let v = self
            .b
            .ins()
            .load(types::I64, state_flags(), self.cpu, offsets::gpr(n) as i32);
        self.cache.regs[n] = Some(v);
        v
    }

    /// Replaces the 64-bit value of GPR `n` in the cache; the CPU state gets it before the
    /// next instruction that touches memory or the stack (see `emit_insn`) or runs in the
    /// interpreter (`flush`), or at an exit (no other helper reads GPRs). So a run of register-only instructions stores each register once (an MD5
    /// round wrote the same register six times), while the exits of instructions with
    /// memory operands (most exits) find nothing to write back. An instruction writes
    /// registers only after its memory accesses, and its own exits write back the cache
    /// of its start.
    fn set_gpr(&mut self, n: usize, v: Value) {
        self.cache.regs[n] = Some(v);
        self.cache.dirty |= 1 << n;
    }

    /// Stores the registers written since they were last stored.
    fn store_dirty(&mut self) {
        let cache = self.cache.clone();
        self.store_registers(&cache);
        self.cache.dirty = 0;
    }

    /// Stores `cache`'s written registers to the CPU state.
    fn store_registers(&mut self, cache: &Cache) {
        for n in 0..16 {
            if let (true, Some(v)) = (cache.dirty & (1 << n) != 0, cache.regs[n]) {
                self.b
                    .ins()
                    .store(state_flags(), v, self.cpu, offsets::gpr(n) as i32);
            }
        }
    }

    /// Reads a general-purpose register of any width, zero-extended to 64 bits.
    fn read_reg(&mut self, reg: Register) -> Value {
        let (n, shift, size) = gpr_slot(reg);
        let full = self.gpr(n);
        let v = if shift != 0 {
            self.b.ins().ushr_imm_s(full, i64::from(shift))
        } else {
            full
        };
        self.mask(v, size)
    }

    /// Writes a general-purpose register with x86 rules: 32-bit writes zero-extend, 8- and
    /// 16-bit writes merge. `v` may carry garbage above the register's width.
    fn write_reg(&mut self, reg: Register, v: Value) {
        let n = gpr_slot(reg).0;
        let value = self.merged_reg(reg, v);
        self.set_gpr(n, value);
    }

    /// Writes `v` to `reg` (x86 rules) when `cond` (an I8) holds, else leaves the whole
    /// register as it was.
    fn write_reg_if(&mut self, cond: Value, reg: Register, v: Value) {
        let n = gpr_slot(reg).0;
        let old = self.gpr(n);
        let written = self.merged_reg(reg, v);
        let full = self.b.ins().select(cond, written, old);
        self.set_gpr(n, full);
    }

    /// The full 64-bit register `reg` belongs to after writing `v` to `reg`.
    fn merged_reg(&mut self, reg: Register, v: Value) -> Value {
        let (n, shift, size) = gpr_slot(reg);
        match size {
            8 => v,
            4 => self.mask(v, 4),
            _ => {
                let old = self.gpr(n);
                let field = size_mask(size) << shift;
                let kept = self.b.ins().band_imm_s(old, !field as i64);
                let low = self.mask(v, size);
                let placed = if shift != 0 {
                    self.b.ins().ishl_imm_s(low, i64::from(shift))
                } else {
                    low
                };
                self.b.ins().bor(kept, placed)
            }
        }
    }

    /// `v` truncated to `size` bytes (kept in an I64).
    fn mask(&mut self, v: Value, size: u32) -> Value {
        if size < 8
            && self
                .zero_extended_from(v)
                .is_some_and(|bytes| bytes <= size)
        {
            // Quick compiles keep every extension: a 32-bit register read and then
            // written (`mov eax, ebx`), or a MOVZX into one, would be extended twice.
            return v;
        }
        match size {
            8.. => v,
            // A 32-bit move zero-extends for free; the mask would be a constant-pool load.
            4 => {
                let low = self.b.ins().ireduce(types::I32, v);
                self.b.ins().uextend(types::I64, low)
            }
            _ => self.b.ins().band_imm_s(v, size_mask(size) as i64),
        }
    }

    /// The bytes that can be non-zero in `v`, when its definition says (a zero
    /// extension, a narrow load, a mask, a constant).
    fn zero_extended_from(&self, v: Value) -> Option<u32> {
        self.zero_extended_within(v, 3)
    }

    /// [`Self::zero_extended_from`], looking through at most `depth` logic operations (a
    /// value can be its own operand twice, so the walk must be bounded).
    fn zero_extended_within(&self, v: Value, depth: u32) -> Option<u32> {
        use cranelift_codegen::ir::{InstructionData, Opcode, ValueDef};
        if self.narrow_loads[v] != 0 {
            return Some(u32::from(self.narrow_loads[v]));
        }
        let dfg = &self.b.func.dfg;
        if let Some(narrow) = self.extended_from(v) {
            return Some(dfg.value_type(narrow).bytes());
        }
        let ValueDef::Result(inst, 0) = dfg.value_def(v) else {
            return None;
        };
        let bytes_of = |n: u64| (64 - n.leading_zeros()).div_ceil(8);
        match dfg.insts[inst] {
            InstructionData::Load { opcode, .. } => match opcode {
                Opcode::Uload8 => Some(1),
                Opcode::Uload16 => Some(2),
                Opcode::Uload32 => Some(4),
                _ => None,
            },
            InstructionData::UnaryImm {
                opcode: Opcode::Iconst,
                imm,
            } if dfg.value_type(v) == types::I64 => Some(bytes_of(imm.bits() as u64)),
            InstructionData::Binary {
                opcode: Opcode::Band,
                args: [x, y],
            } => {
                if let Some(mask) = self.constant_value(y) {
                    return Some(bytes_of(mask as u64));
                }
                let x = self.zero_extended_within(x, depth.checked_sub(1)?);
                let y = self.zero_extended_within(y, depth - 1);
                x.into_iter().chain(y).min()
            }
            // A logic result is no wider than its operands (`xor eax, ebx` written back).
            InstructionData::Binary {
                opcode: Opcode::Bor | Opcode::Bxor,
                args: [x, y],
            } => {
                let depth = depth.checked_sub(1)?;
                let x = self.zero_extended_within(x, depth)?;
                Some(x.max(self.zero_extended_within(y, depth)?))
            }
            _ => None,
        }
    }

    /// `v`'s low `size` bytes sign-extended to 64 bits.
    fn sign_extend(&mut self, v: Value, size: u32) -> Value {
        if size >= 8 {
            return v;
        }
        let narrow = types::Type::int_with_byte_size(size as u16).expect("1, 2 or 4 bytes");
        // One `movsx` (two shifts had been two instructions, and a 32-bit register read
        // a third for its zero extension, which the narrow value skips).
        let low = match self.extended_from(v) {
            Some(from) if self.b.func.dfg.value_type(from) == narrow => from,
            _ => self.b.ins().ireduce(narrow, v),
        };
        self.b.ins().sextend(types::I64, low)
    }

    /// `x` when `v` is `uextend(x)`.
    fn extended_from(&self, v: Value) -> Option<Value> {
        use cranelift_codegen::ir::{InstructionData, Opcode, ValueDef};
        let dfg = &self.b.func.dfg;
        let ValueDef::Result(inst, 0) = dfg.value_def(v) else {
            return None;
        };
        match dfg.insts[inst] {
            InstructionData::Unary {
                opcode: Opcode::Uextend,
                arg,
            } => Some(arg),
            _ => None,
        }
    }

    // ----- write-back and exits -----

    /// Writes `cache`'s written registers and pending flags to the CPU state (no state
    /// change of the translator: used on exit paths).
    fn write_back(&mut self, cache: &Cache) {
        self.store_registers(cache);
        self.store_flags(&cache.flags);
    }

    /// Writes everything back before a helper that reads the CPU state.
    fn flush(&mut self) {
        let cache = self.cache.clone();
        self.write_back(&cache);
        self.cache.dirty = 0;
        self.cache.flags = Flags::InMemory;
    }

    fn store_rip(&mut self, rip: u64) {
        let v = self.b.ins().iconst(types::I64, rip as i64);
        self.store_rip_value(v);
    }

    fn store_rip_value(&mut self, v: Value) {
        self.b
            .ins()
            .store(state_flags(), v, self.cpu, offsets::RIP as i32);
    }

    /// The instructions left in the budget after `retired` instructions of the current
    /// guest block (generated code counts down there, see [`crate::context::LEFT`]).
    fn left_after(&mut self, retired: usize) -> Value {
        let stored = self
            .b
            .ins()
            .load(types::I64, state_flags(), self.cpu, crate::context::LEFT);
        let more = retired as i64 - self.counted as i64;
        if more == 0 {
            stored
        } else {
            self.b.ins().iadd_imm_s(stored, -more)
        }
    }

    /// The instruction count after `retired` instructions of the current guest block.
    fn count_after(&mut self, retired: usize) -> Value {
        let until = self
            .b
            .ins()
            .load(types::I64, state_flags(), self.cpu, crate::context::UNTIL);
        let left = self.left_after(retired);
        self.b.ins().isub(until, left)
    }

    /// Counts `retired` instructions of the block as retired in the state.
    fn store_retired(&mut self, retired: usize) {
        if retired == self.counted {
            return;
        }
        let v = self.left_after(retired);
        self.b
            .ins()
            .store(state_flags(), v, self.cpu, crate::context::LEFT);
    }

    /// Ends the current path: writes `cache` back, sets RIP (when given) and the count of
    /// retired instructions, and returns `code`.
    fn emit_exit(&mut self, cache: &Cache, rip: Option<u64>, retired: usize, code: u64) {
        self.write_back(cache);
        if let Some(rip) = rip {
            self.store_rip(rip);
        }
        self.store_retired(retired);
        let code = self.b.ins().iconst(types::I64, code as i64);
        self.b.ins().return_(&[code]);
    }

    /// [`Self::emit_exit`] from the current cache.
    fn exit_with(&mut self, rip: Option<u64>, retired: usize, code: u64) {
        let cache = self.cache.clone();
        self.emit_exit(&cache, rip, retired, code);
    }

    /// Ends the block at a computed RIP after the current instruction: goes to the
    /// target's block when the jump cache has it, else returns to the dispatcher.
    fn exit_to(&mut self, rip: Value) {
        let cache = self.cache.clone();
        self.write_back(&cache);
        self.store_retired(self.index + 1);
        if let (true, Some(tlb)) = (self.chaining.jump_cache, self.tlb) {
            self.jump_through_cache(rip, tlb);
        }
        // Needed only on the way to the dispatcher (see `exit_chained`).
        self.store_rip_value(rip);
        let code = self.b.ins().iconst(types::I64, exit::NORMAL as i64);
        self.b.ins().return_(&[code]);
    }

    /// Tail-calls the block the jump cache holds for `rip` if its entry is current, else
    /// falls through (in a new current block) with the state already stored.
    fn jump_through_cache(&mut self, rip: Value, tlb: Value) {
        use crate::jump_cache::{self as jc, ENTRIES, ENTRY_SHIFT, HASH_SHIFT};
        let f = state_flags();
        let table = self
            .b
            .ins()
            .load(types::I64, f, self.cpu, crate::context::JUMP_CACHE);
        let set = ((self.mode.tlb_mode * ENTRIES) as i64) << ENTRY_SHIFT;
        let entry = match self.constant_value(rip) {
            // A direct jump or call to another page: its entry is known now (quick
            // compiles would hash the constant at run time).
            Some(target) => {
                let offset = set + ((jc::index(target as u64) as i64) << ENTRY_SHIFT);
                self.b.ins().iadd_imm_s(table, offset)
            }
            None => {
                // Rotated rather than shifted, as a TLB index is (`tlb_entry`): the bits
                // that wrap around fall outside the mask.
                let folded = self.b.ins().rotr_imm_s(rip, HASH_SHIFT);
                let hash = self.b.ins().bxor(rip, folded);
                let index = self.b.ins().band_imm_s(hash, (ENTRIES - 1) as i64);
                let offset = self.b.ins().ishl_imm_s(index, ENTRY_SHIFT);
                let offset = if set == 0 {
                    offset
                } else {
                    self.b.ins().iadd_imm_s(offset, set)
                };
                self.b.ins().iadd(table, offset)
            }
        };
        let entry_rip = self.b.ins().load(types::I64, f, entry, jc::RIP);
        let same_rip = self.b.ins().icmp(IntCC::Equal, entry_rip, rip);
        // Two compares and branches rather than their AND: each lowers to `cmp` and `jcc`
        // (the AND had materialized both results with `setcc` and tested them).
        let check_flushes = self.b.create_block();
        let found = self.b.create_block();
        let missed = self.b.create_block();
        self.b.ins().brif(same_rip, check_flushes, &[], missed, &[]);
        self.b.switch_to_block(check_flushes);
        let entry_flushes = self.b.ins().load(types::I64, f, entry, jc::FLUSHES);
        // The count the entry was filled under: all flushes, or (a global page) only those
        // that drop global translations.
        let counter = self.b.ins().load(types::I64, f, entry, jc::COUNTER);
        let counter = self.b.ins().iadd(tlb, counter);
        let flushes = self.b.ins().load(types::I64, f, counter, 0);
        let current = self.b.ins().icmp(IntCC::Equal, entry_flushes, flushes);
        self.b.ins().brif(current, found, &[], missed, &[]);
        self.b.switch_to_block(found);
        let code = self.b.ins().load(types::I64, f, entry, jc::CODE);
        self.b
            .ins()
            .return_call_indirect(self.sigs.block, code, &[self.cpu]);
        self.b.switch_to_block(missed);
    }

    /// Ends the block after the current instruction at the constant `rip`: jumps straight
    /// to the successor through slot `slot` when it is linked, else returns to the
    /// dispatcher asking it to link the slot. Only targets on the block's own page chain
    /// (a page's blocks are dropped together, so a link never outlives its target).
    fn exit_chained(&mut self, rip: u64, slot: usize) {
        let same_page = rip & !0xfff == self.page;
        let in_region = self.blocks.iter().find(|block| block.rip == rip);
        if let (Some(block), false) = (in_region, self.chaining.slots.is_null()) {
            // A loop or a branch within the region: a jump inside this function, with the
            // registers (already stored) and flags in the state.
            let header = block.header;
            let cache = self.cache.clone();
            self.write_back(&cache);
            self.store_retired(self.index + 1);
            self.b.ins().jump(header, &[]);
            return;
        }
        if self.chaining.slots.is_null() || !same_page {
            let target = self.constant(rip);
            return self.exit_to(target);
        }
        let cache = self.cache.clone();
        self.write_back(&cache);
        self.store_retired(self.index + 1);
        // The slot lives in the block's own allocation, as long as this code.
        let slot = self.blocks[self.current].slot_base + slot;
        let slot_addr = self.chaining.slots.wrapping_add(slot) as i64;
        let slot_addr = self.b.ins().iconst(types::I64, slot_addr);
        let next = self.b.ins().load(types::I64, state_flags(), slot_addr, 0);
        let linked = self.b.create_block();
        let unlinked = self.b.create_block();
        self.b.ins().brif(next, linked, &[], unlinked, &[]);
        self.b.switch_to_block(linked);
        self.b
            .ins()
            .return_call_indirect(self.sigs.block, next, &[self.cpu]);
        self.b.switch_to_block(unlinked);
        // Only the dispatcher reads RIP between blocks: every exit to it stores RIP (or
        // leaves the interpreter's), so a linked successor does not need it.
        self.store_rip(rip);
        let f = state_flags();
        let ctx = self.ctx();
        self.b.ins().store(f, slot_addr, ctx, crate::context::LINK);
        let page = self.b.ins().iconst(types::I64, self.chaining.page as i64);
        self.b.ins().store(f, page, ctx, crate::context::LINK_PAGE);
        let target = self.b.ins().iconst(types::I64, rip as i64);
        self.b.ins().store(f, target, ctx, crate::context::LINK_RIP);
        let code = self.b.ins().iconst(types::I64, exit::NORMAL as i64);
        self.b.ins().return_(&[code]);
    }

    /// Branches to the redo exit when `bad` is true, else continues.
    fn redo_if(&mut self, bad: Value) {
        let redo = self.redo_block();
        self.unless(bad, redo);
    }

    /// Goes to `to` when `cond` (an integer) is non-zero, else on in a new current block.
    fn unless(&mut self, cond: Value, to: cranelift_codegen::ir::Block) {
        let on = self.b.create_block();
        self.b.ins().brif(cond, to, &[], on, &[]);
        self.b.switch_to_block(on);
    }

    /// The context pointer, loaded from the CPU state where a cold path needs it (see
    /// [`crate::context::CTX`]): the function's own argument is left dead at entry, so it
    /// holds no host register through the block.
    fn ctx(&mut self) -> Value {
        self.b
            .ins()
            .load(types::I64, state_flags(), self.cpu, crate::context::CTX)
    }

    /// A call to helper `f` with signature `sig`.
    fn call_helper(&mut self, sig: SigRef, f: *const (), args: &[Value]) -> Option<Value> {
        let callee = self.b.ins().iconst(types::I64, f as i64);
        let call = self.b.ins().call_indirect(sig, callee, args);
        self.b.inst_results(call).first().copied()
    }
}

/// Whether `insn` only reads and writes registers (no memory operand, no stack), so that
/// registers written before it need not be in the CPU state yet (see `set_gpr`): its
/// translation has no slow path, and its rare exits (a divide error) write them back.
fn registers_only(insn: &Instruction) -> bool {
    use iced_x86::{Mnemonic, OpKind};
    // LEA and the long NOPs have a memory operand but access nothing.
    if matches!(insn.mnemonic(), Mnemonic::Lea | Mnemonic::Nop) {
        return true;
    }
    !insn.is_stack_instruction()
        && (0..insn.op_count()).all(|op| {
            !matches!(
                insn.op_kind(op),
                OpKind::Memory
                    | OpKind::MemorySegSI
                    | OpKind::MemorySegESI
                    | OpKind::MemorySegRSI
                    | OpKind::MemorySegDI
                    | OpKind::MemorySegEDI
                    | OpKind::MemorySegRDI
                    | OpKind::MemoryESDI
                    | OpKind::MemoryESEDI
                    | OpKind::MemoryESRDI
            )
        })
}

/// The signature of a preserve-all slow-path trampoline of `args` I64 parameters.
fn preserve_all(b: &mut FunctionBuilder, args: usize) -> SigRef {
    let mut s = Signature::new(CallConv::PreserveAll);
    s.params = vec![AbiParam::new(types::I64); args];
    b.import_signature(s)
}

/// Whether a block ending in the interpreted `insn` may go on to the next block without
/// the dispatcher: the instruction changes no mode bit, interrupt state or code mapping
/// (it ended the block only for the page, the size cap, or as a REP string instruction).
/// A page-crossing instruction is decoded again when it runs; its helper returns to the
/// dispatcher itself when the fresh instruction is not of this kind.
pub(crate) fn may_chain_after(insn: &Instruction) -> bool {
    crate::block::ends_block(insn).is_none() || crate::block::is_repeated_string(insn)
}

/// The first instruction from `insns[from]` on that runs, past followed JMPs (which
/// translate to nothing): `inc edx; jmp 1f; 1: cmp byte [rdi], 0` had computed INC's
/// carry at every run for a CMP that replaces it.
fn next_executed(insns: &[Instruction], from: usize) -> Option<&Instruction> {
    (from..insns.len())
        .find(|&k| !crate::block::is_followed_jump(&insns[k], insns.get(k + 1)))
        .map(|k| &insns[k])
}

/// Whether `insn` sets all six arithmetic flags from its operands alone (reading none):
/// the arithmetic and logic group, NEG, and SHL/SHR/SAR by a constant that is not zero
/// once masked (as `shift.rs` translates them; a zero count keeps the flags).
fn overwrites_flags(insn: &Instruction) -> bool {
    use iced_x86::{Mnemonic, OpKind};
    match insn.mnemonic() {
        Mnemonic::Add
        | Mnemonic::Sub
        | Mnemonic::Cmp
        | Mnemonic::Test
        | Mnemonic::And
        | Mnemonic::Or
        | Mnemonic::Xor
        | Mnemonic::Neg => true,
        Mnemonic::Shl | Mnemonic::Sal | Mnemonic::Shr | Mnemonic::Sar => {
            let mask = if insn.op0_register().size() == 8 || insn.memory_size().size() == 8 {
                63
            } else {
                31
            };
            match insn.op_count() {
                1 => true,
                _ => insn.op_kind(1) == OpKind::Immediate8 && insn.immediate8() & mask != 0,
            }
        }
        _ => false,
    }
}

/// Mask of the low `size` bytes.
fn size_mask(size: u32) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    }
}

/// GPR index, bit shift (8 for AH..BH) and size in bytes of an iced GPR.
fn gpr_slot(reg: Register) -> (usize, u32, u32) {
    let n = |base: Register| reg as usize - base as usize;
    if reg.is_gpr64() {
        (n(Register::RAX), 0, 8)
    } else if reg.is_gpr32() {
        (n(Register::EAX), 0, 4)
    } else if reg.is_gpr16() {
        (n(Register::AX), 0, 2)
    } else {
        match n(Register::AL) {
            i @ 0..=3 => (i, 0, 1),
            i @ 4..=7 => (i - 4, 8, 1),
            i => (i - 4, 0, 1),
        }
    }
}

/// Whether `reg` is a general-purpose register the translator can address.
fn is_gpr(reg: Register) -> bool {
    reg.is_gpr8() || reg.is_gpr16() || reg.is_gpr32() || reg.is_gpr64()
}

/// Signature type for [`JitContext`] pointers (checked: the context is pointer-sized
/// fields only, so I64 pointers are right on every 64-bit host we build for).
const _: () = assert!(core::mem::size_of::<*const JitContext<'static>>() == 8);

#[cfg(test)]
mod tests {
    use super::registers_only;
    use iced_x86::{Decoder, DecoderOptions};

    fn decode(bytes: &[u8]) -> iced_x86::Instruction {
        Decoder::with_ip(64, bytes, 0x1000, DecoderOptions::NONE).decode()
    }

    #[test]
    fn only_instructions_without_memory_or_stack_access_defer_register_stores() {
        let only = |bytes: &[u8]| registers_only(&decode(bytes));
        assert!(only(&[0x01, 0xc8])); // add eax, ecx
        assert!(only(&[0x41, 0xc1, 0xc1, 0x04])); // rol r9d, 4
        assert!(only(&[0x48, 0x8d, 0x43, 0x08])); // lea rax, [rbx+8]
        assert!(only(&[0x0f, 0x1f, 0x40, 0x00])); // nop dword [rax]
        assert!(!only(&[0x03, 0x53, 0xf8])); // add edx, [rbx-8]
        assert!(!only(&[0x44, 0x89, 0x7c, 0x24, 0xfc])); // mov [rsp-4], r15d
        assert!(!only(&[0x50])); // push rax
        assert!(!only(&[0xc3])); // ret
        assert!(!only(&[0xa4])); // movsb
        assert!(!only(&[0xd7])); // xlat
    }
}
