//! Little-endian lanes of `u128` vectors and generic lane-wise maps over them.
//!
//! Lane `i` of type `T` occupies bits `i * T::BITS ..` of the vector, exactly as in an XMM
//! or MMX register, independent of host endianness. A width is in bytes: 8 for MMX, 16 for XMM.

/// An integer element type that can live in a vector lane.
pub(super) trait Lane: Copy {
    /// Width of the lane in bits.
    const BITS: u32;
    /// The low `BITS` bits of `bits`.
    fn from_bits(bits: u128) -> Self;
    /// The lane's bits, zero-extended.
    fn to_bits(self) -> u128;
}

macro_rules! lane {
    ($($t:ty => $u:ty),*) => {$(
        impl Lane for $t {
            const BITS: u32 = <$u>::BITS;
            #[inline]
            fn from_bits(bits: u128) -> Self {
                bits as $u as $t
            }
            #[inline]
            fn to_bits(self) -> u128 {
                self as $u as u128
            }
        }
    )*};
}

lane!(u8 => u8, i8 => u8, u16 => u16, i16 => u16, u32 => u32, i32 => u32, u64 => u64, i64 => u64);

/// Number of `T` lanes in `width` bytes.
#[inline]
pub(super) fn count<T: Lane>(width: usize) -> usize {
    width * 8 / T::BITS as usize
}

/// Lane `i` of `v` (zero past the end of the vector).
#[inline]
pub(super) fn get<T: Lane>(v: u128, i: usize) -> T {
    T::from_bits(v.checked_shr(i as u32 * T::BITS).unwrap_or(0))
}

/// `v` with lane `i` replaced by `x` (unchanged if `i` is past the end).
#[inline]
pub(super) fn set<T: Lane>(v: u128, i: usize, x: T) -> u128 {
    let shift = i as u32 * T::BITS;
    let mask = lane_mask::<T>().checked_shl(shift).unwrap_or(0);
    (v & !mask) | (x.to_bits().checked_shl(shift).unwrap_or(0) & mask)
}

/// All ones in the low `T::BITS` bits.
#[inline]
fn lane_mask<T: Lane>() -> u128 {
    u128::MAX >> (128 - T::BITS)
}

/// A vector of `width` bytes whose lane `i` is `f(i)`.
#[inline]
pub(super) fn from_fn<T: Lane>(width: usize, f: impl Fn(usize) -> T) -> u128 {
    (0..count::<T>(width)).fold(0, |v, i| set(v, i, f(i)))
}

/// Applies `f` to each lane of `a`.
#[inline]
pub(super) fn map1<T: Lane>(a: u128, width: usize, f: impl Fn(T) -> T) -> u128 {
    from_fn(width, |i| f(get(a, i)))
}

/// Applies `f` to each pair of corresponding lanes of `a` and `b`.
#[inline]
pub(super) fn map2<T: Lane>(a: u128, b: u128, width: usize, f: impl Fn(T, T) -> T) -> u128 {
    from_fn(width, |i| f(get(a, i), get(b, i)))
}

/// All ones if `cond`, else zero: the lane result of a SIMD compare.
#[inline]
pub(super) fn all_ones<T: Lane>(cond: bool) -> T {
    T::from_bits(if cond { u128::MAX } else { 0 })
}

/// Whether the top bit of lane `i` is set.
#[inline]
pub(super) fn msb<T: Lane>(v: u128, i: usize) -> bool {
    get::<T>(v, i).to_bits() >> (T::BITS - 1) != 0
}

/// The top bit of each lane, packed into an integer (PMOVMSKB, MOVMSKPS).
pub(super) fn sign_mask<T: Lane>(v: u128, width: usize) -> u64 {
    (0..count::<T>(width)).fold(0, |m, i| m | (u64::from(msb::<T>(v, i)) << i))
}

/// Lane `i` taken from `b` where `pick(i)`, else from `a` (the blends).
pub(super) fn select<T: Lane>(
    a: u128,
    b: u128,
    width: usize,
    pick: impl Fn(usize) -> bool,
) -> u128 {
    from_fn::<T>(width, |i| if pick(i) { get(b, i) } else { get(a, i) })
}
