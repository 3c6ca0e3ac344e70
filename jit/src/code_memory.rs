//! Executable memory for generated code: one reserved range, filled front to back, so
//! blocks lie next to each other instead of one (or more) pages each.
//!
//! cranelift-jit's own providers give every finalization a fresh page-aligned segment.
//! The JIT finalizes after every block (a block must run as soon as it is compiled), so each
//! block of a few hundred bytes took a page of its own: thousands of pages for a boot's
//! code, an instruction-TLB entry for nearly every block transition. Here the code is
//! packed: a new function goes right after the last, the pages it touches are made
//! writable while it is placed (no generated code runs then: the guest's thread installs
//! code between blocks) and executable again when the module finalizes, so no page is ever
//! writable and executable at once.

use cranelift_jit::{BranchProtection, JITMemoryKind, JITMemoryProvider};
use cranelift_module::{ModuleError, ModuleResult};
use std::io;

/// Address space reserved for one backend's code (nothing is committed until used).
pub const ARENA_BYTES: usize = 1 << 30;

/// The host's page size as the arena manages protection.
const PAGE: usize = 4096;

/// A reserved range of address space that holds generated code. Dropping it leaks the
/// mapping (function pointers into it may still be held), like cranelift-jit's providers;
/// `free_memory` unmaps it.
pub struct CodeArena {
    base: *mut u8,
    size: usize,
    /// Bytes allocated so far.
    used: usize,
    /// Page-aligned byte range made writable since the last finalization.
    writable: Option<(usize, usize)>,
}

// SAFETY: the arena owns its mapping; the raw pointer is only an address inside it, and
// every use goes through `&mut self`.
unsafe impl Send for CodeArena {}

impl CodeArena {
    /// Reserves `size` bytes of address space (inaccessible until allocated).
    pub fn new(size: usize) -> io::Result<Self> {
        let size = size.next_multiple_of(PAGE);
        // SAFETY: a fresh anonymous private mapping at an address of the kernel's choosing;
        // it overlaps nothing Rust owns.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                size,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            base: base.cast(),
            size,
            used: 0,
            writable: None,
        })
    }

    /// Bytes of code placed so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Changes the protection of the arena's pages `[from, to)` (byte offsets, page-aligned).
    fn protect(&self, from: usize, to: usize, prot: libc::c_int) -> io::Result<()> {
        let start = self.base.wrapping_add(from).cast();
        // SAFETY: the range lies inside the arena's own mapping (callers pass offsets below
        // `self.size`), which nothing outside the arena refers to except code it placed.
        let result = unsafe { libc::mprotect(start, to - from, prot) };
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl JITMemoryProvider for CodeArena {
    fn allocate(&mut self, size: usize, align: u64, kind: JITMemoryKind) -> io::Result<*mut u8> {
        if !matches!(kind, JITMemoryKind::Executable) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the JIT's code arena holds code only",
            ));
        }
        let align = usize::try_from(align)
            .ok()
            .filter(|a| a.is_power_of_two() && *a <= PAGE)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "code alignment"))?;
        let start = self.used.next_multiple_of(align);
        let end = start
            .checked_add(size)
            .filter(|&end| end <= self.size)
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "code arena full"))?;
        // Allocations only move forward, so the new pages start at or after `from`.
        let pages = (start & !(PAGE - 1), end.next_multiple_of(PAGE));
        let writable = match self.writable {
            Some((from, to)) if pages.1 <= to => (from, to),
            Some((from, to)) => {
                self.protect(pages.0.max(to), pages.1, libc::PROT_READ | libc::PROT_WRITE)?;
                (from, pages.1)
            }
            None => {
                self.protect(pages.0, pages.1, libc::PROT_READ | libc::PROT_WRITE)?;
                pages
            }
        };
        self.writable = Some(writable);
        self.used = end;
        // SAFETY: `start < end <= self.size`: inside the arena's mapping.
        Ok(unsafe { self.base.add(start) })
    }

    unsafe fn free_memory(&mut self) {
        if self.base.is_null() {
            return;
        }
        // SAFETY: the whole mapping made in `new`; the caller guarantees no code in it runs
        // again.
        unsafe { libc::munmap(self.base.cast(), self.size) };
        self.base = core::ptr::null_mut();
        self.used = 0;
        self.writable = None;
    }

    fn finalize(&mut self, _branch_protection: BranchProtection) -> ModuleResult<()> {
        let Some((from, to)) = self.writable.take() else {
            return Ok(());
        };
        let backend = |e: io::Error| ModuleError::Backend(e.into());
        let start = self.base.wrapping_add(from).cast();
        // SAFETY: the range lies inside the arena's mapping and is readable.
        unsafe { wasmtime_internal_jit_icache_coherence::clear_cache(start, to - from) }
            .map_err(backend)?;
        self.protect(from, to, libc::PROT_READ | libc::PROT_EXEC)
            .map_err(backend)?;
        wasmtime_internal_jit_icache_coherence::pipeline_flush_mt().map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arena_refuses_what_it_cannot_hold() {
        let mut arena = CodeArena::new(2 * PAGE).unwrap();
        let first = arena.allocate(3000, 16, JITMemoryKind::Executable).unwrap();
        let second = arena.allocate(1000, 64, JITMemoryKind::Executable).unwrap();
        assert_eq!(second as usize - first as usize, 3008);
        // SAFETY: both allocations are writable until the arena is finalized.
        unsafe { first.write_bytes(0xcc, 3000) };
        // SAFETY: as above.
        unsafe { second.write_bytes(0xcc, 1000) };
        arena.finalize(BranchProtection::None).unwrap();
        // A third allocation shares the second's page, which becomes writable again.
        let third = arena.allocate(100, 16, JITMemoryKind::Executable).unwrap();
        // SAFETY: writable until the next finalization.
        unsafe { third.write_bytes(0xcc, 100) };
        let full = arena.allocate(PAGE, 16, JITMemoryKind::Executable);
        assert_eq!(full.unwrap_err().kind(), io::ErrorKind::OutOfMemory);
        let data = arena.allocate(8, 8, JITMemoryKind::Writable);
        assert_eq!(data.unwrap_err().kind(), io::ErrorKind::Unsupported);
        arena.finalize(BranchProtection::None).unwrap();
        // SAFETY: nothing placed in the arena runs.
        unsafe { arena.free_memory() };
    }
}
