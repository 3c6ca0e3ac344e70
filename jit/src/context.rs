//! The run-time context a translated block receives beside the CPU state: where the TLB
//! is, the memory and platform the helpers reach, and what a block leaves for the
//! dispatcher when it exits. Like `softvisor_cpu::offsets`, the offsets generated code uses
//! come from here and nowhere else.

use core::mem::offset_of;
use softvisor_cpu::{offsets, CpuState, Exception, Platform, StepOutcome};
use softvisor_mmu::tlb::TlbEntry;
use softvisor_mmu::Memory;

/// A block's return value: how it ended.
pub mod exit {
    /// Returned by an inline helper only: the block goes on.
    pub const CONTINUE: u64 = 0;
    /// The state is complete at an instruction boundary; dispatch the next block.
    pub const NORMAL: u64 = 1;
    /// An interpreted instruction raised [`super::JitContext::exception`]; RIP points at it
    /// and the instructions before it have retired.
    pub const FAULT: u64 = 2;
    /// An interpreted instruction ended with [`super::JitContext::outcome`] (HLT, a stop
    /// request, shutdown); the state is complete after it.
    pub const OUTCOME: u64 = 3;
    /// The state is at the start of an instruction the translated code did not finish (a
    /// slow-path access faulted, or a case the inline code leaves alone): the dispatcher runs
    /// it in the interpreter, which raises the exact fault.
    pub const INTERPRET: u64 = 4;
}

/// What a slow-path memory helper reports in [`JitContext::status`].
pub mod status {
    /// Done.
    pub const OK: u64 = 0;
    /// Not done (a fault, MMIO, a code-page write): the block leaves and the interpreter
    /// redoes the instruction.
    pub const REDO: u64 = 2;
}

/// What generated code reads on its hot path lives in the CPU state's engine words
/// (`CpuState::engine`), reached from the state's pointer, which every block holds anyway:
/// the context's own pointer is then needed only on cold paths (slow accesses, exits that
/// ask for a link), and no longer holds a host register through every block.
mod word {
    pub const TLB: usize = 0;
    pub const UNTIL: usize = 1;
    pub const JUMP_CACHE: usize = 2;
    pub const CTX: usize = 3;
    pub const LEFT: usize = 4;
}

/// Offset in the CPU state of the TLB entries (`[mode][index]`), or null: every access
/// takes the slow path.
pub const TLB: i32 = offsets::engine_word(word::TLB) as i32;
/// Offset in the CPU state of the instruction count the run may not pass.
pub const UNTIL: i32 = offsets::engine_word(word::UNTIL) as i32;
/// Offset in the CPU state of the instructions left before [`UNTIL`]: while generated code
/// runs it counts retired instructions here, not in `CpuState::icount` (which
/// [`icount_from_left`] brings up to date), so a block's budget check is one load and one
/// compare with its length, where the count and the limit had been two loads, an add and a
/// compare.
pub const LEFT: i32 = offsets::engine_word(word::LEFT) as i32;
/// Offset in the CPU state of the jump cache ([`crate::jump_cache`]), or null where blocks
/// do not use it.
pub const JUMP_CACHE: i32 = offsets::engine_word(word::JUMP_CACHE) as i32;

/// Offset in the CPU state of the run's [`JitContext`].
pub const CTX: i32 = offsets::engine_word(word::CTX) as i32;

/// Sets the engine words for a run of generated code.
pub fn enter(
    cpu: &mut CpuState,
    tlb: *const TlbEntry,
    until: u64,
    jump_cache: *const crate::jump_cache::JumpEntry,
    ctx: *mut JitContext<'_>,
) {
    cpu.engine[word::CTX] = ctx as usize as u64;
    cpu.engine[word::TLB] = tlb as usize as u64;
    cpu.engine[word::UNTIL] = until;
    cpu.engine[word::JUMP_CACHE] = jump_cache as usize as u64;
    left_from_icount(cpu);
}

/// Brings `CpuState::icount` up to date from the instructions left (generated code counts
/// there), before Rust code that reads or counts it runs.
pub fn icount_from_left(cpu: &mut CpuState) {
    cpu.icount = cpu.engine[word::UNTIL].wrapping_sub(cpu.engine[word::LEFT]);
}

/// Sets the instructions left from `CpuState::icount`, after Rust code that counted there
/// and before generated code goes on.
pub fn left_from_icount(cpu: &mut CpuState) {
    cpu.engine[word::LEFT] = cpu.engine[word::UNTIL].wrapping_sub(cpu.icount);
}

/// Brings the count up to date and clears the engine words after a run, so the state
/// compares with the interpreter's.
pub fn leave(cpu: &mut CpuState) {
    icount_from_left(cpu);
    cpu.engine = [0; softvisor_cpu::state::ENGINE_WORDS];
}

/// The context of one dispatcher call. `#[repr(C)]` for the fields generated code reads.
#[repr(C)]
pub struct JitContext<'a> {
    /// Written by the slow-path memory helpers, see [`status`].
    pub status: u64,
    /// The value a slow-path store writes, or the one a slow-path load read: the
    /// preserve-all trampolines return nothing in registers, and a store's value passed
    /// in one had to be in that argument register at the call, which cost the fast path
    /// copies to keep it elsewhere afterwards.
    pub slow_value: u64,
    /// The guest CPU.
    pub cpu: *mut CpuState,
    /// Guest memory.
    pub mem: *mut (dyn Memory + 'a),
    /// The machine's ports, MSRs and interrupt controller.
    pub platform: *mut (dyn Platform + 'a),
    /// The exception an interpreted instruction raised ([`exit::FAULT`]).
    pub exception: Option<Exception>,
    /// The outcome of an interpreted instruction ([`exit::OUTCOME`]).
    pub outcome: StepOutcome,
    /// Set by a block leaving through an unlinked direct exit: that exit's successor slot,
    /// the physical page of the block, and the target RIP, for the dispatcher to link.
    pub link: *mut u64,
    /// See [`JitContext::link`].
    pub link_page: u64,
    /// See [`JitContext::link`].
    pub link_rip: u64,
}

/// Offset of [`JitContext::status`].
pub const STATUS: i32 = offset_of!(JitContext<'static>, status) as i32;
/// Offset of [`JitContext::slow_value`].
pub const SLOW_VALUE: i32 = offset_of!(JitContext<'static>, slow_value) as i32;
/// Offset of [`JitContext::link`].
pub const LINK: i32 = offset_of!(JitContext<'static>, link) as i32;
/// Offset of [`JitContext::link_page`].
pub const LINK_PAGE: i32 = offset_of!(JitContext<'static>, link_page) as i32;
/// Offset of [`JitContext::link_rip`].
pub const LINK_RIP: i32 = offset_of!(JitContext<'static>, link_rip) as i32;

impl<'a> JitContext<'a> {
    /// A context over one CPU, its memory and platform, for one dispatcher call; the
    /// caller sets the engine words ([`enter`]).
    pub fn new(
        cpu: &mut CpuState,
        mem: &'a mut dyn Memory,
        platform: &'a mut dyn Platform,
    ) -> Self {
        Self {
            status: status::OK,
            slow_value: 0,
            cpu,
            mem,
            platform,
            exception: None,
            outcome: StepOutcome::Continue,
            link: core::ptr::null_mut(),
            link_page: 0,
            link_rip: 0,
        }
    }
}
