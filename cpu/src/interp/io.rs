//! Port I/O: IN, OUT, INS, OUTS (with REP). Above IOPL (and always in virtual-8086 mode)
//! every port byte must be allowed by the TSS I/O permission bitmap, else #GP(0).

use super::operand::{Ctx, Exec};
use crate::flags::{size_mask, DF, IOPL, VM};
use crate::Exception;
use iced_x86::{Mnemonic, OpKind, Register};

/// Checks the I/O permission for `size` bytes at `port`.
fn check_permission(ctx: &mut Ctx, port: u16, size: u8) -> Exec {
    let iopl = ((ctx.cpu.rflags() & IOPL) >> 12) as u8;
    let protected = ctx.cpu.cr0 & crate::state::CR0_PE != 0;
    if !protected || (ctx.cpu.cpl() <= iopl && ctx.cpu.flags.bits & VM == 0) {
        return Ok(());
    }
    let tr = ctx.cpu.tr;
    let gp = Exception::GeneralProtection(0);
    // Only a 32/64-bit TSS has a bitmap; its offset is at 0x66.
    if tr.attrs & 0xf != 0xb && tr.attrs & 0xf != 0x9 || tr.limit < 0x67 {
        return Err(gp);
    }
    let mut offset_bytes = [0u8; 2];
    ctx.mem
        .read_supervisor(tr.base.wrapping_add(0x66), &mut offset_bytes)?;
    let byte = u64::from(u16::from_le_bytes(offset_bytes)) + u64::from(port / 8);
    if byte + 1 > u64::from(tr.limit) {
        return Err(gp);
    }
    let mut bits = [0u8; 2];
    ctx.mem
        .read_supervisor(tr.base.wrapping_add(byte), &mut bits)?;
    let mask = ((1u16 << size) - 1) << (port % 8);
    if u16::from_le_bytes(bits) & mask != 0 {
        return Err(gp);
    }
    Ok(())
}

/// The port of an IN/OUT: an immediate or DX.
fn port_operand(ctx: &Ctx, op: u32) -> u16 {
    if ctx.insn.op_kind(op) == OpKind::Register {
        ctx.cpu.reg(Register::DX) as u16
    } else {
        u16::from(ctx.insn.immediate8())
    }
}

/// IN and OUT.
pub(super) fn in_out(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    if m == Mnemonic::In {
        let size = ctx.op_size(0) as u8;
        let port = port_operand(ctx, 1);
        check_permission(ctx, port, size)?;
        ctx.platform.sync_clock(ctx.cpu.icount);
        let value = ctx.platform.io_read(port, size);
        ctx.write(0, u64::from(value))
    } else {
        let size = ctx.op_size(1) as u8;
        let port = port_operand(ctx, 0);
        check_permission(ctx, port, size)?;
        let value = ctx.read(1)? as u32;
        ctx.platform.sync_clock(ctx.cpu.icount);
        ctx.platform.io_write(port, size, value);
        Ok(())
    }
}

/// Address size of INS/OUTS from their memory operand kind.
fn address_width(ctx: &Ctx) -> u32 {
    (0..ctx.insn.op_count())
        .find_map(|op| match ctx.insn.op_kind(op) {
            OpKind::MemoryESDI | OpKind::MemorySegSI => Some(2),
            OpKind::MemoryESEDI | OpKind::MemorySegESI => Some(4),
            OpKind::MemoryESRDI | OpKind::MemorySegRSI => Some(8),
            _ => None,
        })
        .unwrap_or(8)
}

/// INS and OUTS, one element per iteration, with REP.
pub(super) fn string_io(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.insn.memory_size().size() as u8;
    let width = address_width(ctx);
    let mask = size_mask(width);
    let port = ctx.cpu.reg(Register::DX) as u16;
    let rep = ctx.insn.has_rep_prefix();
    check_permission(ctx, port, size)?;
    ctx.platform.sync_clock(ctx.cpu.icount);
    let inbound = matches!(m, Mnemonic::Insb | Mnemonic::Insw | Mnemonic::Insd);
    let index = if inbound { 7 } else { 6 };
    let mut done = 0u64;
    while !rep || ctx.cpu.gpr[1] & mask != 0 {
        let offset = ctx.cpu.gpr[index] & mask;
        let result = if inbound {
            ctx.linear(Register::ES, offset).and_then(|addr| {
                // Probe the destination first so a fault does not lose the port read.
                ctx.read_mem(addr, usize::from(size))?;
                let value = ctx.platform.io_read(port, size);
                ctx.write_mem(addr, usize::from(size), u64::from(value))
            })
        } else {
            ctx.linear(ctx.insn.memory_segment(), offset)
                .and_then(|addr| {
                    let value = ctx.read_mem(addr, usize::from(size))?;
                    ctx.platform.io_write(port, size, value as u32);
                    Ok(())
                })
        };
        if let Err(e) = result {
            if done == 0 {
                return Err(e);
            }
            ctx.cpu.rip = ctx.insn.ip();
            return Ok(());
        }
        done += 1;
        let step = if ctx.cpu.flags.test(DF) {
            u64::from(size).wrapping_neg()
        } else {
            u64::from(size)
        };
        super::data::set_sized(
            ctx,
            index,
            width,
            ctx.cpu.gpr[index].wrapping_add(step) & mask,
        );
        if !rep {
            break;
        }
        super::data::set_sized(ctx, 1, width, ctx.cpu.gpr[1].wrapping_sub(1) & mask);
        if done >= super::string::BATCH && ctx.cpu.gpr[1] & mask != 0 {
            ctx.cpu.rip = ctx.insn.ip();
            break;
        }
    }
    Ok(())
}
