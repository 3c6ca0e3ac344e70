//! Bitwise logic: PAND/PANDN/POR/PXOR and their PS/PD forms.

use super::operand_ext::binop;
use super::Handler;
use iced_x86::Mnemonic as M;

/// The handler of logic mnemonic `m`.
pub(super) fn lookup(m: M) -> Option<Handler> {
    let h: Handler = match m {
        M::Pand | M::Andps | M::Andpd => |c| binop(c, |a, b, _| a & b),
        M::Pandn | M::Andnps | M::Andnpd => |c| binop(c, |a, b, _| !a & b),
        M::Por | M::Orps | M::Orpd => |c| binop(c, |a, b, _| a | b),
        M::Pxor | M::Xorps | M::Xorpd => |c| binop(c, |a, b, _| a ^ b),
        _ => return None,
    };
    Some(h)
}
