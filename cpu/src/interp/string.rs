//! String instructions: MOVS, CMPS, SCAS, LODS, STOS in every element size, with REP,
//! REPE and REPNE, honouring DF and the address size.
//!
//! A REP instruction runs up to [`BATCH`] iterations per step and then re-executes itself
//! (RIP is left on it), so a long copy cannot starve interrupts. If an iteration faults
//! after others completed, the completed ones stand and RIP stays on the instruction, as
//! on hardware.
//!
//! REP MOVS and REP STOS with DF clear and 64-bit addressing copy or fill whole runs of
//! elements at once while source and destination stay within one RAM page each and the
//! destination does not overlap the source from above (where element order would repeat
//! the source's start): one translation per page instead of one per element, the same
//! result.

use super::operand::{Ctx, Exec};
use crate::flags::{size_mask, CcOp, DF, ZF};
use iced_x86::{Mnemonic, OpKind, Register};
use softvisor_mmu::{AccessKind, PAGE_SIZE};

/// Iterations of a REP string instruction per interpreter step.
pub const BATCH: u64 = 4096;

/// Address size of a string instruction, from its memory operand kind.
fn address_width(ctx: &Ctx) -> u32 {
    for op in 0..ctx.insn.op_count() {
        match ctx.insn.op_kind(op) {
            OpKind::MemorySegSI | OpKind::MemoryESDI => return 2,
            OpKind::MemorySegESI | OpKind::MemoryESEDI => return 4,
            OpKind::MemorySegRSI | OpKind::MemoryESRDI => return 8,
            _ => {}
        }
    }
    8
}

/// Executes a string instruction, with or without a repeat prefix.
pub(super) fn string_op(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let width = address_width(ctx);
    let mask = size_mask(width);
    let size = ctx.insn.memory_size().size() as u32;
    let rep = ctx.insn.has_rep_prefix() || ctx.insn.has_repne_prefix();
    let compares = matches!(
        m,
        Mnemonic::Cmpsb | Mnemonic::Cmpsw | Mnemonic::Cmpsd | Mnemonic::Cmpsq
    ) || matches!(
        m,
        Mnemonic::Scasb | Mnemonic::Scasw | Mnemonic::Scasd | Mnemonic::Scasq
    );
    let bulk_allowed = rep && width == 8 && !compares && !ctx.cpu.flags.test(DF);
    let mut done = 0u64;
    loop {
        if rep && ctx.cpu.gpr[1] & mask == 0 {
            return Ok(());
        }
        let bulk_ran = if bulk_allowed {
            bulk(ctx, m, size, ctx.cpu.gpr[1].min(BATCH - done))
        } else {
            Ok(0)
        };
        let ran = bulk_ran.and_then(|n| match n {
            0 => iteration(ctx, m, size, width).map(|()| 1),
            n => Ok(n),
        });
        let ran = match ran {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => {
                ctx.cpu.rip = ctx.insn.ip();
                return Ok(());
            }
        };
        done += ran;
        if ran > 1 {
            ctx.cpu.gpr[1] -= ran - 1;
        }
        if !rep {
            return Ok(());
        }
        let count = ctx.cpu.gpr[1].wrapping_sub(1) & mask;
        super::data::set_sized(ctx, 1, width, count);
        if compares {
            let zf = ctx.cpu.flags.test(ZF);
            if (ctx.insn.has_repe_prefix() && !zf) || (ctx.insn.has_repne_prefix() && zf) {
                return Ok(());
            }
        }
        if count == 0 {
            return Ok(());
        }
        if done >= BATCH {
            ctx.cpu.rip = ctx.insn.ip();
            return Ok(());
        }
    }
}

/// Up to `limit` iterations of REP MOVS/STOS (DF clear, 64-bit addressing) as one copy or
/// fill, leaving RCX one iteration short, as after [`iteration`]. Returns how many ran, 0
/// when the run is not one RAM page each way or the destination overlaps the source from
/// above (then the element path runs, and raises any fault in order).
fn bulk(ctx: &mut Ctx, m: Mnemonic, size: u32, limit: u64) -> Exec<u64> {
    let size = u64::from(size);
    // Element sizes are powers of two: a shift, not a division (this runs per REP step).
    let in_page = |addr: u64| (PAGE_SIZE - (addr & (PAGE_SIZE - 1))) >> size.trailing_zeros();
    let movs = matches!(
        m,
        Mnemonic::Movsb | Mnemonic::Movsw | Mnemonic::Movsd | Mnemonic::Movsq
    );
    let stos = matches!(
        m,
        Mnemonic::Stosb | Mnemonic::Stosw | Mnemonic::Stosd | Mnemonic::Stosq
    );
    if !movs && !stos {
        return Ok(0);
    }
    // In the element path's order, so that a bad address raises the same exception.
    let src = if movs {
        Some(source_addr(ctx, 8)?)
    } else {
        None
    };
    let dst = dest_addr(ctx, 8)?;
    let mut count = limit.min(in_page(dst));
    let src = if let Some(src) = src {
        count = count.min(in_page(src));
        let bytes = count * size;
        // A forward copy onto a higher overlapping address repeats the source's start:
        // left to the element path. Onto a lower one it is a move, as a bulk copy makes it.
        if src < dst && dst < src.wrapping_add(bytes) {
            return Ok(0);
        }
        Some(src)
    } else {
        None
    };
    if count < 2
        || src.is_some_and(|src| !ctx.mem.is_ram(src, AccessKind::Read))
        || !ctx.mem.is_ram(dst, AccessKind::Write)
    {
        return Ok(0);
    }
    let bytes = (count * size) as usize;
    let pattern = ctx.cpu.gpr[0].to_le_bytes();
    let pattern = &pattern[..size as usize];
    let done = match src {
        Some(src) => ctx.mem.copy_plain(src, dst, bytes),
        None => ctx.mem.fill_plain(dst, pattern, bytes),
    };
    if !done {
        let mut buf = [0u8; PAGE_SIZE as usize];
        let buf = &mut buf[..bytes];
        match src {
            Some(src) => ctx.mem.read(src, buf, AccessKind::Read)?,
            None => softvisor_mmu::fill_repeated(buf, pattern),
        }
        ctx.mem.write(dst, buf)?;
    }
    if movs {
        ctx.cpu.gpr[6] = ctx.cpu.gpr[6].wrapping_add(bytes as u64);
    }
    ctx.cpu.gpr[7] = ctx.cpu.gpr[7].wrapping_add(bytes as u64);
    Ok(count)
}

/// Advances RSI or RDI (register `index`) by one element in the DF direction.
fn advance(ctx: &mut Ctx, index: usize, size: u32, width: u32) {
    let step = if ctx.cpu.flags.test(DF) {
        (size as u64).wrapping_neg()
    } else {
        u64::from(size)
    };
    let value = ctx.cpu.gpr[index].wrapping_add(step) & size_mask(width);
    super::data::set_sized(ctx, index, width, value);
}

/// The linear address of DS:rSI (segment overridable) and ES:rDI.
fn source_addr(ctx: &Ctx, width: u32) -> Exec<u64> {
    ctx.linear(ctx.insn.memory_segment(), ctx.cpu.gpr[6] & size_mask(width))
}

fn dest_addr(ctx: &Ctx, width: u32) -> Exec<u64> {
    ctx.linear(Register::ES, ctx.cpu.gpr[7] & size_mask(width))
}

/// One iteration; registers change only after every access of it succeeded.
fn iteration(ctx: &mut Ctx, m: Mnemonic, size: u32, width: u32) -> Exec {
    let n = size as usize;
    let acc = ctx.cpu.gpr[0] & size_mask(size);
    match m {
        Mnemonic::Movsb | Mnemonic::Movsw | Mnemonic::Movsd | Mnemonic::Movsq => {
            let src = source_addr(ctx, width)?;
            let dst = dest_addr(ctx, width)?;
            let value = ctx.read_mem(src, n)?;
            ctx.write_mem(dst, n, value)?;
            advance(ctx, 6, size, width);
            advance(ctx, 7, size, width);
        }
        Mnemonic::Stosb | Mnemonic::Stosw | Mnemonic::Stosd | Mnemonic::Stosq => {
            let dst = dest_addr(ctx, width)?;
            ctx.write_mem(dst, n, acc)?;
            advance(ctx, 7, size, width);
        }
        Mnemonic::Lodsb | Mnemonic::Lodsw | Mnemonic::Lodsd | Mnemonic::Lodsq => {
            let src = source_addr(ctx, width)?;
            let value = ctx.read_mem(src, n)?;
            super::data::set_sized(ctx, 0, size, value);
            advance(ctx, 6, size, width);
        }
        Mnemonic::Scasb | Mnemonic::Scasw | Mnemonic::Scasd | Mnemonic::Scasq => {
            let dst = dest_addr(ctx, width)?;
            let value = ctx.read_mem(dst, n)?;
            ctx.cpu
                .flags
                .set_lazy(CcOp::Sub, size, acc.wrapping_sub(value), acc, value);
            advance(ctx, 7, size, width);
        }
        _ => {
            // CMPS: [rSI] - [rDI]
            let src = source_addr(ctx, width)?;
            let dst = dest_addr(ctx, width)?;
            let a = ctx.read_mem(src, n)?;
            let b = ctx.read_mem(dst, n)?;
            ctx.cpu
                .flags
                .set_lazy(CcOp::Sub, size, a.wrapping_sub(b), a, b);
            advance(ctx, 6, size, width);
            advance(ctx, 7, size, width);
        }
    }
    Ok(())
}
