//! Unit tests of the SIMD integer group on real instruction bytes. Expected values were
//! taken from an x86-64 host (AMD EPYC) running the same instructions.

use crate::flags::{ARITH, CF, OF, SF, ZF};
use crate::state::{CR0_EM, CR0_TS, CR4_OSFXSR};
use crate::{step, Exception};
use softvisor_mmu::Memory;

use crate::interp::tests::{machine, CODE};
const A: u128 = 0x8000_7fff_0102_fffe_80ff_7f01_0010_ff80;
const B: u128 = 0x8000_0002_7fff_8001_0180_0203_f00f_7f81;

/// One XMM case: `dst` is XMM2 (starting as A), the source XMM1 (B), XMM0 starts as A.
struct Case {
    bytes: &'static [u8],
    eax_edx: (u64, u64),
    a: u128,
    b: u128,
    dst: u128,
    xmm0: u128,
    rcx: u64,
    flags: Option<u64>,
}

/// The defaults shared by the arithmetic rows.
const ROW: Case = Case {
    bytes: &[],
    eax_edx: (3, 0xffff_fff9),
    a: A,
    b: B,
    dst: 0,
    xmm0: A,
    rcx: 0x7777,
    flags: None,
};

fn check(case: &Case) {
    let (mut cpu, mut mem) = machine(case.bytes);
    cpu.xmm[0] = case.a;
    cpu.xmm[1] = case.b;
    cpu.xmm[2] = case.a;
    (cpu.gpr[0], cpu.gpr[1], cpu.gpr[2]) = (case.eax_edx.0, 0x7777, case.eax_edx.1);
    step(&mut cpu, &mut mem).unwrap();
    let name = format!("{:02x?}", case.bytes);
    assert_eq!(cpu.xmm[2], case.dst, "{name}: dst");
    assert_eq!(cpu.xmm[0], case.xmm0, "{name}: xmm0");
    assert_eq!(cpu.gpr[1], case.rcx, "{name}: rcx");
    if let Some(flags) = case.flags {
        assert_eq!(cpu.rflags() & ARITH, flags, "{name}: flags");
    }
    assert_eq!(cpu.rip, CODE + case.bytes.len() as u64);
}

#[test]
fn xmm_lane_arithmetic_matches_host() {
    let rows = [
        Case {
            bytes: &[0x66, 0x0f, 0xfc, 0xd1],
            dst: 0x00007f0180017fff817f8104f01f7e01,
            ..ROW
        }, // paddb
        Case {
            bytes: &[0x66, 0x0f, 0xf5, 0xd1],
            dst: 0x4000fffe0081fefc0040fd83ffbf4070,
            ..ROW
        }, // pmaddwd
        Case {
            bytes: &[0x66, 0x0f, 0xf6, 0xd1],
            dst: 0x000000000000047300000000000002ef,
            ..ROW
        }, // psadbw
        Case {
            bytes: &[0x66, 0x0f, 0x63, 0xd1],
            dst: 0x80027f807f7f807f807f7ffe807f1080,
            ..ROW
        }, // packsswb
        Case {
            bytes: &[0x66, 0x0f, 0x71, 0xe2, 20],
            dst: 0xffff00000000ffffffff00000000ffff,
            ..ROW
        }, // psraw 20
        Case {
            bytes: &[0x66, 0x0f, 0x72, 0xe2, 5],
            dst: 0xfc0003ff000817fffc07fbf8000087fc,
            ..ROW
        }, // psrad 5
        Case {
            bytes: &[0x0f, 0xc6, 0xd1, 0x1b],
            dst: 0xf00f7f81018002030102fffe80007fff,
            ..ROW
        }, // shufps
    ];
    rows.iter().for_each(check);
}

#[test]
fn ssse3_and_sse41_match_host() {
    let rows = [
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x00, 0xd1],
            dst: 0x00808010800000ffff00100000808000,
            ..ROW
        }, // pshufb
        Case {
            bytes: &[0x66, 0x0f, 0x3a, 0x0f, 0xd1, 5],
            dst: 0x010010ff80800000027fff8001018002,
            ..ROW
        }, // palignr
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x03, 0xd1],
            dst: 0x8002000003836f90ffff01000000ff90,
            ..ROW
        }, // phaddsw
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x0b, 0xd1],
            dst: 0x8000000201020002fe8301fffffeff80,
            ..ROW
        }, // pmulhrsw
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x04, 0xd1],
            dst: 0xc00001fe007d817e8100010100f03f01,
            ..ROW
        }, // pmaddubsw
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x20, 0xd1],
            dst: 0x0001ff8000020003fff0000f007fff81,
            ..ROW
        }, // pmovsxbw
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x41, 0xd1],
            dst: 0x00000000000000000000000000060002,
            ..ROW
        }, // phminposuw
        Case {
            bytes: &[0x66, 0x0f, 0x3a, 0x21, 0xd1, 0x9a],
            dst: 0x000000000102fffe000000000010ff80,
            ..ROW
        }, // insertps
        Case {
            bytes: &[0x66, 0x0f, 0x3a, 0x42, 0xd1, 5], // mpsadbw
            dst: 0x010100ff0279027601f902f60276017d,
            ..ROW
        },
        Case {
            bytes: &[0x66, 0x0f, 0x3a, 0x42, 0xd1, 2], // mpsadbw
            dst: 0x017a017f01fb00020180018d02eb026c,
            ..ROW
        },
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x17, 0xd1],
            dst: A,
            flags: Some(0),
            ..ROW
        }, // ptest
    ];
    rows.iter().for_each(check);
}

#[test]
fn sse42_string_compares_match_host() {
    let hay = u128::from_le_bytes(*b"hello world\0\0\0\0\0");
    let needle = u128::from_le_bytes(*b"lo\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    let ranges = u128::from_le_bytes(*b"az\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    let text = u128::from_le_bytes(*b"Hi, Bob; yes!!??");
    let rows = [
        // pcmpistri xmm2, xmm1, 0x0c: equal ordered, "lo" in "hello world".
        Case {
            bytes: &[0x66, 0x0f, 0x3a, 0x63, 0xd1, 0x0c],
            a: needle,
            b: hay,
            dst: needle,
            xmm0: needle,
            rcx: 3,
            flags: Some(CF | ZF | SF),
            ..ROW
        },
        // pcmpestrm xmm2, xmm1, 0x44: ranges a-z over 12 bytes, byte mask.
        Case {
            bytes: &[0x66, 0x0f, 0x3a, 0x60, 0xd1, 0x44],
            eax_edx: (2, 12),
            a: ranges,
            b: text,
            dst: ranges,
            xmm0: 0x00000000ffffff0000ffff000000ff00,
            flags: Some(CF | ZF | SF),
            ..ROW
        },
        // pcmpestri xmm2, xmm1, 0x74: masked negative ranges, |EDX| = 20 saturates, MSB index.
        Case {
            bytes: &[0x66, 0x0f, 0x3a, 0x61, 0xd1, 0x74],
            eax_edx: (2, 0xffff_ffec),
            a: ranges,
            b: text,
            dst: ranges,
            xmm0: ranges,
            rcx: 15,
            flags: Some(CF | SF | OF),
        },
        // pcmpistrm xmm2, xmm1, 0x09: equal each on words, bit mask.
        Case {
            bytes: &[0x66, 0x0f, 0x3a, 0x62, 0xd1, 0x09],
            dst: A,
            xmm0: 0x80,
            flags: Some(CF),
            ..ROW
        },
    ];
    rows.iter().for_each(check);
}

#[test]
fn mmx_form_uses_x87_registers_and_enters_mmx_mode() {
    // paddusw mm0, mm1
    let (mut cpu, mut mem) = machine(&[0x0f, 0xdd, 0xc1]);
    cpu.x87.regs[0].signif = 0xffff_0001_8000_7fff;
    cpu.x87.regs[1].signif = 0x0002_0001_8000_8001;
    cpu.x87.top = 5;
    step(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.x87.regs[0].signif, 0xffff_0002_ffff_ffff);
    assert_eq!(cpu.x87.regs[0].sign_exp, 0xffff);
    assert_eq!((cpu.x87.top, cpu.x87.ftw), (0, 0));
    assert_eq!(cpu.xmm, [0; 16], "MMX forms leave the XMM registers alone");
}

#[test]
fn emms_empties_the_tag_word() {
    let (mut cpu, mut mem) = machine(&[0x0f, 0x77]);
    cpu.x87.ftw = 0;
    cpu.x87.top = 3;
    step(&mut cpu, &mut mem).unwrap();
    assert_eq!((cpu.x87.top, cpu.x87.ftw), (0, 0xffff));
}

#[test]
fn control_register_checks() {
    // paddb xmm0, xmm1 ; paddb mm0, mm1
    let sse: &[u8] = &[0x66, 0x0f, 0xfc, 0xc1];
    let mmx: &[u8] = &[0x0f, 0xfc, 0xc1];
    let fault = |bytes: &[u8], cr0_set: u64, cr4_clear: u64| {
        let (mut cpu, mut mem) = machine(bytes);
        cpu.cr0 |= cr0_set;
        cpu.cr4 &= !cr4_clear;
        step(&mut cpu, &mut mem).err()
    };
    assert_eq!(fault(sse, CR0_EM, 0), Some(Exception::InvalidOpcode));
    assert_eq!(fault(sse, 0, CR4_OSFXSR), Some(Exception::InvalidOpcode));
    assert_eq!(fault(sse, CR0_TS, 0), Some(Exception::DeviceNotAvailable));
    assert_eq!(fault(mmx, CR0_EM, 0), Some(Exception::InvalidOpcode));
    assert_eq!(fault(mmx, CR0_TS, 0), Some(Exception::DeviceNotAvailable));
    assert_eq!(fault(mmx, 0, CR4_OSFXSR), None, "MMX does not need OSFXSR");
}

#[test]
fn pending_x87_exception_faults_mmx_but_not_sse() {
    // paddb mm0, mm1 ; paddb xmm0, xmm1 with FSW.ES set.
    for (bytes, expected) in [
        (&[0x0f, 0xfc, 0xc1][..], Some(Exception::X87Fpu)),
        (&[0x66, 0x0f, 0xfc, 0xc1], None),
    ] {
        let (mut cpu, mut mem) = machine(bytes);
        cpu.x87.fsw = 0x81;
        assert_eq!(step(&mut cpu, &mut mem).err(), expected, "{bytes:02x?}");
    }
}

#[test]
fn m128_alignment() {
    // movdqa xmm0, [rax] ; movdqu xmm0, [rax] ; pxor xmm0, [rax] ; pcmpistri xmm0, [rax], 0
    let aligned_only: [&[u8]; 2] = [&[0x66, 0x0f, 0x6f, 0x00], &[0x66, 0x0f, 0xef, 0x00]];
    let unaligned_ok: [&[u8]; 2] = [
        &[0xf3, 0x0f, 0x6f, 0x00],
        &[0x66, 0x0f, 0x3a, 0x63, 0x00, 0x00],
    ];
    let run = |bytes: &[u8]| {
        let (mut cpu, mut mem) = machine(bytes);
        cpu.gpr[0] = 0x2008;
        step(&mut cpu, &mut mem).err()
    };
    for bytes in aligned_only {
        assert_eq!(
            run(bytes),
            Some(Exception::GeneralProtection(0)),
            "{bytes:02x?}"
        );
    }
    for bytes in unaligned_ok {
        assert_eq!(run(bytes), None, "{bytes:02x?}");
    }
}

#[test]
fn faulting_mmx_load_changes_nothing() {
    // paddb mm0, [rax] with RAX past the end of memory.
    let (mut cpu, mut mem) = machine(&[0x0f, 0xfc, 0x00]);
    cpu.gpr[0] = 0x20_0000;
    cpu.x87.top = 4;
    cpu.x87.ftw = 0xffff;
    let before = cpu.clone();
    assert!(step(&mut cpu, &mut mem).is_err());
    assert_eq!(cpu, before);
}

#[test]
fn scalar_and_gpr_moves() {
    // movss xmm0, xmm1 ; movss xmm2, [rax] ; movd ebx, xmm1 ; movq xmm3, rcx ; movq xmm4, xmm1
    let (mut cpu, mut mem) = machine(&[
        0xf3, 0x0f, 0x10, 0xc1, 0xf3, 0x0f, 0x10, 0x10, 0x66, 0x0f, 0x7e, 0xcb, 0x66, 0x48, 0x0f,
        0x6e, 0xd9, 0xf3, 0x0f, 0x7e, 0xe1,
    ]);
    cpu.xmm = [A; 16];
    cpu.xmm[1] = B;
    cpu.gpr[0] = 0x2000;
    cpu.gpr[1] = 0x1122_3344_5566_7788;
    cpu.gpr[3] = u64::MAX;
    mem.write_u128(0x2000, B).unwrap();
    for _ in 0..5 {
        step(&mut cpu, &mut mem).unwrap();
    }
    assert_eq!(
        cpu.xmm[0],
        (A & !0xffff_ffff) | (B & 0xffff_ffff),
        "reg-reg merges"
    );
    assert_eq!(cpu.xmm[2], B & 0xffff_ffff, "load zeroes the upper lanes");
    assert_eq!(cpu.gpr[3], 0xf00f_7f81, "32-bit GPR write zero-extends");
    assert_eq!(cpu.xmm[3], 0x1122_3344_5566_7788);
    assert_eq!(cpu.xmm[4], B & u128::from(u64::MAX));
}

#[test]
fn pextrw_pinsrw_and_pmovmskb() {
    // pinsrw xmm0, eax, 9 (index wraps to 1) ; pextrw ecx, xmm0, 1 ; pmovmskb edx, xmm1
    let (mut cpu, mut mem) = machine(&[
        0x66, 0x0f, 0xc4, 0xc0, 0x09, 0x66, 0x0f, 0xc5, 0xc8, 0x01, 0x66, 0x0f, 0xd7, 0xd1,
    ]);
    cpu.gpr[0] = 0xdead_beef;
    cpu.xmm[1] = B;
    for _ in 0..3 {
        step(&mut cpu, &mut mem).unwrap();
    }
    assert_eq!(cpu.xmm[0], 0xbeef_0000);
    assert_eq!(cpu.gpr[1], 0xbeef);
    assert_eq!(cpu.gpr[2], 0b1000_0110_0100_1001);
}

#[test]
fn maskmovdqu_stores_selected_bytes() {
    // maskmovdqu xmm0, xmm1
    let (mut cpu, mut mem) = machine(&[0x66, 0x0f, 0xf7, 0xc1]);
    cpu.gpr[7] = 0x3003;
    cpu.xmm[0] = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100;
    cpu.xmm[1] = 0x8000_0000_0000_0000_0000_0000_00ff_0080;
    mem.write_u128(0x3003, u128::MAX).unwrap();
    step(&mut cpu, &mut mem).unwrap();
    assert_eq!(
        mem.read_u128(0x3003).unwrap(),
        0x0fff_ffff_ffff_ffff_ffff_ffff_ff02_ff00
    );
}

#[test]
fn masked_stores_use_the_address_size() {
    // 67 maskmovdqu xmm0, xmm1: EDI, not RDI, in 64-bit mode.
    let (mut cpu, mut mem) = machine(&[0x67, 0x66, 0x0f, 0xf7, 0xc1]);
    cpu.gpr[7] = 0xffff_ffff_0000_3000;
    cpu.xmm[0] = 0xaa;
    cpu.xmm[1] = 0x80;
    step(&mut cpu, &mut mem).unwrap();
    assert_eq!(mem.read_u128(0x3000).unwrap(), 0xaa);

    // maskmovq mm0, mm1 in a 32-bit code segment.
    let (mut cpu, mut mem) = machine(&[0x0f, 0xf7, 0xc1]);
    cpu.seg[crate::SegReg::Cs as usize].attrs = 0x9b | crate::Segment::ATTR_DB;
    cpu.gpr[7] = 0x1_0000_4000;
    cpu.x87.regs[0].signif = 0x1122_3344_5566_7788;
    cpu.x87.regs[1].signif = 0x8000_0000_0000_0080;
    step(&mut cpu, &mut mem).unwrap();
    assert_eq!(mem.read_u64(0x4000).unwrap(), 0x1100_0000_0000_0088);
    assert_eq!((cpu.x87.top, cpu.x87.ftw), (0, 0));
}

#[test]
fn masked_store_fault_writes_nothing() {
    // maskmovdqu xmm0, xmm1 at the last 8 bytes of memory: the high bytes fall outside.
    let (mut cpu, mut mem) = machine(&[0x66, 0x0f, 0xf7, 0xc1]);
    cpu.gpr[7] = 0xfff8;
    cpu.xmm[0] = u128::MAX;
    cpu.xmm[1] = 0x8000_0000_0000_0000_0000_0000_0000_0080;
    assert!(step(&mut cpu, &mut mem).is_err());
    assert_eq!(
        mem.read_u64(0xfff8).unwrap(),
        0,
        "the first selected byte was not stored"
    );
    assert_eq!(cpu.rip, CODE);
}

#[test]
fn moves_shuffles_and_blends_match_host() {
    // XMM0 (the implicit blend mask) starts as A.
    let rows = [
        Case {
            bytes: &[0x0f, 0x12, 0xd1],
            dst: 0x8000_7fff_0102_fffe_8000_0002_7fff_8001,
            ..ROW
        }, // movhlps
        Case {
            bytes: &[0x0f, 0x16, 0xd1],
            dst: 0x0180_0203_f00f_7f81_80ff_7f01_0010_ff80,
            ..ROW
        }, // movlhps
        Case {
            bytes: &[0xf3, 0x0f, 0x12, 0xd1],
            dst: 0x7fff_8001_7fff_8001_f00f_7f81_f00f_7f81,
            ..ROW
        }, // movsldup
        Case {
            bytes: &[0xf3, 0x0f, 0x16, 0xd1],
            dst: 0x8000_0002_8000_0002_0180_0203_0180_0203,
            ..ROW
        }, // movshdup
        Case {
            bytes: &[0xf2, 0x0f, 0x12, 0xd1],
            dst: 0x0180_0203_f00f_7f81_0180_0203_f00f_7f81,
            ..ROW
        }, // movddup
        Case {
            bytes: &[0xf3, 0x0f, 0x70, 0xd1, 0x1b],
            dst: 0x8001_7fff_0002_8000_0180_0203_f00f_7f81,
            ..ROW
        }, // pshufhw 0x1b
        Case {
            bytes: &[0xf2, 0x0f, 0x70, 0xd1, 0x4e],
            dst: 0x8000_0002_7fff_8001_f00f_7f81_0180_0203,
            ..ROW
        }, // pshuflw 0x4e
        Case {
            bytes: &[0x66, 0x0f, 0x68, 0xd1],
            dst: 0x8080_0000_007f_02ff_7f01_ff02_80ff_01fe,
            ..ROW
        }, // punpckhbw
        Case {
            bytes: &[0x66, 0x0f, 0x14, 0xd1],
            dst: 0x0180_0203_f00f_7f81_80ff_7f01_0010_ff80,
            ..ROW
        }, // unpcklpd
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x10, 0xd1],
            dst: 0x8000_7f02_0102_8001_0180_7f01_0010_7f81,
            ..ROW
        }, // pblendvb
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x14, 0xd1],
            dst: 0x8000_0002_0102_fffe_0180_0203_0010_ff80,
            ..ROW
        }, // blendvps
        Case {
            bytes: &[0x66, 0x0f, 0x3a, 0x0e, 0xd1, 0xa5],
            dst: 0x8000_7fff_7fff_fffe_80ff_0203_0010_7f81,
            ..ROW
        }, // pblendw 0xa5
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x33, 0xd1],
            dst: 0x0000_0180_0000_0203_0000_f00f_0000_7f81,
            ..ROW
        }, // pmovzxwd
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x2b, 0xd1],
            dst: 0x0000_ffff_ffff_0000_0000_ffff_0000_ffff,
            ..ROW
        }, // packusdw
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x28, 0xd1],
            dst: 0x0081_7f7d_8103_fffe_fffe_f10f_6fd1_3f80,
            ..ROW
        }, // pmuldq
        Case {
            bytes: &[0x66, 0x0f, 0xf4, 0xd1],
            dst: 0x0081_7f7d_8103_fffe_000f_f08f_6fd1_3f80,
            ..ROW
        }, // pmuludq
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x37, 0xd1],
            dst: 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            ..ROW
        }, // pcmpgtq
        Case {
            bytes: &[0x66, 0x0f, 0x73, 0xfa, 0x03],
            dst: 0xff01_02ff_fe80_ff7f_0100_10ff_8000_0000,
            ..ROW
        }, // pslldq 3
        Case {
            bytes: &[0x66, 0x0f, 0xd1, 0xd1],
            dst: 0x0000_0000_0000_0000_0000_0000_0000_0000,
            ..ROW
        }, // psrlw by xmm, count > 15
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x39, 0xd1],
            dst: 0x8000_0002_0102_fffe_80ff_7f01_f00f_7f81,
            ..ROW
        }, // pminsd
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x3e, 0xd1],
            dst: 0x8000_7fff_7fff_fffe_80ff_7f01_f00f_ff80,
            ..ROW
        }, // pmaxuw
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x09, 0xd1],
            dst: 0x8000_7fff_0102_0002_80ff_7f01_fff0_ff80,
            ..ROW
        }, // psignw
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x1c, 0xd1],
            dst: 0x8000_0002_7f01_8001_0180_0203_100f_7f7f,
            ..ROW
        }, // pabsb
        Case {
            bytes: &[0x66, 0x0f, 0x38, 0x06, 0xd1],
            dst: 0xffff_7fff_ee8f_7d7e_8102_7fff_7f11_807f,
            ..ROW
        }, // phsubd
    ];
    rows.iter().for_each(check);
}

#[test]
fn mmx_forms_match_host() {
    const MA: u64 = 0x80ff_7f01_0010_ff80;
    const MB: u64 = 0xf00f_7f81_0180_0203;
    let rows: [(&[u8], u64); 9] = [
        (&[0x0f, 0x60, 0xd1], 0x0100_8010_02ff_0380), // punpcklbw mm2, mm1
        (&[0x0f, 0x69, 0xd1], 0xf00f_80ff_7f81_7f01), // punpckhwd
        (&[0x0f, 0x63, 0xd1], 0x807f_7f7f_807f_1080), // packsswb
        (&[0x0f, 0x3a, 0x0f, 0xd1, 0x03], 0x10ff_80f0_0f7f_8101), // palignr 3
        (&[0x0f, 0x38, 0x00, 0xd1], 0x0080_8000_ff00_1000), // pshufb
        (&[0x0f, 0x38, 0x01, 0xd1], 0x6f90_0383_0000_ff90), // phaddw
        (&[0x0f, 0x70, 0xd1, 0x9c], 0x7f81_0180_f00f_0203), // pshufw 0x9c
        (&[0x0f, 0xf6, 0xd1], 0x03cb),                // psadbw
        (&[0x0f, 0xf4, 0xd1], 0x0000_197f_6231_fe80), // pmuludq
    ];
    for (bytes, expected) in rows {
        let (mut cpu, mut mem) = machine(bytes);
        cpu.x87.regs[2].signif = MA;
        cpu.x87.regs[1].signif = MB;
        step(&mut cpu, &mut mem).unwrap();
        assert_eq!(cpu.x87.regs[2].signif, expected, "{bytes:02x?}");
    }
}
