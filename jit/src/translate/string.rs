//! REP MOVS and REP STOS with 64-bit addressing and DF clear, inline for runs that lie
//! inside one RAM page each way: one TLB probe of the whole run per operand, then one
//! host copy or fill (`helpers::copy_guest`, `helpers::fill_guest`), RSI, RDI and RCX
//! set as the interpreter's bulk path sets them. glibc's `memcpy` in busybox's md5sum
//! copies each 64-byte message block with `rep movsb`, and the kernel copies to and from
//! user space with it; each had gone through the interpreter's dispatch, its segment and
//! RAM checks and four page translations.
//!
//! Everything else runs through the interpreter helper as before, in the same function:
//! DF set, a count of zero or of more than a page's worth of elements, a run that crosses
//! a page or misses the TLB (MMIO and tracked code pages are never tagged writable), a
//! copy onto its own source from above (element order repeats the source's start there),
//! an FS or GS source, or 32-bit addressing. Either way the instruction retires whole
//! (a run within a page is below the interpreter's batch) and the state is in memory
//! afterwards, as after any interpreted instruction.

use super::memory::{Access, Extent};
use super::{state_flags, Flow, Translator};
use crate::helpers;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder};
use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use softvisor_cpu::flags::DF;
use softvisor_cpu::offsets;
use softvisor_mmu::PAGE_SIZE;

/// A REP MOVS (`copies`) or REP STOS of `size`-byte elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RepString {
    copies: bool,
    size: u32,
}

/// The REP MOVS or REP STOS `insn` is, when it uses 64-bit addressing and a source
/// segment without a base.
fn repeated_string(insn: &Instruction) -> Option<RepString> {
    if !insn.has_rep_prefix() || insn.op0_kind() != OpKind::MemoryESRDI {
        return None;
    }
    let (copies, size) = match insn.mnemonic() {
        Mnemonic::Movsb => (true, 1),
        Mnemonic::Movsw => (true, 2),
        Mnemonic::Movsd => (true, 4),
        Mnemonic::Movsq => (true, 8),
        Mnemonic::Stosb => (false, 1),
        Mnemonic::Stosw => (false, 2),
        Mnemonic::Stosd => (false, 4),
        Mnemonic::Stosq => (false, 8),
        _ => return None,
    };
    if copies
        && (insn.op1_kind() != OpKind::MemorySegRSI
            || matches!(insn.memory_segment(), Register::FS | Register::GS))
    {
        return None;
    }
    Some(RepString { copies, size })
}

impl Translator<'_, '_> {
    /// Translates `insn` if it is a REP MOVS or REP STOS this file handles (see the top);
    /// `insn` must be the block's own decoded instruction, which the fallback passes to
    /// the interpreter.
    pub(super) fn emit_repeated_string(&mut self, insn: &Instruction) -> Option<Flow> {
        let tlb = self.tlb?;
        let op = repeated_string(insn)?;
        self.flush();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        let done = self.b.create_block();
        let shift = i64::from(op.size.trailing_zeros());
        let count = self.gpr(1);
        let bits = self.b.ins().load(
            types::I64,
            state_flags(),
            self.cpu,
            offsets::FLAGS_BITS as i32,
        );
        let backwards = self.b.ins().band_imm_s(bits, DF as i64);
        self.unless(backwards, slow);
        // 1 to a page's worth of elements (0 wraps to the largest).
        let less_one = self.b.ins().iadd_imm_s(count, -1);
        let too_many = self.b.ins().icmp_imm_s(
            IntCC::UnsignedGreaterThanOrEqual,
            less_one,
            (PAGE_SIZE >> shift) as i64,
        );
        self.unless(too_many, slow);
        let bytes = if shift == 0 {
            count
        } else {
            self.b.ins().ishl_imm_s(count, shift)
        };
        let dst = self.gpr(7);
        let src = op.copies.then(|| self.gpr(6));
        let src_host = src.map(|src| {
            // src < dst < src + bytes, as 0 < dst - src < bytes.
            let gap = self.b.ins().isub(dst, src);
            let gap_less_one = self.b.ins().iadd_imm_s(gap, -1);
            let bytes_less_one = self.b.ins().iadd_imm_s(bytes, -1);
            let repeats = self
                .b
                .ins()
                .icmp(IntCC::UnsignedLessThan, gap_less_one, bytes_less_one);
            self.unless(repeats, slow);
            self.tlb_hit(tlb, src, Extent::Run(bytes), Access::Read, slow)
        });
        let dst_host = self.tlb_hit(tlb, dst, Extent::Run(bytes), Access::Write, slow);
        let ctx = self.ctx();
        match src_host {
            Some(src_host) => {
                let f = helpers::copy_guest as *const ();
                let args = [self.cpu, ctx, dst_host, src_host, bytes];
                self.call_helper(self.sigs.copy, f, &args);
            }
            None => {
                let value = self.gpr(0);
                let size = self.constant(u64::from(op.size));
                let f = helpers::fill_guest as *const ();
                let args = [self.cpu, ctx, dst_host, value, size, bytes];
                self.call_helper(self.sigs.fill, f, &args);
            }
        }
        if let Some(src) = src {
            let after = self.b.ins().iadd(src, bytes);
            self.set_gpr(6, after);
        }
        let after = self.b.ins().iadd(dst, bytes);
        self.set_gpr(7, after);
        let zero = self.constant(0);
        self.set_gpr(1, zero);
        self.store_dirty();
        self.store_rip(insn.next_ip());
        self.store_retired(self.index + 1);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(slow);
        let flow = self.emit_interpreted(insn, false);
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        Some(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    fn decode(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(64, bytes, 0x1000, DecoderOptions::NONE).decode()
    }

    #[test]
    fn only_64_bit_rep_movs_and_stos_without_a_based_source_are_inline() {
        let inline = |bytes: &[u8]| repeated_string(&decode(bytes));
        let movs = |size| Some(RepString { copies: true, size });
        let stos = |size| {
            Some(RepString {
                copies: false,
                size,
            })
        };
        assert_eq!(inline(&[0xf3, 0xa4]), movs(1)); // rep movsb
        assert_eq!(inline(&[0xf3, 0x66, 0xa5]), movs(2)); // rep movsw
        assert_eq!(inline(&[0xf3, 0xa5]), movs(4)); // rep movsd
        assert_eq!(inline(&[0xf3, 0x48, 0xa5]), movs(8)); // rep movsq
        assert_eq!(inline(&[0xf3, 0xaa]), stos(1)); // rep stosb
        assert_eq!(inline(&[0xf3, 0x48, 0xab]), stos(8)); // rep stosq
        assert_eq!(inline(&[0xf3, 0x2e, 0xa4]), movs(1)); // rep movsb, CS source
        assert_eq!(inline(&[0xa4]), None); // movsb
        assert_eq!(inline(&[0xf2, 0xa4]), None); // repne movsb
        assert_eq!(inline(&[0xf3, 0x67, 0xa4]), None); // rep movsb, 32-bit addressing
        assert_eq!(inline(&[0xf3, 0x64, 0xa4]), None); // rep movsb, FS source
        assert_eq!(inline(&[0xf3, 0x65, 0xa4]), None); // rep movsb, GS source
        assert_eq!(inline(&[0xf3, 0xa6]), None); // rep cmpsb
        assert_eq!(inline(&[0xf3, 0xac]), None); // rep lodsb
        assert_eq!(inline(&[0xf2, 0x0f, 0x10, 0xc1]), None); // movsd xmm0, xmm1
    }
}
