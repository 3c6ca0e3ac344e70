//! The I/O APIC (version 0x20, 24 pins) at MMIO offsets IOREGSEL (0x00), IOWIN (0x10) and
//! EOI (0x40): the redirection table with vector, delivery and destination modes, polarity,
//! trigger mode, mask and remote IRR (polarity is stored; inputs are logical assertions). Edge inputs deliver on a rising (asserting) edge; a
//! level input delivers while asserted and its remote IRR is clear, and again after the EOI
//! if it is still asserted. Deliveries are returned to the caller, which routes them to a
//! local APIC.

/// The default physical base of the IOAPIC window.
pub const IOAPIC_DEFAULT_BASE: u64 = 0xfec0_0000;
/// Number of redirection entries (input pins).
pub const PINS: usize = 24;

const MASKED: u64 = 1 << 16;
const LEVEL: u64 = 1 << 15;
const REMOTE_IRR: u64 = 1 << 14;
/// Writable bits of an entry (delivery status and remote IRR are read-only).
const WRITABLE: u64 = 0xff00_0000_0001_afff;

/// An interrupt the IOAPIC sends to a local APIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The vector.
    pub vector: u8,
    /// Level-triggered (the APIC must report its EOI).
    pub level: bool,
    /// Destination APIC ID (physical mode) or logical mask.
    pub destination: u8,
    /// Delivery mode (0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT).
    pub mode: u8,
}

/// The I/O APIC.
#[derive(Clone, Debug)]
pub struct IoApic {
    id: u32,
    select: u32,
    entries: [u64; PINS],
    /// Current (electrical) level of each pin.
    lines: u32,
}

impl IoApic {
    /// An IOAPIC with ID `id`, all pins masked.
    pub fn new(id: u32) -> Self {
        IoApic {
            id,
            select: 0,
            entries: [MASKED; PINS],
            lines: 0,
        }
    }

    /// An MMIO read (32-bit) at `offset` in the window.
    pub fn mmio_read(&self, offset: u64) -> u32 {
        match offset {
            0x00 => self.select,
            0x10 => self.read_register(self.select),
            _ => 0,
        }
    }

    /// An MMIO write at `offset`; returns deliveries it caused (an EOI re-delivering a
    /// still-asserted level input, or an unmasked asserted level input).
    pub fn mmio_write(&mut self, offset: u64, value: u32) -> Vec<Delivery> {
        match offset {
            0x00 => {
                self.select = value & 0xff;
                Vec::new()
            }
            0x10 => self.write_register(self.select, value),
            0x40 => self.end_of_interrupt(value as u8),
            _ => Vec::new(),
        }
    }

    fn read_register(&self, index: u32) -> u32 {
        match index {
            0x00 => self.id << 24,
            // Version 0x20, maximum redirection entry 23.
            0x01 => 0x0017_0020,
            0x02 => self.id << 24,
            0x10..=0x3f => {
                let entry = self.entries[((index - 0x10) / 2) as usize];
                if index % 2 == 0 {
                    entry as u32
                } else {
                    (entry >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    fn write_register(&mut self, index: u32, value: u32) -> Vec<Delivery> {
        match index {
            0x00 => self.id = (value >> 24) & 0xf,
            0x10..=0x3f => {
                let pin = ((index - 0x10) / 2) as usize;
                let entry = &mut self.entries[pin];
                let (mask, shift) = if index % 2 == 0 {
                    (0xffff_ffffu64, 0)
                } else {
                    (0xffff_ffff_0000_0000, 32)
                };
                let fixed = *entry & !WRITABLE;
                *entry = (*entry & !mask) | ((u64::from(value) << shift) & mask);
                *entry = (*entry & WRITABLE) | fixed;
                return self.deliver_level(pin).into_iter().collect();
            }
            _ => {}
        }
        Vec::new()
    }

    /// Whether pin `pin` is asserted. Devices drive lines by logical assertion (see
    /// [`crate::IrqLine`]), so the polarity bit is kept for the guest but does not invert.
    fn asserted(&self, pin: usize) -> bool {
        self.lines & (1 << pin) != 0
    }

    fn delivery(&self, pin: usize) -> Delivery {
        let entry = self.entries[pin];
        Delivery {
            vector: entry as u8,
            level: entry & LEVEL != 0,
            destination: (entry >> 56) as u8,
            mode: ((entry >> 8) & 7) as u8,
        }
    }

    /// For a level-triggered, unmasked, asserted pin with remote IRR clear: deliver it.
    fn deliver_level(&mut self, pin: usize) -> Option<Delivery> {
        let entry = self.entries[pin];
        if entry & LEVEL == 0
            || entry & MASKED != 0
            || entry & REMOTE_IRR != 0
            || !self.asserted(pin)
        {
            return None;
        }
        self.entries[pin] |= REMOTE_IRR;
        Some(self.delivery(pin))
    }

    /// Drives input `pin`; returns the delivery it causes, if any.
    pub fn set_irq(&mut self, pin: usize, high: bool) -> Option<Delivery> {
        if pin >= PINS {
            return None;
        }
        let was_asserted = self.asserted(pin);
        if high {
            self.lines |= 1 << pin;
        } else {
            self.lines &= !(1 << pin);
        }
        let entry = self.entries[pin];
        if entry & LEVEL != 0 {
            return self.deliver_level(pin);
        }
        (entry & MASKED == 0 && !was_asserted && self.asserted(pin)).then(|| self.delivery(pin))
    }

    /// EOI for `vector` (from the local APIC's broadcast or the EOI register): clears remote
    /// IRR and re-delivers level inputs that are still asserted.
    pub fn end_of_interrupt(&mut self, vector: u8) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for pin in 0..PINS {
            let entry = self.entries[pin];
            if entry & REMOTE_IRR != 0 && entry as u8 == vector {
                self.entries[pin] &= !REMOTE_IRR;
                deliveries.extend(self.deliver_level(pin));
            }
        }
        deliveries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(ioapic: &mut IoApic, pin: u32, low: u32, high: u32) -> Vec<Delivery> {
        ioapic.mmio_write(0x00, 0x10 + 2 * pin + 1);
        ioapic.mmio_write(0x10, high);
        ioapic.mmio_write(0x00, 0x10 + 2 * pin);
        ioapic.mmio_write(0x10, low)
    }

    #[test]
    fn version_and_table_access() {
        let mut ioapic = IoApic::new(1);
        ioapic.mmio_write(0x00, 0x01);
        assert_eq!(ioapic.mmio_read(0x10), 0x0017_0020);
        program(&mut ioapic, 4, 0x0000_0034, 0x0100_0000);
        ioapic.mmio_write(0x00, 0x18);
        assert_eq!(ioapic.mmio_read(0x10), 0x34);
        ioapic.mmio_write(0x00, 0x19);
        assert_eq!(ioapic.mmio_read(0x10), 0x0100_0000);
    }

    #[test]
    fn edge_triggered_pin() {
        let mut ioapic = IoApic::new(0);
        assert_eq!(ioapic.set_irq(1, true), None, "masked at reset");
        program(&mut ioapic, 2, 0x30, 0);
        let d = ioapic.set_irq(2, true).unwrap();
        assert_eq!((d.vector, d.level), (0x30, false));
        assert_eq!(ioapic.set_irq(2, true), None, "no new edge");
        ioapic.set_irq(2, false);
        assert!(ioapic.set_irq(2, true).is_some());
    }

    #[test]
    fn level_triggered_pin_with_remote_irr() {
        let mut ioapic = IoApic::new(0);
        program(&mut ioapic, 9, 0x0000_a041, 0); // level, active low, vector 0x41
        assert_eq!(
            ioapic.mmio_read(0x10) & (1 << 13),
            1 << 13,
            "polarity is kept"
        );
        let d = ioapic.set_irq(9, true).unwrap();
        assert!(d.level);
        assert!(ioapic.set_irq(9, true).is_none(), "remote IRR set");
        let again = ioapic.end_of_interrupt(0x41);
        assert_eq!(again.len(), 1, "still asserted after EOI: delivered again");
        ioapic.set_irq(9, false);
        assert!(
            ioapic.mmio_write(0x40, 0x41).is_empty(),
            "deasserted: nothing more"
        );
        // A masked level input that is asserted is delivered when unmasked.
        program(&mut ioapic, 10, 0x0001_8042, 0);
        assert!(ioapic.set_irq(10, true).is_none());
        assert_eq!(program(&mut ioapic, 10, 0x0000_8042, 0).len(), 1);
    }
}
