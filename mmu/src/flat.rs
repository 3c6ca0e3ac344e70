//! Flat memory: linear address = physical address, RAM only. This is what the CPU runs on
//! until the page walker and TLB arrive; an access outside RAM faults like a not-present page.

use crate::{AccessKind, GuestRam, MemFault, Memory};

/// Guest memory with paging off and no MMIO: every linear address is a RAM offset.
pub struct FlatMemory {
    /// The backing RAM.
    pub ram: GuestRam,
}

impl FlatMemory {
    /// Wraps `ram`.
    pub fn new(ram: GuestRam) -> Self {
        Self { ram }
    }

    fn fault(addr: u64, kind: AccessKind) -> MemFault {
        let write_bit = u32::from(kind == AccessKind::Write) << 1;
        let fetch_bit = u32::from(kind == AccessKind::Execute) << 4;
        MemFault {
            addr,
            kind,
            error_code: write_bit | fetch_bit,
        }
    }

    /// The first address at or after `addr` that is not RAM, for the fault report.
    fn first_bad(&self, addr: u64) -> u64 {
        if addr >= self.ram.size() {
            addr
        } else {
            self.ram.size()
        }
    }
}

impl Memory for FlatMemory {
    fn read(&mut self, addr: u64, buf: &mut [u8], kind: AccessKind) -> Result<(), MemFault> {
        match self.ram.slice(addr, buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(Self::fault(self.first_bad(addr), kind)),
        }
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemFault> {
        let bad = self.first_bad(addr);
        match self.ram.slice_mut(addr, data.len()) {
            Some(dst) => {
                dst.copy_from_slice(data);
                Ok(())
            }
            None => Err(Self::fault(bad, AccessKind::Write)),
        }
    }

    fn is_ram(&mut self, linear: u64, _kind: AccessKind) -> bool {
        linear < self.ram.size()
    }

    fn fetch(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, MemFault> {
        let size = self.ram.size();
        if addr >= size {
            return Err(Self::fault(addr, AccessKind::Execute));
        }
        let len = buf.len().min((size - addr) as usize);
        buf[..len].copy_from_slice(self.ram.slice(addr, len).expect("range checked above"));
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_accesses_are_little_endian() {
        let mut mem = FlatMemory::new(GuestRam::new(4096).unwrap());
        mem.write_u32(8, 0x1122_3344).unwrap();
        assert_eq!(mem.read_u8(8).unwrap(), 0x44);
        assert_eq!(mem.read_u16(9).unwrap(), 0x2233);
        mem.write_u128(16, 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10)
            .unwrap();
        assert_eq!(mem.read_u64(24).unwrap(), 0x0102_0304_0506_0708);
    }

    #[test]
    fn out_of_range_faults_without_partial_write() {
        let mut mem = FlatMemory::new(GuestRam::new(4096).unwrap());
        let fault = mem.write_u32(4094, 0xdead_beef).unwrap_err();
        assert_eq!(fault.kind, AccessKind::Write);
        assert_eq!(fault.addr, 4096);
        assert_eq!(mem.read_u16(4094).unwrap(), 0);
        let mut buf = [0u8; 15];
        assert_eq!(mem.fetch(4090, &mut buf).unwrap(), 6);
        assert!(mem.fetch(4096, &mut buf).is_err());
    }
}
