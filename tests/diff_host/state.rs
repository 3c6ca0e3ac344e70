//! The machine state a case starts from and ends in, in the host's own save format
//! (GPRs, RFLAGS and a 512-byte FXSAVE image), plus the scratch memory; and how two
//! results are compared and hashed, ignoring what the ISA leaves undefined.

use crate::layout::SCRATCH_SIZE;

/// Registers, flags, x87/SSE state (FXSAVE64 layout) and scratch memory.
#[derive(Clone, PartialEq, Eq)]
pub struct MachineState {
    /// RAX..R15.
    pub gpr: [u64; 16],
    /// RFLAGS.
    pub rflags: u64,
    /// FXSAVE64 image: FCW @0, FSW @2, abridged FTW @4, MXCSR @24, ST0-7 @32 (16 bytes
    /// each), XMM0-15 @160.
    pub fx: [u8; 512],
    /// The scratch area.
    pub mem: Vec<u8>,
}

/// How the instruction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Fell through (0) or took its branch (1).
    Exit(u8),
    /// Raised exception `vector`.
    Fault(u8),
}

/// A case's result.
#[derive(Clone)]
pub struct Output {
    /// Final state (for a fault: the state at the fault).
    pub state: MachineState,
    /// How it ended.
    pub outcome: Outcome,
}

/// What to ignore when comparing: RFLAGS bits and x87 condition codes the ISA leaves
/// undefined for this instruction.
#[derive(Clone, Copy)]
pub struct Mask {
    /// RFLAGS bits that must match.
    pub rflags: u64,
    /// FSW bits that must match.
    pub fsw: u16,
    /// Whether the x87 registers must match (false for forms with inexact-by-design results).
    pub x87_regs: bool,
}

impl MachineState {
    /// A zeroed state with a zeroed scratch area.
    pub fn new() -> Self {
        MachineState {
            gpr: [0; 16],
            rflags: 0x202,
            fx: [0; 512],
            mem: vec![0; SCRATCH_SIZE],
        }
    }

    /// MXCSR from the FXSAVE image.
    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes(self.fx[24..28].try_into().unwrap())
    }

    /// XMM register `n`.
    pub fn xmm(&self, n: usize) -> u128 {
        u128::from_le_bytes(self.fx[160 + 16 * n..176 + 16 * n].try_into().unwrap())
    }

    /// ST(i) as stored by FXSAVE (10 meaningful bytes).
    pub fn st(&self, i: usize) -> [u8; 10] {
        self.fx[32 + 16 * i..42 + 16 * i].try_into().unwrap()
    }

    /// FCW, FSW and the abridged tag byte.
    pub fn x87_control(&self) -> (u16, u16, u8) {
        let word = |o: usize| u16::from_le_bytes([self.fx[o], self.fx[o + 1]]);
        (word(0), word(2), self.fx[4])
    }
}

impl Default for MachineState {
    fn default() -> Self {
        Self::new()
    }
}

/// Differences between `expected` and `actual` under `mask`, one line each (empty if equal).
pub fn differences(expected: &Output, actual: &Output, mask: Mask) -> Vec<String> {
    let mut out = Vec::new();
    if expected.outcome != actual.outcome {
        out.push(format!(
            "outcome: expected {:?}, got {:?}",
            expected.outcome, actual.outcome
        ));
        return out;
    }
    let (e, a) = (&expected.state, &actual.state);
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    for ((name, ev), av) in NAMES.iter().zip(e.gpr).zip(a.gpr) {
        if ev != av {
            out.push(format!("{name}: expected {ev:#x}, got {av:#x}"));
        }
    }
    if (e.rflags ^ a.rflags) & mask.rflags != 0 {
        out.push(format!(
            "rflags: expected {:#x}, got {:#x} (compared bits {:#x})",
            e.rflags, a.rflags, mask.rflags
        ));
    }
    if e.mxcsr() != a.mxcsr() {
        out.push(format!(
            "mxcsr: expected {:#x}, got {:#x}",
            e.mxcsr(),
            a.mxcsr()
        ));
    }
    for i in 0..16 {
        if e.xmm(i) != a.xmm(i) {
            out.push(format!(
                "xmm{i}: expected {:#034x}, got {:#034x}",
                e.xmm(i),
                a.xmm(i)
            ));
        }
    }
    let ((ecw, esw, etw), (acw, asw, atw)) = (e.x87_control(), a.x87_control());
    if ecw != acw || (esw ^ asw) & mask.fsw != 0 || etw != atw {
        out.push(format!(
            "x87 fcw/fsw/ftw: expected {ecw:#x}/{esw:#x}/{etw:#x}, got {acw:#x}/{asw:#x}/{atw:#x}"
        ));
    }
    if mask.x87_regs {
        for i in 0..8 {
            if e.st(i) != a.st(i) {
                out.push(format!(
                    "st{i}: expected {:02x?}, got {:02x?}",
                    e.st(i),
                    a.st(i)
                ));
            }
        }
    }
    if let Some(offset) = (0..e.mem.len()).find(|&i| e.mem[i] != a.mem[i]) {
        let end = (offset + 16).min(e.mem.len());
        out.push(format!(
            "memory at scratch+{offset:#x}: expected {:02x?}, got {:02x?}",
            &e.mem[offset..end],
            &a.mem[offset..end]
        ));
    }
    out
}

/// A 64-bit FNV-1a hash of everything `differences` compares, for golden vectors.
pub fn digest(output: &Output, mask: Mask) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    match output.outcome {
        Outcome::Exit(n) => feed(&[0, n]),
        Outcome::Fault(v) => feed(&[1, v]),
    }
    let s = &output.state;
    for g in s.gpr {
        feed(&g.to_le_bytes());
    }
    feed(&(s.rflags & mask.rflags).to_le_bytes());
    feed(&s.mxcsr().to_le_bytes());
    feed(&s.fx[160..416]);
    let (cw, sw, tw) = s.x87_control();
    feed(&cw.to_le_bytes());
    feed(&(sw & mask.fsw).to_le_bytes());
    feed(&[tw]);
    if mask.x87_regs {
        for i in 0..8 {
            feed(&s.st(i));
        }
    }
    feed(&s.mem);
    h
}
