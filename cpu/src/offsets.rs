//! The one place that says where generated code finds each [`CpuState`] field.
//!
//! The JIT must use these constants and nothing else; they follow the `#[repr(C)]` layout
//! automatically, so a field reorder cannot silently break generated code.

use crate::flags::LazyFlags;
use crate::state::{CpuState, MsrState, Segment, X87State};
use core::mem::offset_of;

/// Offset of GPR `n` (encoding order).
pub const fn gpr(n: usize) -> usize {
    offset_of!(CpuState, gpr) + 8 * n
}
/// Offset of RIP.
pub const RIP: usize = offset_of!(CpuState, rip);
/// Offset of the materialized flag bits.
pub const FLAGS_BITS: usize = offset_of!(CpuState, flags) + offset_of!(LazyFlags, bits);
/// Offset of the lazy-flags result.
pub const FLAGS_RES: usize = offset_of!(CpuState, flags) + offset_of!(LazyFlags, res);
/// Offset of the lazy-flags first operand.
pub const FLAGS_SRC1: usize = offset_of!(CpuState, flags) + offset_of!(LazyFlags, src1);
/// Offset of the lazy-flags second operand.
pub const FLAGS_SRC2: usize = offset_of!(CpuState, flags) + offset_of!(LazyFlags, src2);
/// Offset of the lazy-flags carry in.
pub const FLAGS_CARRY_IN: usize = offset_of!(CpuState, flags) + offset_of!(LazyFlags, carry_in);
/// Offset of the lazy-flags operation kind (u32).
pub const FLAGS_OP: usize = offset_of!(CpuState, flags) + offset_of!(LazyFlags, op);
/// Offset of the lazy-flags operand size (u32).
pub const FLAGS_SIZE: usize = offset_of!(CpuState, flags) + offset_of!(LazyFlags, size);
/// Offset of XMM register `n` (u128, 16-byte aligned).
pub const fn xmm(n: usize) -> usize {
    offset_of!(CpuState, xmm) + 16 * n
}
/// Offset of MXCSR.
pub const MXCSR: usize = offset_of!(CpuState, mxcsr);
/// Offset of the base of segment register `n` ([`crate::SegReg`] order).
pub const fn seg_base(n: usize) -> usize {
    offset_of!(CpuState, seg) + n * core::mem::size_of::<Segment>() + offset_of!(Segment, base)
}
/// Offset of the x87 state.
pub const X87: usize = offset_of!(CpuState, x87);
/// Offset of the x87 TOP field (u8).
pub const X87_TOP: usize = X87 + offset_of!(X87State, top);
/// Offset of CR0.
pub const CR0: usize = offset_of!(CpuState, cr0);
/// Offset of CR4.
pub const CR4: usize = offset_of!(CpuState, cr4);
/// Offset of the TSC offset.
pub const TSC_OFFSET: usize = offset_of!(CpuState, tsc_offset);
/// Offset of the instruction-clock rate.
pub const INSNS_PER_US: usize = offset_of!(CpuState, insns_per_us);
/// Offset of IA32_TSC_AUX.
pub const TSC_AUX: usize = offset_of!(CpuState, msr) + offset_of!(MsrState, tsc_aux);
/// Offset of the retired-instruction counter.
pub const ICOUNT: usize = offset_of!(CpuState, icount);
/// Offset of word `n` of the engine's words ([`CpuState::engine`]).
pub const fn engine_word(n: usize) -> usize {
    assert!(n < crate::state::ENGINE_WORDS);
    offset_of!(CpuState, engine) + 8 * n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmm_registers_are_16_byte_aligned() {
        assert_eq!(xmm(0) % 16, 0);
        assert_eq!(core::mem::align_of::<CpuState>() % 16, 0);
        assert_eq!(gpr(15), gpr(0) + 120);
    }
}
