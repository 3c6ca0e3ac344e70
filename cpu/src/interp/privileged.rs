//! System instructions: control/debug-register moves, descriptor-table registers (LGDT,
//! LIDT, SGDT, SIDT, LLDT, LTR, SLDT, STR), LMSW/SMSW/CLTS, INVLPG, INVD/WBINVD,
//! RDMSR/WRMSR and SWAPGS. Most require CPL 0 and raise #GP(0) otherwise.

use super::operand::{Ctx, Exec};
use crate::flags::size_mask;
use crate::state::{CR0_PE, CR0_TS};
use crate::system::descriptor::{is_null, read_descriptor, read_upper, Descriptor};
use crate::system::{control, msr};
use crate::{Exception, SegReg, Segment, TableReg};
use iced_x86::{Mnemonic, OpKind, Register};

/// #GP(0) unless at CPL 0.
fn require_ring0(ctx: &Ctx) -> Exec {
    if ctx.cpu.cpl() != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    Ok(())
}

/// Executes a privileged instruction.
pub(super) fn execute(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    match m {
        Mnemonic::Lgdt | Mnemonic::Lidt => load_table(ctx, m),
        Mnemonic::Sgdt | Mnemonic::Sidt => store_table(ctx, m),
        Mnemonic::Lldt => load_ldt(ctx),
        Mnemonic::Ltr => load_tr(ctx),
        Mnemonic::Sldt => {
            let value = u64::from(ctx.cpu.ldtr.selector);
            store_selector(ctx, value)
        }
        Mnemonic::Str => {
            let value = u64::from(ctx.cpu.tr.selector);
            store_selector(ctx, value)
        }
        Mnemonic::Smsw => {
            let value = ctx.cpu.cr0;
            store_selector(ctx, value)
        }
        Mnemonic::Lmsw => {
            require_ring0(ctx)?;
            // Only PE, MP, EM and TS; PE can be set but not cleared.
            let value = ctx.read(0)? & 0xf;
            let cr0 = (ctx.cpu.cr0 & !0xe) | value | (ctx.cpu.cr0 & CR0_PE);
            control::write_cr0(ctx.cpu, ctx.mem, cr0)
        }
        Mnemonic::Clts => {
            require_ring0(ctx)?;
            ctx.cpu.cr0 &= !CR0_TS;
            Ok(())
        }
        Mnemonic::Invlpg => {
            require_ring0(ctx)?;
            let addr = ctx.mem_addr()?;
            ctx.mem.invalidate_page(addr);
            Ok(())
        }
        Mnemonic::Invd | Mnemonic::Wbinvd | Mnemonic::Wbnoinvd => require_ring0(ctx),
        Mnemonic::Rdmsr => {
            require_ring0(ctx)?;
            let value = msr::read(ctx.cpu, ctx.platform, ctx.cpu.gpr[1] as u32)?;
            ctx.cpu.gpr[0] = value & 0xffff_ffff;
            ctx.cpu.gpr[2] = value >> 32;
            Ok(())
        }
        Mnemonic::Wrmsr => {
            require_ring0(ctx)?;
            let value = (ctx.cpu.gpr[2] << 32) | (ctx.cpu.gpr[0] & 0xffff_ffff);
            msr::write(ctx.cpu, ctx.mem, ctx.platform, ctx.cpu.gpr[1] as u32, value)
        }
        Mnemonic::Swapgs => {
            if !ctx.cpu.in_64bit_mode() {
                return ctx.architectural_ud();
            }
            require_ring0(ctx)?;
            let gs = &mut ctx.cpu.seg[SegReg::Gs as usize].base;
            std::mem::swap(gs, &mut ctx.cpu.msr.kernel_gs_base);
            Ok(())
        }
        _ => Err(Exception::InvalidOpcode),
    }
}

/// SLDT/STR/SMSW: a register destination takes the operand size, memory takes 16 bits.
fn store_selector(ctx: &mut Ctx, value: u64) -> Exec {
    let size = ctx.op_size(0);
    ctx.write(0, value & size_mask(size))
}

/// LGDT/LIDT: a 16-bit limit then a base of 8 bytes (64-bit mode), 4, or 3 (16-bit operand).
fn load_table(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    require_ring0(ctx)?;
    let addr = ctx.mem_addr()?;
    let limit = ctx.read_mem(addr, 2)? as u16;
    let base = if ctx.cpu.in_64bit_mode() {
        ctx.read_mem(addr.wrapping_add(2), 8)?
    } else {
        let base = ctx.read_mem(addr.wrapping_add(2), 4)?;
        if ctx.insn.code() == iced_x86::Code::Lgdt_m1632_16
            || ctx.insn.code() == iced_x86::Code::Lidt_m1632_16
        {
            base & 0xff_ffff
        } else {
            base
        }
    };
    if ctx.cpu.in_64bit_mode() && !super::is_canonical(base) {
        return Err(Exception::GeneralProtection(0));
    }
    let table = TableReg { base, limit };
    if m == Mnemonic::Lgdt {
        ctx.cpu.gdtr = table;
    } else {
        ctx.cpu.idtr = table;
    }
    Ok(())
}

/// SGDT/SIDT.
fn store_table(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let table = if m == Mnemonic::Sgdt {
        ctx.cpu.gdtr
    } else {
        ctx.cpu.idtr
    };
    let addr = ctx.mem_addr()?;
    let base_len = if ctx.cpu.in_64bit_mode() { 8 } else { 4 };
    let mut bytes = [0u8; 10];
    bytes[..2].copy_from_slice(&table.limit.to_le_bytes());
    bytes[2..10].copy_from_slice(&table.base.to_le_bytes());
    ctx.mem.write(addr, &bytes[..2 + base_len])?;
    Ok(())
}

/// Reads a system descriptor from the GDT (16 bytes in long mode) and checks its type.
fn system_descriptor(ctx: &mut Ctx, selector: u16, types: &[u8]) -> Exec<(Descriptor, u64, u64)> {
    let error = Exception::GeneralProtection(selector & !3);
    if selector & 4 != 0 {
        return Err(error);
    }
    let (desc, addr) = read_descriptor(ctx.cpu, ctx.mem, selector)?;
    if desc.is_code_or_data() || !types.contains(&desc.kind()) {
        return Err(error);
    }
    let high = if ctx.cpu.in_long_mode() {
        crate::system::descriptor::descriptor_addr(ctx.cpu, selector, 8)?;
        read_upper(ctx.mem, addr)?
    } else {
        0
    };
    if !desc.present() {
        return Err(Exception::SegmentNotPresent(selector & !3));
    }
    Ok((desc, addr, high))
}

/// LLDT.
fn load_ldt(ctx: &mut Ctx) -> Exec {
    require_ring0(ctx)?;
    let selector = ctx.read(0)? as u16;
    if is_null(selector) {
        ctx.cpu.ldtr = Segment {
            selector,
            ..Segment::default()
        };
        return Ok(());
    }
    let (desc, _, high) = system_descriptor(ctx, selector, &[0x2])?;
    let mut seg = desc.to_segment(selector);
    seg.base |= (high & 0xffff_ffff) << 32;
    ctx.cpu.ldtr = seg;
    Ok(())
}

/// LTR: loads an available TSS and marks it busy in the GDT.
fn load_tr(ctx: &mut Ctx) -> Exec {
    require_ring0(ctx)?;
    let selector = ctx.read(0)? as u16;
    if is_null(selector) {
        return Err(Exception::GeneralProtection(0));
    }
    let types: &[u8] = if ctx.cpu.in_long_mode() {
        &[0x9]
    } else {
        &[0x1, 0x9]
    };
    let (desc, addr, high) = system_descriptor(ctx, selector, types)?;
    let busy = Descriptor(desc.0 | (2 << 40));
    ctx.mem
        .write_supervisor(addr.wrapping_add(5), &[(busy.0 >> 40) as u8])?;
    let mut seg = busy.to_segment(selector);
    seg.base |= (high & 0xffff_ffff) << 32;
    ctx.cpu.tr = seg;
    Ok(())
}

/// MOV to or from CR0/2/3/4/8 and DR0-7.
pub(super) fn mov_control(ctx: &mut Ctx) -> Exec {
    require_ring0(ctx)?;
    let (dst, src) = (ctx.insn.op_register(0), ctx.insn.op_register(1));
    let debug = |ctx: &mut Ctx, r: Register| -> Exec<usize> {
        let n = r as usize - Register::DR0 as usize;
        match n {
            4 | 5 if ctx.cpu.cr4 & (1 << 3) != 0 => ctx.architectural_ud(),
            4 | 5 => Ok(n + 2),
            8.. => ctx.architectural_ud(),
            _ => Ok(n),
        }
    };
    if src.is_cr() || src.is_dr() {
        let value = match src {
            Register::CR0 => ctx.cpu.cr0,
            Register::CR2 => ctx.cpu.cr2,
            Register::CR3 => ctx.cpu.cr3,
            Register::CR4 => ctx.cpu.cr4,
            Register::CR8 => ctx.cpu.cr8,
            r if r.is_dr() => ctx.cpu.dr[debug(ctx, r)?],
            _ => return ctx.architectural_ud(),
        };
        let mask = if ctx.cpu.in_64bit_mode() {
            u64::MAX
        } else {
            0xffff_ffff
        };
        ctx.cpu.set_reg(dst.full_register(), value & mask);
        return Ok(());
    }
    let value = ctx.cpu.reg(src);
    match dst {
        Register::CR0 => control::write_cr0(ctx.cpu, ctx.mem, value),
        Register::CR2 => {
            ctx.cpu.cr2 = value;
            Ok(())
        }
        Register::CR3 => control::write_cr3(ctx.cpu, ctx.mem, value),
        Register::CR4 => control::write_cr4(ctx.cpu, ctx.mem, value),
        Register::CR8 => control::write_cr8(ctx.cpu, ctx.platform, value),
        r if r.is_dr() => {
            let n = debug(ctx, r)?;
            if n >= 6 && value >> 32 != 0 {
                return Err(Exception::GeneralProtection(0));
            }
            ctx.cpu.dr[n] = value;
            Ok(())
        }
        _ => ctx.architectural_ud(),
    }
}

/// Whether operand 0 of a MOV names a control or debug register on either side.
pub(super) fn is_control_move(ctx: &Ctx) -> bool {
    (0..2).any(|op| {
        ctx.insn.op_kind(op) == OpKind::Register && {
            let r = ctx.insn.op_register(op);
            r.is_cr() || r.is_dr()
        }
    })
}
