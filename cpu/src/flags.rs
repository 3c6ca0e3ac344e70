//! RFLAGS with lazy arithmetic flags.
//!
//! Most instructions that write CF/PF/AF/ZF/SF/OF only record what they did (the operation
//! kind, the operand size, the result and the operands); the six flags are computed when
//! something reads them. The JIT reads the same fields through [`crate::offsets`].

/// Carry flag.
pub const CF: u64 = 1 << 0;
/// Reserved bit 1, always set.
pub const FIXED1: u64 = 1 << 1;
/// Parity flag.
pub const PF: u64 = 1 << 2;
/// Auxiliary carry flag.
pub const AF: u64 = 1 << 4;
/// Zero flag.
pub const ZF: u64 = 1 << 6;
/// Sign flag.
pub const SF: u64 = 1 << 7;
/// Trap flag.
pub const TF: u64 = 1 << 8;
/// Interrupt enable flag.
pub const IF: u64 = 1 << 9;
/// Direction flag.
pub const DF: u64 = 1 << 10;
/// Overflow flag.
pub const OF: u64 = 1 << 11;
/// I/O privilege level (two bits).
pub const IOPL: u64 = 3 << 12;
/// Nested task.
pub const NT: u64 = 1 << 14;
/// Resume flag.
pub const RF: u64 = 1 << 16;
/// Virtual-8086 mode.
pub const VM: u64 = 1 << 17;
/// Alignment check.
pub const AC: u64 = 1 << 18;
/// Virtual interrupt flag.
pub const VIF: u64 = 1 << 19;
/// Virtual interrupt pending.
pub const VIP: u64 = 1 << 20;
/// CPUID available.
pub const ID: u64 = 1 << 21;
/// The six arithmetic status flags.
pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;

/// The operation whose flags are pending.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CcOp {
    /// Flags are materialized in [`LazyFlags::bits`].
    Eflags = 0,
    /// `res = src1 + src2`.
    Add,
    /// `res = src1 + src2 + carry_in`.
    Adc,
    /// `res = src1 - src2`.
    Sub,
    /// `res = src1 - src2 - carry_in`.
    Sbb,
    /// AND/OR/XOR/TEST: CF = OF = AF = 0, the rest from `res` alone (the sources are
    /// never read: translated code does not store them).
    Logic,
    /// INC: like ADD of 1, CF untouched (kept in `bits`).
    Inc,
    /// DEC: like SUB of 1, CF untouched (kept in `bits`).
    Dec,
}

/// RFLAGS in lazy form.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LazyFlags {
    /// All flags that are not pending (and all of them when `op` is [`CcOp::Eflags`]).
    pub bits: u64,
    /// Result of the pending operation, truncated to `size` bytes.
    pub res: u64,
    /// First operand of ADC or SBB. The other operations' first operand follows from
    /// `res` and `src2` (see [`LazyFlags::operands`]), so translated code stores it only
    /// for those two: one store fewer at every block exit with a compare pending.
    pub src1: u64,
    /// Second operand of ADD, ADC, SUB or SBB (INC and DEC add or subtract 1, which
    /// translated code does not store).
    pub src2: u64,
    /// Carry in for ADC/SBB (0 or 1).
    pub carry_in: u64,
    /// The pending operation.
    pub op: CcOp,
    /// Operand size of the pending operation in bytes (1, 2, 4 or 8). Beside `op`, both
    /// 16 bits wide, so that translated code sets the two with one 32-bit immediate store.
    pub size: u16,
}

impl Default for LazyFlags {
    fn default() -> Self {
        Self {
            bits: FIXED1,
            res: 0,
            src1: 0,
            src2: 0,
            carry_in: 0,
            op: CcOp::Eflags,
            size: 8,
        }
    }
}

/// Mask of the low `size` bytes.
#[inline]
pub fn size_mask(size: u32) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

/// The sign bit of a `size`-byte value.
#[inline]
pub fn sign_bit(size: u32) -> u64 {
    1u64 << (size * 8 - 1)
}

/// PF for a result: set when its low byte has an even number of one bits.
#[inline]
pub fn parity(res: u64) -> u64 {
    if (res as u8).count_ones() % 2 == 0 {
        PF
    } else {
        0
    }
}

/// ZF, SF and PF of a `size`-byte result.
#[inline]
pub fn zsp(res: u64, size: u32) -> u64 {
    let res = res & size_mask(size);
    let zf = if res == 0 { ZF } else { 0 };
    let sf = if res & sign_bit(size) != 0 { SF } else { 0 };
    zf | sf | parity(res)
}

impl LazyFlags {
    /// Records an arithmetic operation whose flags become pending.
    #[inline]
    pub fn set_lazy(&mut self, op: CcOp, size: u32, res: u64, src1: u64, src2: u64) {
        if matches!(self.op, CcOp::Inc | CcOp::Dec) || op == CcOp::Inc || op == CcOp::Dec {
            // INC/DEC keep CF, so CF must be materialized into `bits` first.
            let cf = u64::from(self.carry());
            self.bits = (self.bits & !ARITH) | cf;
        }
        let mask = size_mask(size);
        self.op = op;
        self.size = size as u16;
        self.res = res & mask;
        self.src1 = src1 & mask;
        self.src2 = src2 & mask;
    }

    /// Records ADC/SBB with their carry in.
    #[inline]
    pub fn set_lazy_carry(
        &mut self,
        op: CcOp,
        size: u32,
        res: u64,
        src1: u64,
        src2: u64,
        cin: bool,
    ) {
        self.set_lazy(op, size, res, src1, src2);
        self.carry_in = u64::from(cin);
    }

    /// The two operands of the pending operation. Only ADC and SBB (whose carry in
    /// makes them ambiguous) read `src1`; the others' first operand is their result minus
    /// or plus the second, and INC's and DEC's second is 1.
    #[inline]
    fn operands(&self) -> (u64, u64) {
        let mask = size_mask(self.size.into());
        match self.op {
            CcOp::Add => (self.res.wrapping_sub(self.src2) & mask, self.src2),
            CcOp::Sub => (self.res.wrapping_add(self.src2) & mask, self.src2),
            CcOp::Inc => (self.res.wrapping_sub(1) & mask, 1),
            CcOp::Dec => (self.res.wrapping_add(1) & mask, 1),
            _ => (self.src1, self.src2),
        }
    }

    /// CF of the pending operation, without the other five.
    #[inline]
    fn carry(&self) -> bool {
        let res = self.res;
        let (a, b) = self.operands();
        match self.op {
            CcOp::Eflags | CcOp::Inc | CcOp::Dec => self.bits & CF != 0,
            CcOp::Add => res < a,
            CcOp::Adc if self.carry_in != 0 => res <= a,
            CcOp::Adc => res < a,
            CcOp::Sub => a < b,
            CcOp::Sbb if self.carry_in != 0 => a <= b,
            CcOp::Sbb => a < b,
            CcOp::Logic => false,
        }
    }

    /// ZF of the pending operation, without the other five.
    #[inline]
    fn zero(&self) -> bool {
        if self.op == CcOp::Eflags {
            self.bits & ZF != 0
        } else {
            self.res & size_mask(self.size.into()) == 0
        }
    }

    /// The arithmetic flags the pending operation produces.
    fn compute_arith(&self) -> u64 {
        let (res, size) = (self.res, u32::from(self.size));
        let (a, b) = self.operands();
        let sign = sign_bit(size);
        let of = match self.op {
            CcOp::Eflags => return self.bits & ARITH,
            CcOp::Logic => return zsp(res, size),
            CcOp::Add | CcOp::Inc | CcOp::Adc => (a ^ res) & (b ^ res) & sign != 0,
            CcOp::Sub | CcOp::Dec | CcOp::Sbb => (a ^ b) & (a ^ res) & sign != 0,
        };
        let of = if of { OF } else { 0 };
        u64::from(self.carry()) | of | ((a ^ b ^ res) & AF) | zsp(res, size)
    }

    /// The full RFLAGS value.
    #[inline]
    pub fn get(&self) -> u64 {
        if self.op == CcOp::Eflags {
            self.bits
        } else {
            (self.bits & !ARITH) | self.compute_arith()
        }
    }

    /// Replaces the whole RFLAGS value (bit 1 forced set).
    #[inline]
    pub fn set(&mut self, value: u64) {
        self.bits = value | FIXED1;
        self.op = CcOp::Eflags;
    }

    /// Sets the flags in `mask` to the corresponding bits of `value`, keeping the others.
    #[inline]
    pub fn update(&mut self, mask: u64, value: u64) {
        let current = self.get();
        self.set((current & !mask) | (value & mask));
    }

    /// Whether flag `flag` is set.
    #[inline]
    pub fn test(&self, flag: u64) -> bool {
        if flag & ARITH == 0 || self.op == CcOp::Eflags {
            self.bits & flag != 0
        } else if flag == CF {
            self.carry()
        } else if flag == ZF {
            self.zero()
        } else {
            self.get() & flag != 0
        }
    }

    /// Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc opcodes).
    #[inline]
    pub fn condition(&self, cc: u8) -> bool {
        let result = match (cc >> 1, self.op) {
            // The common conditions straight from the pending operation (a compare, a
            // test), without computing all six flags.
            (1, _) => self.carry(),
            (2, _) => self.zero(),
            (3, _) => self.carry() || self.zero(),
            (6 | 7, CcOp::Sub) => {
                // SF != OF after a - b is a signed a < b at the operation's size.
                let unused = 64 - 8 * u32::from(self.size);
                let (a, b) = self.operands();
                let less = ((a << unused) as i64) < ((b << unused) as i64);
                less || (cc >> 1 == 7 && self.zero())
            }
            (6 | 7, CcOp::Logic) => {
                // OF is clear: SF alone.
                let negative = self.res & sign_bit(self.size.into()) != 0;
                negative || (cc >> 1 == 7 && self.zero())
            }
            _ => {
                let f = self.get();
                let flag = |m: u64| f & m != 0;
                match cc >> 1 {
                    0 => flag(OF),
                    4 => flag(SF),
                    5 => flag(PF),
                    6 => flag(SF) != flag(OF),
                    _ => flag(ZF) || (flag(SF) != flag(OF)),
                }
            }
        };
        result ^ (cc & 1 != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_adc_and_sbb_read_the_first_source() {
        let cases = [
            (CcOp::Add, 1, 0x7f, 0x81),
            (CcOp::Add, 8, u64::MAX, 2),
            (CcOp::Sub, 1, 0x10, 0x20),
            (CcOp::Sub, 4, 0x8000_0000, 1),
            (CcOp::Sub, 8, 5, 5),
            (CcOp::Inc, 2, 0x7fff, 1),
            (CcOp::Dec, 8, 0, 1),
        ];
        for (op, size, a, b) in cases {
            let mask = size_mask(size);
            let res = match op {
                CcOp::Add | CcOp::Inc => a.wrapping_add(b),
                _ => a.wrapping_sub(b),
            };
            let mut f = LazyFlags::default();
            f.set_lazy(op, size, res, a, b);
            let want = (
                f.get(),
                (0..16).map(|cc| f.condition(cc)).collect::<Vec<_>>(),
            );
            // What translated code leaves: no first source, and no second for INC/DEC.
            f.src1 = !a & mask;
            if matches!(op, CcOp::Inc | CcOp::Dec) {
                f.src2 = 0x55 & mask;
            }
            let got = (
                f.get(),
                (0..16).map(|cc| f.condition(cc)).collect::<Vec<_>>(),
            );
            assert_eq!(got, want, "{op:?} size {size} {a:#x} {b:#x}");
        }
    }

    #[test]
    fn logic_flags_ignore_the_sources_and_the_arithmetic_bits() {
        let mut f = LazyFlags::default();
        f.set_lazy(CcOp::Logic, 1, 0x80, 0x80, 0x80);
        let want = f.get();
        assert_eq!(want & ARITH, SF);
        // What the JIT leaves: stale sources, and the arithmetic bits of an earlier INC.
        f.src1 = 0x1234;
        f.src2 = 0xffff;
        f.bits |= CF | OF | AF;
        assert_eq!(f.get(), want);
    }

    #[test]
    fn sub_flags_match_cmp_semantics() {
        let mut f = LazyFlags::default();
        f.set_lazy(CcOp::Sub, 1, 0x00u64.wrapping_sub(1), 0, 1);
        assert_eq!(f.get() & ARITH, CF | AF | SF | PF);
        f.set_lazy(CcOp::Sub, 4, 0, 5, 5);
        assert_eq!(f.get() & ARITH, ZF | PF);
        f.set_lazy(CcOp::Sub, 1, 0x80u64.wrapping_sub(1), 0x80, 1);
        assert_eq!(f.get() & (OF | CF), OF);
    }

    #[test]
    fn inc_keeps_carry() {
        let mut f = LazyFlags::default();
        f.set(FIXED1 | CF);
        f.set_lazy(CcOp::Inc, 1, 0, 0xff, 1);
        assert_eq!(f.get() & (CF | ZF | OF), CF | ZF);
        f.set_lazy(CcOp::Dec, 1, 0x7f, 0x80, 1);
        assert_eq!(f.get() & (CF | OF), CF | OF);
    }

    /// The condition evaluated the way the fast paths avoid: from all six flags.
    fn condition_from_rflags(f: &LazyFlags, cc: u8) -> bool {
        let f = f.get();
        let flag = |m: u64| f & m != 0;
        let result = match cc >> 1 {
            0 => flag(OF),
            1 => flag(CF),
            2 => flag(ZF),
            3 => flag(CF) || flag(ZF),
            4 => flag(SF),
            5 => flag(PF),
            6 => flag(SF) != flag(OF),
            _ => flag(ZF) || (flag(SF) != flag(OF)),
        };
        result ^ (cc & 1 != 0)
    }

    #[test]
    fn every_condition_and_flag_test_agrees_with_the_computed_flags() {
        let values = [
            0u64,
            1,
            2,
            0x7f,
            0x80,
            0xff,
            0x7fff,
            0x8000,
            0xffff,
            0x7fff_ffff,
        ];
        let values: Vec<u64> = values
            .iter()
            .flat_map(|&v| [v, v.wrapping_neg(), v | 0x8000_0000, v.rotate_right(1)])
            .collect();
        let ops = [
            CcOp::Add,
            CcOp::Adc,
            CcOp::Sub,
            CcOp::Sbb,
            CcOp::Logic,
            CcOp::Inc,
            CcOp::Dec,
        ];
        for op in ops {
            for size in [1, 2, 4, 8] {
                let mask = size_mask(size);
                for &a in &values {
                    for &b in &values {
                        for (cin, kept_cf) in [(false, 0), (true, CF)] {
                            let (a, b) = (a & mask, b & mask);
                            let res = match op {
                                CcOp::Add => a.wrapping_add(b),
                                CcOp::Adc => a.wrapping_add(b).wrapping_add(u64::from(cin)),
                                CcOp::Sub => a.wrapping_sub(b),
                                CcOp::Sbb => a.wrapping_sub(b).wrapping_sub(u64::from(cin)),
                                CcOp::Inc => a.wrapping_add(1),
                                CcOp::Dec => a.wrapping_sub(1),
                                _ => a & b,
                            };
                            let mut f = LazyFlags::default();
                            f.set(FIXED1 | kept_cf);
                            f.set_lazy_carry(op, size, res, a, b, cin);
                            for cc in 0..16 {
                                let want = condition_from_rflags(&f, cc);
                                assert_eq!(
                                    f.condition(cc),
                                    want,
                                    "{op:?} {size} {a:#x} {b:#x} cc {cc}"
                                );
                            }
                            for flag in [CF, ZF, SF, OF, PF, AF] {
                                assert_eq!(f.test(flag), f.get() & flag != 0, "{op:?} {flag:#x}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn conditions() {
        let mut f = LazyFlags::default();
        f.set_lazy(CcOp::Sub, 8, 3u64.wrapping_sub(5), 3, 5);
        assert!(f.condition(0x2)); // B
        assert!(f.condition(0xc)); // L
        assert!(!f.condition(0x4)); // E
        assert!(f.condition(0x5)); // NE
    }
}
