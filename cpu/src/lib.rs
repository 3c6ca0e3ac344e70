//! The x86-64 CPU of softvisor: architectural state and the reference interpreter.
//!
//! [`CpuState`] is `#[repr(C)]` so that generated code can address its fields through the
//! offsets in [`offsets`]. [`interp::step`] decodes one instruction with iced-x86 and executes
//! it; every instruction is implemented here once, and the JIT calls back into it for the
//! instructions it does not translate itself.

pub mod cpuid;
pub mod decode_cache;
mod error;
mod exception;
pub mod flags;
pub mod interp;
pub mod offsets;
pub mod platform;
pub mod state;
pub mod system;
pub mod vcpu;
pub mod x87;

pub use error::CpuError;
pub use exception::Exception;
pub use flags::LazyFlags;
pub use interp::{step, StepOutcome};
pub use platform::{NoPlatform, Platform};
pub use state::{CpuState, SegReg, Segment, TableReg, X87State, F80};
