//! The machine: one vCPU, guest RAM with the APIC windows, the board of devices, and the
//! loop that runs them on the virtual clock.
//!
//! Virtual time in nanoseconds is the retired-instruction count (at a configurable rate,
//! one instruction per nanosecond by default) plus the time skipped while the CPU was halted,
//! so it never depends on the host. The CPU runs in slices that end at
//! the next timer deadline (PIT IRQ 0, RTC IRQ 8, local APIC timer) or after at most
//! [`SLICE_NS`]; timer interrupts, console input and device state changes happen at slice
//! boundaries, at exact instruction counts. When the CPU halts with interrupts enabled, time
//! jumps to the next deadline (and the TSC with it), or with pacing waits for the wall clock.

pub mod board;
pub mod interrupts;

use board::{Board, IoApicWindow, LapicWindow};
use softvisor_cpu::decode_cache::DecodeCache;
use softvisor_cpu::flags::IF;
use softvisor_cpu::state::ns_to_icount;
use softvisor_cpu::vcpu::{self, RunExit};
use softvisor_cpu::{CpuState, SegReg, Segment, TableReg};
use softvisor_devices::ioapic::IOAPIC_DEFAULT_BASE;
use softvisor_devices::lapic::APIC_DEFAULT_BASE;
use softvisor_firmware::BootDescription;
use softvisor_mmu::bus::Bus;
use softvisor_mmu::{GuestRam, SystemMemory};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest the CPU runs between two looks at the devices and the console.
pub const SLICE_NS: u64 = 100_000;
/// The longest a paced, halted machine sleeps before looking at the console again.
const MAX_PACE_SLEEP_NS: u64 = 10_000_000;

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The guest powered the machine off (ACPI S5).
    PowerOff,
    /// The guest wrote `code` to the test-exit port (0xf4).
    TestDevice(u8),
    /// The guest asked for a reset (i8042) or triple-faulted.
    Reset,
    /// The CPU halted with interrupts disabled: nothing can ever wake it.
    Halted,
    /// The instruction limit was reached.
    Limit,
    /// The lockstep check found the engines disagreeing (the report says where).
    Diverged(String),
}

/// What executes guest instructions.
pub enum Engine {
    /// The reference interpreter, with its decoded-instruction cache.
    Interp(DecodeCache),
    /// The Cranelift JIT.
    Jit(Box<softvisor_jit::Jit>),
}

/// A machine ready to run.
pub struct Machine {
    /// The CPU.
    pub cpu: CpuState,
    /// Guest memory.
    pub mem: SystemMemory,
    /// The devices.
    pub board: Board,
    /// Console bytes waiting to enter the UART.
    input: VecDeque<u8>,
    pit_seen_until: u64,
    rtc_seen_until: u64,
    engine: Engine,
    /// When set, halted time is paced to the wall clock from this instant.
    pace_from: Option<Instant>,
}

impl Machine {
    /// A machine with `ram` and `board`, the APIC windows mapped.
    pub fn new(ram: GuestRam, board: Board) -> Self {
        let mut mmio = Bus::new();
        let lapic = Arc::new(Mutex::new(LapicWindow {
            irqs: board.irqs.clone(),
            clock: board.clock.clone(),
        }));
        let ioapic = Arc::new(Mutex::new(IoApicWindow {
            irqs: board.irqs.clone(),
        }));
        mmio.insert(APIC_DEFAULT_BASE, 0x1000, lapic)
            .expect("fixed, disjoint windows");
        mmio.insert(IOAPIC_DEFAULT_BASE, 0x1000, ioapic)
            .expect("fixed, disjoint windows");
        Machine {
            cpu: CpuState::new_long_mode(),
            mem: SystemMemory::new(ram, mmio),
            board,
            input: VecDeque::new(),
            pit_seen_until: 0,
            rtc_seen_until: 0,
            engine: Engine::Interp(DecodeCache::new()),
            pace_from: None,
        }
    }

    /// Runs guest code with `engine` from now on.
    pub fn set_engine(&mut self, engine: Engine) {
        self.engine = engine;
    }

    /// The engine's counters, when it is the JIT.
    pub fn jit_stats(&self) -> Option<(softvisor_jit::Stats, Option<(u64, u64)>)> {
        match &self.engine {
            Engine::Jit(jit) => Some((jit.stats, jit.check_counts())),
            Engine::Interp(_) => None,
        }
    }

    /// Puts the CPU in the state the firmware describes.
    pub fn apply_boot(&mut self, boot: &BootDescription) {
        let cpu = &mut self.cpu;
        cpu.rip = boot.rip;
        cpu.gpr = [0; 16];
        cpu.gpr[0] = boot.rax;
        cpu.gpr[3] = boot.rbx;
        cpu.gpr[6] = boot.rsi;
        cpu.gpr[4] = boot.rsp;
        cpu.cr0 = boot.cr0;
        cpu.cr3 = boot.cr3;
        cpu.cr4 = boot.cr4;
        cpu.efer = boot.efer;
        cpu.set_rflags(0x2);
        cpu.gdtr = TableReg {
            base: boot.gdt.0,
            limit: boot.gdt.1,
        };
        cpu.idtr = TableReg::default();
        let segment = |(selector, desc): (u16, u64)| {
            let attrs = (((desc >> 40) & 0xff) | (((desc >> 52) & 0xf) << 12)) as u16;
            Segment {
                base: 0,
                limit: u32::MAX,
                selector,
                attrs,
            }
        };
        for seg in [SegReg::Ds, SegReg::Es, SegReg::Ss, SegReg::Fs, SegReg::Gs] {
            cpu.seg[seg as usize] = segment(boot.data);
        }
        cpu.seg[SegReg::Cs as usize] = segment(boot.code);
        softvisor_cpu::system::sync_paging(cpu, &mut self.mem);
    }

    /// Paces idle time to the wall clock: a halted guest waits in real time for its next
    /// timer instead of jumping to it (for interactive use; runs stop being repeatable).
    pub fn pace_to_wall_clock(&mut self) {
        self.pace_from = Some(Instant::now());
    }

    /// Where virtual time may jump to while halted: the deadline, or with pacing no further
    /// than the wall clock (after sleeping a little toward the deadline).
    fn idle_target(&self, now: u64, deadline: u64) -> u64 {
        let Some(start) = self.pace_from else {
            return deadline;
        };
        let wall = start.elapsed().as_nanos() as u64;
        if wall < deadline {
            std::thread::sleep(Duration::from_nanos(
                (deadline - wall).min(MAX_PACE_SLEEP_NS),
            ));
        }
        deadline.min(start.elapsed().as_nanos() as u64).max(now)
    }

    /// Queues console input, to be fed to the UART as it has room.
    pub fn queue_input(&mut self, bytes: &[u8]) {
        self.input.extend(bytes);
    }

    /// Moves queued console bytes into the UART while its driver listens and its FIFO has
    /// room (the receiver check reads the UART's state, so it is made once, and only when
    /// there is input).
    fn feed_console(&mut self) {
        if self.input.is_empty() || !self.board.uart.receiver_ready() {
            return;
        }
        while self.board.uart.input_capacity() > 0 {
            let Some(byte) = self.input.pop_front() else {
                break;
            };
            self.board.uart.enqueue_input(&[byte]);
        }
    }

    /// Virtual time now.
    pub fn now(&self) -> u64 {
        self.cpu.instruction_ns() + self.board.idle_ns
    }

    /// Sets the instruction clock's rate (instructions per virtual microsecond).
    pub fn set_clock_rate(&mut self, insns_per_us: u64) {
        self.cpu.insns_per_us = insns_per_us.max(1);
        self.board.insns_per_us = self.cpu.insns_per_us;
    }

    /// Raises the timer interrupts whose time has come.
    fn fire_timers(&mut self, now: u64) {
        if let Some(edge) = self
            .board
            .pit
            .next_irq0_edge(self.pit_seen_until)
            .filter(|&t| t <= now)
        {
            self.pit_seen_until = edge;
            self.board.interrupts().pulse_isa_irq(0);
        }
        if let Some(t) = self
            .board
            .rtc
            .next_irq8(self.rtc_seen_until)
            .filter(|&t| t <= now)
        {
            self.rtc_seen_until = t;
            self.board.interrupts().pulse_isa_irq(8);
        }
        self.board.interrupts().lapic.run_timer(now);
    }

    /// The next timer deadline after `now`, capped at one slice.
    fn next_deadline(&self, now: u64) -> u64 {
        let mut deadline = now + SLICE_NS;
        let candidates = [
            self.board.pit.next_irq0_edge(self.pit_seen_until),
            self.board.rtc.next_irq8(self.rtc_seen_until),
            self.board.interrupts().lapic.next_timer_deadline(),
        ];
        for t in candidates.into_iter().flatten() {
            deadline = deadline.min(t.max(now + 1));
        }
        deadline
    }

    /// Runs until the guest exits, resets, dies or `max_instructions` retire.
    pub fn run(
        &mut self,
        max_instructions: u64,
        mut poll: impl FnMut(&mut Machine) -> bool,
    ) -> Exit {
        loop {
            let now = self.now();
            self.board.clock.store(now, Ordering::Relaxed);
            self.fire_timers(now);
            self.feed_console();
            if let Some(code) = self.board.exit_code {
                return Exit::TestDevice(code);
            }
            if self.board.pm.poweroff_requested() {
                return Exit::PowerOff;
            }
            if self.board.i8042.take_reset_request() {
                return Exit::Reset;
            }
            if self.cpu.icount >= max_instructions {
                return Exit::Limit;
            }
            if !poll(self) {
                return Exit::Limit;
            }
            let deadline = self.next_deadline(now);
            let until = ns_to_icount(deadline - self.board.idle_ns, self.cpu.insns_per_us)
                .max(self.cpu.icount + 1)
                .min(max_instructions);
            let exit = match &mut self.engine {
                Engine::Interp(cache) => {
                    vcpu::run(&mut self.cpu, &mut self.mem, &mut self.board, cache, until)
                }
                Engine::Jit(jit) => {
                    let exit = jit.run(&mut self.cpu, &mut self.mem, &mut self.board, until);
                    if let Some(report) = jit.divergence() {
                        return Exit::Diverged(report.to_owned());
                    }
                    exit
                }
            };
            match exit {
                RunExit::Budget | RunExit::Stopped => {}
                RunExit::Shutdown => return Exit::Reset,
                RunExit::Halted => {
                    if !self.cpu.flags.test(IF) {
                        return Exit::Halted;
                    }
                    // Nothing to do until the next deadline: skip to it.
                    let now = self.now();
                    let skip = self.idle_target(now, deadline).saturating_sub(now);
                    self.board.idle_ns += skip;
                    self.cpu.tsc_offset = self.cpu.tsc_offset.wrapping_add(skip);
                }
            }
        }
    }
}
