//! Placeholder for the simd_int instruction groups.

use super::operand::{Ctx, Exec};

/// Executes an instruction of this group, or returns `None` if the mnemonic is not one of its own.
pub(in crate::interp) fn execute(_ctx: &mut Ctx) -> Option<Exec> {
    None
}
