//! The JIT's run loop: the same contract as the interpreter's `vcpu::run`, with translated
//! blocks in place of single instructions where that cannot change what the guest sees.
//!
//! Interrupts are taken between blocks, which is exact because a block ends at every
//! instruction that can make one deliverable (port I/O, MSR and control-register writes,
//! STI/POPF/IRET, an MMIO access). A block runs only if it fits in the instruction budget,
//! which ends at the next timer deadline; otherwise, and under an interrupt shadow or single
//! stepping, the interpreter steps one instruction. So interrupts and device accesses happen
//! at the same instruction counts as in the interpreter.
//!
//! A block is translated only once its start has been reached [`TRANSLATE_AFTER`] times;
//! until then the interpreter runs it, from instructions decoded once per block start and
//! without the per-instruction dispatch (see `run_decoded`). Cranelift spends about as long
//! on one block as the interpreter on thousands of instructions, and most of a kernel
//! boot's code runs a handful of times, so translating on first sight made compilation a
//! third of the boot.

use crate::backend::{Backend, CompiledFn, EntryFn};
use crate::block::decode_block;
use crate::cache::{written_over, Block, BlockCache, Key, MAX_BLOCKS};
use crate::check::Checker;
use crate::compiler::{CompileThread, Compiled, Prepared, Urgency};
use crate::context::{exit, JitContext};
use crate::heat::{ColdStep, Heat, HeatIndex, HeatTable};
use crate::jump_cache::{JumpCache, JumpEntry};
use crate::translate::{Chaining, CrossingTail, Mode, Translator};
use crate::JitError;
use iced_x86::Instruction;
use softvisor_cpu::decode_cache::DecodeCache;
use softvisor_cpu::flags::{AC, TF};
use softvisor_cpu::interp::fast::Ran;
use softvisor_cpu::interp::MAX_INSN_LEN;
use softvisor_cpu::vcpu::{finish_outcome, raise, step_one, take_interrupt, RunExit};
use softvisor_cpu::{CpuState, Platform, SegReg, StepOutcome};
use softvisor_mmu::{Memory, PAGE_SIZE};
use std::sync::atomic::Ordering;

/// Times a block start is reached before its block is translated. With compilation on its
/// own thread (the machine's default) 256 measured best: 128 and 512 were within noise on
/// the boot and slower on the workloads, 1024 slower on all three.
pub const TRANSLATE_AFTER: u32 = 256;

/// Code memory used before a full flush: half the arena, so the largest region still fits.
const MAX_CODE_BYTES: usize = crate::code_memory::ARENA_BYTES / 2;

/// Blocks of fewer instructions are compiled without Cranelift's optimizer, unless they
/// loop to themselves.
const QUICK_BELOW: usize = 40;

/// Cold blocks run one after another without the dispatcher (see [`Jit::run_cold`]) before
/// it gets a turn again (to install finished compiles).
const COLD_CHAIN: u32 = 64;

/// Writes to a code page after which a write drops all of the page's code again, not just
/// the code decoded from the bytes written. A page whose code outlives a write stays
/// tracked, so every later write to it leaves generated code for the interpreter: fine for
/// a kernel patching its text now and then (jump labels, static calls: 18 writes at most
/// on a page of the Debian boot), not for a page that holds code once run and is now
/// written as data (freed memory, reused).
const PARTIAL_WRITES: u32 = 64;

/// Counters of what the engine did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Blocks translated.
    pub translated: u64,
    /// Guest instructions in them (regions and blocks grown through Jccs count all).
    pub translated_insns: u64,
    /// Entries into translated code from the dispatcher (chained blocks not counted).
    pub blocks_run: u64,
    /// Guest instructions in the blocks entered from the dispatcher (a block may leave
    /// early; chained successors not counted).
    pub block_insns: u64,
    /// Instructions stepped by the interpreter outside blocks.
    pub stepped: u64,
    /// Cold blocks the interpreter ran from their decoded instructions in one go.
    pub cold_runs: u64,
    /// Of those, the ones entered from the previous cold block without the dispatcher.
    pub cold_chained: u64,
    /// Full cache flushes.
    pub flushes: u64,
    /// Host time the guest's thread spent translating blocks (decoding, IR, and Cranelift
    /// unless a compile thread does that), in microseconds.
    pub translate_us: u64,
    /// Host time the compile thread spent building and compiling blocks, in microseconds.
    pub background_us: u64,
}

/// A translation on its way to becoming a [`Block`]: everything but its code.
struct Translation {
    key: Key,
    slots: Box<[u64]>,
    insns: std::sync::Arc<[Instruction]>,
    entry_len: usize,
    /// Guest blocks in its region (for its name in the perf map).
    region_blocks: usize,
}

/// A JIT engine for one vCPU.
pub struct Jit {
    backend: Option<Backend>,
    /// The backend's entry trampoline.
    entry: Option<EntryFn>,
    /// The backend's slow-path trampolines.
    slow_paths: Option<crate::backend::SlowPaths>,
    /// A direct exit of the last block run, waiting to be linked to the next block:
    /// (slot, physical page, target RIP, cache generation).
    pending_link: Option<(*mut u64, u64, u64, u64)>,
    /// The last block left quietly: a cold block that ends quietly
    /// ([`crate::block::ends_quietly`]) ran to its end, or translated code left through a
    /// direct exit whose successor slot was empty (where a filled slot would have chained).
    quiet_exit: bool,
    cache: BlockCache,
    jump_cache: JumpCache,
    decode_cache: DecodeCache,
    /// Most instructions per block.
    max_block_insns: usize,
    checker: Option<Checker>,
    /// Whether the memory of the current run has a TLB for inline accesses (asked once
    /// per run, not per dispatch).
    has_tlb: bool,
    /// Block starts reached but not translated yet.
    heat: HeatTable,
    /// Starts of the non-entry blocks of regions translated since the last flush (or the
    /// last write to their page). Reached on their own (a budget stop or an interrupt
    /// inside the loop, a jump into its middle) they are translated as single blocks that
    /// chain into the loop's region, instead of as a copy of the whole region from there.
    inside_regions: std::collections::HashSet<Key>,
    /// Code pages written, with how often (see [`PARTIAL_WRITES`]).
    written_pages: std::collections::HashMap<u64, u32>,
    /// See [`Jit::with_translate_after`].
    translate_after: u32,
    /// Instructions of a cold block still to step before the next lookup.
    cold_left: u32,
    /// Blocks compiled into the current backend, live or dropped.
    compiled_since_flush: usize,
    /// The cold block the last lookup found, to run decoded (see [`Heat::decoded`]).
    cold_block: Option<HeatIndex>,
    /// Where hot blocks compile when not on the guest's thread (see
    /// [`Jit::with_compile_thread`]).
    compile_thread: Option<CompileThread>,
    /// Translations the compile thread is working on, by ticket.
    in_flight: std::collections::HashMap<u64, Translation>,
    /// The next compile job's ticket.
    next_ticket: u64,
    /// Counters.
    pub stats: Stats,
}

impl Jit {
    /// A JIT for this host.
    pub fn new() -> Result<Self, JitError> {
        let mut backend = Backend::new()?;
        let entry = backend.compile_entry()?;
        let slow_paths = backend.compile_slow_paths()?;
        Ok(Self {
            backend: Some(backend),
            entry: Some(entry),
            slow_paths: Some(slow_paths),
            pending_link: None,
            quiet_exit: false,
            cache: BlockCache::new(),
            jump_cache: JumpCache::new(),
            decode_cache: DecodeCache::new(),
            max_block_insns: crate::block::MAX_BLOCK_INSNS,
            checker: None,
            has_tlb: false,
            heat: HeatTable::default(),
            inside_regions: Default::default(),
            written_pages: Default::default(),
            translate_after: TRANSLATE_AFTER,
            cold_left: 0,
            cold_block: None,
            compiled_since_flush: 0,
            compile_thread: None,
            in_flight: std::collections::HashMap::new(),
            next_ticket: 0,
            stats: Stats::default(),
        })
    }

    /// Compiles hot blocks on a second host thread while the interpreter goes on running
    /// them, instead of stopping the guest for Cranelift. What the guest sees does not
    /// change (a block retires the same instructions either way); only how soon a block
    /// runs translated depends on the host. Blocks translated at once (a threshold of 1)
    /// and the lockstep check still compile on the guest's thread.
    pub fn with_compile_thread(mut self) -> Result<Self, JitError> {
        if let Some(backend) = self.backend.as_ref() {
            self.compile_thread = Some(CompileThread::spawn(backend.compiler())?);
        }
        Ok(self)
    }

    /// Translates a block the `n`-th time its start is reached (1: at once, which tests use
    /// to put every block through the translator).
    pub fn with_translate_after(mut self, n: u32) -> Self {
        self.translate_after = n.max(1);
        self
    }

    /// Limits blocks to `n` instructions (1 translates each instruction on its own).
    pub fn with_max_block_insns(mut self, n: usize) -> Self {
        self.max_block_insns = n.clamp(1, crate::block::MAX_BLOCK_INSNS);
        self
    }

    /// Writes `/tmp/perf-<pid>.map`, naming each block's code by its guest RIP, physical
    /// address and length, for `perf report`.
    pub fn with_perf_map(mut self) -> Result<Self, JitError> {
        if let Some(backend) = self.backend.as_mut() {
            backend.write_perf_map()?;
        }
        Ok(self)
    }

    /// Runs every block in both engines and compares them (see [`crate::check`]).
    pub fn with_lockstep_check(mut self) -> Self {
        self.checker = Some(Checker::default());
        self
    }

    /// The first divergence the lockstep check found, if any.
    pub fn divergence(&self) -> Option<&str> {
        self.checker.as_ref().and_then(|c| c.divergence.as_deref())
    }

    /// Blocks the lockstep check compared, and blocks it had to leave unchecked.
    pub fn check_counts(&self) -> Option<(u64, u64)> {
        self.checker.as_ref().map(|c| (c.checked, c.unchecked))
    }

    /// Runs until `icount` reaches `until`, the CPU halts with nothing to wake it, a
    /// triple fault, or a stop request: exactly `vcpu::run`'s contract and results. Under
    /// the lockstep check, a divergence stops the run with [`RunExit::Stopped`] and
    /// [`Jit::divergence`] says what differed.
    pub fn run(
        &mut self,
        cpu: &mut CpuState,
        mem: &mut dyn Memory,
        platform: &mut dyn Platform,
        until: u64,
    ) -> RunExit {
        self.has_tlb = mem.fast_tlb().is_some();
        // The machine may have raised interrupts or halted the CPU since the last run.
        self.quiet_exit = false;
        while cpu.icount < until {
            if !self.in_flight.is_empty() {
                self.install_compiled();
            }
            let shadowed = cpu.interrupt_shadow;
            // After a quiet exit nothing can have written code, made an interrupt
            // deliverable or halted the CPU: as when a block chains to the next.
            if !std::mem::take(&mut self.quiet_exit) {
                self.drop_written_code(mem);
                if let Some(exit) = take_interrupt(cpu, mem, platform) {
                    return exit;
                }
                if cpu.halted {
                    return RunExit::Halted;
                }
            }
            let block = if shadowed || cpu.flags.bits & TF != 0 {
                None
            } else if self.cold_left > 0 {
                self.cold_left -= 1;
                None
            } else {
                self.block_for(cpu, mem, true)
            };
            let link = self.pending_link.take();
            let result = match block {
                Some((key, code, len)) if cpu.icount + len as u64 <= until => {
                    if let Some((slot, page, rip, generation)) = link {
                        let same = key.phys & !0xfff == page && key.rip == rip;
                        if same && generation == self.cache.generation {
                            // SAFETY: the slot belongs to a block of the same page, alive
                            // (no block was dropped since it was handed out).
                            unsafe { *slot = code as usize as u64 };
                        }
                    }
                    self.remember_jump_target(&key, code, mem);
                    self.stats.blocks_run += 1;
                    self.stats.block_insns += len as u64;
                    self.run_block(&key, code, cpu, mem, platform, until)
                }
                Some(_) => {
                    // The block runs past the budget: step up to it without a lookup per
                    // instruction (each would start counting a block in the middle of this
                    // one, and eventually translate it).
                    self.cold_left = (until - cpu.icount).saturating_sub(1) as u32;
                    self.stats.stepped += 1;
                    step_one(cpu, mem, platform, &mut self.decode_cache)
                }
                None => match self.cold_block.take() {
                    Some(at) => self.run_cold(at, cpu, mem, platform, until),
                    None => {
                        self.stats.stepped += 1;
                        step_one(cpu, mem, platform, &mut self.decode_cache)
                    }
                },
            };
            if let Some(exit) = result {
                return exit;
            }
            if self.divergence().is_some() {
                return RunExit::Stopped;
            }
        }
        RunExit::Budget
    }

    /// Runs the translated block at CS:RIP once, or the interpreter on one instruction
    /// where no block can be used, like `softvisor_cpu::step_on`: an exception is returned
    /// (not delivered) with the state of the faulting instruction's start. For harnesses that
    /// test the translation of single instructions (see [`Jit::with_max_block_insns`]).
    pub fn step(
        &mut self,
        cpu: &mut CpuState,
        mem: &mut dyn Memory,
        platform: &mut dyn Platform,
    ) -> Result<softvisor_cpu::StepOutcome, softvisor_cpu::Exception> {
        self.drop_written_code(mem);
        self.has_tlb = mem.fast_tlb().is_some();
        let Some((_, code, len)) = self.block_for(cpu, mem, false) else {
            return self.decode_cache.step(cpu, mem, platform);
        };
        let entry = self.entry.expect("a backend");
        let until = cpu.icount + len as u64;
        let jump_cache = self.jump_cache.as_ptr();
        let (code, exception, outcome, _) =
            execute(entry, code, jump_cache, cpu, mem, platform, until);
        match code {
            exit::FAULT => Err(exception.expect("a fault exit records its exception")),
            exit::OUTCOME => Ok(outcome),
            exit::INTERPRET => self.decode_cache.step(cpu, mem, platform),
            _ => Ok(softvisor_cpu::StepOutcome::Continue),
        }
    }

    /// The translated block at CS:RIP, translating it if needed (when `heated`, only once
    /// it is hot); `None` when the code cannot be cached (MMIO, a fault on fetch, an
    /// instruction crossing the page) or is still cold.
    fn block_for(
        &mut self,
        cpu: &CpuState,
        mem: &mut dyn Memory,
        heated: bool,
    ) -> Option<(Key, CompiledFn, usize)> {
        let linear = cpu.segment(SegReg::Cs).base.wrapping_add(cpu.rip);
        let phys = mem.code_address(linear)?;
        let mode = mode_of(cpu, self.has_tlb);
        let key = Key {
            phys,
            rip: cpu.rip,
            mode,
        };
        // A translated block is found in the block cache's front table; failing that, a key
        // with heat has no block (an entry goes before its block is cached), so a cold block
        // found in the heat table's front skips the block cache's hash map.
        if let Some((code, len)) = self.cache.front_hit(&key) {
            return Some((key, code, len));
        }
        let cached_heat = if heated { self.heat.cached(&key) } else { None };
        if cached_heat.is_none() {
            if let Some((code, len)) = self.cache.lookup(&key) {
                return Some((key, code, len));
            }
        }
        if heated && self.is_cold(&key, cached_heat, cpu, mem) {
            return None;
        }
        let block = self.translate(cpu, mem, mode, phys)?;
        let (code, len) = (block.code, block.len());
        self.cache.insert(key, block);
        Some((key, code, len))
    }

    /// Counts a reach of the untranslated block `key`; while it stays below the threshold,
    /// arranges for the interpreter to run the block and says so.
    /// `cached` is its entry when the caller already found it.
    fn is_cold(
        &mut self,
        key: &Key,
        cached: Option<HeatIndex>,
        cpu: &CpuState,
        mem: &mut dyn Memory,
    ) -> bool {
        if self.translate_after <= 1 {
            return false;
        }
        let max_insns = self.max_block_insns;
        let at = match cached {
            Some(at) => at,
            None => self.heat.entry(key, || cold_block(cpu, mem, max_insns)),
        };
        let Some(heat) = self.heat.get_mut(at) else {
            return false;
        };
        heat.reached = heat.reached.saturating_add(1);
        let reached = heat.reached;
        if reached < self.translate_after {
            self.cold_block = Some(at);
            return true;
        }
        if self.compile_thread.is_none() || self.checker.is_some() {
            self.heat.remove(key);
            return false;
        }
        // Until its code is ready, the block stays cold.
        if reached > self.translate_after {
            if let Some(urgency) = &heat.urgency {
                // Waiting for the compile thread: what it costs makes the job more urgent.
                // Only this thread writes it, so a plain load and store add without the
                // locked instruction (the compile thread only reads it).
                let waited = urgency.load(Ordering::Relaxed);
                urgency.store(waited + u64::from(heat.insns), Ordering::Relaxed);
            }
            self.cold_block = Some(at);
            return true;
        }
        let urgency = self.submit(key, cpu, mem);
        // Submitting changes the table (decoding the region; a block it cannot translate
        // forgets its heat), so the entry is looked up again.
        let at = self.heat.entry(key, || cold_block(cpu, mem, max_insns));
        if let Some(heat) = self.heat.get_mut(at) {
            heat.urgency = urgency;
        }
        self.cold_block = Some(at);
        true
    }

    /// Hands the block `key` (at CS:RIP) to the compile thread and returns the job's
    /// urgency, for the engine to raise while the block waits; when it cannot be
    /// translated, forgets its heat (as a synchronous translation would).
    fn submit(&mut self, key: &Key, cpu: &CpuState, mem: &mut dyn Memory) -> Option<Urgency> {
        let started = std::time::Instant::now();
        let prepared = self.prepare(cpu, mem, key.mode, key.phys);
        self.stats.translate_us += started.elapsed().as_micros() as u64;
        let Some((prepared, translation)) = prepared else {
            self.heat.remove(key);
            return None;
        };
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let urgency = Urgency::default();
        let queued = self
            .compile_thread
            .as_ref()
            .is_some_and(|thread| thread.submit(ticket, prepared, urgency.clone()));
        if queued {
            self.in_flight.insert(ticket, translation);
            Some(urgency)
        } else {
            self.compile_thread = None;
            self.heat.remove(key);
            None
        }
    }

    /// Waits for the compile thread to finish every block submitted so far and installs
    /// them (tests use it to make the switch to compiled code happen within a slice).
    pub fn wait_for_compiles(&mut self) {
        while !self.in_flight.is_empty() {
            match self.compile_thread.as_ref().and_then(|t| t.take()) {
                Some(finished) => self.install_finished(finished),
                None => self.in_flight.clear(),
            }
        }
    }

    /// Installs the blocks the compile thread has finished.
    fn install_compiled(&mut self) {
        while let Some(finished) = self.compile_thread.as_ref().and_then(|t| t.try_take()) {
            self.install_finished(finished);
        }
    }

    /// Installs a block the compile thread finished, unless its page was written or the
    /// cache flushed since it was submitted.
    fn install_finished(&mut self, (ticket, result, took): crate::compiler::Finished) {
        self.stats.background_us += took;
        let Some(translation) = self.in_flight.remove(&ticket) else {
            return;
        };
        let key = translation.key;
        self.heat.remove(&key);
        if self.cache.get(&key).is_some() {
            return;
        }
        let started = std::time::Instant::now();
        let block = result.ok().and_then(|c| self.install(c, translation));
        self.stats.translate_us += started.elapsed().as_micros() as u64;
        if let Some(block) = block {
            self.cache.insert(key, block);
        }
    }

    /// Runs the cold block at `at` (at CS:RIP) in the interpreter: its decoded
    /// instructions in one go when it has them and fits in the budget, else one step (and
    /// the rest of the block stepped before the next lookup). A block that ends quietly
    /// goes on to its successor when that is a cold block too (see
    /// [`Jit::next_cold`]), up to [`COLD_CHAIN`] blocks, as chained translated blocks do.
    fn run_cold(
        &mut self,
        at: HeatIndex,
        cpu: &mut CpuState,
        mem: &mut dyn Memory,
        platform: &mut dyn Platform,
        until: u64,
    ) -> Option<RunExit> {
        let mut at = at;
        let mut chained = 0;
        // Only the first block can miss its decoded instructions or the budget: `next_cold`
        // checks both for the others.
        while let Some(heat) = self.heat.get(at) {
            let insns = match &heat.decoded {
                Some(insns) if cpu.icount + insns.len() as u64 <= until => insns,
                _ => {
                    self.cold_left = heat.insns - 1;
                    break;
                }
            };
            let quiet = heat.ends_quietly;
            let (ran, exit, completed) = run_decoded(insns, &heat.steps, cpu, mem, platform);
            self.stats.stepped += ran;
            self.stats.cold_runs += 1;
            let quiet = quiet && completed && exit.is_none() && self.checker.is_none();
            if !quiet || chained == COLD_CHAIN {
                self.quiet_exit = quiet;
                return exit;
            }
            match self.next_cold(at, cpu, mem, until) {
                Some(next) => at = next,
                None => {
                    self.quiet_exit = true;
                    return None;
                }
            }
            chained += 1;
            self.stats.cold_chained += 1;
        }
        self.stats.stepped += 1;
        step_one(cpu, mem, platform, &mut self.decode_cache)
    }

    /// The cold block at CS:RIP when the block at `at` just ended there quietly, found as
    /// the dispatcher would find it (nothing in a quiet block changes the mode, paging or
    /// interrupt state, so the dispatcher's checks between the two would find nothing): in
    /// the heat table's front, below the threshold (the dispatcher submits blocks that
    /// reach it), decoded and within the budget. Counts the reach.
    fn next_cold(
        &mut self,
        at: HeatIndex,
        cpu: &CpuState,
        mem: &mut dyn Memory,
        until: u64,
    ) -> Option<HeatIndex> {
        let mode = self.heat.key_of(at)?.mode;
        let linear = cpu.segment(SegReg::Cs).base.wrapping_add(cpu.rip);
        let key = Key {
            phys: mem.code_address(linear)?,
            rip: cpu.rip,
            mode,
        };
        let next = self.heat.cached(&key)?;
        let translate_after = self.translate_after;
        let heat = self.heat.get_mut(next)?;
        let fits = heat
            .decoded
            .as_ref()
            .is_some_and(|insns| cpu.icount + insns.len() as u64 <= until);
        if !fits || heat.reached.saturating_add(1) >= translate_after {
            return None;
        }
        heat.reached += 1;
        Some(next)
    }

    /// Translates the block at CS:RIP (physical `phys`) on this thread.
    fn translate(
        &mut self,
        cpu: &CpuState,
        mem: &mut dyn Memory,
        mode: Mode,
        phys: u64,
    ) -> Option<Block> {
        let started = std::time::Instant::now();
        let (prepared, translation) = self.prepare(cpu, mem, mode, phys)?;
        let compiled = self.backend.as_mut()?.compile_prepared(prepared).ok()?;
        let block = self.install(compiled, translation);
        self.stats.translate_us += started.elapsed().as_micros() as u64;
        block
    }

    /// Decodes the block (with its region) at CS:RIP, physical `phys`, and declares its
    /// function, with what builds its IR, for a compile on either thread.
    fn prepare(
        &mut self,
        cpu: &CpuState,
        mem: &mut dyn Memory,
        mode: Mode,
        phys: u64,
    ) -> Option<(Prepared, Translation)> {
        let (insns, in_page) = decode_capped(cpu, mem, self.max_block_insns).ok()?;
        // An instruction crossing into the next page is translated (only in 64-bit mode,
        // where RIP is the linear address) as a block of its own that decodes it afresh
        // each time, since the block does not track the second page.
        let crossing_ok = mode.bitness == 64 && insns.len() == 1;
        if !in_page && !crossing_ok {
            return None;
        }
        let crossing = if in_page {
            None
        } else {
            Some(crossing_tail(cpu, mem, &insns[0])?)
        };
        // The backend frees code only all at once: count blocks dropped by code writes too,
        // or a guest that keeps rewriting its code would grow the code memory without end.
        let code_bytes = self.backend.as_ref().map_or(0, |b| b.code_bytes());
        if self.compiled_since_flush >= MAX_BLOCKS || code_bytes > MAX_CODE_BYTES {
            self.flush();
        }
        self.compiled_since_flush += 1;
        let chained = self.checker.is_none() && mode.bitness == 64;
        let key = Key {
            phys,
            rip: cpu.rip,
            mode,
        };
        let region = if chained && in_page && !self.inside_regions.contains(&key) {
            self.region_of(insns, cpu, mem, mode, phys)
        } else {
            crate::region::Region::single(insns)
        };
        self.cool_continuations(&region, phys, mode);
        for block in region.blocks.iter().skip(1) {
            let rip = region.insns[block.start].ip();
            self.inside_regions.insert(Key {
                phys: (phys & !(PAGE_SIZE - 1)) | (rip & (PAGE_SIZE - 1)),
                rip,
                mode,
            });
        }
        let (_, slot_count) = crate::region::slot_bases(&region.insns, &region.blocks);
        let mut slots: Box<[u64]> = vec![0; slot_count].into_boxed_slice();
        let chaining = Chaining {
            slots: if chained {
                slots.as_mut_ptr()
            } else {
                core::ptr::null_mut()
            },
            page: phys & !0xfff,
            jump_cache: uses_jump_cache(mode, self.checker.is_some()),
        };
        let slow = self.slow_paths?;
        let insns: std::sync::Arc<[Instruction]> = region.insns.into();
        let straight = insns.len() < QUICK_BELOW || crate::region::side_exits(&insns) > 0;
        let quick = region.blocks.len() == 1 && straight && !loops_to_itself(&insns);
        let backend = self.backend.as_mut()?;
        let call_conv = backend.call_conv();
        let block_sig = backend.block_signature();
        let blocks = region.blocks;
        let region_blocks = blocks.len();
        let entry_len = blocks[0].len();
        let code_insns = insns.clone();
        let prepared = backend
            .prepare_block(quick, move |b, cpu_ptr| {
                Translator::emit_region(
                    b,
                    call_conv,
                    block_sig,
                    cpu_ptr,
                    mode,
                    chaining,
                    slow,
                    &code_insns,
                    &blocks,
                    crossing,
                )
            })
            .ok()?;
        let key = Key {
            phys,
            rip: cpu.rip,
            mode,
        };
        let translation = Translation {
            key,
            slots,
            insns,
            entry_len,
            region_blocks,
        };
        Some((prepared, translation))
    }

    /// Places a translation's compiled code in executable memory: its block.
    fn install(&mut self, compiled: Compiled, translation: Translation) -> Option<Block> {
        let Translation {
            key,
            slots,
            insns,
            entry_len,
            region_blocks,
        } = translation;
        let label = || {
            format!(
                "guest_{:x}_phys_{:x}_{}insns_{region_blocks}blocks",
                key.rip,
                key.phys,
                insns.len()
            )
        };
        let code = self.backend.as_mut()?.install_block(compiled, label).ok()?;
        self.stats.translated += 1;
        self.stats.translated_insns += insns.len() as u64;
        // SAFETY: a pointer to code compiled by this backend, kept alive with the block. It
        // is only ever called through the entry trampoline or a tail call, in the
        // tail-call convention it was compiled for; the type is a handle.
        let code = unsafe { std::mem::transmute::<*const u8, CompiledFn>(code) };
        Some(Block {
            code,
            slots,
            insns,
            entry_len,
        })
    }

    /// The region entered at the block `insns` (at CS:RIP, physical `phys`; see
    /// [`crate::region`]). Only blocks that ran (translated, or reached half as often as it
    /// takes to translate them; any, when translating at once) join: a loop's rare paths
    /// would cost compile time for nothing.
    fn region_of(
        &self,
        insns: Vec<Instruction>,
        cpu: &CpuState,
        mem: &mut dyn Memory,
        mode: Mode,
        phys: u64,
    ) -> crate::region::Region {
        use crate::region::Join;
        let after = self.translate_after;
        // A cap on blocks set below the default (one instruction per block in tests)
        // caps the blocks grown through Jccs too.
        let max_trace = if self.max_block_insns < crate::block::MAX_BLOCK_INSNS {
            self.max_block_insns
        } else {
            crate::region::MAX_TRACE_INSNS
        };
        crate::region::form(insns, max_trace, |rip, join| {
            let key = Key {
                phys: (phys & !(PAGE_SIZE - 1)) | (rip & (PAGE_SIZE - 1)),
                rip,
                mode,
            };
            // A way of a Jcc joins only if nearly every pass through the block (reaching
            // it `after` times) went on to it: the compile thread's time grows with every
            // instruction added.
            let warm_after = match join {
                Join::Branch => after / 2,
                Join::FallThrough if after > 1 => after - after / 8,
                Join::FallThrough => 0,
            };
            let heat = self.heat.find(&key);
            let cold = heat.is_none_or(|h| h.reached < warm_after);
            if warm_after > 0 && cold && self.cache.get(&key).is_none() {
                return None;
            }
            if let Some(decoded) = heat.and_then(|h| h.decoded.as_ref()) {
                return Some(decoded.to_vec());
            }
            let mut at = cpu.clone();
            at.rip = rip;
            match decode_capped(&at, mem, self.max_block_insns) {
                Ok((insns, true)) => Some(insns),
                _ => None,
            }
        })
    }

    /// Starts counting again the reaches of the blocks `region`'s blocks went on to
    /// through their side exits' Jccs: they run inside the region now, and had reached
    /// nearly as often as the block that takes them in (see [`Jit::region_of`]), so while
    /// that compiles they would become hot and be translated again on their own, unless
    /// reached from elsewhere.
    fn cool_continuations(&mut self, region: &crate::region::Region, phys: u64, mode: Mode) {
        for range in &region.blocks {
            for rip in crate::region::continuations(&region.insns[range.clone()]) {
                let key = Key {
                    phys: (phys & !(PAGE_SIZE - 1)) | (rip & (PAGE_SIZE - 1)),
                    rip,
                    mode,
                };
                // (One already submitted stays so: its count says it is in flight.)
                if let Some(heat) = self.heat.find_mut(&key).filter(|h| h.urgency.is_none()) {
                    heat.reached = 0;
                }
            }
        }
    }

    /// Drops the blocks, heat entries, queued compiles and decoded instructions that the
    /// code writes since last time touched (see [`crate::cache`]), and the dropped blocks'
    /// jump-cache entries; keeps the pages of what remains tracked.
    fn drop_written_code(&mut self, mem: &mut dyn Memory) {
        for mut written in mem.take_written_code() {
            let page = written.page;
            let writes = self.written_pages.entry(page).or_insert(0);
            *writes += 1;
            if *writes > PARTIAL_WRITES {
                // Mostly data by now: everything goes, and writes stop being reported
                // until code is found there again.
                written.start = page;
                written.end = page + PAGE_SIZE;
            }
            self.in_flight
                .retain(|_, t| !written_over(&written, &t.key, &t.insns));
            for (key, code) in self.cache.invalidate_written(&written) {
                self.jump_cache.forget(key.mode.tlb_mode, key.rip, code);
            }
            let heat_left = self.heat.drop_written(&written);
            if !self.inside_regions.is_empty() {
                self.inside_regions.retain(|key| key.page() != page);
            }
            let waiting = self.in_flight.values().any(|t| t.key.page() == page);
            if heat_left || waiting || self.cache.has_page(page) {
                // Code decoded from the rest of the page stays: so must the tracking.
                mem.track_code_page(page);
                self.decode_cache.invalidate_written(&written);
            } else {
                self.decode_cache.invalidate_page(page);
            }
        }
    }

    /// Records a block the dispatcher is about to enter in the jump cache, so exits of
    /// other blocks that reach its RIP go to it directly.
    fn remember_jump_target(&mut self, key: &Key, code: CompiledFn, mem: &mut dyn Memory) {
        if !uses_jump_cache(key.mode, self.checker.is_some()) {
            return;
        }
        if let Some(tlb) = mem.fast_tlb() {
            self.jump_cache.fill(key.mode.tlb_mode, key.rip, tlb, code);
        }
    }

    /// Drops every block and frees their code.
    pub fn flush(&mut self) {
        self.compiled_since_flush = 0;
        // Their code would belong to the backend about to go.
        self.in_flight.clear();
        self.cache = BlockCache::new();
        self.jump_cache.clear();
        self.heat.clear();
        self.inside_regions.clear();
        self.written_pages.clear();
        self.pending_link = None;
        self.entry = None;
        self.slow_paths = None;
        let mut old = self.backend.take();
        self.backend = Backend::new().ok();
        if let (Some(new), Some(old)) = (self.backend.as_mut(), old.as_mut()) {
            new.keep_perf_map_of(old);
        }
        if let Some(old) = old {
            // SAFETY: every block compiled by `old` was just dropped with the cache, and no
            // block is running (the dispatcher calls this between blocks).
            unsafe { old.free() };
        }
        if let Some(backend) = self.backend.as_mut() {
            self.entry = backend.compile_entry().ok();
            self.slow_paths = backend.compile_slow_paths().ok();
        }
        self.stats.flushes += 1;
    }

    /// Runs one block and finishes its exit as the interpreter's loop would.
    fn run_block(
        &mut self,
        key: &Key,
        code: CompiledFn,
        cpu: &mut CpuState,
        mem: &mut dyn Memory,
        platform: &mut dyn Platform,
        until: u64,
    ) -> Option<RunExit> {
        let entry = self.entry?;
        let (code, ctx_exception, ctx_outcome) = match self.checker.as_mut() {
            Some(checker) => checker.run(entry, self.cache.get(key)?, cpu, mem, platform)?,
            None => {
                let jump_cache = self.jump_cache.as_ptr();
                let (code, exception, outcome, link) =
                    execute(entry, code, jump_cache, cpu, mem, platform, until);
                if let (exit::NORMAL, Some((slot, page, rip))) = (code, link) {
                    self.pending_link = Some((slot, page, rip, self.cache.generation));
                    self.quiet_exit = true;
                }
                (code, exception, outcome)
            }
        };
        match code {
            exit::FAULT => raise(cpu, mem, ctx_exception?),
            exit::OUTCOME => finish_outcome(cpu, ctx_outcome),
            exit::INTERPRET => {
                self.stats.stepped += 1;
                step_one(cpu, mem, platform, &mut self.decode_cache)
            }
            _ => None,
        }
    }
}

impl Drop for Jit {
    /// Frees the code memory (cranelift-jit would leak it, and a process that makes many
    /// engines, like the test suites, would keep a 1 GiB reservation for each).
    fn drop(&mut self) {
        if let Some(backend) = self.backend.take() {
            // SAFETY: the engine is going away with every block, trampoline and jump-cache
            // entry it compiled, and no block runs while `drop` has the engine.
            unsafe { backend.free() };
        }
    }
}

/// What a run of translated code left: exit code, exception, outcome, and the direct exit
/// it left through unlinked (slot, page, target RIP).
pub(crate) type Executed = (
    u64,
    Option<softvisor_cpu::Exception>,
    softvisor_cpu::StepOutcome,
    Option<(*mut u64, u64, u64)>,
);

/// Runs a block's code (and whatever it chains to) through the entry trampoline, with
/// `until` as the instruction budget and the jump cache `jump_cache` (null only for code
/// translated without jump-cache exits).
pub(crate) fn execute(
    entry: EntryFn,
    code: CompiledFn,
    jump_cache: *const JumpEntry,
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    platform: &mut dyn Platform,
    until: u64,
) -> Executed {
    let tlb = mem.fast_tlb().map_or(core::ptr::null(), |tlb| {
        tlb.entries.as_ptr().cast::<softvisor_mmu::tlb::TlbEntry>()
    });
    let mut ctx = JitContext::new(cpu, mem, platform);
    let cpu_ptr = ctx.cpu;
    let ctx_ptr: *mut JitContext<'_> = &mut ctx;
    // SAFETY: `cpu_ptr` is the caller's `&mut CpuState`, which nothing else uses until the
    // run ends.
    crate::context::enter(unsafe { &mut *cpu_ptr }, tlb, until, jump_cache, ctx_ptr);
    // SAFETY: `entry` and `code` come from this engine's live backend (the code with its
    // block); `cpu_ptr` and `ctx_ptr` are valid and not otherwise used while it runs.
    let result = unsafe { entry(cpu_ptr, ctx_ptr, code as *const u8) };
    crate::context::leave(cpu);
    let link = (!ctx.link.is_null()).then_some((ctx.link, ctx.link_page, ctx.link_rip));
    (result, ctx.exception, ctx.outcome, link)
}

/// Whether the block's last instruction may branch back to its first: a loop, whose body
/// is worth Cranelift's optimizer however short it is.
fn loops_to_itself(insns: &[Instruction]) -> bool {
    use iced_x86::FlowControl;
    match (insns.first(), insns.last()) {
        (Some(first), Some(last)) => {
            matches!(
                last.flow_control(),
                FlowControl::ConditionalBranch | FlowControl::UnconditionalBranch
            ) && last.near_branch_target() == first.ip()
        }
        _ => false,
    }
}

/// The block at CS:RIP cut to `max_insns` instructions, and whether all of it lies in the
/// page it starts in.
fn decode_capped(
    cpu: &CpuState,
    mem: &mut dyn Memory,
    max_insns: usize,
) -> Result<(Vec<Instruction>, bool), softvisor_cpu::Exception> {
    let mut insns = decode_block(cpu, mem)?.insns;
    insns.truncate(max_insns);
    let linear = cpu.segment(SegReg::Cs).base.wrapping_add(cpu.rip);
    let page_left = PAGE_SIZE - (linear & (PAGE_SIZE - 1));
    // The straight part from CS:RIP (the code a followed JMP goes on to is in the page).
    let straight = insns
        .windows(2)
        .position(|pair| pair[1].ip() != pair[0].next_ip())
        .map_or(insns.len(), |at| at + 1);
    let bytes: u64 = insns[..straight].iter().map(|i| i.len() as u64).sum();
    Ok((insns, bytes <= page_left))
}

/// The bytes `insn`, at CS:RIP in 64-bit code and crossing into the next page, has on that
/// page (`None` if they cannot be fetched now).
fn crossing_tail(cpu: &CpuState, mem: &mut dyn Memory, insn: &Instruction) -> Option<CrossingTail> {
    let linear = cpu.segment(SegReg::Cs).base.wrapping_add(cpu.rip);
    let page = (linear | (PAGE_SIZE - 1)).wrapping_add(1);
    let len = linear.wrapping_add(insn.len() as u64).wrapping_sub(page) as usize;
    let mut bytes = [0u8; 16];
    if !(1..=MAX_INSN_LEN).contains(&len) || mem.fetch(page, &mut bytes[..len]).ok()? < len {
        return None;
    }
    Some(CrossingTail {
        rip: cpu.rip,
        page,
        bytes,
        len,
    })
}

/// The heat entry of a block first reached at CS:RIP.
fn cold_block(cpu: &CpuState, mem: &mut dyn Memory, max_insns: usize) -> Heat {
    let (insns, decoded) = match decode_capped(cpu, mem, max_insns) {
        Ok((insns, in_page)) => (
            insns.len() as u32,
            in_page.then(|| insns.into_boxed_slice()),
        ),
        Err(_) => (1, None),
    };
    let ends_quietly = decoded
        .as_ref()
        .and_then(|insns| insns.last())
        .is_some_and(crate::block::ends_quietly);
    let steps = decoded
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(ColdStep::of)
        .collect();
    Heat {
        reached: 0,
        insns,
        decoded,
        steps,
        ends_quietly,
        urgency: None,
    }
}

/// Interprets a cold block's decoded instructions from CS:RIP, stopping where its
/// translation would leave: after an instruction that touched MMIO or wrote code, faulted
/// or did not simply continue, or when RIP is not the next instruction's (a REP string
/// instruction resuming itself). Between instructions nothing can make an interrupt
/// deliverable (blocks end at every instruction that can), so no check is needed there.
/// Returns the instructions run, the run's exit, and whether every instruction ran and
/// simply continued. CS:RIP is the block's start (it was looked up by it).
fn run_decoded(
    insns: &[Instruction],
    steps: &[ColdStep],
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    platform: &mut dyn Platform,
) -> (u64, Option<RunExit>, bool) {
    let mut ran = 0;
    for (at, step) in steps.iter().enumerate() {
        // The previous instruction's end (the first is where the block was found).
        if at > 0 && cpu.rip != steps[at - 1].next_ip {
            return (ran, None, false);
        }
        ran += 1;
        match step.form.run(cpu, mem, step.next_ip) {
            Ran::Registers => continue,
            Ran::Memory if mem.take_side_exit() => return (ran, None, false),
            Ran::Memory => continue,
            Ran::General => {}
        }
        match softvisor_cpu::interp::execute(cpu, mem, platform, &insns[at]) {
            Ok(StepOutcome::Continue) if mem.take_side_exit() => return (ran, None, false),
            Ok(StepOutcome::Continue) => {}
            Ok(outcome) => return (ran, finish_outcome(cpu, outcome), false),
            Err(exception) => return (ran, raise(cpu, mem, exception), false),
        }
    }
    (ran, None, true)
}

/// The mode bits a block is translated for.
fn mode_of(cpu: &CpuState, has_tlb: bool) -> Mode {
    let bitness = cpu.bitness();
    let cpl = cpu.cpl();
    let alignment_checks = cpu.cr0 & (1 << 18) != 0 && cpu.flags.bits & AC != 0 && cpl == 3;
    Mode {
        bitness,
        tlb_mode: softvisor_mmu::tlb::tlb_set(&softvisor_cpu::system::paging_context(cpu)),
        inline_memory: bitness == 64 && !alignment_checks && has_tlb,
    }
}

/// Whether blocks of `mode` look their other exits up in the jump cache, and are recorded
/// in it: 64-bit code (CS base 0) with the TLB inline, outside the lockstep check (which
/// runs one block at a time).
fn uses_jump_cache(mode: Mode, checking: bool) -> bool {
    !checking && mode.bitness == 64 && mode.inline_memory
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process's virtual size in KiB (Linux), if readable.
    fn virtual_kib() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    #[test]
    fn a_block_inside_a_translated_region_is_translated_on_its_own() {
        use softvisor_mmu::{bus::Bus, GuestRam, SystemMemory};
        // 0x1000: dec ecx; jnz 0x1008 | 0x1004: hlt | 0x1008: inc eax; jnz 0x1000 (a
        // JNZ that is always taken: a JMP there would be followed into the head's code;
        // the head goes on through its JNZ to the HLT).
        let code = [
            0xff, 0xc9, 0x75, 0x04, // dec ecx; jnz +4
            0xf4, 0x90, 0x90, 0x90, // hlt; nop x3
            0xff, 0xc0, 0x75, 0xf4, // inc eax; jnz 0x1000
        ];
        let mut ram = GuestRam::new(0x10000).unwrap();
        ram.write_bytes(0x1000, &code).unwrap();
        let mut mem = SystemMemory::new(ram, Bus::new());
        let mut cpu = CpuState::new_long_mode();
        cpu.gpr[1] = 100;
        let mut jit = Jit::new().unwrap().with_translate_after(1);
        let mut platform = softvisor_cpu::NoPlatform;
        let insns_at = |jit: &Jit, cpu: &CpuState, rip: u64| {
            let mut at = cpu.clone();
            at.rip = rip;
            let key = Key {
                phys: rip,
                rip,
                mode: mode_of(&at, jit.has_tlb),
            };
            jit.cache.get(&key).map(|block| block.insns.len())
        };
        // Entered at the loop's head: the region holds both blocks.
        cpu.rip = 0x1000;
        jit.step(&mut cpu, &mut mem, &mut platform).unwrap();
        assert_eq!(insns_at(&jit, &cpu, 0x1000), Some(5));
        // Entered in the middle (as after an interrupt there): that block alone.
        cpu.rip = 0x1008;
        jit.step(&mut cpu, &mut mem, &mut platform).unwrap();
        assert_eq!(insns_at(&jit, &cpu, 0x1008), Some(2));
        assert_eq!((cpu.rip, cpu.gpr[0]), (0x1000, 1));
    }

    /// Memory with `first` at 0x1000 and `add eax, 2; hlt` at 0x1010, a long-mode CPU and
    /// an engine that translates at once.
    fn two_parts(first: &[u8]) -> (softvisor_mmu::SystemMemory, CpuState, Jit) {
        use softvisor_mmu::{bus::Bus, GuestRam, SystemMemory};
        let mut ram = GuestRam::new(0x10000).unwrap();
        ram.write_bytes(0x1000, first).unwrap();
        ram.write_bytes(0x1010, &[0x83, 0xc0, 0x02, 0xf4]).unwrap();
        let mem = SystemMemory::new(ram, Bus::new());
        let jit = Jit::new().unwrap().with_translate_after(1);
        (mem, CpuState::new_long_mode(), jit)
    }

    /// Runs from 0x1000 to the HLT; returns EAX.
    fn run_to_halt(
        jit: &mut Jit,
        cpu: &mut CpuState,
        mem: &mut softvisor_mmu::SystemMemory,
    ) -> u64 {
        cpu.rip = 0x1000;
        cpu.halted = false;
        let exit = jit.run(cpu, mem, &mut softvisor_cpu::NoPlatform, cpu.icount + 100);
        assert!(matches!(exit, RunExit::Halted), "{exit:?}");
        cpu.gpr[0]
    }

    #[test]
    fn a_code_write_drops_only_the_blocks_it_touches_and_the_links_to_them() {
        // 0x1000: mov eax, 1; test eax, eax; jnz 0x1010; hlt | 0x1010: add eax, 2; hlt.
        // Data at 0x1800. (A JNZ: a JMP would be followed, making one block of both; the
        // first block goes on through it to its HLT.)
        let (mut mem, mut cpu, mut jit) =
            two_parts(&[0xb8, 0x01, 0x00, 0x00, 0x00, 0x85, 0xc0, 0x75, 0x07, 0xf4]);
        let cached = |jit: &Jit, cpu: &CpuState, rip: u64| {
            let mode = mode_of(cpu, jit.has_tlb);
            let key = Key {
                phys: rip,
                rip,
                mode,
            };
            jit.cache.get(&key).map(|block| block.code as usize)
        };
        // Translated, then the first block jumps straight to the second through its link.
        assert_eq!(run_to_halt(&mut jit, &mut cpu, &mut mem), 3);
        assert_eq!(run_to_halt(&mut jit, &mut cpu, &mut mem), 3);
        let first = cached(&jit, &cpu, 0x1000).expect("translated");
        let second = cached(&jit, &cpu, 0x1010).expect("translated");
        let links = |jit: &Jit, cpu: &CpuState| {
            let mode = mode_of(cpu, jit.has_tlb);
            let key = Key {
                phys: 0x1000,
                rip: 0x1000,
                mode,
            };
            jit.cache.get(&key).unwrap().slots.to_vec()
        };
        assert!(links(&jit, &cpu).contains(&(second as u64)), "linked");
        // Data beside the code: both blocks stay.
        mem.write_u8(0x1800, 5).unwrap();
        jit.drop_written_code(&mut mem);
        assert_eq!(cached(&jit, &cpu, 0x1000), Some(first));
        assert_eq!(cached(&jit, &cpu, 0x1010), Some(second));
        // The page is still tracked: patching the second block's immediate drops it alone,
        // and the first no longer jumps to its old code.
        mem.write_u8(0x1012, 5).unwrap();
        jit.drop_written_code(&mut mem);
        assert_eq!(cached(&jit, &cpu, 0x1000), Some(first));
        assert_eq!(cached(&jit, &cpu, 0x1010), None);
        assert!(!links(&jit, &cpu).contains(&(second as u64)), "link cut");
        assert_eq!(run_to_halt(&mut jit, &mut cpu, &mut mem), 6);
        assert_eq!(run_to_halt(&mut jit, &mut cpu, &mut mem), 6);
    }

    #[test]
    fn a_block_goes_on_through_a_jump_and_a_write_to_its_target_drops_it() {
        // 0x1000: mov eax, 1; jmp 0x1010 | 0x1010: add eax, 2; hlt.
        let (mut mem, mut cpu, mut jit) = two_parts(&[0xb8, 0x01, 0x00, 0x00, 0x00, 0xeb, 0x09]);
        let cached_insns = |jit: &Jit, cpu: &CpuState| {
            let key = Key {
                phys: 0x1000,
                rip: 0x1000,
                mode: mode_of(cpu, jit.has_tlb),
            };
            jit.cache.get(&key).map(|block| block.insns.len())
        };
        assert_eq!(run_to_halt(&mut jit, &mut cpu, &mut mem), 3);
        assert_eq!(cpu.icount, 4);
        // MOV, JMP, ADD and HLT in one block.
        assert_eq!(cached_insns(&jit, &cpu), Some(4));
        // Patching the ADD's immediate, past the JMP, drops the block.
        mem.write_u8(0x1012, 5).unwrap();
        jit.drop_written_code(&mut mem);
        assert_eq!(cached_insns(&jit, &cpu), None);
        assert_eq!(run_to_halt(&mut jit, &mut cpu, &mut mem), 6);
        assert_eq!(cpu.icount, 8);
    }

    #[test]
    fn dropping_an_engine_frees_its_code_memory() {
        let Some(before) = virtual_kib() else {
            return;
        };
        for _ in 0..32 {
            drop(Jit::new().unwrap());
        }
        let grown_gib = virtual_kib().unwrap().saturating_sub(before) >> 20;
        // Each engine reserves a 1 GiB code arena; 32 leaked ones would be 32 GiB.
        assert!(grown_gib < 4, "virtual size grew by {grown_gib} GiB");
    }
}
