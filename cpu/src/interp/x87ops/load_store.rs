//! Loads and stores: FLD/FST/FSTP (m32/m64/m80, ST(i)), FILD/FIST/FISTP/FISTTP, FBLD/FBSTP,
//! FXCH and FCMOVcc, plus the memory-operand decoding shared with the arithmetic groups.

use super::{commit, env, is_empty, masked, pop, push, st, st_index, status, underflow, Ctx, Exec};
use crate::flags::{CF, PF, ZF};
use crate::x87::{self, Class, Env, Format, Rc, Val, DOUBLE, IE, SF, SINGLE};
use crate::{X87State, F80};
use iced_x86::{MemorySize, Mnemonic as M, OpKind};
use softvisor_mmu::AccessKind;

pub(super) fn owns(m: M) -> bool {
    matches!(
        m,
        M::Fld
            | M::Fst
            | M::Fstp
            | M::Fstpnce
            | M::Fild
            | M::Fist
            | M::Fistp
            | M::Fisttp
            | M::Fbld
            | M::Fbstp
            | M::Fxch
    ) || cmov_condition(m).is_some()
}

pub(super) fn execute(ctx: &mut Ctx, m: M) -> Exec {
    match m {
        M::Fld | M::Fild | M::Fbld => load(ctx),
        M::Fstpnce => {
            // The reserved alias D9 D8+i never faults: an empty ST(0) is just popped.
            let i = st_index(ctx, 0);
            let x = &mut ctx.cpu.x87;
            if let Some(v) = st(x, 0) {
                super::set_st(x, i, v);
            }
            pop(x);
            status(x, 0);
            Ok(())
        }
        M::Fst | M::Fstp | M::Fbstp if ctx.insn.op_kind(0) == OpKind::Register => {
            store_reg(ctx, m != M::Fst)
        }
        M::Fst | M::Fstp | M::Fbstp => store_float(ctx, m != M::Fst),
        M::Fist | M::Fistp | M::Fisttp => store_int(ctx, m),
        M::Fxch => {
            let i = st_index(ctx, 1);
            fxch(&mut ctx.cpu.x87, i);
            Ok(())
        }
        _ => fcmov(ctx, m),
    }
}

/// Reads 10 bytes of memory.
fn read10(ctx: &mut Ctx, addr: u64) -> Exec<[u8; 10]> {
    let mut buf = [0u8; 10];
    ctx.mem.read(addr, &mut buf, AccessKind::Read)?;
    Ok(buf)
}

/// Reads the memory operand as an F80 (exact), with DE for single/double denormals.
pub(super) fn read_operand(ctx: &mut Ctx) -> Exec<(F80, u16)> {
    let addr = ctx.mem_addr()?;
    let size = ctx.insn.memory_size();
    Ok(match size {
        MemorySize::Float32 => x87::from_ieee(ctx.read_mem(addr, 4)?, SINGLE, 8),
        MemorySize::Float64 => x87::from_ieee(ctx.read_mem(addr, 8)?, DOUBLE, 11),
        MemorySize::Float80 => {
            let b = read10(ctx, addr)?;
            let mut sig = [0u8; 8];
            sig.copy_from_slice(&b[..8]);
            (
                F80 {
                    signif: u64::from_le_bytes(sig),
                    sign_exp: u16::from_le_bytes([b[8], b[9]]),
                },
                0,
            )
        }
        MemorySize::Bcd => (from_bcd(&read10(ctx, addr)?), 0),
        _ => {
            let bytes = size.size();
            let raw = ctx.read_mem(addr, bytes)?;
            let shift = 64 - 8 * bytes as u32;
            let v = ((raw << shift) as i64) >> shift;
            (x87::from_int(v < 0, v.unsigned_abs()), 0)
        }
    })
}

fn from_bcd(b: &[u8; 10]) -> F80 {
    let mag = b[..9].iter().rev().fold(0u64, |acc, &d| {
        acc * 100 + u64::from(d >> 4) * 10 + u64::from(d & 15)
    });
    x87::from_int(b[9] & 0x80 != 0, mag)
}

/// FLD, FILD, FBLD: pushes the operand. An SNaN source raises IE and is quieted.
fn load(ctx: &mut Ctx) -> Exec {
    let (v, flags) = if ctx.insn.op_kind(0) == OpKind::Memory {
        read_operand(ctx)?
    } else {
        match st(&ctx.cpu.x87, st_index(ctx, 0)) {
            Some(v) => (v, 0),
            None => underflow(),
        }
    };
    let converted = matches!(
        ctx.insn.memory_size(),
        MemorySize::Float32 | MemorySize::Float64
    );
    let (v, flags) = if v.class() == Class::SNaN && converted {
        (v.quiet(), flags | IE)
    } else {
        (v, flags)
    };
    let x = &mut ctx.cpu.x87;
    if flags & SF != 0 {
        // A source underflow reports C1=0 even when the push overflows too.
        if masked(x, IE) {
            super::push_unchecked(x, v);
        }
        status(x, flags);
    } else if !is_empty(x, 7) {
        // Stack overflow takes priority over the operand's own exceptions.
        push(x, v);
    } else if masked(x, flags & IE) {
        // The load is exact, so an unmasked DE still loads the value.
        push(x, v);
        status(x, flags);
    } else {
        status(x, flags);
    }
    Ok(())
}

/// FST/FSTP ST(i).
fn store_reg(ctx: &mut Ctx, popping: bool) -> Exec {
    let i = st_index(ctx, 0);
    let x = &mut ctx.cpu.x87;
    let res = st(x, 0).map_or_else(underflow, |v| (v, 0));
    if commit(x, i, res) && popping {
        pop(x);
    }
    Ok(())
}

/// FST/FSTP m32/m64/m80 and FBSTP: the memory is written before the stack changes.
fn store_float(ctx: &mut Ctx, popping: bool) -> Exec {
    let addr = ctx.mem_addr()?;
    let x = ctx.cpu.x87;
    let (_, env) = env(&x);
    let size = ctx.insn.memory_size();
    let (bytes, flags) = match st(&x, 0) {
        None => (indefinite_bytes(size), IE | SF),
        Some(v) => encode(v, size, env),
    };
    let x = &mut ctx.cpu.x87;
    if masked(x, flags & (IE | x87::OE | x87::UE)) {
        ctx.mem.write(addr, &bytes[..size.size()])?;
        let x = &mut ctx.cpu.x87;
        status(x, flags);
        if popping {
            pop(x);
        }
    } else {
        // Nothing is stored, so only the exceptions themselves are reported.
        status(x, flags & (IE | SF | x87::OE | x87::UE));
    }
    Ok(())
}

/// The memory image of the indefinite in format `size`.
fn indefinite_bytes(size: MemorySize) -> [u8; 10] {
    let mut b = [0u8; 10];
    match size {
        MemorySize::Float32 => b[..4].copy_from_slice(&0xffc0_0000u32.to_le_bytes()),
        MemorySize::Float64 => b[..8].copy_from_slice(&0xfff8_0000_0000_0000u64.to_le_bytes()),
        MemorySize::Bcd => b[7..].copy_from_slice(&[0xc0, 0xff, 0xff]),
        _ => {
            b[..8].copy_from_slice(&F80::INDEFINITE.signif.to_le_bytes());
            b[8..].copy_from_slice(&F80::INDEFINITE.sign_exp.to_le_bytes());
        }
    }
    b
}

/// Encodes `v` for a memory destination of `size`.
fn encode(v: F80, size: MemorySize, env: Env) -> ([u8; 10], u16) {
    let mut b = [0u8; 10];
    let (bits, flags) = match size {
        MemorySize::Float32 => to_ieee(v, SINGLE, 8, env),
        MemorySize::Float64 => to_ieee(v, DOUBLE, 11, env),
        MemorySize::Bcd => return to_bcd(v, env.rc),
        _ => {
            b[..8].copy_from_slice(&v.signif.to_le_bytes());
            b[8..].copy_from_slice(&v.sign_exp.to_le_bytes());
            return (b, 0);
        }
    };
    b[..8].copy_from_slice(&bits.to_le_bytes());
    (b, flags)
}

/// Rounds `v` to an IEEE single/double (IE for SNaN or unsupported sources).
fn to_ieee(v: F80, fmt: Format, exp_bits: u32, env: Env) -> (u64, u16) {
    let frac_bits = fmt.prec - 1;
    let sign = u64::from(v.sign()) << (exp_bits + frac_bits);
    let exp_all = ((1u64 << exp_bits) - 1) << frac_bits;
    let frac_mask = (1u64 << frac_bits) - 1;
    match x87::unpack(v).0 {
        Val::Zero(_) => (sign, 0),
        Val::Inf(_) => (sign | exp_all, 0),
        Val::NaN(Some(f)) => {
            let flags = if f.class() == Class::SNaN { IE } else { 0 };
            (
                sign | exp_all | ((f.quiet().signif >> (64 - fmt.prec)) & frac_mask),
                flags,
            )
        }
        Val::NaN(None) => (
            1 << (exp_bits + frac_bits) | exp_all | (1 << (frac_bits - 1)),
            IE,
        ),
        Val::Fin(s, e, m) => {
            // Memory formats have no rebias: unmasked underflow/overflow only flag.
            let r = x87::round(
                s,
                e,
                u128::from(m) << 64,
                fmt,
                Env {
                    om: true,
                    um: true,
                    ..env
                },
            );
            let flags = if e < fmt.emin && !env.um {
                x87::UE
            } else if r.flags & x87::OE != 0 && !env.om {
                x87::OE
            } else {
                r.flags
            };
            (r.to_ieee(fmt, exp_bits), flags)
        }
    }
}

/// Rounds `v` to an integer under `rc`; `None` (with IE) when it does not fit in
/// `bits` signed bits or is not a number.
fn to_int(v: F80, bits: u32, rc: Rc) -> (Option<i64>, u16) {
    match x87::unpack(v).0 {
        Val::Zero(_) => (Some(0), 0),
        Val::Fin(s, e, m) => {
            let (mag, flags) = x87::round_to_int(s, e, m, rc);
            let limit = (1u64 << (bits - 1)) - u64::from(!s);
            match mag {
                Some(mag) if mag <= limit => (
                    Some(if s {
                        0i64.wrapping_sub_unsigned(mag)
                    } else {
                        mag as i64
                    }),
                    flags,
                ),
                _ => (None, IE),
            }
        }
        _ => (None, IE),
    }
}

/// FBSTP encoding: 18 BCD digits and a sign byte.
fn to_bcd(v: F80, rc: Rc) -> ([u8; 10], u16) {
    let (mag, flags) = match x87::unpack(v).0 {
        Val::Zero(_) => (Some(0), 0),
        Val::Fin(s, e, m) => x87::round_to_int(s, e, m, rc),
        _ => (None, IE),
    };
    let Some(mut mag) = mag.filter(|&m| m < 1_000_000_000_000_000_000) else {
        return (indefinite_bytes(MemorySize::Bcd), IE);
    };
    let mut b = [0u8; 10];
    for byte in b.iter_mut().take(9) {
        *byte = ((mag % 10) | ((mag / 10 % 10) << 4)) as u8;
        mag /= 100;
    }
    b[9] = if v.sign() { 0x80 } else { 0 };
    (b, flags)
}

/// FIST/FISTP/FISTTP m16/m32/m64.
fn store_int(ctx: &mut Ctx, m: M) -> Exec {
    let addr = ctx.mem_addr()?;
    let size = ctx.insn.memory_size().size();
    let x = ctx.cpu.x87;
    let rc = if m == M::Fisttp {
        Rc::Zero
    } else {
        Rc::from_fcw(x.fcw)
    };
    let (value, flags) = match st(&x, 0) {
        None => (None, IE | SF),
        Some(v) => to_int(v, 8 * size as u32, rc),
    };
    if !masked(&x, flags) && flags & IE != 0 {
        status(&mut ctx.cpu.x87, flags);
        return Ok(());
    }
    let bits = value.map_or(1u64 << (8 * size - 1), |v| v as u64);
    ctx.write_mem(addr, size, bits)?;
    let x = &mut ctx.cpu.x87;
    status(x, flags);
    if m != M::Fist {
        pop(x);
    }
    Ok(())
}

/// FXCH: an empty operand is replaced by the indefinite when IE is masked.
fn fxch(x: &mut X87State, i: usize) {
    let (a, b) = (st(x, 0), st(x, i));
    if a.is_none() || b.is_none() {
        status(x, IE | SF);
        if !masked(x, IE) {
            return;
        }
    } else {
        status(x, 0);
    }
    let a = a.unwrap_or(F80::INDEFINITE);
    let b = b.unwrap_or(F80::INDEFINITE);
    super::set_st(x, 0, b);
    super::set_st(x, i, a);
}

/// The RFLAGS condition of an FCMOVcc mnemonic (flag mask, whether the flags must be set).
fn cmov_condition(m: M) -> Option<(u64, bool)> {
    Some(match m {
        M::Fcmovb => (CF, true),
        M::Fcmove => (ZF, true),
        M::Fcmovbe => (CF | ZF, true),
        M::Fcmovu => (PF, true),
        M::Fcmovnb => (CF, false),
        M::Fcmovne => (ZF, false),
        M::Fcmovnbe => (CF | ZF, false),
        M::Fcmovnu => (PF, false),
        _ => return None,
    })
}

/// FCMOVcc ST(0), ST(i).
fn fcmov(ctx: &mut Ctx, m: M) -> Exec {
    let Some((mask, want)) = cmov_condition(m) else {
        return Err(crate::Exception::InvalidOpcode);
    };
    let take = (ctx.cpu.rflags() & mask != 0) == want;
    let i = st_index(ctx, 1);
    let x = &mut ctx.cpu.x87;
    match (st(x, 0), st(x, i)) {
        // C1 is kept unless the stack faults.
        (Some(_), Some(v)) if take => super::set_st(x, 0, v),
        (Some(_), Some(_)) => {}
        _ => {
            commit(x, 0, underflow());
        }
    }
    Ok(())
}
