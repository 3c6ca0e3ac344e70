//! Comparisons: FCOM/FCOMP/FCOMPP, FUCOM/FUCOMP/FUCOMPP, FICOM/FICOMP (C3/C2/C0),
//! FCOMI/FCOMIP/FUCOMI/FUCOMIP (ZF/PF/CF), FTST and FXAM.

use super::load_store::read_operand;
use super::{masked, phys, pop, st, st_index, status, tag, Ctx, Exec};
use crate::flags::{ARITH, CF, PF, ZF};
use crate::x87::{self, Class, Val, C0, C1, C2, C3, IE, SF, TAG_EMPTY};
use crate::F80;
use core::cmp::Ordering;
use iced_x86::{Mnemonic as M, OpKind};

pub(super) fn owns(m: M) -> bool {
    matches!(
        m,
        M::Fcom
            | M::Fcomp
            | M::Fcompp
            | M::Fucom
            | M::Fucomp
            | M::Fucompp
            | M::Ficom
            | M::Ficomp
            | M::Fcomi
            | M::Fcomip
            | M::Fucomi
            | M::Fucomip
            | M::Ftst
            | M::Fxam
    )
}

pub(super) fn execute(ctx: &mut Ctx, m: M) -> Exec {
    if m == M::Fxam {
        fxam(&mut ctx.cpu.x87);
        return Ok(());
    }
    let quiet = matches!(
        m,
        M::Fucom | M::Fucomp | M::Fucompp | M::Fucomi | M::Fucomip
    );
    let pops = match m {
        M::Fcompp | M::Fucompp => 2,
        M::Fcomp | M::Fucomp | M::Ficomp | M::Fcomip | M::Fucomip => 1,
        _ => 0,
    };
    let b = if m == M::Ftst {
        Some((F80::ZERO, 0))
    } else if ctx.insn.op_count() == 0 {
        st(&ctx.cpu.x87, 1).map(|v| (v, 0))
    } else if ctx.insn.op_kind(0) == OpKind::Memory {
        Some(read_operand(ctx)?)
    } else {
        let op = ctx.insn.op_count() - 1;
        st(&ctx.cpu.x87, st_index(ctx, op)).map(|v| (v, 0))
    };
    let (order, flags) = match (st(&ctx.cpu.x87, 0), b) {
        (Some(a), Some((b, mem_flags))) => {
            let (o, f) = compare(a, b, quiet);
            (o, if o.is_some() { f | mem_flags } else { f })
        }
        _ => (None, IE | SF),
    };
    let x = &mut ctx.cpu.x87;
    // The condition is reported even when an unmasked exception suppresses the pops.
    let ok = masked(x, flags & (IE | x87::DE));
    let fcomi = matches!(m, M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip);
    if fcomi && flags & SF == 0 {
        // FCOMI leaves C1 alone unless the stack faults.
        let c1 = x.fsw & C1;
        status(x, flags | c1);
    } else {
        status(x, flags & !C1);
    }
    if fcomi {
        let zpc = match order {
            Some(Ordering::Greater) => 0,
            Some(Ordering::Less) => CF,
            Some(Ordering::Equal) => ZF,
            None => ZF | PF | CF,
        };
        ctx.cpu.flags.update(ARITH, zpc);
    } else {
        let cc = match order {
            Some(Ordering::Greater) => 0,
            Some(Ordering::Less) => C0,
            Some(Ordering::Equal) => C3,
            None => C3 | C2 | C0,
        };
        x.fsw = (x.fsw & !(C0 | C2 | C3)) | cc;
    }
    for _ in 0..if ok { pops } else { 0 } {
        pop(x);
    }
    Ok(())
}

/// Orders `a` and `b`; `None` when unordered. IE for SNaN (any NaN unless `quiet`) and
/// unsupported encodings, DE for denormals.
fn compare(a: F80, b: F80, quiet: bool) -> (Option<Ordering>, u16) {
    let ((va, da), (vb, db)) = (x87::unpack(a), x87::unpack(b));
    if let (Val::NaN(_), _) | (_, Val::NaN(_)) = (va, vb) {
        let signaling = |v: F80| v.class() != Class::QNaN;
        let nan_a = matches!(va, Val::NaN(_)) && (!quiet || signaling(a));
        let nan_b = matches!(vb, Val::NaN(_)) && (!quiet || signaling(b));
        return (None, if nan_a || nan_b { IE } else { 0 });
    }
    (
        Some(key(va).partial_cmp(&key(vb)).unwrap_or(Ordering::Equal)),
        da | db,
    )
}

/// A totally ordered key for non-NaN values.
fn key(v: Val) -> (i8, i64, u64) {
    let (s, mag) = match v {
        Val::Zero(_) => return (0, 0, 0),
        Val::Inf(s) => (s, (i64::MAX, u64::MAX)),
        Val::Fin(s, e, m) => (s, (i64::from(e), m)),
        Val::NaN(_) => return (0, 0, 0),
    };
    if s {
        (-1, -mag.0, !mag.1)
    } else {
        (1, mag.0, mag.1)
    }
}

/// FXAM: classifies ST(0) into C3/C2/C0 with the sign in C1.
fn fxam(x: &mut crate::X87State) {
    let v = x.regs[phys(x, 0)];
    let cc = if tag(x, phys(x, 0)) == TAG_EMPTY {
        C3 | C0
    } else {
        match v.class() {
            Class::Unsupported => 0,
            Class::QNaN | Class::SNaN => C0,
            Class::Normal => C2,
            Class::Inf => C2 | C0,
            Class::Zero => C3,
            Class::Denormal => C3 | C2,
        }
    };
    let c1 = if v.sign() { C1 } else { 0 };
    x.fsw = (x.fsw & !(C0 | C1 | C2 | C3)) | cc | c1;
}
