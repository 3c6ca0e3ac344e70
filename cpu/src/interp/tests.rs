//! Unit tests of the interpreter on real instruction bytes.
