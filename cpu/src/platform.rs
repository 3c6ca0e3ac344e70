//! What the CPU needs from the machine around it, stated as a trait so that `cpu` never
//! depends on `devices`: port I/O, the interrupt controller, platform MSRs (the local
//! APIC's), and the clock. `src` implements it over the devices.

/// The machine as the CPU sees it.
pub trait Platform {
    /// Tells the platform how many instructions have retired, just before a port or
    /// platform-MSR access, so devices read the exact virtual time of the access.
    fn sync_clock(&mut self, _icount: u64) {}
    /// IN: reads `size` bytes (1, 2 or 4) from `port`.
    fn io_read(&mut self, port: u16, size: u8) -> u32;
    /// OUT: writes the low `size` bytes of `value` to `port`.
    fn io_write(&mut self, port: u16, size: u8, value: u32);
    /// Asked after each port access: whether the run must stop right after this
    /// instruction (the guest asked to exit, power off or reset).
    fn stop_requested(&mut self) -> bool {
        false
    }
    /// Whether an NMI is pending.
    fn nmi_pending(&mut self) -> bool {
        false
    }
    /// Takes the pending NMI (called when it is delivered).
    fn acknowledge_nmi(&mut self) {}
    /// The vector of the highest-priority maskable interrupt, if one is pending; the
    /// interrupt stays pending until acknowledged.
    fn interrupt_pending(&mut self) -> bool {
        false
    }
    /// Acknowledges the pending maskable interrupt and returns its vector (INTA cycle).
    fn acknowledge_interrupt(&mut self) -> Option<u8> {
        None
    }
    /// RDMSR of an MSR the platform owns (x2APIC, TSC deadline); `None` if it owns none.
    fn read_msr(&mut self, _msr: u32) -> Option<u64> {
        None
    }
    /// WRMSR of a platform MSR; false if the platform does not own it.
    fn write_msr(&mut self, _msr: u32, _value: u64) -> bool {
        false
    }
    /// A write to CR8 (the task priority), forwarded to the local APIC's TPR.
    fn set_task_priority(&mut self, _tpr: u8) {}
}

/// A platform with nothing attached: ports read as all ones, no interrupts. Used by the
/// unit tests and by `softvisor exec`.
#[derive(Default)]
pub struct NoPlatform;

impl Platform for NoPlatform {
    fn io_read(&mut self, _port: u16, size: u8) -> u32 {
        if size >= 4 {
            u32::MAX
        } else {
            (1u32 << (8 * u32::from(size))) - 1
        }
    }

    fn io_write(&mut self, _port: u16, _size: u8, _value: u32) {}
}
