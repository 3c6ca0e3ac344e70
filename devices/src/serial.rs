//! The 16550A UART (vm-superio's model) on a port window of 8, raising its interrupt through
//! an [`IrqLine`]. Output goes to any `Write`; input is queued with [`Uart::enqueue_input`].

use crate::IrqLine;
use softvisor_mmu::bus::BusDevice;
use std::io::Write;
use vm_superio::{Serial, Trigger};

/// vm-superio's interrupt trigger, as a pulse on an IRQ line (the PIC input is edge-triggered).
pub struct IrqTrigger(Box<dyn IrqLine + Send>);

impl Trigger for IrqTrigger {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.pulse();
        Ok(())
    }
}

/// A 16550A UART.
pub struct Uart<W: Write + Send> {
    inner: Serial<IrqTrigger, vm_superio::serial::NoEvents, W>,
}

impl<W: Write + Send> Uart<W> {
    /// A UART writing to `out` and interrupting on `irq`.
    pub fn new(irq: Box<dyn IrqLine + Send>, out: W) -> Self {
        Uart {
            inner: Serial::new(IrqTrigger(irq), out),
        }
    }

    /// Queues bytes typed by the user; returns how many fit in the receive FIFO.
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        self.inner.enqueue_raw_bytes(bytes).unwrap_or(0)
    }

    /// Whether the guest's driver is listening: the received-data interrupt is enabled and
    /// the UART is not in loopback. Input that arrives earlier would be lost to the
    /// driver's probe and FIFO resets, so scripted input waits for this.
    pub fn receiver_ready(&self) -> bool {
        const IER_RECEIVED_DATA: u8 = 0x01;
        const MCR_LOOPBACK: u8 = 0x10;
        let state = self.inner.state();
        state.interrupt_enable & IER_RECEIVED_DATA != 0 && state.modem_control & MCR_LOOPBACK == 0
    }

    /// Free space in the receive FIFO.
    pub fn input_capacity(&self) -> usize {
        self.inner.fifo_capacity()
    }

    /// The output sink.
    pub fn output(&mut self) -> &mut W {
        self.inner.writer_mut()
    }
}

impl<W: Write + Send> BusDevice for Uart<W> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        data[0] = self.inner.read(offset as u8);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        // A failed output write (a closed pipe) must not stop the guest.
        let _ = self.inner.write(offset as u8, data[0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Counter(Arc<AtomicUsize>);

    impl IrqLine for Counter {
        fn set_level(&self, high: bool) {
            if high {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn transmits_receives_and_interrupts() {
        let edges = Arc::new(AtomicUsize::new(0));
        let mut uart = Uart::new(Box::new(Counter(edges.clone())), Vec::new());
        uart.write(1, &[0x03]); // IER: received data and THR empty interrupts
        uart.write(0, b"h");
        uart.write(0, b"i");
        assert_eq!(uart.output().as_slice(), b"hi");
        assert!(edges.load(Ordering::SeqCst) >= 1, "THR empty interrupts");
        let before = edges.load(Ordering::SeqCst);
        assert_eq!(uart.enqueue_input(b"ok"), 2);
        assert!(
            edges.load(Ordering::SeqCst) > before,
            "received data interrupt"
        );
        let mut byte = [0u8; 1];
        uart.read(5, &mut byte);
        assert_eq!(byte[0] & 1, 1, "LSR: data ready");
        uart.read(0, &mut byte);
        assert_eq!(byte[0], b'o');
    }
}
