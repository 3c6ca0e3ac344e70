//! Delivery of exceptions and interrupts: through the IVT in real mode, through 16/32-bit
//! interrupt and trap gates (with a stack switch from the TSS; out of virtual-8086 mode the
//! data segments are saved and nulled) in protected mode, and
//! through the 64-bit IDT (with IST stacks and 16-byte stack alignment) in long mode.
//! Faults during delivery escalate to #DF, and a fault while delivering #DF is a triple
//! fault, which the caller sees as a reset.

use super::descriptor::{read_descriptor, read_upper, Descriptor};
use crate::flags::{AC, IF, NT, RF, TF, VM};
use crate::state::{Segment, CR0_PE};
use crate::{CpuState, Exception, SegReg};
use softvisor_mmu::Memory;

/// What is being delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A fault or trap raised by an instruction (RIP is the value to push).
    Exception(Exception),
    /// An external interrupt or NMI with its vector.
    External(u8),
    /// INT n / INT3 / INTO: checked against the gate's DPL.
    Software(u8),
    /// INT1 (ICEBP): like a software interrupt but not DPL-checked.
    Icebp,
}

impl Event {
    fn vector(self) -> u8 {
        match self {
            Event::Exception(e) => e.vector(),
            Event::External(v) | Event::Software(v) => v,
            Event::Icebp => 1,
        }
    }

    fn error_code(self) -> Option<u32> {
        match self {
            Event::Exception(e) => e.error_code(),
            _ => None,
        }
    }

    /// The EXT bit of error codes raised while delivering this event.
    fn ext(self) -> u16 {
        u16::from(!matches!(self, Event::Software(_)))
    }
}

/// The machine must reset: a triple fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TripleFault;

/// Benign, contributory or page-fault class, for the double-fault rules.
fn class(e: Exception) -> u8 {
    match e {
        Exception::DivideError
        | Exception::InvalidTss(_)
        | Exception::SegmentNotPresent(_)
        | Exception::StackFault(_)
        | Exception::GeneralProtection(_) => 1,
        Exception::PageFault { .. } => 2,
        _ => 0,
    }
}

/// Delivers `event`, escalating to #DF and triple fault as the SDM's table says.
pub fn deliver(cpu: &mut CpuState, mem: &mut dyn Memory, event: Event) -> Result<(), TripleFault> {
    let mut event = event;
    let mut first: Option<Exception> = None;
    loop {
        if let Event::Exception(Exception::PageFault { addr, .. }) = event {
            cpu.cr2 = addr;
        }
        let Err(second) = deliver_once(cpu, mem, event) else {
            return Ok(());
        };
        let current = match event {
            Event::Exception(e) => e,
            _ => {
                event = Event::Exception(second);
                first = None;
                continue;
            }
        };
        if current == Exception::DoubleFault || first == Some(Exception::DoubleFault) {
            return Err(TripleFault);
        }
        let escalate = matches!((class(current), class(second)), (1, 1) | (2, 1) | (2, 2));
        first = Some(current);
        event = Event::Exception(if escalate {
            Exception::DoubleFault
        } else {
            second
        });
    }
}

fn deliver_once(cpu: &mut CpuState, mem: &mut dyn Memory, event: Event) -> Result<(), Exception> {
    if cpu.cr0 & CR0_PE == 0 {
        real_mode(cpu, mem, event)
    } else if cpu.in_long_mode() {
        long_mode(cpu, mem, event)
    } else {
        protected_mode(cpu, mem, event)
    }
}

/// Real mode: IVT entry = offset:segment; push FLAGS, CS, IP.
fn real_mode(cpu: &mut CpuState, mem: &mut dyn Memory, event: Event) -> Result<(), Exception> {
    let vector = u64::from(event.vector());
    if vector * 4 + 3 > u64::from(cpu.idtr.limit) {
        return Err(Exception::GeneralProtection(0));
    }
    let mut entry = [0u8; 4];
    mem.read_supervisor(cpu.idtr.base.wrapping_add(vector * 4), &mut entry)?;
    let flags = cpu.rflags();
    let cs = cpu.seg[SegReg::Cs as usize].selector;
    let ip = cpu.rip;
    let ss_base = cpu.seg[SegReg::Ss as usize].base;
    let mut sp = cpu.gpr[4] as u16;
    for value in [flags as u16, cs, ip as u16] {
        sp = sp.wrapping_sub(2);
        mem.write_supervisor(ss_base.wrapping_add(u64::from(sp)), &value.to_le_bytes())?;
    }
    cpu.gpr[4] = (cpu.gpr[4] & !0xffff) | u64::from(sp);
    cpu.flags.update(IF | TF | AC | RF, 0);
    let segment = u16::from_le_bytes([entry[2], entry[3]]);
    let code = &mut cpu.seg[SegReg::Cs as usize];
    code.selector = segment;
    code.base = u64::from(segment) << 4;
    cpu.rip = u64::from(u16::from_le_bytes([entry[0], entry[1]]));
    Ok(())
}

/// The IDT gate for `event`, checked for limit, type, DPL (software interrupts) and
/// presence. Returns the low and high 8 bytes (high is 0 outside long mode).
fn read_gate(
    cpu: &CpuState,
    mem: &mut dyn Memory,
    event: Event,
    long: bool,
) -> Result<(Descriptor, u64), Exception> {
    let vector = u64::from(event.vector());
    let size = if long { 16 } else { 8 };
    let idt_error = (vector as u16) * 8 + 2 + event.ext();
    if vector * size + size - 1 > u64::from(cpu.idtr.limit) {
        return Err(Exception::GeneralProtection(idt_error));
    }
    let addr = cpu.idtr.base.wrapping_add(vector * size);
    let mut bytes = [0u8; 8];
    mem.read_supervisor(addr, &mut bytes)?;
    let gate = Descriptor(u64::from_le_bytes(bytes));
    let high = if long { read_upper(mem, addr)? } else { 0 };
    let valid = if long {
        matches!(gate.kind(), 0xe | 0xf)
    } else {
        matches!(gate.kind(), 0x6 | 0x7 | 0xe | 0xf)
    };
    if gate.is_code_or_data() || !valid {
        return Err(Exception::GeneralProtection(idt_error));
    }
    if matches!(event, Event::Software(_)) && gate.dpl() < cpu.cpl() {
        return Err(Exception::GeneralProtection(idt_error));
    }
    if !gate.present() {
        return Err(Exception::SegmentNotPresent(idt_error));
    }
    Ok((gate, high))
}

/// The code segment a gate names, checked: a present code segment with DPL <= CPL.
fn gate_code_segment(
    cpu: &CpuState,
    mem: &mut dyn Memory,
    selector: u16,
    event: Event,
) -> Result<Descriptor, Exception> {
    let ext = event.ext();
    if super::descriptor::is_null(selector) {
        return Err(Exception::GeneralProtection(ext));
    }
    let (desc, _) = read_descriptor(cpu, mem, selector)
        .map_err(|_| Exception::GeneralProtection((selector & !3) | ext))?;
    if !desc.is_code() || desc.dpl() > cpu.cpl() {
        return Err(Exception::GeneralProtection((selector & !3) | ext));
    }
    if !desc.present() {
        return Err(Exception::SegmentNotPresent((selector & !3) | ext));
    }
    Ok(desc)
}

/// Long mode: 64-bit gates, RSP from the TSS on a privilege change or from an IST slot,
/// 16-byte alignment, and a 5-slot frame (plus the error code).
fn long_mode(cpu: &mut CpuState, mem: &mut dyn Memory, event: Event) -> Result<(), Exception> {
    let (gate, high) = read_gate(cpu, mem, event, true)?;
    let selector = ((gate.0 >> 16) & 0xffff) as u16;
    let target = (gate.0 & 0xffff) | ((gate.0 >> 32) & 0xffff_0000) | (high << 32);
    let code = gate_code_segment(cpu, mem, selector, event)?;
    if !code.long() || code.0 & (1 << 54) != 0 {
        return Err(Exception::GeneralProtection((selector & !3) | event.ext()));
    }
    let old_cpl = cpu.cpl();
    let new_cpl = if code.is_conforming() {
        old_cpl
    } else {
        code.dpl()
    };
    let ist = (gate.0 >> 32) & 7;
    let mut rsp = cpu.gpr[4];
    if ist != 0 {
        rsp = super::tss::read(cpu, mem, 36 + 8 * (ist - 1), 8)?;
    } else if new_cpl < old_cpl {
        rsp = super::tss::long_inner_stack(cpu, mem, new_cpl)?;
    }
    rsp &= !0xf;
    let old_ss = cpu.seg[SegReg::Ss as usize].selector;
    let mut frame = vec![
        u64::from(old_ss),
        cpu.gpr[4],
        cpu.rflags(),
        u64::from(cpu.seg[SegReg::Cs as usize].selector),
        cpu.rip,
    ];
    if let Some(code) = event.error_code() {
        frame.push(u64::from(code));
    }
    for value in &frame {
        rsp = rsp.wrapping_sub(8);
        if !crate::interp::is_canonical(rsp) {
            return Err(Exception::StackFault(0));
        }
        mem.write_supervisor(rsp, &value.to_le_bytes())?;
    }
    if new_cpl < old_cpl {
        cpu.seg[SegReg::Ss as usize] = Segment {
            base: 0,
            limit: 0,
            selector: u16::from(new_cpl),
            attrs: 0,
        };
    }
    cpu.gpr[4] = rsp;
    enter_handler(
        cpu,
        mem,
        code.to_segment((selector & !3) | u16::from(new_cpl)),
        target,
        gate.kind() == 0xe,
    );
    Ok(())
}

/// Protected mode: 16- or 32-bit gates; on a privilege change SS:ESP comes from the TSS and
/// the old SS:ESP is pushed.
fn protected_mode(cpu: &mut CpuState, mem: &mut dyn Memory, event: Event) -> Result<(), Exception> {
    let (gate, _) = read_gate(cpu, mem, event, false)?;
    let selector = ((gate.0 >> 16) & 0xffff) as u16;
    let wide = gate.kind() & 8 != 0;
    let target = (gate.0 & 0xffff)
        | if wide {
            (gate.0 >> 32) & 0xffff_0000
        } else {
            0
        };
    let code = gate_code_segment(cpu, mem, selector, event)?;
    let old_cpl = cpu.cpl();
    let new_cpl = if code.is_conforming() {
        old_cpl
    } else {
        code.dpl()
    };
    let slot: u64 = if wide { 4 } else { 2 };
    let mut frame = Vec::with_capacity(10);
    let (mut ss, mut sp) = (cpu.seg[SegReg::Ss as usize], cpu.gpr[4]);
    let from_v86 = cpu.flags.bits & VM != 0;
    if from_v86 {
        // Out of virtual-8086 mode only to a 32-bit gate and ring-0 code; the data segment
        // selectors go on the new stack first.
        if new_cpl != 0 || !wide {
            return Err(Exception::GeneralProtection((selector & !3) | event.ext()));
        }
        for seg in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
            frame.push(u64::from(cpu.seg[seg as usize].selector));
        }
    }
    if new_cpl < old_cpl {
        let (new_ss, new_sp) = super::tss::legacy_inner_stack(cpu, mem, new_cpl)?;
        frame.push(u64::from(ss.selector));
        frame.push(cpu.gpr[4]);
        ss = new_ss;
        sp = new_sp;
    }
    frame.extend([
        cpu.rflags(),
        u64::from(cpu.seg[SegReg::Cs as usize].selector),
        cpu.rip,
    ]);
    if let Some(code) = event.error_code() {
        frame.push(u64::from(code));
    }
    let sp_mask: u64 = if ss.attrs & Segment::ATTR_DB != 0 {
        0xffff_ffff
    } else {
        0xffff
    };
    for value in &frame {
        sp = sp.wrapping_sub(slot) & sp_mask;
        mem.write_supervisor(
            ss.base.wrapping_add(sp) & 0xffff_ffff,
            &value.to_le_bytes()[..slot as usize],
        )?;
    }
    cpu.seg[SegReg::Ss as usize] = ss;
    cpu.gpr[4] = (cpu.gpr[4] & !sp_mask) | sp;
    if from_v86 {
        for seg in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            cpu.seg[seg as usize] = Segment::default();
        }
    }
    enter_handler(
        cpu,
        mem,
        code.to_segment((selector & !3) | u16::from(new_cpl)),
        target,
        gate.kind() & 1 == 0,
    );
    Ok(())
}

/// Loads CS and RIP of the handler and clears the flags delivery clears.
fn enter_handler(
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    cs: Segment,
    rip: u64,
    interrupt_gate: bool,
) {
    cpu.seg[SegReg::Cs as usize] = cs;
    cpu.rip = rip;
    let mut clear = TF | NT | RF | VM;
    if interrupt_gate {
        clear |= IF;
    }
    cpu.flags.update(clear, 0);
    super::sync_paging(cpu, mem);
}
