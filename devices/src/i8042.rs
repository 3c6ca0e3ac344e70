//! The i8042 keyboard controller, enough for a kernel to probe it and to reset the machine:
//! status (0x64) and data (0x60) ports, controller self test, CTR read/write, interface
//! tests, enabling and disabling the ports, keyboard reset/identify acknowledgements, and the
//! two reset paths (command 0xFE, and clearing bit 0 of the output port with 0xD1).

use std::collections::VecDeque;

const STATUS_OUTPUT_FULL: u8 = 0x01;
const STATUS_SYSTEM: u8 = 0x04;
const STATUS_COMMAND: u8 = 0x08;

/// The controller.
#[derive(Clone, Debug)]
pub struct I8042 {
    output: VecDeque<u8>,
    /// Controller configuration byte.
    ctr: u8,
    /// The last command that takes a data byte (0x60, 0xD1, ...), waiting for it.
    pending_command: Option<u8>,
    last_was_command: bool,
    reset_requested: bool,
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    /// A controller after power-on: keyboard interrupt and translation enabled.
    pub fn new() -> Self {
        I8042 {
            output: VecDeque::new(),
            ctr: 0x45,
            pending_command: None,
            last_was_command: false,
            reset_requested: false,
        }
    }

    /// Whether the guest asked for a CPU reset (cleared by the call).
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }

    /// A read of port 0x60 (data) or 0x64 (status).
    pub fn read(&mut self, port: u16) -> u8 {
        match port {
            0x60 => self.output.pop_front().unwrap_or(0),
            0x64 => {
                let full = if self.output.is_empty() {
                    0
                } else {
                    STATUS_OUTPUT_FULL
                };
                let command = if self.last_was_command {
                    STATUS_COMMAND
                } else {
                    0
                };
                full | STATUS_SYSTEM | command
            }
            _ => 0xff,
        }
    }

    /// A write of port 0x60 (data) or 0x64 (command).
    pub fn write(&mut self, port: u16, value: u8) {
        match port {
            0x64 => {
                self.last_was_command = true;
                self.command(value);
            }
            0x60 => {
                self.last_was_command = false;
                match self.pending_command.take() {
                    Some(0x60) => self.ctr = value,
                    // Output port: bit 0 low resets the CPU.
                    Some(0xd1) if value & 1 == 0 => self.reset_requested = true,
                    Some(_) => {}
                    None => self.keyboard_command(value),
                }
            }
            _ => {}
        }
    }

    fn command(&mut self, value: u8) {
        match value {
            0x20 => self.output.push_back(self.ctr),
            0x60 | 0xd1 | 0xd2 | 0xd3 | 0xd4 => self.pending_command = Some(value),
            0xaa => self.output.push_back(0x55),
            0xa9 | 0xab => self.output.push_back(0x00),
            0xa7 => self.ctr |= 0x20,
            0xa8 => self.ctr &= !0x20,
            0xad => self.ctr |= 0x10,
            0xae => self.ctr &= !0x10,
            0xd0 => self.output.push_back(0x01),
            0xfe => self.reset_requested = true,
            _ => {}
        }
    }

    /// A byte for the keyboard: acknowledge, and answer reset and identify.
    fn keyboard_command(&mut self, value: u8) {
        self.output.push_back(0xfa);
        match value {
            0xff => self.output.push_back(0xaa),
            0xf2 => self.output.extend([0xab, 0x83]),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sequence_and_ctr() {
        let mut kbc = I8042::new();
        assert_eq!(kbc.read(0x64) & STATUS_OUTPUT_FULL, 0);
        kbc.write(0x64, 0xaa);
        assert_eq!(kbc.read(0x64) & STATUS_OUTPUT_FULL, 1);
        assert_eq!(kbc.read(0x60), 0x55);
        kbc.write(0x64, 0x60);
        kbc.write(0x60, 0x47);
        kbc.write(0x64, 0x20);
        assert_eq!(kbc.read(0x60), 0x47);
        kbc.write(0x60, 0xff);
        assert_eq!((kbc.read(0x60), kbc.read(0x60)), (0xfa, 0xaa));
    }

    #[test]
    fn both_reset_paths() {
        let mut kbc = I8042::new();
        kbc.write(0x64, 0xfe);
        assert!(kbc.take_reset_request());
        assert!(!kbc.take_reset_request());
        kbc.write(0x64, 0xd1);
        kbc.write(0x60, 0xfe);
        assert!(kbc.take_reset_request());
    }
}
