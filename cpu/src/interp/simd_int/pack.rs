//! Packs with saturation: PACKSSWB, PACKSSDW, PACKUSWB, PACKUSDW.

use super::lanes::{count, from_fn, get, Lane};
use super::operand_ext::binop;
use super::{Ctx, Exec, Handler};
use iced_x86::Mnemonic as M;

/// Narrows every lane of dst then src into one vector (dst in the low half).
fn pack<S: Lane, D: Lane>(ctx: &mut Ctx, narrow: fn(S) -> D) -> Exec {
    binop(ctx, |a, b, w| {
        let half = count::<S>(w);
        from_fn::<D>(w, |i| {
            narrow(if i < half {
                get(a, i)
            } else {
                get(b, i - half)
            })
        })
    })
}

/// The handler of pack mnemonic `m`.
pub(super) fn lookup(m: M) -> Option<Handler> {
    let h: Handler = match m {
        M::Packsswb => |c| pack(c, |x: i16| x.clamp(i8::MIN.into(), i8::MAX.into()) as i8),
        M::Packssdw => |c| pack(c, |x: i32| x.clamp(i16::MIN.into(), i16::MAX.into()) as i16),
        M::Packuswb => |c| pack(c, |x: i16| x.clamp(0, u8::MAX.into()) as u8),
        M::Packusdw => |c| pack(c, |x: i32| x.clamp(0, u16::MAX.into()) as u16),
        _ => return None,
    };
    Some(h)
}
