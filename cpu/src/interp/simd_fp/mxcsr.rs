//! MXCSR control and status: SSE availability checks, rounding control, denormal and
//! NaN handling, result classification (overflow, tininess after rounding, FTZ) and the
//! precise #XM decision, on top of `rustc_apfloat` so results do not depend on the host.

use super::super::operand::{Ctx, Exec};
use crate::state::{CR0_EM, CR0_TS, CR4_OSFXSR};
use crate::Exception;
use rustc_apfloat::ieee::{Double, Quad, Single};
use rustc_apfloat::{Float, FloatConvert, Round, Status, StatusAnd};

/// Invalid operation flag.
pub(super) const IE: u32 = 1 << 0;
/// Denormal operand flag.
pub(super) const DE: u32 = 1 << 1;
/// Divide-by-zero flag.
pub(super) const ZE: u32 = 1 << 2;
/// Overflow flag.
pub(super) const OE: u32 = 1 << 3;
/// Underflow flag.
pub(super) const UE: u32 = 1 << 4;
/// Precision (inexact) flag.
pub(super) const PE: u32 = 1 << 5;
/// Denormals-are-zero.
const DAZ: u32 = 1 << 6;
/// Flush-to-zero.
const FTZ: u32 = 1 << 15;
/// Bits LDMXCSR accepts (MXCSR_MASK of the emulated CPU).
const MXCSR_MASK: u32 = 0xffff;
/// Flags detected before the computation; if one of them traps, later ones are not reported.
const PRE_FLAGS: u32 = IE | DE | ZE;
/// CR4.OSXMMEXCPT: #XM is delivered as #XM rather than #UD.
const CR4_OSXMMEXCPT: u64 = 1 << 10;

/// The two IEEE binary formats SSE computes in, seen as raw lane bits.
pub(super) trait Fp: Float + FloatConvert<Quad> + Copy {
    /// Lane width in bits.
    const WIDTH: u32;
    /// The QNaN "indefinite" x86 returns for invalid operations.
    const DEFAULT_NAN: u128;
    /// The quiet bit of a NaN.
    const QUIET: u128;
    /// Exponent field mask.
    const EXP: u128;
    /// Fraction field mask.
    const FRAC: u128;

    /// The sign bit.
    fn sign() -> u128 {
        1 << (Self::WIDTH - 1)
    }

    /// All bits of a lane.
    fn mask() -> u128 {
        u128::MAX >> (128 - Self::WIDTH)
    }

    /// `q` rounded to this format.
    fn from_quad(q: Quad, round: Round) -> StatusAnd<Self>;

    /// The value as a quad (exact).
    fn quad(self) -> Quad {
        self.convert(&mut false).value
    }
}

impl Fp for Single {
    fn from_quad(q: Quad, round: Round) -> StatusAnd<Self> {
        q.convert_r(round, &mut false)
    }

    const WIDTH: u32 = 32;
    const DEFAULT_NAN: u128 = 0xffc0_0000;
    const QUIET: u128 = 1 << 22;
    const EXP: u128 = 0x7f80_0000;
    const FRAC: u128 = 0x007f_ffff;
}

impl Fp for Double {
    fn from_quad(q: Quad, round: Round) -> StatusAnd<Self> {
        q.convert_r(round, &mut false)
    }

    const WIDTH: u32 = 64;
    const DEFAULT_NAN: u128 = 0xfff8_0000_0000_0000;
    const QUIET: u128 = 1 << 51;
    const EXP: u128 = 0x7ff0_0000_0000_0000;
    const FRAC: u128 = 0x000f_ffff_ffff_ffff;
}

/// Whether lane bits `v` are a NaN.
pub(super) fn is_nan<F: Fp>(v: u128) -> bool {
    v & F::EXP == F::EXP && v & F::FRAC != 0
}

/// Whether lane bits `v` are a signaling NaN.
pub(super) fn is_snan<F: Fp>(v: u128) -> bool {
    is_nan::<F>(v) && v & F::QUIET == 0
}

/// Whether lane bits `v` are a denormal (nonzero with a zero exponent).
pub(super) fn is_denormal<F: Fp>(v: u128) -> bool {
    v & F::EXP == 0 && v & F::FRAC != 0
}

/// Lane `i` of a vector.
pub(super) fn lane<F: Fp>(v: u128, i: u32) -> u128 {
    (v >> (i * F::WIDTH)) & F::mask()
}

/// `v` with lane `i` replaced by `x`.
pub(super) fn set_lane<F: Fp>(v: u128, i: u32, x: u128) -> u128 {
    let shift = i * F::WIDTH;
    (v & !(F::mask() << shift)) | ((x & F::mask()) << shift)
}

/// Number of lanes of `F` in an XMM register.
pub(super) fn lanes<F: Fp>() -> u32 {
    128 / F::WIDTH
}

/// Faults an SSE instruction raises before it does anything: #UD when SSE is disabled,
/// #NM when the FPU state is not loaded.
pub(super) fn check_sse(ctx: &Ctx) -> Exec {
    if ctx.cpu.cr0 & CR0_EM != 0 || ctx.cpu.cr4 & CR4_OSFXSR == 0 {
        return Err(Exception::InvalidOpcode);
    }
    if ctx.cpu.cr0 & CR0_TS != 0 {
        return Err(Exception::DeviceNotAvailable);
    }
    Ok(())
}

/// LDMXCSR m32: reserved bits set give #GP(0).
pub(super) fn ldmxcsr(ctx: &mut Ctx) -> Exec {
    check_sse(ctx)?;
    let value = ctx.read(0)? as u32;
    if value & !MXCSR_MASK != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    ctx.cpu.mxcsr = value;
    Ok(())
}

/// STMXCSR m32.
pub(super) fn stmxcsr(ctx: &mut Ctx) -> Exec {
    check_sse(ctx)?;
    let value = ctx.cpu.mxcsr;
    ctx.write(0, u64::from(value))
}

/// The MXCSR of one instruction and the flags its lanes raise.
pub(super) struct Env {
    mxcsr: u32,
    /// Flags raised so far in the current step, ORed over lanes.
    pub flags: u32,
    /// Flags of the finished steps.
    settled: u32,
    /// DE of the current lane, held back until [`Env::result`] knows the lane does not
    /// raise IE or ZE (the host reports no DE for those, e.g. denormal / 0).
    pending_de: bool,
}

impl Env {
    /// An environment for the current MXCSR.
    pub fn new(ctx: &Ctx) -> Self {
        Self {
            mxcsr: ctx.cpu.mxcsr,
            flags: 0,
            settled: 0,
            pending_de: false,
        }
    }

    /// The MXCSR.RC rounding mode.
    pub fn round(&self) -> Round {
        rc_round(self.mxcsr >> 13)
    }

    fn masked(&self, flag: u32) -> bool {
        self.mxcsr & (flag << 7) != 0
    }

    /// Whether DAZ is on.
    pub fn daz(&self) -> bool {
        self.mxcsr & DAZ != 0
    }

    /// A source operand of an arithmetic lane finished by [`Env::result`]: a denormal
    /// becomes signed zero under DAZ, else its DE is held pending.
    pub fn operand<F: Fp>(&mut self, v: u128) -> F {
        self.pending_de |= is_denormal::<F>(v) && !self.daz();
        F::from_bits(self.daz_input::<F>(v))
    }

    /// Drops the pending DE of a lane that turned out invalid.
    pub fn invalid<F: Fp>(&mut self) -> u128 {
        self.pending_de = false;
        self.flags |= IE;
        F::DEFAULT_NAN
    }

    /// The bits of a source operand after DAZ, raising DE for a kept denormal.
    pub fn flush_input<F: Fp>(&mut self, v: u128) -> u128 {
        if is_denormal::<F>(v) && !self.daz() {
            self.flags |= DE;
        }
        self.daz_input::<F>(v)
    }

    /// The bits of a source operand after DAZ, raising nothing.
    pub fn daz_input<F: Fp>(&self, v: u128) -> u128 {
        if is_denormal::<F>(v) && self.daz() {
            v & F::sign()
        } else {
            v
        }
    }

    /// NaN propagation for a two-source operation: IE for an SNaN; the first NaN source,
    /// quieted, is the result. `None` if neither source is a NaN.
    pub fn nan2<F: Fp>(&mut self, a: u128, b: u128) -> Option<u128> {
        if is_snan::<F>(a) || is_snan::<F>(b) {
            self.flags |= IE;
        }
        if is_nan::<F>(a) {
            Some(a | F::QUIET)
        } else if is_nan::<F>(b) {
            Some(b | F::QUIET)
        } else {
            None
        }
    }

    /// Turns an apfloat result into lane bits and flags. Near the ends of the range the
    /// result is checked against `exact()`, the exact result rounded to odd at quad
    /// precision (see [`round_odd`]): x86 detects overflow and tininess on the result
    /// rounded with an unbounded exponent, while apfloat reports neither an overflow that
    /// directed rounding turns into the largest finite value nor a tiny exact result.
    pub fn result<F: Fp>(&mut self, r: StatusAnd<F>, exact: impl FnOnce() -> Quad) -> u128 {
        let StatusAnd { status, value } = r;
        if status.contains(Status::INVALID_OP) {
            return self.invalid::<F>();
        }
        if std::mem::take(&mut self.pending_de) && !status.contains(Status::DIV_BY_ZERO) {
            self.flags |= DE;
        }
        if status.contains(Status::DIV_BY_ZERO) {
            self.flags |= ZE;
            return value.to_bits();
        }
        let inexact = status.contains(Status::INEXACT);
        let bits = value.to_bits();
        let edge = value.is_denormal()
            || status.contains(Status::OVERFLOW)
            || (inexact && (value.is_zero() || is_edge(value.abs())));
        if edge {
            let (unbounded, unbounded_inexact) = round_unbounded::<F>(exact(), self.round());
            if unbounded.abs() > F::largest().quad() {
                return self.overflow(bits, unbounded_inexact);
            }
            if !unbounded.is_zero() && unbounded.abs() < F::smallest_normalized().quad() {
                return self.underflow::<F>(bits, inexact, unbounded_inexact);
            }
        }
        if inexact {
            self.flags |= PE;
        }
        bits
    }

    /// OE; a trapping overflow reports PE only if the unbounded result is inexact.
    fn overflow(&mut self, bits: u128, unbounded_inexact: bool) -> u128 {
        self.flags |= OE;
        if self.masked(OE) || unbounded_inexact {
            self.flags |= PE;
        }
        bits
    }

    /// A tiny result: UE (masked: only if inexact, or always with FTZ, which flushes it).
    fn underflow<F: Fp>(&mut self, bits: u128, inexact: bool, unbounded_inexact: bool) -> u128 {
        if !self.masked(UE) {
            self.flags |= UE | if unbounded_inexact { PE } else { 0 };
            bits
        } else if self.mxcsr & FTZ != 0 {
            self.flags |= UE | PE;
            bits & F::sign()
        } else {
            self.flags |= if inexact { UE | PE } else { 0 };
            bits
        }
    }

    /// Records PE for an inexact result that cannot overflow or underflow.
    pub fn inexact(&mut self, status: Status) {
        if std::mem::take(&mut self.pending_de) {
            self.flags |= DE;
        }
        if status.contains(Status::INEXACT) {
            self.flags |= PE;
        }
    }

    /// Ends one step of the computation (DPPS multiplies, then adds): its flags become
    /// final, without the post-computation ones if a pre-computation flag traps. Returns
    /// whether the instruction traps, in which case later steps do not run.
    pub fn settle(&mut self) -> bool {
        let flags = std::mem::take(&mut self.flags);
        let unmasked = flags & self.unmasked();
        self.settled |= if unmasked & PRE_FLAGS != 0 {
            flags & PRE_FLAGS
        } else {
            flags
        };
        self.trapping()
    }

    fn unmasked(&self) -> u32 {
        !(self.mxcsr >> 7) & 0x3f
    }

    fn trapping(&self) -> bool {
        self.settled & self.unmasked() != 0
    }

    /// Merges the flags into MXCSR and decides whether the instruction traps: any raised
    /// flag that is unmasked gives #XM (or #UD without CR4.OSXMMEXCPT), and then the caller
    /// must not write its destination.
    pub fn commit(&mut self, ctx: &mut Ctx) -> Exec {
        self.settle();
        ctx.cpu.mxcsr |= self.settled;
        if !self.trapping() {
            Ok(())
        } else if ctx.cpu.cr4 & CR4_OSXMMEXCPT != 0 {
            Err(Exception::SimdFp)
        } else {
            Err(Exception::InvalidOpcode)
        }
    }
}

/// A 2-bit x86 rounding-control field as an apfloat rounding mode.
pub(super) fn rc_round(rc: u32) -> Round {
    match rc & 3 {
        0 => Round::NearestTiesToEven,
        1 => Round::TowardNegative,
        2 => Round::TowardPositive,
        _ => Round::TowardZero,
    }
}

/// Whether a finite magnitude is the smallest normal or the largest finite value, where
/// apfloat's bounded rounding can hide an underflow or overflow.
fn is_edge<F: Fp>(magnitude: F) -> bool {
    magnitude.bitwise_eq(F::smallest_normalized()) || magnitude.bitwise_eq(F::largest())
}

/// Rounds a quad result computed toward zero to odd: a set low bit stands for the lost
/// bits. Quad's 113 bits exceed twice double's 53 plus 2, so rounding this once more to
/// single or double gives the correctly rounded exact result.
pub(super) fn round_odd(r: StatusAnd<Quad>) -> Quad {
    if r.status.contains(Status::INEXACT) && r.value.is_finite_non_zero() {
        Quad::from_bits(r.value.to_bits() | 1)
    } else {
        r.value
    }
}

/// `q` rounded to the precision of `F` with an unbounded exponent, as a quad, and whether
/// that rounding was inexact.
fn round_unbounded<F: Fp>(q: Quad, round: Round) -> (Quad, bool) {
    if !q.is_finite_non_zero() {
        return (q, false);
    }
    let exp = q.ilogb();
    let r = F::from_quad(q.scalbn(-exp), round);
    (
        r.value.quad().scalbn(exp),
        r.status.contains(Status::INEXACT),
    )
}
