//! The interrupt hub: the PIC pair, the I/O APIC and the local APIC, with ISA IRQs wired to
//! both controllers (IRQ 0 to I/O APIC pin 2, as the MADT override says) and the PIC's
//! output reaching the CPU through LINT0 while the local APIC passes ExtINT through.

use softvisor_devices::ioapic::Delivery;
use softvisor_devices::{IoApic, LocalApic, Pic};

/// The three interrupt controllers of the machine.
pub struct Interrupts {
    /// The i8259 pair.
    pub pic: Pic,
    /// The I/O APIC.
    pub ioapic: IoApic,
    /// The boot CPU's local APIC.
    pub lapic: LocalApic,
}

/// The I/O APIC pin an ISA IRQ arrives on.
pub fn ioapic_pin(irq: u8) -> usize {
    if irq == 0 {
        2
    } else {
        usize::from(irq)
    }
}

impl Interrupts {
    /// Controllers after reset.
    pub fn new() -> Self {
        Interrupts {
            pic: Pic::new(),
            ioapic: IoApic::new(0),
            lapic: LocalApic::new(0),
        }
    }

    /// Drives ISA IRQ `irq` on both controllers.
    pub fn set_isa_irq(&mut self, irq: u8, level: bool) {
        self.pic.set_irq(irq, level);
        let delivery = self.ioapic.set_irq(ioapic_pin(irq), level);
        self.route(delivery);
    }

    /// A rising and falling edge on ISA IRQ `irq`.
    pub fn pulse_isa_irq(&mut self, irq: u8) {
        self.set_isa_irq(irq, true);
        self.set_isa_irq(irq, false);
    }

    /// Hands I/O APIC deliveries to the local APIC (fixed and lowest-priority modes; with
    /// one CPU every destination is this CPU).
    pub fn route(&mut self, deliveries: impl IntoIterator<Item = Delivery>) {
        for d in deliveries {
            if matches!(d.mode, 0 | 1) {
                self.lapic.accept(d.vector, d.level);
            }
        }
    }

    /// An EOI the local APIC retired for a level-triggered vector goes to the I/O APIC.
    pub fn level_eoi(&mut self, vector: Option<u8>) {
        if let Some(vector) = vector {
            let deliveries = self.ioapic.end_of_interrupt(vector);
            self.route(deliveries);
        }
    }

    /// Whether the CPU has a maskable interrupt to take.
    pub fn pending(&self) -> bool {
        self.lapic.pending().is_some()
            || (self.lapic.lint0_passes_extint() && self.pic.interrupt_pending())
    }

    /// The INTA cycle: the local APIC's vector, or the PIC's through ExtINT.
    pub fn acknowledge(&mut self) -> Option<u8> {
        if self.lapic.pending().is_some() {
            return Some(self.lapic.acknowledge());
        }
        if self.lapic.lint0_passes_extint() && self.pic.interrupt_pending() {
            return Some(self.pic.acknowledge());
        }
        None
    }
}

impl Default for Interrupts {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pic_reaches_the_cpu_until_the_apic_takes_over() {
        let mut irqs = Interrupts::new();
        for (cmd, data, base, cascade) in [(0x20, 0x21, 0x30, 4), (0xa0, 0xa1, 0x38, 2)] {
            irqs.pic.write(cmd, 0x11);
            irqs.pic.write(data, base);
            irqs.pic.write(data, cascade);
            irqs.pic.write(data, 1);
        }
        irqs.pulse_isa_irq(4);
        assert!(irqs.pending(), "APIC software-disabled: ExtINT passes");
        assert_eq!(irqs.acknowledge(), Some(0x34));
        irqs.pic.write(0x20, 0x20);
        // Enable the APIC, mask the PIC, route IRQ 4 through the I/O APIC to vector 0x44.
        irqs.lapic.mmio_write(0xf0, 0x1ff, 0);
        irqs.pic.write(0x21, 0xff);
        irqs.ioapic.mmio_write(0, 0x18);
        irqs.ioapic.mmio_write(0x10, 0x44);
        irqs.pulse_isa_irq(4);
        assert_eq!(irqs.acknowledge(), Some(0x44));
        assert_eq!(irqs.acknowledge(), None);
    }
}
