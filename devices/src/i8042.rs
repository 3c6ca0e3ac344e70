//! The i8042 keyboard controller, enough for a kernel to probe it and to reset the machine:
//! status (0x64) and data (0x60) ports, controller self test, CTR read/write, interface
//! tests, enabling and disabling the ports, keyboard reset/identify acknowledgements, and the
//! two reset paths (command 0xFE, and clearing bit 0 of the output port with 0xD1). Bytes in
//! the output buffer raise IRQ 1 (keyboard) or IRQ 12 (auxiliary port) when the CTR enables
//! it; commands 0xD2/0xD3 echo a byte as if from either port, as the kernel's probe expects.
//! No mouse is attached: bytes for the auxiliary device are answered with "resend".

use crate::IrqLine;
use std::collections::VecDeque;

const STATUS_OUTPUT_FULL: u8 = 0x01;
const STATUS_SYSTEM: u8 = 0x04;
const STATUS_COMMAND: u8 = 0x08;
/// The keyboard is not inhibited (keylock open).
const STATUS_UNLOCKED: u8 = 0x10;
const STATUS_AUX_DATA: u8 = 0x20;
const CTR_KBD_INT: u8 = 0x01;
const CTR_AUX_INT: u8 = 0x02;

/// Which port a byte in the output buffer came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Keyboard,
    Aux,
}

/// The controller.
pub struct I8042 {
    output: VecDeque<(u8, Source)>,
    kbd_irq: Box<dyn IrqLine>,
    aux_irq: Box<dyn IrqLine>,
    /// Controller configuration byte.
    ctr: u8,
    /// The last command that takes a data byte (0x60, 0xD1, ...), waiting for it.
    pending_command: Option<u8>,
    last_was_command: bool,
    reset_requested: bool,
}

impl I8042 {
    /// A controller after power-on (keyboard interrupt and translation enabled) raising
    /// `kbd_irq` (IRQ 1) and `aux_irq` (IRQ 12).
    pub fn new(kbd_irq: Box<dyn IrqLine>, aux_irq: Box<dyn IrqLine>) -> Self {
        I8042 {
            output: VecDeque::new(),
            kbd_irq,
            aux_irq,
            ctr: 0x45,
            pending_command: None,
            last_was_command: false,
            reset_requested: false,
        }
    }

    /// Whether a CPU reset request is waiting to be taken.
    pub fn reset_pending(&self) -> bool {
        self.reset_requested
    }

    /// Whether the guest asked for a CPU reset (cleared by the call).
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }

    /// A read of port 0x60 (data) or 0x64 (status).
    pub fn read(&mut self, port: u16) -> u8 {
        match port {
            0x60 => {
                let byte = self.output.pop_front().map_or(0, |(byte, _)| byte);
                // Drop the lines so the next byte makes a fresh edge.
                self.kbd_irq.set_level(false);
                self.aux_irq.set_level(false);
                self.update_irqs();
                byte
            }
            0x64 => {
                let full = match self.output.front() {
                    None => 0,
                    Some((_, Source::Keyboard)) => STATUS_OUTPUT_FULL,
                    Some((_, Source::Aux)) => STATUS_OUTPUT_FULL | STATUS_AUX_DATA,
                };
                let command = if self.last_was_command {
                    STATUS_COMMAND
                } else {
                    0
                };
                full | STATUS_SYSTEM | STATUS_UNLOCKED | command
            }
            _ => 0xff,
        }
    }

    fn push(&mut self, byte: u8, source: Source) {
        self.output.push_back((byte, source));
        self.update_irqs();
    }

    /// Raises the line of the byte at the head of the output buffer, if its interrupt is
    /// enabled.
    fn update_irqs(&mut self) {
        match self.output.front() {
            Some((_, Source::Keyboard)) if self.ctr & CTR_KBD_INT != 0 => {
                self.kbd_irq.set_level(true)
            }
            Some((_, Source::Aux)) if self.ctr & CTR_AUX_INT != 0 => self.aux_irq.set_level(true),
            _ => {}
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
                    Some(0x60) => {
                        self.ctr = value;
                        self.update_irqs();
                    }
                    // Output port: bit 0 low resets the CPU.
                    Some(0xd1) if value & 1 == 0 => self.reset_requested = true,
                    Some(0xd2) => self.push(value, Source::Keyboard),
                    Some(0xd3) => self.push(value, Source::Aux),
                    // A byte for the (absent) mouse: "resend".
                    Some(0xd4) => self.push(0xfe, Source::Aux),
                    Some(_) => {}
                    None => self.keyboard_command(value),
                }
            }
            _ => {}
        }
    }

    fn command(&mut self, value: u8) {
        match value {
            0x20 => self.push(self.ctr, Source::Keyboard),
            0x60 | 0xd1 | 0xd2 | 0xd3 | 0xd4 => self.pending_command = Some(value),
            0xaa => self.push(0x55, Source::Keyboard),
            0xa9 | 0xab => self.push(0x00, Source::Keyboard),
            0xa7 => self.ctr |= 0x20,
            0xa8 => self.ctr &= !0x20,
            0xad => self.ctr |= 0x10,
            0xae => self.ctr &= !0x10,
            0xd0 => self.push(0x01, Source::Keyboard),
            0xfe => self.reset_requested = true,
            _ => {}
        }
    }

    /// A byte for the keyboard: acknowledge, and answer reset and identify.
    fn keyboard_command(&mut self, value: u8) {
        self.push(0xfa, Source::Keyboard);
        match value {
            0xff => self.push(0xaa, Source::Keyboard),
            0xf2 => {
                self.push(0xab, Source::Keyboard);
                self.push(0x83, Source::Keyboard);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::tests::Recorder;

    fn controller() -> (I8042, Recorder, Recorder) {
        let (kbd, aux) = (Recorder::default(), Recorder::default());
        (
            I8042::new(Box::new(kbd.clone()), Box::new(aux.clone())),
            kbd,
            aux,
        )
    }

    #[test]
    fn output_bytes_raise_their_port_irq_and_aux_loopback_echoes() {
        let (mut kbc, kbd, aux) = controller();
        kbc.write(0x64, 0xaa);
        assert!(kbd.level(), "CTR bit 0 is set at power-on");
        assert_eq!(kbc.read(0x60), 0x55);
        assert!(!kbd.level());
        // Enable the aux interrupt, then loop a byte back through the aux port.
        kbc.write(0x64, 0x60);
        kbc.write(0x60, 0x47);
        kbc.write(0x64, 0xd3);
        kbc.write(0x60, 0x5a);
        assert!(aux.level());
        assert_eq!(kbc.read(0x64) & STATUS_AUX_DATA, STATUS_AUX_DATA);
        assert_eq!(kbc.read(0x60), 0x5a);
        assert!(!aux.level());
    }

    #[test]
    fn probe_sequence_and_ctr() {
        let (mut kbc, _, _) = controller();
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
        let (mut kbc, _, _) = controller();
        kbc.write(0x64, 0xfe);
        assert!(kbc.take_reset_request());
        assert!(!kbc.take_reset_request());
        kbc.write(0x64, 0xd1);
        kbc.write(0x60, 0xfe);
        assert!(kbc.take_reset_request());
    }
}
