//! Segment and gate descriptors as they sit in the GDT, LDT and IDT, and how the CPU reads
//! them (implicit supervisor accesses) and converts them into its hidden caches.

use crate::state::Segment;
use crate::{CpuState, Exception};
use softvisor_mmu::Memory;

/// A raw 8-byte descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor(pub u64);

impl Descriptor {
    /// Base address bits 0-31.
    pub fn base(self) -> u64 {
        ((self.0 >> 16) & 0xff_ffff) | (((self.0 >> 56) & 0xff) << 24)
    }
    /// Limit in bytes, scaled by the granularity bit.
    pub fn limit(self) -> u32 {
        let raw = ((self.0 & 0xffff) | ((self.0 >> 32) & 0xf_0000)) as u32;
        if self.0 & (1 << 55) != 0 {
            (raw << 12) | 0xfff
        } else {
            raw
        }
    }
    /// The attributes in [`Segment::attrs`] layout.
    pub fn attrs(self) -> u16 {
        (((self.0 >> 40) & 0xff) | (((self.0 >> 52) & 0xf) << 12)) as u16
    }
    /// The 4-bit type field.
    pub fn kind(self) -> u8 {
        ((self.0 >> 40) & 0xf) as u8
    }
    /// S: code/data (true) or system (false).
    pub fn is_code_or_data(self) -> bool {
        self.0 & (1 << 44) != 0
    }
    /// DPL.
    pub fn dpl(self) -> u8 {
        ((self.0 >> 45) & 3) as u8
    }
    /// Present.
    pub fn present(self) -> bool {
        self.0 & (1 << 47) != 0
    }
    /// Code segment (type bit 3 with S set).
    pub fn is_code(self) -> bool {
        self.is_code_or_data() && self.kind() & 8 != 0
    }
    /// Conforming code segment.
    pub fn is_conforming(self) -> bool {
        self.is_code() && self.kind() & 4 != 0
    }
    /// Readable code or any data segment.
    pub fn is_readable(self) -> bool {
        self.is_code_or_data() && (!self.is_code() || self.kind() & 2 != 0)
    }
    /// Writable data segment.
    pub fn is_writable_data(self) -> bool {
        self.is_code_or_data() && !self.is_code() && self.kind() & 2 != 0
    }
    /// The L bit (64-bit code).
    pub fn long(self) -> bool {
        self.0 & (1 << 53) != 0
    }
    /// The hidden-cache form of this descriptor with `selector`.
    pub fn to_segment(self, selector: u16) -> Segment {
        Segment {
            base: self.base(),
            limit: self.limit(),
            selector,
            attrs: self.attrs(),
        }
    }
    /// The descriptor with its accessed bit set.
    pub fn accessed(self) -> Descriptor {
        Descriptor(self.0 | (1 << 40))
    }
}

/// A selector's parts.
pub fn selector_index(selector: u16) -> u64 {
    u64::from(selector >> 3)
}

/// Whether a selector is null (index 0 in the GDT).
pub fn is_null(selector: u16) -> bool {
    selector & !3 == 0
}

/// The linear address of the descriptor for `selector`, or #GP(selector) if it lies past
/// its table's limit (`extra` more bytes must fit too: 8 for 16-byte system descriptors).
pub fn descriptor_addr(cpu: &CpuState, selector: u16, extra: u64) -> Result<u64, Exception> {
    let (base, limit) = if selector & 4 != 0 {
        if cpu.ldtr.attrs & Segment::ATTR_P == 0 {
            return Err(Exception::GeneralProtection(selector & !3));
        }
        (cpu.ldtr.base, u64::from(cpu.ldtr.limit))
    } else {
        (cpu.gdtr.base, u64::from(cpu.gdtr.limit))
    };
    let offset = selector_index(selector) * 8;
    if offset + 7 + extra > limit {
        return Err(Exception::GeneralProtection(selector & !3));
    }
    Ok(base.wrapping_add(offset))
}

/// Reads the descriptor for `selector`.
pub fn read_descriptor(
    cpu: &CpuState,
    mem: &mut dyn Memory,
    selector: u16,
) -> Result<(Descriptor, u64), Exception> {
    let addr = descriptor_addr(cpu, selector, 0)?;
    let mut bytes = [0u8; 8];
    mem.read_supervisor(addr, &mut bytes)?;
    Ok((Descriptor(u64::from_le_bytes(bytes)), addr))
}

/// Reads the upper 8 bytes of a 16-byte system descriptor (long mode).
pub fn read_upper(mem: &mut dyn Memory, addr: u64) -> Result<u64, Exception> {
    let mut bytes = [0u8; 8];
    mem.read_supervisor(addr.wrapping_add(8), &mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// Sets the accessed bit of the descriptor at `addr` if it is clear.
pub fn mark_accessed(mem: &mut dyn Memory, addr: u64, desc: Descriptor) -> Result<(), Exception> {
    if desc.0 & (1 << 40) == 0 {
        mem.write_supervisor(addr.wrapping_add(5), &[(desc.accessed().0 >> 40) as u8])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_flat_code_descriptor() {
        // Linux's __KERNEL_CS in 64-bit mode: 0x00af9b000000ffff.
        let d = Descriptor(0x00af_9b00_0000_ffff);
        assert_eq!(d.base(), 0);
        assert_eq!(d.limit(), 0xffff_ffff);
        assert!(d.is_code() && d.long() && d.present() && d.is_readable());
        assert_eq!(d.dpl(), 0);
        assert_eq!(d.attrs(), 0xa09b);
        // A 32-bit data segment with base 0x12345678, byte granular limit 0x1234.
        let d = Descriptor(0x1240_9334_5678_1234);
        assert_eq!((d.base(), d.limit()), (0x1234_5678, 0x1234));
        assert!(d.is_writable_data() && !d.is_code());
    }
}
