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

#[cfg(test)]
pub(crate) mod tests {
    use super::IrqLine;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A line that remembers its level, for device tests.
    #[derive(Clone, Default)]
    pub(crate) struct Recorder(Arc<AtomicBool>);

    impl Recorder {
        pub(crate) fn level(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }

    impl IrqLine for Recorder {
        fn set_level(&self, high: bool) {
            self.0.store(high, Ordering::Relaxed);
        }
    }
}
