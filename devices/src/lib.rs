//! Emulated platform devices: interrupt controllers, timers and legacy I/O.
//!
//! A device sees only offsets inside its own window (it implements
//! [`softvisor_mmu::bus::BusDevice`] where it sits on a bus) and raises interrupts only
//! through an [`IrqLine`]. Guest-visible time comes from the virtual clock (nanoseconds
//! derived from retired instructions), never from the host clock.

pub mod acpi_pm;
pub mod i8042;
pub mod ioapic;
pub mod irq;
pub mod lapic;
pub mod pic;
pub mod pit;
pub mod rtc;
pub mod serial;

pub use acpi_pm::AcpiPm;
pub use i8042::I8042;
pub use ioapic::IoApic;
pub use irq::IrqLine;
pub use lapic::LocalApic;
pub use pic::Pic;
pub use pit::Pit;
pub use rtc::Rtc;
pub use serial::Uart;

/// The devices this build provides.
pub const PROVIDED: &[&str] = &[
    "i8259 PIC pair",
    "i8254 PIT",
    "MC146818 RTC/CMOS",
    "16550A UART",
    "i8042",
    "ACPI PM1a registers and PM timer",
];
