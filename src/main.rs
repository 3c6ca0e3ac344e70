//! softvisor: a pure-software x86-64 emulator-hypervisor. This is the command-line front end.
//!
//! `softvisor run` boots a kernel on the PC machine; `softvisor exec` runs a flat 64-bit
//! binary in the reference interpreter, for instruction-level experiments and tracing.
//! Every bad input ends in a one-line error and a non-zero exit.

mod console;
mod exec;
mod machine;
mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Command-line interface.
#[derive(Parser)]
#[command(
    name = "softvisor",
    version,
    about = "A pure-software x86-64 emulator-hypervisor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot a kernel on the PC machine with COM1 on the terminal.
    Run(run::RunOptions),
    /// Run a flat 64-bit binary in the interpreter until HLT, then print the registers.
    Exec(exec::ExecOptions),
}

/// Parses a number in decimal or 0x-hex.
pub(crate) fn parse_u64(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("'{text}' is not a number"))
}

/// Parses a size with an optional K/M/G suffix (powers of 1024).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.chars().last() {
        Some('K' | 'k') => (&text[..text.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&text[..text.len() - 1], 1 << 20),
        Some('G' | 'g') => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size (try 64M or 1G)"))?;
    value
        .checked_mul(unit)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// Parses the command line; a usage error becomes one line and exit code 2.
fn parse_cli() -> Result<Cli, ExitCode> {
    use clap::error::ErrorKind;
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            Err(ExitCode::from(2))
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid command line");
            eprintln!("softvisor: {}", first.trim_start_matches("error: "));
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Run(options) => run::run(&options).map_err(|e| e.to_string()),
        Command::Exec(options) => exec::run(&options).map_err(|e| e.to_string()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("softvisor: {e}");
            ExitCode::from(2)
        }
    }
}
