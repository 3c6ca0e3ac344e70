//! RDTSC and RDTSCP translated inline. The TSC is the instruction clock plus the TSC
//! offset (see `CpuState::tsc`): at this instruction the clock is the block's starting
//! count plus the instructions retired before it, so the value is the interpreter's exactly.
//! Delay loops and timekeeping read it millions of times in a boot.
//!
//! Cases the inline form does not cover go to the interpreter: CR4.TSD set (the interpreter
//! decides by CPL) or a clock rate other than one instruction per nanosecond.

use super::{state_flags, Translator};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder};
use softvisor_cpu::offsets;
use softvisor_cpu::state::DEFAULT_INSNS_PER_US;

/// CR4.TSD.
const CR4_TSD: i64 = 1 << 2;

impl Translator<'_, '_> {
    /// RDTSC, or RDTSCP (`with_aux`: ECX also gets IA32_TSC_AUX).
    pub(super) fn read_tsc(&mut self, with_aux: bool) -> Option<()> {
        let f = state_flags();
        let load =
            |t: &mut Self, offset: usize| t.b.ins().load(types::I64, f, t.cpu, offset as i32);
        let cr4 = load(self, offsets::CR4);
        let restricted = self.b.ins().band_imm_s(cr4, CR4_TSD);
        self.redo_if(restricted);
        let rate = load(self, offsets::INSNS_PER_US);
        let scaled = self
            .b
            .ins()
            .icmp_imm_s(IntCC::NotEqual, rate, DEFAULT_INSNS_PER_US as i64);
        self.redo_if(scaled);
        let offset = load(self, offsets::TSC_OFFSET);
        let clock = self.count_after(self.index);
        let tsc = self.b.ins().iadd(clock, offset);
        let aux = with_aux.then(|| load(self, offsets::TSC_AUX));
        let low = self.mask(tsc, 4);
        let high = self.b.ins().ushr_imm_s(tsc, 32);
        self.set_gpr(0, low);
        self.set_gpr(2, high);
        if let Some(aux) = aux {
            let ecx = self.mask(aux, 4);
            self.set_gpr(1, ecx);
        }
        Some(())
    }
}
