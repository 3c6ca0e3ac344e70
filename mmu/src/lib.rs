//! Guest memory for softvisor: physical RAM and the interface the CPU reaches memory through.
//!
//! The CPU never touches host memory directly. It calls [`Memory`] with a *linear* address
//! (segmentation already applied) and gets bytes or a [`MemFault`]. Today the only
//! implementation is [`FlatMemory`] (linear = physical, no paging); the page walker and the
//! software TLB of the system-mode work slot in behind the same trait.

mod access;
pub mod bus;
mod error;
mod flat;
pub mod paging;
mod ram;
mod system;
pub mod tlb;

pub use access::{AccessKind, CodeWrite, MemFault, Memory};
pub use error::MmuError;
pub use flat::FlatMemory;
pub use ram::{fill_repeated, GuestRam};
pub use system::SystemMemory;

/// Size of a guest page (4 KiB); the unit of translation and of code-page tracking.
pub const PAGE_SIZE: u64 = 4096;
