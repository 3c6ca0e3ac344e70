//! SSE integer and data-movement instructions translated inline (legacy encodings on XMM
//! registers): the full-width moves, MOVD/MOVQ, the bitwise group, lane-wise add, subtract,
//! saturate, min/max, average and compare, PMOVMSKB, the unpacks and shuffles, immediate
//! shifts and byte shifts, PSHUFB and PALIGNR. These are the bulk of libc's string and
//! memory routines, which otherwise run one interpreter call each.
//!
//! XMM registers are written through to the CPU state and their values kept for later
//! reads until the next interpreted instruction or block header (`Cache::xmm`). Values
//! travel as I8X16 and are reinterpreted per lane width. Semantics follow the
//! interpreter's `simd_int` group; the host-differential suite and the lockstep mode hold
//! the two together. Anything else, including MMX forms and shifts by a register count,
//! goes to the interpreter.

use super::{state_flags, Flow, Translator};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, ConstantData, Endianness, InstBuilder, MemFlagsData, Type, Value,
};
use iced_x86::{Instruction, Mnemonic as M, OpKind, Register};
use softvisor_cpu::offsets;
use softvisor_cpu::state::{CR0_EM, CR0_TS, CR4_OSFXSR};

/// Flags for reinterpreting a vector with another lane width: x86 lane order.
fn lane_order() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// What one mnemonic does, decided before anything is emitted.
#[derive(Clone, Copy)]
enum Op {
    /// A full-width move.
    Move,
    /// MOVD (4) or MOVQ (8): the low bytes, zero-extended into a register.
    MoveLow(u32),
    /// `dst = op(dst, src)` on lanes of the type.
    Lanes(Type, Lanewise),
    /// PMOVMSKB: byte sign bits into a GPR.
    MoveMask,
    /// `dst = shuffle(dst, src)` by a byte pattern (indices 16.. pick from `src`).
    Interleave(fn(usize) -> u8),
    /// PSHUFD/PSHUFLW/PSHUFHW: `dst = shuffle(src)` by the immediate.
    ShuffleImm(fn(usize, u8) -> u8),
    /// SHUFPS: low dwords from `dst`, high from `src`, by the immediate.
    ShufPs,
    /// Shift of each lane of the type by the immediate.
    ShiftImm(Type, Shift),
    /// PSRLDQ (`true`) / PSLLDQ: whole-register byte shift by the immediate.
    ByteShift(bool),
    /// PSHUFB.
    ShuffleBytes,
    /// PALIGNR.
    AlignRight,
}

#[derive(Clone, Copy)]
enum Lanewise {
    And,
    AndNot,
    Or,
    Xor,
    Add,
    Sub,
    AddSatU,
    SubSatU,
    AddSatS,
    SubSatS,
    MinU,
    MaxU,
    MinS,
    MaxS,
    AvgU,
    MulLow,
    Eq,
    GtS,
}

#[derive(Clone, Copy)]
enum Shift {
    Right,
    Left,
    RightArith,
}

/// The inline form of `m`, if there is one.
fn classify(m: M) -> Option<Op> {
    use types::{I16X8 as W, I32X4 as D, I64X2 as Q, I8X16 as B};
    use Lanewise::*;
    Some(match m {
        M::Movdqa
        | M::Movdqu
        | M::Movaps
        | M::Movups
        | M::Movapd
        | M::Movupd
        | M::Lddqu
        | M::Movntdq
        | M::Movntdqa
        | M::Movntps
        | M::Movntpd => Op::Move,
        M::Movd => Op::MoveLow(4),
        M::Movq => Op::MoveLow(8),
        M::Pand | M::Andps | M::Andpd => Op::Lanes(Q, And),
        M::Pandn | M::Andnps | M::Andnpd => Op::Lanes(Q, AndNot),
        M::Por | M::Orps | M::Orpd => Op::Lanes(Q, Or),
        M::Pxor | M::Xorps | M::Xorpd => Op::Lanes(Q, Xor),
        M::Paddb => Op::Lanes(B, Add),
        M::Paddw => Op::Lanes(W, Add),
        M::Paddd => Op::Lanes(D, Add),
        M::Paddq => Op::Lanes(Q, Add),
        M::Psubb => Op::Lanes(B, Sub),
        M::Psubw => Op::Lanes(W, Sub),
        M::Psubd => Op::Lanes(D, Sub),
        M::Psubq => Op::Lanes(Q, Sub),
        M::Paddusb => Op::Lanes(B, AddSatU),
        M::Paddusw => Op::Lanes(W, AddSatU),
        M::Psubusb => Op::Lanes(B, SubSatU),
        M::Psubusw => Op::Lanes(W, SubSatU),
        M::Paddsb => Op::Lanes(B, AddSatS),
        M::Paddsw => Op::Lanes(W, AddSatS),
        M::Psubsb => Op::Lanes(B, SubSatS),
        M::Psubsw => Op::Lanes(W, SubSatS),
        M::Pminub => Op::Lanes(B, MinU),
        M::Pmaxub => Op::Lanes(B, MaxU),
        M::Pminsw => Op::Lanes(W, MinS),
        M::Pmaxsw => Op::Lanes(W, MaxS),
        M::Pavgb => Op::Lanes(B, AvgU),
        M::Pavgw => Op::Lanes(W, AvgU),
        M::Pmullw => Op::Lanes(W, MulLow),
        M::Pcmpeqb => Op::Lanes(B, Eq),
        M::Pcmpeqw => Op::Lanes(W, Eq),
        M::Pcmpeqd => Op::Lanes(D, Eq),
        M::Pcmpgtb => Op::Lanes(B, GtS),
        M::Pcmpgtw => Op::Lanes(W, GtS),
        M::Pcmpgtd => Op::Lanes(D, GtS),
        M::Pmovmskb => Op::MoveMask,
        M::Punpcklbw => Op::Interleave(|i| unpack(i, 1, 0)),
        M::Punpcklwd => Op::Interleave(|i| unpack(i, 2, 0)),
        M::Punpckldq => Op::Interleave(|i| unpack(i, 4, 0)),
        M::Punpcklqdq => Op::Interleave(|i| unpack(i, 8, 0)),
        M::Punpckhbw => Op::Interleave(|i| unpack(i, 1, 8)),
        M::Punpckhwd => Op::Interleave(|i| unpack(i, 2, 8)),
        M::Punpckhdq => Op::Interleave(|i| unpack(i, 4, 8)),
        M::Punpckhqdq => Op::Interleave(|i| unpack(i, 8, 8)),
        M::Pshufd => Op::ShuffleImm(|i, imm| lane_pick(i, 4, imm)),
        M::Pshuflw => Op::ShuffleImm(|i, imm| if i < 8 { lane_pick(i, 2, imm) } else { i as u8 }),
        M::Pshufhw => Op::ShuffleImm(|i, imm| {
            if i < 8 {
                i as u8
            } else {
                8 + lane_pick(i - 8, 2, imm)
            }
        }),
        M::Shufps => Op::ShufPs,
        M::Psrlw => Op::ShiftImm(W, Shift::Right),
        M::Psrld => Op::ShiftImm(D, Shift::Right),
        M::Psrlq => Op::ShiftImm(Q, Shift::Right),
        M::Psllw => Op::ShiftImm(W, Shift::Left),
        M::Pslld => Op::ShiftImm(D, Shift::Left),
        M::Psllq => Op::ShiftImm(Q, Shift::Left),
        M::Psraw => Op::ShiftImm(W, Shift::RightArith),
        M::Psrad => Op::ShiftImm(D, Shift::RightArith),
        M::Psrldq => Op::ByteShift(true),
        M::Pslldq => Op::ByteShift(false),
        M::Pshufb => Op::ShuffleBytes,
        M::Palignr => Op::AlignRight,
        _ => return None,
    })
}

/// Byte `i` of an unpack of `lane`-byte lanes starting at byte `from` of each source:
/// lanes alternate between `dst` (indices 0..16) and `src` (16..32).
fn unpack(i: usize, lane: usize, from: usize) -> u8 {
    let pair = i / (2 * lane);
    let from_src = (i / lane) % 2 == 1;
    let byte = from + pair * lane + i % lane;
    (byte + if from_src { 16 } else { 0 }) as u8
}

/// Byte `i` of a shuffle of `lane`-byte lanes where lane `k` takes source lane
/// `imm >> 2k & 3`.
fn lane_pick(i: usize, lane: usize, imm: u8) -> u8 {
    let k = i / lane;
    let source = usize::from(imm >> (2 * k) & 3);
    (source * lane + i % lane) as u8
}

impl Translator<'_, '_> {
    /// Translates `insn` inline if it is one of this module's forms on XMM registers (and
    /// GPRs or memory where the form takes them); `None` emits nothing.
    pub(super) fn emit_sse(&mut self, insn: &Instruction) -> Option<Flow> {
        let op = classify(insn.mnemonic())?;
        if !self.sse_operands_supported(insn, op) {
            return None;
        }
        self.check_sse_state();
        match op {
            Op::Move => {
                let v = self.vector_operand(1);
                self.put_vector(0, v);
            }
            Op::MoveLow(bytes) => self.move_low(bytes),
            Op::Lanes(ty, f) => self.lanewise(ty, f),
            Op::MoveMask => {
                let v = self.vector_operand(1);
                let mask = self.b.ins().vhigh_bits(types::I64, v);
                self.write_reg(insn.op_register(0), mask);
            }
            Op::Interleave(pick) => {
                let (dst, src) = self.vector_pair();
                let v = self.shuffle(dst, src, pick);
                self.put_vector(0, v);
            }
            Op::ShuffleImm(pick) => {
                let imm = insn.immediate8();
                let src = self.vector_operand(1);
                let v = self.shuffle(src, src, |i| pick(i, imm));
                self.put_vector(0, v);
            }
            Op::ShufPs => self.shufps(),
            Op::ShiftImm(ty, kind) => self.shift_lanes(ty, kind),
            Op::ByteShift(right) => self.byte_shift(right),
            Op::ShuffleBytes => {
                let (dst, src) = self.vector_pair();
                // Bit 7 zeroes the byte, bits 0..3 pick one; `swizzle` zeroes indices
                // of 16 and up, so keeping bit 7 and the low nibble does both.
                let keep = self.vector_splat(0x8f);
                let index = self.b.ins().band(src, keep);
                let v = self.b.ins().swizzle(dst, index);
                self.put_vector(0, v);
            }
            Op::AlignRight => self.align_right(),
        }
        Some(Flow::Next)
    }

    /// Whether every operand of `insn` suits the form: XMM registers, GPRs only where
    /// the form moves to or from one, an immediate for the immediate forms, and memory
    /// when the TLB can be probed inline.
    fn sse_operands_supported(&self, insn: &Instruction, op: Op) -> bool {
        let gpr_ok = matches!(op, Op::MoveLow(_) | Op::MoveMask);
        let imm_ok = matches!(
            op,
            Op::ShuffleImm(_) | Op::ShufPs | Op::ShiftImm(..) | Op::ByteShift(_) | Op::AlignRight
        );
        let has_imm = insn.op_kinds().any(|k| k == OpKind::Immediate8);
        // The shifts also have a by-register form, and MOVQ/MOVD an MMX one.
        imm_ok == has_imm
            && (0..insn.op_count()).all(|n| match insn.op_kind(n) {
                OpKind::Register => {
                    let r = insn.op_register(n);
                    r.is_xmm() || (gpr_ok && (r.is_gpr32() || r.is_gpr64()))
                }
                OpKind::Memory => {
                    self.mode.inline_memory
                        && !insn.memory_index().is_xmm()
                        && matches!(insn.memory_size().size(), 4 | 8 | 16)
                }
                OpKind::Immediate8 => imm_ok,
                _ => false,
            })
            && (0..insn.op_count())
                .any(|n| insn.op_kind(n) == OpKind::Register && insn.op_register(n).is_xmm())
    }

    /// The #UD/#NM checks the interpreter makes before an SSE instruction (CR0.EM,
    /// CR4.OSFXSR, CR0.TS): when one would fault, redo the instruction there. Once per
    /// run of inline SSE instructions (only an interpreted instruction changes CR0/CR4).
    fn check_sse_state(&mut self) {
        if self.sse_checked {
            return;
        }
        self.sse_checked = true;
        let f = state_flags();
        let cr0 = self
            .b
            .ins()
            .load(types::I64, f, self.cpu, offsets::CR0 as i32);
        let cr4 = self
            .b
            .ins()
            .load(types::I64, f, self.cpu, offsets::CR4 as i32);
        let off = self.b.ins().bnot(cr4);
        let no_fxsr = self.b.ins().band_imm_s(off, CR4_OSFXSR as i64);
        let trap = self.b.ins().band_imm_s(cr0, (CR0_EM | CR0_TS) as i64);
        let bad = self.b.ins().bor(no_fxsr, trap);
        self.redo_if(bad);
    }

    /// XMM register `reg` as I8X16: the value last read or written in this stretch of
    /// the block, else loaded from the state.
    fn xmm(&mut self, reg: Register) -> Value {
        let n = reg as usize - Register::XMM0 as usize;
        if let Some(v) = self.cache.xmm[n] {
            return v;
        }
        let v = self.b.ins().load(
            types::I8X16,
            state_flags(),
            self.cpu,
            offsets::xmm(n) as i32,
        );
        self.cache.xmm[n] = Some(v);
        v
    }

    /// Writes XMM register `reg` through to the state (an instruction's last step, after
    /// its memory accesses), keeping the value for later reads.
    fn set_xmm(&mut self, reg: Register, v: Value) {
        let n = reg as usize - Register::XMM0 as usize;
        self.b
            .ins()
            .store(state_flags(), v, self.cpu, offsets::xmm(n) as i32);
        self.cache.xmm[n] = Some(v);
    }

    /// Operand `op` as a 128-bit vector: an XMM register, 16 bytes of memory, or a
    /// smaller memory operand or GPR zero-extended.
    fn vector_operand(&mut self, op: u32) -> Value {
        match self.insn.op_kind(op) {
            OpKind::Register if self.insn.op_register(op).is_xmm() => {
                self.xmm(self.insn.op_register(op))
            }
            OpKind::Memory if self.insn.memory_size().size() == 16 => {
                let linear = self.mem_linear();
                let aligned = softvisor_cpu::interp::sse_needs_alignment(&self.insn);
                self.access_vector(linear, aligned, None)
            }
            _ => {
                let size = self.op_size(op);
                let low = self.scalar_operand(op, size);
                self.vector_from_low(low)
            }
        }
    }

    /// Operands 0 and 1 of a two-operand form.
    fn vector_pair(&mut self) -> (Value, Value) {
        let src = self.vector_operand(1);
        let dst = self.vector_operand(0);
        (dst, src)
    }

    /// The low `size` bytes of operand `op` (XMM, GPR or memory), zero-extended to I64.
    fn scalar_operand(&mut self, op: u32, size: u32) -> Value {
        match self.insn.op_kind(op) {
            OpKind::Register if self.insn.op_register(op).is_xmm() => {
                let v = self.xmm(self.insn.op_register(op));
                let quads = self.b.ins().bitcast(types::I64X2, lane_order(), v);
                let low = self.b.ins().extractlane(quads, 0);
                self.mask(low, size)
            }
            OpKind::Memory => {
                let linear = self.mem_linear();
                self.load(linear, size)
            }
            _ => {
                let v = self.read_reg(self.insn.op_register(op));
                self.mask(v, size)
            }
        }
    }

    /// An I64 in the low quadword of an otherwise zero I8X16.
    fn vector_from_low(&mut self, low: Value) -> Value {
        let quads = self.b.ins().scalar_to_vector(types::I64X2, low);
        self.b.ins().bitcast(types::I8X16, lane_order(), quads)
    }

    /// Writes operand `op`: a whole XMM register or 16 bytes of memory.
    fn put_vector(&mut self, op: u32, v: Value) {
        if self.insn.op_kind(op) == OpKind::Memory {
            let linear = self.mem_linear();
            let aligned = softvisor_cpu::interp::sse_needs_alignment(&self.insn);
            self.access_vector(linear, aligned, Some(v));
        } else {
            self.set_xmm(self.insn.op_register(op), v);
        }
    }

    /// MOVD/MOVQ: the low `bytes` of the source; an XMM destination gets them
    /// zero-extended, a GPR or memory just those bytes.
    fn move_low(&mut self, bytes: u32) {
        let low = self.scalar_operand(1, bytes);
        match self.insn.op_kind(0) {
            OpKind::Memory => {
                let linear = self.mem_linear();
                self.store(linear, bytes, low);
            }
            _ if self.insn.op_register(0).is_xmm() => {
                let v = self.vector_from_low(low);
                self.set_xmm(self.insn.op_register(0), v);
            }
            _ => self.write_reg(self.insn.op_register(0), low),
        }
    }

    /// `v` viewed with lane type `ty`.
    fn as_lanes(&mut self, v: Value, ty: Type) -> Value {
        if self.b.func.dfg.value_type(v) == ty {
            v
        } else {
            self.b.ins().bitcast(ty, lane_order(), v)
        }
    }

    fn lanewise(&mut self, ty: Type, f: Lanewise) {
        use Lanewise::*;
        if matches!(f, Xor | Sub) && self.same_register_operands() {
            // The zeroing idiom (`pxor %xmm0,%xmm0`) needs no read of the register.
            let zero = self.vector_zero();
            self.put_vector(0, zero);
            return;
        }
        let (dst, src) = self.vector_pair();
        let a = self.as_lanes(dst, ty);
        let b = self.as_lanes(src, ty);
        let i = self.b.ins();
        let v = match f {
            And => i.band(a, b),
            AndNot => i.band_not(b, a),
            Or => i.bor(a, b),
            Xor => i.bxor(a, b),
            Add => i.iadd(a, b),
            Sub => i.isub(a, b),
            AddSatU => i.uadd_sat(a, b),
            SubSatU => i.usub_sat(a, b),
            AddSatS => i.sadd_sat(a, b),
            SubSatS => i.ssub_sat(a, b),
            MinU => i.umin(a, b),
            MaxU => i.umax(a, b),
            MinS => i.smin(a, b),
            MaxS => i.smax(a, b),
            AvgU => i.avg_round(a, b),
            MulLow => i.imul(a, b),
            Eq => i.icmp(IntCC::Equal, a, b),
            GtS => i.icmp(IntCC::SignedGreaterThan, a, b),
        };
        let v = self.as_lanes(v, types::I8X16);
        self.put_vector(0, v);
    }

    /// `shuffle(a, b)` with byte `i` of the result taken from byte `pick(i)` of `a:b`.
    fn shuffle(&mut self, a: Value, b: Value, pick: impl Fn(usize) -> u8) -> Value {
        let bytes: Vec<u8> = (0..16).map(pick).collect();
        let mask = self.b.func.dfg.immediates.push(ConstantData::from(bytes));
        self.b.ins().shuffle(a, b, mask)
    }

    fn shufps(&mut self) {
        let imm = self.insn.immediate8();
        let (dst, src) = self.vector_pair();
        let v = self.shuffle(dst, src, |i| {
            let lane = lane_pick(i, 4, imm);
            if i < 8 {
                lane
            } else {
                16 + lane
            }
        });
        self.put_vector(0, v);
    }

    fn shift_lanes(&mut self, ty: Type, kind: Shift) {
        let count = u32::from(self.insn.immediate8());
        let bits = ty.lane_bits();
        let dst = self.vector_operand(0);
        let lanes = self.as_lanes(dst, ty);
        let v = match kind {
            // A count past the lane width clears it, or fills it with the sign.
            Shift::Right | Shift::Left if count >= bits => self.vector_zero(),
            Shift::Right => self.b.ins().ushr_imm_s(lanes, i64::from(count)),
            Shift::Left => self.b.ins().ishl_imm_s(lanes, i64::from(count)),
            Shift::RightArith => {
                let by = i64::from(count.min(bits - 1));
                self.b.ins().sshr_imm_s(lanes, by)
            }
        };
        let v = self.as_lanes(v, types::I8X16);
        self.put_vector(0, v);
    }

    /// PSRLDQ/PSLLDQ: shift the whole register by `imm` bytes, shifting in zeros.
    fn byte_shift(&mut self, right: bool) {
        let n = usize::from(self.insn.immediate8());
        let dst = self.vector_operand(0);
        let zero = self.vector_zero();
        // Indices of 16 and up pick from the zero vector.
        let v = self.shuffle(dst, zero, |i| {
            let from = if right {
                i.checked_add(n)
            } else {
                i.checked_sub(n)
            };
            from.filter(|&b| b < 16).unwrap_or(16) as u8
        });
        self.put_vector(0, v);
    }

    /// PALIGNR: bytes `imm..imm + 16` of the 32-byte `dst:src` (src low), zeros past it.
    fn align_right(&mut self) {
        let n = usize::from(self.insn.immediate8());
        let (dst, src) = self.vector_pair();
        let zero = self.vector_zero();
        let v = if n < 16 {
            self.shuffle(src, dst, |i| (i + n) as u8)
        } else {
            self.shuffle(dst, zero, |i| (i + n - 16).min(16) as u8)
        };
        self.put_vector(0, v);
    }

    /// An all-zero I8X16.
    pub(super) fn vector_zero(&mut self) -> Value {
        let c = self
            .b
            .func
            .dfg
            .constants
            .insert(ConstantData::from(vec![0u8; 16]));
        self.b.ins().vconst(types::I8X16, c)
    }

    /// `byte` in every lane of an I8X16.
    fn vector_splat(&mut self, byte: u8) -> Value {
        let c = self
            .b
            .func
            .dfg
            .constants
            .insert(ConstantData::from(vec![byte; 16]));
        self.b.ins().vconst(types::I8X16, c)
    }
}

#[cfg(test)]
mod tests {
    use super::{lane_pick, unpack};

    #[test]
    fn unpack_low_bytes_interleaves_dst_and_src() {
        let low: Vec<u8> = (0..16).map(|i| unpack(i, 1, 0)).collect();
        assert_eq!(
            low,
            [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23]
        );
        let high_dq: Vec<u8> = (0..16).map(|i| unpack(i, 4, 8)).collect();
        assert_eq!(
            high_dq,
            [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31]
        );
    }

    #[test]
    fn pshufd_pattern_follows_the_immediate() {
        // 0x1b reverses the dwords.
        let v: Vec<u8> = (0..16).map(|i| lane_pick(i, 4, 0x1b)).collect();
        assert_eq!(v, [12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3]);
    }
}
