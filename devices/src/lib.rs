//! Emulated platform devices (serial, PIC, PIT, RTC, LAPIC, IOAPIC, i8042).
//!
//! Not built yet: they arrive with the machine issue. The crate exists so the workspace has
//! its final shape and the dependency direction (src -> devices -> mmu) is fixed from day one.

/// The devices this build provides.
pub const PROVIDED: &[&str] = &[];
