//! The MC146818 real-time clock and CMOS RAM at ports 0x70 (index; bit 7 masks NMI) and
//! 0x71 (data).
//!
//! The wall-clock time is a configurable epoch (Unix seconds) plus the virtual clock, so
//! the same run reads the same dates. Registers A-D, BCD or binary, 12- or 24-hour format,
//! the SET bit (the clock holds while it is set), UIP during the last 244 us of each second,
//! and the periodic, update-ended and alarm flags in register C (cleared by reading it),
//! with the time of the next IRQ 8 for the machine.

const SECONDS: usize = 0x00;
const ALARM_SECONDS: usize = 0x01;
const MINUTES: usize = 0x02;
const ALARM_MINUTES: usize = 0x03;
const HOURS: usize = 0x04;
const ALARM_HOURS: usize = 0x05;
const WEEKDAY: usize = 0x06;
const DAY: usize = 0x07;
const MONTH: usize = 0x08;
const YEAR: usize = 0x09;
const REG_A: usize = 0x0a;
const REG_B: usize = 0x0b;
const REG_C: usize = 0x0c;
const REG_D: usize = 0x0d;
const CENTURY: usize = 0x32;

const B_SET: u8 = 0x80;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
const B_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;
const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;

const NS: u64 = 1_000_000_000;
/// How long before each second's update UIP reads as set.
const UIP_NS: u64 = 244_000;

/// A calendar date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Full year.
    pub year: u32,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    /// 0-23.
    pub hour: u32,
    /// 0-59.
    pub minute: u32,
    /// 0-59.
    pub second: u32,
    /// 1 (Sunday) - 7.
    pub weekday: u32,
}

impl DateTime {
    /// The civil date of Unix time `secs` (proleptic Gregorian, UTC).
    pub fn from_unix(secs: u64) -> Self {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Days since 1970-01-01 to a civil date (era-based algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            // 1970-01-01 was a Thursday (5 with Sunday = 1).
            weekday: ((days + 4).rem_euclid(7) + 1) as u32,
        }
    }
}

/// The RTC and its 128 bytes of CMOS.
#[derive(Clone, Debug)]
pub struct Rtc {
    cmos: [u8; 128],
    index: u8,
    /// Unix time at virtual time 0.
    epoch: u64,
    /// Seconds the guest moved the clock by (writing the time registers).
    offset: i64,
    /// Virtual time of the last register C read: flags cover events after it.
    flags_since_ns: u64,
    /// Virtual time the SET bit froze the clock at, if set.
    frozen_at: Option<u64>,
}

impl Rtc {
    /// An RTC reading `epoch` (Unix seconds) at virtual time 0, in BCD and 24-hour mode.
    pub fn new(epoch: u64) -> Self {
        let mut cmos = [0u8; 128];
        cmos[REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate
        cmos[REG_B] = B_24H;
        cmos[REG_D] = 0x80; // valid RAM and time
        Rtc {
            cmos,
            index: 0,
            epoch,
            offset: 0,
            flags_since_ns: 0,
            frozen_at: None,
        }
    }

    fn unix_now(&self, now_ns: u64) -> u64 {
        let now = self.frozen_at.unwrap_or(now_ns);
        (self.epoch as i64 + self.offset + (now / NS) as i64).max(0) as u64
    }

    fn encode(&self, value: u32) -> u8 {
        if self.cmos[REG_B] & B_BINARY != 0 {
            value as u8
        } else {
            (((value / 10) << 4) | (value % 10)) as u8
        }
    }

    fn decode(&self, value: u8) -> u32 {
        if self.cmos[REG_B] & B_BINARY != 0 {
            u32::from(value)
        } else {
            u32::from(value >> 4) * 10 + u32::from(value & 0xf)
        }
    }

    fn hour_register(&self, hour: u32) -> u8 {
        if self.cmos[REG_B] & B_24H != 0 {
            return self.encode(hour);
        }
        let pm = if hour >= 12 { 0x80 } else { 0 };
        let twelve = if hour % 12 == 0 { 12 } else { hour % 12 };
        self.encode(twelve) | pm
    }

    fn decode_hour(&self, value: u8) -> u32 {
        if self.cmos[REG_B] & B_24H != 0 {
            return self.decode(value);
        }
        let twelve = self.decode(value & 0x7f) % 12;
        twelve + if value & 0x80 != 0 { 12 } else { 0 }
    }

    /// A read of port 0x70 or 0x71.
    pub fn read(&mut self, port: u16, now_ns: u64) -> u8 {
        if port != 0x71 {
            return 0xff;
        }
        let index = usize::from(self.index & 0x7f);
        let t = DateTime::from_unix(self.unix_now(now_ns));
        match index {
            SECONDS => self.encode(t.second),
            MINUTES => self.encode(t.minute),
            HOURS => self.hour_register(t.hour),
            WEEKDAY => self.encode(t.weekday),
            DAY => self.encode(t.day),
            MONTH => self.encode(t.month),
            YEAR => self.encode(t.year % 100),
            CENTURY => self.encode(t.year / 100),
            REG_A => {
                let updating = self.frozen_at.is_none() && now_ns % NS >= NS - UIP_NS;
                (self.cmos[REG_A] & 0x7f) | if updating { 0x80 } else { 0 }
            }
            REG_C => {
                let flags = self.flags(now_ns);
                self.flags_since_ns = now_ns;
                flags
            }
            _ => self.cmos[index],
        }
    }

    /// A write of port 0x70 or 0x71.
    pub fn write(&mut self, port: u16, value: u8, now_ns: u64) {
        if port == 0x70 {
            self.index = value;
            return;
        }
        if port != 0x71 {
            return;
        }
        let index = usize::from(self.index & 0x7f);
        match index {
            SECONDS | MINUTES | HOURS | DAY | MONTH | YEAR | CENTURY => {
                self.set_time_field(index, value, now_ns)
            }
            REG_B => {
                let was_set = self.cmos[REG_B] & B_SET != 0;
                self.cmos[REG_B] = value;
                match (was_set, value & B_SET != 0) {
                    (false, true) => self.frozen_at = Some(now_ns),
                    (true, false) => {
                        // Resume from the frozen time.
                        let frozen = self.frozen_at.take().unwrap_or(now_ns);
                        self.offset -= ((now_ns / NS) as i64) - ((frozen / NS) as i64);
                    }
                    _ => {}
                }
            }
            REG_C | REG_D => {}
            _ => self.cmos[index] = value,
        }
    }

    /// Moves the clock so that field `index` reads `value`.
    fn set_time_field(&mut self, index: usize, value: u8, now_ns: u64) {
        let mut t = DateTime::from_unix(self.unix_now(now_ns));
        match index {
            SECONDS => t.second = self.decode(value).min(59),
            MINUTES => t.minute = self.decode(value).min(59),
            HOURS => t.hour = self.decode_hour(value).min(23),
            DAY => t.day = self.decode(value).clamp(1, 31),
            MONTH => t.month = self.decode(value).clamp(1, 12),
            YEAR => t.year = t.year / 100 * 100 + self.decode(value) % 100,
            _ => t.year = self.decode(value) * 100 + t.year % 100,
        }
        let target = to_unix(t) as i64;
        self.offset += target - self.unix_now(now_ns) as i64;
    }

    /// The periodic interrupt period, if the rate selects one.
    fn periodic_ns(&self) -> Option<u64> {
        let rate = u32::from(self.cmos[REG_A] & 0x0f);
        match rate {
            0 => None,
            1 | 2 => Some(NS / (1 << (8 - rate))), // 256 Hz and 128 Hz on a 32.768 kHz base
            _ => Some(NS / (32_768 >> (rate - 1))),
        }
    }

    /// The register C flags for events between the last read and `now_ns`.
    fn flags(&self, now_ns: u64) -> u8 {
        let since = self.flags_since_ns;
        let mut flags = 0;
        if self.periodic_ns().is_some_and(|p| now_ns / p > since / p) {
            flags |= C_PF;
        }
        if self.frozen_at.is_none() && now_ns / NS > since / NS {
            flags |= C_UF;
            if self.alarm_between(since, now_ns) {
                flags |= C_AF;
            }
        }
        let enabled = self.cmos[REG_B] & (B_PIE | B_AIE | B_UIE);
        if flags & (enabled) != 0 {
            flags |= C_IRQF;
        }
        flags
    }

    /// Whether the alarm matches at a second boundary in `(from, to]`.
    fn alarm_between(&self, from_ns: u64, to_ns: u64) -> bool {
        let first = from_ns / NS + 1;
        let last = (to_ns / NS).min(first + 86_400);
        (first..=last).any(|s| self.alarm_matches(s))
    }

    fn alarm_matches(&self, virtual_second: u64) -> bool {
        let t = DateTime::from_unix(
            (self.epoch as i64 + self.offset + virtual_second as i64).max(0) as u64,
        );
        let field = |reg: usize, value: u32| {
            let alarm = self.cmos[reg];
            alarm & 0xc0 == 0xc0 || self.decode(alarm) == value
        };
        field(ALARM_SECONDS, t.second)
            && field(ALARM_MINUTES, t.minute)
            && field(ALARM_HOURS, t.hour)
    }

    /// When IRQ 8 next fires after `now_ns` (an enabled periodic, update or alarm event).
    pub fn next_irq8(&self, now_ns: u64) -> Option<u64> {
        let b = self.cmos[REG_B];
        let mut next: Option<u64> = None;
        let mut consider = |t: u64| next = Some(next.map_or(t, |n| n.min(t)));
        if b & B_PIE != 0 {
            if let Some(p) = self.periodic_ns() {
                consider((now_ns / p + 1) * p);
            }
        }
        if self.frozen_at.is_none() {
            let second = now_ns / NS + 1;
            if b & B_UIE != 0 {
                consider(second * NS);
            }
            if b & B_AIE != 0 {
                if let Some(s) = (second..second + 86_400).find(|&s| self.alarm_matches(s)) {
                    consider(s * NS);
                }
            }
        }
        next
    }
}

/// Unix seconds of a civil date and time.
fn to_unix(t: DateTime) -> u64 {
    let y = i64::from(t.year) - i64::from(t.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(t.month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(t.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + i64::from(t.hour * 3600 + t.minute * 60 + t.second)).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24 10:20:30 UTC, a Tuesday.
    const EPOCH: u64 = 1795515630;

    fn read(rtc: &mut Rtc, index: u8, now: u64) -> u8 {
        rtc.write(0x70, index, now);
        rtc.read(0x71, now)
    }

    #[test]
    fn calendar_conversion_round_trips() {
        let t = DateTime::from_unix(EPOCH);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second, t.weekday),
            (2026, 11, 24, 10, 20, 30, 3)
        );
        assert_eq!(to_unix(t), EPOCH);
        let leap = DateTime::from_unix(951_782_400); // 2000-02-29
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
    }

    #[test]
    fn bcd_time_follows_the_virtual_clock() {
        let mut rtc = Rtc::new(EPOCH);
        assert_eq!(read(&mut rtc, 0x00, 0), 0x30);
        assert_eq!(read(&mut rtc, 0x04, 0), 0x10);
        assert_eq!(read(&mut rtc, 0x09, 0), 0x26);
        assert_eq!(read(&mut rtc, 0x32, 0), 0x20);
        assert_eq!(read(&mut rtc, 0x00, 95 * NS), 0x05, "95 s later: 10:22:05");
        assert_eq!(read(&mut rtc, 0x02, 95 * NS), 0x22);
        assert_eq!(read(&mut rtc, 0x0d, 0), 0x80);
    }

    #[test]
    fn binary_12_hour_mode_and_setting_the_time() {
        let mut rtc = Rtc::new(EPOCH + 5 * 3600); // 15:20:30
        rtc.write(0x70, 0x0b, 0);
        rtc.write(0x71, B_BINARY, 0);
        assert_eq!(read(&mut rtc, 0x04, 0), 0x80 | 3, "3 PM");
        rtc.write(0x70, 0x0b, 0);
        rtc.write(0x71, B_SET | B_BINARY | B_24H, 0);
        rtc.write(0x70, 0x02, 0);
        rtc.write(0x71, 45, 0);
        rtc.write(0x70, 0x0b, 0);
        rtc.write(0x71, B_BINARY | B_24H, 0);
        assert_eq!(read(&mut rtc, 0x02, 0), 45);
        assert_eq!(read(&mut rtc, 0x04, 0), 15);
    }

    #[test]
    fn uip_and_interrupt_flags() {
        let mut rtc = Rtc::new(EPOCH);
        assert_eq!(read(&mut rtc, 0x0a, 0) & 0x80, 0);
        assert_eq!(
            read(&mut rtc, 0x0a, NS - 100_000) & 0x80,
            0x80,
            "update in progress"
        );
        rtc.write(0x70, 0x0b, 0);
        rtc.write(0x71, B_24H | B_UIE | B_PIE, 0);
        let _ = read(&mut rtc, 0x0c, 0);
        assert_eq!(rtc.next_irq8(0), Some(NS / 1024), "1024 Hz periodic first");
        let flags = read(&mut rtc, 0x0c, NS + 1);
        assert_eq!(flags & (C_IRQF | C_PF | C_UF), C_IRQF | C_PF | C_UF);
        assert_eq!(read(&mut rtc, 0x0c, NS + 2), 0, "reading C cleared it");
        // Alarm at 10:20:35 (seconds exact, minutes and hours "don't care").
        let mut rtc = Rtc::new(EPOCH);
        for (reg, value) in [
            (0x01, 0x35),
            (0x03, 0xc0),
            (0x05, 0xc0),
            (0x0b, B_24H | B_AIE),
        ] {
            rtc.write(0x70, reg, 0);
            rtc.write(0x71, value, 0);
        }
        assert_eq!(rtc.next_irq8(0), Some(5 * NS));
        assert_eq!(read(&mut rtc, 0x0c, 5 * NS) & C_AF, C_AF);
    }
}
