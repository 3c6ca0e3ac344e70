//! The board: every device behind the CPU's [`Platform`] interface — the port map, the
//! interrupt controllers, the platform MSRs (the local APIC's) — plus the MMIO windows of
//! the local and I/O APICs and the ISA IRQ lines devices raise.

use super::interrupts::Interrupts;
use softvisor_cpu::Platform;
use softvisor_devices::acpi_pm::PM_WINDOW_LEN;
use softvisor_devices::{AcpiPm, IrqLine, Pit, Rtc, Uart, I8042};
use softvisor_firmware::acpi::{PM_BASE, S5_SLEEP_TYPE, SCI_IRQ};
use softvisor_mmu::bus::BusDevice;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The virtual clock in nanoseconds, shared with the MMIO windows.
pub type Clock = Arc<AtomicU64>;

/// Shared interrupt controllers.
pub type SharedInterrupts = Arc<Mutex<Interrupts>>;

fn lock(irqs: &SharedInterrupts) -> MutexGuard<'_, Interrupts> {
    irqs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An ISA IRQ line into the PIC and the I/O APIC.
pub struct IsaIrq {
    irqs: SharedInterrupts,
    irq: u8,
}

impl IrqLine for IsaIrq {
    fn set_level(&self, high: bool) {
        lock(&self.irqs).set_isa_irq(self.irq, high);
    }
}

/// The local APIC's xAPIC window.
pub struct LapicWindow {
    /// The controllers.
    pub irqs: SharedInterrupts,
    /// The virtual clock.
    pub clock: Clock,
}

impl BusDevice for LapicWindow {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = lock(&self.irqs)
            .lapic
            .mmio_read(offset & !3, self.clock.load(Ordering::Relaxed));
        let bytes = value.to_le_bytes();
        let len = data.len().min(4);
        data[..len].copy_from_slice(&bytes[..len]);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut bytes = [0u8; 4];
        let len = data.len().min(4);
        bytes[..len].copy_from_slice(&data[..len]);
        let mut irqs = lock(&self.irqs);
        let eoi = irqs.lapic.mmio_write(
            offset & !3,
            u32::from_le_bytes(bytes),
            self.clock.load(Ordering::Relaxed),
        );
        irqs.level_eoi(eoi);
    }
}

/// The I/O APIC's window.
pub struct IoApicWindow {
    /// The controllers.
    pub irqs: SharedInterrupts,
}

impl BusDevice for IoApicWindow {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = lock(&self.irqs).ioapic.mmio_read(offset & !3);
        let len = data.len().min(4);
        data[..len].copy_from_slice(&value.to_le_bytes()[..len]);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut bytes = [0u8; 4];
        let len = data.len().min(4);
        bytes[..len].copy_from_slice(&data[..len]);
        let mut irqs = lock(&self.irqs);
        let deliveries = irqs
            .ioapic
            .mmio_write(offset & !3, u32::from_le_bytes(bytes));
        irqs.route(deliveries);
    }
}

/// Everything on the board.
pub struct Board {
    /// Interrupt controllers.
    pub irqs: SharedInterrupts,
    /// The virtual clock (ns).
    pub clock: Clock,
    /// The timer.
    pub pit: Pit,
    /// The real-time clock.
    pub rtc: Rtc,
    /// The keyboard controller.
    pub i8042: I8042,
    /// The ACPI PM registers (power-off, PM timer).
    pub pm: AcpiPm,
    /// COM1.
    pub uart: Uart<Box<dyn Write + Send>>,
    /// Port 0xe9 output.
    pub debugcon: Box<dyn Write + Send>,
    /// The value written to port 0xf4, if any.
    pub exit_code: Option<u8>,
    /// Virtual time spent halted: the clock is the instruction clock plus this.
    pub idle_ns: u64,
    /// The instruction clock's rate (instructions per virtual microsecond).
    pub insns_per_us: u64,
    /// Port 0x61 bit 4, which toggles on every read (DRAM refresh).
    refresh: bool,
}

impl Board {
    /// A board whose COM1 and debug console write to `console` and `debugcon`, with the RTC
    /// at `epoch` (Unix seconds) at virtual time 0.
    pub fn new(
        console: Box<dyn Write + Send>,
        debugcon: Box<dyn Write + Send>,
        epoch: u64,
    ) -> Self {
        let irqs: SharedInterrupts = Arc::new(Mutex::new(Interrupts::new()));
        let isa_irq = |irq: u8| {
            Box::new(IsaIrq {
                irqs: irqs.clone(),
                irq,
            })
        };
        Board {
            pm: AcpiPm::new(isa_irq(SCI_IRQ), S5_SLEEP_TYPE),
            i8042: I8042::new(isa_irq(1), isa_irq(12)),
            uart: Uart::new(isa_irq(4), console),
            clock: Arc::new(AtomicU64::new(0)),
            pit: Pit::new(),
            rtc: Rtc::new(epoch),
            irqs,
            debugcon,
            exit_code: None,
            idle_ns: 0,
            insns_per_us: softvisor_cpu::state::DEFAULT_INSNS_PER_US,
            refresh: false,
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    /// The controllers, locked.
    pub fn interrupts(&self) -> MutexGuard<'_, Interrupts> {
        lock(&self.irqs)
    }
}

/// The offset of `port` in the ACPI PM window.
fn pm_offset(port: u16) -> Option<u64> {
    let offset = u64::from(port.wrapping_sub(PM_BASE));
    (offset < PM_WINDOW_LEN).then_some(offset)
}

/// All ones in the low `size` bytes.
fn ones(size: u8) -> u32 {
    if size >= 4 {
        u32::MAX
    } else {
        (1u32 << (8 * u32::from(size))) - 1
    }
}

impl Platform for Board {
    fn sync_clock(&mut self, icount: u64) {
        let ns = softvisor_cpu::state::icount_to_ns(icount, self.insns_per_us);
        self.clock.store(ns + self.idle_ns, Ordering::Relaxed);
    }

    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        let now = self.now();
        if let Some(offset) = pm_offset(port) {
            return self.pm.read(offset, size, now);
        }
        let byte = match port {
            0x20 | 0x21 | 0xa0 | 0xa1 | 0x4d0 | 0x4d1 => self.interrupts().pic.read(port),
            0x40..=0x43 => self.pit.read(port, now),
            0x61 => {
                self.refresh = !self.refresh;
                self.pit.read_port61(now) | (u8::from(self.refresh) << 4)
            }
            0x60 | 0x64 => self.i8042.read(port),
            0x70 | 0x71 => self.rtc.read(port, now),
            0x3f8..=0x3ff => {
                let mut b = [0u8; 1];
                self.uart.read(u64::from(port - 0x3f8), &mut b);
                b[0]
            }
            0xe9 => 0xe9,
            _ => return ones(size),
        };
        u32::from(byte) | (ones(size) & !0xff)
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        let now = self.now();
        if let Some(offset) = pm_offset(port) {
            return self.pm.write(offset, size, value, now);
        }
        let byte = value as u8;
        match port {
            0x20 | 0x21 | 0xa0 | 0xa1 | 0x4d0 | 0x4d1 => self.interrupts().pic.write(port, byte),
            0x40..=0x43 => self.pit.write(port, byte, now),
            0x61 => self.pit.write_port61(byte, now),
            0x60 | 0x64 => self.i8042.write(port, byte),
            0x70 | 0x71 => self.rtc.write(port, byte, now),
            0x3f8..=0x3ff => self.uart.write(u64::from(port - 0x3f8), &[byte]),
            0xe9 => {
                let _ = self.debugcon.write_all(&[byte]);
            }
            0xf4 => self.exit_code = Some(byte),
            // POST codes: nothing to show them on.
            0x80 => {}
            _ => {}
        }
    }

    fn stop_requested(&mut self) -> bool {
        self.exit_code.is_some() || self.pm.poweroff_requested() || self.i8042.reset_pending()
    }

    fn interrupt_pending(&mut self) -> bool {
        self.interrupts().pending()
    }

    fn acknowledge_interrupt(&mut self) -> Option<u8> {
        self.interrupts().acknowledge()
    }

    fn read_msr(&mut self, msr: u32) -> Option<u64> {
        let now = self.now();
        self.interrupts().lapic.read_msr(msr, now)
    }

    fn write_msr(&mut self, msr: u32, value: u64) -> bool {
        let now = self.now();
        let mut irqs = self.interrupts();
        match irqs.lapic.write_msr(msr, value, now) {
            Some(eoi) => {
                irqs.level_eoi(eoi);
                true
            }
            None => false,
        }
    }

    fn set_task_priority(&mut self, tpr: u8) {
        self.interrupts().lapic.set_tpr(tpr);
    }
}
