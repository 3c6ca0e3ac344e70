//! Runs a case in softvisor's interpreter or its JIT, from and back to the host's save
//! format.

use crate::layout::{
    CODE_BASE, CODE_FILL, INSN_ADDR, SCRATCH_BASE, SCRATCH_SIZE, TAKEN_ADDR, WINDOW_SIZE,
};
use crate::state::{MachineState, Outcome, Output};
use softvisor_cpu::{CpuState, NoPlatform, Segment, F80};
use softvisor_jit::Jit;
use softvisor_mmu::tlb::{Tlb, TlbFill};
use softvisor_mmu::{AccessKind, CodeWrite, MemFault, Memory};

/// Guest memory that is exactly the test window; anything else faults like an unmapped page.
/// For the JIT it also keeps a TLB over the window (the code page read-only, so stores to
/// it take the slow path) and reports the code page as freshly written for each case.
pub struct WindowMemory {
    bytes: Vec<u8>,
    tlb: Box<Tlb>,
    code_written: bool,
}

impl WindowMemory {
    fn new(bytes: Vec<u8>) -> Self {
        let mut memory = Self {
            bytes,
            tlb: Tlb::new(),
            code_written: true,
        };
        let host = memory.bytes.as_ptr() as u64;
        for page in (0..WINDOW_SIZE as u64).step_by(0x1000) {
            let fill = TlbFill {
                linear: CODE_BASE + page,
                phys_page: CODE_BASE + page,
                host_page: host + page,
                read: true,
                write: page != 0,
                exec: page == 0,
                page_size: 0x1000,
                global: false,
            };
            memory.tlb.fill(0, &fill);
            memory.tlb.fill(1, &fill);
        }
        memory
    }
}

impl WindowMemory {
    fn range(&self, addr: u64, len: usize, kind: AccessKind) -> Result<usize, MemFault> {
        let offset = addr.wrapping_sub(CODE_BASE);
        if offset < WINDOW_SIZE as u64 && offset + len as u64 <= WINDOW_SIZE as u64 {
            Ok(offset as usize)
        } else {
            Err(MemFault {
                addr,
                kind,
                error_code: 4,
            })
        }
    }
}

impl Memory for WindowMemory {
    fn read(&mut self, addr: u64, buf: &mut [u8], kind: AccessKind) -> Result<(), MemFault> {
        let at = self.range(addr, buf.len(), kind)?;
        buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemFault> {
        let at = self.range(addr, data.len(), AccessKind::Write)?;
        self.bytes[at..at + data.len()].copy_from_slice(data);
        if at < 0x1000 {
            self.code_written = true;
        }
        Ok(())
    }

    fn code_address(&mut self, linear: u64) -> Option<u64> {
        (linear.wrapping_sub(CODE_BASE) < 0x1000).then_some(linear)
    }

    fn take_written_code(&mut self) -> Vec<CodeWrite> {
        if std::mem::take(&mut self.code_written) {
            // The whole code page: a case writes its code only to change it.
            vec![CodeWrite {
                page: CODE_BASE,
                start: CODE_BASE,
                end: CODE_BASE + 0x1000,
            }]
        } else {
            Vec::new()
        }
    }

    fn fast_tlb(&mut self) -> Option<&mut Tlb> {
        Some(&mut self.tlb)
    }
}

/// The tag of a non-empty x87 register from its contents: 0 valid, 1 zero, 2 special.
fn tag_of(value: F80) -> u16 {
    let exp = value.sign_exp & 0x7fff;
    if exp == 0 && value.signif == 0 {
        1
    } else if exp == 0x7fff || exp == 0 || value.signif >> 63 == 0 {
        2
    } else {
        0
    }
}

fn load_cpu(state: &MachineState) -> CpuState {
    let mut cpu = CpuState::new_long_mode();
    cpu.seg[1] = Segment::flat(0x33, 0xfb | Segment::ATTR_L);
    for i in [0, 2, 3, 4, 5] {
        cpu.seg[i] = Segment::flat(0x2b, 0xf3 | Segment::ATTR_DB);
    }
    cpu.gpr = state.gpr;
    cpu.rip = INSN_ADDR;
    cpu.set_rflags(state.rflags);
    cpu.mxcsr = state.mxcsr();
    for i in 0..16 {
        cpu.xmm[i] = state.xmm(i);
    }
    let (fcw, fsw, ftw) = state.x87_control();
    let x87 = &mut cpu.x87;
    x87.fcw = fcw;
    x87.top = ((fsw >> 11) & 7) as u8;
    x87.fsw = fsw & !0x3800;
    x87.ftw = 0;
    for slot in 0..8 {
        let st = state.st(slot);
        let phys = (usize::from(x87.top) + slot) & 7;
        let value = F80 {
            signif: u64::from_le_bytes(st[0..8].try_into().unwrap()),
            sign_exp: u16::from_le_bytes([st[8], st[9]]),
        };
        x87.regs[phys] = value;
    }
    for phys in 0..8 {
        let tag = if ftw & (1 << phys) == 0 {
            3
        } else {
            tag_of(x87.regs[phys])
        };
        x87.ftw |= tag << (2 * phys);
    }
    cpu
}

fn store_cpu(cpu: &CpuState, template: &MachineState, mem: &WindowMemory) -> MachineState {
    let mut out = template.clone();
    out.gpr = cpu.gpr;
    out.rflags = cpu.rflags();
    out.fx[24..28].copy_from_slice(&cpu.mxcsr.to_le_bytes());
    for i in 0..16 {
        out.fx[160 + 16 * i..176 + 16 * i].copy_from_slice(&cpu.xmm[i].to_le_bytes());
    }
    let x87 = &cpu.x87;
    out.fx[0..2].copy_from_slice(&x87.fcw.to_le_bytes());
    let fsw = (x87.fsw & !0x3800) | (u16::from(x87.top & 7) << 11);
    out.fx[2..4].copy_from_slice(&fsw.to_le_bytes());
    out.fx[4] = (0..8)
        .filter(|&p| (x87.ftw >> (2 * p)) & 3 != 3)
        .fold(0u8, |acc, p| acc | (1 << p));
    for slot in 0..8 {
        let reg = x87.regs[(usize::from(x87.top) + slot) & 7];
        out.fx[32 + 16 * slot..40 + 16 * slot].copy_from_slice(&reg.signif.to_le_bytes());
        out.fx[40 + 16 * slot..42 + 16 * slot].copy_from_slice(&reg.sign_exp.to_le_bytes());
    }
    let scratch = (SCRATCH_BASE - CODE_BASE) as usize;
    out.mem
        .copy_from_slice(&mem.bytes[scratch..scratch + SCRATCH_SIZE]);
    out
}

/// Runs the instruction `bytes` from `input` and reports how it ended: in the interpreter,
/// or with `jit` translated as a one-instruction block.
pub fn run(bytes: &[u8], input: &MachineState, mut jit: Option<&mut Jit>) -> Output {
    // The code page reads as INT3 filler, as the native window does. Only the exit stubs
    // and their pointer slots differ (they hold host addresses); no operand aims at them.
    let mut window = vec![CODE_FILL; WINDOW_SIZE];
    let at = (INSN_ADDR - CODE_BASE) as usize;
    window[at..at + bytes.len()].copy_from_slice(bytes);
    let scratch = (SCRATCH_BASE - CODE_BASE) as usize;
    window[scratch..scratch + SCRATCH_SIZE].copy_from_slice(&input.mem);
    let mut mem = WindowMemory::new(window);
    let mut cpu = load_cpu(input);
    let fall = INSN_ADDR + bytes.len() as u64;
    let mut outcome = Outcome::Exit(0xff);
    // A REP instruction may take several steps; anything else takes one.
    for _ in 0..1000 {
        let result = match jit.as_deref_mut() {
            Some(jit) => jit.step(&mut cpu, &mut mem, &mut NoPlatform),
            None => softvisor_cpu::step(&mut cpu, &mut mem),
        };
        match result {
            Err(e) => {
                outcome = Outcome::Fault(e.vector());
                break;
            }
            Ok(_) if cpu.rip == INSN_ADDR => continue,
            Ok(_) => {
                outcome = match cpu.rip {
                    r if r == fall => Outcome::Exit(0),
                    TAKEN_ADDR => Outcome::Exit(1),
                    _ => Outcome::Exit(0xff),
                };
                break;
            }
        }
    }
    Output {
        state: store_cpu(&cpu, input, &mem),
        outcome,
    }
}
