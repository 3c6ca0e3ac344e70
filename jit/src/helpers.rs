//! The Rust functions translated code calls: the interpreter on one decoded instruction,
//! the slow path of a memory access, and flag evaluation when the producer of the flags is
//! not known at translation time. Each says what state it reads and writes, so the
//! translator knows what to write back before the call and what to reload after it.
//!
//! All take the block's own two arguments first, the CPU state and the [`JitContext`], so
//! that a call leaves them in the registers they arrive in (the memory slow paths through
//! preserve-all trampolines that drop the first), and use the C calling convention of the
//! host.

use crate::context::{exit, status, JitContext};
use iced_x86::Instruction;
use softvisor_cpu::interp::{decode_at, execute};
use softvisor_cpu::{CpuState, Exception, StepOutcome};

/// Whether `addr` is a canonical 48-bit linear address.
fn is_canonical(addr: u64) -> bool {
    ((addr as i64) << 16 >> 16) as u64 == addr
}

/// Runs one instruction in the interpreter. Reads and writes the whole CPU state (the
/// caller writes every register back first and reloads after); returns an [`exit`] code,
/// or [`exit::CONTINUE`].
///
/// # Safety
/// `ctx` must be the live context of the running block and `insn` a decoded instruction
/// whose IP is the CPU's RIP.
pub unsafe extern "C" fn interpret(
    _cpu: *mut CpuState,
    ctx: *mut JitContext<'_>,
    insn: *const Instruction,
) -> u64 {
    // SAFETY: the caller passes the context of the running block, whose pointers are valid
    // and not otherwise borrowed while generated code runs.
    let ctx = unsafe { &mut *ctx };
    // SAFETY: as above; the CPU, memory and platform are distinct objects.
    let cpu = unsafe { &mut *ctx.cpu };
    // SAFETY: as above.
    let mem = unsafe { &mut *ctx.mem };
    // SAFETY: as above.
    let platform = unsafe { &mut *ctx.platform };
    // SAFETY: `insn` points into the block's instruction list, alive as long as its code.
    let insn = unsafe { &*insn };
    crate::context::icount_from_left(cpu);
    let result = execute(cpu, mem, platform, insn);
    crate::context::left_from_icount(cpu);
    exit_of(ctx, mem, result)
}

/// [`interpret`] on the instruction at CS:RIP decoded afresh from guest memory: for an
/// instruction that crosses into a page its block does not track, so its bytes there may
/// have changed since translation. Reads and writes the whole CPU state.
///
/// # Safety
/// `ctx` must be the live context of the running block.
pub unsafe extern "C" fn interpret_fetched(_cpu: *mut CpuState, ctx: *mut JitContext<'_>) -> u64 {
    // SAFETY: as in `interpret`.
    let ctx = unsafe { &mut *ctx };
    // SAFETY: as in `interpret`.
    let cpu = unsafe { &mut *ctx.cpu };
    // SAFETY: as in `interpret`.
    let mem = unsafe { &mut *ctx.mem };
    // SAFETY: as in `interpret`.
    let platform = unsafe { &mut *ctx.platform };
    let fresh = decode_at(cpu, mem);
    crate::context::icount_from_left(cpu);
    let result = fresh.and_then(|insn| execute(cpu, mem, platform, &insn));
    crate::context::left_from_icount(cpu);
    match (exit_of(ctx, mem, result), fresh) {
        // The block goes on as after its own last instruction only if this one, too,
        // leaves the mode alone (see `translate::may_chain_after`).
        (exit::CONTINUE, Ok(insn)) if !crate::translate::may_chain_after(&insn) => exit::NORMAL,
        (code, _) => code,
    }
}

/// The exit code of an interpreted instruction's `result`, recording its outcome or
/// exception in `ctx`.
fn exit_of(
    ctx: &mut JitContext<'_>,
    mem: &mut dyn softvisor_mmu::Memory,
    result: Result<StepOutcome, Exception>,
) -> u64 {
    match result {
        Ok(StepOutcome::Continue) if mem.take_side_exit() => exit::NORMAL,
        Ok(StepOutcome::Continue) => exit::CONTINUE,
        Ok(outcome) => {
            ctx.outcome = outcome;
            exit::OUTCOME
        }
        Err(exception) => {
            ctx.exception = Some(exception);
            exit::FAULT
        }
    }
}

/// The slow path of a `size`-byte load at linear `addr` in 64-bit mode: makes it if it is
/// a plain RAM access ([`softvisor_mmu::Memory::read_plain`]), else sets
/// [`JitContext::status`] to [`status::REDO`] having done nothing, and the block redoes the
/// instruction in the interpreter (which raises a fault, or reaches MMIO and stops the
/// block after the instruction). Touches only memory.
///
/// # Safety
/// `ctx` must be the live context of the running block.
pub unsafe extern "C" fn load(ctx: *mut JitContext<'_>, addr: u64, size: u64) -> u64 {
    // SAFETY: the live context of the running block (see `interpret`).
    let ctx = unsafe { &mut *ctx };
    // SAFETY: the memory outlives the block and nothing else borrows it meanwhile.
    let mem = unsafe { &mut *ctx.mem };
    let value = is_canonical(addr)
        .then(|| mem.read_plain(addr, size as usize))
        .flatten();
    value.unwrap_or_else(|| {
        ctx.status = status::REDO;
        0
    })
}

/// The slow path of a `size`-byte store of the context's `slow_value` at linear `addr` in
/// 64-bit mode: as [`load`], with [`softvisor_mmu::Memory::write_plain`] (a write to a
/// tracked code page is redone too, so the interpreter reports it). Touches only memory.
///
/// # Safety
/// `ctx` must be the live context of the running block.
pub unsafe extern "C" fn store(ctx: *mut JitContext<'_>, addr: u64, size: u64) {
    // SAFETY: the live context of the running block (see `interpret`).
    let ctx = unsafe { &mut *ctx };
    let value = ctx.slow_value;
    // SAFETY: the memory outlives the block and nothing else borrows it meanwhile.
    let mem = unsafe { &mut *ctx.mem };
    if !(is_canonical(addr) && mem.write_plain(addr, size as usize, value)) {
        ctx.status = status::REDO;
    }
}

/// Evaluates condition code `cc` on the flags in the CPU state. Reads only RFLAGS (the
/// caller writes pending flags back first).
///
/// # Safety
/// `cpu` must be the CPU state of the running block.
pub unsafe extern "C" fn condition(
    cpu: *const CpuState,
    _ctx: *mut JitContext<'_>,
    cc: u64,
) -> u64 {
    // SAFETY: the running block's CPU state, valid and not otherwise borrowed meanwhile.
    let cpu = unsafe { &*cpu };
    u64::from(cpu.flags.condition(cc as u8))
}

/// The full RFLAGS value of the CPU state. Reads only RFLAGS.
///
/// # Safety
/// `cpu` must be the CPU state of the running block.
pub unsafe extern "C" fn rflags(cpu: *const CpuState, _ctx: *mut JitContext<'_>) -> u64 {
    // SAFETY: the running block's CPU state, valid and not otherwise borrowed meanwhile.
    let cpu = unsafe { &*cpu };
    cpu.flags.get()
}

/// REP MOVS's copy of `bytes` bytes from host address `src` to `dst`, for a run the
/// block's TLB probes found inside one RAM page each way and whose destination does not
/// overlap the source from above (see `translate::string`): there a move leaves what the
/// element-by-element copy leaves. Touches only that memory.
///
/// # Safety
/// `src` and `dst` must be host addresses of `bytes` bytes of guest RAM each.
pub unsafe extern "C" fn copy_guest(
    _cpu: *mut CpuState,
    _ctx: *mut JitContext<'_>,
    dst: *mut u8,
    src: *const u8,
    bytes: u64,
) {
    // SAFETY: both runs are guest RAM (the caller's TLB hits), which no reference
    // borrows while generated code runs; `copy` allows them to overlap.
    unsafe { core::ptr::copy(src, dst, bytes as usize) }
}

/// REP STOS's fill of `bytes` bytes at host address `dst` with the low `size` bytes (1,
/// 2, 4 or 8) of `value` repeated. Touches only that memory.
///
/// # Safety
/// `dst` must be the host address of `bytes` bytes of guest RAM.
pub unsafe extern "C" fn fill_guest(
    _cpu: *mut CpuState,
    _ctx: *mut JitContext<'_>,
    dst: *mut u8,
    value: u64,
    size: u64,
    bytes: u64,
) {
    // SAFETY: the run is guest RAM (the caller's TLB hit), which no reference borrows
    // while generated code runs.
    let run = unsafe { core::slice::from_raw_parts_mut(dst, bytes as usize) };
    softvisor_mmu::fill_repeated(run, &value.to_le_bytes()[..size as usize]);
}
