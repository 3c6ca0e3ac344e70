//! Unit tests of the interpreter on real instruction bytes: prefixes, operand and address
//! sizes, RIP-relative addressing, FS/GS bases, precise exceptions, REP strings.

use crate::flags::{CF, DF, ZF};
use crate::{step, CpuState, Exception, SegReg, StepOutcome};
use softvisor_mmu::{FlatMemory, GuestRam, Memory};

pub(crate) const CODE: u64 = 0x1000;

/// A 64-bit CPU at RIP=0x1000 over 64 KiB of flat memory holding `bytes` there (shared by
/// the instruction-group tests).
pub(crate) fn machine(bytes: &[u8]) -> (CpuState, FlatMemory) {
    let mut mem = FlatMemory::new(GuestRam::new(0x10000).unwrap());
    mem.ram.write_bytes(CODE, bytes).unwrap();
    let mut cpu = CpuState::new_long_mode();
    cpu.rip = CODE;
    cpu.gpr[4] = 0x8000;
    (cpu, mem)
}

fn run(cpu: &mut CpuState, mem: &mut FlatMemory) -> Result<StepOutcome, Exception> {
    step(cpu, mem)
}

#[test]
fn operand_size_prefix_and_rex_w_select_width() {
    // mov eax, -1 ; add ax, 1 (66 prefix) ; add rax, 1 (REX.W)
    let (mut cpu, mut mem) = machine(&[
        0xb8, 0xff, 0xff, 0xff, 0xff, 0x66, 0x83, 0xc0, 0x01, 0x48, 0x83, 0xc0, 0x01,
    ]);
    cpu.gpr[0] = 0xdead_beef_0000_0000;
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[0], 0xffff_ffff, "32-bit write zero-extends");
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[0], 0xffff_0000, "16-bit add wraps and merges");
    assert!(cpu.flags.test(CF) && cpu.flags.test(ZF));
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[0], 0xffff_0001);
    assert_eq!(cpu.rip, CODE + 13);
}

#[test]
fn rex_selects_low_byte_registers_and_high_bytes_without_it() {
    // mov ah, 0x12 ; mov sil, 0x34 (REX) ; mov r9b, 0x56
    let (mut cpu, mut mem) = machine(&[0xb4, 0x12, 0x40, 0xb6, 0x34, 0x41, 0xb1, 0x56]);
    for _ in 0..3 {
        run(&mut cpu, &mut mem).unwrap();
    }
    assert_eq!(cpu.gpr[0] & 0xff00, 0x1200);
    assert_eq!(cpu.gpr[6] & 0xff, 0x34);
    assert_eq!(cpu.gpr[9] & 0xff, 0x56);
}

#[test]
fn rip_relative_addressing_uses_the_next_instruction() {
    // mov rax, [rip+0x10] ; the target is 0x1007 + 0x10.
    let (mut cpu, mut mem) = machine(&[0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00]);
    mem.write_u64(CODE + 7 + 0x10, 0x1122_3344_5566_7788)
        .unwrap();
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[0], 0x1122_3344_5566_7788);
    // lea rcx, [rip-7] points at the instruction itself.
    let (mut cpu, mut mem) = machine(&[0x48, 0x8d, 0x0d, 0xf9, 0xff, 0xff, 0xff]);
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[1], CODE);
}

#[test]
fn address_size_prefix_wraps_at_32_bits() {
    // mov eax, [ebx+4] with 67: RBX's upper half is ignored.
    let (mut cpu, mut mem) = machine(&[0x67, 0x8b, 0x43, 0x04]);
    cpu.gpr[3] = 0xffff_ffff_0000_2000;
    mem.write_u32(0x2004, 0xcafe_f00d).unwrap();
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[0], 0xcafe_f00d);
}

#[test]
fn fs_and_gs_overrides_add_their_bases() {
    // mov rax, fs:[8] ; mov gs:[rbx], ecx
    let (mut cpu, mut mem) = machine(&[
        0x64, 0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x00, 0x00, 0x65, 0x89, 0x0b,
    ]);
    cpu.seg[SegReg::Fs as usize].base = 0x3000;
    cpu.seg[SegReg::Gs as usize].base = 0x4000;
    cpu.gpr[3] = 0x10;
    cpu.gpr[1] = 0xabcd;
    mem.write_u64(0x3008, 77).unwrap();
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[0], 77);
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(mem.read_u32(0x4010).unwrap(), 0xabcd);
    // DS/ES/SS overrides have no base in 64-bit mode.
    let (mut cpu, mut mem) = machine(&[0x3e, 0x8b, 0x03]);
    cpu.seg[SegReg::Ds as usize].base = 0x5000;
    cpu.gpr[3] = 0x2000;
    mem.write_u32(0x2000, 9).unwrap();
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[0], 9);
}

#[test]
fn faults_are_precise() {
    // push rax with RSP pointing outside RAM: nothing changes, RIP stays.
    let (mut cpu, mut mem) = machine(&[0x50]);
    cpu.gpr[4] = 0x20_0000;
    let before = cpu.clone();
    assert!(matches!(
        run(&mut cpu, &mut mem),
        Err(Exception::PageFault { .. })
    ));
    assert_eq!(cpu, before);
    // div by zero: #DE, registers untouched.
    let (mut cpu, mut mem) = machine(&[0x48, 0xf7, 0xf1]);
    cpu.gpr[0] = 5;
    let before = cpu.clone();
    assert_eq!(run(&mut cpu, &mut mem), Err(Exception::DivideError));
    assert_eq!(cpu, before);
    // A non-canonical address raises #GP(0).
    let (mut cpu, mut mem) = machine(&[0x8b, 0x03]);
    cpu.gpr[3] = 0x8000_0000_0000_0000;
    assert_eq!(
        run(&mut cpu, &mut mem),
        Err(Exception::GeneralProtection(0))
    );
}

#[test]
fn rep_movsb_copies_and_honours_df() {
    // rep movsb ; std ; rep stosb
    let (mut cpu, mut mem) = machine(&[0xf3, 0xa4, 0xfd, 0xf3, 0xaa]);
    mem.ram.write_bytes(0x2000, b"hello").unwrap();
    cpu.gpr[6] = 0x2000;
    cpu.gpr[7] = 0x3000;
    cpu.gpr[1] = 5;
    run(&mut cpu, &mut mem).unwrap();
    let mut out = [0u8; 5];
    mem.ram.read_bytes(0x3000, &mut out).unwrap();
    assert_eq!(&out, b"hello");
    assert_eq!((cpu.gpr[1], cpu.gpr[6], cpu.gpr[7]), (0, 0x2005, 0x3005));
    run(&mut cpu, &mut mem).unwrap();
    assert!(cpu.flags.test(DF));
    cpu.gpr[0] = 0x41;
    cpu.gpr[1] = 3;
    cpu.gpr[7] = 0x4002;
    run(&mut cpu, &mut mem).unwrap();
    mem.ram.read_bytes(0x4000, &mut out[..3]).unwrap();
    assert_eq!(&out[..3], b"AAA");
    assert_eq!(cpu.gpr[7], 0x3fff);
}

#[test]
fn rep_string_fault_keeps_completed_iterations() {
    // rep stosb running off the end of RAM at 0x10000.
    let (mut cpu, mut mem) = machine(&[0xf3, 0xaa]);
    cpu.gpr[7] = 0xfffe;
    cpu.gpr[1] = 4;
    assert_eq!(run(&mut cpu, &mut mem), Ok(StepOutcome::Continue));
    assert_eq!((cpu.gpr[1], cpu.gpr[7], cpu.rip), (2, 0x10000, CODE));
    assert!(matches!(
        run(&mut cpu, &mut mem),
        Err(Exception::PageFault { addr: 0x10000, .. })
    ));
}

#[test]
fn call_and_ret_use_the_stack() {
    // call +2 ; (skipped 2 bytes) ; ret
    let (mut cpu, mut mem) = machine(&[0xe8, 0x02, 0x00, 0x00, 0x00, 0x90, 0x90, 0xc3]);
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.rip, CODE + 7);
    assert_eq!(cpu.gpr[4], 0x7ff8);
    assert_eq!(mem.read_u64(0x7ff8).unwrap(), CODE + 5);
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.rip, CODE + 5);
    assert_eq!(cpu.gpr[4], 0x8000);
}

#[test]
fn undecodable_and_unimplemented_bytes_raise_ud() {
    // 0F 0B is UD2; 0F 04 does not decode; 0F 01 C1 (VMCALL) is not part of the model.
    for bytes in [
        &[0x0f, 0x0b][..],
        &[0x0f, 0x04][..],
        &[0x0f, 0x01, 0xc1][..],
    ] {
        let (mut cpu, mut mem) = machine(bytes);
        let before = cpu.clone();
        assert_eq!(
            run(&mut cpu, &mut mem),
            Err(Exception::InvalidOpcode),
            "{bytes:02x?}"
        );
        assert_eq!(cpu, before);
    }
}

#[test]
fn cpuid_and_rdtsc_follow_the_virtual_model() {
    // cpuid (leaf 0) ; rdtsc
    let (mut cpu, mut mem) = machine(&[0x0f, 0xa2, 0x0f, 0x31]);
    cpu.gpr[0] = 0;
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[3].to_le_bytes()[..4], *b"Soft");
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[0], 1, "the TSC counts retired instructions");
    assert_eq!(cpu.icount, 2);
}

#[test]
fn fetch_across_the_end_of_memory_faults_at_the_missing_byte() {
    let mut mem = FlatMemory::new(GuestRam::new(0x1000).unwrap());
    mem.ram.write_bytes(0xffe, &[0x48, 0xb8]).unwrap();
    let mut cpu = CpuState::new_long_mode();
    cpu.rip = 0xffe;
    assert!(matches!(
        step(&mut cpu, &mut mem),
        Err(Exception::PageFault { addr: 0x1000, .. })
    ));
}

#[test]
fn fxsave_and_fxrstor_round_trip() {
    // fxsave64 [rax] ; fxrstor64 [rax] ; fxsave [rbx] (misaligned)
    let (mut cpu, mut mem) = machine(&[
        0x48, 0x0f, 0xae, 0x00, 0x48, 0x0f, 0xae, 0x08, 0x0f, 0xae, 0x03,
    ]);
    cpu.gpr[0] = 0x2000;
    cpu.gpr[3] = 0x3008;
    cpu.xmm[15] = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
    cpu.mxcsr = 0x1f80 | (1 << 13);
    cpu.x87.top = 6;
    cpu.x87.regs[6] = crate::F80 {
        signif: 0x8000_0000_0000_0000,
        sign_exp: 0x3fff,
    };
    cpu.x87.ftw = !(3u16 << 12);
    let saved = (cpu.xmm, cpu.mxcsr, cpu.x87);
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(mem.read_u16(0x2002).unwrap() >> 11 & 7, 6, "TOP in FSW");
    assert_eq!(
        mem.read_u8(0x2004).unwrap(),
        1 << 6,
        "abridged tag: only R6 in use"
    );
    assert_eq!(mem.read_u32(0x2018).unwrap(), 0x3f80);
    assert_eq!(mem.read_u128(0x2000 + 160 + 15 * 16).unwrap(), saved.0[15]);
    cpu.xmm = [0; 16];
    cpu.mxcsr = 0x1f80;
    cpu.x87 = crate::X87State::default();
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(
        (cpu.xmm, cpu.mxcsr, cpu.x87.top, cpu.x87.regs[6]),
        (saved.0, saved.1, 6, saved.2.regs[6])
    );
    assert_eq!(
        cpu.x87.ftw, saved.2.ftw,
        "full tag rebuilt: R6 valid, others empty"
    );
    assert_eq!(
        run(&mut cpu, &mut mem),
        Err(Exception::GeneralProtection(0))
    );
}

/// A 32-bit protected-mode CPU running `bytes` at 0x1000 with flat CS/SS and DS as given.
fn protected_machine(bytes: &[u8], ds: crate::Segment) -> (CpuState, FlatMemory) {
    let (mut cpu, mem) = machine(bytes);
    cpu.efer = 0;
    cpu.cr0 = crate::state::CR0_PE;
    cpu.seg[SegReg::Cs as usize] = crate::Segment::flat(0x08, 0x9b | crate::Segment::ATTR_DB);
    cpu.seg[SegReg::Ss as usize] = crate::Segment::flat(0x10, 0x93 | crate::Segment::ATTR_DB);
    cpu.seg[SegReg::Ds as usize] = ds;
    (cpu, mem)
}

#[test]
fn segment_limits_are_checked_outside_64bit_mode() {
    // mov eax, [ebx]
    let small = crate::Segment {
        base: 0x2000,
        limit: 0xfff,
        selector: 0x18,
        attrs: 0x93 | crate::Segment::ATTR_DB,
    };
    let (mut cpu, mut mem) = protected_machine(&[0x8b, 0x03], small);
    cpu.gpr[3] = 0xffc;
    mem.write_u32(0x2ffc, 7).unwrap();
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.gpr[0], 7, "the last dword inside the limit");
    cpu.rip = CODE;
    cpu.gpr[3] = 0xffd;
    assert_eq!(
        run(&mut cpu, &mut mem),
        Err(Exception::GeneralProtection(0)),
        "crosses the limit"
    );
    // Expand-down: offsets at or below the limit are invalid.
    let down = crate::Segment {
        attrs: 0x97 | crate::Segment::ATTR_DB,
        ..small
    };
    let (mut cpu, mut mem) = protected_machine(&[0x8b, 0x03], down);
    cpu.gpr[3] = 0x800;
    assert_eq!(
        run(&mut cpu, &mut mem),
        Err(Exception::GeneralProtection(0))
    );
    cpu.gpr[3] = 0x1000;
    assert!(run(&mut cpu, &mut mem).is_ok());
    // A null DS: #GP(0) on use.
    let (mut cpu, mut mem) = protected_machine(&[0x8b, 0x03], crate::Segment::default());
    assert_eq!(
        run(&mut cpu, &mut mem),
        Err(Exception::GeneralProtection(0))
    );
}

#[test]
fn stack_limit_faults_are_stack_faults() {
    // push eax with SS limited to 0x7fff and ESP at 0x2: the 4-byte push wraps below 0.
    let flat = crate::Segment::flat(0x10, 0x93 | crate::Segment::ATTR_DB);
    let (mut cpu, mut mem) = protected_machine(&[0x50], flat);
    cpu.seg[SegReg::Ss as usize].limit = 0x7fff;
    cpu.gpr[4] = 0x2;
    assert_eq!(run(&mut cpu, &mut mem), Err(Exception::StackFault(0)));
    assert_eq!(cpu.gpr[4], 0x2);
    // Real mode: a word access at offset 0xffff crosses the 64 KiB limit.
    let (_, mut mem) = machine(&[0x8b, 0x07]);
    let mut cpu = CpuState::new_real_mode();
    cpu.rip = CODE;
    cpu.gpr[3] = 0xffff;
    assert_eq!(
        run(&mut cpu, &mut mem),
        Err(Exception::GeneralProtection(0))
    );
}

#[test]
fn stores_need_a_writable_data_segment() {
    // mov [ebx], eax through a read-only data segment, then through a writable one.
    let read_only = crate::Segment {
        base: 0,
        limit: u32::MAX,
        selector: 0x18,
        attrs: 0x91 | crate::Segment::ATTR_DB,
    };
    let (mut cpu, mut mem) = protected_machine(&[0x89, 0x03], read_only);
    cpu.gpr[3] = 0x3000;
    assert_eq!(
        run(&mut cpu, &mut mem),
        Err(Exception::GeneralProtection(0))
    );
    cpu.seg[SegReg::Ds as usize].attrs = 0x93 | crate::Segment::ATTR_DB;
    assert!(run(&mut cpu, &mut mem).is_ok());
}

#[test]
fn xsave_family_round_trip_and_checks() {
    // xsetbv ; xgetbv ; xsave64 [rsi] ; xrstor64 [rsi] ; xrstor64 [rdi]
    let code = [
        0x0f, 0x01, 0xd1, 0x0f, 0x01, 0xd0, 0x48, 0x0f, 0xae, 0x26, 0x48, 0x0f, 0xae, 0x2e, 0x48,
        0x0f, 0xae, 0x2f,
    ];
    let (mut cpu, mut mem) = machine(&code);
    // Without CR4.OSXSAVE every one of them is #UD.
    assert_eq!(run(&mut cpu, &mut mem), Err(Exception::InvalidOpcode));
    cpu.cr4 |= 1 << 18;
    cpu.gpr[1] = 0;
    cpu.gpr[2] = 0;
    cpu.gpr[0] = 0b111; // AVX is not in the model
    assert_eq!(
        run(&mut cpu, &mut mem),
        Err(Exception::GeneralProtection(0))
    );
    cpu.gpr[0] = 0b11;
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.xcr0, 0b11);
    cpu.gpr[0] = 0;
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!((cpu.gpr[0], cpu.gpr[2]), (0b11, 0));
    // Save x87+SSE, scramble, restore.
    cpu.gpr[0] = u64::MAX;
    cpu.gpr[2] = u64::MAX;
    cpu.gpr[6] = 0x4000;
    cpu.gpr[7] = 0x5000;
    cpu.xmm[3] = 0x1234;
    cpu.mxcsr = 0x1f80 | (3 << 13);
    cpu.x87.fcw = 0x027f;
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(mem.read_u64(0x4000 + 512).unwrap(), 0b11, "XSTATE_BV");
    cpu.xmm[3] = 0;
    cpu.mxcsr = 0x1f80;
    cpu.x87.fcw = 0x037f;
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!(
        (cpu.xmm[3], cpu.mxcsr, cpu.x87.fcw),
        (0x1234, 0x1f80 | (3 << 13), 0x027f)
    );
    // An area whose XSTATE_BV is 0 puts both components in their initial state.
    mem.write_u32(0x5000 + 24, 0x1f80).unwrap();
    run(&mut cpu, &mut mem).unwrap();
    assert_eq!((cpu.xmm[3], cpu.x87.fcw), (0, 0x037f));
    let [_, _, ecx, _] = crate::cpuid::cpuid(
        1,
        0,
        crate::cpuid::CpuidState {
            apic_id: 0,
            osxsave: true,
        },
    );
    assert_ne!(ecx & (1 << 27), 0, "OSXSAVE follows CR4");
}

/// Forwards to a flat memory but says nothing is RAM, so REP MOVS/STOS take the
/// element-by-element path.
struct ElementByElement<'a>(&'a mut FlatMemory);

impl Memory for ElementByElement<'_> {
    fn read(
        &mut self,
        addr: u64,
        buf: &mut [u8],
        kind: softvisor_mmu::AccessKind,
    ) -> Result<(), softvisor_mmu::MemFault> {
        self.0.read(addr, buf, kind)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), softvisor_mmu::MemFault> {
        self.0.write(addr, data)
    }
}

#[test]
fn bulk_rep_movs_and_stos_match_the_element_path() {
    // (instruction, rsi, rdi, rcx): page crossings, misaligned elements, a count above one
    // batch, overlapping areas, and runs that fault at the end of RAM after progress.
    let cases: [(&[u8], u64, u64, u64); 12] = [
        (&[0xf3, 0xa4], 0x2ff0, 0x5008, 0x1800),       // rep movsb
        (&[0xf3, 0x48, 0xa5], 0x2003, 0x7ffd, 0x300),  // rep movsq, misaligned
        (&[0xf3, 0x66, 0xa5], 0x3000, 0x9001, 0x2100), // rep movsw, beyond one batch
        (&[0xf3, 0xa5], 0x4000, 0x4002, 0x200),        // rep movsd, overlapping
        (&[0xf3, 0xa4], 0x4001, 0x4000, 0x900),        // rep movsb, overlapping back
        (&[0xf3, 0xaa], 0, 0x2345, 0x2000),            // rep stosb
        (&[0xf3, 0x48, 0xab], 0, 0x3ffc, 0x801),       // rep stosq, misaligned
        (&[0xf3, 0x66, 0xab], 0, 0x5001, 0x900),       // rep stosw, misaligned
        (&[0xf3, 0xab], 0, 0x6000, 0x1100),            // rep stosd, beyond a page
        (&[0xf3, 0x48, 0xab], 0, 0xf000, 0x400),       // rep stosq, runs off RAM
        (&[0xf3, 0x48, 0xa5], 0x2000, 0xfe00, 0x100),  // rep movsq, runs off RAM
        (&[0xf3, 0xa4], 0xfff0, 0x3000, 0x20),         // rep movsb, source runs off
    ];
    for (index, &(code, rsi, rdi, rcx)) in cases.iter().enumerate() {
        let setup = || {
            let (mut cpu, mut mem) = machine(code);
            for i in 0..0x10000u64 / 8 {
                if !(CODE..CODE + 16).contains(&(i * 8)) {
                    let _ = mem.write_u64(i * 8, i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                }
            }
            cpu.gpr[0] = 0x0102_0304_0506_0708;
            (cpu.gpr[6], cpu.gpr[7], cpu.gpr[1]) = (rsi, rdi, rcx);
            (cpu, mem)
        };
        let (mut bulk_cpu, mut bulk_mem) = setup();
        let (mut ref_cpu, mut ref_mem) = setup();
        for _ in 0..8 {
            let bulk = step(&mut bulk_cpu, &mut bulk_mem);
            let reference = step(&mut ref_cpu, &mut ElementByElement(&mut ref_mem));
            assert_eq!(bulk, reference, "case {index}: outcome");
            assert_eq!(bulk_cpu.gpr, ref_cpu.gpr, "case {index}: registers");
            assert_eq!(bulk_cpu.rip, ref_cpu.rip, "case {index}: rip");
            if bulk.is_err() || bulk_cpu.rip != CODE {
                break;
            }
        }
        let (mut a, mut b) = (vec![0; 0x10000], vec![0; 0x10000]);
        bulk_mem.ram.read_bytes(0, &mut a).unwrap();
        ref_mem.ram.read_bytes(0, &mut b).unwrap();
        assert!(a == b, "case {index}: memory");
    }
}
