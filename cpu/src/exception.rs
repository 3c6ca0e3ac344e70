//! Architectural exceptions an instruction can raise, with their vectors and error codes.

use softvisor_mmu::MemFault;

/// An x86 exception raised by an instruction. The instruction that raised it has not
/// changed any architectural state (see [`crate::interp::step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exception {
    /// #DE, vector 0: divide by zero or quotient overflow.
    DivideError,
    /// #DB, vector 1.
    Debug,
    /// #BP, vector 3 (INT3).
    Breakpoint,
    /// #OF, vector 4 (INTO with OF set).
    Overflow,
    /// #BR, vector 5.
    BoundRange,
    /// #UD, vector 6: invalid or unimplemented opcode.
    InvalidOpcode,
    /// #NM, vector 7: x87/SSE used while CR0.TS or CR0.EM forbids it.
    DeviceNotAvailable,
    /// #DF, vector 8.
    DoubleFault,
    /// #TS, vector 10, with a selector error code.
    InvalidTss(u16),
    /// #NP, vector 11, with a selector error code.
    SegmentNotPresent(u16),
    /// #SS, vector 12, with a selector error code.
    StackFault(u16),
    /// #GP, vector 13, with a selector error code (0 for most causes).
    GeneralProtection(u16),
    /// #PF, vector 14: the faulting linear address (for CR2) and the error code.
    PageFault {
        /// Linear address that faulted.
        addr: u64,
        /// #PF error code.
        error_code: u32,
    },
    /// #MF, vector 16: unmasked x87 exception.
    X87Fpu,
    /// #AC, vector 17.
    AlignmentCheck,
    /// #XM, vector 19: unmasked SIMD floating-point exception.
    SimdFp,
}

impl Exception {
    /// The IDT vector of this exception.
    pub fn vector(self) -> u8 {
        match self {
            Exception::DivideError => 0,
            Exception::Debug => 1,
            Exception::Breakpoint => 3,
            Exception::Overflow => 4,
            Exception::BoundRange => 5,
            Exception::InvalidOpcode => 6,
            Exception::DeviceNotAvailable => 7,
            Exception::DoubleFault => 8,
            Exception::InvalidTss(_) => 10,
            Exception::SegmentNotPresent(_) => 11,
            Exception::StackFault(_) => 12,
            Exception::GeneralProtection(_) => 13,
            Exception::PageFault { .. } => 14,
            Exception::X87Fpu => 16,
            Exception::AlignmentCheck => 17,
            Exception::SimdFp => 19,
        }
    }

    /// The error code pushed with this exception, if it has one.
    pub fn error_code(self) -> Option<u32> {
        match self {
            Exception::InvalidTss(sel)
            | Exception::SegmentNotPresent(sel)
            | Exception::StackFault(sel)
            | Exception::GeneralProtection(sel) => Some(u32::from(sel)),
            Exception::PageFault { error_code, .. } => Some(error_code),
            Exception::DoubleFault | Exception::AlignmentCheck => Some(0),
            _ => None,
        }
    }
}

impl From<MemFault> for Exception {
    fn from(fault: MemFault) -> Self {
        Exception::PageFault {
            addr: fault.addr,
            error_code: fault.error_code,
        }
    }
}
