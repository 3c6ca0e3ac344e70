//! The run loop of one vCPU in the interpreter: execute instructions, deliver the
//! exceptions they raise (and the single-step trap after an instruction that began with TF), take NMIs and external interrupts at instruction boundaries
//! (respecting IF and the one-instruction STI/MOV SS shadows), wait in HLT, and turn a
//! triple fault into a reset request. It stops at an instruction count, so the machine can
//! run the virtual clock's timers at exact instruction counts.

use crate::decode_cache::DecodeCache;
use crate::flags::{IF, TF};
use crate::interp::StepOutcome;
use crate::system::deliver::{deliver, Event};
use crate::{CpuState, Exception, Platform};
use softvisor_mmu::Memory;

/// Why [`run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunExit {
    /// `icount` reached the requested limit.
    Budget,
    /// The CPU is halted with no interrupt to wake it; time may jump to the next deadline.
    Halted,
    /// Triple fault: the machine must reset.
    Shutdown,
    /// The platform asked to stop after a port access.
    Stopped,
}

/// Runs until `icount` reaches `until`, the CPU halts with nothing to wake it, or a
/// triple fault. Decoded instructions are kept in `cache` between calls.
pub fn run(
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    platform: &mut dyn Platform,
    cache: &mut DecodeCache,
    until: u64,
) -> RunExit {
    while cpu.icount < until {
        if let Some(exit) = take_interrupt(cpu, mem, platform) {
            return exit;
        }
        if cpu.halted {
            return RunExit::Halted;
        }
        if let Some(exit) = step_one(cpu, mem, platform, cache) {
            return exit;
        }
    }
    RunExit::Budget
}

/// Runs the instruction at CS:RIP through the interpreter and finishes it as the run loop
/// does: the single-step trap after it, HLT, or the delivery of the exception it raised.
/// Returns why the loop must stop, if it must.
pub fn step_one(
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    platform: &mut dyn Platform,
    cache: &mut DecodeCache,
) -> Option<RunExit> {
    let single_step = cpu.flags.bits & TF != 0;
    match cache.step(cpu, mem, platform) {
        Ok(StepOutcome::Continue) if single_step => {
            // TF set before the instruction: a single-step trap after it (DR6.BS).
            cpu.dr[6] |= 1 << 14;
            if deliver(cpu, mem, Event::Exception(crate::Exception::Debug)).is_err() {
                return Some(RunExit::Shutdown);
            }
            None
        }
        Ok(outcome) => finish_outcome(cpu, outcome),
        Err(exception) => raise(cpu, mem, exception),
    }
}

/// Applies a non-faulting outcome: HLT halts, shutdown and stop requests end the loop.
pub fn finish_outcome(cpu: &mut CpuState, outcome: StepOutcome) -> Option<RunExit> {
    match outcome {
        StepOutcome::Continue => None,
        StepOutcome::Halt => {
            cpu.halted = true;
            None
        }
        StepOutcome::Shutdown => Some(RunExit::Shutdown),
        StepOutcome::Stop => Some(RunExit::Stopped),
    }
}

/// Delivers the exception an instruction raised (RIP still at that instruction).
pub fn raise(cpu: &mut CpuState, mem: &mut dyn Memory, exception: Exception) -> Option<RunExit> {
    // A faulting instruction still counts toward the clock, so time advances identically
    // however an engine splits work.
    cpu.icount += 1;
    match deliver(cpu, mem, Event::Exception(exception)) {
        Ok(()) => None,
        Err(_) => Some(RunExit::Shutdown),
    }
}

/// Delivers a pending NMI or external interrupt if the CPU can take one now (consuming
/// the one-instruction interrupt shadow).
pub fn take_interrupt(
    cpu: &mut CpuState,
    mem: &mut dyn Memory,
    platform: &mut dyn Platform,
) -> Option<RunExit> {
    if std::mem::take(&mut cpu.interrupt_shadow) {
        return None;
    }
    let vector = if platform.nmi_pending() {
        platform.acknowledge_nmi();
        2
    } else if cpu.flags.test(IF) && platform.interrupt_pending() {
        platform.acknowledge_interrupt()?
    } else {
        return None;
    };
    cpu.halted = false;
    match deliver(cpu, mem, Event::External(vector)) {
        Ok(()) => None,
        Err(_) => Some(RunExit::Shutdown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use softvisor_mmu::{FlatMemory, GuestRam};

    /// [`run`] with an empty decode cache.
    fn run_fresh(
        cpu: &mut CpuState,
        mem: &mut FlatMemory,
        platform: &mut OneInterrupt,
        until: u64,
    ) -> RunExit {
        run(cpu, mem, platform, &mut DecodeCache::new(), until)
    }

    /// A platform with one pending interrupt vector.
    struct OneInterrupt(Option<u8>);

    impl Platform for OneInterrupt {
        fn io_read(&mut self, _port: u16, _size: u8) -> u32 {
            0
        }
        fn io_write(&mut self, _port: u16, _size: u8, _value: u32) {}
        fn interrupt_pending(&mut self) -> bool {
            self.0.is_some()
        }
        fn acknowledge_interrupt(&mut self) -> Option<u8> {
            self.0.take()
        }
    }

    /// Real-mode machine: IVT vector 0x20 -> 0000:0x600 (inc bx; iret), main at 0x500.
    fn machine(main: &[u8]) -> (CpuState, FlatMemory) {
        let mut mem = FlatMemory::new(GuestRam::new(0x10000).unwrap());
        mem.ram
            .write_bytes(0x20 * 4, &[0x00, 0x06, 0x00, 0x00])
            .unwrap();
        mem.ram.write_bytes(0x600, &[0x43, 0xcf]).unwrap();
        mem.ram.write_bytes(0x500, main).unwrap();
        let mut cpu = CpuState::new_real_mode();
        cpu.rip = 0x500;
        cpu.gpr[4] = 0x8000;
        (cpu, mem)
    }

    #[test]
    fn sti_shadow_delays_the_interrupt_by_one_instruction() {
        // sti ; inc ax ; hlt
        let (mut cpu, mut mem) = machine(&[0xfb, 0x40, 0xf4]);
        let mut platform = OneInterrupt(Some(0x20));
        assert_eq!(
            run_fresh(&mut cpu, &mut mem, &mut platform, 2),
            RunExit::Budget
        );
        assert_eq!(cpu.gpr[0] & 0xffff, 1, "INC AX ran before the interrupt");
        assert_eq!(cpu.gpr[3], 0, "interrupt not yet taken");
        run_fresh(&mut cpu, &mut mem, &mut platform, 3);
        assert_eq!(cpu.gpr[3], 1, "handler ran after the shadow");
    }

    #[test]
    fn hlt_waits_and_an_interrupt_wakes_it() {
        // sti ; nop ; hlt ; inc cx ; hlt
        let (mut cpu, mut mem) = machine(&[0xfb, 0x90, 0xf4, 0x41, 0xf4]);
        let mut platform = OneInterrupt(None);
        assert_eq!(
            run_fresh(&mut cpu, &mut mem, &mut platform, 100),
            RunExit::Halted
        );
        platform.0 = Some(0x20);
        assert_eq!(
            run_fresh(&mut cpu, &mut mem, &mut platform, 100),
            RunExit::Halted
        );
        assert_eq!(
            (cpu.gpr[3], cpu.gpr[1]),
            (1, 1),
            "handler ran, then execution resumed after HLT"
        );
    }

    #[test]
    fn cleared_if_masks_interrupts_and_faults_are_delivered() {
        // int3 -> vector 3 -> IVT entry 0 (zeroed): executes from 0000:0000 in the IVT.
        let (mut cpu, mut mem) = machine(&[0xcc]);
        mem.ram
            .write_bytes(3 * 4, &[0x00, 0x06, 0x00, 0x00])
            .unwrap();
        let mut platform = OneInterrupt(Some(0x20));
        run_fresh(&mut cpu, &mut mem, &mut platform, 2);
        assert_eq!(
            cpu.gpr[3], 1,
            "INT3 handler ran; the external interrupt stayed masked"
        );
        assert!(platform.0.is_some());
    }
}
