//! Shifts and rotates: SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR, SHLD, SHRD, and BMI2's
//! SARX/SHLX/SHRX/RORX. A masked count of zero changes no flags.

use super::data::sign_extend;
use super::operand::{Ctx, Exec};
use crate::flags::{size_mask, zsp, AF, ARITH, CF, OF};
use iced_x86::{Mnemonic, OpKind};

/// The count operand (CL, an immediate, or the implicit 1), masked to 5 or 6 bits.
fn count(ctx: &mut Ctx, op: u32, size: u32) -> Exec<u32> {
    let raw = match ctx.insn.op_kind(op) {
        OpKind::Register => ctx.cpu.reg(ctx.insn.op_register(op)),
        _ => ctx.insn.immediate(op),
    };
    Ok((raw & if size == 8 { 63 } else { 31 }) as u32)
}

fn bit(value: u64, n: u32) -> u64 {
    (value >> n) & 1
}

/// SHL, SHR, SAR, ROL, ROR, RCL, RCR.
pub(super) fn shift(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let a = ctx.read(0)?;
    let n = if ctx.insn.op_count() == 1 {
        1
    } else {
        count(ctx, 1, size)?
    };
    if n == 0 {
        // Hardware still writes a 32-bit register, zeroing its upper half.
        return ctx.write(0, a);
    }
    let cf_in = if matches!(m, Mnemonic::Rcl | Mnemonic::Rcr) {
        ctx.cpu.rflags() & CF
    } else {
        0
    };
    let (res, new_flags, changed) = shifted(m, a, n, size, cf_in);
    ctx.write(0, res)?;
    ctx.cpu.flags.update(changed, new_flags);
    Ok(())
}

/// SHL/SAL, SHR, SAR, ROL, ROR, RCL or RCR (`m`) of the `size`-byte value `a` by the
/// masked, non-zero count `n` with carry `cf_in` (read by RCL and RCR only): the result,
/// the new flag bits, and which flags they replace. The interpreter and the pre-decoded
/// forms (`fast.rs`) share it.
pub(crate) fn shifted(m: Mnemonic, a: u64, n: u32, size: u32, cf_in: u64) -> (u64, u64, u64) {
    let bits = size * 8;
    let mask = size_mask(size);
    let msb = |v: u64| bit(v, bits - 1);
    match m {
        Mnemonic::Shl | Mnemonic::Sal => {
            let res = if n < 64 { (a << n) & mask } else { 0 };
            let cf = if n <= bits { bit(a, bits - n) } else { 0 };
            let of = msb(res) ^ cf;
            (res, cf | (of << 11) | zsp(res, size) | AF, ARITH)
        }
        Mnemonic::Shr => {
            let res = if n < 64 { a >> n } else { 0 };
            let cf = if n <= bits { bit(a, n - 1) } else { 0 };
            let of = msb(a);
            (res, cf | (of << 11) | zsp(res, size) | AF, ARITH)
        }
        Mnemonic::Sar => {
            let signed = sign_extend(a, size) as i64;
            let res = (signed >> n.min(63)) as u64 & mask;
            let cf = ((signed >> (n - 1).min(63)) & 1) as u64;
            (res, cf | zsp(res, size) | AF, ARITH)
        }
        Mnemonic::Rol => {
            let r = n % bits;
            let res = if r == 0 {
                a
            } else {
                ((a << r) | (a >> (bits - r))) & mask
            };
            let cf = res & 1;
            let of = msb(res) ^ cf;
            (res, cf | (of << 11), CF | OF)
        }
        Mnemonic::Ror => {
            let r = n % bits;
            let res = if r == 0 {
                a
            } else {
                ((a >> r) | (a << (bits - r))) & mask
            };
            let cf = msb(res);
            let of = msb(res) ^ bit(res, bits - 2);
            (res, cf | (of << 11), CF | OF)
        }
        _ => {
            // RCL and RCR rotate the (bits + 1)-bit value CF:dst; RCR by r is RCL by width - r.
            let width = bits + 1;
            let r = n % width;
            let left = if m == Mnemonic::Rcl {
                r
            } else {
                (width - r) % width
            };
            let wide = (u128::from(cf_in) << bits) | u128::from(a);
            let rot = if left == 0 {
                wide
            } else {
                ((wide << left) | (wide >> (width - left))) & ((1u128 << width) - 1)
            };
            let res = rot as u64 & mask;
            let cf = (rot >> bits) as u64 & 1;
            let of = if m == Mnemonic::Rcl {
                msb(res) ^ cf
            } else {
                msb(res) ^ bit(res, bits - 2)
            };
            (res, cf | (of << 11), CF | OF)
        }
    }
}

/// SHLD/SHRD: shift the destination, filling from the source register.
pub(super) fn double_shift(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let bits = size * 8;
    let mask = size_mask(size);
    let dst = ctx.read(0)?;
    let src = ctx.read(1)?;
    let n = count(ctx, 2, size)?;
    if n == 0 {
        return ctx.write(0, dst);
    }
    // Concatenate into one wide pattern. 16-bit forms can shift by up to 31, and then
    // bits keep coming from the destination again (dst:src:dst), as on hardware.
    let (pattern, width) = match (m == Mnemonic::Shld, bits) {
        (true, 16) => (
            (u128::from(dst) << 32) | (u128::from(src) << 16) | u128::from(dst),
            48,
        ),
        (true, _) => ((u128::from(dst) << bits) | u128::from(src), 2 * bits),
        (false, 16) => (
            (u128::from(dst) << 32) | (u128::from(src) << 16) | u128::from(dst),
            48,
        ),
        (false, _) => ((u128::from(src) << bits) | u128::from(dst), 2 * bits),
    };
    let (res, cf) = if m == Mnemonic::Shld {
        (
            (pattern >> (width - bits - n)) as u64 & mask,
            ((pattern >> (width - n)) & 1) as u64,
        )
    } else {
        (
            (pattern >> n) as u64 & mask,
            ((pattern >> (n - 1)) & 1) as u64,
        )
    };
    let of = bit(res ^ dst, bits - 1);
    ctx.write(0, res)?;
    ctx.cpu
        .flags
        .update(ARITH, cf | (of << 11) | zsp(res, size) | AF);
    Ok(())
}

/// SARX, SHLX, SHRX (BMI2): count from a register, flags untouched.
pub(super) fn shift_x(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let size = ctx.op_size(0);
    let src = ctx.read(1)?;
    let n = (ctx.read(2)? & if size == 8 { 63 } else { 31 }) as u32;
    let res = match m {
        Mnemonic::Shlx => src << n,
        Mnemonic::Shrx => src >> n,
        _ => (sign_extend(src, size) as i64 >> n) as u64,
    };
    ctx.write(0, res & size_mask(size))
}

/// RORX (BMI2): rotate right by an immediate, flags untouched.
pub(super) fn rorx(ctx: &mut Ctx) -> Exec {
    let size = ctx.op_size(0);
    let bits = size * 8;
    let src = ctx.read(1)?;
    let n = (ctx.insn.immediate(2) as u32) % bits;
    let res = if n == 0 {
        src
    } else {
        (src >> n) | (src << (bits - n))
    };
    ctx.write(0, res & size_mask(size))
}
