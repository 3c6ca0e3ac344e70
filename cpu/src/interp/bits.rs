//! Bit instructions: BT/BTS/BTR/BTC, BSF/BSR, TZCNT/LZCNT/POPCNT, BMI1 (ANDN, BEXTR, BLSI,
//! BLSMSK, BLSR), BMI2 (BZHI, PDEP, PEXT), ADCX/ADOX and CRC32.

use super::data::sign_extend;
use super::operand::{Ctx, Exec};
use crate::flags::{size_mask, zsp, ARITH, CF, OF, PF, SF, ZF};
use iced_x86::{Mnemonic, OpKind};

/// BT, BTS, BTR, BTC. With a register bit offset and a memory operand the offset is
/// signed and can select any bit in memory relative to the operand's address.
pub(super) fn bit_test(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let bits = u64::from(size * 8);
    let offset_is_reg = ctx.insn.op_kind(1) == OpKind::Register;
    let raw = if offset_is_reg {
        ctx.cpu.reg(ctx.insn.op_register(1))
    } else {
        ctx.insn.immediate(1)
    };
    let (value, index, addr) = if ctx.insn.op_kind(0) == OpKind::Memory && offset_is_reg {
        let signed = sign_extend(raw, size) as i64;
        let unit = signed.div_euclid(bits as i64);
        let base = ctx
            .mem_offset()
            .wrapping_add((unit * i64::from(size)) as u64)
            & size_mask(ctx.address_size());
        let addr = ctx.linear(ctx.insn.memory_segment(), base)?;
        (
            ctx.read_mem(addr, size as usize)?,
            signed.rem_euclid(bits as i64) as u64,
            Some(addr),
        )
    } else {
        (ctx.read(0)?, raw % bits, None)
    };
    let bit = (value >> index) & 1;
    let new = match m {
        Mnemonic::Bts => value | (1 << index),
        Mnemonic::Btr => value & !(1 << index),
        Mnemonic::Btc => value ^ (1 << index),
        _ => value,
    };
    if m != Mnemonic::Bt {
        match addr {
            Some(addr) => ctx.write_mem(addr, size as usize, new)?,
            None => ctx.write(0, new)?,
        }
    }
    ctx.cpu.flags.update(CF, bit);
    Ok(())
}

/// BSF, BSR: ZF=1 and the destination unchanged for a zero source.
pub(super) fn bit_scan(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let src = ctx.read(1)?;
    if src == 0 {
        ctx.cpu.flags.update(ARITH, ZF | PF);
        return Ok(());
    }
    let index = if m == Mnemonic::Bsf {
        src.trailing_zeros()
    } else {
        63 - src.leading_zeros()
    };
    ctx.write(0, u64::from(index))?;
    ctx.cpu
        .flags
        .update(ARITH, zsp(u64::from(index), size) & !ZF);
    Ok(())
}

/// TZCNT, LZCNT, POPCNT.
pub(super) fn count_bits(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let bits = size * 8;
    let src = ctx.read(1)?;
    let res = match m {
        Mnemonic::Tzcnt => src.trailing_zeros().min(bits),
        Mnemonic::Lzcnt => src.leading_zeros() - (64 - bits),
        _ => src.count_ones(),
    };
    ctx.write(0, u64::from(res))?;
    let flags = match m {
        Mnemonic::Popcnt => {
            if src == 0 {
                ZF
            } else {
                0
            }
        }
        _ => {
            let cf = if res == bits { CF } else { 0 };
            cf | if res == 0 { ZF } else { 0 }
        }
    };
    let keep_undefined = ctx.cpu.rflags()
        & if m == Mnemonic::Popcnt {
            0
        } else {
            ARITH & !(CF | ZF)
        };
    ctx.cpu.flags.update(ARITH, flags | keep_undefined);
    Ok(())
}

/// Flags of the BMI1/BMI2 logic instructions: ZF/SF from the result, OF=0, CF given.
fn bmi_flags(ctx: &mut Ctx, res: u64, size: u32, cf: bool) {
    let zs = zsp(res, size) & (ZF | SF);
    let keep = ctx.cpu.rflags() & (crate::flags::AF | PF);
    ctx.cpu.flags.update(ARITH, zs | u64::from(cf) | keep);
}

/// ANDN, BEXTR, BLSI, BLSMSK, BLSR, BZHI.
pub(super) fn bmi(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let bits = u64::from(size * 8);
    let mask = size_mask(size);
    let (res, cf) = match m {
        Mnemonic::Andn => (!ctx.read(1)? & ctx.read(2)? & mask, false),
        Mnemonic::Bextr => {
            let src = ctx.read(1)?;
            let control = ctx.read(2)?;
            let start = control & 0xff;
            let len = (control >> 8) & 0xff;
            let shifted = if start < bits { src >> start } else { 0 };
            let res = if len < 64 {
                shifted & ((1u64 << len) - 1)
            } else {
                shifted
            };
            (res & mask, false)
        }
        Mnemonic::Blsi => {
            let src = ctx.read(1)?;
            (src.wrapping_neg() & src & mask, src != 0)
        }
        Mnemonic::Blsmsk => {
            let src = ctx.read(1)?;
            ((src.wrapping_sub(1) ^ src) & mask, src == 0)
        }
        Mnemonic::Blsr => {
            let src = ctx.read(1)?;
            (src.wrapping_sub(1) & src & mask, src == 0)
        }
        _ => {
            // BZHI
            let src = ctx.read(1)?;
            let n = ctx.read(2)? & 0xff;
            let res = if n < bits {
                src & ((1u64 << n) - 1)
            } else {
                src
            };
            (res & mask, n > bits - 1)
        }
    };
    ctx.write(0, res)?;
    bmi_flags(ctx, res, size, cf);
    Ok(())
}

/// PDEP and PEXT (BMI2).
pub(super) fn deposit_extract(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let src = ctx.read(1)?;
    let mut selector = ctx.read(2)?;
    let mut res = 0u64;
    let mut k = 0;
    while selector != 0 {
        let low = selector.trailing_zeros();
        if m == Mnemonic::Pdep {
            res |= ((src >> k) & 1) << low;
        } else {
            res |= ((src >> low) & 1) << k;
        }
        k += 1;
        selector &= selector - 1;
    }
    ctx.write(0, res & size_mask(size))
}

/// ADCX (carry in and out through CF) and ADOX (through OF).
pub(super) fn adcx_adox(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let flag = if m == Mnemonic::Adcx { CF } else { OF };
    let carry = u128::from(ctx.cpu.flags.test(flag));
    let a = ctx.read(0)?;
    let b = ctx.read(1)?;
    let sum = u128::from(a) + u128::from(b) + carry;
    let res = sum as u64 & size_mask(size);
    ctx.write(0, res)?;
    let out = (sum >> (size * 8)) & 1 != 0;
    ctx.cpu.flags.update(flag, if out { flag } else { 0 });
    Ok(())
}

/// CRC32 (SSE4.2): CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) over the source
/// bytes, accumulated in the low 32 bits of the destination.
pub(super) fn crc32(ctx: &mut Ctx) -> Exec {
    let src_size = ctx.op_size(1);
    let mut crc = ctx.read(0)? as u32;
    let src = ctx.read(1)?;
    for i in 0..src_size {
        crc ^= ((src >> (8 * i)) & 0xff) as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    ctx.write(0, u64::from(crc))
}
