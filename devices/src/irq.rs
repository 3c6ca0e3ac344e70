//! How a device signals an interrupt: by driving a line, as on a board.

/// An interrupt request line into an interrupt controller.
pub trait IrqLine {
    /// Asserts (`true`) or deasserts the line: a logical level, whatever the electrical
    /// polarity the guest programs. Edge-triggered inputs latch an assertion; level-triggered
    /// inputs stay asserted while it lasts.
    fn set_level(&self, high: bool);

    /// A rising edge followed by a fall, for devices that signal with a pulse.
    fn pulse(&self) {
        self.set_level(true);
        self.set_level(false);
    }
}
