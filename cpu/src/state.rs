//! The architectural state of one x86-64 CPU.
//!
//! `#[repr(C)]` with fixed field types, because generated code addresses these fields
//! through [`crate::offsets`]. Nothing here depends on host endianness: vector registers
//! are `u128` values whose bit 0 is bit 0 of the x86 register.

use crate::flags::LazyFlags;
use iced_x86::Register;

/// Segment registers in the hardware encoding order (also iced-x86's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum SegReg {
    /// ES.
    Es = 0,
    /// CS.
    Cs = 1,
    /// SS.
    Ss = 2,
    /// DS.
    Ds = 3,
    /// FS.
    Fs = 4,
    /// GS.
    Gs = 5,
}

impl SegReg {
    /// The segment register named by an iced register, if it is one.
    pub fn from_register(reg: Register) -> Option<SegReg> {
        Some(match reg {
            Register::ES => SegReg::Es,
            Register::CS => SegReg::Cs,
            Register::SS => SegReg::Ss,
            Register::DS => SegReg::Ds,
            Register::FS => SegReg::Fs,
            Register::GS => SegReg::Gs,
            _ => return None,
        })
    }
}

/// A segment register with its hidden descriptor cache.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Base address (only FS/GS bases apply in 64-bit mode).
    pub base: u64,
    /// Limit in bytes (already scaled by the granularity bit).
    pub limit: u32,
    /// Visible selector.
    pub selector: u16,
    /// Descriptor attributes in the VMX access-rights layout: type (0-3), S (4), DPL (5-6),
    /// P (7), AVL (12), L (13), D/B (14), G (15).
    pub attrs: u16,
}

impl Segment {
    /// The L bit (64-bit code segment).
    pub const ATTR_L: u16 = 1 << 13;
    /// The D/B bit (32-bit default size).
    pub const ATTR_DB: u16 = 1 << 14;
    /// The present bit.
    pub const ATTR_P: u16 = 1 << 7;

    /// A flat 4 GiB segment with the given selector and attributes.
    pub fn flat(selector: u16, attrs: u16) -> Self {
        Self {
            base: 0,
            limit: u32::MAX,
            selector,
            attrs,
        }
    }
}

/// GDTR/IDTR.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableReg {
    /// Linear base address.
    pub base: u64,
    /// Limit in bytes.
    pub limit: u16,
}

/// An x87 80-bit extended-precision value: 64-bit significand with explicit integer bit,
/// and sign plus 15-bit exponent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct F80 {
    /// Significand, integer bit in bit 63. Also the MMX register when aliased.
    pub signif: u64,
    /// Sign (bit 15) and biased exponent (bits 0-14).
    pub sign_exp: u16,
}

/// The x87 FPU (and, aliased on it, MMX) state.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X87State {
    /// Physical registers R0..R7 (ST(i) is R[(TOP + i) % 8]).
    pub regs: [F80; 8],
    /// Control word.
    pub fcw: u16,
    /// Status word without TOP (bits 11-13 are kept in `top`).
    pub fsw: u16,
    /// Full tag word, two bits per physical register (00 valid, 01 zero, 10 special, 11 empty).
    pub ftw: u16,
    /// Last opcode (11 bits).
    pub fop: u16,
    /// Top-of-stack pointer (0-7).
    pub top: u8,
    /// Last instruction pointer.
    pub fip: u64,
    /// Last data pointer.
    pub fdp: u64,
}

impl Default for X87State {
    fn default() -> Self {
        // The state after FNINIT.
        Self {
            regs: [F80::default(); 8],
            fcw: 0x037f,
            fsw: 0,
            ftw: 0xffff,
            fop: 0,
            top: 0,
            fip: 0,
            fdp: 0,
        }
    }
}

/// Model-specific registers that are plain storage in the CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsrState {
    /// IA32_STAR.
    pub star: u64,
    /// IA32_LSTAR.
    pub lstar: u64,
    /// IA32_CSTAR.
    pub cstar: u64,
    /// IA32_FMASK.
    pub sfmask: u64,
    /// IA32_KERNEL_GS_BASE.
    pub kernel_gs_base: u64,
    /// IA32_TSC_AUX.
    pub tsc_aux: u64,
    /// IA32_PAT.
    pub pat: u64,
    /// IA32_SYSENTER_CS.
    pub sysenter_cs: u64,
    /// IA32_SYSENTER_ESP.
    pub sysenter_esp: u64,
    /// IA32_SYSENTER_EIP.
    pub sysenter_eip: u64,
    /// IA32_MISC_ENABLE.
    pub misc_enable: u64,
    /// IA32_APIC_BASE.
    pub apic_base: u64,
    /// IA32_MTRR_DEF_TYPE.
    pub mtrr_def_type: u64,
    /// The eleven fixed-range MTRRs (0x250, 0x258, 0x259, 0x268..0x26f).
    pub mtrr_fixed: [u64; 11],
    /// Variable-range MTRR base/mask pairs (0x200..0x20f).
    pub mtrr_var: [u64; 16],
}

/// CR0.PE: protected mode.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.MP.
pub const CR0_MP: u64 = 1 << 1;
/// CR0.EM: x87 emulation (x87/SSE raise #NM/#UD).
pub const CR0_EM: u64 = 1 << 2;
/// CR0.TS: task switched.
pub const CR0_TS: u64 = 1 << 3;
/// CR0.ET.
pub const CR0_ET: u64 = 1 << 4;
/// CR0.NE.
pub const CR0_NE: u64 = 1 << 5;
/// CR0.PG: paging.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.OSFXSR: SSE enabled.
pub const CR4_OSFXSR: u64 = 1 << 9;
/// EFER.LME.
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA.
pub const EFER_LMA: u64 = 1 << 10;

/// The default instruction-clock rate: one instruction per nanosecond.
pub const DEFAULT_INSNS_PER_US: u64 = 1000;

/// Virtual nanoseconds of `icount` instructions at `insns_per_us`.
#[inline]
pub fn icount_to_ns(icount: u64, insns_per_us: u64) -> u64 {
    if insns_per_us == DEFAULT_INSNS_PER_US {
        icount
    } else {
        ((u128::from(icount) * 1000) / u128::from(insns_per_us.max(1))) as u64
    }
}

/// Instructions that retire in `ns` virtual nanoseconds at `insns_per_us` (rounded up, so
/// running that many reaches the time).
#[inline]
pub fn ns_to_icount(ns: u64, insns_per_us: u64) -> u64 {
    if insns_per_us == DEFAULT_INSNS_PER_US {
        ns
    } else {
        (u128::from(ns) * u128::from(insns_per_us)).div_ceil(1000) as u64
    }
}

/// The complete architectural state of one CPU.
#[repr(C)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuState {
    /// RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8..R15 in encoding order.
    pub gpr: [u64; 16],
    /// Instruction pointer.
    pub rip: u64,
    /// RFLAGS in lazy form.
    pub flags: LazyFlags,
    /// XMM0..XMM15.
    pub xmm: [u128; 16],
    /// SSE control/status register.
    pub mxcsr: u32,
    /// Segment registers, indexed by [`SegReg`].
    pub seg: [Segment; 6],
    /// LDTR.
    pub ldtr: Segment,
    /// Task register.
    pub tr: Segment,
    /// GDTR.
    pub gdtr: TableReg,
    /// IDTR.
    pub idtr: TableReg,
    /// CR0.
    pub cr0: u64,
    /// CR2 (last page-fault address).
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// CR8 (task priority).
    pub cr8: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// XCR0.
    pub xcr0: u64,
    /// DR0..DR7 (DR4/DR5 alias DR6/DR7).
    pub dr: [u64; 8],
    /// Plain-storage MSRs.
    pub msr: MsrState,
    /// x87 and MMX state.
    pub x87: X87State,
    /// Instructions retired since reset: the basis of the virtual clock.
    pub icount: u64,
    /// Added to the instruction clock to form the guest TSC (written by WRMSR TSC, and
    /// advanced by time skipped while halted).
    pub tsc_offset: u64,
    /// Instructions per microsecond of virtual time: the rate of the instruction clock,
    /// whose nanoseconds the 1 GHz TSC counts (1000: one instruction per nanosecond).
    pub insns_per_us: u64,
    /// Interrupts are inhibited for one instruction (after STI that set IF, MOV SS, POP SS).
    pub interrupt_shadow: bool,
    /// The CPU is in HLT, waiting for an interrupt.
    pub halted: bool,
    /// Not architectural: words an execution engine keeps beside the state while it runs,
    /// so that its generated code reaches them from the state's pointer alone (the JIT's
    /// TLB, instruction budget, jump cache and context: a second base pointer had held a host
    /// register through every block). Zero outside an engine's run, so states compare.
    pub engine: [u64; ENGINE_WORDS],
}

/// Words of [`CpuState::engine`].
pub const ENGINE_WORDS: usize = 5;

impl Default for CpuState {
    fn default() -> Self {
        Self::new_long_mode()
    }
}

impl CpuState {
    /// A CPU in 64-bit mode with flat segments, as a 64-bit kernel or user program sees it.
    /// This is the state the differential harness and unit tests start from.
    pub fn new_long_mode() -> Self {
        let code = Segment::flat(0x10, 0x9b | Segment::ATTR_L);
        let data = Segment::flat(0x18, 0x93 | Segment::ATTR_DB);
        Self {
            gpr: [0; 16],
            rip: 0,
            flags: LazyFlags::default(),
            xmm: [0; 16],
            mxcsr: 0x1f80,
            seg: [data, code, data, data, data, data],
            ldtr: Segment::default(),
            tr: Segment::default(),
            gdtr: TableReg::default(),
            idtr: TableReg::default(),
            cr0: CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG,
            cr2: 0,
            cr3: 0,
            cr4: CR4_OSFXSR | (1 << 10) | (1 << 5),
            cr8: 0,
            efer: EFER_LME | EFER_LMA | 1 | (1 << 11),
            xcr0: 1,
            dr: [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400],
            msr: MsrState {
                pat: 0x0007_0406_0007_0406,
                ..MsrState::default()
            },
            x87: X87State::default(),
            icount: 0,
            engine: [0; ENGINE_WORDS],
            tsc_offset: 0,
            insns_per_us: DEFAULT_INSNS_PER_US,
            interrupt_shadow: false,
            halted: false,
        }
    }

    /// A CPU in real mode as a BIOS leaves it: paging and protection off, every segment at
    /// base 0 with a 64 KiB limit, the IVT at 0 and RIP 0. Boot sectors and the real-mode
    /// tests start from here.
    pub fn new_real_mode() -> Self {
        let data = Segment {
            base: 0,
            limit: 0xffff,
            selector: 0,
            attrs: 0x93,
        };
        let mut cpu = Self::new_long_mode();
        cpu.cr0 = CR0_ET;
        cpu.cr4 = 0;
        cpu.efer = 0;
        cpu.seg = [data; 6];
        cpu.seg[SegReg::Cs as usize].attrs = 0x9b;
        cpu.idtr = TableReg {
            base: 0,
            limit: 0x3ff,
        };
        cpu.gdtr = TableReg {
            base: 0,
            limit: 0xffff,
        };
        cpu
    }

    /// Whether the CPU is in 64-bit mode (long mode with a 64-bit code segment).
    #[inline]
    pub fn in_64bit_mode(&self) -> bool {
        self.efer & EFER_LMA != 0 && self.seg[SegReg::Cs as usize].attrs & Segment::ATTR_L != 0
    }

    /// Whether long mode is active (EFER.LMA), in 64-bit or compatibility mode.
    #[inline]
    pub fn in_long_mode(&self) -> bool {
        self.efer & EFER_LMA != 0
    }

    /// The code size the decoder must use: 16, 32 or 64.
    #[inline]
    pub fn bitness(&self) -> u32 {
        if self.in_64bit_mode() {
            64
        } else if self.cr0 & CR0_PE != 0
            && self.seg[SegReg::Cs as usize].attrs & Segment::ATTR_DB != 0
        {
            32
        } else {
            16
        }
    }

    /// Virtual nanoseconds the retired instructions stand for.
    #[inline]
    pub fn instruction_ns(&self) -> u64 {
        icount_to_ns(self.icount, self.insns_per_us)
    }

    /// The TSC (1 GHz: one tick per virtual nanosecond).
    #[inline]
    pub fn tsc(&self) -> u64 {
        self.instruction_ns().wrapping_add(self.tsc_offset)
    }

    /// Current privilege level: 0 in real mode, 3 in virtual-8086 mode, else CS.RPL.
    #[inline]
    pub fn cpl(&self) -> u8 {
        if self.cr0 & CR0_PE == 0 {
            0
        } else if self.flags.bits & crate::flags::VM != 0 {
            3
        } else {
            (self.seg[SegReg::Cs as usize].selector & 3) as u8
        }
    }

    /// The full RFLAGS value.
    #[inline]
    pub fn rflags(&self) -> u64 {
        self.flags.get()
    }

    /// Replaces RFLAGS.
    #[inline]
    pub fn set_rflags(&mut self, value: u64) {
        self.flags.set(value);
    }

    /// Reads a general-purpose register of any width (AL, AH, AX, EAX, RAX, R8B...).
    #[inline]
    pub fn reg(&self, reg: Register) -> u64 {
        let slot = gpr_slot(reg);
        (self.gpr[slot.index] >> slot.shift) & slot.mask
    }

    /// Writes a general-purpose register with x86 rules: 32-bit writes zero the upper half,
    /// 8- and 16-bit writes merge.
    #[inline]
    pub fn set_reg(&mut self, reg: Register, value: u64) {
        let slot = gpr_slot(reg);
        let cell = &mut self.gpr[slot.index];
        if slot.mask == 0xffff_ffff {
            *cell = value & 0xffff_ffff;
        } else {
            *cell = (*cell & !(slot.mask << slot.shift)) | ((value & slot.mask) << slot.shift);
        }
    }

    /// Segment register `seg`.
    #[inline]
    pub fn segment(&self, seg: SegReg) -> &Segment {
        &self.seg[seg as usize]
    }

    /// The register index of an XMM register.
    #[inline]
    pub fn xmm_index(reg: Register) -> usize {
        reg as usize - Register::XMM0 as usize
    }
}

/// Where a GPR name lives: which 64-bit register, at what shift, with what mask.
#[derive(Clone, Copy)]
struct GprSlot {
    index: usize,
    shift: u32,
    mask: u64,
}

/// Maps an iced GPR name to its slot. Panics only on a non-GPR, which the decoder never
/// hands to a GPR operand.
#[inline]
fn gpr_slot(reg: Register) -> GprSlot {
    let r = reg as usize;
    let al = Register::AL as usize;
    let ax = Register::AX as usize;
    let eax = Register::EAX as usize;
    let rax = Register::RAX as usize;
    if (rax..rax + 16).contains(&r) {
        GprSlot {
            index: r - rax,
            shift: 0,
            mask: u64::MAX,
        }
    } else if (eax..eax + 16).contains(&r) {
        GprSlot {
            index: r - eax,
            shift: 0,
            mask: 0xffff_ffff,
        }
    } else if (ax..ax + 16).contains(&r) {
        GprSlot {
            index: r - ax,
            shift: 0,
            mask: 0xffff,
        }
    } else if (al..al + 4).contains(&r) {
        GprSlot {
            index: r - al,
            shift: 0,
            mask: 0xff,
        }
    } else if (al + 4..al + 8).contains(&r) {
        // AH, CH, DH, BH: bits 8-15 of RAX..RBX.
        GprSlot {
            index: r - al - 4,
            shift: 8,
            mask: 0xff,
        }
    } else if (al + 8..al + 20).contains(&r) {
        // SPL..DIL, R8L..R15L.
        GprSlot {
            index: r - al - 4,
            shift: 0,
            mask: 0xff,
        }
    } else {
        panic!("{reg:?} is not a general-purpose register")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_rate_scales_time_and_the_tsc() {
        let mut cpu = CpuState::new_long_mode();
        cpu.icount = 5000;
        assert_eq!((cpu.instruction_ns(), cpu.tsc()), (5000, 5000));
        cpu.insns_per_us = 250; // four virtual nanoseconds per instruction
        cpu.tsc_offset = 7;
        assert_eq!((cpu.instruction_ns(), cpu.tsc()), (20_000, 20_007));
        assert_eq!(ns_to_icount(20_000, 250), 5000);
        assert_eq!(
            ns_to_icount(20_001, 250),
            5001,
            "rounded up to reach the time"
        );
    }

    #[test]
    fn partial_register_writes() {
        let mut cpu = CpuState::new_long_mode();
        cpu.gpr[0] = 0x1122_3344_5566_7788;
        cpu.set_reg(Register::AH, 0xab);
        assert_eq!(cpu.gpr[0], 0x1122_3344_5566_ab88);
        cpu.set_reg(Register::AX, 0xcdef);
        assert_eq!(cpu.gpr[0], 0x1122_3344_5566_cdef);
        cpu.set_reg(Register::EAX, 0xffff_ffff);
        assert_eq!(cpu.gpr[0], 0xffff_ffff);
        cpu.set_reg(Register::SPL, 0x12);
        assert_eq!(cpu.reg(Register::SPL), 0x12);
        assert_eq!(cpu.gpr[4], 0x12);
        cpu.set_reg(Register::R15L, 0x34);
        assert_eq!(cpu.gpr[15], 0x34);
        assert_eq!(cpu.reg(Register::BH), 0);
    }
}
