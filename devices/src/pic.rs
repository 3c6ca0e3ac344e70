//! The i8259A programmable interrupt controller pair of a PC: master at ports 0x20/0x21,
//! slave at 0xa0/0xa1 cascaded on the master's IRQ 2, plus the ELCR (ports 0x4d0/0x4d1)
//! that makes each IRQ edge- or level-triggered.
//!
//! Implemented: the ICW1-ICW4 initialization sequence, the vector base, OCW1 (mask),
//! OCW2 (non-specific and specific EOI, rotate on EOI), OCW3 (read IRR/ISR, poll, special
//! mask mode), auto-EOI, fixed and rotating priority, and the spurious IRQ 7/15 on an
//! acknowledge with nothing left to serve.

/// One 8259A.
#[derive(Clone, Debug)]
struct Chip {
    /// Interrupt request register.
    irr: u8,
    /// In-service register.
    isr: u8,
    /// Interrupt mask register.
    imr: u8,
    /// Current level of each input line (edge detection and level mode).
    lines: u8,
    /// Level-triggered inputs (ELCR).
    level_mode: u8,
    /// ICW2: vector of IRQ 0.
    vector_base: u8,
    /// Lowest-priority IRQ: IRQ (lowest + 1) % 8 has the highest priority.
    lowest_priority: u8,
    /// Which ICW the chip expects next (0 = initialized).
    init_step: u8,
    /// ICW1 said ICW4 follows.
    expects_icw4: bool,
    /// ICW1 single mode (no ICW3).
    single: bool,
    auto_eoi: bool,
    rotate_on_auto_eoi: bool,
    /// OCW3: read the ISR instead of the IRR.
    read_isr: bool,
    /// OCW3: the next read of the command port polls.
    poll: bool,
    special_mask: bool,
}

impl Default for Chip {
    /// The reset state: IRQ 0 has the highest priority (IRQ 7 the lowest).
    fn default() -> Self {
        Chip {
            irr: 0,
            isr: 0,
            imr: 0,
            lines: 0,
            level_mode: 0,
            vector_base: 0,
            lowest_priority: 7,
            init_step: 0,
            expects_icw4: false,
            single: false,
            auto_eoi: false,
            rotate_on_auto_eoi: false,
            read_isr: false,
            poll: false,
            special_mask: false,
        }
    }
}

impl Chip {
    /// The highest-priority IRQ in `bits`, if any.
    fn highest(&self, bits: u8) -> Option<u8> {
        (1..=8)
            .map(|i| (self.lowest_priority + i) % 8)
            .find(|&irq| bits & (1 << irq) != 0)
    }

    /// The IRQ this chip would raise now: the highest-priority unmasked request that beats
    /// everything in service (special mask mode ignores in-service levels that are masked).
    fn pending(&self) -> Option<u8> {
        let requests = self.irr & !self.imr;
        let irq = self.highest(requests)?;
        let in_service = if self.special_mask {
            self.isr & !self.imr
        } else {
            self.isr
        };
        match self.highest(in_service) {
            Some(busy) if self.priority(busy) <= self.priority(irq) => None,
            _ => Some(irq),
        }
    }

    /// Priority rank of an IRQ: 0 is highest.
    fn priority(&self, irq: u8) -> u8 {
        (irq + 8 - (self.lowest_priority + 1) % 8) % 8
    }

    fn set_line(&mut self, irq: u8, high: bool) {
        let bit = 1 << irq;
        let was_high = self.lines & bit != 0;
        if high {
            self.lines |= bit;
            if self.level_mode & bit != 0 || !was_high {
                self.irr |= bit;
            }
        } else {
            self.lines &= !bit;
            if self.level_mode & bit != 0 {
                self.irr &= !bit;
            }
        }
    }

    /// INTA: moves the pending IRQ to in-service and returns it.
    fn acknowledge(&mut self) -> Option<u8> {
        let irq = self.pending()?;
        let bit = 1 << irq;
        if self.level_mode & bit == 0 {
            self.irr &= !bit;
        }
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.lowest_priority = irq;
            }
        } else {
            self.isr |= bit;
        }
        Some(irq)
    }

    fn write_command(&mut self, value: u8) {
        if value & 0x10 != 0 {
            // ICW1: start initialization.
            *self = Chip {
                level_mode: self.level_mode,
                lines: self.lines,
                ..Chip::default()
            };
            self.expects_icw4 = value & 1 != 0;
            self.single = value & 2 != 0;
            self.init_step = 2;
        } else if value & 0x08 == 0 {
            self.write_ocw2(value);
        } else {
            // OCW3.
            if value & 0x02 != 0 {
                self.read_isr = value & 0x01 != 0;
            }
            self.poll = value & 0x04 != 0;
            if value & 0x40 != 0 {
                self.special_mask = value & 0x20 != 0;
            }
        }
    }

    /// OCW2: EOIs and priority rotation.
    fn write_ocw2(&mut self, value: u8) {
        let level = value & 7;
        match value >> 5 {
            // Non-specific EOI (with rotation when R is set).
            0b001 | 0b101 => {
                if let Some(irq) = self.highest(self.isr) {
                    self.isr &= !(1 << irq);
                    if value & 0x80 != 0 {
                        self.lowest_priority = irq;
                    }
                }
            }
            // Specific EOI (with rotation when R is set).
            0b011 | 0b111 => {
                self.isr &= !(1 << level);
                if value & 0x80 != 0 {
                    self.lowest_priority = level;
                }
            }
            0b100 => self.rotate_on_auto_eoi = true,
            0b000 => self.rotate_on_auto_eoi = false,
            // Set priority: `level` becomes the lowest.
            0b110 => self.lowest_priority = level,
            _ => {}
        }
    }

    fn write_data(&mut self, value: u8) {
        match self.init_step {
            2 => {
                self.vector_base = value & 0xf8;
                self.init_step = if !self.single {
                    3
                } else if self.expects_icw4 {
                    4
                } else {
                    0
                };
            }
            3 => self.init_step = if self.expects_icw4 { 4 } else { 0 },
            4 => {
                self.auto_eoi = value & 0x02 != 0;
                self.init_step = 0;
            }
            _ => self.imr = value,
        }
    }

    fn read_command(&mut self) -> u8 {
        if std::mem::take(&mut self.poll) {
            return match self.acknowledge() {
                Some(irq) => 0x80 | irq,
                None => 0,
            };
        }
        if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }
}

/// The master/slave pair.
#[derive(Clone, Debug, Default)]
pub struct Pic {
    chips: [Chip; 2],
}

/// The IRQ the slave is cascaded on.
const CASCADE: u8 = 2;

impl Pic {
    /// A pair in its reset state (uninitialized, nothing masked, all edge-triggered).
    pub fn new() -> Self {
        Self::default()
    }

    /// Drives IRQ line `irq` (0-15).
    pub fn set_irq(&mut self, irq: u8, high: bool) {
        let chip = usize::from(irq >= 8);
        self.chips[chip].set_line(irq % 8, high);
        self.update_cascade();
    }

    /// The slave's output is the master's IRQ 2 line, seen as a level: a request the slave
    /// withdraws is withdrawn from the master too.
    fn update_cascade(&mut self) {
        let slave_out = self.chips[1].pending().is_some();
        let master = &mut self.chips[0];
        master.set_line(CASCADE, slave_out);
        if !slave_out {
            master.irr &= !(1 << CASCADE);
        }
    }

    /// Whether the pair asserts INTR to the CPU.
    pub fn interrupt_pending(&self) -> bool {
        self.chips[0].pending().is_some()
    }

    /// The INTA cycle: the vector of the highest-priority request, which becomes in
    /// service. With nothing to serve, the spurious vector of IRQ 7 (or IRQ 15).
    pub fn acknowledge(&mut self) -> u8 {
        let master = &mut self.chips[0];
        let vector = match master.acknowledge() {
            Some(CASCADE) => {
                let slave = &mut self.chips[1];
                match slave.acknowledge() {
                    Some(irq) => slave.vector_base + irq,
                    None => slave.vector_base + 7,
                }
            }
            Some(irq) => master.vector_base + irq,
            None => master.vector_base + 7,
        };
        self.update_cascade();
        vector
    }

    /// A port read (0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1).
    pub fn read(&mut self, port: u16) -> u8 {
        let value = match port {
            0x20 | 0xa0 => self.chips[usize::from(port == 0xa0)].read_command(),
            0x21 | 0xa1 => self.chips[usize::from(port == 0xa1)].imr,
            0x4d0 | 0x4d1 => self.chips[usize::from(port == 0x4d1)].level_mode,
            _ => 0xff,
        };
        self.update_cascade();
        value
    }

    /// A port write (0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1).
    pub fn write(&mut self, port: u16, value: u8) {
        match port {
            0x20 | 0xa0 => self.chips[usize::from(port == 0xa0)].write_command(value),
            0x21 | 0xa1 => self.chips[usize::from(port == 0xa1)].write_data(value),
            // IRQs 0, 1, 2, 8 and 13 cannot be level-triggered.
            0x4d0 => self.chips[0].level_mode = value & 0xf8,
            0x4d1 => self.chips[1].level_mode = value & 0xde,
            _ => {}
        }
        self.update_cascade();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pair as Linux and BIOSes program it: master base 0x20, slave 0x28, cascade on 2.
    fn initialized() -> Pic {
        let mut pic = Pic::new();
        for (cmd, data, base, cascade) in [(0x20, 0x21, 0x20, 0x04), (0xa0, 0xa1, 0x28, 0x02)] {
            pic.write(cmd, 0x11);
            pic.write(data, base);
            pic.write(data, cascade);
            pic.write(data, 0x01);
            pic.write(data, 0x00);
        }
        pic
    }

    #[test]
    fn edge_triggered_irq_is_acknowledged_once() {
        let mut pic = initialized();
        pic.set_irq(4, true);
        assert!(pic.interrupt_pending());
        assert_eq!(pic.acknowledge(), 0x24);
        assert!(
            !pic.interrupt_pending(),
            "in service, line still high: no new edge"
        );
        pic.write(0x20, 0x20);
        assert!(!pic.interrupt_pending());
        pic.set_irq(4, false);
        pic.set_irq(4, true);
        assert_eq!(pic.acknowledge(), 0x24);
    }

    #[test]
    fn priority_and_nesting() {
        let mut pic = initialized();
        pic.set_irq(3, true);
        pic.set_irq(1, true);
        assert_eq!(pic.acknowledge(), 0x21, "IRQ 1 beats IRQ 3");
        assert!(
            !pic.interrupt_pending(),
            "IRQ 3 waits behind IRQ 1 in service"
        );
        pic.set_irq(0, true);
        assert_eq!(pic.acknowledge(), 0x20, "IRQ 0 nests above IRQ 1");
        pic.write(0x20, 0x20);
        pic.write(0x20, 0x20);
        assert_eq!(pic.acknowledge(), 0x23);
    }

    #[test]
    fn slave_cascades_through_irq2() {
        let mut pic = initialized();
        pic.set_irq(12, true);
        assert!(pic.interrupt_pending());
        assert_eq!(pic.acknowledge(), 0x2c);
        pic.write(0xa0, 0x20);
        pic.write(0x20, 0x20);
        assert!(!pic.interrupt_pending());
    }

    #[test]
    fn masks_level_mode_and_register_reads() {
        let mut pic = initialized();
        pic.write(0x21, 0x10);
        pic.set_irq(4, true);
        assert!(!pic.interrupt_pending(), "masked");
        assert_eq!(pic.read(0x20) & 0x10, 0x10, "IRR shows it");
        pic.write(0x21, 0);
        assert_eq!(pic.acknowledge(), 0x24, "the edge was latched while masked");
        pic.write(0x20, 0x20);
        pic.write(0x4d1, 0x08); // IRQ 11 level-triggered
        pic.set_irq(11, true);
        assert_eq!(pic.acknowledge(), 0x2b);
        pic.write(0xa0, 0x20);
        pic.write(0x20, 0x20);
        assert_eq!(pic.acknowledge(), 0x2b, "level still high: requested again");
        pic.write(0xa0, 0x0b); // OCW3: read ISR
        assert_eq!(pic.read(0xa0), 0x08);
        pic.write(0xa0, 0x20);
        pic.write(0x20, 0x20);
        pic.set_irq(11, false);
        assert!(!pic.interrupt_pending());
        assert_eq!(pic.read(0x4d1), 0x08);
    }

    #[test]
    fn spurious_and_auto_eoi() {
        let mut pic = initialized();
        assert_eq!(pic.acknowledge(), 0x27, "nothing pending: spurious IRQ 7");
        let mut pic = Pic::new();
        pic.write(0x20, 0x13); // single, ICW4
        pic.write(0x21, 0x40);
        pic.write(0x21, 0x03); // auto-EOI
        pic.set_irq(5, true);
        assert_eq!(pic.acknowledge(), 0x45);
        pic.write(0x20, 0x0b);
        assert_eq!(pic.read(0x20), 0, "auto-EOI leaves nothing in service");
    }
}
