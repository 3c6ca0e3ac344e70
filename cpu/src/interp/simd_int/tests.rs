//! Unit tests of the SIMD integer group on real instruction bytes.
