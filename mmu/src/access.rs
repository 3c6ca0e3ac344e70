//! The memory-access trait the CPU executes through, and the fault it can return.
//!
//! Addresses are linear. Every access either completes whole or faults with nothing
//! written, so the CPU can keep exceptions precise. Values are little-endian regardless
//! of the host, so nothing here depends on the host's byte order or alignment rules.

/// Why memory is being touched; paging checks (U/S, R/W, NX) and the TLB tags depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Execute,
}

/// A failed access. The CPU turns it into the architectural exception (#PF with CR2 and an
/// error code once paging exists; for now an access outside RAM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemFault {
    /// The linear address of the first byte that could not be accessed.
    pub addr: u64,
    /// What kind of access failed.
    pub kind: AccessKind,
    /// The #PF error code (P, W/R, U/S, RSVD, I/D bits) the fault would push.
    pub error_code: u32,
}

/// Writes to one tracked code page since the last drain: the physical page and the span
/// of bytes they covered (from the lowest written byte to just after the highest), so that
/// only code decoded from those bytes need be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeWrite {
    /// The page's physical address (page-aligned).
    pub page: u64,
    /// Physical address of the first byte written.
    pub start: u64,
    /// Physical address just past the last byte written.
    pub end: u64,
}

impl CodeWrite {
    /// Whether the writes may have touched bytes in `start..end` (physical).
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        start < self.end && self.start < end
    }
}

/// Byte-level access to guest linear memory.
///
/// Implementors provide the three primitives; the sized helpers are provided on top. An
/// access that spans two pages must check both before writing either.
pub trait Memory {
    /// Reads `buf.len()` bytes at `addr` for an access of kind `kind`.
    fn read(&mut self, addr: u64, buf: &mut [u8], kind: AccessKind) -> Result<(), MemFault>;

    /// Writes `data` at `addr`; either every byte is written or none is.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemFault>;

    /// Fetches instruction bytes at `addr` into `buf`, returning how many bytes could be
    /// fetched before the first unreachable byte (at least one, or a fault).
    fn fetch(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, MemFault> {
        let mut got = 0;
        while got < buf.len() {
            match self.read(
                addr.wrapping_add(got as u64),
                &mut buf[got..got + 1],
                AccessKind::Execute,
            ) {
                Ok(()) => got += 1,
                Err(fault) if got == 0 => return Err(fault),
                Err(_) => break,
            }
        }
        Ok(got)
    }

    /// Reads with supervisor privilege whatever the CPL (descriptor tables, the TSS, the
    /// IDT): these implicit accesses ignore CPL 3 and RFLAGS.AC.
    fn read_supervisor(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        self.read(addr, buf, AccessKind::Read)
    }

    /// Writes with supervisor privilege whatever the CPL (accessed bits of descriptors,
    /// the TSS busy bit, exception frames pushed on a privilege change).
    fn write_supervisor(&mut self, addr: u64, data: &[u8]) -> Result<(), MemFault> {
        self.write(addr, data)
    }

    /// Tells the memory system the paging registers or the CPL changed. Memories without
    /// paging ignore it.
    fn set_paging(&mut self, _ctx: &crate::paging::PagingContext) {}

    /// INVLPG: forget any cached translation of the page holding `linear`.
    fn invalidate_page(&mut self, _linear: u64) {}

    /// MOV to CR3 (even of the value it already holds): forget the non-global
    /// translations, or all of them when CR4.PGE is clear. Call after [`Memory::set_paging`].
    fn flush_tlb(&mut self) {}

    /// The physical address an instruction fetch at `linear` reaches, when it is in RAM
    /// whose writes this memory reports: the page is then tracked as code, and a later
    /// write to it shows up in [`Memory::take_written_code`]. `None` (a fault, MMIO, or a
    /// memory that does not track code) means decoded instructions must not be reused.
    fn code_address(&mut self, _linear: u64) -> Option<u64> {
        None
    }

    /// The tracked code pages written since the last call, each with the span of the bytes
    /// written there. They stop being tracked until [`Memory::code_address`] reaches them
    /// again, or [`Memory::track_code_page`] keeps them.
    fn take_written_code(&mut self) -> Vec<CodeWrite> {
        Vec::new()
    }

    /// Tracks the RAM page holding `phys` as code again, at once: code decoded from the
    /// rest of the page outlived a write reported by [`Memory::take_written_code`].
    fn track_code_page(&mut self, _phys: u64) {}

    /// The TLB generated code may probe inline (see [`crate::tlb`] for its layout), if this
    /// memory keeps one. Every access its tags allow must be plain RAM with no side effect.
    fn fast_tlb(&mut self) -> Option<&mut crate::tlb::Tlb> {
        None
    }

    /// Whether an access of kind `kind` at `linear` would reach RAM (not MMIO, no fault), so
    /// that a page-sized run of accesses may be done as one (bulk REP MOVS/STOS). It has
    /// the side effects of the access's translation (accessed and dirty bits). `false`
    /// (the default) keeps callers on element-by-element accesses.
    fn is_ram(&mut self, _linear: u64, _kind: AccessKind) -> bool {
        false
    }

    /// Reads `size` bytes (1, 2, 4 or 8) at `addr` if that is a plain RAM access: it
    /// translates without a fault (setting accessed bits as the access would) and reaches
    /// only RAM. Otherwise does nothing else and returns `None`, and the caller makes the
    /// access through [`Memory::read`], which also handles MMIO and faults. `None` (the
    /// default) is always correct.
    fn read_plain(&mut self, _addr: u64, _size: usize) -> Option<u64> {
        None
    }

    /// Writes the low `size` bytes (1, 2, 4 or 8) of `value` at `addr` if that is a plain
    /// RAM access: as [`Memory::read_plain`], and no page written holds tracked code.
    /// Returns whether it wrote.
    fn write_plain(&mut self, _addr: u64, _size: usize, _value: u64) -> bool {
        false
    }

    /// Copies `len` bytes from `src` to `dst` (linear; each run within one page) if both
    /// are plain RAM accesses, as for [`Memory::read_plain`] and [`Memory::write_plain`],
    /// and the copy comes out as a byte-by-byte forward copy would: the RAM runs apart, or
    /// the destination below the source. Bulk REP MOVS straight from RAM to RAM. Returns
    /// whether it copied; `false` (the default) leaves the caller to [`Memory::read`] and
    /// [`Memory::write`].
    fn copy_plain(&mut self, _src: u64, _dst: u64, _len: usize) -> bool {
        false
    }

    /// Fills `len` bytes at `dst` (linear, within one page) with `pattern` repeated, if
    /// that is a plain RAM write (see [`Memory::write_plain`]): bulk REP STOS. Returns
    /// whether it wrote.
    fn fill_plain(&mut self, _dst: u64, _pattern: &[u8], _len: usize) -> bool {
        false
    }

    /// Whether an access since the last call did something a translated block must stop
    /// after: it reached MMIO (a device may now raise an interrupt) or wrote a tracked code
    /// page. Clears the MMIO part; written code pages stay until [`Memory::take_written_code`].
    fn take_side_exit(&mut self) -> bool {
        false
    }

    /// Reads an unsigned little-endian value of `size` bytes (1, 2, 4 or 8).
    fn read_sized(&mut self, addr: u64, size: usize) -> Result<u64, MemFault> {
        let mut bytes = [0u8; 8];
        self.read(addr, &mut bytes[..size], AccessKind::Read)?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Writes the low `size` bytes (1, 2, 4 or 8) of `value`, little-endian.
    fn write_sized(&mut self, addr: u64, size: usize, value: u64) -> Result<(), MemFault> {
        self.write(addr, &value.to_le_bytes()[..size])
    }

    /// Reads a byte.
    fn read_u8(&mut self, addr: u64) -> Result<u8, MemFault> {
        Ok(self.read_sized(addr, 1)? as u8)
    }
    /// Reads a little-endian u16.
    fn read_u16(&mut self, addr: u64) -> Result<u16, MemFault> {
        Ok(self.read_sized(addr, 2)? as u16)
    }
    /// Reads a little-endian u32.
    fn read_u32(&mut self, addr: u64) -> Result<u32, MemFault> {
        Ok(self.read_sized(addr, 4)? as u32)
    }
    /// Reads a little-endian u64.
    fn read_u64(&mut self, addr: u64) -> Result<u64, MemFault> {
        self.read_sized(addr, 8)
    }
    /// Reads a little-endian u128 (SSE operands).
    fn read_u128(&mut self, addr: u64) -> Result<u128, MemFault> {
        let mut bytes = [0u8; 16];
        self.read(addr, &mut bytes, AccessKind::Read)?;
        Ok(u128::from_le_bytes(bytes))
    }
    /// Writes a byte.
    fn write_u8(&mut self, addr: u64, value: u8) -> Result<(), MemFault> {
        self.write(addr, &[value])
    }
    /// Writes a little-endian u16.
    fn write_u16(&mut self, addr: u64, value: u16) -> Result<(), MemFault> {
        self.write(addr, &value.to_le_bytes())
    }
    /// Writes a little-endian u32.
    fn write_u32(&mut self, addr: u64, value: u32) -> Result<(), MemFault> {
        self.write(addr, &value.to_le_bytes())
    }
    /// Writes a little-endian u64.
    fn write_u64(&mut self, addr: u64, value: u64) -> Result<(), MemFault> {
        self.write(addr, &value.to_le_bytes())
    }
    /// Writes a little-endian u128.
    fn write_u128(&mut self, addr: u64, value: u128) -> Result<(), MemFault> {
        self.write(addr, &value.to_le_bytes())
    }
}
