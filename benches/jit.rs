//! JIT throughput on the same small guest kernels as the interpreter bench (guest
//! instructions per second, blocks already translated), and the cost of a TLB hit: the
//! Rust lookup the interpreter's accesses go through, and a kernel of loads that all take
//! the JIT's inline fast path.
//!
//! Run: `cargo bench --bench jit`. Criterion reports "elements/s" = guest instructions/s
//! (or lookups/s).

mod kernels;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kernels::{Kernel, CODE, KERNELS};
use softvisor_cpu::vcpu::RunExit;
use softvisor_cpu::{CpuState, NoPlatform};
use softvisor_jit::Jit;
use softvisor_mmu::bus::Bus;
use softvisor_mmu::tlb::{Tlb, TlbFill};
use softvisor_mmu::{AccessKind, SystemMemory};
use std::hint::black_box;

/// 4096 x (mov rdx, [rsi]; add rax, rdx; add rsi, 8; and esi, 0x2ff8 | 0x2000 ... ) as a
/// load-heavy loop: rsi walks a 4 KiB page at 0x2000, ecx counts down; hlt.
const LOADS: Kernel = Kernel {
    name: "loads",
    // mov esi, 0x2000 ; mov ecx, 4096 ; xor eax, eax
    // loop: mov rdx, [rsi] ; add rax, rdx ; add esi, 8 ; and esi, 0x2ff8 ; dec ecx ; jnz loop
    // hlt
    bytes: &[
        0xbe, 0x00, 0x20, 0x00, 0x00, 0xb9, 0x00, 0x10, 0x00, 0x00, 0x31, 0xc0, 0x48, 0x8b, 0x16,
        0x48, 0x01, 0xd0, 0x83, 0xc6, 0x08, 0x81, 0xe6, 0xf8, 0x2f, 0x00, 0x00, 0xff, 0xc9, 0x75,
        0xed, 0xf4,
    ],
    check: |cpu, ram| {
        let mut page = [0u8; 4096];
        ram.read_bytes(0x2000, &mut page).unwrap();
        let sum: u64 = page
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .fold(0u64, |a, v| a.wrapping_add(v));
        cpu.gpr[0] == sum.wrapping_mul(8)
    },
};

/// Runs the kernel to HLT in the JIT and returns the CPU.
fn run(jit: &mut Jit, mem: &mut SystemMemory) -> CpuState {
    let mut cpu = CpuState::new_long_mode();
    cpu.rip = CODE;
    cpu.gpr[4] = 0xf000;
    match jit.run(&mut cpu, mem, &mut NoPlatform, u64::MAX) {
        RunExit::Halted => cpu,
        other => panic!("kernel ended with {other:?} at {:#x}", cpu.rip),
    }
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("jit");
    for kernel in KERNELS.iter().chain([&LOADS]) {
        let mut mem = SystemMemory::new(kernels::ram(kernel), Bus::new());
        let mut jit = Jit::new()
            .expect("a JIT for this host")
            .with_translate_after(1);
        let cpu = run(&mut jit, &mut mem);
        kernel.assert_result(&cpu, &mem.ram);
        group.throughput(Throughput::Elements(cpu.icount));
        group.bench_function(kernel.name, |b| {
            b.iter(|| black_box(run(&mut jit, &mut mem).icount));
        });
    }
    group.finish();
}

fn tlb_hit(c: &mut Criterion) {
    let mut group = c.benchmark_group("tlb");
    let mut tlb = Tlb::new();
    for page in 0..64u64 {
        tlb.fill(
            0,
            &TlbFill {
                linear: page << 12,
                phys_page: page << 12,
                host_page: 0x7000_0000_0000 + (page << 12),
                read: true,
                write: true,
                exec: false,
                page_size: 4096,
                global: false,
            },
        );
    }
    group.throughput(Throughput::Elements(1024));
    group.bench_function("lookup", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for i in 0..1024u64 {
                let addr = black_box((i * 4104) & 0x3_ffff);
                acc = acc.wrapping_add(tlb.lookup(0, addr, AccessKind::Read).unwrap_or(0));
            }
            acc
        });
    });
    group.finish();
}

criterion_group!(benches, throughput, tlb_hit);
criterion_main!(benches);
