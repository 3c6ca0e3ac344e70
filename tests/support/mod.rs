//! What the tests that start the `softvisor` binary share.
//!
//! On a cross build (see `scripts/aarch64-check.sh`) the binary cannot be executed directly:
//! `SOFTVISOR_TEST_RUNNER` names the command that runs it, e.g.
//! `qemu-aarch64-static -L /usr/aarch64-linux-gnu`.

use std::process::Command;

/// A command that starts the softvisor binary built with these tests.
pub fn softvisor() -> Command {
    let binary = env!("CARGO_BIN_EXE_softvisor");
    let runner = std::env::var("SOFTVISOR_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}
