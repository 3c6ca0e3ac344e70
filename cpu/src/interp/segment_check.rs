//! Segment inspection: LAR, LSL, VERR and VERW. They look a selector's descriptor up and
//! report through ZF whether the current privilege may use it, instead of faulting. Linux
//! runs VERW on every return to user space (the MDS buffer-clearing idiom). LAR returns
//! descriptor bits 8-23 of the high word, limit bits 19:16 included, as the host CPU does.

use super::operand::{Ctx, Exec};
use crate::flags::ZF;
use crate::state::CR0_PE;
use crate::system::descriptor::{descriptor_addr, is_null, read_upper, Descriptor};
use crate::Exception;
use iced_x86::Mnemonic;

/// The descriptor a selector names, or `None` when the selector is null or past its table.
fn lookup(ctx: &mut Ctx, selector: u16, system_extra: bool) -> Exec<Option<Descriptor>> {
    if is_null(selector) {
        return Ok(None);
    }
    let Ok(addr) = descriptor_addr(ctx.cpu, selector, 0) else {
        return Ok(None);
    };
    let mut bytes = [0u8; 8];
    ctx.mem.read_supervisor(addr, &mut bytes)?;
    let desc = Descriptor(u64::from_le_bytes(bytes));
    if system_extra && !desc.is_code_or_data() && ctx.cpu.in_long_mode() {
        // A 16-byte system descriptor: its upper half must fit and hold type 0.
        if descriptor_addr(ctx.cpu, selector, 8).is_err() {
            return Ok(None);
        }
        if (read_upper(ctx.mem, addr)? >> 40) & 0x1f != 0 {
            return Ok(None);
        }
    }
    Ok(Some(desc))
}

/// Whether CPL and RPL may see a descriptor: conforming code is visible from any ring.
fn privileged_enough(ctx: &Ctx, desc: Descriptor, selector: u16) -> bool {
    let rpl = (selector & 3) as u8;
    desc.is_conforming() || (desc.dpl() >= ctx.cpu.cpl() && desc.dpl() >= rpl)
}

/// System descriptor types LAR (and, without gates, LSL) accept.
fn system_type_ok(ctx: &Ctx, kind: u8, for_limit: bool) -> bool {
    let types: &[u8] = match (ctx.cpu.in_long_mode(), for_limit) {
        (true, false) => &[0x2, 0x9, 0xb, 0xc],
        (true, true) => &[0x2, 0x9, 0xb],
        (false, false) => &[0x1, 0x2, 0x3, 0x4, 0x5, 0x9, 0xb, 0xc],
        (false, true) => &[0x1, 0x2, 0x3, 0x9, 0xb],
    };
    types.contains(&kind)
}

fn set_zf(ctx: &mut Ctx, valid: bool) {
    ctx.cpu.flags.update(ZF, if valid { ZF } else { 0 });
}

/// Executes LAR, LSL, VERR or VERW.
pub(super) fn execute(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    if ctx.cpu.cr0 & CR0_PE == 0 || ctx.cpu.flags.test(crate::flags::VM) {
        return Err(Exception::InvalidOpcode);
    }
    let source = if matches!(m, Mnemonic::Verr | Mnemonic::Verw) {
        0
    } else {
        1
    };
    let selector = ctx.read(source)? as u16;
    let lar_or_lsl = matches!(m, Mnemonic::Lar | Mnemonic::Lsl);
    let Some(desc) = lookup(ctx, selector, lar_or_lsl)? else {
        set_zf(ctx, false);
        return Ok(());
    };
    let valid = privileged_enough(ctx, desc, selector)
        && match m {
            Mnemonic::Verr => desc.is_readable(),
            Mnemonic::Verw => desc.is_writable_data(),
            _ => desc.is_code_or_data() || system_type_ok(ctx, desc.kind(), m == Mnemonic::Lsl),
        };
    if valid && lar_or_lsl {
        let value = if m == Mnemonic::Lar {
            (desc.0 >> 32) & 0x00ff_ff00
        } else {
            u64::from(desc.limit())
        };
        ctx.write(0, value)?;
    }
    set_zf(ctx, valid);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::flags::ZF;
    use crate::interp::tests::machine;
    use crate::{SegReg, Segment, TableReg};
    use softvisor_mmu::FlatMemory;

    const GDT: u64 = 0x3000;

    /// A 32-bit ring-0 CPU running `code`, with `gdt` at 0x3000.
    fn protected_machine(gdt: &[u64], code: &[u8]) -> (crate::CpuState, FlatMemory) {
        let (mut cpu, mut mem) = machine(code);
        for (i, desc) in gdt.iter().enumerate() {
            mem.ram
                .write_bytes(GDT + 8 * i as u64, &desc.to_le_bytes())
                .unwrap();
        }
        cpu.gdtr = TableReg {
            base: GDT,
            limit: (8 * gdt.len() - 1) as u16,
        };
        cpu.efer = 0;
        cpu.cr0 = crate::state::CR0_PE;
        cpu.seg[SegReg::Cs as usize] = Segment::flat(0x08, 0x9b | Segment::ATTR_DB);
        cpu.seg[SegReg::Ss as usize] = Segment::flat(0x10, 0x93 | Segment::ATTR_DB);
        (cpu, mem)
    }

    /// GDT: 0x08 ring-0 code (readable), 0x10 ring-0 data (writable), 0x18 ring-3 read-only
    /// data, 0x20 a 32-bit available TSS (limit 0x67).
    fn gdt() -> Vec<u64> {
        vec![
            0,
            0x00cf_9a00_0000_ffff,
            0x00cf_9200_0000_ffff,
            0x0040_f000_0000_1234,
            0x0000_8900_0000_0067,
        ]
    }

    fn zf_after(code: &[u8], bx: u64) -> (bool, u64) {
        let (mut cpu, mut mem) = protected_machine(&gdt(), code);
        cpu.gpr[3] = bx;
        cpu.gpr[0] = 0xdead;
        crate::step(&mut cpu, &mut mem).unwrap();
        (cpu.flags.get() & ZF != 0, cpu.gpr[0])
    }

    #[test]
    fn verr_and_verw_check_type_and_privilege() {
        // verr bx = 0f 00 e3 ; verw bx = 0f 00 eb
        assert!(zf_after(&[0x0f, 0x00, 0xe3], 0x08).0, "code is readable");
        assert!(
            !zf_after(&[0x0f, 0x00, 0xeb], 0x08).0,
            "code is not writable"
        );
        assert!(zf_after(&[0x0f, 0x00, 0xeb], 0x10).0, "data is writable");
        assert!(!zf_after(&[0x0f, 0x00, 0xeb], 0x18).0, "read-only data");
        assert!(
            !zf_after(&[0x0f, 0x00, 0xe3], 0x20).0,
            "a TSS is not a segment"
        );
        assert!(!zf_after(&[0x0f, 0x00, 0xe3], 0x00).0, "null selector");
        assert!(!zf_after(&[0x0f, 0x00, 0xe3], 0x98).0, "past the GDT limit");
    }

    #[test]
    fn lar_and_lsl_return_rights_and_limits() {
        // lar eax, ebx = 0f 02 c3 ; lsl eax, ebx = 0f 03 c3
        assert_eq!(zf_after(&[0x0f, 0x02, 0xc3], 0x10), (true, 0x00cf_9200));
        assert_eq!(zf_after(&[0x0f, 0x03, 0xc3], 0x10), (true, 0xffff_ffff));
        assert_eq!(zf_after(&[0x0f, 0x03, 0xc3], 0x18), (true, 0x1234));
        assert_eq!(zf_after(&[0x0f, 0x03, 0xc3], 0x20), (true, 0x67));
        assert_eq!(zf_after(&[0x0f, 0x02, 0xc3], 0x00), (false, 0xdead));
    }
}
