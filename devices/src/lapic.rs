//! The local APIC of one vCPU: xAPIC registers (MMIO at the APIC base, offsets only) and
//! x2APIC MSRs (0x800-0x8ff, in x2APIC mode), TPR/PPR, IRR/ISR/TMR with priority-based
//! acceptance, EOI (which reports level-triggered vectors so the IOAPIC can clear remote
//! IRR), SVR, the LVT, ESR, and the timer in one-shot, periodic and TSC-deadline modes.
//!
//! Time is the virtual clock: the timer's input clock and the TSC both run at 1 GHz, one
//! tick per nanosecond (the CPU's TSC is its retired-instruction count). The ICR records
//! what was sent; with one vCPU, self-IPIs are delivered and the rest is for the SMP work.

/// The default physical base of the xAPIC window.
pub const APIC_DEFAULT_BASE: u64 = 0xfee0_0000;
/// IA32_TSC_DEADLINE.
pub const MSR_TSC_DEADLINE: u32 = 0x6e0;

const ID: usize = 0x02;
const VERSION: usize = 0x03;
const TPR: usize = 0x08;
const APR: usize = 0x09;
const PPR: usize = 0x0a;
const EOI: usize = 0x0b;
const LDR: usize = 0x0d;
const DFR: usize = 0x0e;
const SVR: usize = 0x0f;
const ISR0: usize = 0x10;
const TMR0: usize = 0x18;
const IRR0: usize = 0x20;
const ESR: usize = 0x28;
const LVT_CMCI: usize = 0x2f;
const ICR_LOW: usize = 0x30;
const ICR_HIGH: usize = 0x31;
const LVT_TIMER: usize = 0x32;
const LVT_ERROR: usize = 0x37;
const TIMER_INITIAL: usize = 0x38;
const TIMER_CURRENT: usize = 0x39;
const TIMER_DIVIDE: usize = 0x3e;
const SELF_IPI: usize = 0x3f;

const LVT_MASKED: u32 = 1 << 16;
const SVR_ENABLED: u32 = 1 << 8;

/// The timer mode selected in LVT timer bits 17-18.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimerMode {
    OneShot,
    Periodic,
    TscDeadline,
}

/// A 256-bit vector register (IRR, ISR, TMR).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bits256([u32; 8]);

impl Bits256 {
    fn set(&mut self, v: u8, on: bool) {
        let (word, bit) = (usize::from(v) / 32, u32::from(v) % 32);
        if on {
            self.0[word] |= 1 << bit;
        } else {
            self.0[word] &= !(1 << bit);
        }
    }

    fn get(&self, v: u8) -> bool {
        self.0[usize::from(v) / 32] & (1 << (u32::from(v) % 32)) != 0
    }

    /// The highest vector set.
    fn highest(&self) -> Option<u8> {
        (0..8)
            .rev()
            .find(|&w| self.0[w] != 0)
            .map(|w| (w * 32 + 31 - self.0[w].leading_zeros() as usize) as u8)
    }
}

/// One local APIC.
#[derive(Clone, Debug)]
pub struct LocalApic {
    id: u32,
    /// IA32_APIC_BASE (base, enable bit 11, x2APIC bit 10, BSP bit 8).
    base_msr: u64,
    tpr: u32,
    ldr: u32,
    dfr: u32,
    svr: u32,
    esr: u32,
    icr: u64,
    /// LVT registers: CMCI, timer, thermal, performance, LINT0, LINT1, error.
    lvt: [u32; 7],
    irr: Bits256,
    isr: Bits256,
    tmr: Bits256,
    timer_initial: u32,
    timer_divide: u32,
    /// When the current one-shot/periodic count started.
    timer_start_ns: u64,
    /// The next timer expiry, if armed.
    timer_deadline_ns: Option<u64>,
    tsc_deadline: u64,
}

impl LocalApic {
    /// The APIC of CPU `id` after reset (the bootstrap processor when `id` is 0).
    pub fn new(id: u32) -> Self {
        let bsp = if id == 0 { 1 << 8 } else { 0 };
        LocalApic {
            id,
            base_msr: APIC_DEFAULT_BASE | (1 << 11) | bsp,
            tpr: 0,
            ldr: 0,
            dfr: 0xffff_ffff,
            svr: 0xff,
            esr: 0,
            icr: 0,
            lvt: [LVT_MASKED; 7],
            irr: Bits256::default(),
            isr: Bits256::default(),
            tmr: Bits256::default(),
            timer_initial: 0,
            timer_divide: 0,
            timer_start_ns: 0,
            timer_deadline_ns: None,
            tsc_deadline: 0,
        }
    }

    /// Whether the APIC is enabled in IA32_APIC_BASE and by software (SVR).
    pub fn enabled(&self) -> bool {
        self.base_msr & (1 << 11) != 0 && self.svr & SVR_ENABLED != 0
    }

    fn x2apic(&self) -> bool {
        self.base_msr & (1 << 10) != 0
    }

    /// Sets the task priority (MOV to CR8 writes TPR[7:4]).
    pub fn set_tpr(&mut self, tpr: u8) {
        self.tpr = u32::from(tpr);
    }

    /// The physical address of the xAPIC window.
    pub fn base_address(&self) -> u64 {
        self.base_msr & 0xf_ffff_f000
    }

    /// IA32_APIC_BASE.
    pub fn base_msr(&self) -> u64 {
        self.base_msr
    }

    /// LINT0's LVT entry: ExtINT delivery (mode 7) unmasked passes the PIC's INTR through.
    pub fn lint0_passes_extint(&self) -> bool {
        let lint0 = self.lvt[4];
        !self.enabled() || (lint0 & LVT_MASKED == 0 && (lint0 >> 8) & 7 == 7)
    }

    fn timer_mode(&self) -> TimerMode {
        match (self.lvt[1] >> 17) & 3 {
            1 => TimerMode::Periodic,
            2 => TimerMode::TscDeadline,
            _ => TimerMode::OneShot,
        }
    }

    /// Timer ticks per input tick: the divide configuration (bits 0, 1 and 3).
    fn divisor(&self) -> u64 {
        let code = (self.timer_divide & 3) | ((self.timer_divide >> 1) & 4);
        if code == 7 {
            1
        } else {
            2 << code
        }
    }

    /// Processor priority: the higher of TPR and the in-service class.
    fn ppr(&self) -> u32 {
        let isr_class = self.isr.highest().map_or(0, |v| u32::from(v) & 0xf0);
        if (self.tpr & 0xf0) >= isr_class {
            self.tpr & 0xff
        } else {
            isr_class
        }
    }

    /// Accepts an interrupt (fixed delivery) for `vector`, level- or edge-triggered.
    pub fn accept(&mut self, vector: u8, level: bool) {
        if vector < 16 {
            self.esr |= 1 << 6; // illegal vector received
            return;
        }
        self.irr.set(vector, true);
        self.tmr.set(vector, level);
    }

    /// The vector the CPU would take now, if any.
    pub fn pending(&self) -> Option<u8> {
        if !self.enabled() {
            return None;
        }
        let vector = self.irr.highest()?;
        (u32::from(vector) & 0xf0 > self.ppr() & 0xf0).then_some(vector)
    }

    /// The INTA cycle: moves the pending vector to in-service. A request that lost to the
    /// priority in the meantime yields the spurious vector.
    pub fn acknowledge(&mut self) -> u8 {
        match self.pending() {
            Some(vector) => {
                self.irr.set(vector, false);
                self.isr.set(vector, true);
                vector
            }
            None => self.svr as u8,
        }
    }

    /// EOI: retires the highest in-service vector; returns it if it was level-triggered
    /// (the IOAPIC must then clear its remote IRR).
    fn end_of_interrupt(&mut self) -> Option<u8> {
        let vector = self.isr.highest()?;
        self.isr.set(vector, false);
        self.tmr.get(vector).then_some(vector)
    }

    /// When the timer next expires (a masked timer still counts, it just delivers nothing).
    pub fn next_timer_deadline(&self) -> Option<u64> {
        self.timer_deadline_ns
    }

    /// Fires the timer if its deadline has passed; periodic mode re-arms.
    pub fn run_timer(&mut self, now_ns: u64) {
        let Some(deadline) = self.timer_deadline_ns else {
            return;
        };
        if now_ns < deadline {
            return;
        }
        if self.lvt[1] & LVT_MASKED == 0 {
            self.accept(self.lvt[1] as u8, false);
        }
        self.timer_deadline_ns = match self.timer_mode() {
            TimerMode::Periodic if self.timer_initial != 0 => {
                let period = u64::from(self.timer_initial) * self.divisor();
                self.timer_start_ns = deadline;
                Some(deadline + period)
            }
            _ => None,
        };
        if self.timer_mode() == TimerMode::TscDeadline {
            self.tsc_deadline = 0;
        }
    }

    fn timer_current(&self, now_ns: u64) -> u32 {
        match self.timer_deadline_ns {
            Some(deadline) if self.timer_mode() != TimerMode::TscDeadline && deadline > now_ns => {
                ((deadline - now_ns) / self.divisor()) as u32
            }
            _ => 0,
        }
    }

    /// Reads register `index` (the xAPIC offset / 16, or the x2APIC MSR - 0x800).
    fn read_register(&self, index: usize, now_ns: u64) -> u32 {
        match index {
            ID => {
                if self.x2apic() {
                    self.id
                } else {
                    self.id << 24
                }
            }
            // Version 0x14, 7 LVT entries (max LVT index 6), EOI broadcast suppression absent.
            VERSION => 0x0006_0014,
            TPR => self.tpr,
            APR => 0,
            PPR => self.ppr(),
            LDR => self.ldr,
            DFR => self.dfr,
            SVR => self.svr,
            ISR0..=0x17 => self.isr.0[index - ISR0],
            TMR0..=0x1f => self.tmr.0[index - TMR0],
            IRR0..=0x27 => self.irr.0[index - IRR0],
            ESR => self.esr,
            LVT_CMCI => self.lvt[0],
            ICR_LOW => self.icr as u32,
            ICR_HIGH => (self.icr >> 32) as u32,
            LVT_TIMER..=LVT_ERROR => self.lvt[index - LVT_TIMER + 1],
            TIMER_INITIAL => self.timer_initial,
            TIMER_CURRENT => self.timer_current(now_ns),
            TIMER_DIVIDE => self.timer_divide,
            _ => 0,
        }
    }

    /// Writes register `index`; returns a level-triggered vector retired by an EOI.
    fn write_register(&mut self, index: usize, value: u32, now_ns: u64) -> Option<u8> {
        match index {
            ID if !self.x2apic() => self.id = value >> 24,
            TPR => self.tpr = value & 0xff,
            EOI => return self.end_of_interrupt(),
            LDR if !self.x2apic() => self.ldr = value & 0xff00_0000,
            DFR if !self.x2apic() => self.dfr = value | 0x0fff_ffff,
            SVR => {
                self.svr = value & 0x13ff;
                if value & SVR_ENABLED == 0 {
                    for lvt in self.lvt.iter_mut() {
                        *lvt |= LVT_MASKED;
                    }
                }
            }
            ESR => self.esr = 0,
            LVT_CMCI => self.lvt[0] = value & 0x1_07ff,
            ICR_LOW => {
                self.icr = (self.icr & !0xffff_ffff) | u64::from(value & !(1 << 12));
                self.send_ipi();
            }
            ICR_HIGH if !self.x2apic() => {
                self.icr = (self.icr & 0xffff_ffff) | (u64::from(value) << 32)
            }
            LVT_TIMER => {
                let old_mode = self.timer_mode();
                self.lvt[1] = value & 0x7_00ff;
                if self.timer_mode() != old_mode {
                    self.timer_deadline_ns = None;
                    self.tsc_deadline = 0;
                }
            }
            0x33..=LVT_ERROR => {
                let mask = if index == 0x35 || index == 0x36 {
                    0x1_a7ff
                } else {
                    0x1_07ff
                };
                self.lvt[index - LVT_TIMER + 1] = value & mask;
            }
            TIMER_INITIAL if self.timer_mode() != TimerMode::TscDeadline => {
                self.timer_initial = value;
                self.timer_start_ns = now_ns;
                self.timer_deadline_ns =
                    (value != 0).then(|| now_ns + u64::from(value) * self.divisor());
            }
            TIMER_DIVIDE => self.timer_divide = value & 0xb,
            SELF_IPI if self.x2apic() => self.accept(value as u8, false),
            _ => {}
        }
        None
    }

    /// An IPI: a fixed self-IPI (destination shorthand 1, or this APIC's ID) is delivered;
    /// other destinations have no CPU to reach yet.
    fn send_ipi(&mut self) {
        let low = self.icr as u32;
        let vector = low as u8;
        let fixed = (low >> 8) & 7 == 0;
        let shorthand = (low >> 18) & 3;
        let destination = if self.x2apic() {
            (self.icr >> 32) as u32
        } else {
            (self.icr >> 56) as u32
        };
        let to_self =
            shorthand == 1 || shorthand == 2 || (shorthand == 0 && destination == self.id);
        if fixed && to_self {
            self.accept(vector, false);
        }
    }

    /// An xAPIC MMIO read at `offset` in the window.
    pub fn mmio_read(&self, offset: u64, now_ns: u64) -> u32 {
        if self.x2apic() || offset & 0xf != 0 {
            return 0;
        }
        self.read_register((offset >> 4) as usize, now_ns)
    }

    /// An xAPIC MMIO write; returns a level-triggered vector retired by an EOI.
    pub fn mmio_write(&mut self, offset: u64, value: u32, now_ns: u64) -> Option<u8> {
        if self.x2apic() || offset & 0xf != 0 {
            return None;
        }
        self.write_register((offset >> 4) as usize, value, now_ns)
    }

    /// RDMSR of an APIC MSR: IA32_APIC_BASE, TSC_DEADLINE, or the x2APIC range in x2APIC
    /// mode. `None` for any other MSR (the CPU then raises #GP).
    pub fn read_msr(&self, msr: u32, now_ns: u64) -> Option<u64> {
        match msr {
            0x1b => Some(self.base_msr),
            MSR_TSC_DEADLINE => Some(self.tsc_deadline),
            0x830 if self.x2apic() => Some(self.icr),
            0x800..=0x8ff if self.x2apic() => Some(u64::from(
                self.read_register((msr - 0x800) as usize, now_ns),
            )),
            _ => None,
        }
    }

    /// WRMSR of an APIC MSR; `None` if it is not one, else the level-triggered vector an EOI
    /// retired (if any).
    pub fn write_msr(&mut self, msr: u32, value: u64, now_ns: u64) -> Option<Option<u8>> {
        match msr {
            0x1b => {
                self.base_msr = value & (0xf_ffff_f000 | (1 << 11) | (1 << 10) | (1 << 8));
                Some(None)
            }
            MSR_TSC_DEADLINE => {
                if self.timer_mode() == TimerMode::TscDeadline {
                    self.tsc_deadline = value;
                    // The TSC counts nanoseconds of virtual time.
                    self.timer_deadline_ns = (value != 0).then_some(value);
                }
                Some(None)
            }
            0x830 if self.x2apic() => {
                self.icr = value;
                self.send_ipi();
                Some(None)
            }
            0x800..=0x8ff if self.x2apic() => {
                Some(self.write_register((msr - 0x800) as usize, value as u32, now_ns))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled_apic() -> LocalApic {
        let mut apic = LocalApic::new(0);
        apic.mmio_write(0xf0, 0x1ff, 0);
        apic
    }

    #[test]
    fn priority_acceptance_and_eoi() {
        let mut apic = enabled_apic();
        apic.accept(0x41, false);
        apic.accept(0x61, true);
        assert_eq!(apic.acknowledge(), 0x61);
        assert_eq!(
            apic.pending(),
            None,
            "0x41 is in a lower class than 0x61 in service"
        );
        assert_eq!(apic.mmio_read(0xa0, 0), 0x60, "PPR");
        assert_eq!(
            apic.mmio_write(0xb0, 0, 0),
            Some(0x61),
            "level-triggered EOI is reported"
        );
        assert_eq!(apic.acknowledge(), 0x41);
        assert_eq!(apic.mmio_write(0xb0, 0, 0), None);
        apic.mmio_write(0x80, 0x50, 0); // TPR
        apic.accept(0x45, false);
        assert_eq!(apic.pending(), None, "masked by TPR");
        apic.accept(0x65, false);
        assert_eq!(apic.pending(), Some(0x65));
    }

    #[test]
    fn one_shot_and_periodic_timer() {
        let mut apic = enabled_apic();
        apic.mmio_write(0x3e0, 0b1011, 0); // divide by 1
        apic.mmio_write(0x320, 0x30, 0); // one-shot, vector 0x30
        apic.mmio_write(0x380, 1000, 100);
        assert_eq!(apic.next_timer_deadline(), Some(1100));
        assert_eq!(apic.mmio_read(0x390, 600), 500, "current count");
        apic.run_timer(1100);
        assert_eq!(apic.acknowledge(), 0x30);
        assert_eq!(apic.next_timer_deadline(), None);
        apic.mmio_write(0x320, 0x2_0031, 2000); // periodic
        apic.mmio_write(0x3e0, 0b0000, 2000); // divide by 2
        apic.mmio_write(0x380, 500, 2000);
        assert_eq!(apic.next_timer_deadline(), Some(3000));
        apic.run_timer(3000);
        assert_eq!(apic.next_timer_deadline(), Some(4000));
    }

    #[test]
    fn x2apic_msrs_and_tsc_deadline() {
        let mut apic = enabled_apic();
        apic.write_msr(0x1b, APIC_DEFAULT_BASE | (1 << 11) | (1 << 10), 0);
        assert_eq!(apic.read_msr(0x802, 0), Some(0), "x2APIC ID");
        assert_eq!(apic.mmio_read(0x20, 0), 0, "MMIO is off in x2APIC mode");
        apic.write_msr(0x832, 0x4_0040, 0); // LVT timer: TSC-deadline, vector 0x40
        apic.write_msr(MSR_TSC_DEADLINE, 5000, 0);
        assert_eq!(apic.next_timer_deadline(), Some(5000));
        apic.run_timer(5000);
        assert_eq!(apic.read_msr(MSR_TSC_DEADLINE, 5000), Some(0));
        assert_eq!(apic.pending(), Some(0x40));
        apic.write_msr(0x83f, 0x50, 0); // self IPI
        assert_eq!(apic.acknowledge(), 0x50);
        assert_eq!(
            apic.write_msr(0x80b, 0, 0),
            Some(None),
            "EOI of an edge-triggered vector"
        );
        assert!(apic.read_msr(0x123, 0).is_none());
    }

    #[test]
    fn disabled_apic_passes_the_pic_through() {
        let apic = LocalApic::new(0);
        assert!(apic.lint0_passes_extint(), "software-disabled after reset");
        let mut apic = enabled_apic();
        assert!(!apic.lint0_passes_extint());
        apic.mmio_write(0x350, 0x700, 0); // LINT0: ExtINT, unmasked
        assert!(apic.lint0_passes_extint());
    }
}
