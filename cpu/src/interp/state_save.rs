//! FXSAVE and FXRSTOR: the 512-byte x87/MMX/SSE state image (the 64-bit layout with
//! REX.W, the 32-bit one with FCS/FDS selectors otherwise). Bytes 416-511 are left alone.

use super::operand::{Ctx, Exec};
use crate::state::{CR0_EM, CR0_TS, F80};
use crate::Exception;
use iced_x86::Mnemonic;

/// MXCSR bits the virtual CPU implements (MXCSR_MASK).
pub const MXCSR_MASK: u32 = 0xffff;

/// The checks every FXSAVE/FXRSTOR makes; returns the 16-byte aligned image address.
fn image_address(ctx: &mut Ctx) -> Exec<u64> {
    if ctx.cpu.cr0 & CR0_EM != 0 {
        return ctx.architectural_ud();
    }
    if ctx.cpu.cr0 & CR0_TS != 0 {
        return Err(Exception::DeviceNotAvailable);
    }
    let addr = ctx.mem_addr()?;
    if addr % 16 != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    Ok(addr)
}

/// Number of XMM registers in the image: 16 in 64-bit mode, 8 otherwise.
fn xmm_count(ctx: &Ctx) -> usize {
    if ctx.cpu.in_64bit_mode() {
        16
    } else {
        8
    }
}

/// FXSAVE / FXSAVE64 / FXRSTOR / FXRSTOR64.
pub(super) fn execute(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let addr = image_address(ctx)?;
    let wide = matches!(m, Mnemonic::Fxsave64 | Mnemonic::Fxrstor64);
    if matches!(m, Mnemonic::Fxsave | Mnemonic::Fxsave64) {
        let image = save(ctx, wide);
        ctx.mem.write(addr, &image[..160 + 16 * xmm_count(ctx)])?;
        Ok(())
    } else {
        let mut image = [0u8; 512];
        ctx.mem
            .read(addr, &mut image, softvisor_mmu::AccessKind::Read)?;
        restore(ctx, &image, wide)
    }
}

fn save(ctx: &Ctx, wide: bool) -> [u8; 512] {
    let x = &ctx.cpu.x87;
    let mut image = [0u8; 512];
    let fsw = (x.fsw & !0x3800) | (u16::from(x.top & 7) << 11);
    image[0..2].copy_from_slice(&x.fcw.to_le_bytes());
    image[2..4].copy_from_slice(&fsw.to_le_bytes());
    image[4] = (0..8)
        .filter(|&p| (x.ftw >> (2 * p)) & 3 != 3)
        .fold(0u8, |acc, p| acc | (1 << p));
    image[6..8].copy_from_slice(&x.fop.to_le_bytes());
    if wide {
        image[8..16].copy_from_slice(&x.fip.to_le_bytes());
        image[16..24].copy_from_slice(&x.fdp.to_le_bytes());
    } else {
        image[8..12].copy_from_slice(&(x.fip as u32).to_le_bytes());
        image[16..20].copy_from_slice(&(x.fdp as u32).to_le_bytes());
    }
    image[24..28].copy_from_slice(&ctx.cpu.mxcsr.to_le_bytes());
    image[28..32].copy_from_slice(&MXCSR_MASK.to_le_bytes());
    for slot in 0..8 {
        let reg = x.regs[(usize::from(x.top) + slot) & 7];
        image[32 + 16 * slot..40 + 16 * slot].copy_from_slice(&reg.signif.to_le_bytes());
        image[40 + 16 * slot..42 + 16 * slot].copy_from_slice(&reg.sign_exp.to_le_bytes());
    }
    for n in 0..xmm_count(ctx) {
        image[160 + 16 * n..176 + 16 * n].copy_from_slice(&ctx.cpu.xmm[n].to_le_bytes());
    }
    image
}

fn restore(ctx: &mut Ctx, image: &[u8; 512], wide: bool) -> Exec {
    let word = |o: usize| u16::from_le_bytes([image[o], image[o + 1]]);
    let dword = |o: usize| u32::from_le_bytes([image[o], image[o + 1], image[o + 2], image[o + 3]]);
    let qword = |o: usize| u64::from(dword(o)) | (u64::from(dword(o + 4)) << 32);
    let mxcsr = dword(24);
    if mxcsr & !MXCSR_MASK != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    let count = xmm_count(ctx);
    let x = &mut ctx.cpu.x87;
    x.fcw = super::x87ops::control::sanitize_fcw(word(0));
    let fsw = word(2);
    x.top = ((fsw >> 11) & 7) as u8;
    x.fsw = fsw & !0x3800;
    x.fop = word(6) & 0x7ff;
    x.fip = if wide { qword(8) } else { u64::from(dword(8)) };
    x.fdp = if wide {
        qword(16)
    } else {
        u64::from(dword(16))
    };
    for slot in 0..8 {
        let phys = (usize::from(x.top) + slot) & 7;
        x.regs[phys] = F80 {
            signif: qword(32 + 16 * slot),
            sign_exp: word(40 + 16 * slot),
        };
    }
    // The abridged tag says only empty or not; the full tag comes from the contents.
    x.ftw = (0..8).fold(0u16, |acc, p| {
        let tag = if image[4] & (1 << p) == 0 {
            3
        } else {
            x.regs[p].tag()
        };
        acc | (tag << (2 * p))
    });
    // ES and B follow the exception flags and masks just loaded.
    super::x87ops::update_es(x);
    ctx.cpu.mxcsr = mxcsr;
    for n in 0..count {
        ctx.cpu.xmm[n] = u128::from_le_bytes(
            image[160 + 16 * n..176 + 16 * n]
                .try_into()
                .expect("16 bytes"),
        );
    }
    Ok(())
}
