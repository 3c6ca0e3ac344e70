//! Random instances of one instruction form: an encoding with random registers,
//! immediates and memory operands that land in the scratch area, plus a random start state.
//! Deterministic in (seed, form, index), so another host can regenerate the same cases.

use crate::layout::{INSN_ADDR, SCRATCH_BASE, SCRATCH_SIZE, TAKEN_ADDR};
use crate::rng::Rng;
use crate::state::{MachineState, Mask};
use iced_x86::{
    Code, Decoder, DecoderOptions, Encoder, Instruction, Mnemonic, OpCodeOperandKind as K, OpKind,
    Register,
};

/// One generated case.
pub struct Case {
    /// The encoded instruction.
    pub bytes: Vec<u8>,
    /// The state it starts from.
    pub input: MachineState,
    /// What to compare.
    pub mask: Mask,
}

/// A GPR whose start value the generator must force (memory bases and indexes).
struct Forced {
    gpr: usize,
    value: u64,
}

fn gpr_list(size: u32) -> Vec<Register> {
    let first = match size {
        1 => Register::AL,
        2 => Register::AX,
        4 => Register::EAX,
        _ => Register::RAX,
    };
    let count = if size == 1 { 20 } else { 16 };
    (0..count).map(|i| reg_at(first, i)).collect()
}

fn reg_at(first: Register, i: usize) -> Register {
    Register::values()
        .nth(first as usize + i)
        .expect("register index in range")
}

fn pick(rng: &mut Rng, list: &[Register]) -> Register {
    list[rng.below(list.len() as u64) as usize]
}

/// Builds a memory operand whose effective address is `target` and records the register
/// values that make it so.
fn memory_operand(
    rng: &mut Rng,
    insn: &mut Instruction,
    op: u32,
    target: u64,
    forced: &mut Vec<Forced>,
) {
    insn.set_op_kind(op, OpKind::Memory);
    let addr32 = rng.chance(1, 10);
    let regs = gpr_list(if addr32 { 4 } else { 8 });
    let mode = rng.below(8);
    if mode == 0 {
        // RIP-relative: iced takes the absolute target.
        insn.set_memory_base(if addr32 { Register::EIP } else { Register::RIP });
        insn.set_memory_displacement64(target & if addr32 { 0xffff_ffff } else { u64::MAX });
        insn.set_memory_displ_size(if addr32 { 4 } else { 8 });
        return;
    }
    let disp: i64 = match rng.below(3) {
        0 => 0,
        1 => rng.below(256) as i64 - 128,
        _ => rng.below(0x2000) as i64 - 0x1000,
    };
    let base = pick(rng, &regs);
    let mut value = target.wrapping_sub(disp as u64);
    if mode >= 5 {
        let index = loop {
            let r = pick(rng, &regs);
            if r != base && r.full_register() != Register::RSP {
                break r;
            }
        };
        let scale = 1u64 << rng.below(4);
        let index_value = rng.below(64);
        value = value.wrapping_sub(index_value * scale);
        insn.set_memory_index(index);
        insn.set_memory_index_scale(scale as u32);
        forced.push(Forced {
            gpr: index.full_register() as usize - Register::RAX as usize,
            value: index_value | garbage_high(rng, addr32),
        });
    }
    insn.set_memory_base(base);
    forced.push(Forced {
        gpr: base.full_register() as usize - Register::RAX as usize,
        value: value | garbage_high(rng, addr32),
    });
    insn.set_memory_displacement64(disp as u64);
    insn.set_memory_displ_size(if disp == 0 {
        0
    } else if (-128..128).contains(&disp) {
        1
    } else if addr32 {
        4
    } else {
        8
    });
}

/// Random upper halves for 32-bit address registers: hardware must ignore them.
fn garbage_high(rng: &mut Rng, addr32: bool) -> u64 {
    if addr32 {
        rng.next() << 32
    } else {
        0
    }
}

fn imm_kind(kind: K) -> Option<OpKind> {
    Some(match kind {
        K::imm8 => OpKind::Immediate8,
        K::imm8sex16 => OpKind::Immediate8to16,
        K::imm8sex32 => OpKind::Immediate8to32,
        K::imm8sex64 => OpKind::Immediate8to64,
        K::imm16 => OpKind::Immediate16,
        K::imm32 => OpKind::Immediate32,
        K::imm32sex64 => OpKind::Immediate32to64,
        K::imm64 => OpKind::Immediate64,
        _ => return None,
    })
}

/// Fills operand `op` of kind `kind`. Returns false for kinds the generator cannot make.
fn operand(
    rng: &mut Rng,
    insn: &mut Instruction,
    op: u32,
    kind: K,
    target: u64,
    forced: &mut Vec<Forced>,
    second_imm: &mut bool,
) -> bool {
    let reg = |insn: &mut Instruction, r: Register| {
        insn.set_op_kind(op, OpKind::Register);
        insn.set_op_register(op, r);
    };
    let xmms: Vec<Register> = (0..16).map(|i| reg_at(Register::XMM0, i)).collect();
    let mms: Vec<Register> = (0..8).map(|i| reg_at(Register::MM0, i)).collect();
    let sts: Vec<Register> = (0..8).map(|i| reg_at(Register::ST0, i)).collect();
    let use_mem = rng.chance(1, 2);
    match kind {
        K::r8_reg | K::r8_opcode => reg(insn, pick(rng, &gpr_list(1))),
        K::r16_reg | K::r16_rm | K::r16_opcode | K::r16_reg_mem => {
            reg(insn, pick(rng, &gpr_list(2)))
        }
        K::r32_reg | K::r32_rm | K::r32_opcode | K::r32_vvvv | K::r32_reg_mem => {
            reg(insn, pick(rng, &gpr_list(4)))
        }
        K::r64_reg | K::r64_rm | K::r64_opcode | K::r64_vvvv | K::r64_reg_mem => {
            reg(insn, pick(rng, &gpr_list(8)))
        }
        K::xmm_reg | K::xmm_rm | K::xmm_vvvv => reg(insn, pick(rng, &xmms)),
        K::mm_reg | K::mm_rm => reg(insn, pick(rng, &mms)),
        K::sti_opcode => reg(insn, pick(rng, &sts)),
        K::st0 => reg(insn, Register::ST0),
        K::al => reg(insn, Register::AL),
        K::cl => reg(insn, Register::CL),
        K::ax => reg(insn, Register::AX),
        K::dx => reg(insn, Register::DX),
        K::eax => reg(insn, Register::EAX),
        K::rax => reg(insn, Register::RAX),
        K::r8_or_mem if !use_mem => reg(insn, pick(rng, &gpr_list(1))),
        K::r16_or_mem if !use_mem => reg(insn, pick(rng, &gpr_list(2))),
        K::r32_or_mem if !use_mem => reg(insn, pick(rng, &gpr_list(4))),
        K::r64_or_mem if !use_mem => reg(insn, pick(rng, &gpr_list(8))),
        K::xmm_or_mem if !use_mem => reg(insn, pick(rng, &xmms)),
        K::mm_or_mem if !use_mem => reg(insn, pick(rng, &mms)),
        K::r8_or_mem
        | K::r16_or_mem
        | K::r32_or_mem
        | K::r64_or_mem
        | K::xmm_or_mem
        | K::mm_or_mem
        | K::mem => memory_operand(rng, insn, op, target, forced),
        K::mem_offs => {
            insn.set_op_kind(op, OpKind::Memory);
            insn.set_memory_displacement64(target);
            insn.set_memory_displ_size(8);
        }
        K::imm8_const_1 => {
            insn.set_op_kind(op, OpKind::Immediate8);
            insn.set_immediate8(1);
        }
        K::imm8 if *second_imm => {
            insn.set_op_kind(op, OpKind::Immediate8_2nd);
            insn.set_immediate8_2nd(rng.next() as u8);
        }
        K::seg_rSI => insn.set_op_kind(op, OpKind::MemorySegRSI),
        K::es_rDI => insn.set_op_kind(op, OpKind::MemoryESRDI),
        K::seg_rDI => insn.set_op_kind(op, OpKind::MemorySegRDI),
        K::seg_rBX_al => {
            insn.set_op_kind(op, OpKind::Memory);
            insn.set_memory_base(Register::RBX);
            insn.set_memory_index(Register::AL);
            insn.set_memory_index_scale(1);
        }
        K::br16_1 | K::br32_1 | K::br64_1 | K::br16_2 | K::br32_4 | K::br64_4 => {
            insn.set_op_kind(op, OpKind::NearBranch64);
            insn.set_near_branch64(TAKEN_ADDR);
        }
        other => match imm_kind(other) {
            Some(kind) => {
                insn.set_op_kind(op, kind);
                let value = rng.interesting();
                match kind {
                    OpKind::Immediate8 => {
                        insn.set_immediate8(value as u8);
                        *second_imm = true;
                    }
                    OpKind::Immediate8to16 | OpKind::Immediate8to32 | OpKind::Immediate8to64 => {
                        insn.set_immediate8(value as u8)
                    }
                    OpKind::Immediate16 => {
                        insn.set_immediate16(value as u16);
                        *second_imm = true;
                    }
                    OpKind::Immediate32 | OpKind::Immediate32to64 => {
                        insn.set_immediate32(value as u32)
                    }
                    _ => insn.set_immediate64(value),
                }
            }
            None => return false,
        },
    }
    true
}

/// Interesting 32-bit float bit patterns.
fn f32_bits(rng: &mut Rng) -> u32 {
    let sign = (rng.next() as u32) & 0x8000_0000;
    sign | match rng.below(10) {
        0 => 0,
        1 => 0x7f80_0000,
        2 => 0x7fc0_0000 | (rng.next() as u32 & 0x3f_ffff),
        3 => 0x7f80_0001 | (rng.next() as u32 & 0x1f_ffff),
        4 => rng.next() as u32 & 0x7f_ffff,
        5 => 0x3f80_0000,
        6 => (rng.below(60) as u32 + 97) << 23 | (rng.next() as u32 & 0x7f_ffff),
        7 => 0x4f00_0000 + (rng.below(3) as u32) * 0x80_0000 - 1 + (rng.below(3) as u32),
        _ => rng.next() as u32 & 0x7fff_ffff,
    }
}

/// Interesting 64-bit float bit patterns.
fn f64_bits(rng: &mut Rng) -> u64 {
    let sign = rng.next() & (1 << 63);
    sign | match rng.below(10) {
        0 => 0,
        1 => 0x7ff0_0000_0000_0000,
        2 => 0x7ff8_0000_0000_0000 | (rng.next() & 0x7_ffff_ffff_ffff),
        3 => 0x7ff0_0000_0000_0001 | (rng.next() & 0x3_ffff_ffff_ffff),
        4 => rng.next() & 0xf_ffff_ffff_ffff,
        5 => 0x3ff0_0000_0000_0000,
        6 => (rng.below(120) + 963) << 52 | (rng.next() & 0xf_ffff_ffff_ffff),
        7 => 0x43e0_0000_0000_0000 + rng.below(5) - 2,
        _ => rng.next() & 0x7fff_ffff_ffff_ffff,
    }
}

/// 16 random bytes: integer noise or float lanes of either width.
fn vector_bytes(rng: &mut Rng) -> [u8; 16] {
    let mut out = [0u8; 16];
    match rng.below(3) {
        0 => {
            out[..8].copy_from_slice(&rng.interesting().to_le_bytes());
            out[8..].copy_from_slice(&rng.interesting().to_le_bytes());
        }
        1 => {
            for lane in 0..4 {
                out[4 * lane..4 * lane + 4].copy_from_slice(&f32_bits(rng).to_le_bytes());
            }
        }
        _ => {
            for lane in 0..2 {
                out[8 * lane..8 * lane + 8].copy_from_slice(&f64_bits(rng).to_le_bytes());
            }
        }
    }
    out
}

/// An interesting 80-bit value: normals, zeros, infinities, NaNs, denormals and the
/// unsupported encodings.
fn f80_bytes(rng: &mut Rng) -> [u8; 10] {
    let sign = (rng.below(2) as u16) << 15;
    let (signif, exp) = match rng.below(10) {
        0 => (0, 0),
        1 => (1 << 63, 0x7fff),
        2 => (0xc000_0000_0000_0000 | (rng.next() >> 2), 0x7fff),
        3 => ((1 << 63) | (rng.next() >> 2) | 1, 0x7fff),
        4 => (rng.next() >> 1, 0),
        5 => (rng.next() >> 1, (rng.below(0x7ffe) + 1) as u16),
        6 => (
            (1 << 63) | (rng.next() >> 40 << 40),
            (0x3fff + rng.below(64) - 32) as u16,
        ),
        _ => (
            (1 << 63) | rng.next(),
            (0x3fff + rng.below(128) - 64) as u16,
        ),
    };
    let mut out = [0u8; 10];
    out[..8].copy_from_slice(&signif.to_le_bytes());
    out[8..].copy_from_slice(&(sign | exp).to_le_bytes());
    out
}

/// A random start state.
fn start_state(rng: &mut Rng) -> MachineState {
    let mut s = MachineState::new();
    for g in s.gpr.iter_mut() {
        *g = rng.interesting();
    }
    s.gpr[4] = SCRATCH_BASE + 0x1000 + 8 * rng.below(64);
    let arith = rng.next() & 0x8d5;
    let df = if rng.chance(1, 4) { 0x400 } else { 0 };
    s.rflags = 0x202 | arith | df;
    for chunk in s.mem.chunks_mut(16) {
        let bytes = vector_bytes(rng);
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    let fcw: u16 = 0x7f | ((rng.below(4) as u16) << 8) | ((rng.below(4) as u16) << 10);
    let fsw: u16 = (rng.below(64) as u16)
        | ((rng.below(8) as u16) << 11)
        | ((rng.below(16) as u16 & 7) << 8)
        | ((rng.below(2) as u16) << 14);
    s.fx[0..2].copy_from_slice(&fcw.to_le_bytes());
    s.fx[2..4].copy_from_slice(&fsw.to_le_bytes());
    s.fx[4] = rng.next() as u8;
    let mut mxcsr: u32 = 0x1f80 | (rng.below(64) as u32) | ((rng.below(4) as u32) << 13);
    if rng.chance(1, 4) {
        mxcsr |= 1 << 6;
    }
    if rng.chance(1, 4) {
        mxcsr |= 1 << 15;
    }
    if rng.chance(1, 8) {
        mxcsr &= !(1 << (7 + rng.below(6)));
    }
    s.fx[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    s.fx[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
    for slot in 0..8 {
        let v = f80_bytes(rng);
        s.fx[32 + 16 * slot..42 + 16 * slot].copy_from_slice(&v);
    }
    for x in 0..16 {
        let v = vector_bytes(rng);
        s.fx[160 + 16 * x..176 + 16 * x].copy_from_slice(&v);
    }
    s
}

/// Writes `value` (8 bytes) into scratch memory at linear `addr`.
fn poke(state: &mut MachineState, addr: u64, value: u64) {
    let at = (addr - SCRATCH_BASE) as usize;
    state.mem[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Per-mnemonic adjustments so implicit pointers and branch targets stay in the window.
fn fix_implicit(rng: &mut Rng, insn: &Instruction, s: &mut MachineState, target: u64) {
    use Mnemonic as M;
    let scratch_ptr = |rng: &mut Rng| SCRATCH_BASE + 0x400 + rng.below(0x1000);
    match insn.mnemonic() {
        M::Movsb
        | M::Movsw
        | M::Movsd
        | M::Movsq
        | M::Cmpsb
        | M::Cmpsw
        | M::Cmpsd
        | M::Cmpsq
        | M::Stosb
        | M::Stosw
        | M::Stosd
        | M::Stosq
        | M::Lodsb
        | M::Lodsw
        | M::Lodsd
        | M::Lodsq
        | M::Scasb
        | M::Scasw
        | M::Scasd
        | M::Scasq
            if !(0..insn.op_count()).any(|op| {
                insn.op_kind(op) == OpKind::Register && insn.op_register(op).is_xmm()
            }) =>
        {
            s.gpr[6] = scratch_ptr(rng);
            s.gpr[7] = scratch_ptr(rng);
            s.gpr[1] = rng.below(12);
        }
        M::Leave | M::Enter => s.gpr[5] = scratch_ptr(rng) & !7,
        M::Xlatb => s.gpr[3] = scratch_ptr(rng),
        M::Maskmovq | M::Maskmovdqu => s.gpr[7] = scratch_ptr(rng),
        M::Ret => poke(s, s.gpr[4], TAKEN_ADDR),
        M::Popf | M::Popfq | M::Popfd => {
            let at = s.gpr[4];
            let v = u64::from_le_bytes(
                s.mem[(at - SCRATCH_BASE) as usize..][..8]
                    .try_into()
                    .unwrap(),
            );
            poke(s, at, v & !0x100);
        }
        M::Jmp | M::Call if insn.op0_kind() == OpKind::Register => {
            let r = insn.op0_register().full_register() as usize - Register::RAX as usize;
            s.gpr[r] = TAKEN_ADDR;
        }
        M::Jmp | M::Call if insn.op0_kind() == OpKind::Memory => poke(s, target, TAKEN_ADDR),
        // MXCSR bit 17 is AMD's misaligned-SSE mask: the host accepts it, while the virtual
        // CPU (which does not advertise misaligned SSE) treats it as reserved.
        M::Ldmxcsr => {
            let at = (target - SCRATCH_BASE) as usize + 2;
            s.mem[at] &= !0x02;
        }
        M::Fxrstor | M::Fxrstor64 => {
            let at = (target - SCRATCH_BASE) as usize + 24 + 2;
            s.mem[at] &= !0x02;
        }
        _ => {}
    }
}

/// What to compare for `insn`: everything except the flags iced says are undefined.
fn mask_for(insn: &Instruction) -> Mask {
    use iced_x86::RflagsBits as R;
    let undefined = insn.rflags_undefined();
    // RF is left out: the kernel sets it in the context of a faulting instruction.
    let mut rflags: u64 = 0x0000_0000_0024_4fd5;
    for (bit, flag) in [
        (R::OF, 0x800u64),
        (R::SF, 0x80),
        (R::ZF, 0x40),
        (R::AF, 0x10),
        (R::CF, 0x1),
        (R::PF, 0x4),
    ] {
        if undefined & bit != 0 {
            rflags &= !flag;
        }
    }
    let mut fsw: u16 = 0xffff;
    for (bit, flag) in [
        (R::C0, 0x100u16),
        (R::C1, 0x200),
        (R::C2, 0x400),
        (R::C3, 0x4000),
    ] {
        if undefined & bit != 0 {
            fsw &= !flag;
        }
    }
    Mask {
        rflags,
        fsw,
        x87_regs: true,
    }
}

/// Generates case `index` of form `code`, or `None` if the form cannot be encoded.
pub fn generate(seed: u64, code: Code, index: u64) -> Option<Case> {
    let mut rng = Rng::new(
        seed ^ (code as u64).wrapping_mul(0x9e37_79b9) ^ index.wrapping_mul(0x5851_f42d_4c95_7f2d),
    );
    for _attempt in 0..32 {
        let mut insn = Instruction::default();
        insn.set_code(code);
        insn.set_code_size(iced_x86::CodeSize::Code64);
        let size = code.op_code().memory_size().size().max(1) as u64;
        let align = if rng.chance(3, 4) { 16 } else { 1 };
        let target =
            (SCRATCH_BASE + 0x100 + rng.below(SCRATCH_SIZE as u64 - 0x300)) / align * align;
        let _ = size;
        let mut forced = Vec::new();
        let mut second_imm = false;
        let kinds = code.op_code().op_kinds().to_vec();
        let mut ok = true;
        for (i, &kind) in kinds.iter().enumerate() {
            if !operand(
                &mut rng,
                &mut insn,
                i as u32,
                kind,
                target,
                &mut forced,
                &mut second_imm,
            ) {
                ok = false;
                break;
            }
        }
        if !ok {
            return None;
        }
        // The ISA leaves 16-bit SHLD/SHRD undefined for counts above 16.
        if matches!(code, Code::Shld_rm16_r16_imm8 | Code::Shrd_rm16_r16_imm8) {
            insn.set_immediate8(rng.below(17) as u8);
        }
        let mut encoder = Encoder::new(64);
        if encoder.encode(&insn, INSN_ADDR).is_err() {
            continue;
        }
        let bytes = encoder.take_buffer();
        let decoded = Decoder::with_ip(64, &bytes, INSN_ADDR, DecoderOptions::NONE).decode();
        if decoded.code() != code {
            continue;
        }
        let mut input = start_state(&mut rng);
        for f in &forced {
            input.gpr[f.gpr] = f.value;
        }
        fix_implicit(&mut rng, &decoded, &mut input, target);
        if matches!(code, Code::Shld_rm16_r16_CL | Code::Shrd_rm16_r16_CL) {
            input.gpr[1] = (input.gpr[1] & !0xff) | rng.below(17);
        }
        return Some(Case {
            bytes,
            input,
            mask: mask_for(&decoded),
        });
    }
    None
}
