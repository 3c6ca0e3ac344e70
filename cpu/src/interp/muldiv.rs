//! Multiply and divide: MUL, IMUL (one, two and three operands), DIV, IDIV (#DE on a zero
//! divisor or a quotient that does not fit), and BMI2's MULX.

use super::data::{set_sized, sign_extend};
use super::operand::{Ctx, Exec};
use crate::flags::{size_mask, zsp, ARITH, CF, OF};
use crate::Exception;

/// Sets CF=OF=`overflow`; SF/ZF/PF follow the low result as they do on current CPUs
/// (the ISA leaves them, and AF, undefined).
fn mul_flags(ctx: &mut Ctx, low: u64, size: u32, overflow: bool) {
    let co = if overflow { CF | OF } else { 0 };
    ctx.cpu.flags.update(ARITH, co | zsp(low, size));
}

/// Reads the accumulator pair for a `size`-byte multiply/divide: (rAX, rDX), or AX for bytes.
fn acc(ctx: &Ctx, size: u32) -> (u64, u64) {
    let mask = size_mask(size);
    if size == 1 {
        (ctx.cpu.gpr[0] & 0xff, (ctx.cpu.gpr[0] >> 8) & 0xff)
    } else {
        (ctx.cpu.gpr[0] & mask, ctx.cpu.gpr[2] & mask)
    }
}

/// Writes a double-width result into AX (bytes) or rDX:rAX.
fn set_acc(ctx: &mut Ctx, size: u32, low: u64, high: u64) {
    if size == 1 {
        set_sized(ctx, 0, 2, (low & 0xff) | ((high & 0xff) << 8));
    } else {
        set_sized(ctx, 0, size, low);
        set_sized(ctx, 2, size, high);
    }
}

/// MUL r/m: unsigned rDX:rAX = rAX * src.
pub(super) fn mul(ctx: &mut Ctx) -> Exec {
    let size = ctx.op_size(0);
    let src = ctx.read(0)?;
    let (a, _) = acc(ctx, size);
    let product = u128::from(a) * u128::from(src);
    let bits = size * 8;
    let low = (product as u64) & size_mask(size);
    let high = ((product >> bits) as u64) & size_mask(size);
    set_acc(ctx, size, low, high);
    mul_flags(ctx, low, size, high != 0);
    Ok(())
}

/// IMUL in its one-, two- and three-operand forms.
pub(super) fn imul(ctx: &mut Ctx) -> Exec {
    let size = ctx.op_size(0);
    let bits = size * 8;
    if ctx.insn.op_count() == 1 {
        let src = sign_extend(ctx.read(0)?, size) as i64;
        let (a, _) = acc(ctx, size);
        let product = i128::from(sign_extend(a, size) as i64) * i128::from(src);
        let low = (product as u64) & size_mask(size);
        let high = ((product >> bits) as u64) & size_mask(size);
        set_acc(ctx, size, low, high);
        let fits = i128::from(sign_extend(low, size) as i64) == product;
        mul_flags(ctx, low, size, !fits);
        return Ok(());
    }
    let (x, y) = if ctx.insn.op_count() == 2 {
        (ctx.read(0)?, ctx.read(1)?)
    } else {
        (ctx.read(1)?, ctx.read(2)?)
    };
    let product = i128::from(sign_extend(x, size) as i64) * i128::from(sign_extend(y, size) as i64);
    let low = (product as u64) & size_mask(size);
    ctx.write(0, low)?;
    let fits = i128::from(sign_extend(low, size) as i64) == product;
    mul_flags(ctx, low, size, !fits);
    Ok(())
}

/// DIV r/m: unsigned rDX:rAX / src.
pub(super) fn div(ctx: &mut Ctx) -> Exec {
    let size = ctx.op_size(0);
    let divisor = u128::from(ctx.read(0)?);
    if divisor == 0 {
        return Err(Exception::DivideError);
    }
    let (low, high) = acc(ctx, size);
    let dividend = (u128::from(high) << (size * 8)) | u128::from(low);
    let quotient = dividend / divisor;
    if quotient > u128::from(size_mask(size)) {
        return Err(Exception::DivideError);
    }
    let remainder = dividend % divisor;
    set_acc(ctx, size, quotient as u64, remainder as u64);
    Ok(())
}

/// IDIV r/m: signed rDX:rAX / src, truncating toward zero.
pub(super) fn idiv(ctx: &mut Ctx) -> Exec {
    let size = ctx.op_size(0);
    let bits = size * 8;
    let divisor = i128::from(sign_extend(ctx.read(0)?, size) as i64);
    if divisor == 0 {
        return Err(Exception::DivideError);
    }
    let (low, high) = acc(ctx, size);
    let wide = (u128::from(high) << bits) | u128::from(low);
    // Sign-extend the 2*bits-wide dividend to i128.
    let shift = 128 - 2 * bits;
    let dividend = ((wide << shift) as i128) >> shift;
    let (Some(quotient), Some(remainder)) =
        (dividend.checked_div(divisor), dividend.checked_rem(divisor))
    else {
        return Err(Exception::DivideError);
    };
    let min = -(1i128 << (bits - 1));
    let max = (1i128 << (bits - 1)) - 1;
    if quotient < min || quotient > max {
        return Err(Exception::DivideError);
    }
    set_acc(
        ctx,
        size,
        quotient as u64 & size_mask(size),
        remainder as u64 & size_mask(size),
    );
    Ok(())
}

/// MULX (BMI2): unsigned rDX * src into two destinations, flags untouched. When both
/// destinations are the same register it receives the high half.
pub(super) fn mulx(ctx: &mut Ctx) -> Exec {
    let size = ctx.op_size(0);
    let src = ctx.read(2)?;
    let rdx = ctx.cpu.gpr[2] & size_mask(size);
    let product = u128::from(rdx) * u128::from(src);
    let low = product as u64 & size_mask(size);
    let high = (product >> (size * 8)) as u64 & size_mask(size);
    ctx.write(1, low)?;
    ctx.write(0, high)
}
