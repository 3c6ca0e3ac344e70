//! RDMSR and WRMSR: the MSRs of the virtual CPU model. Platform MSRs (the x2APIC range,
//! the TSC deadline) go to the [`Platform`]; an MSR nobody knows raises #GP(0).

use crate::{CpuState, Exception, Platform, SegReg};
use softvisor_mmu::Memory;

/// IA32_TIME_STAMP_COUNTER.
pub const TSC: u32 = 0x10;
/// IA32_APIC_BASE.
pub const APIC_BASE: u32 = 0x1b;
/// IA32_MTRRCAP.
pub const MTRR_CAP: u32 = 0xfe;
/// IA32_ARCH_CAPABILITIES (read-only).
pub const ARCH_CAPABILITIES: u32 = 0x10a;
/// What ARCH_CAPABILITIES reports: not affected by Meltdown (RDCL_NO), L1TF flushes not
/// needed, SSB, MDS, page-size-change MCE, TAA, MMIO stale data (SBDR/FBSDP/PSDP), PBRSB,
/// GDS and RFDS. True of an emulator, which does not speculate.
const ARCH_CAPABILITIES_VALUE: u64 = (1 << 0)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 8)
    | (1 << 13)
    | (1 << 14)
    | (1 << 15)
    | (1 << 24)
    | (1 << 26)
    | (1 << 27);
/// IA32_SYSENTER_CS/ESP/EIP.
pub const SYSENTER_CS: u32 = 0x174;
/// IA32_MISC_ENABLE.
pub const MISC_ENABLE: u32 = 0x1a0;
/// IA32_PAT.
pub const PAT: u32 = 0x277;
/// IA32_MTRR_DEF_TYPE.
pub const MTRR_DEF_TYPE: u32 = 0x2ff;
/// IA32_EFER.
pub const EFER: u32 = 0xc000_0080;
/// IA32_STAR.
pub const STAR: u32 = 0xc000_0081;
/// IA32_LSTAR.
pub const LSTAR: u32 = 0xc000_0082;
/// IA32_CSTAR.
pub const CSTAR: u32 = 0xc000_0083;
/// IA32_FMASK.
pub const FMASK: u32 = 0xc000_0084;
/// IA32_FS_BASE.
pub const FS_BASE: u32 = 0xc000_0100;
/// IA32_GS_BASE.
pub const GS_BASE: u32 = 0xc000_0101;
/// IA32_KERNEL_GS_BASE.
pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
/// IA32_TSC_AUX.
pub const TSC_AUX: u32 = 0xc000_0103;

/// The fixed-range MTRR numbers, in the order of `MsrState::mtrr_fixed`.
const MTRR_FIXED: [u32; 11] = [
    0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
];

/// The default APIC base: 0xfee00000, enabled, bootstrap processor.
pub const APIC_BASE_DEFAULT: u64 = 0xfee0_0000 | (1 << 11) | (1 << 8);

/// A writable plain-storage MSR of the CPU.
fn storage(cpu: &mut CpuState, msr: u32) -> Option<&mut u64> {
    let m = &mut cpu.msr;
    Some(match msr {
        STAR => &mut m.star,
        LSTAR => &mut m.lstar,
        CSTAR => &mut m.cstar,
        FMASK => &mut m.sfmask,
        KERNEL_GS_BASE => &mut m.kernel_gs_base,
        TSC_AUX => &mut m.tsc_aux,
        PAT => &mut m.pat,
        SYSENTER_CS => &mut m.sysenter_cs,
        0x175 => &mut m.sysenter_esp,
        0x176 => &mut m.sysenter_eip,
        MISC_ENABLE => &mut m.misc_enable,
        MTRR_DEF_TYPE => &mut m.mtrr_def_type,
        0x200..=0x20f => &mut m.mtrr_var[(msr - 0x200) as usize],
        _ => {
            let i = MTRR_FIXED.iter().position(|&f| f == msr)?;
            &mut m.mtrr_fixed[i]
        }
    })
}

/// RDMSR.
pub fn read(cpu: &mut CpuState, platform: &mut dyn Platform, msr: u32) -> Result<u64, Exception> {
    platform.sync_clock(cpu.icount);
    if let Some(value) = platform.read_msr(msr) {
        return Ok(value);
    }
    Ok(match msr {
        TSC => cpu.tsc(),
        APIC_BASE => cpu.msr.apic_base,
        // 8 variable ranges, fixed ranges, write-combining.
        MTRR_CAP => 0x508,
        ARCH_CAPABILITIES => ARCH_CAPABILITIES_VALUE,
        EFER => cpu.efer,
        FS_BASE => cpu.seg[SegReg::Fs as usize].base,
        GS_BASE => cpu.seg[SegReg::Gs as usize].base,
        _ => *storage(cpu, msr).ok_or(Exception::GeneralProtection(0))?,
    })
}

/// WRMSR.
pub fn write(
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    platform: &mut dyn Platform,
    msr: u32,
    value: u64,
) -> Result<(), Exception> {
    let gp = Exception::GeneralProtection(0);
    let canonical = crate::interp::is_canonical(value);
    platform.sync_clock(cpu.icount);
    match msr {
        _ if platform.write_msr(msr, value) => {}
        TSC => cpu.tsc_offset = value.wrapping_sub(cpu.instruction_ns()),
        APIC_BASE => cpu.msr.apic_base = value,
        EFER => super::control::write_efer(cpu, mem, value)?,
        FS_BASE | GS_BASE | KERNEL_GS_BASE | LSTAR | CSTAR if !canonical => return Err(gp),
        FS_BASE => cpu.seg[SegReg::Fs as usize].base = value,
        GS_BASE => cpu.seg[SegReg::Gs as usize].base = value,
        PAT if (0..8).any(|i| matches!((value >> (8 * i)) & 0xff, 2 | 3 | 8..=255)) => {
            return Err(gp)
        }
        MTRR_CAP | ARCH_CAPABILITIES => return Err(gp),
        _ => *storage(cpu, msr).ok_or(gp)? = value,
    }
    Ok(())
}
