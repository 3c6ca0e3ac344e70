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

#[cfg(test)]
mod tests {
    use super::*;

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
