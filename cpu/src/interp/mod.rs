//! The reference interpreter: fetch, decode with iced-x86, execute one instruction.
//!
//! Each instruction group lives in its own file. [`step`] keeps exceptions precise: it
//! snapshots the integer state first and restores it if the instruction faults, and every
//! group computes its results before it writes memory or vector registers, so a faulting
//! instruction leaves the CPU exactly as it found it and can be restarted.

mod alu;
mod atomic;
mod bits;
mod call_gate;
mod control;
mod data;
mod dispatch;
pub mod fast;
mod flagops;
mod io;
mod misc;
mod muldiv;
mod operand;
mod privileged;
mod segment_check;
mod shift;
mod simd_fp;
mod simd_int;
mod stack;
mod state_save;
mod string;
mod transfer;
mod unimplemented;
mod x87ops;

#[cfg(test)]
mod tests;

use crate::flags::LazyFlags;
use crate::platform::{NoPlatform, Platform};
use crate::{CpuState, Exception, SegReg};
use iced_x86::{Decoder, DecoderError, DecoderOptions, Instruction};
use softvisor_mmu::Memory;

pub use operand::is_integer_immediate;
pub(crate) use operand::{is_canonical, Ctx};
pub use simd_int::needs_alignment as sse_needs_alignment;
pub use state_save::{XCR0_SUPPORTED, XSAVE_AREA_SIZE};

/// What happened when one instruction ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// The instruction retired (or a string instruction made progress); run the next one.
    Continue,
    /// HLT: the CPU waits for an interrupt.
    Halt,
    /// A triple fault (or a shutdown the guest asked for): the machine must reset.
    Shutdown,
    /// The instruction retired and the platform asked to stop here (a port write that
    /// exits, powers off or resets the machine).
    Stop,
}

/// The longest x86 instruction.
pub const MAX_INSN_LEN: usize = 15;

/// Fetches and decodes the instruction at CS:RIP. Faults on an unreachable first byte, on
/// an instruction that runs into an unreachable byte, and (#UD) on bytes that do not decode.
pub fn decode_at(cpu: &CpuState, mem: &mut dyn Memory) -> Result<Instruction, Exception> {
    let bitness = cpu.bitness();
    let linear = cpu.segment(SegReg::Cs).base.wrapping_add(cpu.rip);
    let mut bytes = [0u8; MAX_INSN_LEN];
    let got = mem.fetch(linear, &mut bytes)?;
    let mut decoder = Decoder::with_ip(bitness, &bytes[..got], cpu.rip, DecoderOptions::NONE);
    let insn = decoder.decode();
    match decoder.last_error() {
        DecoderError::None => Ok(insn),
        DecoderError::NoMoreBytes if got < MAX_INSN_LEN => {
            // Re-fetch the first missing byte to report the real fault.
            let mut probe = [0u8; 1];
            mem.fetch(linear.wrapping_add(got as u64), &mut probe)?;
            Err(Exception::InvalidOpcode)
        }
        _ => {
            unimplemented::report(&bytes[..got], None);
            Err(Exception::InvalidOpcode)
        }
    }
}

/// The integer state an instruction can change, saved so a fault can undo it.
struct Snapshot {
    gpr: [u64; 16],
    rip: u64,
    flags: LazyFlags,
}

/// Executes one instruction at CS:RIP.
///
/// On `Err`, no architectural state has changed (RIP still points at the faulting
/// instruction), except for a REP string instruction, which keeps the iterations it
/// completed, as on hardware.
pub fn step(cpu: &mut CpuState, mem: &mut dyn Memory) -> Result<StepOutcome, Exception> {
    step_on(cpu, mem, &mut NoPlatform)
}

/// [`step`] on a machine: port I/O, platform MSRs and CR8 reach `platform`.
pub fn step_on(
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    platform: &mut dyn Platform,
) -> Result<StepOutcome, Exception> {
    let insn = decode_at(cpu, mem)?;
    execute(cpu, mem, platform, &insn)
}

/// Executes an already decoded instruction whose IP is `cpu.rip`.
pub fn execute(
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    platform: &mut dyn Platform,
    insn: &Instruction,
) -> Result<StepOutcome, Exception> {
    let snapshot = Snapshot {
        gpr: cpu.gpr,
        rip: cpu.rip,
        flags: cpu.flags,
    };
    cpu.rip = insn.next_ip() & ip_mask(insn);
    let mut ctx = Ctx {
        cpu,
        mem,
        platform,
        insn,
        known_ud: false,
    };
    match dispatch::execute(&mut ctx) {
        Ok(outcome) => {
            ctx.cpu.icount += 1;
            Ok(outcome)
        }
        Err(Exception::InvalidOpcode) if !ctx.known_ud => {
            let cpu = ctx.cpu;
            restore(cpu, &snapshot);
            let mut bytes = [0u8; MAX_INSN_LEN];
            let len = insn.len();
            let linear = cpu.segment(SegReg::Cs).base.wrapping_add(cpu.rip);
            let _ = ctx.mem.fetch(linear, &mut bytes[..len]);
            unimplemented::report(&bytes[..len], Some(insn));
            Err(Exception::InvalidOpcode)
        }
        Err(e) => {
            restore(ctx.cpu, &snapshot);
            Err(e)
        }
    }
}

fn restore(cpu: &mut CpuState, snapshot: &Snapshot) {
    cpu.gpr = snapshot.gpr;
    cpu.rip = snapshot.rip;
    cpu.flags = snapshot.flags;
}

/// RIP wraps at the code size: 16 or 32 bits outside 64-bit mode.
fn ip_mask(insn: &Instruction) -> u64 {
    match insn.code_size() {
        iced_x86::CodeSize::Code16 => 0xffff,
        iced_x86::CodeSize::Code32 => 0xffff_ffff,
        _ => u64::MAX,
    }
}
