//! Far CALL and JMP through call gates: 16- and 32-bit gates in protected mode (a CALL to
//! a more privileged non-conforming segment switches to the TSS stack for its DPL and copies
//! the gate's parameter count of words or dwords), and 64-bit gates in long mode (no
//! parameters; the new SS is null). The new frame is written before anything commits, so a
//! fault leaves the CPU unchanged.

use super::operand::{Ctx, Exec};
use crate::flags::size_mask;
use crate::system::descriptor::{is_null, read_descriptor, read_upper, Descriptor};
use crate::system::{segments, tss};
use crate::{Exception, SegReg, Segment};
use iced_x86::Register;

/// A call gate, decoded.
struct Gate {
    target_selector: u16,
    offset: u64,
    params: u64,
    /// Slot size of the frame: 2, 4 or 8 bytes.
    slot: u64,
}

/// Whether a descriptor is a call gate for the current mode.
pub(super) fn is_call_gate(ctx: &Ctx, desc: Descriptor) -> bool {
    !desc.is_code_or_data()
        && if ctx.cpu.in_long_mode() {
            desc.kind() == 0xc
        } else {
            matches!(desc.kind(), 0x4 | 0xc)
        }
}

fn decode(ctx: &mut Ctx, desc: Descriptor, addr: u64) -> Exec<Gate> {
    let mut offset = (desc.0 & 0xffff) | ((desc.0 >> 32) & 0xffff_0000);
    let slot = if ctx.cpu.in_long_mode() {
        offset |= (read_upper(ctx.mem, addr)? & 0xffff_ffff) << 32;
        8
    } else if desc.kind() == 0xc {
        4
    } else {
        offset &= 0xffff;
        2
    };
    let params = if slot == 8 { 0 } else { (desc.0 >> 32) & 0x1f };
    Ok(Gate {
        target_selector: ((desc.0 >> 16) & 0xffff) as u16,
        offset,
        params,
        slot,
    })
}

/// CALL or JMP through the gate `gate_selector`, whose descriptor is `desc` at `addr`.
pub(super) fn transfer(
    ctx: &mut Ctx,
    gate_selector: u16,
    desc: Descriptor,
    addr: u64,
    call: bool,
) -> Exec {
    let cpl = ctx.cpu.cpl();
    let gate_error = Exception::GeneralProtection(gate_selector & !3);
    if desc.dpl() < cpl || desc.dpl() < (gate_selector & 3) as u8 {
        return Err(gate_error);
    }
    if !desc.present() {
        return Err(Exception::SegmentNotPresent(gate_selector & !3));
    }
    let gate = decode(ctx, desc, addr)?;
    let (code, code_addr) = target_code(ctx, &gate)?;
    let new_cpl = if code.is_conforming() {
        cpl
    } else {
        code.dpl()
    };
    if !call && new_cpl != cpl {
        return Err(Exception::GeneralProtection(gate.target_selector & !3));
    }
    let return_cs = u64::from(ctx.cpu.seg[SegReg::Cs as usize].selector);
    let return_ip = ctx.cpu.rip;
    let new_cs = (gate.target_selector & !3) | u16::from(new_cpl);
    if call && new_cpl < cpl {
        call_inward(ctx, &gate, new_cpl, return_cs, return_ip)?;
    } else if call {
        ctx.push(return_cs, gate.slot as u32)?;
        ctx.push(return_ip, gate.slot as u32)?;
    }
    segments::load_code(ctx.cpu, ctx.mem, code, code_addr, new_cs)?;
    ctx.cpu.rip = gate.offset;
    Ok(())
}

/// The code segment a gate names: present code with DPL <= CPL (64-bit code in long mode).
fn target_code(ctx: &mut Ctx, gate: &Gate) -> Exec<(Descriptor, u64)> {
    let selector = gate.target_selector;
    if is_null(selector) {
        return Err(Exception::GeneralProtection(0));
    }
    let error = Exception::GeneralProtection(selector & !3);
    let (code, addr) = read_descriptor(ctx.cpu, ctx.mem, selector)?;
    let long_ok = !ctx.cpu.in_long_mode() || (code.long() && code.0 & (1 << 54) == 0);
    if !code.is_code() || code.dpl() > ctx.cpu.cpl() || !long_ok {
        return Err(error);
    }
    if !code.present() {
        return Err(Exception::SegmentNotPresent(selector & !3));
    }
    Ok((code, addr))
}

/// A CALL to an inner privilege level: the new stack from the TSS receives the caller's
/// SS:ESP, the copied parameters and CS:EIP; then SS:ESP switch.
fn call_inward(ctx: &mut Ctx, gate: &Gate, new_cpl: u8, return_cs: u64, return_ip: u64) -> Exec {
    let old_ss = ctx.cpu.seg[SegReg::Ss as usize];
    let old_sp = ctx.cpu.gpr[4] & size_mask(ctx.stack_width());
    let (new_ss, mut sp) = if ctx.cpu.in_long_mode() {
        let null = Segment {
            base: 0,
            limit: 0,
            selector: u16::from(new_cpl),
            attrs: 0,
        };
        (null, tss::long_inner_stack(ctx.cpu, ctx.mem, new_cpl)?)
    } else {
        tss::legacy_inner_stack(ctx.cpu, ctx.mem, new_cpl)?
    };
    let mut frame = vec![u64::from(old_ss.selector), old_sp];
    // Parameters are copied so that they keep their order: the deepest first.
    for i in (0..gate.params).rev() {
        let at = ctx.linear_sized(Register::SS, old_sp.wrapping_add(i * gate.slot), gate.slot)?;
        frame.push(ctx.read_mem(at, gate.slot as usize)?);
    }
    frame.extend([return_cs, return_ip]);
    let long = ctx.cpu.in_long_mode();
    let sp_mask = if long {
        u64::MAX
    } else if new_ss.attrs & Segment::ATTR_DB != 0 {
        0xffff_ffff
    } else {
        0xffff
    };
    for value in &frame {
        sp = sp.wrapping_sub(gate.slot) & sp_mask;
        let linear = if long {
            sp
        } else {
            new_ss.base.wrapping_add(sp) & 0xffff_ffff
        };
        if long && !super::is_canonical(linear) {
            return Err(Exception::StackFault(0));
        }
        ctx.mem
            .write_supervisor(linear, &value.to_le_bytes()[..gate.slot as usize])?;
    }
    ctx.cpu.seg[SegReg::Ss as usize] = new_ss;
    ctx.cpu.gpr[4] = (ctx.cpu.gpr[4] & !sp_mask) | sp;
    Ok(())
}
