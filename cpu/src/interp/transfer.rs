//! Control transfers that can change privilege or mode: INT n, INT3, INTO, INT1, IRET in
//! every mode, SYSCALL/SYSRET, SYSENTER/SYSEXIT, and far JMP/CALL/RET to code segments.

use super::operand::{Ctx, Exec};
use super::StepOutcome;
use crate::flags::{self, size_mask, IF, RF, VM};
use crate::state::Segment;
use crate::system::deliver::{deliver, Event};
use crate::system::descriptor::{is_null, read_descriptor};
use crate::system::segments::{
    check_far_code, load_code, load_data_or_stack, null_inaccessible_segments, real_addressing,
};
use crate::{Exception, SegReg};
use iced_x86::{Code, Mnemonic, OpKind};

/// INT n, INT3, INTO (when OF is set) and INT1: delivered with RIP past the instruction.
pub(super) fn software_interrupt(ctx: &mut Ctx, m: Mnemonic) -> Exec<StepOutcome> {
    let event = match m {
        Mnemonic::Int => Event::Software(ctx.insn.immediate8()),
        Mnemonic::Int3 => Event::Software(3),
        Mnemonic::Into if !ctx.cpu.flags.test(flags::OF) => return Ok(StepOutcome::Continue),
        Mnemonic::Into => Event::Software(4),
        _ => Event::Icebp,
    };
    if ctx.cpu.flags.bits & VM != 0
        && ((ctx.cpu.rflags() & flags::IOPL) >> 12) < 3
        && matches!(m, Mnemonic::Int)
    {
        return Err(Exception::GeneralProtection(0));
    }
    Ok(match deliver(ctx.cpu, ctx.mem, event) {
        Ok(()) => StepOutcome::Continue,
        Err(_) => StepOutcome::Shutdown,
    })
}

/// Operand size in bytes of IRET/RETF forms.
fn transfer_size(code: Code) -> u32 {
    match code {
        Code::Iretw | Code::Retfw | Code::Retfw_imm16 => 2,
        Code::Iretd | Code::Retfd | Code::Retfd_imm16 => 4,
        _ => 8,
    }
}

/// IRET, IRETD, IRETQ.
pub(super) fn iret(ctx: &mut Ctx) -> Exec {
    let size = transfer_size(ctx.insn.code());
    if real_addressing(ctx.cpu) {
        if ctx.cpu.flags.bits & VM != 0 && ((ctx.cpu.rflags() & flags::IOPL) >> 12) < 3 {
            return Err(Exception::GeneralProtection(0));
        }
        let ip = ctx.peek(size, 0)?;
        let cs = ctx.peek(size, u64::from(size))? as u16;
        let new_flags = ctx.peek(size, 2 * u64::from(size))?;
        for _ in 0..3 {
            ctx.pop(size)?;
        }
        let seg = &mut ctx.cpu.seg[SegReg::Cs as usize];
        seg.selector = cs;
        seg.base = u64::from(cs) << 4;
        ctx.cpu.rip = ip & size_mask(size);
        let keep = if ctx.cpu.flags.bits & VM != 0 {
            flags::IOPL | VM
        } else {
            VM | flags::VIF | flags::VIP
        };
        let mask = size_mask(size) & !keep & !flags::FIXED1;
        ctx.cpu.flags.update(mask, new_flags);
        return Ok(());
    }
    if ctx.cpu.flags.bits & flags::NT != 0 && !ctx.cpu.in_long_mode() {
        // Task switches are not supported.
        return ctx.architectural_ud();
    }
    protected_iret(ctx, size)
}

/// IRET in protected and long mode, to the same or an outer privilege level.
fn protected_iret(ctx: &mut Ctx, size: u32) -> Exec {
    let slot = u64::from(size);
    let rip = ctx.peek(size, 0)?;
    let cs = ctx.peek(size, slot)? as u16;
    let new_flags = ctx.peek(size, 2 * slot)?;
    let cpl = ctx.cpu.cpl();
    let rpl = (cs & 3) as u8;
    if new_flags & VM != 0 && cpl == 0 && !ctx.cpu.in_long_mode() && size == 4 {
        return iret_to_v86(ctx, rip, cs, new_flags);
    }
    let (desc, addr) = return_code_segment(ctx, cs)?;
    let to_64bit = ctx.cpu.in_long_mode() && desc.long();
    let outer = rpl > cpl;
    let pops_stack = outer || ctx.cpu.in_64bit_mode();
    let (rsp, ss) = if pops_stack {
        (ctx.peek(size, 3 * slot)?, ctx.peek(size, 4 * slot)? as u16)
    } else {
        (0, 0)
    };
    if !to_64bit && rip > u64::from(desc.limit()) {
        return Err(Exception::GeneralProtection(0));
    }
    if to_64bit && !super::is_canonical(rip) {
        return Err(Exception::GeneralProtection(0));
    }
    // Checks done: commit. Flags first (their mask depends on the old CPL).
    let mut mask = super::stack::writable_flags(ctx, size) | RF;
    if cpl == 0 {
        mask |= flags::VIF | flags::VIP;
    }
    let old_sp = ctx.cpu.gpr[4];
    let frame = if pops_stack { 5 * slot } else { 3 * slot };
    load_code(ctx.cpu, ctx.mem, desc, addr, cs)?;
    if pops_stack {
        if let Err(e) = load_stack_for(ctx, ss, rpl) {
            ctx.cpu.gpr[4] = old_sp;
            return Err(e);
        }
        ctx.cpu.gpr[4] = rsp;
    } else {
        ctx.cpu.gpr[4] = ctx.cpu.gpr[4].wrapping_add(frame);
    }
    ctx.cpu.flags.update(mask, new_flags);
    ctx.cpu.rip = if to_64bit { rip } else { rip & 0xffff_ffff };
    if outer {
        null_inaccessible_segments(ctx.cpu);
    }
    crate::system::sync_paging(ctx.cpu, ctx.mem);
    Ok(())
}

/// IRETD from ring 0 into virtual-8086 mode: EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS are
/// popped and every segment becomes a real-mode style segment at CPL 3.
fn iret_to_v86(ctx: &mut Ctx, rip: u64, cs: u16, new_flags: u64) -> Exec {
    let mut selectors = [0u16; 6];
    for (i, seg) in [SegReg::Ss, SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs]
        .into_iter()
        .enumerate()
    {
        selectors[seg as usize] = ctx.peek(4, 16 + 4 * i as u64)? as u16;
    }
    let esp = ctx.peek(4, 12)?;
    selectors[SegReg::Cs as usize] = cs;
    ctx.cpu.set_rflags(new_flags & 0x3f_7fd5 | flags::FIXED1);
    for (seg, selector) in ctx.cpu.seg.iter_mut().zip(selectors) {
        *seg = Segment {
            base: u64::from(selector) << 4,
            limit: 0xffff,
            selector,
            attrs: 0xf3,
        };
    }
    ctx.cpu.gpr[4] = esp & 0xffff_ffff;
    ctx.cpu.rip = rip & 0xffff;
    crate::system::sync_paging(ctx.cpu, ctx.mem);
    Ok(())
}

/// The code segment an IRET or RETF returns to: RPL >= CPL, conforming DPL <= RPL or
/// non-conforming DPL == RPL, present.
fn return_code_segment(
    ctx: &mut Ctx,
    cs: u16,
) -> Exec<(crate::system::descriptor::Descriptor, u64)> {
    if is_null(cs) {
        return Err(Exception::GeneralProtection(0));
    }
    let error = Exception::GeneralProtection(cs & !3);
    let (desc, addr) = read_descriptor(ctx.cpu, ctx.mem, cs)?;
    let rpl = (cs & 3) as u8;
    if !desc.is_code() || rpl < ctx.cpu.cpl() {
        return Err(error);
    }
    if (desc.is_conforming() && desc.dpl() > rpl) || (!desc.is_conforming() && desc.dpl() != rpl) {
        return Err(error);
    }
    if !desc.present() {
        return Err(Exception::SegmentNotPresent(cs & !3));
    }
    Ok((desc, addr))
}

/// Loads SS on a return to privilege `rpl` (CS already holds the new CPL).
fn load_stack_for(ctx: &mut Ctx, ss: u16, rpl: u8) -> Exec {
    if is_null(ss) && ctx.cpu.in_64bit_mode() && rpl < 3 {
        ctx.cpu.seg[SegReg::Ss as usize] = Segment {
            base: 0,
            limit: 0,
            selector: ss,
            attrs: 0,
        };
        return Ok(());
    }
    load_data_or_stack(ctx.cpu, ctx.mem, SegReg::Ss, ss)
}

/// RETF, with an optional count of bytes to release.
pub(super) fn far_return(ctx: &mut Ctx) -> Exec {
    let size = transfer_size(ctx.insn.code());
    let slot = u64::from(size);
    let release = if ctx.insn.op_count() == 1 {
        u64::from(ctx.insn.immediate16())
    } else {
        0
    };
    let rip = ctx.peek(size, 0)? & size_mask(size);
    let cs = ctx.peek(size, slot)? as u16;
    if real_addressing(ctx.cpu) {
        ctx.pop(size)?;
        ctx.pop(size)?;
        let seg = &mut ctx.cpu.seg[SegReg::Cs as usize];
        seg.selector = cs;
        seg.base = u64::from(cs) << 4;
        ctx.cpu.rip = rip;
        release_stack(ctx, release);
        return Ok(());
    }
    let cpl = ctx.cpu.cpl();
    let (desc, addr) = return_code_segment(ctx, cs)?;
    let outer = (cs & 3) as u8 > cpl;
    let (rsp, ss) = if outer {
        (
            ctx.peek(size, 2 * slot + release)?,
            ctx.peek(size, 3 * slot + release)? as u16,
        )
    } else {
        (0, 0)
    };
    load_code(ctx.cpu, ctx.mem, desc, addr, cs)?;
    if outer {
        load_stack_for(ctx, ss, (cs & 3) as u8)?;
        ctx.cpu.gpr[4] = rsp;
        release_stack(ctx, release);
        null_inaccessible_segments(ctx.cpu);
    } else {
        ctx.cpu.gpr[4] = ctx.cpu.gpr[4].wrapping_add(2 * slot);
        release_stack(ctx, release);
    }
    ctx.cpu.rip = rip;
    Ok(())
}

fn release_stack(ctx: &mut Ctx, bytes: u64) {
    let mask = size_mask(ctx.stack_width());
    let sp = ctx.cpu.gpr[4];
    ctx.cpu.gpr[4] = (sp & !mask) | (sp.wrapping_add(bytes) & mask);
}

/// The selector:offset of a far JMP/CALL: an immediate pointer or a memory m16:16/32/64.
fn far_target(ctx: &mut Ctx) -> Exec<(u16, u64)> {
    match ctx.insn.op_kind(0) {
        OpKind::FarBranch16 => Ok((
            ctx.insn.far_branch_selector(),
            u64::from(ctx.insn.far_branch16()),
        )),
        OpKind::FarBranch32 => Ok((
            ctx.insn.far_branch_selector(),
            u64::from(ctx.insn.far_branch32()),
        )),
        _ => {
            let addr = ctx.mem_addr()?;
            let offset_size = ctx.mem_size() - 2;
            let offset = ctx.read_mem(addr, offset_size)?;
            let selector = ctx.read_mem(addr.wrapping_add(offset_size as u64), 2)? as u16;
            Ok((selector, offset))
        }
    }
}

/// Far JMP and CALL to a code segment (gates and task switches are not supported).
pub(super) fn far_jump_or_call(ctx: &mut Ctx, call: bool) -> Exec {
    let (selector, offset) = far_target(ctx)?;
    let size = if ctx.insn.op_kind(0) == OpKind::Memory {
        (ctx.mem_size() - 2) as u32
    } else {
        ctx.op_size_of_far()
    };
    let return_cs = u64::from(ctx.cpu.seg[SegReg::Cs as usize].selector);
    let return_ip = ctx.cpu.rip;
    if real_addressing(ctx.cpu) {
        if call {
            ctx.push(return_cs, size)?;
            ctx.push(return_ip, size)?;
        }
        let seg = &mut ctx.cpu.seg[SegReg::Cs as usize];
        seg.selector = selector;
        seg.base = u64::from(selector) << 4;
        ctx.cpu.rip = offset;
        return Ok(());
    }
    if !is_null(selector) {
        let (desc, addr) = read_descriptor(ctx.cpu, ctx.mem, selector)?;
        if super::call_gate::is_call_gate(ctx, desc) {
            return super::call_gate::transfer(ctx, selector, desc, addr, call);
        }
    }
    let (desc, addr) = check_far_code(ctx.cpu, ctx.mem, selector)?;
    if !(ctx.cpu.in_long_mode() && desc.long()) && offset > u64::from(desc.limit()) {
        return Err(Exception::GeneralProtection(0));
    }
    if call {
        ctx.push(return_cs, size)?;
        ctx.push(return_ip, size)?;
    }
    let cpl = u16::from(ctx.cpu.cpl());
    load_code(ctx.cpu, ctx.mem, desc, addr, (selector & !3) | cpl)?;
    ctx.cpu.rip = offset;
    Ok(())
}

impl Ctx<'_> {
    /// Operand size of a far transfer with an immediate pointer.
    fn op_size_of_far(&self) -> u32 {
        if self.insn.op_kind(0) == OpKind::FarBranch16 {
            2
        } else {
            4
        }
    }
}

/// SYSCALL: to CPL 0 at LSTAR (CSTAR from compatibility mode), RCX/R11 keep RIP/RFLAGS.
pub(super) fn syscall(ctx: &mut Ctx) -> Exec {
    if ctx.cpu.efer & 1 == 0 || !ctx.cpu.in_long_mode() {
        return ctx.architectural_ud();
    }
    let star_cs = ((ctx.cpu.msr.star >> 32) & 0xfffc) as u16;
    ctx.cpu.gpr[1] = ctx.cpu.rip;
    ctx.cpu.gpr[11] = ctx.cpu.rflags() & !RF;
    ctx.cpu.rip = if ctx.cpu.in_64bit_mode() {
        ctx.cpu.msr.lstar
    } else {
        ctx.cpu.msr.cstar
    };
    ctx.cpu.seg[SegReg::Cs as usize] = Segment::flat(star_cs, 0x9b | Segment::ATTR_L);
    ctx.cpu.seg[SegReg::Ss as usize] = Segment::flat(star_cs + 8, 0x93 | Segment::ATTR_DB);
    let mask = ctx.cpu.msr.sfmask | RF;
    ctx.cpu.flags.update(mask & 0x3f_7fd5 | RF, 0);
    crate::system::sync_paging(ctx.cpu, ctx.mem);
    Ok(())
}

/// SYSRET: back to CPL 3, 64-bit with REX.W (RIP = RCX) or compatibility mode (EIP = ECX).
pub(super) fn sysret(ctx: &mut Ctx) -> Exec {
    if ctx.cpu.efer & 1 == 0 || !ctx.cpu.in_64bit_mode() {
        return ctx.architectural_ud();
    }
    if ctx.cpu.cpl() != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let base = ((ctx.cpu.msr.star >> 48) & 0xffff) as u16;
    let to_64 = ctx.insn.code() == Code::Sysretq;
    let rip = ctx.cpu.gpr[1];
    if to_64 && !super::is_canonical(rip) {
        return Err(Exception::GeneralProtection(0));
    }
    let (cs, cs_attrs) = if to_64 {
        (base + 16, 0xfb | Segment::ATTR_L)
    } else {
        (base, 0xfb | Segment::ATTR_DB)
    };
    ctx.cpu.rip = if to_64 { rip } else { rip & 0xffff_ffff };
    ctx.cpu.seg[SegReg::Cs as usize] = Segment::flat(cs | 3, cs_attrs);
    ctx.cpu.seg[SegReg::Ss as usize] = Segment::flat((base + 8) | 3, 0xf3 | Segment::ATTR_DB);
    let value = (ctx.cpu.gpr[11] & 0x3c_7fd7) | flags::FIXED1;
    ctx.cpu.set_rflags(value);
    crate::system::sync_paging(ctx.cpu, ctx.mem);
    Ok(())
}

/// SYSENTER: to CPL 0 at SYSENTER_EIP with SYSENTER_ESP.
pub(super) fn sysenter(ctx: &mut Ctx) -> Exec {
    let cs = (ctx.cpu.msr.sysenter_cs & 0xfffc) as u16;
    if ctx.cpu.cr0 & crate::state::CR0_PE == 0 || cs == 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let long = ctx.cpu.in_long_mode();
    let code_attrs = 0x9b
        | if long {
            Segment::ATTR_L
        } else {
            Segment::ATTR_DB
        };
    ctx.cpu.seg[SegReg::Cs as usize] = Segment::flat(cs, code_attrs);
    ctx.cpu.seg[SegReg::Ss as usize] = Segment::flat(cs + 8, 0x93 | Segment::ATTR_DB);
    let width = if long { u64::MAX } else { 0xffff_ffff };
    ctx.cpu.rip = ctx.cpu.msr.sysenter_eip & width;
    ctx.cpu.gpr[4] = ctx.cpu.msr.sysenter_esp & width;
    ctx.cpu.flags.update(VM | IF | RF, 0);
    crate::system::sync_paging(ctx.cpu, ctx.mem);
    Ok(())
}

/// SYSEXIT: to CPL 3 with RIP = RDX and RSP = RCX (64-bit with REX.W).
pub(super) fn sysexit(ctx: &mut Ctx) -> Exec {
    let base = (ctx.cpu.msr.sysenter_cs & 0xfffc) as u16;
    if ctx.cpu.cr0 & crate::state::CR0_PE == 0 || base == 0 || ctx.cpu.cpl() != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let to_64 = ctx.insn.code() == Code::Sysexitq;
    let (cs, ss, attrs) = if to_64 {
        (base + 32, base + 40, 0xfb | Segment::ATTR_L)
    } else {
        (base + 16, base + 24, 0xfb | Segment::ATTR_DB)
    };
    let width = if to_64 { u64::MAX } else { 0xffff_ffff };
    ctx.cpu.seg[SegReg::Cs as usize] = Segment::flat(cs | 3, attrs);
    ctx.cpu.seg[SegReg::Ss as usize] = Segment::flat(ss | 3, 0xf3 | Segment::ATTR_DB);
    ctx.cpu.rip = ctx.cpu.gpr[2] & width;
    ctx.cpu.gpr[4] = ctx.cpu.gpr[1] & width;
    crate::system::sync_paging(ctx.cpu, ctx.mem);
    Ok(())
}
