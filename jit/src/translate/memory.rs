//! Memory operands in translated code: the effective address, the segment base, and the
//! access itself through the softmmu TLB inline.
//!
//! The fast path indexes the TLB set of the block's privilege, compares the page tag,
//! checks the access stays inside the page, adds the host addend and loads or stores
//! directly (little-endian, no alignment assumed, so any host works). A miss, an MMIO page,
//! a tracked code page, a page-crossing access or a non-canonical address calls the slow
//! path helper instead, which goes through the same `Memory` the interpreter uses and
//! makes plain RAM accesses only; anything else the interpreter redoes.

use super::{size_mask, state_flags, CrossingTail, Translator};
use crate::context::{SLOW_VALUE, STATUS};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::BlockArg;
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Type, Value};
use iced_x86::Register;
use softvisor_cpu::offsets;
use softvisor_mmu::tlb::{TlbEntry, TLB_ENTRIES};
use softvisor_mmu::PAGE_SIZE;
const _: () = assert!(core::mem::size_of::<TlbEntry>().is_power_of_two());

/// A TLB entry's address as its loads take it: a base and a constant offset.
#[derive(Clone, Copy)]
struct EntryAddress {
    base: Value,
    offset: i32,
}

/// What a TLB probe covers.
#[derive(Clone, Copy)]
pub(super) enum Extent {
    /// `n` bytes (1 to 4096).
    Bytes(u32),
    /// A run of as many bytes as the value (1 to 4096).
    Run(Value),
    /// 16 bytes that must be 16-byte aligned: a misaligned access misses too.
    Aligned16,
}

/// Flags for guest memory through a host pointer: may be unaligned, never traps (the
/// TLB only maps RAM), always little-endian.
fn guest_flags() -> MemFlagsData {
    MemFlagsData::new()
        .with_notrap()
        .with_endianness(Endianness::Little)
}

/// Which TLB tag an access compares.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

impl Translator<'_, '_> {
    /// The linear address of the current instruction's memory operand (64-bit mode: only
    /// FS and GS add a base).
    pub(super) fn mem_linear(&mut self) -> Value {
        let insn = self.insn;
        // Terms are added only when present: quick compiles do no constant folding.
        let mut offset: Option<Value> = None;
        let mut add = |t: &mut Self, v: Value| {
            offset = Some(match offset {
                Some(o) => t.b.ins().iadd(o, v),
                None => v,
            });
        };
        match insn.memory_base() {
            Register::None | Register::RIP | Register::EIP => {}
            base => {
                let v = self.read_reg(base);
                add(self, v);
            }
        }
        let index = insn.memory_index();
        if index != Register::None {
            let v = self.read_reg(index);
            let scaled = match insn.memory_index_scale() {
                1 => v,
                scale => self
                    .b
                    .ins()
                    .ishl_imm_s(v, i64::from(scale.trailing_zeros())),
            };
            add(self, scaled);
        }
        let displacement = insn.memory_displacement64() as i64;
        let mut offset = match offset {
            Some(o) => self.add_offset(o, displacement),
            None => self.b.ins().iconst(types::I64, displacement),
        };
        if self.address_size() == 4 {
            offset = self.mask(offset, 4);
        }
        match insn.memory_segment() {
            Register::FS | Register::GS => {
                let n = if insn.memory_segment() == Register::FS {
                    4
                } else {
                    5
                };
                let base = self.b.ins().load(
                    types::I64,
                    state_flags(),
                    self.cpu,
                    offsets::seg_base(n) as i32,
                );
                self.b.ins().iadd(offset, base)
            }
            _ => offset,
        }
    }

    /// Address size of the memory operand in 64-bit mode (4 with an 0x67 prefix, else 8),
    /// decided as the interpreter decides it.
    fn address_size(&self) -> u32 {
        let insn = &self.insn;
        let reg = if insn.memory_base() != Register::None {
            insn.memory_base()
        } else {
            insn.memory_index()
        };
        match reg {
            // No register: iced reports the address size as the displacement size.
            Register::None if insn.memory_displ_size() == 4 => 4,
            Register::None => 8,
            Register::EIP => 4,
            r if r.is_gpr32() => 4,
            _ => 8,
        }
    }

    /// Loads `size` bytes at `linear`, zero-extended to an I64.
    pub(super) fn load(&mut self, linear: Value, size: u32) -> Value {
        self.access(linear, size, Access::Read, None)
    }

    /// Stores the low `size` bytes of `value` at `linear`.
    pub(super) fn store(&mut self, linear: Value, size: u32, value: Value) {
        self.access(linear, size, Access::Write, Some(value));
    }

    /// One access: inline TLB probe, slow path on a miss. The slow path makes the access
    /// when it is plain RAM, else (a fault, MMIO, a code-page write) redoes the
    /// instruction in the interpreter with nothing done; so no access of translated code
    /// has a side effect the rest of the block would have to stop for.
    fn access(&mut self, linear: Value, size: u32, kind: Access, value: Option<Value>) -> Value {
        let merge = self.b.create_block();
        // A load's value comes from either way; a store's is the one stored, defined
        // before the split (passed through the merge, quick compiles had copied it at
        // every store and often kept the copy in a callee-saved register).
        let result = match value {
            Some(v) => v,
            None => self.b.append_block_param(merge, types::I64),
        };
        let merge_args = |v: Value| -> Vec<BlockArg> {
            if value.is_some() {
                Vec::new()
            } else {
                vec![BlockArg::Value(v)]
            }
        };
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        if let Some(tlb) = self.tlb {
            let host = self.tlb_hit(tlb, linear, Extent::Bytes(size), kind, slow);
            let loaded = match value {
                Some(v) => {
                    self.host_store(host, size, v);
                    v
                }
                None => self.host_load(host, size),
            };
            self.b.ins().jump(merge, &merge_args(loaded));
        } else {
            self.b.ins().jump(slow, &[]);
        }
        self.b.switch_to_block(slow);
        let linear = self.recomputed(linear);
        let size_v = self.b.ins().iconst(types::I64, i64::from(size));
        let ctx = self.ctx();
        let slow_value = match value {
            Some(v) => {
                let f = self.slow.store.cast::<()>();
                self.b.ins().store(state_flags(), v, ctx, SLOW_VALUE);
                self.call_helper(self.sigs.store, f, &[self.cpu, ctx, linear, size_v]);
                v
            }
            None => {
                let f = self.slow.load.cast::<()>();
                self.call_helper(self.sigs.load, f, &[self.cpu, ctx, linear, size_v]);
                self.b
                    .ins()
                    .load(types::I64, state_flags(), ctx, SLOW_VALUE)
            }
        };
        // OK is 0: anything else is REDO.
        let st = self.b.ins().load(types::I64, state_flags(), ctx, STATUS);
        let redo = self.redo_block();
        self.b
            .ins()
            .brif(st, redo, &[], merge, &merge_args(slow_value));
        self.b.switch_to_block(merge);
        if value.is_none() && size < 8 {
            // Both ways zero-extend: a 32-bit register written with it needs no second
            // extension (`mov (%r10,%rax),%eax; mov %eax,%eax` had been).
            self.narrow_loads[result] = size as u8;
        }
        result
    }

    /// The inline TLB probe for `extent` at `linear`: a hit continues in a new current
    /// block and returns the host address; a miss, or an access crossing the page, goes to
    /// `miss`.
    pub(super) fn tlb_hit(
        &mut self,
        tlb: Value,
        linear: Value,
        extent: Extent,
        kind: Access,
        miss: cranelift_codegen::ir::Block,
    ) -> Value {
        let entry = self.tlb_entry(tlb, linear);
        let tag = self.tlb_tag(entry, kind);
        // The page of the last byte: an access crossing into the next page compares that
        // page with the tag of the first byte's entry, which never holds it.
        let hit = match (extent, self.constant_value(linear)) {
            // A fixed address (RIP-relative): the page is known now (quick compiles do no
            // constant folding).
            (Extent::Bytes(size), Some(address)) => {
                let page = address.wrapping_add(i64::from(size - 1)) & !0xfff;
                self.b.ins().icmp_imm_s(IntCC::Equal, tag, page)
            }
            (Extent::Bytes(size), None) => {
                let last = self.add_offset(linear, i64::from(size - 1));
                self.same_page(tag, last)
            }
            (Extent::Run(bytes), _) => {
                let end = self.b.ins().iadd(linear, bytes);
                let last = self.b.ins().iadd_imm_s(end, -1);
                self.same_page(tag, last)
            }
            // One test of `tag ^ linear` against the page bits and the low four (an aligned
            // operand cannot cross the page), where a separate alignment test and branch
            // had come first.
            (Extent::Aligned16, _) => {
                let differ = self.b.ins().bxor(tag, linear);
                let page_or_misaligned = self.b.ins().band_imm_s(differ, !(PAGE_SIZE as i64 - 16));
                self.b.ins().icmp_imm_s(IntCC::Equal, page_or_misaligned, 0)
            }
        };
        self.host_address_if(hit, entry, linear, miss)
    }

    /// Whether `tag` is the page of `last`: `(tag ^ last) < 4096`, which needs no copy of
    /// `last` to mask (`last & !0xfff == tag` had: x64 masks in place). An invalid tag
    /// never passes (see `softvisor_mmu::tlb::invalid_tag`).
    fn same_page(&mut self, tag: Value, last: Value) -> Value {
        let differ = self.b.ins().bxor(tag, last);
        self.b
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThan, differ, PAGE_SIZE as i64)
    }

    /// The read or write tag of TLB entry `entry`.
    fn tlb_tag(&mut self, entry: EntryAddress, kind: Access) -> Value {
        let tag_offset = match kind {
            Access::Read => core::mem::offset_of!(TlbEntry, read_tag),
            Access::Write => core::mem::offset_of!(TlbEntry, write_tag),
        } as i32;
        self.b.ins().load(
            types::I64,
            state_flags(),
            entry.base,
            entry.offset + tag_offset,
        )
    }

    /// Goes to `miss` unless `hit`; else continues in a new current block with the host
    /// address of `linear` through `entry`.
    fn host_address_if(
        &mut self,
        hit: Value,
        entry: EntryAddress,
        linear: Value,
        miss: cranelift_codegen::ir::Block,
    ) -> Value {
        let fast = self.b.create_block();
        self.b.ins().brif(hit, fast, &[], miss, &[]);
        self.b.switch_to_block(fast);
        let addend = self.b.ins().load(
            types::I64,
            state_flags(),
            entry.base,
            entry.offset + core::mem::offset_of!(TlbEntry, addend) as i32,
        );
        self.b.ins().iadd(linear, addend)
    }

    /// A 16-byte access (an I8X16 `value` to store, or the loaded vector). Only the TLB
    /// fast path runs inline: a miss, a page crossing, an MMIO or code page, or a
    /// misaligned operand that must be aligned redoes the instruction in the interpreter,
    /// which makes the access (or raises the fault) with nothing half-done.
    pub(super) fn access_vector(
        &mut self,
        linear: Value,
        aligned: bool,
        value: Option<Value>,
    ) -> Value {
        let kind = if value.is_some() {
            Access::Write
        } else {
            Access::Read
        };
        let redo = self.redo_block();
        let Some(tlb) = self.tlb else {
            // Without the inline TLB every access takes the interpreter (the SSE translator
            // does not take memory operands then; this keeps the function total).
            self.b.ins().jump(redo, &[]);
            let dead = self.b.create_block();
            self.b.switch_to_block(dead);
            return self.vector_zero();
        };
        let extent = if aligned {
            Extent::Aligned16
        } else {
            Extent::Bytes(16)
        };
        let host = self.tlb_hit(tlb, linear, extent, kind, redo);
        let f = guest_flags();
        match value {
            Some(v) => {
                self.b.ins().store(f, v, host, 0);
                v
            }
            None => self.b.ins().load(types::I8X16, f, host, 0),
        }
    }

    /// Address of the TLB entry for `linear` in the block's privilege set. The set's
    /// offset stays a constant for the entry's loads to carry: added to the TLB pointer
    /// first, it had been an `lea` at every probe (the tag's load folded into the XOR
    /// takes `base + index` but not the sum's constant).
    fn tlb_entry(&mut self, tlb: Value, linear: Value) -> EntryAddress {
        const ENTRY_SHIFT: i64 = core::mem::size_of::<TlbEntry>().trailing_zeros() as i64;
        if let Some(address) = self.constant_value(linear) {
            let offset = self.fixed_entry_offset(address as u64);
            return EntryAddress {
                base: tlb,
                offset: offset as i32,
            };
        }
        let set = ((self.mode.tlb_mode * TLB_ENTRIES) as i64) << ENTRY_SHIFT;
        // The page number's low bits, already scaled to the entry size. A rotation, not a
        // shift: the bits it brings to the top are masked off all the same, and x64 with
        // BMI2 rotates into another register (`rorx`), where a shift overwrites its
        // operand, which the access still needs (a copy first, at every probe).
        let scaled = self.b.ins().rotr_imm_s(linear, 12 - ENTRY_SHIFT);
        let index = self
            .b
            .ins()
            .band_imm_s(scaled, ((TLB_ENTRIES - 1) as i64) << ENTRY_SHIFT);
        EntryAddress {
            base: self.b.ins().iadd(tlb, index),
            offset: set as i32,
        }
    }

    /// Guards an instruction crossing into the next page, decoded from `tail` there: goes
    /// on only while that page is mapped executable (its TLB entry's fetch tag) and still
    /// holds those bytes, else redoes the instruction in the interpreter, which fetches it
    /// afresh. The block tracks only its first page, so this check stands in for both the
    /// second page's mapping and writes to it.
    pub(super) fn guard_crossing_tail(&mut self, tlb: Value, tail: &CrossingTail) {
        let page = tail.page;
        let entry = self.fixed_entry_offset(page) as i32;
        let f = state_flags();
        let exec_tag = core::mem::offset_of!(TlbEntry, exec_tag) as i32;
        let tag = self.b.ins().load(types::I64, f, tlb, entry + exec_tag);
        let missed = self.b.ins().icmp_imm_s(IntCC::NotEqual, tag, page as i64);
        self.redo_if(missed);
        let addend = core::mem::offset_of!(TlbEntry, addend) as i32;
        let addend = self.b.ins().load(types::I64, f, tlb, entry + addend);
        let host = self.b.ins().iadd_imm_s(addend, page as i64);
        // Whole words from the page's start (inside the page), masked to the tail.
        for (word, chunk) in tail.bytes[..tail.len].chunks(8).enumerate() {
            let mut expected = [0u8; 8];
            expected[..chunk.len()].copy_from_slice(chunk);
            let mask = size_mask(chunk.len() as u32);
            let held = self
                .b
                .ins()
                .load(types::I64, guest_flags(), host, (word * 8) as i32);
            let held = if chunk.len() < 8 {
                self.b.ins().band_imm_s(held, mask as i64)
            } else {
                held
            };
            let expected = u64::from_le_bytes(expected) as i64;
            let changed = self.b.ins().icmp_imm_s(IntCC::NotEqual, held, expected);
            self.redo_if(changed);
        }
    }

    /// Offset from the TLB's start of the entry for the fixed address `linear` in the
    /// block's privilege set.
    fn fixed_entry_offset(&self, linear: u64) -> i64 {
        let slot = self.mode.tlb_mode * TLB_ENTRIES + softvisor_mmu::tlb::tlb_index(linear);
        (slot * core::mem::size_of::<TlbEntry>()) as i64
    }

    /// The value of `v` when an `iconst` defines it.
    pub(super) fn constant_value(&self, v: Value) -> Option<i64> {
        use cranelift_codegen::ir::{InstructionData, Opcode, ValueDef};
        let dfg = &self.b.func.dfg;
        match dfg.value_def(v) {
            ValueDef::Result(inst, 0) => match dfg.insts[inst] {
                InstructionData::UnaryImm {
                    opcode: Opcode::Iconst,
                    imm,
                } => Some(imm.bits()),
                _ => None,
            },
            _ => None,
        }
    }

    /// `v + offset`, folded into `v`'s own constant term when it has one: quick compiles
    /// do no constant folding, and x64's address patterns take one constant, so
    /// `(base + displacement) + (size - 1)` or a second PUSH's `(rsp - 8) - 8` had put the
    /// other in a register.
    pub(super) fn add_offset(&mut self, v: Value, offset: i64) -> Value {
        if offset == 0 {
            return v;
        }
        if let Some(k) = self.constant_value(v) {
            return self.b.ins().iconst(types::I64, k.wrapping_add(offset));
        }
        match self.displaced(v) {
            Some((base, k)) if k.wrapping_add(offset) == 0 => base,
            Some((base, k)) => self.b.ins().iadd_imm_s(base, k.wrapping_add(offset)),
            None => self.b.ins().iadd_imm_s(v, offset),
        }
    }

    /// `v` computed again in the current block when it is `base + k`: for a cold path, so
    /// that the hot path's copy of an address dies at its last use there. (The probe's
    /// index shift overwrites its operand: an address also live into the slow path had
    /// been copied first, at every access.)
    fn recomputed(&mut self, v: Value) -> Value {
        match self.displaced(v) {
            Some((base, k)) => self.b.ins().iadd_imm_s(base, k),
            None => v,
        }
    }

    /// `(base, k)` when `v` is the I64 `base + k` for a constant `k`.
    fn displaced(&self, v: Value) -> Option<(Value, i64)> {
        use cranelift_codegen::ir::{InstructionData, Opcode, ValueDef};
        let dfg = &self.b.func.dfg;
        if dfg.value_type(v) != types::I64 {
            return None;
        }
        match dfg.value_def(v) {
            ValueDef::Result(inst, 0) => match dfg.insts[inst] {
                InstructionData::Binary {
                    opcode: Opcode::Iadd,
                    args: [a, b],
                } => match (self.constant_value(a), self.constant_value(b)) {
                    (_, Some(k)) => Some((a, k)),
                    (Some(k), None) => Some((b, k)),
                    (None, None) => None,
                },
                _ => None,
            },
            _ => None,
        }
    }

    pub(super) fn host_load(&mut self, host: Value, size: u32) -> Value {
        let f = guest_flags();
        let i = self.b.ins();
        match size {
            1 => i.uload8(types::I64, f, host, 0),
            2 => i.uload16(types::I64, f, host, 0),
            4 => i.uload32(f, host, 0),
            _ => i.load(types::I64, f, host, 0),
        }
    }

    pub(super) fn host_store(&mut self, host: Value, size: u32, v: Value) {
        let f = guest_flags();
        if let Some(c) = self.constant_value(v) {
            // A constant of the store's own width: x64 stores it as an immediate, where
            // the narrowing stores take a register (`mov $0x1,%esi; mov %sil,(..)`).
            let ty = Type::int_with_byte_size(size as u16).expect("access size");
            let c = self.b.ins().iconst(ty, c & size_mask(size) as i64);
            self.b.ins().store(f, c, host, 0);
            return;
        }
        let i = self.b.ins();
        match size {
            1 => i.istore8(f, v, host, 0),
            2 => i.istore16(f, v, host, 0),
            4 => i.istore32(f, v, host, 0),
            _ => i.store(f, v, host, 0),
        };
    }

    /// Reads operand `op` of the current instruction: a GPR, an immediate (masked to the
    /// operand size) or memory. `None` for anything else.
    pub(super) fn read_operand(&mut self, op: u32, size: u32) -> Option<Value> {
        use iced_x86::OpKind;
        let insn = self.insn;
        Some(match insn.op_kind(op) {
            OpKind::Register if super::is_gpr(insn.op_register(op)) => {
                self.read_reg(insn.op_register(op))
            }
            OpKind::Memory => {
                let linear = self.mem_linear();
                self.load(linear, size)
            }
            kind if softvisor_cpu::interp::is_integer_immediate(kind) => self
                .b
                .ins()
                .iconst(types::I64, (insn.immediate(op) & size_mask(size)) as i64),
            _ => return None,
        })
    }

    /// An I64 constant.
    pub(super) fn constant(&mut self, v: u64) -> Value {
        self.b.ins().iconst(types::I64, v as i64)
    }

    /// A boolean (I8) as an I64 0/1.
    pub(super) fn widen(&mut self, v: Value, to: Type) -> Value {
        self.b.ins().uextend(to, v)
    }
}
