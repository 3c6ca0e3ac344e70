//! State save and restore: FXSAVE/FXRSTOR (the 512-byte x87/MMX/SSE image, 64-bit layout
//! with REX.W) and the XSAVE family (XSAVE, XSAVEOPT, XRSTOR in the standard format, plus
//! XGETBV/XSETBV) for the two state components the virtual CPU has: x87 (bit 0) and SSE
//! (bit 1). Bytes 416-511 of the legacy area are never written.

use super::operand::{Ctx, Exec};
use crate::state::{CR0_EM, CR0_TS, F80};
use crate::{Exception, X87State};
use iced_x86::Mnemonic;
use softvisor_mmu::AccessKind;

/// MXCSR bits the virtual CPU implements (MXCSR_MASK).
pub const MXCSR_MASK: u32 = 0xffff;
/// XCR0 components the virtual CPU supports: x87 and SSE.
pub const XCR0_SUPPORTED: u64 = 0b11;
/// Size of the standard-format XSAVE area for x87 + SSE: legacy area plus header.
pub const XSAVE_AREA_SIZE: u32 = 576;
/// CR4.OSXSAVE.
const CR4_OSXSAVE: u64 = 1 << 18;

/// The image of a save area, for building and parsing.
type Image = [u8; XSAVE_AREA_SIZE as usize];

/// Executes FXSAVE/FXRSTOR/XSAVE/XSAVEOPT/XRSTOR (memory forms) and XGETBV/XSETBV.
pub(super) fn execute(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    match m {
        Mnemonic::Xgetbv => xgetbv(ctx),
        Mnemonic::Xsetbv => xsetbv(ctx),
        Mnemonic::Fxsave | Mnemonic::Fxsave64 => {
            let addr = area_address(ctx, 16, false)?;
            let mut image = [0u8; XSAVE_AREA_SIZE as usize];
            save_x87(ctx, &mut image, m == Mnemonic::Fxsave64);
            save_sse(ctx, &mut image);
            ctx.mem.write(addr, &image[..160 + 16 * xmm_count(ctx)])?;
            Ok(())
        }
        Mnemonic::Fxrstor | Mnemonic::Fxrstor64 => {
            let addr = area_address(ctx, 16, false)?;
            let mut image = [0u8; XSAVE_AREA_SIZE as usize];
            ctx.mem.read(addr, &mut image[..512], AccessKind::Read)?;
            check_mxcsr(&image)?;
            restore_x87(ctx, &image, m == Mnemonic::Fxrstor64);
            restore_sse(ctx, &image);
            Ok(())
        }
        Mnemonic::Xsave | Mnemonic::Xsave64 | Mnemonic::Xsaveopt | Mnemonic::Xsaveopt64 => {
            xsave(ctx, m)
        }
        _ => xrstor(ctx, m == Mnemonic::Xrstor64),
    }
}

/// The checks every save/restore makes (#UD, #NM, alignment); returns the area address.
fn area_address(ctx: &mut Ctx, align: u64, xsave: bool) -> Exec<u64> {
    if xsave && ctx.cpu.cr4 & CR4_OSXSAVE == 0 {
        return ctx.architectural_ud();
    }
    if !xsave && ctx.cpu.cr0 & CR0_EM != 0 {
        return ctx.architectural_ud();
    }
    if ctx.cpu.cr0 & CR0_TS != 0 {
        return Err(Exception::DeviceNotAvailable);
    }
    let addr = ctx.mem_addr()?;
    if addr % align != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    Ok(addr)
}

/// Number of XMM registers in an image: 16 in 64-bit mode, 8 otherwise.
fn xmm_count(ctx: &Ctx) -> usize {
    if ctx.cpu.in_64bit_mode() {
        16
    } else {
        8
    }
}

fn save_x87(ctx: &Ctx, image: &mut Image, wide: bool) {
    let x = &ctx.cpu.x87;
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
    for slot in 0..8 {
        let reg = x.regs[(usize::from(x.top) + slot) & 7];
        image[32 + 16 * slot..40 + 16 * slot].copy_from_slice(&reg.signif.to_le_bytes());
        image[40 + 16 * slot..42 + 16 * slot].copy_from_slice(&reg.sign_exp.to_le_bytes());
    }
}

/// MXCSR, MXCSR_MASK and the XMM registers.
fn save_sse(ctx: &Ctx, image: &mut Image) {
    save_mxcsr(ctx, image);
    for n in 0..xmm_count(ctx) {
        image[160 + 16 * n..176 + 16 * n].copy_from_slice(&ctx.cpu.xmm[n].to_le_bytes());
    }
}

fn save_mxcsr(ctx: &Ctx, image: &mut Image) {
    image[24..28].copy_from_slice(&ctx.cpu.mxcsr.to_le_bytes());
    image[28..32].copy_from_slice(&MXCSR_MASK.to_le_bytes());
}

fn word(image: &Image, o: usize) -> u16 {
    u16::from_le_bytes([image[o], image[o + 1]])
}

fn dword(image: &Image, o: usize) -> u32 {
    u32::from_le_bytes([image[o], image[o + 1], image[o + 2], image[o + 3]])
}

fn qword(image: &Image, o: usize) -> u64 {
    u64::from(dword(image, o)) | (u64::from(dword(image, o + 4)) << 32)
}

/// #GP(0) if the image's MXCSR sets a reserved bit.
fn check_mxcsr(image: &Image) -> Exec {
    if dword(image, 24) & !MXCSR_MASK != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    Ok(())
}

fn restore_x87(ctx: &mut Ctx, image: &Image, wide: bool) {
    let x = &mut ctx.cpu.x87;
    x.fcw = super::x87ops::control::sanitize_fcw(word(image, 0));
    let fsw = word(image, 2);
    x.top = ((fsw >> 11) & 7) as u8;
    x.fsw = fsw & !0x3800;
    x.fop = word(image, 6) & 0x7ff;
    x.fip = if wide {
        qword(image, 8)
    } else {
        u64::from(dword(image, 8))
    };
    x.fdp = if wide {
        qword(image, 16)
    } else {
        u64::from(dword(image, 16))
    };
    for slot in 0..8 {
        let phys = (usize::from(x.top) + slot) & 7;
        x.regs[phys] = F80 {
            signif: qword(image, 32 + 16 * slot),
            sign_exp: word(image, 40 + 16 * slot),
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
}

fn restore_sse(ctx: &mut Ctx, image: &Image) {
    ctx.cpu.mxcsr = dword(image, 24);
    for n in 0..xmm_count(ctx) {
        ctx.cpu.xmm[n] = u128::from_le_bytes(
            image[160 + 16 * n..176 + 16 * n]
                .try_into()
                .expect("16 bytes"),
        );
    }
}

/// The requested-feature bitmap: XCR0 AND EDX:EAX.
fn requested(ctx: &Ctx) -> u64 {
    ctx.cpu.xcr0 & ((ctx.cpu.gpr[2] << 32) | (ctx.cpu.gpr[0] & 0xffff_ffff))
}

/// XSAVE/XSAVEOPT: the requested components and their XSTATE_BV bits (always reported in use).
fn xsave(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let addr = area_address(ctx, 64, true)?;
    let wide = matches!(m, Mnemonic::Xsave64 | Mnemonic::Xsaveopt64);
    let rfbm = requested(ctx);
    let mut image = [0u8; XSAVE_AREA_SIZE as usize];
    ctx.mem.read(addr, &mut image, AccessKind::Read)?;
    if rfbm & 1 != 0 {
        save_x87(ctx, &mut image, wide);
    }
    if rfbm & 2 != 0 {
        save_sse(ctx, &mut image);
    }
    let xstate_bv = (qword(&image, 512) & !rfbm) | rfbm;
    image[512..520].copy_from_slice(&xstate_bv.to_le_bytes());
    ctx.mem.write(addr, &image)?;
    Ok(())
}

/// XRSTOR (standard format): loads requested components present in XSTATE_BV and puts the
/// other requested ones in their initial state.
fn xrstor(ctx: &mut Ctx, wide: bool) -> Exec {
    let addr = area_address(ctx, 64, true)?;
    let mut image = [0u8; XSAVE_AREA_SIZE as usize];
    ctx.mem.read(addr, &mut image, AccessKind::Read)?;
    let xstate_bv = qword(&image, 512);
    let header_reserved = image[520..576].iter().any(|&b| b != 0);
    if xstate_bv & !ctx.cpu.xcr0 != 0 || header_reserved {
        return Err(Exception::GeneralProtection(0));
    }
    let rfbm = requested(ctx);
    if rfbm & 2 != 0 {
        check_mxcsr(&image)?;
    }
    if rfbm & 1 != 0 {
        if xstate_bv & 1 != 0 {
            restore_x87(ctx, &image, wide);
        } else {
            ctx.cpu.x87 = X87State::default();
        }
    }
    if rfbm & 2 != 0 {
        ctx.cpu.mxcsr = dword(&image, 24);
        if xstate_bv & 2 != 0 {
            restore_sse(ctx, &image);
        } else {
            let count = xmm_count(ctx);
            ctx.cpu.xmm[..count].fill(0);
        }
    }
    Ok(())
}

/// XGETBV: ECX = 0 reads XCR0.
fn xgetbv(ctx: &mut Ctx) -> Exec {
    if ctx.cpu.cr4 & CR4_OSXSAVE == 0 {
        return ctx.architectural_ud();
    }
    if ctx.cpu.gpr[1] as u32 != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    ctx.cpu.gpr[0] = ctx.cpu.xcr0 & 0xffff_ffff;
    ctx.cpu.gpr[2] = ctx.cpu.xcr0 >> 32;
    Ok(())
}

/// XSETBV: CPL 0, ECX = 0, x87 always enabled, only supported components.
fn xsetbv(ctx: &mut Ctx) -> Exec {
    if ctx.cpu.cr4 & CR4_OSXSAVE == 0 {
        return ctx.architectural_ud();
    }
    let value = (ctx.cpu.gpr[2] << 32) | (ctx.cpu.gpr[0] & 0xffff_ffff);
    if ctx.cpu.cpl() != 0
        || ctx.cpu.gpr[1] as u32 != 0
        || value & 1 == 0
        || value & !XCR0_SUPPORTED != 0
    {
        return Err(Exception::GeneralProtection(0));
    }
    ctx.cpu.xcr0 = value;
    Ok(())
}
