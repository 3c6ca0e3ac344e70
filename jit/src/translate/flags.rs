//! Lazy flags in translated code.
//!
//! The translator knows which instruction last set the arithmetic flags and holds its
//! operands in SSA values ([`Flags::Pending`]). A condition is computed from them directly
//! (`cmp a, b; jb` becomes one unsigned compare of `a` and `b`), and nothing is computed for
//! flags that are overwritten before anyone reads them. At exits and before helpers the
//! pending operation is stored in the interpreter's lazy form (`softvisor_cpu::flags`), so
//! both engines agree on RFLAGS whichever computes it.

use super::{state_flags, Translator};
use crate::helpers;
use cranelift_codegen::ir::condcodes::{CondCode, IntCC};
use cranelift_codegen::ir::{types, BlockArg, InstBuilder, Value};
use softvisor_cpu::flags::{CcOp, AF, ARITH, CF, OF, PF, SF, ZF};
use softvisor_cpu::offsets;

/// Where the arithmetic flags are.
#[derive(Clone, Copy)]
pub(super) enum Flags {
    /// In the CPU state (in whatever lazy form it holds).
    InMemory,
    /// Produced by an operation of this block.
    Pending(Pending),
    /// The six arithmetic flags computed outright (an I64 holding CF|PF|AF|ZF|SF|OF at
    /// their RFLAGS positions), as shifts produce them.
    Computed(Value),
}

/// A flag-producing operation of the block. `res`, `src1`, `src2` are masked to `size`.
#[derive(Clone, Copy)]
pub(super) struct Pending {
    pub op: CcOp,
    pub size: u32,
    pub res: Value,
    /// The first source, unless `src1_from_res` says how to get it from `res`: read it
    /// through [`Translator::src1`].
    src1: Value,
    /// `Some(k)`: the first source is `res + k` (masked), for a producer that wrote its
    /// result and has a constant second operand (INC, DEC, ADD or SUB of an immediate). It
    /// is then computed where an exit or a condition needs it, and the old register value
    /// is dead after the instruction: kept to every exit, it had held a host register
    /// through the block (`inc rsi` in a string loop: a callee-saved one, saved and
    /// restored at every entry).
    src1_from_res: Option<i64>,
    pub src2: Value,
    /// ADC/SBB: carry in (0/1). INC/DEC: the carry flag they keep (0/1), or `None` when
    /// it is in the CPU state (see `set_inc_dec_flags`).
    pub extra: Option<Value>,
    /// INC/DEC without `extra`: their carry is still that of the state's lazy operation,
    /// computed only where it is needed (else the state's RFLAGS `bits` hold it).
    pub carry_in_lazy_state: bool,
}

// `store_flags` writes the lazy operation and its size with one little-endian store.
const _: () = assert!(offsets::FLAGS_SIZE == offsets::FLAGS_OP + 2);
const _: () = assert!(cfg!(target_endian = "little"));

impl Translator<'_, '_> {
    /// Stores pending flags into the CPU state's lazy flags.
    pub(super) fn store_flags(&mut self, flags: &Flags) {
        let p = match *flags {
            Flags::InMemory => return,
            Flags::Computed(arith) => return self.store_computed(arith),
            Flags::Pending(p) => p,
        };
        // A carry still in the lazy state: read before the stores below replace it.
        let kept_cf = match (p.op, p.extra) {
            (CcOp::Inc | CcOp::Dec, None) if p.carry_in_lazy_state => Some(self.carry_in_memory()),
            (CcOp::Inc | CcOp::Dec, cf) => cf,
            _ => None,
        };
        let f = state_flags();
        // The operation and its size are adjacent u16s: one store of an immediate.
        let op_and_size = (p.op as u16 as i64) | (i64::from(p.size) << 16);
        let op_and_size = self.b.ins().iconst(types::I32, op_and_size);
        self.b
            .ins()
            .store(f, op_and_size, self.cpu, offsets::FLAGS_OP as i32);
        self.b
            .ins()
            .store(f, p.res, self.cpu, offsets::FLAGS_RES as i32);
        // What `LazyFlags::operands` reads: the sources of ADD and SUB follow from the
        // result and the second, INC's and DEC's from the result alone, and a logic
        // result's flags from the result alone.
        if matches!(p.op, CcOp::Add | CcOp::Adc | CcOp::Sub | CcOp::Sbb) {
            self.b
                .ins()
                .store(f, p.src2, self.cpu, offsets::FLAGS_SRC2 as i32);
        }
        if matches!(p.op, CcOp::Adc | CcOp::Sbb) {
            let src1 = self.src1(&p);
            self.b
                .ins()
                .store(f, src1, self.cpu, offsets::FLAGS_SRC1 as i32);
        }
        if let (CcOp::Adc | CcOp::Sbb, Some(cin)) = (p.op, p.extra) {
            self.b
                .ins()
                .store(f, cin, self.cpu, offsets::FLAGS_CARRY_IN as i32);
        }
        if let Some(cf) = kept_cf {
            // INC/DEC read CF from `bits`.
            self.merge_flag_bits(CF, cf);
        }
    }

    /// Replaces the `mask` bits of the state's RFLAGS `bits` with `value` (which has no
    /// bits outside `mask`).
    fn merge_flag_bits(&mut self, mask: u64, value: Value) {
        let f = state_flags();
        let bits = self
            .b
            .ins()
            .load(types::I64, f, self.cpu, offsets::FLAGS_BITS as i32);
        let kept = self.b.ins().band_imm_s(bits, !(mask as i64));
        let bits = self.b.ins().bor(kept, value);
        self.b
            .ins()
            .store(f, bits, self.cpu, offsets::FLAGS_BITS as i32);
    }

    /// Stores computed arithmetic flags: `bits` takes them and the lazy operation is none.
    fn store_computed(&mut self, arith: Value) {
        let f = state_flags();
        self.merge_flag_bits(ARITH, arith);
        let op = self.b.ins().iconst(types::I16, CcOp::Eflags as i64);
        self.b
            .ins()
            .store(f, op, self.cpu, offsets::FLAGS_OP as i32);
    }

    /// ZF|SF|PF of a `size`-byte result (masked), at their RFLAGS positions.
    pub(super) fn zsp(&mut self, res: Value, size: u32) -> Value {
        let p = Pending {
            op: CcOp::Logic,
            size,
            res,
            src1: res,
            src1_from_res: None,
            src2: res,
            extra: None,
            carry_in_lazy_state: false,
        };
        let zf = self.zf(&p);
        let sf = self.sf(&p);
        let pf = self.pf(&p);
        let mut out = self.constant(0);
        for (flag, bit) in [(zf, ZF), (sf, SF), (pf, PF)] {
            let wide = self.widen(flag, types::I64);
            let placed = self.b.ins().ishl_imm_s(wide, bit.trailing_zeros() as i64);
            out = self.b.ins().bor(out, placed);
        }
        out
    }

    /// Records computed arithmetic flags.
    pub(super) fn set_computed_flags(&mut self, arith: Value) {
        self.cache.flags = Flags::Computed(arith);
    }

    /// Records a flag-producing operation (operands already masked to `size`).
    pub(super) fn set_flags(&mut self, op: CcOp, size: u32, res: Value, src1: Value, src2: Value) {
        self.cache.flags = Flags::Pending(Pending {
            op,
            size,
            res,
            src1,
            src1_from_res: None,
            src2,
            extra: None,
            carry_in_lazy_state: false,
        });
    }

    /// [`Self::set_flags`] for ADD or SUB whose result was written, with `src2` a constant:
    /// the first source is recomputed from the result where needed (see
    /// [`Pending::src1_from_res`]).
    pub(super) fn set_flags_of_written(
        &mut self,
        op: CcOp,
        size: u32,
        res: Value,
        src1: Value,
        src2: Value,
    ) {
        let offset = match (op, self.constant_value(src2)) {
            (CcOp::Add, Some(k)) => Some(k.wrapping_neg()),
            (CcOp::Sub, Some(k)) => Some(k),
            _ => None,
        };
        self.set_flags(op, size, res, src1, src2);
        if let Flags::Pending(p) = &mut self.cache.flags {
            p.src1_from_res = offset;
        }
    }

    /// The first source of pending operation `p`.
    pub(super) fn src1(&mut self, p: &Pending) -> Value {
        match p.src1_from_res {
            None => p.src1,
            Some(k) => {
                let v = self.b.ins().iadd_imm_s(p.res, k);
                self.mask(v, p.size)
            }
        }
    }

    /// Records INC or DEC, which keep the carry flag of the previous producer.
    pub(super) fn set_inc_dec_flags(&mut self, op: CcOp, size: u32, res: Value) {
        // With the flags in the state and the next instruction overwriting them all, the
        // carry matters only on that instruction's way out to the interpreter: it is
        // computed there. Otherwise it goes into the state's `bits` at once, where INC/DEC
        // keep it: harmless under any other lazy operation, which ignores the arithmetic
        // flags in `bits`, and then no exit needs to compute it. (Computing it costs six
        // loads and a dozen values live at once: most of a short block's registers.)
        let mut carry_in_lazy_state = false;
        let cf = match self.cache.flags {
            Flags::InMemory if self.next_overwrites_flags => {
                carry_in_lazy_state = true;
                None
            }
            Flags::InMemory => {
                let cf = self.carry_in_memory();
                self.merge_flag_bits(CF, cf);
                None
            }
            _ => Some(self.carry()),
        };
        let one = self.constant(1);
        self.cache.flags = Flags::Pending(Pending {
            op,
            size,
            res,
            // The source is the result -1 (INC) or +1 (DEC): see `src1_from_res`.
            src1: res,
            src1_from_res: Some(if op == CcOp::Inc { -1 } else { 1 }),
            src2: one,
            extra: cf,
            carry_in_lazy_state,
        });
    }

    /// The six arithmetic flags at their RFLAGS positions (an I64), for instructions that
    /// change only some of them. Unused results cost nothing: Cranelift drops them.
    pub(super) fn arith_flags(&mut self) -> Value {
        let p = match self.cache.flags {
            Flags::Computed(arith) => return arith,
            Flags::InMemory => {
                let f = helpers::rflags as *const ();
                let ctx = self.ctx();
                let all = self
                    .call_helper(self.sigs.pointers_only, f, &[self.cpu, ctx])
                    .expect("rflags returns a value");
                return self.b.ins().band_imm_s(all, ARITH as i64);
            }
            Flags::Pending(p) => p,
        };
        let mut arith = self.zsp(p.res, p.size);
        if p.op != CcOp::Logic {
            // AF: the carry out of bit 3, for every arithmetic producer.
            let src1 = self.src1(&p);
            let x = self.b.ins().bxor(src1, p.src2);
            let x = self.b.ins().bxor(x, p.res);
            let af = self.b.ins().band_imm_s(x, AF as i64);
            arith = self.b.ins().bor(arith, af);
        }
        for (flag, bit) in [(self.pending_cf(&p), CF), (self.of(&p), OF)] {
            let wide = self.widen(flag, types::I64);
            let placed = self.b.ins().ishl_imm_s(wide, bit.trailing_zeros() as i64);
            arith = self.b.ins().bor(arith, placed);
        }
        arith
    }

    /// The current carry flag as an I64 0/1.
    pub(super) fn carry(&mut self) -> Value {
        match self.cache.flags {
            Flags::Computed(arith) => self.b.ins().band_imm_s(arith, CF as i64),
            Flags::Pending(p) => {
                let cf = self.pending_cf(&p);
                self.widen(cf, types::I64)
            }
            Flags::InMemory => self.carry_in_memory(),
        }
    }

    /// CF of the lazy flags in the CPU state, as an I64 0/1, computed inline as
    /// `LazyFlags::compute_arith` does. Where the pending operation keeps CF in the bits
    /// (materialized flags, INC, DEC) that is one load: a loop counting down with DEC
    /// finds its own DEC pending at every iteration, and evaluating every operation's
    /// carry there (six loads and a chain of selects, which kept five callee-saved
    /// registers busy) had been most of the kernel's `clear_user` loop. The other
    /// operations' carry is computed in a block of its own, out of the hot path.
    fn carry_in_memory(&mut self) -> Value {
        let f = state_flags();
        let cpu = self.cpu;
        let bits = self
            .b
            .ins()
            .load(types::I64, f, cpu, offsets::FLAGS_BITS as i32);
        let op = self
            .b
            .ins()
            .uload16(types::I32, f, cpu, offsets::FLAGS_OP as i32);
        let in_bits = self.b.ins().band_imm_s(bits, CF as i64);
        // ADD, ADC, SUB, SBB and the logic group are consecutive.
        const _: () = assert!(
            CcOp::Adc as u32 == CcOp::Add as u32 + 1
                && CcOp::Sub as u32 == CcOp::Add as u32 + 2
                && CcOp::Sbb as u32 == CcOp::Add as u32 + 3
                && CcOp::Logic as u32 == CcOp::Add as u32 + 4
        );
        let rebased = self.b.ins().iadd_imm_s(op, -(CcOp::Add as i64));
        let computed = self.b.ins().icmp_imm_s(
            IntCC::UnsignedLessThanOrEqual,
            rebased,
            i64::from(CcOp::Logic as u32 - CcOp::Add as u32),
        );
        let compute = self.b.create_block();
        self.b.set_cold_block(compute);
        let merge = self.b.create_block();
        let cf = self.b.append_block_param(merge, types::I64);
        self.b
            .ins()
            .brif(computed, compute, &[], merge, &[BlockArg::Value(in_bits)]);
        self.b.switch_to_block(compute);
        let mut load = |offset: usize| self.b.ins().load(types::I64, f, cpu, offset as i32);
        let res = load(offsets::FLAGS_RES);
        let src1 = load(offsets::FLAGS_SRC1);
        let src2 = load(offsets::FLAGS_SRC2);
        let carry_in = load(offsets::FLAGS_CARRY_IN);
        let b = &mut self.b;
        // ADD carries when the result is below either source; SUB borrows when its first
        // source, the result plus the second at the operation's size, is below the second
        // (only ADC and SBB store their first source: `LazyFlags::operands`).
        let add = b.ins().icmp(IntCC::UnsignedLessThan, res, src2);
        let size = b
            .ins()
            .uload16(types::I64, f, cpu, offsets::FLAGS_SIZE as i32);
        let bits = b.ins().ishl_imm_s(size, 3);
        let width = b.ins().iconst(types::I64, 64);
        let unused = b.ins().isub(width, bits);
        let all = b.ins().iconst(types::I64, -1);
        let mask = b.ins().ushr(all, unused);
        let sum = b.ins().iadd(res, src2);
        let sub_src1 = b.ins().band(sum, mask);
        let sub = b.ins().icmp(IntCC::UnsignedLessThan, sub_src1, src2);
        let adc_plain = b.ins().icmp(IntCC::UnsignedLessThan, res, src1);
        let adc_carry = b.ins().icmp(IntCC::UnsignedLessThanOrEqual, res, src1);
        let sbb_plain = b.ins().icmp(IntCC::UnsignedLessThan, src1, src2);
        let sbb_borrow = b.ins().icmp(IntCC::UnsignedLessThanOrEqual, src1, src2);
        let cin = b.ins().icmp_imm_s(IntCC::NotEqual, carry_in, 0);
        let adc = b.ins().select(cin, adc_carry, adc_plain);
        let sbb = b.ins().select(cin, sbb_borrow, sbb_plain);
        // The logic group's CF is 0.
        let mut carry = self.b.ins().iconst(types::I64, 0);
        for (kind, value) in [
            (CcOp::Add, add),
            (CcOp::Adc, adc),
            (CcOp::Sub, sub),
            (CcOp::Sbb, sbb),
        ] {
            let is = self.b.ins().icmp_imm_s(IntCC::Equal, op, kind as i64);
            let wide = self.widen(value, types::I64);
            carry = self.b.ins().select(is, wide, carry);
        }
        self.b.ins().jump(merge, &[BlockArg::Value(carry)]);
        self.b.switch_to_block(merge);
        cf
    }

    /// Condition code `cc` (the low nibble of Jcc) as an I8 boolean.
    pub(super) fn condition(&mut self, cc: u8) -> Value {
        let p = match self.cache.flags {
            Flags::Pending(p) => p,
            Flags::Computed(arith) => return self.computed_condition(arith, cc),
            Flags::InMemory => {
                let f = helpers::condition as *const ();
                let cc = self.constant(u64::from(cc));
                let ctx = self.ctx();
                let r = self
                    .call_helper(self.sigs.condition, f, &[self.cpu, ctx, cc])
                    .expect("condition returns a value");
                return self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
            }
        };
        let negate = cc & 1 != 0;
        // One compare with the condition itself (negated conditions by the complementary
        // compare rather than a compare and a NOT): a select or branch on it then lowers
        // to one `cmp` with `cmovcc`/`jcc`.
        let direct = |c: IntCC| if negate { c.complement() } else { c };
        let (cond, inverted) = match (p.op, cc >> 1) {
            (CcOp::Sub, 1) => {
                let a = self.src1(&p);
                let c = direct(IntCC::UnsignedLessThan);
                (self.b.ins().icmp(c, a, p.src2), negate)
            }
            // (A first source derived from the result: ZF from the result, below.)
            (CcOp::Sub, 2) if p.src1_from_res.is_none() => (
                self.b.ins().icmp(direct(IntCC::Equal), p.src1, p.src2),
                negate,
            ),
            (CcOp::Sub, 3) => {
                let a = self.src1(&p);
                let c = direct(IntCC::UnsignedLessThanOrEqual);
                (self.b.ins().icmp(c, a, p.src2), negate)
            }
            (CcOp::Sub, 6 | 7) => {
                let a = self.src1(&p);
                let a = self.sign_extend(a, p.size);
                let b = self.sign_extend(p.src2, p.size);
                let cc_ = if cc >> 1 == 6 {
                    IntCC::SignedLessThan
                } else {
                    IntCC::SignedLessThanOrEqual
                };
                (self.b.ins().icmp(direct(cc_), a, b), negate)
            }
            (CcOp::Logic, 0 | 1) => (self.b.ins().iconst(types::I8, 0), false),
            (CcOp::Logic, 3) => (self.zf(&p), false),
            (CcOp::Logic, 6) => (self.sf(&p), false),
            (CcOp::Logic, 7) => {
                let zf = self.zf(&p);
                let sf = self.sf(&p);
                (self.b.ins().bor(zf, sf), false)
            }
            (_, 2) => {
                let r = self.b.ins().icmp_imm_s(direct(IntCC::Equal), p.res, 0);
                (r, negate)
            }
            (_, base) => (self.generic_condition(&p, base), false),
        };
        if negate != inverted {
            self.b.ins().bxor_imm_s(cond, 1)
        } else {
            cond
        }
    }

    /// Condition `cc` from computed flag bits.
    fn computed_condition(&mut self, arith: Value, cc: u8) -> Value {
        let flag = |t: &mut Self, bit: u64| {
            let v = t.b.ins().band_imm_s(arith, bit as i64);
            t.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
        };
        let cond = match cc >> 1 {
            0 => flag(self, OF),
            1 => flag(self, CF),
            2 => flag(self, ZF),
            3 => {
                let v = self.b.ins().band_imm_s(arith, (CF | ZF) as i64);
                self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
            }
            4 => flag(self, SF),
            5 => flag(self, PF),
            base => {
                let sf = flag(self, SF);
                let of = flag(self, OF);
                let lt = self.b.ins().bxor(sf, of);
                if base == 6 {
                    lt
                } else {
                    let zf = flag(self, ZF);
                    self.b.ins().bor(lt, zf)
                }
            }
        };
        if cc & 1 != 0 {
            self.b.ins().bxor_imm_s(cond, 1)
        } else {
            cond
        }
    }

    /// A condition from the individual flags of `p`.
    fn generic_condition(&mut self, p: &Pending, base: u8) -> Value {
        match base {
            0 => self.of(p),
            1 => self.pending_cf(p),
            2 => self.zf(p),
            3 => {
                let cf = self.pending_cf(p);
                let zf = self.zf(p);
                self.b.ins().bor(cf, zf)
            }
            4 => self.sf(p),
            5 => self.pf(p),
            6 => {
                let sf = self.sf(p);
                let of = self.of(p);
                self.b.ins().bxor(sf, of)
            }
            _ => {
                let sf = self.sf(p);
                let of = self.of(p);
                let lt = self.b.ins().bxor(sf, of);
                let zf = self.zf(p);
                self.b.ins().bor(lt, zf)
            }
        }
    }

    fn zf(&mut self, p: &Pending) -> Value {
        self.b.ins().icmp_imm_s(IntCC::Equal, p.res, 0)
    }

    fn sf(&mut self, p: &Pending) -> Value {
        let bit = self.b.ins().ushr_imm_s(p.res, i64::from(p.size * 8 - 1));
        let bit = self.b.ins().band_imm_s(bit, 1);
        self.b.ins().ireduce(types::I8, bit)
    }

    fn pf(&mut self, p: &Pending) -> Value {
        let low = self.b.ins().band_imm_s(p.res, 0xff);
        let ones = self.b.ins().popcnt(low);
        let odd = self.b.ins().band_imm_s(ones, 1);
        self.b.ins().icmp_imm_s(IntCC::Equal, odd, 0)
    }

    fn pending_cf(&mut self, p: &Pending) -> Value {
        let (a, b, res) = (self.src1(p), p.src2, p.res);
        let i = self.b.ins();
        match p.op {
            CcOp::Add => i.icmp(IntCC::UnsignedLessThan, res, a),
            CcOp::Sub => i.icmp(IntCC::UnsignedLessThan, a, b),
            CcOp::Adc | CcOp::Sbb => {
                let cin = p.extra.expect("ADC/SBB carry in");
                let (x, y) = if p.op == CcOp::Adc { (res, a) } else { (a, b) };
                let le = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, x, y);
                let lt = self.b.ins().icmp(IntCC::UnsignedLessThan, x, y);
                let has = self.b.ins().icmp_imm_s(IntCC::NotEqual, cin, 0);
                self.b.ins().select(has, le, lt)
            }
            CcOp::Inc | CcOp::Dec => {
                let cf = match p.extra {
                    Some(cf) => cf,
                    None if p.carry_in_lazy_state => self.carry_in_memory(),
                    None => {
                        let f = state_flags();
                        let bits =
                            self.b
                                .ins()
                                .load(types::I64, f, self.cpu, offsets::FLAGS_BITS as i32);
                        self.b.ins().band_imm_s(bits, CF as i64)
                    }
                };
                self.b.ins().icmp_imm_s(IntCC::NotEqual, cf, 0)
            }
            CcOp::Logic | CcOp::Eflags => i.iconst(types::I8, 0),
        }
    }

    fn of(&mut self, p: &Pending) -> Value {
        let (a, b, res) = (self.src1(p), p.src2, p.res);
        let x = match p.op {
            CcOp::Add | CcOp::Adc | CcOp::Inc => {
                let l = self.b.ins().bxor(a, res);
                let r = self.b.ins().bxor(b, res);
                self.b.ins().band(l, r)
            }
            CcOp::Sub | CcOp::Sbb | CcOp::Dec => {
                let l = self.b.ins().bxor(a, b);
                let r = self.b.ins().bxor(a, res);
                self.b.ins().band(l, r)
            }
            CcOp::Logic | CcOp::Eflags => return self.b.ins().iconst(types::I8, 0),
        };
        let bit = self.b.ins().ushr_imm_s(x, i64::from(p.size * 8 - 1));
        let bit = self.b.ins().band_imm_s(bit, 1);
        self.b.ins().ireduce(types::I8, bit)
    }
}
