//! Unit tests of the SSE floating-point instructions on real instruction bytes, with
//! expected values taken from an x86-64 host (AMD EPYC).
