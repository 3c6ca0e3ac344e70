//! softvisor: a pure-software x86-64 emulator-hypervisor. This is the command-line front end.
//!
//! Today it runs a flat 64-bit binary in the reference interpreter (`softvisor exec`), for
//! instruction-level experiments and tracing; booting Linux (`softvisor run`) arrives with
//! the machine work. Every bad input ends in a one-line error and a non-zero exit.

mod exec;
mod machine;
mod run;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    /// Boot a Linux kernel with COM1 on the terminal.
    Run {
        /// The kernel (bzImage).
        #[arg(long)]
        kernel: PathBuf,
        /// The initial ramdisk.
        #[arg(long)]
        initrd: Option<PathBuf>,
        /// Kernel command-line text (console=ttyS0 is added when no console is named).
        #[arg(long)]
        append: Option<String>,
        /// Guest RAM, e.g. 256M or 1G.
        #[arg(long, default_value = "512M", value_parser = parse_size)]
        memory: u64,
        /// Execution engine.
        #[arg(long, default_value = "interp", value_parser = ["interp", "jit"])]
        engine: String,
        /// Stop after this many instructions.
        #[arg(long, default_value_t = u64::MAX)]
        max_insns: u64,
        /// RTC time at boot, in Unix seconds (fixed, so runs repeat exactly).
        #[arg(long, default_value_t = 1_767_225_600)]
        epoch: u64,
        /// Sample RIP every 100 us of virtual time; print the hottest code at exit.
        #[arg(long)]
        profile: bool,
        /// Let idle time pass at wall-clock speed instead of jumping (interactive use).
        #[arg(long)]
        pace: bool,
        /// Guest instructions per microsecond of virtual time (the rate of the clock the
        /// TSC, timers and RTC follow).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        clock_rate: u64,
    },
    /// Run a flat 64-bit binary in the interpreter until HLT, then print the registers.
    Exec {
        /// The raw code image.
        #[arg(long)]
        image: PathBuf,
        /// Guest-physical load address (and entry point) of the image.
        #[arg(long, default_value = "0x100000", value_parser = parse_u64)]
        load: u64,
        /// Guest RAM size, e.g. 64M or 1G.
        #[arg(long, default_value = "64M", value_parser = parse_size)]
        memory: u64,
        /// Stop after this many instructions.
        #[arg(long, default_value_t = 1_000_000_000)]
        max_insns: u64,
        /// Print every instruction as it executes.
        #[arg(long)]
        trace: bool,
    },
}

/// Parses a number in decimal or 0x-hex.
fn parse_u64(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("'{text}' is not a number"))
}

/// Parses a size with an optional K/M/G suffix (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
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
        Command::Run { engine, .. } if engine == "jit" => {
            eprintln!("softvisor: --engine jit is not built yet; use --engine interp");
            return ExitCode::from(2);
        }
        Command::Run {
            kernel,
            initrd,
            append,
            memory,
            max_insns,
            epoch,
            profile,
            pace,
            clock_rate,
            ..
        } => run::run(&run::RunOptions {
            kernel,
            initrd,
            append,
            memory,
            max_insns,
            epoch,
            profile,
            pace,
            clock_rate,
        })
        .map_err(|e| e.to_string()),
        Command::Exec {
            image,
            load,
            memory,
            max_insns,
            trace,
        } => exec::run(&exec::ExecOptions {
            image,
            load,
            memory,
            max_insns,
            trace,
        })
        .map_err(|e| e.to_string()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("softvisor: {e}");
            ExitCode::from(2)
        }
    }
}
