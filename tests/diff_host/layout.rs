//! Fixed guest addresses shared by the native runner and the interpreter side. Both run the
//! instruction at the same linear addresses, so pointers, RIP-relative operands and pushed
//! return addresses agree bit for bit. Everything sits below 4 GiB so 32-bit addressing
//! (the 0x67 prefix) reaches it too.

/// The page holding the instruction under test and its exit stubs.
pub const CODE_BASE: u64 = 0x1000_0000;
/// Where the instruction under test starts.
pub const INSN_ADDR: u64 = CODE_BASE + 0x40;
/// Where a taken branch lands (an exit stub that reports "taken").
pub const TAKEN_ADDR: u64 = CODE_BASE + 0xa0;
/// Scratch data (memory operands and the stack) right after the code page.
pub const SCRATCH_BASE: u64 = CODE_BASE + 0x1000;
/// Size of the scratch area; the page after it is unmapped, so overruns fault.
pub const SCRATCH_SIZE: usize = 0x2000;
/// Byte the code page is filled with around the instruction (INT3), on both sides.
pub const CODE_FILL: u8 = 0xcc;
/// Everything the instruction may legitimately touch: code page plus scratch.
pub const WINDOW_SIZE: usize = 0x1000 + SCRATCH_SIZE;
