//! Control instructions: FLDCW, FSTCW, FSTSW, FCLEX, FINIT, FLDENV, FSTENV, FSAVE, FRSTOR,
//! FFREE/FFREEP, FINCSTP, FDECSTP, FNOP and the 8087/287 no-ops (FENI, FDISI, FSETPM).
//!
//! Environment images are 28 bytes (108 with registers) for a 32-bit operand size (also in
//! 64-bit mode, with or without REX.W) and 14 (94) for a 16-bit one, in the protected-mode
//! or, in real and virtual-8086 mode, the real-address-mode layout. The FPU does not track
//! the FCS/FDS selectors (as on processors that deprecate them); they are stored as 0.

use super::{phys, set_tag, status, tag, update_es, Ctx, Exec};
use crate::flags::VM;
use crate::state::CR0_PE;
use crate::x87::TAG_EMPTY;
use crate::{X87State, F80};
use iced_x86::{MemorySize, Mnemonic as M};
use softvisor_mmu::AccessKind;

pub(super) fn owns(m: M) -> bool {
    matches!(
        m,
        M::Fldcw
            | M::Fnstcw
            | M::Fstcw
            | M::Fnstsw
            | M::Fstsw
            | M::Fnclex
            | M::Fclex
            | M::Fninit
            | M::Finit
            | M::Fldenv
            | M::Fnstenv
            | M::Fstenv
            | M::Fnsave
            | M::Fsave
            | M::Frstor
            | M::Ffree
            | M::Ffreep
            | M::Fincstp
            | M::Fdecstp
            | M::Fnop
            | M::Feni
            | M::Fneni
            | M::Fdisi
            | M::Fndisi
            | M::Fsetpm
            | M::Fnsetpm
    )
}

pub(super) fn execute(ctx: &mut Ctx, m: M) -> Exec {
    match m {
        M::Fldcw => {
            let addr = ctx.mem_addr()?;
            let fcw = ctx.read_mem(addr, 2)? as u16;
            let x = &mut ctx.cpu.x87;
            x.fcw = sanitize_fcw(fcw);
            update_es(x);
        }
        M::Fnstcw | M::Fstcw => {
            let fcw = ctx.cpu.x87.fcw;
            ctx.write(0, u64::from(fcw))?;
        }
        M::Fnstsw | M::Fstsw => {
            let fsw = full_fsw(&ctx.cpu.x87);
            ctx.write(0, u64::from(fsw))?;
        }
        M::Fnclex | M::Fclex => ctx.cpu.x87.fsw &= 0x7f00,
        M::Fninit | M::Finit => init(&mut ctx.cpu.x87),
        M::Fnstenv | M::Fstenv | M::Fnsave | M::Fsave => {
            save(ctx, matches!(m, M::Fnsave | M::Fsave))?
        }
        M::Fldenv | M::Frstor => restore(ctx, m == M::Frstor)?,
        M::Ffree | M::Ffreep => {
            let i = super::st_index(ctx, 0);
            let x = &mut ctx.cpu.x87;
            let p = phys(x, i);
            set_tag(x, p, TAG_EMPTY);
            status(x, 0);
            if m == M::Ffreep {
                super::pop(x);
            }
        }
        M::Fincstp | M::Fdecstp => {
            let x = &mut ctx.cpu.x87;
            x.top = (x.top + if m == M::Fincstp { 1 } else { 7 }) & 7;
            status(x, 0);
        }
        _ => {}
    }
    Ok(())
}

/// Reserved control-word bits read back as hardware keeps them: 6 set, 7 and 13-15 clear.
pub(crate) fn sanitize_fcw(fcw: u16) -> u16 {
    (fcw & 0x1f3f) | 0x40
}

/// The status word with TOP merged into bits 11-13.
pub(super) fn full_fsw(x: &X87State) -> u16 {
    (x.fsw & !0x3800) | (u16::from(x.top) << 11)
}

/// FNINIT.
fn init(x: &mut X87State) {
    *x = X87State {
        regs: x.regs,
        ..X87State::default()
    };
}

/// The tag word with the tags of non-empty registers recomputed from their contents.
fn tag_word(x: &X87State) -> u16 {
    (0..8).fold(0, |acc, p| {
        let t = if tag(x, p) == TAG_EMPTY {
            TAG_EMPTY
        } else {
            x.regs[p].tag()
        };
        acc | (t << (2 * p))
    })
}

/// Whether the environment image is the 16-bit (14/94-byte) one.
fn is_16bit(ctx: &Ctx) -> bool {
    matches!(
        ctx.insn.memory_size(),
        MemorySize::FpuEnv14 | MemorySize::FpuState94
    )
}

/// Whether the environment uses the real-address-mode layout (real and virtual-8086 mode).
fn real_layout(ctx: &Ctx) -> bool {
    ctx.cpu.cr0 & CR0_PE == 0 || ctx.cpu.rflags() & VM != 0
}

/// Words 3-6 of the environment (the 16-bit layouts keep their low halves): in protected
/// mode FIP, FCS with FOP above it, FDP, FDS; in real mode the 20/32-bit linear pointers
/// split into a low 16 bits and the rest at bit 12 beside FOP.
fn pointer_fields(x: &X87State, real: bool) -> [u32; 4] {
    let (fip, fdp, fop) = (x.fip as u32, x.fdp as u32, u32::from(x.fop & 0x7ff));
    if real {
        [
            fip & 0xffff | 0xffff_0000,
            (fip >> 16) << 12 | fop,
            fdp & 0xffff | 0xffff_0000,
            (fdp >> 16) << 12,
        ]
    } else {
        [fip, fop << 16, fdp, 0xffff_0000]
    }
}

/// Loads FIP, FOP and FDP from words 3-6 of an environment image.
fn load_pointers(x: &mut X87State, w: [u32; 4], real: bool, small: bool) {
    if real {
        x.fip = u64::from(w[0] & 0xffff | (w[1] >> 12) << 16);
        x.fop = (w[1] & 0x7ff) as u16;
        x.fdp = u64::from(w[2] & 0xffff | (w[3] >> 12) << 16);
    } else {
        x.fip = u64::from(w[0]);
        x.fop = if small {
            0
        } else {
            ((w[1] >> 16) & 0x7ff) as u16
        };
        x.fdp = u64::from(w[2]);
    }
}

fn env_image(x: &X87State, small: bool, real: bool) -> Vec<u8> {
    let tw = tag_word(x);
    let [w3, w4, w5, w6] = pointer_fields(x, real);
    let fields: [u32; 7] = [
        u32::from(x.fcw) | 0xffff_0000,
        u32::from(full_fsw(x)) | 0xffff_0000,
        u32::from(tw) | 0xffff_0000,
        w3,
        w4,
        w5,
        w6,
    ];
    if small {
        fields
            .iter()
            .flat_map(|f| (*f as u16).to_le_bytes())
            .collect()
    } else {
        fields.iter().flat_map(|f| f.to_le_bytes()).collect()
    }
}

/// FSTENV/FSAVE: one all-or-nothing write, then FSTENV masks all exceptions and FSAVE
/// reinitializes the FPU.
fn save(ctx: &mut Ctx, with_regs: bool) -> Exec {
    let addr = ctx.mem_addr()?;
    let x = ctx.cpu.x87;
    let mut image = env_image(&x, is_16bit(ctx), real_layout(ctx));
    if with_regs {
        for i in 0..8 {
            let r = x.regs[phys(&x, i)];
            image.extend_from_slice(&r.signif.to_le_bytes());
            image.extend_from_slice(&r.sign_exp.to_le_bytes());
        }
    }
    ctx.mem.write(addr, &image)?;
    let x = &mut ctx.cpu.x87;
    if with_regs {
        init(x);
    } else {
        x.fcw |= 0x3f;
        update_es(x);
    }
    Ok(())
}

/// FLDENV/FRSTOR.
fn restore(ctx: &mut Ctx, with_regs: bool) -> Exec {
    let addr = ctx.mem_addr()?;
    let small = is_16bit(ctx);
    let real = real_layout(ctx);
    let env_len = if small { 14 } else { 28 };
    let mut image = vec![0u8; env_len + if with_regs { 80 } else { 0 }];
    ctx.mem.read(addr, &mut image, AccessKind::Read)?;
    let field = |i: usize| -> u32 {
        if small {
            u32::from(u16::from_le_bytes([image[2 * i], image[2 * i + 1]]))
        } else {
            u32::from_le_bytes([
                image[4 * i],
                image[4 * i + 1],
                image[4 * i + 2],
                image[4 * i + 3],
            ])
        }
    };
    let x = &mut ctx.cpu.x87;
    x.fcw = sanitize_fcw(field(0) as u16);
    let fsw = field(1) as u16;
    x.top = ((fsw >> 11) & 7) as u8;
    x.fsw = fsw & !0x3800;
    x.ftw = field(2) as u16;
    load_pointers(x, [field(3), field(4), field(5), field(6)], real, small);
    if with_regs {
        for i in 0..8 {
            let b = &image[env_len + 10 * i..env_len + 10 * i + 10];
            let mut sig = [0u8; 8];
            sig.copy_from_slice(&b[..8]);
            let p = phys(x, i);
            x.regs[p] = F80 {
                signif: u64::from_le_bytes(sig),
                sign_exp: u16::from_le_bytes([b[8], b[9]]),
            };
        }
    }
    update_es(x);
    Ok(())
}
