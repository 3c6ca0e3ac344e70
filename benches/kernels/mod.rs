//! The small guest kernels the throughput benches run (shared by `interp` and `jit`): a
//! byte checksum loop, a string-instruction loop and a call-heavy loop, each ending in HLT
//! with a check of its result.

use softvisor_cpu::CpuState;
use softvisor_mmu::GuestRam;

pub const CODE: u64 = 0x1000;

/// A guest kernel: its bytes and a check of the final state.
pub struct Kernel {
    pub name: &'static str,
    pub bytes: &'static [u8],
    pub check: fn(&CpuState, &GuestRam) -> bool,
}

impl Kernel {
    /// Panics unless the run left the kernel's expected result: a broken kernel (or
    /// engine) is never timed.
    pub fn assert_result(&self, cpu: &CpuState, ram: &GuestRam) {
        assert!(
            (self.check)(cpu, ram),
            "kernel {} computed a wrong result",
            self.name
        );
    }
}

pub const KERNELS: &[Kernel] = &[
    Kernel {
        name: "checksum",
        // rsi=0x2000, ecx=4096, eax=0; loop: movzx edx,[rsi]; add rax,rdx; inc rsi; dec ecx; jnz; hlt
        bytes: &[
            0x48, 0xc7, 0xc6, 0x00, 0x20, 0x00, 0x00, 0xb9, 0x00, 0x10, 0x00, 0x00, 0x31, 0xc0,
            0x0f, 0xb6, 0x16, 0x48, 0x01, 0xd0, 0x48, 0xff, 0xc6, 0xff, 0xc9, 0x75, 0xf3, 0xf4,
        ],
        check: |cpu, _| cpu.gpr[0] == (0..4096u64).map(|i| i % 251).sum::<u64>(),
    },
    Kernel {
        name: "string",
        // 4096 x (lodsb; xor al,0x55; stosb; dec ecx; jnz), then rep movsb of 4 KiB; hlt
        bytes: &[
            0x48, 0xc7, 0xc6, 0x00, 0x20, 0x00, 0x00, 0x48, 0xc7, 0xc7, 0x00, 0x40, 0x00, 0x00,
            0xb9, 0x00, 0x10, 0x00, 0x00, 0xac, 0x34, 0x55, 0xaa, 0xff, 0xc9, 0x75, 0xf8, 0x48,
            0xc7, 0xc6, 0x00, 0x40, 0x00, 0x00, 0x48, 0xc7, 0xc7, 0x00, 0x60, 0x00, 0x00, 0xb9,
            0x00, 0x10, 0x00, 0x00, 0xf3, 0xa4, 0xf4,
        ],
        check: |_, ram| {
            let mut out = [0u8; 4096];
            ram.read_bytes(0x6000, &mut out).unwrap();
            out.iter()
                .enumerate()
                .all(|(i, &b)| b == ((i % 251) as u8) ^ 0x55)
        },
    },
    Kernel {
        name: "calls",
        // ecx=1024; loop: call f; dec ecx; jnz; hlt; f: push rbx; mov rbx,rcx; add rax,rbx; pop rbx; ret
        bytes: &[
            0xb9, 0x00, 0x04, 0x00, 0x00, 0xe8, 0x05, 0x00, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xf7,
            0xf4, 0x53, 0x48, 0x89, 0xcb, 0x48, 0x01, 0xd8, 0x5b, 0xc3,
        ],
        check: |cpu, _| cpu.gpr[0] == (1..=1024u64).sum::<u64>(),
    },
];

/// RAM with the kernel at CODE and a 4 KiB data pattern at 0x2000.
pub fn ram(kernel: &Kernel) -> GuestRam {
    let mut ram = GuestRam::new(0x10000).unwrap();
    ram.write_bytes(CODE, kernel.bytes).unwrap();
    let pattern: Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
    ram.write_bytes(0x2000, &pattern).unwrap();
    ram
}
