//! x87 80-bit arithmetic helpers (filled in by the x87 work).
