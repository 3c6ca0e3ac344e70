//! Delivery tests: long mode (ring 3 to ring 0 with the TSS stack and an IST stack), real
//! mode through the IVT, escalation to #DF, and the triple fault.

use super::deliver::{deliver, Event, TripleFault};
use crate::state::{Segment, TableReg, CR0_PE};
use crate::{CpuState, Exception, SegReg};
use softvisor_mmu::{FlatMemory, GuestRam, Memory};

const IDT: u64 = 0x1000;
const GDT: u64 = 0x2000;
const TSS: u64 = 0x3000;

/// A 64-bit gate for `vector` -> 0x10:`target` with `ist` and `dpl`.
fn gate(mem: &mut FlatMemory, vector: u64, target: u64, ist: u64, dpl: u64) {
    let low = (target & 0xffff)
        | (0x10 << 16)
        | (ist << 32)
        | ((0x8e | (dpl << 5)) << 40)
        | ((target >> 16) & 0xffff) << 48;
    mem.write_u64(IDT + vector * 16, low).unwrap();
    mem.write_u64(IDT + vector * 16 + 8, target >> 32).unwrap();
}

fn long_mode_machine() -> (CpuState, FlatMemory) {
    let mut mem = FlatMemory::new(GuestRam::new(0x20_0000).unwrap());
    mem.write_u64(GDT + 0x10, 0x00af_9b00_0000_ffff).unwrap(); // kernel code
    mem.write_u64(TSS + 4, 0x9000).unwrap(); // RSP0
    mem.write_u64(TSS + 36, 0xa008).unwrap(); // IST1 (misaligned on purpose)
    let mut cpu = CpuState::new_long_mode();
    cpu.gdtr = TableReg {
        base: GDT,
        limit: 0xff,
    };
    cpu.idtr = TableReg {
        base: IDT,
        limit: 0xfff,
    };
    cpu.tr = Segment {
        base: TSS,
        limit: 0x67,
        selector: 0x28,
        attrs: 0x8b,
    };
    cpu.seg[SegReg::Cs as usize] = Segment::flat(0x33, 0xfb | Segment::ATTR_L);
    cpu.seg[SegReg::Ss as usize] = Segment::flat(0x2b, 0xf3);
    cpu.gpr[4] = 0x7_0000;
    cpu.rip = 0x40_1234;
    cpu.set_rflags(0x246);
    (cpu, mem)
}

#[test]
fn page_fault_from_user_mode_switches_to_the_kernel_stack() {
    let (mut cpu, mut mem) = long_mode_machine();
    gate(&mut mem, 14, 0xffff_ffff_8100_0000, 0, 0);
    deliver(
        &mut cpu,
        &mut mem,
        Event::Exception(Exception::PageFault {
            addr: 0xdead_0000,
            error_code: 6,
        }),
    )
    .unwrap();
    assert_eq!(cpu.rip, 0xffff_ffff_8100_0000);
    assert_eq!(cpu.seg[SegReg::Cs as usize].selector, 0x10);
    assert_eq!(cpu.cpl(), 0);
    assert_eq!(cpu.cr2, 0xdead_0000);
    assert_eq!(cpu.gpr[4], 0x9000 - 48);
    let frame: Vec<u64> = (0..6)
        .map(|i| mem.read_u64(cpu.gpr[4] + 8 * i).unwrap())
        .collect();
    assert_eq!(frame, vec![6, 0x40_1234, 0x33, 0x246, 0x7_0000, 0x2b]);
    assert_eq!(
        cpu.rflags() & crate::flags::IF,
        0,
        "interrupt gate clears IF"
    );
}

#[test]
fn ist_stack_is_used_and_aligned() {
    let (mut cpu, mut mem) = long_mode_machine();
    gate(&mut mem, 2, 0x5000, 1, 0);
    deliver(&mut cpu, &mut mem, Event::External(2)).unwrap();
    assert_eq!(cpu.gpr[4], 0xa000 - 40);
}

#[test]
fn software_interrupt_checks_the_gate_dpl() {
    let (mut cpu, mut mem) = long_mode_machine();
    gate(&mut mem, 0x80, 0x5000, 0, 0);
    gate(&mut mem, 13, 0x6000, 0, 0);
    // INT 0x80 from ring 3 through a DPL-0 gate raises #GP(0x80*8+2), delivered instead.
    deliver(&mut cpu, &mut mem, Event::Software(0x80)).unwrap();
    assert_eq!(cpu.rip, 0x6000);
    assert_eq!(mem.read_u64(cpu.gpr[4]).unwrap(), 0x80 * 8 + 2);
    let (mut cpu, mut mem) = long_mode_machine();
    gate(&mut mem, 0x80, 0x5000, 0, 3);
    deliver(&mut cpu, &mut mem, Event::Software(0x80)).unwrap();
    assert_eq!(cpu.rip, 0x5000);
}

#[test]
fn faults_during_delivery_escalate_then_triple_fault() {
    let (mut cpu, mut mem) = long_mode_machine();
    // #GP's gate is missing (not present => #NP, contributory) but #DF's exists.
    gate(&mut mem, 8, 0x7000, 0, 0);
    deliver(
        &mut cpu,
        &mut mem,
        Event::Exception(Exception::GeneralProtection(0)),
    )
    .unwrap();
    assert_eq!(cpu.rip, 0x7000);
    assert_eq!(
        mem.read_u64(cpu.gpr[4]).unwrap(),
        0,
        "#DF pushes error code 0"
    );
    // With no #DF gate either, it is a triple fault.
    let (mut cpu, mut mem) = long_mode_machine();
    assert_eq!(
        deliver(
            &mut cpu,
            &mut mem,
            Event::Exception(Exception::GeneralProtection(0))
        ),
        Err(TripleFault)
    );
}

#[test]
fn real_mode_uses_the_ivt() {
    let mut mem = FlatMemory::new(GuestRam::new(0x10_0000).unwrap());
    mem.write_u32(8 * 4, 0xf000_1234).unwrap(); // vector 8 -> F000:1234
    let mut cpu = CpuState::new_long_mode();
    cpu.cr0 &= !(CR0_PE | crate::state::CR0_PG);
    cpu.efer = 0;
    cpu.idtr = TableReg {
        base: 0,
        limit: 0x3ff,
    };
    cpu.seg[SegReg::Cs as usize] = Segment {
        base: 0x7c00 << 4,
        limit: 0xffff,
        selector: 0x7c00,
        attrs: 0x9b,
    };
    cpu.seg[SegReg::Ss as usize] = Segment {
        base: 0x1000,
        limit: 0xffff,
        selector: 0x100,
        attrs: 0x93,
    };
    cpu.gpr[4] = 0x200;
    cpu.rip = 0x55;
    cpu.set_rflags(0x202);
    deliver(&mut cpu, &mut mem, Event::External(8)).unwrap();
    assert_eq!(
        (cpu.seg[SegReg::Cs as usize].base, cpu.rip),
        (0xf_0000, 0x1234)
    );
    assert_eq!(cpu.gpr[4], 0x1fa);
    assert_eq!(mem.read_u16(0x1000 + 0x1fa).unwrap(), 0x55);
    assert_eq!(mem.read_u16(0x1000 + 0x1fc).unwrap(), 0x7c00);
    assert_eq!(mem.read_u16(0x1000 + 0x1fe).unwrap(), 0x202);
}
