//! Unit tests of the SSE floating-point instructions on real instruction bytes, with
//! expected values taken from an x86-64 host (AMD EPYC).

use crate::state::{CR0_TS, CR4_OSFXSR};
use crate::{step, CpuState, Exception, StepOutcome};
use softvisor_mmu::{FlatMemory, GuestRam};

const CODE: u64 = 0x1000;
/// CR4.OSXMMEXCPT.
const CR4_OSXMMEXCPT: u64 = 1 << 10;

/// A 64-bit CPU at RIP=0x1000 holding `bytes`, with XMM0, XMM1 and MXCSR set.
fn machine(bytes: &[u8], xmm0: u128, xmm1: u128, mxcsr: u32) -> (CpuState, FlatMemory) {
    let mut mem = FlatMemory::new(GuestRam::new(0x10000).unwrap());
    mem.ram.write_bytes(CODE, bytes).unwrap();
    let mut cpu = CpuState::new_long_mode();
    cpu.rip = CODE;
    cpu.xmm[0] = xmm0;
    cpu.xmm[1] = xmm1;
    cpu.mxcsr = mxcsr;
    (cpu, mem)
}

/// Runs `bytes` (an instruction on XMM0, XMM1) and returns XMM0 and MXCSR after it.
fn exec(bytes: &[u8], xmm0: u128, xmm1: u128, mxcsr: u32) -> (u128, u32) {
    let (mut cpu, mut mem) = machine(bytes, xmm0, xmm1, mxcsr);
    assert_eq!(step(&mut cpu, &mut mem), Ok(StepOutcome::Continue));
    (cpu.xmm[0], cpu.mxcsr)
}

/// Checks one instruction against the host's XMM0 and MXCSR.
fn check(bytes: &[u8], xmm0: u128, xmm1: u128, mxcsr: u32, want: u128, want_mxcsr: u32) {
    assert_eq!(
        exec(bytes, xmm0, xmm1, mxcsr),
        (want, want_mxcsr),
        "{bytes:02x?} {xmm0:#x} {xmm1:#x} {mxcsr:#x}"
    );
}

const ADDPS: &[u8] = &[0x0f, 0x58, 0xc1];
const ADDSS: &[u8] = &[0xf3, 0x0f, 0x58, 0xc1];
const SUBSD: &[u8] = &[0xf2, 0x0f, 0x5c, 0xc1];
const MULSS: &[u8] = &[0xf3, 0x0f, 0x59, 0xc1];
const DIVSS: &[u8] = &[0xf3, 0x0f, 0x5e, 0xc1];
const SQRTPS: &[u8] = &[0x0f, 0x51, 0xc1];
const UPPER: u128 = 0x1111_1111_2222_2222_3333_3333_4444_4444;

#[test]
fn nan_propagation_and_default_nan() {
    // SNaN/QNaN: first source's NaN quieted, else the second's; IE for an SNaN.
    check(
        ADDPS,
        0x7f80_0001_3f80_0000_7fc0_0001_0000_0001,
        0x7fc0_0002_7f80_0001_7f80_0002_0000_0000,
        0x1f80,
        0x7fc0_0001_7fc0_0001_7fc0_0001_0000_0001,
        0x1f83,
    );
    // inf + -inf gives the default NaN; 1 + denormal is inexact; denormals raise DE.
    let (a, b) = (
        0x7f80_0000_3f80_0000_0000_0000_0000_0001,
        0xff80_0000_0000_0001_0000_0000_0000_0001,
    );
    check(
        ADDPS,
        a,
        b,
        0x1f80,
        0xffc0_0000_3f80_0000_0000_0000_0000_0002,
        0x1fa3,
    );
    // DAZ: denormal inputs are zeros, no DE.
    check(
        ADDPS,
        a,
        b,
        0x1fc0,
        0xffc0_0000_3f80_0000_0000_0000_0000_0000,
        0x1fc1,
    );
    check(DIVSS, 0, 0, 0x1f80, 0xffc0_0000, 0x1f81);
}

#[test]
fn denormal_results_ftz_and_underflow() {
    // Exact denormal sum: no UE without FTZ; FTZ flushes it and sets UE and PE.
    check(ADDSS, 0x00c0_0000, 0x8080_0000, 0x1f80, 0x0040_0000, 0x1f80);
    check(ADDSS, 0x00c0_0000, 0x8080_0000, 0x9f80, 0, 0x9fb0);
    // Denormal + denormal rounding up to the smallest normal is exact: DE only.
    check(ADDSS, 0x0040_0000, 0x0040_0000, 0x9f80, 0x0080_0000, 0x9f82);
    // Tininess after rounding: rounds to the smallest normal but is tiny unbounded.
    check(MULSS, 0x3f7f_ffff, 0x0080_0000, 0x1f80, 0x0080_0000, 0x1fb0);
    check(MULSS, 0x3f7f_ffff, 0x0080_0000, 0x9f80, 0, 0x9fb0);
}

#[test]
fn rounding_modes_and_overflow() {
    let (one, tiny) = (0x3ff0_0000_0000_0000, 0x3ca0_0000_0000_0001);
    check(SUBSD, one, tiny, 0x1f80, 0x3fef_ffff_ffff_ffff, 0x1fa0);
    check(SUBSD, one, tiny, 0x3f80, 0x3fef_ffff_ffff_fffe, 0x3fa0);
    check(SUBSD, one, tiny, 0x5f80, 0x3fef_ffff_ffff_ffff, 0x5fa0);
    check(SUBSD, one, tiny, 0x7f80, 0x3fef_ffff_ffff_fffe, 0x7fa0);
    // x - x is -0 when rounding down.
    check(SUBSD, one, one, 0x3f80, 0x8000_0000_0000_0000, 0x3f80);
    // Overflow: infinity, or the largest finite value under directed rounding, OE+PE.
    check(MULSS, 0x7f00_0000, 0x4000_0000, 0x1f80, 0x7f80_0000, 0x1fa8);
    check(MULSS, 0x7f00_0000, 0x4000_0000, 0x7f80, 0x7f7f_ffff, 0x7fa8);
    check(MULSS, 0x7f00_0000, 0xc000_0000, 0x5f80, 0xff7f_ffff, 0x5fa8);
    check(DIVSS, 0x3f80_0000, 0x4040_0000, 0x1f00, 0x3eaa_aaab, 0x1f20);
    check(DIVSS, 0x3f80_0000, 0, 0x1f80, 0x7f80_0000, 0x1f84);
}

#[test]
fn sqrt_min_max_compare() {
    let src = 0x4000_0000_bf80_0000_0000_0001_4080_0000;
    check(
        SQRTPS,
        0,
        src,
        0x1f80,
        0x3fb5_04f3_ffc0_0000_1a35_04f3_4000_0000,
        0x1fa3,
    );
    check(
        SQRTPS,
        0,
        src,
        0x5fc0,
        0x3fb5_04f4_ffc0_0000_0000_0000_4000_0000,
        0x5fe1,
    );
    // MINPS: a NaN or two zeros give the second source; any NaN raises IE.
    let minps = &[0x0f, 0x5d, 0xc1];
    let (a, b) = (
        0x7fc0_0000_8000_0000_0000_0000_3f80_0000,
        0x3f80_0000_0000_0000_8000_0000_4000_0000,
    );
    check(
        minps,
        a,
        b,
        0x1f80,
        0x3f80_0000_0000_0000_8000_0000_3f80_0000,
        0x1f81,
    );
    let maxsd = &[0xf2, 0x0f, 0x5f, 0xc1];
    check(
        maxsd,
        0xfff0_0000_0000_0000,
        0x7ff4_0000_0000_0000,
        0x1f80,
        0x7ff4_0000_0000_0000,
        0x1f81,
    );
    // CMPLTPS signals on a QNaN; CMPUNORDPD only on an SNaN.
    let cmpltps = &[0x0f, 0xc2, 0xc1, 0x01];
    let (a, b) = (
        0x7fc0_0000_3f80_0000_3f80_0000_0000_0000,
        0x3f80_0000_4000_0000_3f80_0000_8000_0000,
    );
    check(
        cmpltps,
        a,
        b,
        0x1f80,
        0x0000_0000_ffff_ffff_0000_0000_0000_0000,
        0x1f81,
    );
    let cmpunordpd = &[0x66, 0x0f, 0xc2, 0xc1, 0x03];
    let (a, b) = (
        0x7ff0_0000_0000_0001_3ff0_0000_0000_0000,
        0x3ff0_0000_0000_0000_3ff0_0000_0000_0000,
    );
    check(
        cmpunordpd,
        a,
        b,
        0x1f80,
        0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
        0x1f81,
    );
}

#[test]
fn comiss_and_ucomiss_flags() {
    let run = |bytes: &[u8], a: u128, b: u128| {
        let (mut cpu, mut mem) = machine(bytes, a, b, 0x1f80);
        step(&mut cpu, &mut mem).unwrap();
        (cpu.rflags() & 0x8d5, cpu.mxcsr)
    };
    let (comiss, ucomiss) = (&[0x0f, 0x2f, 0xc1], &[0x0f, 0x2e, 0xc1]);
    assert_eq!(run(ucomiss, 0x7fc0_0000, 0x3f80_0000), (0x45, 0x1f80));
    assert_eq!(run(comiss, 0x7fc0_0000, 0x3f80_0000), (0x45, 0x1f81));
    assert_eq!(run(comiss, 0x3f80_0000, 0x4000_0000), (0x01, 0x1f80));
    assert_eq!(run(comiss, 0x4000_0000, 0x4000_0000), (0x40, 0x1f80));
}

#[test]
fn float_to_integer_conversions() {
    let to_int = |bytes: &[u8], src: u128, mxcsr: u32| {
        let (mut cpu, mut mem) = machine(bytes, 0, src, mxcsr);
        cpu.gpr[0] = u64::MAX;
        step(&mut cpu, &mut mem).unwrap();
        (cpu.gpr[0], cpu.mxcsr)
    };
    let cvttsd2si = &[0xf2, 0x0f, 0x2c, 0xc1];
    assert_eq!(
        to_int(cvttsd2si, 0x41e0_0000_0000_0000, 0x1f80),
        (0x8000_0000, 0x1f81)
    );
    assert_eq!(
        to_int(cvttsd2si, 0x7ff8_0000_0000_0000, 0x1f80),
        (0x8000_0000, 0x1f81)
    );
    assert_eq!(
        to_int(cvttsd2si, 0xc1df_ffff_ffe0_0000, 0x1f80),
        (0x8000_0001, 0x1fa0)
    );
    assert_eq!(
        to_int(cvttsd2si, 0xc000_0000_0000_0000, 0x1f80),
        (0xffff_fffe, 0x1f80)
    );
    let cvtsd2si = &[0xf2, 0x48, 0x0f, 0x2d, 0xc1];
    assert_eq!(
        to_int(cvtsd2si, 0x43e0_0000_0000_0000, 0x1f80),
        (1 << 63, 0x1f81)
    );
    assert_eq!(to_int(cvtsd2si, 0x3ff8_0000_0000_0000, 0x1f80), (2, 0x1fa0));
    assert_eq!(to_int(cvtsd2si, 0x4004_0000_0000_0000, 0x1f80), (2, 0x1fa0));
    assert_eq!(
        to_int(cvtsd2si, 0xbff8_0000_0000_0000, 0x3f80),
        (-2i64 as u64, 0x3fa0)
    );
    assert_eq!(
        to_int(cvtsd2si, 0xbff8_0000_0000_0000, 0x5f80),
        (u64::MAX, 0x5fa0)
    );
    // A denormal rounds up to 1, or is 0 under DAZ; neither raises DE.
    assert_eq!(to_int(cvtsd2si, 0x31, 0x5f80), (1, 0x5fa0));
    assert_eq!(to_int(cvtsd2si, 0x31, 0x5fc0), (0, 0x5fc0));
    let cvtps2dq = &[0x66, 0x0f, 0x5b, 0xc1];
    let src = 0x4f00_0000_cf00_0000_3f00_0000_3fc0_0000;
    check(
        cvtps2dq,
        0,
        src,
        0x1f80,
        0x8000_0000_8000_0000_0000_0000_0000_0002,
        0x1fa1,
    );
}

#[test]
fn integer_and_float_width_conversions() {
    let with_rax = |bytes: &[u8], rax: u64, mxcsr: u32| {
        let (mut cpu, mut mem) = machine(bytes, UPPER, 0, mxcsr);
        cpu.gpr[0] = rax;
        step(&mut cpu, &mut mem).unwrap();
        (cpu.xmm[0], cpu.mxcsr)
    };
    let cvtsi2sd = &[0xf2, 0x48, 0x0f, 0x2a, 0xc0];
    assert_eq!(
        with_rax(cvtsi2sd, i64::MAX as u64, 0x1f80),
        (0x1111_1111_2222_2222_43e0_0000_0000_0000, 0x1fa0)
    );
    let cvtsi2ss = &[0xf3, 0x48, 0x0f, 0x2a, 0xc0];
    assert_eq!(
        with_rax(cvtsi2ss, 0x100_0001, 0x7f80),
        (0x1111_1111_2222_2222_3333_3333_4b80_0000, 0x7fa0)
    );
    let cvtpd2ps = &[0x66, 0x0f, 0x5a, 0xc1];
    let nan_and_one = 0x7ff0_0000_0000_0001_3ff0_0000_0000_0001;
    check(
        cvtpd2ps,
        u128::MAX,
        nan_and_one,
        0x1f80,
        0x7fc0_0000_3f80_0000,
        0x1fa1,
    );
    let huge_and_tiny = 0x47f0_0000_0000_0000_36a0_0000_0000_0000;
    check(
        cvtpd2ps,
        0,
        huge_and_tiny,
        0x1f80,
        0x7f80_0000_0000_0001,
        0x1fa8,
    );
    check(
        cvtpd2ps,
        0,
        huge_and_tiny,
        0x9f80,
        0x7f80_0000_0000_0000,
        0x9fb8,
    );
    let cvtsd2ss = &[0xf2, 0x0f, 0x5a, 0xc1];
    check(
        cvtsd2ss,
        UPPER,
        0x380f_ffff_ffff_ffff,
        0x1f80,
        0x1111_1111_2222_2222_3333_3333_0080_0000,
        0x1fa0,
    );
    let cvtss2sd = &[0xf3, 0x0f, 0x5a, 0xc1];
    check(
        cvtss2sd,
        UPPER,
        0x7f80_0001,
        0x1f80,
        0x1111_1111_2222_2222_7ff8_0000_2000_0000,
        0x1f81,
    );
    check(
        cvtss2sd,
        UPPER,
        1,
        0x1f80,
        0x1111_1111_2222_2222_36a0_0000_0000_0000,
        0x1f82,
    );
    check(
        cvtss2sd,
        UPPER,
        1,
        0x1fc0,
        0x1111_1111_2222_2222_0000_0000_0000_0000,
        0x1fc0,
    );
}

#[test]
fn round_dot_and_horizontal() {
    let roundss = |imm: u8| [0x66, 0x0f, 0x3a, 0x0a, 0xc1, imm];
    check(
        &roundss(9),
        UPPER,
        0x3fc0_0000,
        0x1f80,
        0x1111_1111_2222_2222_3333_3333_3f80_0000,
        0x1f80,
    );
    check(
        &roundss(1),
        UPPER,
        0x3fc0_0000,
        0x1f80,
        0x1111_1111_2222_2222_3333_3333_3f80_0000,
        0x1fa0,
    );
    let roundpd = &[0x66, 0x0f, 0x3a, 0x09, 0xc1, 0x02];
    let src = 0xbff8_0000_0000_0000_7ff0_0000_0000_0001;
    check(
        roundpd,
        0,
        src,
        0x1f80,
        0xbff0_0000_0000_0000_7ff8_0000_0000_0001,
        0x1fa1,
    );
    let dpps = &[0x66, 0x0f, 0x3a, 0x40, 0xc1, 0xf3];
    let (a, b) = (
        0x3f80_0000_3f80_0000_3f80_0000_3f80_0000,
        0x4000_0000_4040_0000_4080_0000_40a0_0000,
    );
    check(dpps, a, b, 0x1f80, 0x4160_0000_4160_0000, 0x1f80);
    let haddps = &[0xf2, 0x0f, 0x7c, 0xc1];
    let (a, b) = (
        0x3f80_0000_4000_0000_4040_0000_4080_0000,
        0x40a0_0000_40c0_0000_40e0_0000_4100_0000,
    );
    check(
        haddps,
        a,
        b,
        0x1f80,
        0x4130_0000_4170_0000_4040_0000_40e0_0000,
        0x1f80,
    );
    let hsubpd = &[0x66, 0x0f, 0x7d, 0xc1];
    let (a, b) = (
        0x4000_0000_0000_0000_3ff0_0000_0000_0000,
        0x4010_0000_0000_0000_4020_0000_0000_0000,
    );
    check(
        hsubpd,
        a,
        b,
        0x1f80,
        0x4010_0000_0000_0000_bff0_0000_0000_0000,
        0x1f80,
    );
    let addsubps = &[0xf2, 0x0f, 0xd0, 0xc1];
    let (a, b) = (
        0x3f80_0000_3f80_0000_3f80_0000_3f80_0000,
        0x4000_0000_4000_0000_4000_0000_4000_0000,
    );
    check(
        addsubps,
        a,
        b,
        0x1f80,
        0x4040_0000_bf80_0000_4040_0000_bf80_0000,
        0x1f80,
    );
}

#[test]
fn unmasked_exception_traps_without_writing() {
    let (mut cpu, mut mem) = machine(DIVSS, 0x3f80_0000, 0, 0x1d80);
    assert_eq!(step(&mut cpu, &mut mem), Err(Exception::SimdFp));
    assert_eq!(
        (cpu.xmm[0], cpu.mxcsr, cpu.rip),
        (0x3f80_0000, 0x1d84, CODE)
    );
    // Without CR4.OSXMMEXCPT the trap is #UD.
    let (mut cpu, mut mem) = machine(DIVSS, 0x3f80_0000, 0, 0x1d80);
    cpu.cr4 &= !CR4_OSXMMEXCPT;
    assert_eq!(step(&mut cpu, &mut mem), Err(Exception::InvalidOpcode));
    // An unmasked IE in one lane hides the PE of another; nothing is written.
    let (mut cpu, mut mem) = machine(ADDPS, 0x7f80_0000_3f80_0000, 0xff80_0000_0000_0001, 0x1f00);
    assert_eq!(step(&mut cpu, &mut mem), Err(Exception::SimdFp));
    assert_eq!((cpu.xmm[0], cpu.mxcsr), (0x7f80_0000_3f80_0000, 0x1f03));
}

#[test]
fn availability_alignment_and_mxcsr() {
    let (mut cpu, mut mem) = machine(ADDPS, 0, 0, 0x1f80);
    cpu.cr4 &= !CR4_OSFXSR;
    assert_eq!(step(&mut cpu, &mut mem), Err(Exception::InvalidOpcode));
    let (mut cpu, mut mem) = machine(ADDPS, 0, 0, 0x1f80);
    cpu.cr0 |= CR0_TS;
    assert_eq!(step(&mut cpu, &mut mem), Err(Exception::DeviceNotAvailable));
    // addps xmm0, [rax] with a misaligned address.
    let (mut cpu, mut mem) = machine(&[0x0f, 0x58, 0x00], 0, 0, 0x1f80);
    cpu.gpr[0] = 0x2008;
    assert_eq!(
        step(&mut cpu, &mut mem),
        Err(Exception::GeneralProtection(0))
    );
    // ldmxcsr [rax]; stmxcsr [rax+4]; ldmxcsr [rax+8] with a reserved bit.
    let (mut cpu, mut mem) = machine(
        &[
            0x0f, 0xae, 0x10, 0x0f, 0xae, 0x58, 0x04, 0x0f, 0xae, 0x50, 0x08,
        ],
        0,
        0,
        0x1f80,
    );
    cpu.gpr[0] = 0x2000;
    mem.ram
        .write_bytes(0x2000, &0x9fc0u32.to_le_bytes())
        .unwrap();
    mem.ram
        .write_bytes(0x2008, &0x1_1f80u32.to_le_bytes())
        .unwrap();
    step(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.mxcsr, 0x9fc0);
    step(&mut cpu, &mut mem).unwrap();
    let mut stored = [0u8; 4];
    mem.ram.read_bytes(0x2004, &mut stored).unwrap();
    assert_eq!(u32::from_le_bytes(stored), 0x9fc0);
    assert_eq!(
        step(&mut cpu, &mut mem),
        Err(Exception::GeneralProtection(0))
    );
}

#[test]
fn mmx_conversion_switches_to_mmx_mode() {
    // cvtpi2ps xmm0, mm1: two int32 lanes converted, the upper half kept.
    let (mut cpu, mut mem) = machine(&[0x0f, 0x2a, 0xc1], UPPER, 0, 0x1f80);
    cpu.x87.regs[1].signif = 0xffff_fffd_0000_0003;
    cpu.x87.top = 5;
    step(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.xmm[0], 0x1111_1111_2222_2222_c040_0000_4040_0000);
    assert_eq!((cpu.x87.top, cpu.x87.ftw), (0, 0));
    // A pending x87 exception (FSW.ES with CR0.NE) faults first, changing nothing.
    let (mut cpu, mut mem) = machine(&[0x0f, 0x2a, 0xc1], UPPER, 0, 0x1f80);
    cpu.x87.fsw = 0x81;
    cpu.x87.top = 5;
    assert_eq!(step(&mut cpu, &mut mem), Err(Exception::X87Fpu));
    assert_eq!((cpu.xmm[0], cpu.x87.top), (UPPER, 5));
}

#[test]
fn reciprocal_approximations() {
    // Not compared with the host (the bits are implementation-specific): the documented
    // approximation is the exact value truncated to 12 significant bits.
    let rcpps = &[0x0f, 0x53, 0xc1];
    let src = 0x4040_0000_0000_0001_ff80_0000_7f80_0001;
    check(
        rcpps,
        0,
        src,
        0x1f80,
        0x3eaa_a000_7f80_0000_8000_0000_7fc0_0001,
        0x1f80,
    );
    let rsqrtps = &[0x0f, 0x52, 0xc1];
    let src = 0x4080_0000_bf80_0000_8000_0000_7f80_0000;
    check(
        rsqrtps,
        0,
        src,
        0x1f80,
        0x3f00_0000_ffc0_0000_ff80_0000_0000_0000,
        0x1f80,
    );
}
