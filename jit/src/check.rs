//! The lockstep check (`--engine jit --check`): every block runs in the interpreter and in
//! its translation from the same state, and the two results are compared.
//!
//! The interpreter goes first, through a memory wrapper that logs each write with the bytes
//! it replaced, and keeps the CPU state after every instruction. Its writes are then undone,
//! the CPU state restored, and the translated block runs. The block's state is compared with
//! the interpreter's after the same number of instructions (RFLAGS compared as values, since
//! the lazy forms may differ), and the memory the interpreter wrote is compared with what
//! the block left there. The first difference is reported with the guest RIP and the block's
//! disassembly. Blocks whose interpreter run reached a device (port I/O, MSRs, MMIO) are not
//! run twice: their side effects cannot be undone, so the interpreter's result stands.

use crate::cache::Block;
use crate::context::exit;
use iced_x86::{Formatter, Instruction, IntelFormatter, Mnemonic};
use softvisor_cpu::interp::execute as interpret;
use softvisor_cpu::{CpuState, Exception, Platform, StepOutcome};
use softvisor_mmu::paging::PagingContext;
use softvisor_mmu::{AccessKind, MemFault, Memory};

/// Lockstep state.
#[derive(Default)]
pub struct Checker {
    /// The first divergence found.
    pub divergence: Option<String>,
    /// Blocks compared.
    pub checked: u64,
    /// Blocks run only in the interpreter (device access).
    pub unchecked: u64,
}

/// A write the interpreter made: address, old bytes, new bytes.
struct Write {
    addr: u64,
    old: Vec<u8>,
    new: Vec<u8>,
}

/// Memory that logs writes on their way through.
struct Logging<'a> {
    inner: &'a mut dyn Memory,
    writes: Vec<Write>,
}

impl Logging<'_> {
    /// The bytes a write is about to replace.
    fn before(&mut self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut old = vec![0; len];
        self.inner
            .read_supervisor(addr, &mut old)
            .ok()
            .map(|()| old)
    }

    fn log(&mut self, addr: u64, old: Option<Vec<u8>>, data: &[u8]) {
        if let Some(old) = old {
            self.writes.push(Write {
                addr,
                old,
                new: data.to_vec(),
            });
        }
    }
}

impl Memory for Logging<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8], kind: AccessKind) -> Result<(), MemFault> {
        self.inner.read(addr, buf, kind)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemFault> {
        let old = self.before(addr, data.len());
        self.inner.write(addr, data)?;
        self.log(addr, old, data);
        Ok(())
    }
    fn fetch(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize, MemFault> {
        self.inner.fetch(addr, buf)
    }
    fn read_supervisor(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemFault> {
        self.inner.read_supervisor(addr, buf)
    }
    fn write_supervisor(&mut self, addr: u64, data: &[u8]) -> Result<(), MemFault> {
        let old = self.before(addr, data.len());
        self.inner.write_supervisor(addr, data)?;
        self.log(addr, old, data);
        Ok(())
    }
    fn set_paging(&mut self, ctx: &PagingContext) {
        self.inner.set_paging(ctx)
    }
    fn invalidate_page(&mut self, linear: u64) {
        self.inner.invalidate_page(linear)
    }
    fn flush_tlb(&mut self) {
        self.inner.flush_tlb()
    }
    fn code_address(&mut self, linear: u64) -> Option<u64> {
        self.inner.code_address(linear)
    }
    fn take_written_code(&mut self) -> Vec<softvisor_mmu::CodeWrite> {
        self.inner.take_written_code()
    }
    fn track_code_page(&mut self, phys: u64) {
        self.inner.track_code_page(phys)
    }
    fn take_side_exit(&mut self) -> bool {
        self.inner.take_side_exit()
    }
}

/// How the interpreter's run of a block ended.
struct Reference {
    /// CPU state after each retired instruction (`states[0]` is the start).
    states: Vec<CpuState>,
    /// The exception the next instruction raised, if one did, and the state it left (a
    /// faulting SSE instruction still sets MXCSR flags).
    fault: Option<Exception>,
    fault_state: Option<CpuState>,
    outcome: StepOutcome,
    writes: Vec<Write>,
    touched_device: bool,
}

/// RFLAGS in one canonical lazy form, so states compare by architectural value.
fn canonical(cpu: &CpuState) -> CpuState {
    let mut c = cpu.clone();
    c.flags = softvisor_cpu::LazyFlags::default();
    c.flags.set(cpu.flags.get());
    c
}

fn uses_devices(insn: &Instruction) -> bool {
    crate::block::is_port_io(insn.mnemonic())
        || matches!(insn.mnemonic(), Mnemonic::Rdmsr | Mnemonic::Wrmsr)
        || insn.op_register(0).is_cr()
        || insn.op_register(1).is_cr()
}

impl Checker {
    /// Runs `block` in both engines; returns the translated run's exit (its code, exception
    /// and outcome), or `None` after a divergence (recorded in [`Checker::divergence`]).
    pub(crate) fn run(
        &mut self,
        entry: crate::backend::EntryFn,
        block: &Block,
        cpu: &mut CpuState,
        mem: &mut dyn Memory,
        platform: &mut dyn Platform,
    ) -> Option<(u64, Option<Exception>, StepOutcome)> {
        if self.divergence.is_some() {
            return None;
        }
        let start = cpu.clone();
        let reference = reference_run(block, cpu, mem, platform);
        if reference.touched_device {
            self.unchecked += 1;
            return Some(reference_exit(&reference));
        }
        for write in reference.writes.iter().rev() {
            let _ = mem.write_supervisor(write.addr, &write.old);
        }
        *cpu = start.clone();
        // The interpreter may have moved the memory's paging context (CPL, CR3, AC).
        softvisor_cpu::system::sync_paging(cpu, mem);
        let until = cpu.icount + block.len() as u64;
        let (code, exception, outcome, _) = crate::engine::execute(
            entry,
            block.code,
            core::ptr::null(),
            cpu,
            mem,
            platform,
            until,
        );
        self.checked += 1;
        if let Some(report) = compare(block, &start, &reference, cpu, mem, code, exception) {
            self.divergence = Some(report);
            return None;
        }
        Some((code, exception, outcome))
    }
}

/// Runs the block's instructions in the interpreter, logging writes.
fn reference_run(
    block: &Block,
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    platform: &mut dyn Platform,
) -> Reference {
    let mut logging = Logging {
        inner: mem,
        writes: Vec::new(),
    };
    let mut reference = Reference {
        states: vec![cpu.clone()],
        fault: None,
        fault_state: None,
        outcome: StepOutcome::Continue,
        writes: Vec::new(),
        touched_device: false,
    };
    for insn in block.insns.iter() {
        // As the translated block does, decode a page-crossing instruction afresh.
        let fresh = crate::block::runs_fetched(insn, cpu.bitness())
            .then(|| softvisor_cpu::interp::decode_at(cpu, &mut logging));
        let insn = match &fresh {
            Some(Ok(fresh)) => fresh,
            Some(Err(e)) => {
                reference.fault = Some(*e);
                reference.fault_state = Some(cpu.clone());
                break;
            }
            None => insn,
        };
        if uses_devices(insn) {
            reference.touched_device = true;
        }
        match interpret(cpu, &mut logging, platform, insn) {
            Ok(outcome) => {
                reference.states.push(cpu.clone());
                reference.outcome = outcome;
                if logging.inner.take_side_exit() {
                    reference.touched_device = true;
                }
                if outcome != StepOutcome::Continue || reference.touched_device {
                    break;
                }
            }
            Err(e) => {
                reference.fault = Some(e);
                reference.fault_state = Some(cpu.clone());
                break;
            }
        }
    }
    reference.writes = logging.writes;
    reference
}

/// The exit the dispatcher acts on when the interpreter's run stands alone.
fn reference_exit(reference: &Reference) -> (u64, Option<Exception>, StepOutcome) {
    match (reference.fault, reference.outcome) {
        (Some(e), _) => (exit::FAULT, Some(e), StepOutcome::Continue),
        (None, StepOutcome::Continue) => (exit::NORMAL, None, StepOutcome::Continue),
        (None, outcome) => (exit::OUTCOME, None, outcome),
    }
}

/// The first difference between the engines, as a report.
fn compare(
    block: &Block,
    start: &CpuState,
    reference: &Reference,
    jit: &CpuState,
    mem: &mut dyn Memory,
    code: u64,
    exception: Option<Exception>,
) -> Option<String> {
    let retired = jit.icount.wrapping_sub(start.icount) as usize;
    let mut problems = Vec::new();
    let expected = match (&reference.fault_state, code) {
        (Some(state), exit::FAULT) if retired + 1 == reference.states.len() => Some(state),
        _ => reference.states.get(retired),
    };
    match expected {
        None => problems.push(format!(
            "translated code retired {retired} instructions, the interpreter {}",
            reference.states.len() - 1
        )),
        Some(expected) => {
            let (want, got) = (canonical(expected), canonical(jit));
            if want != got {
                problems.extend(state_differences(&want, &got));
            }
        }
    }
    if code == exit::FAULT && exception != reference.fault {
        problems.push(format!(
            "exception: interpreter {:?}, translated {exception:?}",
            reference.fault
        ));
    }
    let complete = retired + 1 == reference.states.len() && code != exit::INTERPRET;
    if complete {
        // The last value the interpreter wrote to each byte.
        let mut last = std::collections::BTreeMap::new();
        for write in &reference.writes {
            for (i, &byte) in write.new.iter().enumerate() {
                last.insert(write.addr.wrapping_add(i as u64), byte);
            }
        }
        for (&addr, &want) in &last {
            let mut now = [0u8];
            if mem.read_supervisor(addr, &mut now).is_ok() && now[0] != want {
                problems.push(format!(
                    "memory at {addr:#x}: interpreter wrote {want:#04x}, translated left {:#04x}",
                    now[0]
                ));
                break;
            }
        }
    }
    if problems.is_empty() {
        return None;
    }
    let at = block
        .insns
        .get(retired.min(block.len() - 1))
        .map_or(start.rip, Instruction::ip);
    Some(format!(
        "engines diverge in the block at rip {:#x} (after {retired} instructions, at {at:#x}, exit code {code}):\n  {}\nblock:\n{}",
        start.rip,
        problems.join("\n  "),
        disassemble(&block.insns)
    ))
}

/// Field-by-field differences of two CPU states.
fn state_differences(want: &CpuState, got: &CpuState) -> Vec<String> {
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    let mut out = Vec::new();
    for (n, name) in NAMES.iter().enumerate() {
        if want.gpr[n] != got.gpr[n] {
            out.push(format!(
                "{name}: interpreter {:#x}, translated {:#x}",
                want.gpr[n], got.gpr[n]
            ));
        }
    }
    let pairs = [
        ("rip", want.rip, got.rip),
        ("rflags", want.flags.get(), got.flags.get()),
        ("icount", want.icount, got.icount),
    ];
    for (name, a, b) in pairs {
        if a != b {
            out.push(format!("{name}: interpreter {a:#x}, translated {b:#x}"));
        }
    }
    if out.is_empty() {
        out.push(format!(
            "other state differs:\n interpreter {want:?}\n translated {got:?}"
        ));
    }
    out
}

/// The block as Intel-syntax lines.
pub fn disassemble(insns: &[Instruction]) -> String {
    let mut formatter = IntelFormatter::new();
    let mut text = String::new();
    for insn in insns {
        let mut line = String::new();
        formatter.format(insn, &mut line);
        text.push_str(&format!("  {:#x}: {line}\n", insn.ip()));
    }
    text
}
