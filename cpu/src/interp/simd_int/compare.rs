//! Lane-wise integer compares: PCMPEQB/W/D/Q and PCMPGTB/W/D/Q.

use super::lanes::{all_ones, map2, Lane};
use super::operand_ext::binop;
use super::{Ctx, Exec, Handler};
use iced_x86::Mnemonic as M;

/// `dst = all ones where test(dst, src) else zero`, lane by lane.
fn compare<T: Lane>(ctx: &mut Ctx, test: fn(T, T) -> bool) -> Exec {
    binop(ctx, |a, b, w| {
        map2::<T>(a, b, w, |x, y| all_ones(test(x, y)))
    })
}

/// The handler of compare mnemonic `m`.
pub(super) fn lookup(m: M) -> Option<Handler> {
    let h: Handler = match m {
        M::Pcmpeqb => |c| compare::<u8>(c, |a, b| a == b),
        M::Pcmpeqw => |c| compare::<u16>(c, |a, b| a == b),
        M::Pcmpeqd => |c| compare::<u32>(c, |a, b| a == b),
        M::Pcmpeqq => |c| compare::<u64>(c, |a, b| a == b),
        M::Pcmpgtb => |c| compare::<i8>(c, |a, b| a > b),
        M::Pcmpgtw => |c| compare::<i16>(c, |a, b| a > b),
        M::Pcmpgtd => |c| compare::<i32>(c, |a, b| a > b),
        M::Pcmpgtq => |c| compare::<i64>(c, |a, b| a > b),
        _ => return None,
    };
    Some(h)
}
