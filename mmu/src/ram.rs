//! Guest physical RAM: one anonymous host mapping, zero-filled, touched lazily by the host.

use crate::{MmuError, PAGE_SIZE};
use memmap2::MmapMut;

/// The guest's physical RAM, `[0, size)`, backed by a single anonymous mapping so the JIT
/// can later reach it with one host addend per page.
pub struct GuestRam {
    map: MmapMut,
}

impl GuestRam {
    /// Maps `size` bytes of zeroed guest RAM.
    pub fn new(size: u64) -> Result<Self, MmuError> {
        if size == 0 || size % PAGE_SIZE != 0 {
            return Err(MmuError::BadRamSize(size));
        }
        let len = usize::try_from(size).map_err(|_| MmuError::BadRamSize(size))?;
        let map = MmapMut::map_anon(len).map_err(|source| MmuError::MapFailed { size, source })?;
        Ok(Self { map })
    }

    /// RAM size in bytes.
    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    /// The host bytes of `[addr, addr + len)`, if the whole range is RAM.
    pub fn slice(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(addr).ok()?;
        self.map.get(start..start.checked_add(len)?)
    }

    /// The mutable host bytes of `[addr, addr + len)`, if the whole range is RAM.
    pub fn slice_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        let start = usize::try_from(addr).ok()?;
        self.map.get_mut(start..start.checked_add(len)?)
    }

    /// Copies `len` bytes of RAM from `from` to `to` (as `memmove`); `false` if either range
    /// is not all RAM.
    pub fn copy(&mut self, from: u64, to: u64, len: usize) -> bool {
        let size = self.size();
        let fits = |addr: u64| addr.checked_add(len as u64).is_some_and(|end| end <= size);
        if !fits(from) || !fits(to) {
            return false;
        }
        let (from, to) = (from as usize, to as usize);
        self.map.copy_within(from..from + len, to);
        true
    }

    /// Copies `data` into RAM at `addr` (loaders and tests).
    pub fn write_bytes(&mut self, addr: u64, data: &[u8]) -> Result<(), MmuError> {
        let out_of_range = MmuError::OutOfRange {
            addr,
            len: data.len() as u64,
        };
        self.slice_mut(addr, data.len())
            .ok_or(out_of_range)?
            .copy_from_slice(data);
        Ok(())
    }

    /// Copies RAM at `addr` into `buf` (loaders and tests).
    pub fn read_bytes(&self, addr: u64, buf: &mut [u8]) -> Result<(), MmuError> {
        let out_of_range = MmuError::OutOfRange {
            addr,
            len: buf.len() as u64,
        };
        buf.copy_from_slice(self.slice(addr, buf.len()).ok_or(out_of_range)?);
        Ok(())
    }
}

/// Fills `bytes` with `pattern` (1, 2, 4 or 8 bytes) repeated, as REP STOS stores it; a
/// last partial element gets the pattern's first bytes.
pub fn fill_repeated(bytes: &mut [u8], pattern: &[u8]) {
    fn by<const N: usize>(bytes: &mut [u8], pattern: &[u8]) {
        let element: [u8; N] = core::array::from_fn(|i| pattern[i]);
        let mut chunks = bytes.chunks_exact_mut(N);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&element);
        }
        let tail = chunks.into_remainder();
        tail.copy_from_slice(&element[..tail.len()]);
    }
    match pattern.len() {
        1 => bytes.fill(pattern[0]),
        2 => by::<2>(bytes, pattern),
        4 => by::<4>(bytes, pattern),
        _ => by::<8>(bytes, pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_repeat_the_element_as_rep_stos_stores_it() {
        let mut bytes = [0u8; 11];
        fill_repeated(&mut bytes, &[1, 2, 3, 4]);
        assert_eq!(bytes, [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3]);
        fill_repeated(&mut bytes, &[9]);
        assert_eq!(bytes, [9; 11]);
        fill_repeated(&mut bytes[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(bytes[..9], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn rejects_unaligned_and_zero_sizes() {
        assert!(matches!(GuestRam::new(0), Err(MmuError::BadRamSize(0))));
        assert!(matches!(
            GuestRam::new(4097),
            Err(MmuError::BadRamSize(4097))
        ));
    }

    #[test]
    fn reads_back_writes_and_bounds_checks() {
        let mut ram = GuestRam::new(2 * PAGE_SIZE).unwrap();
        ram.write_bytes(4094, &[1, 2, 3, 4]).unwrap();
        let mut buf = [0u8; 4];
        ram.read_bytes(4094, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4]);
        assert!(ram.write_bytes(8190, &[0; 4]).is_err());
        assert!(ram.slice(u64::MAX, 2).is_none());
    }
}
