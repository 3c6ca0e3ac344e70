//! How a device signals an interrupt: by driving a line, as on a board.

/// An interrupt request line into an interrupt controller.
pub trait IrqLine {
    /// Drives the line high (`true`) or low. Edge-triggered inputs latch a rising edge;
    /// level-triggered inputs stay asserted while the line is high.
    fn set_level(&self, high: bool);

    /// A rising edge followed by a fall, for devices that signal with a pulse.
    fn pulse(&self) {
        self.set_level(true);
        self.set_level(false);
    }
}
