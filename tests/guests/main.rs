//! Self-checking guest programs: every `*.S` file here is assembled with GNU binutils into a
//! flat image, loaded at 0x7c00 and started in real mode like a boot sector. A program
//! reports through port 0xf4 (0 = pass, anything else is its failure code, in the spirit of
//! QEMU's isa-debug-exit) and may print to the debug console at port 0xe9. Writing a
//! vector to port 0x510 makes it a pending external interrupt, and any write to port 0x511
//! raises an NMI, so programs can test interrupt delivery. A program that faults its way to a triple fault, halts for good or
//! runs past the instruction limit fails.

use softvisor_cpu::decode_cache::DecodeCache;
use softvisor_cpu::vcpu::{run, RunExit};
use softvisor_cpu::{CpuState, Platform};
use softvisor_jit::Jit;
use softvisor_mmu::bus::Bus;
use softvisor_mmu::{GuestRam, SystemMemory};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;

const LOAD_ADDR: u64 = 0x7c00;
const RAM_SIZE: u64 = 32 << 20;
const INSTRUCTION_LIMIT: u64 = 50_000_000;

/// The test machine's ports.
#[derive(Default)]
struct TestPlatform {
    console: Vec<u8>,
    exit: Option<u8>,
    pending: VecDeque<u8>,
    nmi: bool,
}

impl Platform for TestPlatform {
    fn io_read(&mut self, _port: u16, _size: u8) -> u32 {
        0xffff_ffff
    }

    fn io_write(&mut self, port: u16, _size: u8, value: u32) {
        match port {
            0xe9 => self.console.push(value as u8),
            0xf4 => self.exit = Some(value as u8),
            0x510 => self.pending.push_back(value as u8),
            0x511 => self.nmi = true,
            _ => {}
        }
    }

    fn nmi_pending(&mut self) -> bool {
        self.nmi
    }

    fn acknowledge_nmi(&mut self) {
        self.nmi = false;
    }

    fn interrupt_pending(&mut self) -> bool {
        !self.pending.is_empty()
    }

    fn acknowledge_interrupt(&mut self) -> Option<u8> {
        self.pending.pop_front()
    }
}

/// Assembles `source` into a flat binary linked at 0x7c00.
fn assemble(source: &Path) -> Vec<u8> {
    // The tests run in parallel and assemble the same programs into the same files: one
    // at a time, or one reads an image the other is rewriting.
    static ASSEMBLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = ASSEMBLING.lock().unwrap_or_else(|e| e.into_inner());
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let stem = source.file_stem().unwrap().to_string_lossy().into_owned();
    let object = out_dir.join(format!("{stem}.o"));
    let image = out_dir.join(format!("{stem}.bin"));
    let status = Command::new("as")
        .arg("--64")
        .arg("-I")
        .arg(source.parent().unwrap())
        .arg("-o")
        .arg(&object)
        .arg(source)
        .status()
        .expect("GNU as is installed");
    assert!(status.success(), "assembling {} failed", source.display());
    let status = Command::new("ld")
        .args([
            "-m",
            "elf_x86_64",
            "-Ttext=0x7c00",
            "--oformat",
            "binary",
            "-e",
            "start",
            "-o",
        ])
        .arg(&image)
        .arg(&object)
        .status()
        .expect("GNU ld is installed");
    assert!(status.success(), "linking {} failed", source.display());
    std::fs::read(image).unwrap()
}

/// A CPU as after reset but at 0000:7C00, like a BIOS handing over to a boot sector.
fn boot_cpu() -> CpuState {
    let mut cpu = CpuState::new_real_mode();
    cpu.rip = LOAD_ADDR;
    cpu.gpr[4] = LOAD_ADDR;
    cpu
}

/// The engines every program runs under.
#[derive(Clone, Copy, Debug)]
enum Engine {
    Interp,
    Jit,
    /// The JIT with every block also run in the interpreter and compared.
    JitCheck,
    /// The JIT compiling on its compile thread, blocks translated the second time they
    /// are reached: the interpreter runs them until their code arrives, at the end of the
    /// slice.
    JitThread,
    /// The JIT with a threshold no block reaches: every block runs cold in the interpreter
    /// from its decoded instructions, quiet ones going on to the next cold block of their
    /// page without the dispatcher.
    JitCold,
}

/// One engine's run loop over the test machine.
enum Runner {
    Interp(DecodeCache),
    Jit(Box<Jit>),
}

impl Runner {
    fn new(engine: Engine) -> Self {
        match engine {
            Engine::Interp => Runner::Interp(DecodeCache::new()),
            Engine::Jit => Runner::Jit(Box::new(Jit::new().unwrap().with_translate_after(1))),
            Engine::JitCheck => Runner::Jit(Box::new(
                Jit::new()
                    .unwrap()
                    .with_lockstep_check()
                    .with_translate_after(1),
            )),
            Engine::JitThread => Runner::Jit(Box::new(
                Jit::new()
                    .unwrap()
                    .with_translate_after(2)
                    .with_compile_thread()
                    .unwrap(),
            )),
            Engine::JitCold => {
                Runner::Jit(Box::new(Jit::new().unwrap().with_translate_after(u32::MAX)))
            }
        }
    }

    fn run(
        &mut self,
        cpu: &mut CpuState,
        mem: &mut SystemMemory,
        platform: &mut TestPlatform,
        until: u64,
    ) -> Result<RunExit, String> {
        match self {
            Runner::Interp(cache) => Ok(run(cpu, mem, platform, cache, until)),
            Runner::Jit(jit) => {
                let exit = jit.run(cpu, mem, platform, until);
                // Blocks submitted to a compile thread are ready by the next slice.
                jit.wait_for_compiles();
                match jit.divergence() {
                    Some(report) => Err(report.to_owned()),
                    None => Ok(exit),
                }
            }
        }
    }
}

/// Runs one program; returns the console text and the verdict.
fn run_program(image: &[u8], engine: Engine) -> (String, Result<(), String>) {
    let mut ram = GuestRam::new(RAM_SIZE).unwrap();
    ram.write_bytes(LOAD_ADDR, image).unwrap();
    let mut mem = SystemMemory::new(ram, Bus::new());
    let mut cpu = boot_cpu();
    let mut platform = TestPlatform::default();
    let mut runner = Runner::new(engine);
    let verdict = loop {
        let until = cpu.icount + 10_000;
        let exit = match runner.run(&mut cpu, &mut mem, &mut platform, until) {
            Ok(exit) => exit,
            Err(divergence) => break Err(divergence),
        };
        if let Some(code) = platform.exit {
            break if code == 0 {
                Ok(())
            } else {
                Err(format!("reported failure {code}"))
            };
        }
        match exit {
            RunExit::Shutdown => break Err(format!("triple fault at rip {:#x}", cpu.rip)),
            RunExit::Halted if platform.pending.is_empty() => {
                break Err(format!("halted for good at rip {:#x}", cpu.rip))
            }
            _ if cpu.icount > INSTRUCTION_LIMIT => {
                break Err(format!(
                    "did not exit within {INSTRUCTION_LIMIT} instructions"
                ))
            }
            _ => {}
        }
    };
    (
        String::from_utf8_lossy(&platform.console).into_owned(),
        verdict,
    )
}

/// The `*.S` programs, sorted.
fn guest_sources() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "S"))
        .collect();
    sources.sort();
    sources
}

#[test]
fn guest_programs_pass() {
    let sources = guest_sources();
    assert!(!sources.is_empty(), "no guest programs in tests/guests");
    let images: Vec<(String, Vec<u8>)> = sources
        .iter()
        .map(|s| {
            (
                s.file_name().unwrap().to_string_lossy().into_owned(),
                assemble(s),
            )
        })
        .collect();
    let mut failures = Vec::new();
    for engine in [
        Engine::Interp,
        Engine::Jit,
        Engine::JitCheck,
        Engine::JitThread,
        Engine::JitCold,
    ] {
        let mut failed = 0;
        for (name, image) in &images {
            let (console, verdict) = run_program(image, engine);
            match verdict {
                Ok(()) => println!("guest {name} ({engine:?}): PASS"),
                Err(why) => {
                    println!("guest {name} ({engine:?}): FAIL ({why})\n{console}");
                    failures.push(format!("{name} ({engine:?})"));
                    failed += 1;
                }
            }
        }
        // Written past libtest's capture so `cargo test` shows it.
        use std::io::Write;
        let _ = writeln!(
            std::io::stdout().lock(),
            "guests ({engine:?}): {} passed, {failed} failed",
            images.len() - failed
        );
    }
    assert!(failures.is_empty(), "guest programs failed: {failures:?}");
}

/// Every program runs in both engines in slices of a few instructions; after each slice
/// both must hold the same CPU state (RFLAGS compared by value). This finds the first
/// instruction count at which a JIT bug shows, beyond the programs' own checks.
#[test]
fn engines_agree_at_every_slice() {
    let sources = guest_sources();
    let mut failures = Vec::new();
    for source in &sources {
        let image = assemble(source);
        let name = source.file_name().unwrap().to_string_lossy().into_owned();
        // Translated the second time a block is reached, or never (cold blocks only).
        for translate_after in [2, u32::MAX] {
            if let Err(why) = compare_engines(&image, translate_after) {
                println!("guest {name} (translate after {translate_after}): engines differ: {why}");
                failures.push(name.clone());
            }
        }
    }
    assert!(failures.is_empty(), "engines differ on {failures:?}");
}

fn compare_engines(image: &[u8], translate_after: u32) -> Result<(), String> {
    let machine = || {
        let mut ram = GuestRam::new(RAM_SIZE).unwrap();
        ram.write_bytes(LOAD_ADDR, image).unwrap();
        (
            SystemMemory::new(ram, Bus::new()),
            boot_cpu(),
            TestPlatform::default(),
        )
    };
    let (mut mem_a, mut cpu_a, mut plat_a) = machine();
    let (mut mem_b, mut cpu_b, mut plat_b) = machine();
    let mut interp = Runner::new(Engine::Interp);
    // GUEST_SLICE=1 translates one instruction per block and compares after each one.
    let slice: u64 = std::env::var("GUEST_SLICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(37);
    // Translated the second time they are reached, blocks cover stepping through cold
    // blocks, the switch to translated code, and translated code; never translated, the
    // chains of cold blocks.
    let mut jit = Runner::Jit(Box::new(
        Jit::new()
            .unwrap()
            .with_max_block_insns(slice as usize)
            .with_translate_after(translate_after),
    ));
    let canonical = |cpu: &CpuState| {
        let mut c = cpu.clone();
        c.flags = softvisor_cpu::LazyFlags::default();
        c.flags.set(cpu.flags.get());
        c
    };
    let mut until = 0;
    let mut previous = (0, 0);
    while plat_a.exit.is_none() && until < 2_000_000 {
        until += slice;
        let exit_a = interp.run(&mut cpu_a, &mut mem_a, &mut plat_a, until)?;
        let exit_b = jit.run(&mut cpu_b, &mut mem_b, &mut plat_b, until)?;
        if exit_a != exit_b || canonical(&cpu_a) != canonical(&cpu_b) {
            return Err(format!(
                "up to icount {until} (before: rips {previous:x?}): interp {exit_a:?} rip {:#x} gpr {:x?} rflags {:#x}; jit {exit_b:?} rip {:#x} gpr {:x?} rflags {:#x}",
                cpu_a.rip, cpu_a.gpr, cpu_a.flags.get(), cpu_b.rip, cpu_b.gpr, cpu_b.flags.get()
            ));
        }
        previous = (cpu_a.rip, cpu_b.rip);
        if exit_a == RunExit::Shutdown || (exit_a == RunExit::Halted && plat_a.pending.is_empty()) {
            break;
        }
    }
    Ok(())
}
