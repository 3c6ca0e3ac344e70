//! The run-time context a translated block receives beside the CPU state: where the TLB
//! is, the memory and platform the helpers reach, and what a block leaves for the
//! dispatcher when it exits. Like `softvisor_cpu::offsets`, the offsets generated code uses
//! come from here and nowhere else.

use core::mem::offset_of;
use softvisor_cpu::{CpuState, Exception, Platform, StepOutcome};
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

/// The context of one dispatcher call. `#[repr(C)]` for the fields generated code reads.
#[repr(C)]
pub struct JitContext<'a> {
    /// The TLB entries (`[mode][index]`), or null: every access takes the slow path.
    pub tlb: *const TlbEntry,
    /// Written by the slow-path memory helpers, see [`status`].
    pub status: u64,
    /// The value the last slow-path load read (the preserve-all trampolines return
    /// nothing in registers).
    pub loaded: u64,
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
    /// The instruction count a block may not pass: a block whose length does not fit
    /// returns at its entry (chained blocks check it themselves).
    pub until: u64,
    /// Set by a block leaving through an unlinked direct exit: that exit's successor slot,
    /// the physical page of the block, and the target RIP, for the dispatcher to link.
    pub link: *mut u64,
    /// See [`JitContext::link`].
    pub link_page: u64,
    /// See [`JitContext::link`].
    pub link_rip: u64,
    /// The jump cache ([`crate::jump_cache`]), or null where blocks do not use it.
    pub jump_cache: *const crate::jump_cache::JumpEntry,
}

/// Offset of [`JitContext::tlb`].
pub const TLB: i32 = offset_of!(JitContext<'static>, tlb) as i32;
/// Offset of [`JitContext::status`].
pub const STATUS: i32 = offset_of!(JitContext<'static>, status) as i32;
/// Offset of [`JitContext::loaded`].
pub const LOADED: i32 = offset_of!(JitContext<'static>, loaded) as i32;
/// Offset of [`JitContext::until`].
pub const UNTIL: i32 = offset_of!(JitContext<'static>, until) as i32;
/// Offset of [`JitContext::link`].
pub const LINK: i32 = offset_of!(JitContext<'static>, link) as i32;
/// Offset of [`JitContext::link_page`].
pub const LINK_PAGE: i32 = offset_of!(JitContext<'static>, link_page) as i32;
/// Offset of [`JitContext::link_rip`].
pub const LINK_RIP: i32 = offset_of!(JitContext<'static>, link_rip) as i32;
/// Offset of [`JitContext::jump_cache`].
pub const JUMP_CACHE: i32 = offset_of!(JitContext<'static>, jump_cache) as i32;

impl<'a> JitContext<'a> {
    /// A context over one CPU, its memory and platform, for one dispatcher call.
    pub fn new(
        cpu: &mut CpuState,
        mem: &'a mut dyn Memory,
        platform: &'a mut dyn Platform,
        until: u64,
    ) -> Self {
        let tlb = mem.fast_tlb().map_or(core::ptr::null(), |tlb| {
            tlb.entries.as_ptr().cast::<TlbEntry>()
        });
        Self {
            tlb,
            status: status::OK,
            loaded: 0,
            cpu,
            mem,
            platform,
            exception: None,
            outcome: StepOutcome::Continue,
            until,
            link: core::ptr::null_mut(),
            link_page: 0,
            link_rip: 0,
            jump_cache: core::ptr::null(),
        }
    }
}
