//! The i8254 programmable interval timer: three 16-bit counters clocked at 1.193182 MHz,
//! ports 0x40-0x43, with channel 2's gate and output on port 0x61 (bits 0 and 5).
//!
//! Time is the virtual clock in nanoseconds, passed in by the caller; a counter's value is
//! computed from how long ago it was loaded, so nothing ticks on the host. The machine asks
//! [`Pit::next_irq0_edge`] when channel 0's output next rises (IRQ 0) and runs the CPU until
//! then.
//!
//! Modes 0 (interrupt on terminal count), 1 (hardware one-shot), 2 (rate generator),
//! 3 (square wave), 4 (software strobe) and 5 (hardware strobe); binary counting (a BCD
//! request counts in binary); counter latch and read-back; LSB, MSB and LSB-then-MSB access.

/// Input clock of the counters in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Converts nanoseconds to counter ticks.
fn ticks_between(from_ns: u64, to_ns: u64) -> u64 {
    (u128::from(to_ns.saturating_sub(from_ns)) * u128::from(PIT_HZ) / 1_000_000_000) as u64
}

/// The first nanosecond at which `ticks` ticks have elapsed since `from_ns`.
fn ns_after_ticks(from_ns: u64, ticks: u64) -> u64 {
    from_ns + (u128::from(ticks) * 1_000_000_000).div_ceil(u128::from(PIT_HZ)) as u64
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Access {
    #[default]
    Lsb,
    Msb,
    Word,
}

#[derive(Clone, Debug, Default)]
struct Channel {
    mode: u8,
    access: Access,
    /// The count loaded (0 means 65536).
    reload: u32,
    /// When counting started (the load, or a gate trigger in modes 1/5), if it has.
    start_ns: Option<u64>,
    gate: bool,
    /// Writes of a word: the LSB has been written, the MSB is next.
    write_high: bool,
    pending_low: u8,
    /// Reads of a word: the LSB has been read, the MSB is next.
    read_high: bool,
    latched: Option<u16>,
    status_latched: Option<u8>,
    /// A count was written but not yet loaded into the counter.
    null_count: bool,
}

impl Channel {
    fn elapsed(&self, now: u64) -> Option<u64> {
        self.start_ns.map(|start| ticks_between(start, now))
    }

    /// The counter's current value.
    fn count(&self, now: u64) -> u16 {
        let Some(t) = self.elapsed(now) else {
            return self.reload as u16;
        };
        let n = u64::from(self.reload);
        let value = match self.mode {
            2 => n - t % n,
            3 => {
                // Decrements by two, reloading every half period.
                let half = n.div_ceil(2).max(1);
                (n - 2 * (t % half)).max(2)
            }
            _ => (n.wrapping_sub(t)) & 0xffff,
        };
        value as u16
    }

    /// The output level.
    fn out(&self, now: u64) -> bool {
        let n = u64::from(self.reload);
        match (self.mode, self.elapsed(now)) {
            (0, None) => false,
            (0, Some(t)) => t >= n,
            (1, None) => true,
            (1, Some(t)) => t >= n,
            (2, None) | (3, None) => true,
            (2, Some(t)) => t % n != n - 1,
            (3, Some(t)) => t % n < n.div_ceil(2),
            (_, None) => true,
            (_, Some(t)) => t != n,
        }
    }

    /// When the output next rises after `now`.
    fn next_rise(&self, now: u64) -> Option<u64> {
        let start = self.start_ns?;
        let n = u64::from(self.reload);
        let t = ticks_between(start, now);
        let at = match self.mode {
            0 | 1 if t < n => n,
            2 => (t / n + 1) * n,
            3 => (t / n + 1) * n,
            4 | 5 if t <= n => n + 1,
            _ => return None,
        };
        Some(ns_after_ticks(start, at))
    }

    /// Loads a complete count.
    fn load(&mut self, count: u16, now: u64) {
        self.reload = if count == 0 {
            0x1_0000
        } else {
            u32::from(count)
        };
        self.null_count = false;
        // Modes 1 and 5 wait for a gate edge; the others start at once (gated by GATE).
        self.start_ns = match self.mode {
            1 | 5 => None,
            _ if self.gate => Some(now),
            _ => None,
        };
    }

    fn write(&mut self, value: u8, now: u64) {
        match self.access {
            Access::Lsb => self.load(u16::from(value), now),
            Access::Msb => self.load(u16::from(value) << 8, now),
            Access::Word if !self.write_high => {
                self.pending_low = value;
                self.write_high = true;
                self.null_count = true;
            }
            Access::Word => {
                self.write_high = false;
                self.load(u16::from(self.pending_low) | (u16::from(value) << 8), now);
            }
        }
    }

    fn read(&mut self, now: u64) -> u8 {
        if let Some(status) = self.status_latched.take() {
            return status;
        }
        let value = self.latched.unwrap_or_else(|| self.count(now));
        let byte = match self.access {
            Access::Lsb => value as u8,
            Access::Msb => (value >> 8) as u8,
            Access::Word => {
                let high = self.read_high;
                self.read_high = !high;
                if high {
                    (value >> 8) as u8
                } else {
                    return value as u8;
                }
            }
        };
        self.latched = None;
        byte
    }

    /// GATE changes (only channel 2's is wired, to port 0x61 bit 0).
    fn set_gate(&mut self, high: bool, now: u64) {
        let rising = high && !self.gate;
        self.gate = high;
        if self.reload == 0 {
            // Never loaded: nothing to start.
            return;
        }
        match self.mode {
            // A rising edge (re)starts modes 1, 2, 3 and 5.
            1 | 2 | 3 | 5 if rising => self.start_ns = Some(now),
            // Low gate stops counting in modes 0, 2, 3, 4: model it as a restart on rise.
            0 | 4 if rising && self.start_ns.is_none() && !self.null_count => {
                self.start_ns = Some(now)
            }
            _ => {}
        }
    }
}

/// The three counters and port 0x61's timer bits.
#[derive(Clone, Debug)]
pub struct Pit {
    channels: [Channel; 3],
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// The timer after reset: channels 0 and 1 gated on, channel 2's gate off.
    pub fn new() -> Self {
        let mut channels: [Channel; 3] = Default::default();
        channels[0].gate = true;
        channels[1].gate = true;
        Pit { channels }
    }

    /// A read of port 0x40-0x42 (0x43 reads as all ones).
    pub fn read(&mut self, port: u16, now_ns: u64) -> u8 {
        match port {
            0x40..=0x42 => self.channels[usize::from(port - 0x40)].read(now_ns),
            _ => 0xff,
        }
    }

    /// A write of port 0x40-0x43.
    pub fn write(&mut self, port: u16, value: u8, now_ns: u64) {
        match port {
            0x40..=0x42 => self.channels[usize::from(port - 0x40)].write(value, now_ns),
            0x43 => self.control(value, now_ns),
            _ => {}
        }
    }

    fn control(&mut self, value: u8, now: u64) {
        let select = usize::from(value >> 6);
        if select == 3 {
            self.read_back(value, now);
            return;
        }
        let channel = &mut self.channels[select];
        let access = (value >> 4) & 3;
        if access == 0 {
            // Counter latch command.
            if channel.latched.is_none() {
                channel.latched = Some(channel.count(now));
                channel.read_high = false;
            }
            return;
        }
        channel.access = match access {
            1 => Access::Lsb,
            2 => Access::Msb,
            _ => Access::Word,
        };
        channel.mode = match (value >> 1) & 7 {
            6 => 2,
            7 => 3,
            m => m,
        };
        channel.write_high = false;
        channel.read_high = false;
        channel.latched = None;
        channel.start_ns = None;
        channel.null_count = true;
    }

    /// Read-back command: latch counts and/or status of the selected channels.
    fn read_back(&mut self, value: u8, now: u64) {
        for (i, channel) in self.channels.iter_mut().enumerate() {
            if value & (2 << i) == 0 {
                continue;
            }
            if value & 0x20 == 0 && channel.latched.is_none() {
                channel.latched = Some(channel.count(now));
                channel.read_high = false;
            }
            if value & 0x10 == 0 && channel.status_latched.is_none() {
                let access = match channel.access {
                    Access::Lsb => 1,
                    Access::Msb => 2,
                    Access::Word => 3,
                };
                let out = u8::from(channel.out(now)) << 7;
                let null = u8::from(channel.null_count) << 6;
                channel.status_latched = Some(out | null | (access << 4) | (channel.mode << 1));
            }
        }
    }

    /// Port 0x61 bits the timer owns: bit 0 is channel 2's gate (writable), bit 5 its
    /// output (read-only).
    pub fn read_port61(&self, now_ns: u64) -> u8 {
        u8::from(self.channels[2].gate) | (u8::from(self.channels[2].out(now_ns)) << 5)
    }

    /// A write to port 0x61: bit 0 drives channel 2's gate.
    pub fn write_port61(&mut self, value: u8, now_ns: u64) {
        self.channels[2].set_gate(value & 1 != 0, now_ns);
    }

    /// Channel 0's output level (IRQ 0's line).
    pub fn irq0_level(&self, now_ns: u64) -> bool {
        self.channels[0].out(now_ns)
    }

    /// When channel 0's output next rises after `now_ns`, if it will.
    pub fn next_irq0_edge(&self, now_ns: u64) -> Option<u64> {
        self.channels[0].next_rise(now_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn linux_style_periodic_timer() {
        // Channel 0, LSB then MSB, mode 2, count 1193 (about 1 kHz).
        let mut pit = Pit::new();
        pit.write(0x43, 0x34, 0);
        pit.write(0x40, (1193u16 % 256) as u8, 0);
        pit.write(0x40, (1193 / 256) as u8, 0);
        let first = pit.next_irq0_edge(0).unwrap();
        assert!((999_000..1_001_000).contains(&first), "{first}");
        let second = pit.next_irq0_edge(first).unwrap();
        assert!((second - first).abs_diff(MS) < 2_000);
        assert!(pit.irq0_level(first + 1000));
    }

    #[test]
    fn latch_reads_a_frozen_count() {
        let mut pit = Pit::new();
        pit.write(0x43, 0x30, 0); // channel 0, word, mode 0
        pit.write(0x40, 0x00, 0);
        pit.write(0x40, 0x10, 0); // 4096
        pit.write(0x43, 0x00, MS); // latch at 1 ms: 1193 ticks elapsed
        let low = pit.read(0x40, 5 * MS);
        let high = pit.read(0x40, 5 * MS);
        let value = u16::from(low) | (u16::from(high) << 8);
        assert_eq!(value, 4096 - 1193);
        assert!(!pit.irq0_level(MS), "mode 0: low until terminal count");
        assert!(pit.irq0_level(4 * MS), "4096 ticks is about 3.4 ms");
    }

    #[test]
    fn channel2_gate_and_output_on_port61() {
        // Linux's PIT TSC calibration: channel 2, mode 0, gate via port 0x61.
        let mut pit = Pit::new();
        pit.write_port61(0, 0);
        pit.write(0x43, 0xb0, 0);
        pit.write(0x42, 0xff, 0);
        pit.write(0x42, 0xff, 0);
        assert_eq!(pit.read_port61(10 * MS) & 0x20, 0, "gate low: not counting");
        pit.write_port61(1, 10 * MS);
        assert_eq!(pit.read_port61(20 * MS) & 0x20, 0, "counting");
        assert_eq!(
            pit.read_port61(70 * MS) & 0x20,
            0x20,
            "65535 ticks is about 55 ms"
        );
    }

    #[test]
    fn gate_edges_on_an_unloaded_channel_are_harmless() {
        let mut pit = Pit::new();
        pit.write(0x43, 0xb4, 0); // channel 2, mode 2, nothing loaded yet
        pit.write_port61(1, 0);
        pit.write_port61(0, 1);
        pit.write_port61(1, 2);
        assert_eq!(pit.read_port61(MS) & 1, 1);
        let _ = pit.read(0x42, MS);
    }

    #[test]
    fn read_back_status_and_square_wave() {
        let mut pit = Pit::new();
        pit.write(0x43, 0x36, 0); // channel 0, word, mode 3
        pit.write(0x40, 100, 0);
        pit.write(0x40, 0, 0);
        pit.write(0x43, 0xe2, 0); // read-back status of channel 0
        let status = pit.read(0x40, 0);
        assert_eq!(status & 0x3f, 0x36, "access and mode");
        assert_eq!(
            status & 0x80,
            0x80,
            "output high at the start of the period"
        );
        let half_period_ns = 50 * 1_000_000_000 / PIT_HZ + 1000;
        assert!(!pit.irq0_level(half_period_ns));
    }
}
