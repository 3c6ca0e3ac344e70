//! Which iced `Code`s the differential suite covers, and why the others are left out.
//!
//! A form is covered when it is valid in 64-bit mode, needs only CPUID features of the
//! virtual CPU model, and its result is architecturally defined in user mode. Each exclusion
//! below says why; everything else must match the host bit for bit.

use iced_x86::{Code, CpuidFeature, EncodingKind, Mnemonic, OpCodeOperandKind};

/// CPUID features of the user-level ISA the interpreter implements.
const FEATURES: &[CpuidFeature] = &[
    CpuidFeature::INTEL8086,
    CpuidFeature::INTEL186,
    CpuidFeature::INTEL286,
    CpuidFeature::INTEL386,
    CpuidFeature::INTEL486,
    CpuidFeature::X64,
    CpuidFeature::CMOV,
    CpuidFeature::CX8,
    CpuidFeature::CMPXCHG16B,
    CpuidFeature::FPU,
    CpuidFeature::FPU287,
    CpuidFeature::FPU387,
    CpuidFeature::MMX,
    CpuidFeature::SSE,
    CpuidFeature::SSE2,
    CpuidFeature::SSE3,
    CpuidFeature::SSSE3,
    CpuidFeature::SSE4_1,
    CpuidFeature::SSE4_2,
    CpuidFeature::POPCNT,
    CpuidFeature::LZCNT,
    CpuidFeature::BMI1,
    CpuidFeature::BMI2,
    CpuidFeature::ADX,
    CpuidFeature::MOVBE,
    CpuidFeature::MULTIBYTENOP,
    CpuidFeature::PAUSE,
    CpuidFeature::CLFSH,
    CpuidFeature::CLFLUSHOPT,
    CpuidFeature::PREFETCHW,
    CpuidFeature::FXSR,
];

/// Why a form is not compared against the host, or `None` if it is.
pub fn exclusion(code: Code) -> Option<&'static str> {
    let op = code.op_code();
    if !op.is_instruction() || !op.mode64() {
        return Some("not valid in 64-bit mode");
    }
    if !matches!(op.encoding(), EncodingKind::Legacy | EncodingKind::VEX) {
        return Some("EVEX/XOP/3DNow! encodings are not in the x86-64-v2 model");
    }
    if !code.cpuid_features().iter().all(|f| FEATURES.contains(f)) {
        return Some("needs a CPUID feature the virtual CPU does not advertise");
    }
    let kinds = op.op_kinds();
    if kinds.iter().any(|k| {
        matches!(
            k,
            OpCodeOperandKind::seg_reg
                | OpCodeOperandKind::cr_reg
                | OpCodeOperandKind::dr_reg
                | OpCodeOperandKind::tr_reg
        )
    }) {
        return Some("system register operand (system-mode work)");
    }
    if kinds.iter().any(|k| {
        matches!(
            k,
            OpCodeOperandKind::farbr2_2
                | OpCodeOperandKind::farbr4_2
                | OpCodeOperandKind::es
                | OpCodeOperandKind::cs
                | OpCodeOperandKind::ss
                | OpCodeOperandKind::ds
                | OpCodeOperandKind::fs
                | OpCodeOperandKind::gs
        )
    }) {
        return Some("segment register or far transfer (system-mode work)");
    }
    if op.is_privileged() || op.is_input_output() || op.must_be_cpl0() {
        return Some("privileged or I/O (system-mode work)");
    }
    if code == Code::Ud0 {
        return Some("0F FF without ModRM: decoders read it as the ModRM form (covered)");
    }
    if op.fwait() {
        return Some("FWAIT plus a no-wait form: two instructions, each covered on its own");
    }
    if matches!(
        op.memory_size(),
        iced_x86::MemorySize::SegPtr16
            | iced_x86::MemorySize::SegPtr32
            | iced_x86::MemorySize::SegPtr64
    ) {
        return Some("far transfer (system-mode work)");
    }
    use Mnemonic as M;
    let m = code.mnemonic();
    match m {
        M::Cpuid | M::Rdtsc | M::Rdtscp => {
            Some("returns host-specific values (unit-tested instead)")
        }
        M::Int | M::Int1 | M::Int3 | M::Into | M::Syscall | M::Sysenter | M::Hlt => {
            Some("enters the host kernel")
        }
        M::Fsin
        | M::Fcos
        | M::Fsincos
        | M::Fptan
        | M::Fpatan
        | M::F2xm1
        | M::Fyl2x
        | M::Fyl2xp1 => Some("x87 transcendental: accuracy is implementation-specific"),
        M::Rcpps | M::Rcpss | M::Rsqrtps | M::Rsqrtss => {
            Some("approximation whose bits differ between vendors")
        }
        M::Fnstenv | M::Fstenv | M::Fnsave | M::Fsave => {
            Some("stores FIP/FDP/FOP, which AMD only records after an x87 error")
        }
        M::Fxsave | M::Fxsave64 => {
            Some("stores FIP/FDP/FOP, which AMD only records after an x87 error")
        }
        M::Lar | M::Lsl | M::Verr | M::Verw => {
            Some("inspects the host's GDT/LDT, which the model does not share (unit-tested)")
        }
        M::Sgdt | M::Sidt | M::Sldt | M::Str | M::Smsw => {
            Some("descriptor-table instruction (system-mode work; UMIP on the host)")
        }
        M::Loop | M::Loope | M::Loopne | M::Jcxz | M::Jecxz | M::Jrcxz
            if op.operand_size() == 16 =>
        {
            Some("16-bit near branches in 64-bit mode differ between Intel and AMD")
        }
        M::Reservednop
            if matches!(
                code,
                Code::Reservednop_rm16_r16_0F0D
                    | Code::Reservednop_rm32_r32_0F0D
                    | Code::Reservednop_rm64_r64_0F0D
            ) =>
        {
            Some("0F 0D with a register operand: #UD on AMD, a NOP on Intel")
        }
        M::Lss
        | M::Lfs
        | M::Lgs
        | M::Retf
        | M::Iret
        | M::Iretd
        | M::Iretq
        | M::Sysret
        | M::Sysexit
        | M::Swapgs => Some("segment load or far return (system-mode work)"),
        M::Bswap if op.operand_size() == 16 => Some("16-bit BSWAP is undefined"),
        M::Jmp
        | M::Call
        | M::Ret
        | M::Jo
        | M::Jno
        | M::Jb
        | M::Jae
        | M::Je
        | M::Jne
        | M::Jbe
        | M::Ja
        | M::Js
        | M::Jns
        | M::Jp
        | M::Jnp
        | M::Jl
        | M::Jge
        | M::Jle
        | M::Jg
            if op.operand_size() == 16 =>
        {
            Some("16-bit near branches in 64-bit mode differ between Intel and AMD")
        }
        _ => None,
    }
}

/// Every covered form, in `Code` order.
pub fn covered() -> Vec<Code> {
    Code::values().filter(|&c| exclusion(c).is_none()).collect()
}
