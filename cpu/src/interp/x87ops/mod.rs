//! x87 FPU instructions: dispatch, the #NM/#MF checks, the register stack and status-word
//! bookkeeping shared by the groups, and FOP/FIP/FDP tracking.

mod arith;
mod compare;
mod consts;
pub(crate) mod control;
mod load_store;
mod transcendental;

#[cfg(test)]
mod tests;

use super::operand::{Ctx, Exec};
use crate::state::{CR0_EM, CR0_MP, CR0_NE, CR0_PE, CR0_TS};
use crate::x87::{self, Env, Format, OpResult, C1, DE, ES, EXC_MASK, IE, SF, TAG_EMPTY, ZE};
use crate::{Exception, SegReg, X87State, F80};
use iced_x86::{Mnemonic as M, OpKind, Register};

/// Executes an instruction of this group, or returns `None` if the mnemonic is not one of its own.
pub(in crate::interp) fn execute(ctx: &mut Ctx) -> Option<Exec> {
    let m = ctx.insn.mnemonic();
    let kind = kind_of(m)?;
    Some(run(ctx, m, kind))
}

/// How an instruction interacts with pending exceptions and the last-instruction pointers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Checks pending exceptions and records FOP/FIP/FDP.
    Arith,
    /// Checks pending exceptions, does not record pointers (FLDCW, FLDENV, FRSTOR...).
    Control,
    /// Neither (FNINIT, FNSTSW, FNSTENV...).
    NoWait,
    /// FWAIT itself.
    Wait,
}

fn kind_of(m: M) -> Option<Kind> {
    Some(match m {
        M::Wait => Kind::Wait,
        M::Fninit | M::Fnclex | M::Fnstcw | M::Fnstsw | M::Fnstenv | M::Fnsave => Kind::NoWait,
        M::Fneni | M::Fndisi | M::Fnsetpm => Kind::NoWait,
        M::Finit
        | M::Fclex
        | M::Fstcw
        | M::Fstsw
        | M::Fstenv
        | M::Fsave
        | M::Fldcw
        | M::Fldenv
        | M::Frstor => Kind::Control,
        M::Feni | M::Fdisi | M::Fsetpm => Kind::Control,
        _ if control::owns(m) || load_store::owns(m) || arith::owns(m) || compare::owns(m) => {
            Kind::Arith
        }
        _ if consts::owns(m) || transcendental::owns(m) => Kind::Arith,
        _ => return None,
    })
}

fn run(ctx: &mut Ctx, m: M, kind: Kind) -> Exec {
    let cr0 = ctx.cpu.cr0;
    let nm = match kind {
        Kind::Wait => cr0 & (CR0_MP | CR0_TS) == CR0_MP | CR0_TS,
        _ => cr0 & (CR0_EM | CR0_TS) != 0,
    };
    if nm {
        return Err(Exception::DeviceNotAvailable);
    }
    if kind != Kind::NoWait && ctx.cpu.x87.fsw & ES != 0 && cr0 & CR0_NE != 0 {
        return Err(Exception::X87Fpu);
    }
    let pointers = if kind == Kind::Arith {
        Some(last_pointers(ctx)?)
    } else {
        None
    };
    let before = ctx.cpu.x87;
    let result = dispatch(ctx, m);
    match (result, pointers) {
        (Ok(()), Some((fop, fip, fdp))) => {
            let x = &mut ctx.cpu.x87;
            x.fop = fop;
            x.fip = fip;
            if let Some(fdp) = fdp {
                x.fdp = fdp;
            }
            Ok(())
        }
        (Ok(()), None) => Ok(()),
        (Err(e), _) => {
            // A fault leaves the FPU as it was.
            ctx.cpu.x87 = before;
            Err(e)
        }
    }
}

fn dispatch(ctx: &mut Ctx, m: M) -> Exec {
    if m == M::Wait {
        return Ok(());
    }
    if control::owns(m) {
        return control::execute(ctx, m);
    }
    if load_store::owns(m) {
        return load_store::execute(ctx, m);
    }
    if arith::owns(m) {
        return arith::execute(ctx, m);
    }
    if compare::owns(m) {
        return compare::execute(ctx, m);
    }
    if consts::owns(m) {
        return consts::execute(ctx, m);
    }
    transcendental::execute(ctx, m)
}

/// FOP (low 3 bits of the opcode byte and the ModRM byte), FIP and FDP of this instruction.
fn last_pointers(ctx: &mut Ctx) -> Exec<(u16, u64, Option<u64>)> {
    let ip = ctx.insn.ip();
    let linear = ctx.cpu.segment(SegReg::Cs).base.wrapping_add(ip);
    let mut bytes = [0u8; super::MAX_INSN_LEN];
    let len = ctx.insn.len().min(bytes.len());
    ctx.mem.fetch(linear, &mut bytes[..len])?;
    let fop = bytes[..len]
        .iter()
        .position(|b| (0xd8..=0xdf).contains(b))
        .and_then(|i| Some((u16::from(bytes[i] & 7) << 8) | u16::from(*bytes.get(i + 1)?)))
        .unwrap_or(0);
    // Real and virtual-8086 mode record linear pointers, protected mode offsets.
    let real = ctx.cpu.cr0 & CR0_PE == 0 || ctx.cpu.rflags() & crate::flags::VM != 0;
    let fdp = if !has_mem(ctx) {
        None
    } else if real {
        Some(ctx.mem_addr()?)
    } else {
        Some(ctx.mem_offset())
    };
    Ok((fop, if real { linear } else { ip }, fdp))
}

/// Whether the instruction has an explicit memory operand.
fn has_mem(ctx: &Ctx) -> bool {
    (0..ctx.insn.op_count()).any(|i| ctx.insn.op_kind(i) == OpKind::Memory)
}

/// The stack index of ST(i) register operand `op`.
fn st_index(ctx: &Ctx, op: u32) -> usize {
    (ctx.insn.op_register(op) as usize).wrapping_sub(Register::ST0 as usize) & 7
}

/// Physical register number of ST(i).
fn phys(x: &X87State, i: usize) -> usize {
    (usize::from(x.top) + i) & 7
}

/// Tag of physical register `p`.
fn tag(x: &X87State, p: usize) -> u16 {
    (x.ftw >> (2 * p)) & 3
}

fn set_tag(x: &mut X87State, p: usize, t: u16) {
    x.ftw = (x.ftw & !(3 << (2 * p))) | (t << (2 * p));
}

/// Whether ST(i) is empty.
fn is_empty(x: &X87State, i: usize) -> bool {
    tag(x, phys(x, i)) == TAG_EMPTY
}

/// ST(i), or `None` if it is empty.
fn st(x: &X87State, i: usize) -> Option<F80> {
    (!is_empty(x, i)).then(|| x.regs[phys(x, i)])
}

/// Writes ST(i) and its tag.
fn set_st(x: &mut X87State, i: usize, v: F80) {
    let p = phys(x, i);
    x.regs[p] = v;
    set_tag(x, p, v.tag());
}

/// Marks ST(0) empty and increments TOP.
fn pop(x: &mut X87State) {
    let p = phys(x, 0);
    set_tag(x, p, TAG_EMPTY);
    x.top = (x.top + 1) & 7;
}

/// Pushes `v`. On stack overflow, raises IE/SF with C1=1 and pushes the indefinite if
/// IE is masked (nothing changes otherwise).
fn push(x: &mut X87State, v: F80) {
    if !is_empty(x, 7) {
        status(x, IE | SF | C1);
        if !masked(x, IE) {
            return;
        }
        return push_unchecked(x, F80::INDEFINITE);
    }
    push_unchecked(x, v);
}

/// Handles a stack overflow of an instruction that replaces ST(0) and pushes (FXTRACT,
/// FPTAN, FSINCOS): with IE masked both become the indefinite. Returns whether it overflowed.
fn replace_and_push_overflow(x: &mut X87State) -> bool {
    if is_empty(x, 7) {
        return false;
    }
    status(x, IE | SF | C1);
    if masked(x, IE) {
        set_st(x, 0, F80::INDEFINITE);
        push_unchecked(x, F80::INDEFINITE);
    }
    true
}

/// Handles a stack underflow of an instruction that replaces ST(0) and pushes: with IE
/// masked both become the indefinite (C1=0 even if the push also overflows).
fn replace_and_push_underflow(x: &mut X87State) {
    status(x, IE | SF);
    if masked(x, IE) {
        set_st(x, 0, F80::INDEFINITE);
        push_unchecked(x, F80::INDEFINITE);
    }
}

fn push_unchecked(x: &mut X87State, v: F80) {
    x.top = (x.top + 7) & 7;
    set_st(x, 0, v);
}

/// Whether all exceptions in `flags` are masked.
fn masked(x: &X87State, flags: u16) -> bool {
    flags & EXC_MASK & !x.fcw == 0
}

/// Records status `flags`: exception flags and SF are sticky, C1 is replaced, and ES/B
/// follow the unmasked exceptions.
fn status(x: &mut X87State, flags: u16) {
    x.fsw |= flags & (EXC_MASK | SF);
    x.fsw = (x.fsw & !C1) | (flags & C1);
    update_es(x);
}

/// Sets or clears ES and B from the pending unmasked exceptions.
pub(crate) fn update_es(x: &mut X87State) {
    if x.fsw & EXC_MASK & !x.fcw != 0 {
        x.fsw |= ES | x87::BUSY;
    } else {
        x.fsw &= !(ES | x87::BUSY);
    }
}

/// The stack underflow result.
fn underflow() -> OpResult {
    (F80::INDEFINITE, IE | SF)
}

/// Stores `res` into ST(i) unless an unmasked IE/DE/ZE suppresses it, and records the
/// status. Returns whether the result was stored (callers pop only then).
fn commit(x: &mut X87State, i: usize, res: OpResult) -> bool {
    let (v, flags) = res;
    let stored = masked(x, flags & (IE | DE | ZE));
    if stored {
        set_st(x, i, v);
        status(x, flags);
    } else {
        // The operation did not run, so no result flags (PE, UE, OE, C1) are reported.
        status(x, flags & (IE | DE | ZE | SF));
    }
    stored
}

/// The register format and rounding environment from the control word.
fn env(x: &X87State) -> (Format, Env) {
    (x87::pc_format(x.fcw), Env::from_fcw(x.fcw))
}
