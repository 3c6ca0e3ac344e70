//! softvisor: a pure-software x86-64 emulator-hypervisor. This is the command-line front end.
fn main() {}
