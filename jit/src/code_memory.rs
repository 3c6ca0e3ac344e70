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
//!
//! That costs two `mprotect` calls per block, and each change of a page's protection
//! interrupts the compile thread's core to flush its TLB. Blocks without relocations (all
//! but those calling a Cranelift libcall) go to a [`DualArena`] instead: one shared-memory
//! file mapped twice, read-write where code is copied in and read-execute where it runs, so
//! placing a block is a copy and no mapping ever changes. (No view is both writable and
//! executable; the writable one is known only to this process.)

use cranelift_jit::{BranchProtection, JITMemoryKind, JITMemoryProvider};
use cranelift_module::{ModuleError, ModuleResult};
use std::io;

/// Address space reserved for one backend's code (nothing is committed until used).
pub const ARENA_BYTES: usize = 1 << 30;

/// The host's page size as the arena manages protection.
const PAGE: usize = 4096;

/// The byte range `len` bytes take at the first `align`-byte boundary from `used`, in an
/// arena of `size` bytes filled front to back.
fn bump(used: usize, size: usize, len: usize, align: u64) -> io::Result<(usize, usize)> {
    let align = usize::try_from(align)
        .ok()
        .filter(|a| a.is_power_of_two() && *a <= PAGE)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "code alignment"))?;
    let start = used.next_multiple_of(align);
    let end = start
        .checked_add(len)
        .filter(|&end| end <= size)
        .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "code arena full"))?;
    Ok((start, end))
}

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
        let (start, end) = bump(self.used, self.size, size, align)?;
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

/// Code memory mapped twice (see the module's doc): functions are copied in through a
/// writable view and run from an executable view of the same pages. Dropping it leaks the
/// mappings, like [`CodeArena`]; [`DualArena::free`] unmaps them.
pub struct DualArena {
    /// The writable view.
    write: *mut u8,
    /// The executable view.
    exec: *mut u8,
    size: usize,
    /// Bytes placed so far.
    used: usize,
}

// SAFETY: the arena owns both mappings; the pointers are only addresses inside them, and
// every write goes through `&mut self`.
unsafe impl Send for DualArena {}

impl DualArena {
    /// Creates a shared-memory file of `size` bytes (nothing committed until written) and
    /// maps it twice.
    pub fn new(size: usize) -> io::Result<Self> {
        let size = size.next_multiple_of(PAGE);
        // SAFETY: the name is a NUL-terminated string; the call only creates a descriptor.
        let fd = unsafe { libc::memfd_create(c"softvisor-jit-code".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mapped = Self::map_views(fd, size);
        // SAFETY: `fd` was opened above; the mappings (if made) keep the file alive.
        unsafe { libc::close(fd) };
        let (write, exec) = mapped?;
        Ok(Self {
            write,
            exec,
            size,
            used: 0,
        })
    }

    /// Sizes the file `fd` and maps it writable and executable.
    fn map_views(fd: libc::c_int, size: usize) -> io::Result<(*mut u8, *mut u8)> {
        let length = libc::off_t::try_from(size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "code arena size"))?;
        // SAFETY: `fd` is a memfd this arena just created.
        if unsafe { libc::ftruncate(fd, length) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let map = |prot| {
            // SAFETY: a new shared mapping of the whole file at an address of the kernel's
            // choosing; it overlaps nothing Rust owns.
            let view = unsafe {
                libc::mmap(
                    core::ptr::null_mut(),
                    size,
                    prot,
                    libc::MAP_SHARED | libc::MAP_NORESERVE,
                    fd,
                    0,
                )
            };
            if view == libc::MAP_FAILED {
                Err(io::Error::last_os_error())
            } else {
                Ok(view.cast::<u8>())
            }
        };
        let write = map(libc::PROT_READ | libc::PROT_WRITE)?;
        match map(libc::PROT_READ | libc::PROT_EXEC) {
            Ok(exec) => Ok((write, exec)),
            Err(e) => {
                // SAFETY: the view mapped just above, not handed out.
                unsafe { libc::munmap(write.cast(), size) };
                Err(e)
            }
        }
    }

    /// Bytes of code placed so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Copies `code` (position-independent: no relocations) in at an `align`-byte boundary
    /// and returns where it runs, ready to run on this thread.
    pub fn place(&mut self, code: &[u8], align: u64) -> io::Result<*const u8> {
        if self.write.is_null() {
            return Err(io::Error::other("the code arena was freed"));
        }
        let (start, end) = bump(self.used, self.size, code.len(), align)?;
        let into = self.write.wrapping_add(start);
        // SAFETY: `start..end` lies inside the writable view, past everything placed so far
        // (so no code that may run is overwritten), and `code` is a separate allocation.
        unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), into, code.len()) };
        self.used = end;
        let run_at = self.exec.wrapping_add(start);
        // The executable view sees the bytes; its instruction cache may not (aarch64).
        // SAFETY: the range lies inside the executable view and is readable.
        unsafe { wasmtime_internal_jit_icache_coherence::clear_cache(run_at.cast(), code.len()) }?;
        wasmtime_internal_jit_icache_coherence::pipeline_flush_mt()?;
        Ok(run_at)
    }

    /// Unmaps both views.
    ///
    /// # Safety
    /// No code placed in the arena may run again.
    pub unsafe fn free(&mut self) {
        if self.write.is_null() {
            return;
        }
        for view in [self.write, self.exec] {
            // SAFETY: one of the two mappings made in `new`; the caller guarantees none of
            // their code runs again.
            unsafe { libc::munmap(view.cast(), self.size) };
        }
        self.write = core::ptr::null_mut();
        self.exec = core::ptr::null_mut();
        self.used = 0;
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

    #[test]
    fn code_placed_through_the_writable_view_runs_from_the_executable_one() {
        let mut arena = DualArena::new(2 * PAGE).unwrap();
        // `mov eax, 42; ret` (x86-64) or `mov w0, #42; ret` (aarch64).
        #[cfg(target_arch = "x86_64")]
        let code: &[u8] = &[0xb8, 42, 0, 0, 0, 0xc3];
        #[cfg(target_arch = "aarch64")]
        let code: &[u8] = &[0x40, 0x05, 0x80, 0x52, 0xc0, 0x03, 0x5f, 0xd6];
        let first = arena.place(code, 16).unwrap();
        let second = arena.place(code, 16).unwrap();
        assert_eq!(
            second as usize - first as usize,
            code.len().next_multiple_of(16)
        );
        for f in [first, second] {
            // SAFETY: `f` holds the function above, a C-ABI function of no arguments.
            let f = unsafe { std::mem::transmute::<*const u8, extern "C" fn() -> u32>(f) };
            assert_eq!(f(), 42);
        }
        let full = arena.place(&vec![0; 2 * PAGE], 16);
        assert_eq!(full.unwrap_err().kind(), io::ErrorKind::OutOfMemory);
        // SAFETY: nothing placed in the arena runs again.
        unsafe { arena.free() };
        assert!(arena.place(code, 16).is_err());
    }
}
