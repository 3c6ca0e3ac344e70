//! The ACPI fixed-hardware power-management registers: PM1a event (status/enable), PM1a
//! control and the PM timer, in one I/O window laid out as the firmware's FADT describes.
//!
//! The machine is always in ACPI mode (SCI_EN reads as set; the FADT has no SMI command
//! port). Writing SLP_EN with the `\_S5` sleep type asks for power-off, which is how Linux's
//! `poweroff` ends the machine. The PM timer is a 32-bit counter at 3.579545 MHz derived from
//! the virtual clock, so it advances exactly with the guest's instructions. The SCI is raised
//! while an enabled PM1 status bit is set.

use crate::IrqLine;

/// The PM timer's frequency.
pub const PM_TIMER_HZ: u64 = 3_579_545;

/// Byte offsets inside the window.
const PM1_STATUS: u64 = 0;
const PM1_ENABLE: u64 = 2;
const PM1_CONTROL: u64 = 4;
const PM_TIMER: u64 = 8;
/// The window's length.
pub const PM_WINDOW_LEN: u64 = 12;

/// PM1 status: the timer's top bit changed.
const TMR_STS: u16 = 1 << 0;
/// PM1 status: wake status.
const WAK_STS: u16 = 1 << 15;
/// PM1 control: SCI_EN.
const SCI_EN: u16 = 1 << 0;
/// PM1 control: SLP_EN (write-only).
const SLP_EN: u16 = 1 << 13;
const SLP_TYP_SHIFT: u16 = 10;
const SLP_TYP_MASK: u16 = 0b111 << SLP_TYP_SHIFT;

/// The PM1a registers and the PM timer.
pub struct AcpiPm {
    status: u16,
    enable: u16,
    control: u16,
    /// The PM timer value when TMR_STS was last cleared.
    timer_cleared_at: u64,
    /// The SLP_TYP that powers the machine off.
    s5_sleep_type: u16,
    poweroff: bool,
    sci: Box<dyn IrqLine>,
}

impl AcpiPm {
    /// PM registers whose SCI is `sci`; a sleep request with `s5_sleep_type` powers off.
    pub fn new(sci: Box<dyn IrqLine>, s5_sleep_type: u8) -> Self {
        Self {
            status: 0,
            enable: 0,
            control: SCI_EN,
            timer_cleared_at: 0,
            s5_sleep_type: u16::from(s5_sleep_type),
            poweroff: false,
            sci,
        }
    }

    /// The PM timer's 32-bit count at virtual time `now_ns`.
    pub fn timer(now_ns: u64) -> u64 {
        ((u128::from(now_ns) * u128::from(PM_TIMER_HZ)) / 1_000_000_000) as u64
    }

    fn status_now(&self, now_ns: u64) -> u16 {
        let ticks = Self::timer(now_ns);
        let carried = (ticks >> 31) != (self.timer_cleared_at >> 31)
            || ticks - self.timer_cleared_at >= 1 << 31;
        self.status | if carried { TMR_STS } else { 0 }
    }

    fn register_byte(&self, offset: u64, now_ns: u64) -> u8 {
        let (value, shift) = match offset {
            0..=1 => (u64::from(self.status_now(now_ns)), offset - PM1_STATUS),
            2..=3 => (u64::from(self.enable), offset - PM1_ENABLE),
            4..=5 => (u64::from(self.control & !SLP_EN), offset - PM1_CONTROL),
            8..=11 => (Self::timer(now_ns) & 0xffff_ffff, offset - PM_TIMER),
            _ => return 0xff,
        };
        (value >> (8 * shift)) as u8
    }

    /// Reads `size` bytes at `offset` in the window.
    pub fn read(&self, offset: u64, size: u8, now_ns: u64) -> u32 {
        (0..u64::from(size.min(4))).fold(0, |acc, i| {
            acc | u32::from(self.register_byte(offset + i, now_ns)) << (8 * i)
        })
    }

    /// Writes `size` bytes of `value` at `offset` in the window.
    pub fn write(&mut self, offset: u64, size: u8, value: u32, now_ns: u64) {
        for i in 0..u64::from(size.min(4)) {
            let byte = u16::from((value >> (8 * i)) as u8);
            let at = offset + i;
            let shift = 8 * (at & 1);
            match at {
                0..=1 => {
                    let clear = byte << shift;
                    if clear & TMR_STS != 0 {
                        self.timer_cleared_at = Self::timer(now_ns);
                    }
                    self.status &= !clear;
                }
                2..=3 => self.enable = (self.enable & !(0xff << shift)) | (byte << shift),
                4..=5 => {
                    let control = (self.control & !(0xff << shift)) | (byte << shift);
                    self.control_write(control);
                }
                _ => {}
            }
        }
        self.update_sci(now_ns);
    }

    fn control_write(&mut self, control: u16) {
        if control & SLP_EN != 0 && (control & SLP_TYP_MASK) >> SLP_TYP_SHIFT == self.s5_sleep_type
        {
            self.poweroff = true;
            self.status |= WAK_STS;
        }
        // SCI_EN is fixed: the machine has no legacy (SMM) mode to return to.
        self.control = (control & !SLP_EN) | SCI_EN;
    }

    fn update_sci(&self, now_ns: u64) {
        self.sci
            .set_level(self.status_now(now_ns) & self.enable & !WAK_STS != 0);
    }

    /// Whether the guest asked for power-off (S5).
    pub fn poweroff_requested(&self) -> bool {
        self.poweroff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::tests::Recorder;

    fn pm() -> (AcpiPm, Recorder) {
        let line = Recorder::default();
        (AcpiPm::new(Box::new(line.clone()), 5), line)
    }

    #[test]
    fn slp_en_with_s5_powers_off_and_other_types_do_not() {
        let (mut pm, _) = pm();
        pm.write(PM1_CONTROL, 2, (3 << 10) | SLP_EN as u32, 0);
        assert!(!pm.poweroff_requested(), "S3 is not declared");
        assert_eq!(pm.read(PM1_CONTROL, 2, 0) & 1, 1, "SCI_EN stays set");
        pm.write(PM1_CONTROL, 2, (5 << 10) | SLP_EN as u32, 0);
        assert!(pm.poweroff_requested());
    }

    #[test]
    fn pm_timer_follows_the_virtual_clock() {
        let (pm, _) = pm();
        assert_eq!(pm.read(PM_TIMER, 4, 0), 0);
        assert_eq!(pm.read(PM_TIMER, 4, 1_000_000_000), PM_TIMER_HZ as u32);
        // Byte reads see the same count.
        let t = 123_456_789;
        let whole = pm.read(PM_TIMER, 4, t);
        let lo = pm.read(PM_TIMER, 2, t);
        let hi = pm.read(PM_TIMER + 2, 2, t);
        assert_eq!(whole, lo | hi << 16);
    }

    #[test]
    fn timer_carry_sets_tmr_sts_and_raises_the_sci_when_enabled() {
        let (mut pm, line) = pm();
        let carry_ns = ((1u128 << 31) * 1_000_000_000 / u128::from(PM_TIMER_HZ)) as u64 + 1;
        assert_eq!(pm.read(PM1_STATUS, 2, 0), 0);
        assert_eq!(pm.read(PM1_STATUS, 2, carry_ns) & 1, 1);
        pm.write(PM1_ENABLE, 2, 1, carry_ns);
        assert!(line.level(), "TMR_STS & TMR_EN raise the SCI");
        pm.write(PM1_STATUS, 2, 1, carry_ns);
        assert_eq!(pm.read(PM1_STATUS, 2, carry_ns) & 1, 0, "write-1-to-clear");
        assert!(!line.level());
    }
}
