//! `softvisor exec`: load a flat binary into guest RAM and interpret it from its first byte
//! in 64-bit mode until HLT, a fault or the instruction limit.

use softvisor_cpu::{interp, CpuState, StepOutcome};
use softvisor_mmu::{FlatMemory, GuestRam, MmuError};
use std::path::PathBuf;
use std::process::ExitCode;
use thiserror::Error;

/// What `exec` was asked to do.
#[derive(clap::Args)]
pub struct ExecOptions {
    /// The raw code image.
    #[arg(long)]
    pub image: PathBuf,
    /// Guest-physical load address (and entry point) of the image.
    #[arg(long, default_value = "0x100000", value_parser = crate::parse_u64)]
    pub load: u64,
    /// Guest RAM size, e.g. 64M or 1G.
    #[arg(long, default_value = "64M", value_parser = crate::parse_size)]
    pub memory: u64,
    /// Stop after this many instructions.
    #[arg(long, default_value_t = 1_000_000_000)]
    pub max_insns: u64,
    /// Print every instruction as it executes.
    #[arg(long)]
    pub trace: bool,
}

/// Errors of the front end.
#[derive(Debug, Error)]
pub enum ExecError {
    /// The image cannot be read.
    #[error("cannot read image {path}: {source}")]
    Image {
        /// The path given.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The image is empty.
    #[error("image {0} is empty")]
    EmptyImage(PathBuf),
    /// RAM could not be set up, or the image does not fit.
    #[error("{0}")]
    Memory(#[from] MmuError),
}

/// Runs the image; the exit code is 0 after HLT, 1 after a guest fault or the limit.
pub fn run(options: &ExecOptions) -> Result<ExitCode, ExecError> {
    let bytes = std::fs::read(&options.image).map_err(|source| ExecError::Image {
        path: options.image.clone(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(ExecError::EmptyImage(options.image.clone()));
    }
    let mut ram = GuestRam::new(options.memory)?;
    ram.write_bytes(options.load, &bytes)?;
    let mut mem = FlatMemory::new(ram);
    let mut cpu = CpuState::new_long_mode();
    cpu.rip = options.load;
    cpu.gpr[4] = options.memory;
    let code = loop {
        if cpu.icount >= options.max_insns {
            eprintln!("softvisor: stopped after {} instructions", cpu.icount);
            break ExitCode::from(1);
        }
        if options.trace {
            trace(&cpu, &mut mem);
        }
        match interp::step(&mut cpu, &mut mem) {
            Ok(StepOutcome::Halt) => break ExitCode::SUCCESS,
            Ok(StepOutcome::Shutdown) => {
                eprintln!("softvisor: triple fault at rip {:#x}", cpu.rip);
                break ExitCode::from(1);
            }
            Ok(StepOutcome::Continue | StepOutcome::Stop) => {}
            Err(e) => {
                eprintln!(
                    "softvisor: guest exception {e:?} (vector {}) at rip {:#x}",
                    e.vector(),
                    cpu.rip
                );
                break ExitCode::from(1);
            }
        }
    };
    print_registers(&cpu);
    Ok(code)
}

fn trace(cpu: &CpuState, mem: &mut FlatMemory) {
    use iced_x86::{Formatter, IntelFormatter};
    if let Ok(insn) = interp::decode_at(cpu, mem) {
        let mut text = String::new();
        IntelFormatter::new().format(&insn, &mut text);
        eprintln!("{:>10} {:016x}  {text}", cpu.icount, cpu.rip);
    }
}

fn print_registers(cpu: &CpuState) {
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    for (i, name) in NAMES.iter().enumerate() {
        print!(
            "{name:>3}={:016x}{}",
            cpu.gpr[i],
            if i % 4 == 3 { "\n" } else { " " }
        );
    }
    println!(
        "rip={:016x} rflags={:016x} instructions={}",
        cpu.rip,
        cpu.rflags(),
        cpu.icount
    );
}
