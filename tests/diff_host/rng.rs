//! A small deterministic generator (splitmix64), so the same seed gives the same cases on
//! every host: the golden vectors depend on it.

/// Seeded pseudo-random numbers.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// Random 64 bits biased toward the edge cases of integer arithmetic.
    pub fn interesting(&mut self) -> u64 {
        match self.below(8) {
            0 => [0, 1, u64::MAX, 0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff]
                [self.below(5) as usize],
            1 => [
                0x80,
                0x7f,
                0xff,
                0x8000,
                0x7fff,
                0xffff,
                0x8000_0000,
                0x7fff_ffff,
                0xffff_ffff,
            ][self.below(9) as usize],
            2 => self.below(64),
            3 => self.next() >> self.below(64),
            _ => self.next(),
        }
    }
}
