//! Unit tests of the x87 instructions on real instruction bytes, with expected values
//! taken from an AMD EPYC host.
