//! Routing of MMIO and port I/O to devices. A device sees only the offset of an access
//! inside its own window; registering a window that overlaps another is refused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// A device on a bus. Accesses are 1, 2, 4 or 8 bytes, little-endian.
pub trait BusDevice: Send {
    /// Reads `data.len()` bytes at `offset` in the device's window.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Writes `data` at `offset` in the device's window.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// A shared handle to a device.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Bus configuration errors.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BusError {
    /// The window is empty or wraps around the address space.
    #[error("bus window {base:#x}+{len:#x} is empty or wraps")]
    BadWindow {
        /// Start.
        base: u64,
        /// Length.
        len: u64,
    },
    /// The window overlaps one already registered.
    #[error("bus window {base:#x}+{len:#x} overlaps the window at {other:#x}")]
    Overlap {
        /// Start.
        base: u64,
        /// Length.
        len: u64,
        /// Start of the window it overlaps.
        other: u64,
    },
}

/// An address space of device windows (MMIO, or the 64 KiB port space).
#[derive(Default, Clone)]
pub struct Bus {
    windows: BTreeMap<u64, (u64, SharedDevice)>,
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `device` at `[base, base + len)`.
    pub fn insert(&mut self, base: u64, len: u64, device: SharedDevice) -> Result<(), BusError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(BusError::BadWindow { base, len })?;
        if let Some((&other, _)) = self
            .windows
            .range(..end)
            .next_back()
            .filter(|(&start, (l, _))| start + l > base)
        {
            return Err(BusError::Overlap { base, len, other });
        }
        self.windows.insert(base, (len, device));
        Ok(())
    }

    /// The device covering `addr` and the offset of `addr` in its window.
    pub fn find(&self, addr: u64) -> Option<(&SharedDevice, u64)> {
        let (&start, (len, device)) = self.windows.range(..=addr).next_back()?;
        (addr - start < *len).then_some((device, addr - start))
    }

    /// Reads from the device at `addr`; unclaimed addresses read as all ones. Returns
    /// whether a device answered.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr) {
            Some((device, offset)) => {
                lock(device).read(offset, data);
                true
            }
            None => {
                data.fill(0xff);
                false
            }
        }
    }

    /// Writes to the device at `addr`; writes to unclaimed addresses are dropped. Returns
    /// whether a device took it.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr) {
            Some((device, offset)) => {
                lock(device).write(offset, data);
                true
            }
            None => false,
        }
    }
}

/// Locks a device; a device that panicked while locked is still usable (its state is
/// whatever it left), since a guest must not be able to wedge the emulator.
fn lock(device: &SharedDevice) -> std::sync::MutexGuard<'_, dyn BusDevice + 'static> {
    device
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Recorder(Vec<(u64, Vec<u8>)>);

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.0.push((offset, data.to_vec()));
        }
    }

    fn device() -> Arc<Mutex<Recorder>> {
        Arc::new(Mutex::new(Recorder(Vec::new())))
    }

    #[test]
    fn routes_by_offset_and_rejects_overlaps() {
        let mut bus = Bus::new();
        let uart = device();
        bus.insert(0x3f8, 8, uart.clone()).unwrap();
        bus.insert(0x400, 4, device()).unwrap();
        assert!(matches!(
            bus.insert(0x3fc, 8, device()),
            Err(BusError::Overlap { .. })
        ));
        assert!(matches!(
            bus.insert(0x3f0, 9, device()),
            Err(BusError::Overlap { other: 0x3f8, .. })
        ));
        assert!(
            bus.insert(0x3f0, 8, device()).is_ok(),
            "adjacent windows are fine"
        );
        assert!(matches!(
            bus.insert(u64::MAX, 2, device()),
            Err(BusError::BadWindow { .. })
        ));
        assert!(bus.write(0x3fb, &[0x41]));
        assert_eq!(uart.lock().unwrap().0, vec![(3, vec![0x41])]);
        let mut byte = [0u8; 1];
        assert!(bus.read(0x3fd, &mut byte));
        assert_eq!(byte, [5]);
        assert!(!bus.read(0x500, &mut byte));
        assert_eq!(byte, [0xff]);
    }
}
