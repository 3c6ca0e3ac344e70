//! The guest's console output on the way to the terminal: held in memory and written at
//! the machine's next look at the console (every slice), not byte by byte.
//!
//! vm-superio's UART flushes its writer after every byte it transmits, which on standard
//! output (line-buffered, and unbuffered for a flush) was one `write` system call per
//! character: 17,000 per Debian boot, on the guest's thread.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// A `Write` that keeps what it is given until [`ConsoleOut::drain_to`]; its `flush` does
/// nothing. Clones share the buffer (the UART and the debug console write to one).
#[derive(Clone, Default)]
pub struct ConsoleOut(Arc<Mutex<Vec<u8>>>);

impl ConsoleOut {
    /// Writes everything held so far to `out`, and flushes it.
    pub fn drain_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let held = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        if held.is_empty() {
            return Ok(());
        }
        out.write_all(&held)?;
        out.flush()
    }
}

impl Write for ConsoleOut {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        held.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_waits_for_a_drain_and_keeps_its_order() {
        let console = ConsoleOut::default();
        let mut uart = console.clone();
        let mut debugcon = console.clone();
        for byte in b"boot" {
            uart.write_all(&[*byte]).unwrap();
            uart.flush().unwrap();
        }
        debugcon.write_all(b"!").unwrap();
        let mut terminal = Vec::new();
        console.drain_to(&mut terminal).unwrap();
        assert_eq!(terminal, b"boot!");
        uart.write_all(b"\n").unwrap();
        console.drain_to(&mut terminal).unwrap();
        console.drain_to(&mut terminal).unwrap();
        assert_eq!(terminal, b"boot!\n", "drained once each");
    }
}
