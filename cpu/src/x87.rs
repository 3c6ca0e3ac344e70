//! x87 80-bit arithmetic: classification of [`F80`] values, tags, and correctly rounded
//! add/sub/mul/div/sqrt under the x87 precision control (24/53/64-bit significand with the
//! full 15-bit exponent) and rounding control.
//!
//! Everything is integer arithmetic on the significands, so results are bit-identical on
//! any host. x87 specifics kept here: tininess is detected before rounding; masked
//! underflow is only flagged when inexact; unmasked overflow/underflow rebias the exponent
//! by 24576 (or give ∞/0 beyond that range); pseudo-denormals are read as exponent 1;
//! unnormals, pseudo-NaNs and pseudo-infinities are invalid operands. The conversions to
//! `rustc_apfloat::ieee::X87DoubleExtended` are bit-exact for supported encodings, and the
//! tests cross-check the arithmetic against it; its `Quad` carries the transcendentals.

use crate::state::F80;
use rustc_apfloat::ieee::{Quad, X87DoubleExtended};
use rustc_apfloat::Float;

/// Invalid operation.
pub const IE: u16 = 1 << 0;
/// Denormal operand.
pub const DE: u16 = 1 << 1;
/// Zero divide.
pub const ZE: u16 = 1 << 2;
/// Overflow.
pub const OE: u16 = 1 << 3;
/// Underflow.
pub const UE: u16 = 1 << 4;
/// Precision (inexact).
pub const PE: u16 = 1 << 5;
/// Stack fault.
pub const SF: u16 = 1 << 6;
/// Error summary.
pub const ES: u16 = 1 << 7;
/// Condition code C0.
pub const C0: u16 = 1 << 8;
/// Condition code C1.
pub const C1: u16 = 1 << 9;
/// Condition code C2.
pub const C2: u16 = 1 << 10;
/// Condition code C3.
pub const C3: u16 = 1 << 14;
/// Busy.
pub const BUSY: u16 = 1 << 15;
/// The exception flag bits (IE..PE).
pub const EXC_MASK: u16 = 0x3f;

/// Tag: valid.
pub const TAG_VALID: u16 = 0;
/// Tag: zero.
pub const TAG_ZERO: u16 = 1;
/// Tag: special (NaN, infinity, denormal, unsupported).
pub const TAG_SPECIAL: u16 = 2;
/// Tag: empty.
pub const TAG_EMPTY: u16 = 3;

const EXP_MAX: u16 = 0x7fff;
const BIAS: i32 = 16383;
const INT_BIT: u64 = 1 << 63;
/// Exponent bias adjustment of unmasked overflow/underflow results.
const WRAP_BIAS: i32 = 24576;

impl F80 {
    /// The real indefinite (default QNaN).
    pub const INDEFINITE: F80 = F80 {
        signif: 0xC000_0000_0000_0000,
        sign_exp: 0xffff,
    };
    /// +0.
    pub const ZERO: F80 = F80 {
        signif: 0,
        sign_exp: 0,
    };

    /// Sign bit.
    pub fn sign(self) -> bool {
        self.sign_exp & 0x8000 != 0
    }

    /// Biased exponent.
    pub fn exp(self) -> u16 {
        self.sign_exp & EXP_MAX
    }

    /// An infinity of the given sign.
    pub fn inf(sign: bool) -> F80 {
        F80 {
            signif: INT_BIT,
            sign_exp: sign_bits(sign) | EXP_MAX,
        }
    }

    /// A zero of the given sign.
    pub fn zero(sign: bool) -> F80 {
        F80 {
            signif: 0,
            sign_exp: sign_bits(sign),
        }
    }

    /// The value with its sign replaced.
    pub fn with_sign(self, sign: bool) -> F80 {
        F80 {
            signif: self.signif,
            sign_exp: self.exp() | sign_bits(sign),
        }
    }

    /// The class of this encoding.
    pub fn class(self) -> Class {
        let (e, s) = (self.exp(), self.signif);
        match (e, s & INT_BIT != 0) {
            (0, _) if s == 0 => Class::Zero,
            (0, _) => Class::Denormal,
            (EXP_MAX, true) if s << 1 == 0 => Class::Inf,
            (EXP_MAX, true) if s & (1 << 62) != 0 => Class::QNaN,
            (EXP_MAX, true) => Class::SNaN,
            (_, false) => Class::Unsupported,
            _ => Class::Normal,
        }
    }

    /// Whether this is a NaN (quiet or signaling).
    pub fn is_nan(self) -> bool {
        matches!(self.class(), Class::QNaN | Class::SNaN)
    }

    /// The quiet version of a NaN.
    pub fn quiet(self) -> F80 {
        F80 {
            signif: self.signif | (1 << 62),
            sign_exp: self.sign_exp,
        }
    }

    /// The 2-bit tag of a non-empty register holding this value.
    pub fn tag(self) -> u16 {
        match self.class() {
            Class::Zero => TAG_ZERO,
            Class::Normal => TAG_VALID,
            _ => TAG_SPECIAL,
        }
    }

    /// Converts to `rustc_apfloat`'s x87 type (bit-exact for supported encodings).
    pub fn to_apfloat(self) -> X87DoubleExtended {
        X87DoubleExtended::from_bits(u128::from(self.signif) | (u128::from(self.sign_exp) << 64))
    }

    /// Converts from `rustc_apfloat`'s x87 type.
    pub fn from_apfloat(x: X87DoubleExtended) -> F80 {
        let bits = x.to_bits();
        F80 {
            signif: bits as u64,
            sign_exp: (bits >> 64) as u16,
        }
    }
}

fn sign_bits(sign: bool) -> u16 {
    if sign {
        0x8000
    } else {
        0
    }
}

/// Classes of x87 encodings (FXAM's, with denormal and pseudo-denormal together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// ±0.
    Zero,
    /// Exponent 0, nonzero significand (denormal or pseudo-denormal).
    Denormal,
    /// Normalized finite.
    Normal,
    /// ±∞.
    Inf,
    /// Quiet NaN.
    QNaN,
    /// Signaling NaN.
    SNaN,
    /// Unnormal, pseudo-NaN, pseudo-infinity.
    Unsupported,
}

/// Rounding control (FCW bits 10-11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rc {
    /// To nearest even.
    Nearest,
    /// Toward −∞.
    Down,
    /// Toward +∞.
    Up,
    /// Toward zero.
    Zero,
}

impl Rc {
    /// From the control word.
    pub fn from_fcw(fcw: u16) -> Rc {
        match (fcw >> 10) & 3 {
            0 => Rc::Nearest,
            1 => Rc::Down,
            2 => Rc::Up,
            _ => Rc::Zero,
        }
    }
}

/// A destination format: significand precision and normal exponent range (unbiased).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// Significand bits including the integer bit.
    pub prec: u32,
    /// Smallest normal exponent.
    pub emin: i32,
    /// Largest finite exponent.
    pub emax: i32,
}

/// 80-bit extended.
pub const EXTENDED: Format = Format {
    prec: 64,
    emin: -16382,
    emax: 16383,
};
/// IEEE double (memory operand).
pub const DOUBLE: Format = Format {
    prec: 53,
    emin: -1022,
    emax: 1023,
};
/// IEEE single (memory operand).
pub const SINGLE: Format = Format {
    prec: 24,
    emin: -126,
    emax: 127,
};

/// The register format under precision control (FCW bits 8-9): 00 single, 10 double,
/// 11 and the reserved 01 extended (as the host CPU treats 01).
pub fn pc_format(fcw: u16) -> Format {
    match (fcw >> 8) & 3 {
        0 => Format {
            prec: 24,
            ..EXTENDED
        },
        2 => Format {
            prec: 53,
            ..EXTENDED
        },
        _ => EXTENDED,
    }
}

/// The rounding environment: control word bits that matter to rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Env {
    /// Rounding control.
    pub rc: Rc,
    /// Overflow masked.
    pub om: bool,
    /// Underflow masked.
    pub um: bool,
}

impl Env {
    /// From the control word.
    pub fn from_fcw(fcw: u16) -> Env {
        Env {
            rc: Rc::from_fcw(fcw),
            om: fcw & OE != 0,
            um: fcw & UE != 0,
        }
    }
}

/// A rounded finite result: sign, unbiased exponent (emin for denormals) and the
/// significand with the integer bit at bit 63 (clear for denormals and zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rounded {
    /// Sign.
    pub sign: bool,
    /// Unbiased exponent; meaningless for zero and infinity.
    pub exp: i32,
    /// Significand, integer bit at 63.
    pub sig: u64,
    /// Infinity.
    pub inf: bool,
    /// Status bits raised (PE, UE, OE, C1 as round-up).
    pub flags: u16,
}

impl Rounded {
    /// Packs into the 80-bit format (the exponent must be in range).
    pub fn to_f80(self) -> F80 {
        if self.inf {
            return F80::inf(self.sign);
        }
        let biased = if self.sig & INT_BIT != 0 {
            (self.exp + BIAS) as u16
        } else {
            0
        };
        F80 {
            signif: self.sig,
            sign_exp: sign_bits(self.sign) | (biased & EXP_MAX),
        }
    }

    /// Packs into an IEEE interchange format of `exp_bits` exponent bits and `fmt.prec`
    /// significand bits (implicit integer bit).
    pub fn to_ieee(self, fmt: Format, exp_bits: u32) -> u64 {
        let frac_bits = fmt.prec - 1;
        let sign = u64::from(self.sign) << (exp_bits + frac_bits);
        let emax_biased = (1u64 << exp_bits) - 1;
        if self.inf {
            return sign | (emax_biased << frac_bits);
        }
        let frac = (self.sig >> (64 - fmt.prec)) & ((1u64 << frac_bits) - 1);
        let biased = if self.sig & INT_BIT != 0 {
            (self.exp - fmt.emin + 1) as u64
        } else {
            0
        };
        sign | (biased << frac_bits) | frac
    }
}

/// Shifts right with the shifted-out bits ORed into bit 0.
pub fn shr_sticky(x: u128, n: u32) -> u128 {
    if n == 0 {
        x
    } else if n >= 128 {
        u128::from(x != 0)
    } else {
        (x >> n) | u128::from(x & ((1u128 << n) - 1) != 0)
    }
}

/// Rounds the nonzero value `sig / 2^127 * 2^exp` to `fmt` under `env`.
///
/// Tininess is detected before rounding. Unmasked overflow/underflow (only meaningful for
/// register destinations) rebias the exponent by 24576 as the x87 does.
pub fn round(sign: bool, exp: i32, sig: u128, fmt: Format, env: Env) -> Rounded {
    let lz = sig.leading_zeros();
    let (mut sig, mut exp) = (sig << lz, exp - lz as i32);
    let mut flags = 0;
    let tiny = exp < fmt.emin;
    if tiny && !env.um {
        exp += WRAP_BIAS;
        flags |= UE;
        if exp < fmt.emin {
            // Too tiny even for the rebias: the x87 delivers a signed zero.
            return Rounded {
                sign,
                exp: fmt.emin,
                sig: 0,
                inf: false,
                flags: UE | PE,
            };
        }
    }
    // Masked underflow, or a result too tiny even for the rebias: denormalize.
    if exp < fmt.emin {
        sig = shr_sticky(sig, (fmt.emin - exp) as u32);
        exp = fmt.emin;
    }
    let drop = 128 - fmt.prec;
    let lsb = 1u128 << drop;
    let rem = sig & (lsb - 1);
    let half = lsb >> 1;
    let inexact = rem != 0;
    let up = match env.rc {
        Rc::Nearest => rem > half || (rem == half && sig & lsb != 0),
        Rc::Down => sign && inexact,
        Rc::Up => !sign && inexact,
        Rc::Zero => false,
    };
    sig &= !(lsb - 1);
    if up {
        let (next, carry) = sig.overflowing_add(lsb);
        sig = if carry { 1 << 127 } else { next };
        exp += i32::from(carry);
    }
    if inexact {
        flags |= PE | if tiny && env.um { UE } else { 0 };
    }
    if up {
        flags |= C1;
    }
    let mut r = Rounded {
        sign,
        exp,
        sig: (sig >> 64) as u64,
        inf: false,
        flags,
    };
    if exp > fmt.emax {
        overflow(&mut r, fmt, env);
    }
    r
}

/// The masked overflow response (∞ or the largest finite value per rounding mode), or
/// the rebiased result when overflow is unmasked.
fn overflow(r: &mut Rounded, fmt: Format, env: Env) {
    r.flags |= OE;
    if !env.om {
        if r.exp - WRAP_BIAS <= fmt.emax {
            r.exp -= WRAP_BIAS;
        } else {
            // Too large even for the rebias: the x87 delivers an infinity.
            r.inf = true;
            r.flags |= PE | C1;
        }
        return;
    }
    r.flags |= PE;
    let to_inf = match env.rc {
        Rc::Nearest => true,
        Rc::Down => r.sign,
        Rc::Up => !r.sign,
        Rc::Zero => false,
    };
    if to_inf {
        r.inf = true;
        r.flags |= C1;
    } else {
        r.exp = fmt.emax;
        r.sig = u64::MAX << (64 - fmt.prec);
        r.flags &= !C1;
    }
}

/// An operand decoded for arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    /// Signed zero.
    Zero(bool),
    /// Finite nonzero: value = sig / 2^63 * 2^exp, sig normalized (bit 63 set).
    Fin(bool, i32, u64),
    /// Signed infinity.
    Inf(bool),
    /// A NaN (as stored) or an unsupported encoding (reported as `None`).
    NaN(Option<F80>),
}

/// Decodes `f`, reporting DE for denormal operands.
pub fn unpack(f: F80) -> (Val, u16) {
    let sign = f.sign();
    match f.class() {
        Class::Zero => (Val::Zero(sign), 0),
        Class::Inf => (Val::Inf(sign), 0),
        Class::QNaN | Class::SNaN => (Val::NaN(Some(f)), 0),
        Class::Unsupported => (Val::NaN(None), 0),
        Class::Normal => (Val::Fin(sign, i32::from(f.exp()) - BIAS, f.signif), 0),
        Class::Denormal => {
            let lz = f.signif.leading_zeros();
            (Val::Fin(sign, 1 - BIAS - lz as i32, f.signif << lz), DE)
        }
    }
}

/// The result of an operation on registers: a value or an invalid operation.
pub type OpResult = (F80, u16);

/// The invalid-operation result.
pub fn invalid() -> OpResult {
    (F80::INDEFINITE, IE)
}

/// NaN result for operands `a`, `b` when at least one is a NaN or unsupported:
/// unsupported → invalid; SNaN → IE and quieted; two NaNs → the larger significand.
pub fn propagate_nan(a: Val, b: Val) -> OpResult {
    let x = if let Val::NaN(x) = a { Some(x) } else { None };
    let y = if let Val::NaN(y) = b { Some(y) } else { None };
    if x == Some(None) || y == Some(None) {
        return invalid();
    }
    let snan = |v: Option<Option<F80>>| matches!(v, Some(Some(f)) if f.class() == Class::SNaN);
    let flags = if snan(x) || snan(y) { IE } else { 0 };
    let pick = match (x.flatten(), y.flatten()) {
        (Some(p), Some(q)) => larger_nan(p, q),
        (Some(p), None) => p,
        (None, Some(q)) => q,
        (None, None) => F80::INDEFINITE,
    };
    (pick.quiet(), flags)
}

/// The NaN that wins: a QNaN over an SNaN, else the larger significand.
fn larger_nan(p: F80, q: F80) -> F80 {
    match (p.class() == Class::QNaN, q.class() == Class::QNaN) {
        (true, false) => return p,
        (false, true) => return q,
        _ => {}
    }
    if p.signif > q.signif || (p.signif == q.signif && !p.sign()) {
        p
    } else {
        q
    }
}

/// Arithmetic operations of the generic path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// a + b.
    Add,
    /// a − b.
    Sub,
    /// a × b.
    Mul,
    /// a ÷ b.
    Div,
}

/// `a op b` rounded to `fmt`; returns the result and the status bits (IE, DE, ZE, OE,
/// UE, PE, C1). With an invalid operation the result is the indefinite.
pub fn arith(op: Op, a: F80, b: F80, fmt: Format, env: Env) -> OpResult {
    let (va, da) = unpack(a);
    let (vb, db) = unpack(b);
    if matches!(va, Val::NaN(_)) || matches!(vb, Val::NaN(_)) {
        return propagate_nan(va, vb);
    }
    let (r, flags) = match op {
        Op::Add => add(va, vb, false, fmt, env),
        Op::Sub => add(va, vb, true, fmt, env),
        Op::Mul => mul(va, vb, fmt, env),
        Op::Div => div(va, vb, fmt, env),
    };
    if flags & IE != 0 {
        return invalid();
    }
    // A zero divide is reported without the denormal-operand flag.
    (
        r,
        if flags & ZE != 0 {
            flags
        } else {
            flags | da | db
        },
    )
}

fn finish(r: Rounded) -> OpResult {
    (r.to_f80(), r.flags)
}

fn add(a: Val, b: Val, negate_b: bool, fmt: Format, env: Env) -> OpResult {
    let b = match b {
        Val::Zero(s) => Val::Zero(s ^ negate_b),
        Val::Inf(s) => Val::Inf(s ^ negate_b),
        Val::Fin(s, e, m) => Val::Fin(s ^ negate_b, e, m),
        nan => nan,
    };
    match (a, b) {
        (Val::Inf(x), Val::Inf(y)) if x != y => invalid(),
        (Val::Inf(x), _) | (_, Val::Inf(x)) => (F80::inf(x), 0),
        (Val::Zero(x), Val::Zero(y)) => (F80::zero(if x == y { x } else { env.rc == Rc::Down }), 0),
        (Val::Zero(_), Val::Fin(s, e, m)) | (Val::Fin(s, e, m), Val::Zero(_)) => {
            finish(round(s, e, u128::from(m) << 64, fmt, env))
        }
        (Val::Fin(sa, ea, ma), Val::Fin(sb, eb, mb)) => {
            add_finite((sa, ea, ma), (sb, eb, mb), fmt, env)
        }
        _ => invalid(),
    }
}

fn add_finite(a: (bool, i32, u64), b: (bool, i32, u64), fmt: Format, env: Env) -> OpResult {
    let (big, small) = if (a.1, a.2) >= (b.1, b.2) {
        (a, b)
    } else {
        (b, a)
    };
    // Significands at bits 126..63 leave a carry bit and 63 guard bits.
    let x = u128::from(big.2) << 63;
    let y = shr_sticky(u128::from(small.2) << 63, (big.1 - small.1).min(200) as u32);
    let sum = if big.0 == small.0 { x + y } else { x - y };
    if sum == 0 {
        return (F80::zero(env.rc == Rc::Down), 0);
    }
    finish(round(big.0, big.1 + 1, sum, fmt, env))
}

fn mul(a: Val, b: Val, fmt: Format, env: Env) -> OpResult {
    match (a, b) {
        (Val::Inf(_), Val::Zero(_)) | (Val::Zero(_), Val::Inf(_)) => invalid(),
        (Val::Inf(x) | Val::Fin(x, ..), Val::Inf(y)) | (Val::Inf(x), Val::Fin(y, ..)) => {
            (F80::inf(x ^ y), 0)
        }
        (Val::Zero(x) | Val::Fin(x, ..), Val::Zero(y)) | (Val::Zero(x), Val::Fin(y, ..)) => {
            (F80::zero(x ^ y), 0)
        }
        (Val::Fin(sa, ea, ma), Val::Fin(sb, eb, mb)) => {
            let p = u128::from(ma) * u128::from(mb);
            finish(round(sa ^ sb, ea + eb + 1, p, fmt, env))
        }
        _ => invalid(),
    }
}

fn div(a: Val, b: Val, fmt: Format, env: Env) -> OpResult {
    match (a, b) {
        (Val::Inf(_), Val::Inf(_)) | (Val::Zero(_), Val::Zero(_)) => invalid(),
        (Val::Inf(x), Val::Zero(y) | Val::Fin(y, ..)) => (F80::inf(x ^ y), 0),
        (Val::Zero(x) | Val::Fin(x, ..), Val::Inf(y)) | (Val::Zero(x), Val::Fin(y, ..)) => {
            (F80::zero(x ^ y), 0)
        }
        (Val::Fin(x, ..), Val::Zero(y)) => (F80::inf(x ^ y), ZE),
        (Val::Fin(sa, ea, ma), Val::Fin(sb, eb, mb)) => {
            let (sig, exp) = divide_sig(ma, mb);
            finish(round(sa ^ sb, ea - eb + exp, sig, fmt, env))
        }
        _ => invalid(),
    }
}

/// 128-bit quotient of two normalized significands with a sticky bit, and the exponent
/// adjustment so that `a/b = sig/2^127 * 2^adj`.
fn divide_sig(a: u64, b: u64) -> (u128, i32) {
    let (num, adj) = if a >= b {
        (u128::from(a) << 63, 0)
    } else {
        (u128::from(a) << 64, -1)
    };
    let b = u128::from(b);
    let (q1, r1) = (num / b, num % b);
    let (q2, r2) = ((r1 << 64) / b, (r1 << 64) % b);
    ((q1 << 64) | q2 | u128::from(r2 != 0), adj)
}

/// Square root rounded to `fmt`.
pub fn sqrt(a: F80, fmt: Format, env: Env) -> OpResult {
    let (va, da) = unpack(a);
    match va {
        Val::NaN(_) => propagate_nan(va, Val::Zero(false)),
        Val::Zero(s) => (F80::zero(s), 0),
        Val::Inf(false) => (F80::inf(false), 0),
        Val::Inf(true) | Val::Fin(true, ..) => invalid(),
        Val::Fin(false, e, m) => {
            let (n, k) = if e & 1 == 0 {
                (u128::from(m) << 63, (e - 126) / 2)
            } else {
                (u128::from(m) << 64, (e - 127) / 2)
            };
            let (root, rem) = isqrt(n);
            let tail: u128 = if rem == 0 {
                0
            } else if rem > u128::from(root) {
                (1 << 63) | 1
            } else {
                1
            };
            let (r, flags) = finish(round(
                false,
                k + 63,
                (u128::from(root) << 64) | tail,
                fmt,
                env,
            ));
            (r, flags | da)
        }
    }
}

/// Integer square root of `n` and the remainder `n - root^2`.
pub fn isqrt(n: u128) -> (u64, u128) {
    let mut root: u128 = 0;
    let mut rem: u128 = 0;
    for i in (0..64).rev() {
        // Bring down two bits; the trial subtrahend is 4*root + 1.
        rem = (rem << 2) | ((n >> (2 * i)) & 3);
        let trial = (root << 2) | 1;
        root <<= 1;
        if rem >= trial {
            rem -= trial;
            root |= 1;
        }
    }
    (root as u64, rem)
}

/// Rounds the finite value `sig / 2^63 * 2^exp` (sig normalized) to an integer under
/// `rc`. Returns the magnitude if it fits in a u64, and PE/C1 for an inexact result.
pub fn round_to_int(sign: bool, exp: i32, sig: u64, rc: Rc) -> (Option<u64>, u16) {
    if exp >= 63 {
        return (if exp == 63 { Some(sig) } else { None }, 0);
    }
    // Integer part, and the fraction left-aligned in 64 bits with a sticky bit.
    let (int, frac) = if exp >= 0 {
        (sig >> (63 - exp), sig << (exp + 1))
    } else {
        (0, shr_sticky(u128::from(sig), (-exp - 1) as u32) as u64)
    };
    let half = 1u64 << 63;
    let up = match rc {
        Rc::Nearest => frac > half || (frac == half && int & 1 == 1),
        Rc::Down => sign && frac != 0,
        Rc::Up => !sign && frac != 0,
        Rc::Zero => false,
    };
    let flags = if frac != 0 { PE } else { 0 } | if up { C1 } else { 0 };
    (int.checked_add(u64::from(up)), flags)
}

/// An F80 holding the integer `sign * mag` exactly (exact for any u64).
pub fn from_int(sign: bool, mag: u64) -> F80 {
    if mag == 0 {
        return F80::zero(sign);
    }
    let lz = mag.leading_zeros();
    F80 {
        signif: mag << lz,
        sign_exp: sign_bits(sign) | (BIAS + 63 - lz as i32) as u16,
    }
}

/// Decodes an IEEE single/double memory operand exactly into an F80 (DE for denormals,
/// SNaNs kept signaling so the caller can raise IE and quiet them).
pub fn from_ieee(bits: u64, fmt: Format, exp_bits: u32) -> (F80, u16) {
    let frac_bits = fmt.prec - 1;
    let sign = (bits >> (exp_bits + frac_bits)) & 1 != 0;
    let biased = ((bits >> frac_bits) & ((1 << exp_bits) - 1)) as i32;
    let frac = bits & ((1u64 << frac_bits) - 1);
    let emax_biased = (1 << exp_bits) - 1;
    let top = frac << (64 - frac_bits);
    if biased == emax_biased {
        let sig = INT_BIT | (top >> 1);
        return (
            F80 {
                signif: sig,
                sign_exp: sign_bits(sign) | EXP_MAX,
            },
            0,
        );
    }
    if biased == 0 {
        if frac == 0 {
            return (F80::zero(sign), 0);
        }
        let lz = frac.leading_zeros();
        let exp = fmt.emin - 1 - (lz as i32 - (64 - frac_bits as i32));
        return (
            F80 {
                signif: frac << lz,
                sign_exp: sign_bits(sign) | (exp + BIAS) as u16,
            },
            DE,
        );
    }
    let exp = biased + fmt.emin - 1;
    (
        F80 {
            signif: INT_BIT | (top >> 1),
            sign_exp: sign_bits(sign) | (exp + BIAS) as u16,
        },
        0,
    )
}

/// Converts a finite/special F80 to a 128-bit quad (exact), for the transcendental code.
pub fn to_quad(f: F80) -> Quad {
    let (v, _) = unpack(f);
    match v {
        Val::Zero(s) => {
            if s {
                -Quad::ZERO
            } else {
                Quad::ZERO
            }
        }
        Val::Inf(s) => {
            if s {
                -Quad::INFINITY
            } else {
                Quad::INFINITY
            }
        }
        Val::NaN(_) => Quad::NAN,
        Val::Fin(s, e, m) => {
            // Quad has 112 fraction bits; a normalized 64-bit significand fits exactly.
            let q = Quad::from_u128(u128::from(m)).value;
            let q = q.scalbn(e - 63);
            if s {
                -q
            } else {
                q
            }
        }
    }
}

/// Rounds a quad to the register format under `fmt`/`env` (for transcendental results).
pub fn from_quad(q: Quad, fmt: Format, env: Env) -> OpResult {
    if q.is_nan() {
        return invalid();
    }
    if q.is_infinite() {
        return (F80::inf(q.is_negative()), 0);
    }
    if q.is_zero() {
        return (F80::zero(q.is_negative()), 0);
    }
    let bits = q.to_bits();
    let sign = bits >> 127 != 0;
    let biased = ((bits >> 112) & 0x7fff) as i32;
    let frac = bits & ((1u128 << 112) - 1);
    let (exp, sig) = if biased == 0 {
        (-16382, frac)
    } else {
        (biased - 16383, frac | (1u128 << 112))
    };
    finish(round(sign, exp + 15, sig, fmt, env))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_apfloat::{Round, Status};

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// A normal value with an exponent near 1, or (1 in 8) a denormal.
        fn value(&mut self) -> F80 {
            let sign = (self.next() & 1) as u16 * 0x8000;
            if self.next() % 8 == 0 {
                return F80 {
                    signif: self.next() >> (self.next() % 64),
                    sign_exp: sign,
                };
            }
            let exp = (0x3fff + self.next() % 160 - 80) as u16;
            F80 {
                signif: INT_BIT | self.next(),
                sign_exp: sign | exp,
            }
        }
    }

    #[test]
    fn apfloat_conversion_round_trips() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..10_000 {
            let v = rng.value();
            let back = F80::from_apfloat(v.to_apfloat());
            // A pseudo-denormal comes back with exponent 1, which is the same number.
            let same = back == v || (v.exp() == 0 && v.signif & INT_BIT != 0 && back.exp() == 1);
            assert!(same, "{v:?} -> {back:?}");
        }
        for special in [F80::INDEFINITE, F80::inf(true), F80::zero(true)] {
            assert_eq!(F80::from_apfloat(special.to_apfloat()), special);
        }
    }

    /// The integer arithmetic agrees with `rustc_apfloat` in 64-bit precision wherever the
    /// result is a normal number (tininess and denormal rounding are x87-specific).
    #[test]
    fn arithmetic_matches_apfloat_in_extended_precision() {
        let modes = [
            (Rc::Nearest, Round::NearestTiesToEven),
            (Rc::Down, Round::TowardNegative),
            (Rc::Up, Round::TowardPositive),
            (Rc::Zero, Round::TowardZero),
        ];
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for i in 0..40_000 {
            let (a, b) = (rng.value(), rng.value());
            let (rc, round) = modes[i % 4];
            let env = Env {
                rc,
                om: true,
                um: true,
            };
            let (x, y) = (a.to_apfloat(), b.to_apfloat());
            for op in [Op::Add, Op::Sub, Op::Mul, Op::Div] {
                let reference = match op {
                    Op::Add => x.add_r(y, round),
                    Op::Sub => x.sub_r(y, round),
                    Op::Mul => x.mul_r(y, round),
                    Op::Div => x.div_r(y, round),
                };
                let expected = F80::from_apfloat(reference.value);
                if expected.class() != Class::Normal {
                    continue;
                }
                let (got, flags) = arith(op, a, b, EXTENDED, env);
                assert_eq!(got, expected, "{op:?} {a:?} {b:?} {rc:?}");
                assert_eq!(
                    flags & PE != 0,
                    reference.status.contains(Status::INEXACT),
                    "{op:?} {a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn sqrt_of_a_square_is_exact() {
        let mut rng = Rng(42);
        let env = Env {
            rc: Rc::Nearest,
            om: true,
            um: true,
        };
        for _ in 0..10_000 {
            // A 32-bit significand squares exactly into 64 bits.
            let v = F80 {
                signif: (INT_BIT | rng.next()) & !0xffff_ffff,
                sign_exp: 0x3fff + (rng.next() % 64) as u16,
            };
            let (square, flags) = arith(Op::Mul, v, v, EXTENDED, env);
            assert_eq!(flags & PE, 0);
            assert_eq!(sqrt(square, EXTENDED, env), (v, 0));
        }
    }
}
