//! `softvisor run`: boot a Linux kernel on the machine, with COM1 on the terminal.
//!
//! Console input from a pipe or file is read whole before the guest starts and fed at fixed
//! virtual times, so a scripted session is deterministic. From a terminal, input is live
//! (raw mode) and Ctrl-A x quits, as in QEMU.

use crate::console::ConsoleOut;
use crate::machine::board::Board;
use crate::machine::{Engine, Exit, Machine};
use softvisor_devices::ioapic::IOAPIC_DEFAULT_BASE;
use softvisor_devices::lapic::APIC_DEFAULT_BASE;
use softvisor_firmware::acpi::InterruptControllers;
use softvisor_firmware::FirmwareError;
use softvisor_mmu::{GuestRam, MmuError};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use thiserror::Error;

/// What `run` was asked to do: the options of `softvisor run`.
#[derive(clap::Args)]
pub struct RunOptions {
    /// The kernel (bzImage, ELF64 vmlinux or multiboot).
    #[arg(long)]
    pub kernel: PathBuf,
    /// The initial ramdisk.
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Kernel command-line text (console=ttyS0 is added when no console is named).
    #[arg(long)]
    pub append: Option<String>,
    /// Guest RAM, e.g. 256M or 1G.
    #[arg(long, default_value = "512M", value_parser = crate::parse_size)]
    pub memory: u64,
    /// Execution engine.
    #[arg(long, default_value = "interp", value_parser = ["interp", "jit"])]
    pub engine: String,
    /// With --engine jit: run every block in both engines, compare, and stop at the first
    /// divergence with a report (slow).
    #[arg(long)]
    pub check: bool,
    /// With --engine jit: translate a block the N-th time it is reached (1: at once); the
    /// interpreter runs it until then. --check translates at once.
    #[arg(long, default_value_t = softvisor_jit::TRANSLATE_AFTER, value_parser = clap::value_parser!(u32).range(1..))]
    pub translate_after: u32,
    /// With --engine jit: compile blocks on the guest's own thread, stopping it meanwhile,
    /// instead of on a second host thread (the guest sees the same either way).
    #[arg(long)]
    pub no_compile_thread: bool,
    /// With --engine jit: write /tmp/perf-<pid>.map so `perf report` names generated code
    /// by guest address.
    #[arg(long)]
    pub perf_map: bool,
    /// With --engine jit: print the JIT's counters at exit.
    #[arg(long)]
    pub jit_stats: bool,
    /// Stop after this many instructions.
    #[arg(long, default_value_t = u64::MAX)]
    pub max_insns: u64,
    /// RTC time at boot, in Unix seconds (fixed, so runs repeat exactly).
    #[arg(long, default_value_t = 1_767_225_600)]
    pub epoch: u64,
    /// Sample RIP every 100 us of virtual time; print the hottest code at exit.
    #[arg(long)]
    pub profile: bool,
    /// Let idle time pass at wall-clock speed instead of jumping (interactive use).
    #[arg(long)]
    pub pace: bool,
    /// Guest instructions per microsecond of virtual time (the rate of the clock the
    /// TSC, timers and RTC follow).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub clock_rate: u64,
}

/// Errors of `softvisor run`, each a one-line message.
#[derive(Debug, Error)]
pub enum RunError {
    /// A file cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// "kernel" or "initrd".
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The kernel or initrd is unusable.
    #[error("{0}")]
    Firmware(#[from] FirmwareError),
    /// Guest RAM could not be created.
    #[error("{0}")]
    Memory(#[from] MmuError),
    /// The memory size is outside what the machine supports.
    #[error("--memory {0} MiB is not supported (use 16 MiB to 3072 MiB)")]
    MemorySize(u64),
    /// The JIT cannot generate code on this host.
    #[error("{0}")]
    Jit(softvisor_jit::JitError),
    /// `--check` compares the JIT against the interpreter, so it needs the JIT.
    #[error("--check needs --engine jit")]
    CheckNeedsJit,
    /// Only the JIT generates code to name.
    #[error("--perf-map needs --engine jit")]
    PerfMapNeedsJit,
}

const MIB: u64 = 1 << 20;

fn read(what: &'static str, path: &PathBuf) -> Result<Vec<u8>, RunError> {
    std::fs::read(path).map_err(|source| RunError::Read {
        what,
        path: path.clone(),
        source,
    })
}

/// The command line: the user's text, with `console=ttyS0` when it names no console.
pub fn command_line(append: Option<&str>) -> String {
    let user = append.unwrap_or("").trim();
    if user
        .split_whitespace()
        .any(|word| word.starts_with("console="))
    {
        user.to_string()
    } else if user.is_empty() {
        "console=ttyS0".to_string()
    } else {
        format!("console=ttyS0 {user}")
    }
}

/// Boots and runs the guest; the exit code says how it ended.
pub fn run(options: &RunOptions) -> Result<ExitCode, RunError> {
    if !(16 * MIB..=3072 * MIB).contains(&options.memory) {
        return Err(RunError::MemorySize(options.memory / MIB));
    }
    let kernel = read("kernel", &options.kernel)?;
    let initrd = options
        .initrd
        .as_ref()
        .map(|p| read("initrd", p))
        .transpose()?;
    let mut ram = GuestRam::new(options.memory)?;
    let cmdline = command_line(options.append.as_deref());
    let rsdp = softvisor_firmware::acpi::install(
        &mut ram,
        &InterruptControllers {
            lapic_base: APIC_DEFAULT_BASE as u32,
            ioapic_base: IOAPIC_DEFAULT_BASE as u32,
            ioapic_id: 0,
        },
    )?;
    let boot = softvisor_firmware::load_kernel(
        &mut ram,
        &kernel,
        initrd.as_deref(),
        &cmdline,
        Some(rsdp),
    )?;
    let console = ConsoleOut::default();
    let board = Board::new(
        Box::new(console.clone()),
        Box::new(console.clone()),
        options.epoch,
    );
    let mut machine = Machine::new(ram, board);
    if options.engine == "jit" {
        let jit = softvisor_jit::Jit::new().map_err(RunError::Jit)?;
        let jit = if options.check {
            jit.with_lockstep_check().with_translate_after(1)
        } else if options.no_compile_thread {
            jit.with_translate_after(options.translate_after)
        } else {
            jit.with_translate_after(options.translate_after)
                .with_compile_thread()
                .map_err(RunError::Jit)?
        };
        let jit = if options.perf_map {
            jit.with_perf_map().map_err(RunError::Jit)?
        } else {
            jit
        };
        machine.set_engine(Engine::Jit(Box::new(jit)));
    } else if options.check {
        return Err(RunError::CheckNeedsJit);
    } else if options.perf_map {
        return Err(RunError::PerfMapNeedsJit);
    }
    machine.apply_boot(&boot);
    machine.set_clock_rate(options.clock_rate);
    if options.pace {
        machine.pace_to_wall_clock();
    }

    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let (live, quit) = if interactive {
        let (tx, rx) = mpsc::channel();
        spawn_terminal_reader(tx);
        (Some(rx), true)
    } else {
        let mut script = Vec::new();
        let _ = stdin.lock().read_to_end(&mut script);
        machine.queue_input(&script);
        (None, false)
    };
    let _raw = interactive.then(RawTerminal::enter);
    let mut profile = options.profile.then(Profile::default);
    let exit = machine.run(options.max_insns, |m| {
        if let Some(profile) = profile.as_mut() {
            profile.sample(m.cpu.rip);
        }
        // Best effort, as the UART's own writes were: a closed terminal must not stop
        // the guest.
        let _ = console.drain_to(&mut std::io::stdout().lock());
        poll_terminal(m, live.as_ref(), quit)
    });
    let _ = console.drain_to(&mut std::io::stdout().lock());
    drop(_raw);
    if let Some(profile) = profile {
        profile.print();
    }
    if let (true, Some((stats, checked))) = (options.jit_stats, machine.jit_stats()) {
        eprintln!(
            "softvisor: jit {stats:?} in {} guest instructions, lockstep (checked, unchecked) {checked:?}",
            machine.cpu.icount
        );
    }
    let where_ = format!(
        "rip {:#x} after {} instructions",
        machine.cpu.rip, machine.cpu.icount
    );
    Ok(report(exit, &where_))
}

/// RIP samples taken at slice boundaries (every 100 us of virtual time at most), by
/// 256-byte region: deterministic, and enough to see where a guest spends its time.
#[derive(Default)]
struct Profile {
    regions: std::collections::HashMap<u64, u64>,
    total: u64,
}

impl Profile {
    const REGION_BITS: u32 = 8;
    const SHOWN: usize = 20;

    fn sample(&mut self, rip: u64) {
        *self.regions.entry(rip >> Self::REGION_BITS).or_default() += 1;
        self.total += 1;
    }

    fn print(self) {
        let mut hottest: Vec<(u64, u64)> = self.regions.into_iter().collect();
        hottest.sort_by_key(|&(region, count)| (std::cmp::Reverse(count), region));
        eprintln!(
            "softvisor: profile of {} samples (RIP region, share)",
            self.total
        );
        for (region, count) in hottest.into_iter().take(Self::SHOWN) {
            let share = 100.0 * count as f64 / self.total.max(1) as f64;
            eprintln!("  {:#018x} {share:5.1}%", region << Self::REGION_BITS);
        }
    }
}

/// Moves typed bytes into the machine; false when the user quit (Ctrl-A x).
fn poll_terminal(machine: &mut Machine, live: Option<&mpsc::Receiver<u8>>, _quit: bool) -> bool {
    let Some(rx) = live else { return true };
    let mut escape = false;
    while let Ok(byte) = rx.try_recv() {
        if escape && byte == b'x' {
            return false;
        }
        escape = byte == 0x01;
        if !escape {
            machine.queue_input(&[byte]);
        }
    }
    true
}

fn spawn_terminal_reader(tx: mpsc::Sender<u8>) {
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let mut stdin = std::io::stdin();
        while let Ok(1) = stdin.read(&mut byte) {
            if tx.send(byte[0]).is_err() {
                break;
            }
        }
    });
}

/// The terminal in raw mode for the life of the value.
struct RawTerminal(Option<libc::termios>);

impl RawTerminal {
    fn enter() -> Self {
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0 or fails.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is stdin and `saved` is a valid termios to write into.
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            return RawTerminal(None);
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: applying a termios derived from the terminal's own settings.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) };
        RawTerminal(Some(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restoring the settings read in `enter`.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
        }
    }
}

/// Prints how the machine ended and picks the exit code: power-off is 0, the test-exit port gives
/// (v << 1) | 1 as QEMU's isa-debug-exit does; a reset is 3, a dead halt 4, the
/// instruction limit or Ctrl-A x 5, a lockstep-check divergence 6.
fn report(exit: Exit, where_: &str) -> ExitCode {
    match exit {
        Exit::PowerOff => ExitCode::SUCCESS,
        Exit::TestDevice(v) => ExitCode::from(((u16::from(v) << 1) | 1) as u8),
        Exit::Reset => {
            eprintln!("softvisor: the guest reset the machine ({where_})");
            ExitCode::from(3)
        }
        Exit::Halted => {
            eprintln!("softvisor: the guest halted with interrupts disabled ({where_})");
            ExitCode::from(4)
        }
        Exit::Limit => {
            eprintln!("softvisor: stopped by the instruction limit or Ctrl-A x ({where_})");
            ExitCode::from(5)
        }
        Exit::Diverged(report) => {
            eprintln!("softvisor: lockstep check: {report}");
            ExitCode::from(6)
        }
    }
}
