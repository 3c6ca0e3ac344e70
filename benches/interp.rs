//! Interpreter throughput in guest instructions per second, on the small guest kernels of
//! `kernels/`. Each kernel's result is checked once before timing, so a broken kernel
//! cannot be measured.
//!
//! Run: `cargo bench --bench interp`. Criterion reports "elements/s" = guest instructions/s.

mod kernels;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kernels::{CODE, KERNELS};
use softvisor_cpu::{step, CpuState, StepOutcome};
use softvisor_mmu::FlatMemory;
use std::hint::black_box;

/// Runs the kernel to HLT and returns the CPU.
fn run(mem: &mut FlatMemory) -> CpuState {
    let mut cpu = CpuState::new_long_mode();
    cpu.rip = CODE;
    cpu.gpr[4] = 0xf000;
    loop {
        match step(&mut cpu, mem) {
            Ok(StepOutcome::Halt) => return cpu,
            Ok(StepOutcome::Continue | StepOutcome::Stop) => {}
            Ok(StepOutcome::Shutdown) => panic!("kernel triple-faulted"),
            Err(e) => panic!("kernel faulted: {e:?} at {:#x}", cpu.rip),
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("interp");
    for kernel in KERNELS {
        let mut mem = FlatMemory::new(kernels::ram(kernel));
        let cpu = run(&mut mem);
        kernel.assert_result(&cpu, &mem.ram);
        group.throughput(Throughput::Elements(cpu.icount));
        group.bench_function(kernel.name, |b| {
            b.iter(|| black_box(run(&mut mem).icount));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
