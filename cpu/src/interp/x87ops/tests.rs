//! Unit tests of the x87 instructions on real instruction bytes. Expected values (results,
//! status words, flags) were recorded on an AMD EPYC host by running the same bytes.

use super::control::full_fsw;
use crate::state::{CR0_MP, CR0_TS};
use crate::{CpuState, Exception, X87State};
use softvisor_mmu::{AccessKind, FlatMemory, GuestRam, Memory};

const DATA: u64 = 0x1000;

fn machine(code: &[u8], fcw: u16, data: &[u8]) -> (CpuState, FlatMemory) {
    let mut mem = FlatMemory::new(GuestRam::new(0x10000).unwrap());
    mem.write(0, code).unwrap();
    mem.write(DATA, data).unwrap();
    let mut cpu = CpuState::new_long_mode();
    cpu.gpr[6] = DATA;
    cpu.x87.fcw = fcw;
    (cpu, mem)
}

/// Runs `code` to its end from FNINIT state with control word `fcw`, RSI pointing at `data`.
fn run(code: &[u8], fcw: u16, data: &[u8]) -> (CpuState, FlatMemory) {
    let (mut cpu, mut mem) = machine(code, fcw, data);
    while cpu.rip < code.len() as u64 {
        crate::interp::step(&mut cpu, &mut mem).unwrap();
    }
    (cpu, mem)
}

fn st(x: &X87State, i: usize) -> (u16, u64) {
    let r = x.regs[(usize::from(x.top) + i) & 7];
    (r.sign_exp, r.signif)
}

fn f80_bytes(signif: u64, sign_exp: u16) -> Vec<u8> {
    let mut v = signif.to_le_bytes().to_vec();
    v.extend_from_slice(&sign_exp.to_le_bytes());
    v
}

fn read(mem: &mut FlatMemory, addr: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    mem.read(addr, &mut buf, AccessKind::Read).unwrap();
    buf
}

#[test]
fn one_third_in_every_precision_and_rounding_mode() {
    // FLD1; FLD dword [rsi] (3.0); FDIVP st(1), st(0).
    let code = [0xd9, 0xe8, 0xd9, 0x06, 0xde, 0xf9];
    let three = 3.0f32.to_bits().to_le_bytes();
    let cases: [(u16, u64, u16); 12] = [
        (0x007f, 0xaaaa_ab00_0000_0000, 0x3a20),
        (0x047f, 0xaaaa_aa00_0000_0000, 0x3820),
        (0x087f, 0xaaaa_ab00_0000_0000, 0x3a20),
        (0x0c7f, 0xaaaa_aa00_0000_0000, 0x3820),
        (0x027f, 0xaaaa_aaaa_aaaa_a800, 0x3820),
        (0x067f, 0xaaaa_aaaa_aaaa_a800, 0x3820),
        (0x0a7f, 0xaaaa_aaaa_aaaa_b000, 0x3a20),
        (0x0e7f, 0xaaaa_aaaa_aaaa_a800, 0x3820),
        (0x037f, 0xaaaa_aaaa_aaaa_aaab, 0x3a20),
        (0x077f, 0xaaaa_aaaa_aaaa_aaaa, 0x3820),
        (0x0b7f, 0xaaaa_aaaa_aaaa_aaab, 0x3a20),
        (0x0f7f, 0xaaaa_aaaa_aaaa_aaaa, 0x3820),
    ];
    for (fcw, signif, fsw) in cases {
        let (cpu, _) = run(&code, fcw, &three);
        assert_eq!(st(&cpu.x87, 0), (0x3ffd, signif), "fcw {fcw:#x}");
        assert_eq!(full_fsw(&cpu.x87), fsw, "fcw {fcw:#x}");
        assert_eq!(cpu.x87.ftw, 0x3fff);
    }
}

#[test]
fn fild_fistp_round_trip() {
    // FILD qword [rsi]; FISTP qword [rsi+8].
    let value = -1_234_567_890_123_456_789i64;
    let (cpu, mut mem) = run(&[0xdf, 0x2e, 0xdf, 0x7e, 0x08], 0x37f, &value.to_le_bytes());
    assert_eq!(read(&mut mem, DATA + 8, 8), value.to_le_bytes());
    assert_eq!(full_fsw(&cpu.x87), 0);
    assert_eq!(cpu.x87.ftw, 0xffff);
}

#[test]
fn out_of_range_integer_stores_give_the_integer_indefinite() {
    // FLD qword [rsi] (1e20); FISTP dword [rsi+8]; FLD dword [rsi+24] (40000.0);
    // FIST word [rsi+16].
    let code = [
        0xdd, 0x06, 0xdb, 0x5e, 0x08, 0xd9, 0x46, 0x18, 0xdf, 0x56, 0x10,
    ];
    let mut data = vec![0u8; 28];
    data[..8].copy_from_slice(&1e20f64.to_bits().to_le_bytes());
    data[24..].copy_from_slice(&40000.0f32.to_bits().to_le_bytes());
    let (cpu, mut mem) = run(&code, 0x37f, &data);
    assert_eq!(read(&mut mem, DATA + 8, 4), [0, 0, 0, 0x80]);
    assert_eq!(read(&mut mem, DATA + 16, 2), [0, 0x80]);
    assert_eq!(full_fsw(&cpu.x87), 0x3801);
    assert_eq!(st(&cpu.x87, 0), (0x400e, 0x9c40_0000_0000_0000));
}

#[test]
fn stack_overflow_pushes_the_indefinite_with_c1_set() {
    let code: Vec<u8> = [0xd9, 0xe8].repeat(9);
    let (cpu, _) = run(&code, 0x37f, &[]);
    assert_eq!(full_fsw(&cpu.x87), 0x3a41);
    assert_eq!(st(&cpu.x87, 0), (0xffff, 0xc000_0000_0000_0000));
    assert_eq!(st(&cpu.x87, 1), (0x3fff, 0x8000_0000_0000_0000));
}

#[test]
fn stack_underflow_stores_the_indefinite_with_c1_clear() {
    // FADD st(0), st(1) on an empty stack.
    let (cpu, _) = run(&[0xd8, 0xc1], 0x37f, &[]);
    assert_eq!(full_fsw(&cpu.x87), 0x0041);
    assert_eq!(cpu.x87.ftw, 0xfffe);
    assert_eq!(st(&cpu.x87, 0), (0xffff, 0xc000_0000_0000_0000));
}

#[test]
fn nan_propagation() {
    // FLD tword [rsi]; FLD tword [rsi+16]; FADDP st(1), st(0).
    let code = [0xdb, 0x2e, 0xdb, 0x6e, 0x10, 0xde, 0xc1];
    let cases = [
        // Two QNaNs: the larger significand wins.
        (
            (0xc000_0000_0000_0001, 0x7fff),
            (0xc000_0000_0000_0100, 0xffff),
            (0xffff, 0xc000_0000_0000_0100),
            0x3800,
        ),
        // SNaN and QNaN: the QNaN wins and IE is raised.
        (
            (0xa000_0000_0000_0000, 0x7fff),
            (0xc000_0000_0000_0001, 0x7fff),
            (0x7fff, 0xc000_0000_0000_0001),
            0x3801,
        ),
    ];
    for ((sa, ea), (sb, eb), expected, fsw) in cases {
        let mut data = f80_bytes(sa, ea);
        data.resize(16, 0);
        data.extend(f80_bytes(sb, eb));
        let (cpu, _) = run(&code, 0x37f, &data);
        assert_eq!(st(&cpu.x87, 0), expected);
        assert_eq!(full_fsw(&cpu.x87), fsw);
    }
}

#[test]
fn fcomi_sets_zf_pf_cf() {
    use crate::flags::{CF, PF, ZF};
    // FLD1; FLD dword [rsi] (or FLD1); FCOMI st(0), st(1).
    let cases: [(&[u8], f32, u64, u16); 4] = [
        (&[0xd9, 0xe8, 0xd9, 0x06, 0xdb, 0xf1], 2.0, 0, 0x3000),
        (&[0xd9, 0xe8, 0xd9, 0x06, 0xdb, 0xf1], 0.5, CF, 0x3000),
        (&[0xd9, 0xe8, 0xd9, 0xe8, 0xdb, 0xf1], 0.0, ZF, 0x3000),
        (
            &[0xd9, 0xe8, 0xd9, 0x06, 0xdb, 0xf1],
            f32::from_bits(0x7fc0_0000),
            ZF | PF | CF,
            0x3001,
        ),
    ];
    for (code, value, flags, fsw) in cases {
        let (cpu, _) = run(code, 0x37f, &value.to_bits().to_le_bytes());
        assert_eq!(cpu.rflags() & (ZF | PF | CF), flags, "{value}");
        assert_eq!(full_fsw(&cpu.x87), fsw, "{value}");
    }
}

#[test]
fn fxam_classes() {
    // FLD tword [rsi]; FXAM.
    let cases = [
        ((0, 0), 0x7800),                          // zero: C3
        ((0x8000_0000_0000_0000, 0x3fff), 0x3c00), // normal: C2
        ((1, 0), 0x7c00),                          // denormal: C3 C2
        ((0x8000_0000_0000_0000, 0x7fff), 0x3d00), // infinity: C2 C0
        ((0xc000_0000_0000_0000, 0xffff), 0x3b00), // negative NaN: C1 C0
        ((1, 0x3fff), 0x3800),                     // unnormal: unsupported
    ];
    for ((signif, sign_exp), fsw) in cases {
        let (cpu, _) = run(
            &[0xdb, 0x2e, 0xd9, 0xe5],
            0x37f,
            &f80_bytes(signif, sign_exp),
        );
        assert_eq!(full_fsw(&cpu.x87), fsw, "{sign_exp:#x}:{signif:#x}");
    }
    let (cpu, _) = run(&[0xd9, 0xe5], 0x37f, &[]);
    assert_eq!(full_fsw(&cpu.x87), 0x4100, "empty: C3 C0");
}

#[test]
fn fldpi_is_rounded_per_rounding_control() {
    for (fcw, signif) in [
        (0x37f, 0xc90f_daa2_2168_c235),
        (0x77f, 0xc90f_daa2_2168_c234),
        (0xb7f, 0xc90f_daa2_2168_c235),
        (0xf7f, 0xc90f_daa2_2168_c234),
    ] {
        let (cpu, _) = run(&[0xd9, 0xeb], fcw, &[]);
        assert_eq!(st(&cpu.x87, 0), (0x4000, signif));
        assert_eq!(full_fsw(&cpu.x87), 0x3800);
    }
}

#[test]
fn fprem_partial_remainder_sets_c2() {
    // FLD tword [rsi+16] (1.1); FLD tword [rsi] (1.5 * 2^100); FPREM; FPREM.
    let mut data = f80_bytes(0xc000_0000_0000_0000, 0x4063);
    data.resize(16, 0);
    data.extend(f80_bytes(0x8ccc_cccc_cccc_cccd, 0x3fff));
    let code = [0xdb, 0x6e, 0x10, 0xdb, 0x2e, 0xd9, 0xf8];
    let (cpu, _) = run(&code, 0x37f, &data);
    assert_eq!(full_fsw(&cpu.x87), 0x3400, "incomplete: C2 set");
    assert_eq!(st(&cpu.x87, 0), (0x403d, 0x9999_9988_253c_8254));
    let code = [0xdb, 0x6e, 0x10, 0xdb, 0x2e, 0xd9, 0xf8, 0xd9, 0xf8];
    let (cpu, _) = run(&code, 0x37f, &data);
    assert_eq!(
        full_fsw(&cpu.x87),
        0x3000,
        "complete: C2 clear, quotient bits 0"
    );
    assert_eq!(st(&cpu.x87, 0), (0x3ffd, 0x94f2_0955_7970_fa80));
}

#[test]
fn fsave_frstor_round_trip() {
    // FLD1; FLDPI; FLD tword [rsi+0x80]; FADD st(0), st(1); FNSAVE [rsi].
    let mut data = vec![0u8; 0x80];
    data.extend(f80_bytes(0x8000_0000_0000_0001, 0x0001));
    let code = [
        0xd9, 0xe8, 0xd9, 0xeb, 0xdb, 0xae, 0x80, 0x00, 0x00, 0x00, 0xd8, 0xc1,
    ];
    let (mut cpu, mut mem) = run(&code, 0x27f, &data);
    let saved = cpu.x87;
    mem.write(0x100, &[0xdd, 0x36, 0xdd, 0x26]).unwrap();
    cpu.rip = 0x100;
    crate::interp::step(&mut cpu, &mut mem).unwrap();
    assert_eq!(
        cpu.x87,
        X87State {
            regs: saved.regs,
            ..X87State::default()
        },
        "FNSAVE reinitializes"
    );
    let image = read(&mut mem, DATA, 108);
    assert_eq!(&image[..2], &0x27fu16.to_le_bytes());
    let (e, m) = st(&saved, 0);
    assert_eq!(
        &image[28..38],
        &f80_bytes(m, e)[..],
        "ST(0) in the register area"
    );
    crate::interp::step(&mut cpu, &mut mem).unwrap();
    assert_eq!(
        cpu.x87, saved,
        "FRSTOR restores everything, pointers included"
    );
}

#[test]
fn cr0_ts_raises_device_not_available() {
    let (mut cpu, mut mem) = machine(&[0xd9, 0xe8, 0x9b], 0x37f, &[]);
    cpu.cr0 |= CR0_TS;
    assert_eq!(
        crate::interp::step(&mut cpu, &mut mem),
        Err(Exception::DeviceNotAvailable)
    );
    assert_eq!(cpu.rip, 0);
    cpu.rip = 2;
    assert_eq!(
        crate::interp::step(&mut cpu, &mut mem),
        Err(Exception::DeviceNotAvailable),
        "WAIT with MP and TS"
    );
    cpu.cr0 &= !CR0_MP;
    assert!(
        crate::interp::step(&mut cpu, &mut mem).is_ok(),
        "WAIT ignores TS without MP"
    );
}

#[test]
fn unmasked_exception_is_raised_by_the_next_waiting_instruction() {
    // With IE unmasked: FADD on an empty stack, FLD1 (faults), FNSTSW AX, FNCLEX, FLD1.
    let code = [0xd8, 0xc1, 0xd9, 0xe8, 0xdf, 0xe0, 0xdb, 0xe2, 0xd9, 0xe8];
    let (mut cpu, mut mem) = machine(&code, 0x37e, &[]);
    crate::interp::step(&mut cpu, &mut mem).unwrap();
    assert_eq!(
        cpu.x87.ftw, 0xffff,
        "an unmasked invalid operation stores nothing"
    );
    assert_eq!(
        crate::interp::step(&mut cpu, &mut mem),
        Err(Exception::X87Fpu)
    );
    assert_eq!(cpu.rip, 2);
    cpu.rip = 4;
    crate::interp::step(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[0] & 0xffff, 0x80c1, "B, ES, SF, IE");
    crate::interp::step(&mut cpu, &mut mem).unwrap();
    crate::interp::step(&mut cpu, &mut mem).unwrap();
    assert_eq!(st(&cpu.x87, 0), (0x3fff, 0x8000_0000_0000_0000));
}

#[test]
fn faulting_store_leaves_the_fpu_unchanged() {
    // FLD1; FSTP qword [rsi] with RSI outside RAM.
    let (mut cpu, mut mem) = machine(&[0xd9, 0xe8, 0xdd, 0x1e], 0x37f, &[]);
    crate::interp::step(&mut cpu, &mut mem).unwrap();
    cpu.gpr[6] = 0x20000;
    let before = cpu.x87;
    assert!(matches!(
        crate::interp::step(&mut cpu, &mut mem),
        Err(Exception::PageFault { .. })
    ));
    assert_eq!(cpu.x87, before);
    assert_eq!(cpu.rip, 2);
}

#[test]
fn last_instruction_pointers() {
    // FADD dword [rsi] at 0: FOP is D8 & 7 and the ModRM byte.
    let (cpu, _) = run(
        &[0xd9, 0xe8, 0xd8, 0x06],
        0x37f,
        &1.0f32.to_bits().to_le_bytes(),
    );
    assert_eq!((cpu.x87.fop, cpu.x87.fip, cpu.x87.fdp), (0x006, 2, DATA));
    assert_eq!(st(&cpu.x87, 0), (0x4000, 0x8000_0000_0000_0000));
}

#[test]
fn real_mode_environment_layout() {
    use crate::state::{Segment, CR0_PE, EFER_LMA};
    use crate::SegReg;
    // At CS base 0x200: FLD1; FNSTENV [si] (16-bit operand size: 14-byte image).
    let mut mem = FlatMemory::new(GuestRam::new(0x10000).unwrap());
    mem.write(0x200, &[0xd9, 0xe8, 0xd9, 0x34]).unwrap();
    let mut cpu = CpuState::new_long_mode();
    cpu.cr0 &= !CR0_PE;
    cpu.efer &= !EFER_LMA;
    cpu.seg[SegReg::Cs as usize] = Segment {
        base: 0x200,
        limit: 0xffff,
        selector: 0x20,
        attrs: 0x9b,
    };
    cpu.seg[SegReg::Ds as usize] = Segment {
        base: 0,
        limit: 0xffff,
        selector: 0,
        attrs: 0x93,
    };
    cpu.gpr[6] = DATA;
    cpu.rip = 0;
    crate::interp::step(&mut cpu, &mut mem).unwrap();
    crate::interp::step(&mut cpu, &mut mem).unwrap();
    let words: Vec<u16> = read(&mut mem, DATA, 14)
        .chunks(2)
        .map(|w| u16::from_le_bytes([w[0], w[1]]))
        .collect();
    // FIP is the linear address 0x200, stored as its low 16 bits and bits 16-19 above FOP.
    assert_eq!(words, [0x037f, 0x3800, 0x3fff, 0x0200, 0x01e8, 0, 0]);
    assert_eq!(cpu.x87.fcw, 0x037f);
}
