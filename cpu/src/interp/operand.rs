//! Operand access for the interpreter: registers, immediates, memory operands (effective
//! address, segment base, address-size wrap, canonical check) and the stack.

use crate::flags::size_mask;
use crate::{CpuState, Exception, SegReg};
use iced_x86::{Instruction, MemorySize, OpKind, Register};
use softvisor_mmu::Memory;

/// Everything an instruction handler needs: the CPU, memory and the decoded instruction.
pub(crate) struct Ctx<'a> {
    /// The CPU being stepped. RIP already points at the next instruction.
    pub cpu: &'a mut CpuState,
    /// Guest linear memory.
    pub mem: &'a mut dyn Memory,
    /// The machine: port I/O, platform MSRs, the task-priority register.
    pub platform: &'a mut dyn crate::Platform,
    /// The instruction being executed.
    pub insn: &'a Instruction,
    /// Set by handlers whose #UD is architectural (UD2, bad LOCK), so it is not logged as
    /// an unimplemented instruction.
    pub known_ud: bool,
}

/// Interpreter result type.
pub(crate) type Exec<T = ()> = Result<T, Exception>;

/// Width in bytes of an iced register.
#[inline]
pub(crate) fn reg_size(reg: Register) -> u32 {
    reg.size() as u32
}

impl Ctx<'_> {
    /// A #UD that the ISA defines for this encoding (not an unimplemented instruction).
    pub fn architectural_ud<T>(&mut self) -> Exec<T> {
        self.known_ud = true;
        Err(Exception::InvalidOpcode)
    }

    /// Size in bytes of operand `op` (register width, memory width, or for an immediate
    /// the size of operand 0).
    #[inline]
    pub fn op_size(&self, op: u32) -> u32 {
        match self.insn.op_kind(op) {
            OpKind::Register => reg_size(self.insn.op_register(op)),
            OpKind::Memory => self.insn.memory_size().size() as u32,
            _ => self.op_size(0),
        }
    }

    /// Reads integer operand `op`, zero-extended (immediates come sign-extended to the
    /// operand size by the decoder and are masked to it here).
    #[inline]
    pub fn read(&mut self, op: u32) -> Exec<u64> {
        match self.insn.op_kind(op) {
            OpKind::Register => Ok(self.cpu.reg(self.insn.op_register(op))),
            OpKind::Memory => {
                let addr = self.mem_addr()?;
                let size = self.insn.memory_size().size();
                self.read_mem(addr, size)
            }
            kind if is_integer_immediate(kind) => {
                Ok(self.insn.immediate(op) & size_mask(self.op_size(0)))
            }
            OpKind::Immediate8_2nd => Ok(u64::from(self.insn.immediate8_2nd())),
            _ => Err(Exception::InvalidOpcode),
        }
    }

    /// Writes integer operand `op` (register with x86 merge rules, or memory).
    #[inline]
    pub fn write(&mut self, op: u32, value: u64) -> Exec {
        match self.insn.op_kind(op) {
            OpKind::Register => {
                self.cpu.set_reg(self.insn.op_register(op), value);
                Ok(())
            }
            OpKind::Memory => {
                let addr = self.mem_addr_for_write()?;
                let size = self.insn.memory_size().size();
                self.write_mem(addr, size, value)
            }
            _ => Err(Exception::InvalidOpcode),
        }
    }

    /// Size in bytes of the address computation (2, 4 or 8).
    pub fn address_size(&self) -> u32 {
        let width = |reg: Register| match reg {
            Register::None => 0,
            Register::RIP => 8,
            Register::EIP => 4,
            r => reg_size(r),
        };
        let size = width(self.insn.memory_base()).max(width(self.insn.memory_index()));
        if size != 0 {
            size
        } else if self.insn.memory_displ_size() >= 2 {
            self.insn.memory_displ_size()
        } else {
            self.cpu.bitness() / 8
        }
    }

    /// The offset (before the segment base) of the explicit memory operand.
    pub fn mem_offset(&self) -> u64 {
        let insn = self.insn;
        let mut offset = insn.memory_displacement64();
        match insn.memory_base() {
            Register::None | Register::RIP | Register::EIP => {}
            base => offset = offset.wrapping_add(self.cpu.reg(base)),
        }
        let index = insn.memory_index();
        if index != Register::None {
            offset = offset.wrapping_add(
                self.cpu
                    .reg(index)
                    .wrapping_mul(u64::from(insn.memory_index_scale())),
            );
        }
        offset & size_mask(self.address_size())
    }

    /// The linear address of the explicit memory operand, checked for its whole size.
    #[inline]
    pub fn mem_addr(&self) -> Exec<u64> {
        let size = self.insn.memory_size().size().max(1) as u64;
        self.linear_sized(self.insn.memory_segment(), self.mem_offset(), size)
    }

    /// [`Ctx::mem_addr`] for a store: outside 64-bit mode the segment must also be a
    /// writable data segment (#GP(0), or #SS(0) for SS).
    pub fn mem_addr_for_write(&self) -> Exec<u64> {
        let addr = self.mem_addr()?;
        let seg = SegReg::from_register(self.insn.memory_segment()).unwrap_or(SegReg::Ds);
        let attrs = self.cpu.segment(seg).attrs;
        let protected =
            self.cpu.cr0 & crate::state::CR0_PE != 0 && self.cpu.flags.bits & crate::flags::VM == 0;
        let writable_data = attrs & 0x1a == 0x12;
        if protected && !self.cpu.in_64bit_mode() && !writable_data {
            return Err(if seg == SegReg::Ss {
                Exception::StackFault(0)
            } else {
                Exception::GeneralProtection(0)
            });
        }
        Ok(addr)
    }

    /// Applies segment `seg` to a one-byte access at `offset`.
    pub fn linear(&self, seg: Register, offset: u64) -> Exec<u64> {
        self.linear_sized(seg, offset, 1)
    }

    /// Applies segment `seg` to an access of `size` bytes at `offset`. In 64-bit mode only FS
    /// and GS have a base and the address must be canonical; elsewhere the segment must be
    /// usable and the access must lie within its limit (above it, for expand-down data).
    /// Violations raise #GP(0), or #SS(0) for the stack segment.
    pub fn linear_sized(&self, seg: Register, offset: u64, size: u64) -> Exec<u64> {
        let seg = SegReg::from_register(seg).unwrap_or(SegReg::Ds);
        let fault = if seg == SegReg::Ss {
            Exception::StackFault(0)
        } else {
            Exception::GeneralProtection(0)
        };
        if self.cpu.in_64bit_mode() {
            let addr = match seg {
                SegReg::Fs | SegReg::Gs => self.cpu.segment(seg).base.wrapping_add(offset),
                _ => offset,
            };
            if !is_canonical(addr) {
                return Err(fault);
            }
            return self.check_alignment(addr, size);
        }
        let segment = self.cpu.segment(seg);
        if !within_limit(self.cpu, segment, offset, size) {
            return Err(fault);
        }
        self.check_alignment(segment.base.wrapping_add(offset) & 0xffff_ffff, size)
    }

    /// #AC(0) for a misaligned access at CPL 3 with CR0.AM and RFLAGS.AC both set.
    fn check_alignment(&self, addr: u64, size: u64) -> Exec<u64> {
        let align = match size {
            2 | 4 | 8 | 16 => size,
            10 => 8,
            _ => 1,
        };
        let enabled = self.cpu.cr0 & (1 << 18) != 0 && self.cpu.flags.bits & crate::flags::AC != 0;
        if enabled && addr % align != 0 && self.cpu.cpl() == 3 {
            return Err(Exception::AlignmentCheck);
        }
        Ok(addr)
    }

    /// Reads `size` (1, 2, 4, 8) bytes at linear `addr`; any other size is an interpreter
    /// bug, reported as #UD rather than a host panic.
    #[inline]
    pub fn read_mem(&mut self, addr: u64, size: usize) -> Exec<u64> {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(Exception::InvalidOpcode);
        }
        Ok(self.mem.read_sized(addr, size)?)
    }

    /// Writes `size` (1, 2, 4, 8) bytes at linear `addr`.
    #[inline]
    pub fn write_mem(&mut self, addr: u64, size: usize, value: u64) -> Exec {
        if !matches!(size, 1 | 2 | 4 | 8) {
            return Err(Exception::InvalidOpcode);
        }
        Ok(self.mem.write_sized(addr, size, value)?)
    }

    /// Width of the stack pointer in bytes (8 in 64-bit mode, else SS.B selects 4 or 2).
    pub fn stack_width(&self) -> u32 {
        if self.cpu.in_64bit_mode() {
            8
        } else if self.cpu.segment(SegReg::Ss).attrs & crate::Segment::ATTR_DB != 0 {
            4
        } else {
            2
        }
    }

    fn rsp(&self) -> u64 {
        self.cpu.gpr[4] & size_mask(self.stack_width())
    }

    fn set_rsp(&mut self, value: u64) {
        let mask = size_mask(self.stack_width());
        self.cpu.gpr[4] = (self.cpu.gpr[4] & !mask) | (value & mask);
    }

    /// Pushes the low `size` bytes of `value`. RSP changes only if the write succeeds.
    pub fn push(&mut self, value: u64, size: u32) -> Exec {
        let new_sp = self.rsp().wrapping_sub(u64::from(size)) & size_mask(self.stack_width());
        let addr = self.linear_sized(Register::SS, new_sp, u64::from(size))?;
        self.write_mem(addr, size as usize, value)?;
        self.set_rsp(new_sp);
        Ok(())
    }

    /// Reads the value `size` bytes wide at the top of the stack without popping it.
    pub fn peek(&mut self, size: u32, offset: u64) -> Exec<u64> {
        let sp = self.rsp().wrapping_add(offset) & size_mask(self.stack_width());
        let addr = self.linear_sized(Register::SS, sp, u64::from(size))?;
        self.read_mem(addr, size as usize)
    }

    /// Pops `size` bytes.
    pub fn pop(&mut self, size: u32) -> Exec<u64> {
        let value = self.peek(size, 0)?;
        let new_sp = self.rsp().wrapping_add(u64::from(size));
        self.set_rsp(new_sp);
        Ok(value)
    }

    /// Operand size of PUSH/POP-like instructions, from the decoder's stack increment.
    pub fn stack_op_size(&self) -> u32 {
        self.insn.stack_pointer_increment().unsigned_abs()
    }

    /// Reads a vector source operand zero-extended to 128 bits: an XMM register (all of
    /// it) or a memory operand of the instruction's memory size (4, 8 or 16 bytes).
    pub fn read_vec(&mut self, op: u32) -> Exec<u128> {
        match self.insn.op_kind(op) {
            OpKind::Register => {
                let reg = self.insn.op_register(op);
                if reg.is_xmm() {
                    Ok(self.cpu.xmm[CpuState::xmm_index(reg)])
                } else if reg.is_mm() {
                    Ok(u128::from(
                        self.cpu.x87.regs[reg as usize - Register::MM0 as usize].signif,
                    ))
                } else {
                    Ok(u128::from(self.cpu.reg(reg)))
                }
            }
            OpKind::Memory => {
                let addr = self.mem_addr()?;
                let size = self.insn.memory_size().size();
                if size == 16 {
                    Ok(self.mem.read_u128(addr)?)
                } else {
                    Ok(u128::from(self.read_mem(addr, size)?))
                }
            }
            _ => Ok(u128::from(self.insn.immediate(op))),
        }
    }

    /// Reads a 128-bit memory operand that must be 16-byte aligned (#GP(0) otherwise), or
    /// an XMM register.
    pub fn read_vec_aligned(&mut self, op: u32) -> Exec<u128> {
        if self.insn.op_kind(op) == OpKind::Memory {
            let addr = self.mem_addr()?;
            if addr % 16 != 0 {
                return Err(Exception::GeneralProtection(0));
            }
        }
        self.read_vec(op)
    }

    /// Writes a vector destination: the whole XMM register, or the memory operand's size.
    pub fn write_vec(&mut self, op: u32, value: u128) -> Exec {
        match self.insn.op_kind(op) {
            OpKind::Register => {
                let reg = self.insn.op_register(op);
                if reg.is_xmm() {
                    self.cpu.xmm[CpuState::xmm_index(reg)] = value;
                } else if reg.is_mm() {
                    // An MMX write sets the aliased x87 register's exponent to all ones.
                    let slot = &mut self.cpu.x87.regs[reg as usize - Register::MM0 as usize];
                    slot.signif = value as u64;
                    slot.sign_exp = 0xffff;
                } else {
                    self.cpu.set_reg(reg, value as u64);
                }
                Ok(())
            }
            _ => {
                let addr = self.mem_addr_for_write()?;
                match self.insn.memory_size().size() {
                    16 => Ok(self.mem.write_u128(addr, value)?),
                    size => self.write_mem(addr, size, value as u64),
                }
            }
        }
    }

    /// Writes a 128-bit memory destination that must be 16-byte aligned, or a register.
    pub fn write_vec_aligned(&mut self, op: u32, value: u128) -> Exec {
        if self.insn.op_kind(op) == OpKind::Memory && self.mem_addr()? % 16 != 0 {
            return Err(Exception::GeneralProtection(0));
        }
        self.write_vec(op, value)
    }

    /// The instruction's memory operand size in bytes.
    pub fn mem_size(&self) -> usize {
        self.insn.memory_size().size()
    }

    /// Whether the memory operand is a packed 128-bit one (for alignment rules).
    pub fn is_mem128(&self) -> bool {
        self.insn.memory_size().size() == 16 && self.insn.memory_size() != MemorySize::Unknown
    }
}

/// Whether `size` bytes at `offset` are inside `segment` (outside 64-bit mode). Real mode
/// and virtual-8086 mode check the cached limit too; an unusable (null) segment only exists
/// in protected mode.
fn within_limit(cpu: &CpuState, segment: &crate::Segment, offset: u64, size: u64) -> bool {
    let protected = cpu.cr0 & crate::state::CR0_PE != 0 && cpu.flags.bits & crate::flags::VM == 0;
    if protected && segment.attrs & crate::Segment::ATTR_P == 0 {
        return false;
    }
    let last = offset.wrapping_add(size - 1);
    let limit = u64::from(segment.limit);
    let data = segment.attrs & 0x18 == 0x10;
    if data && segment.attrs & 0x4 != 0 {
        // Expand-down: valid offsets lie above the limit, up to 64 KiB or 4 GiB by the B bit.
        let top = if segment.attrs & crate::Segment::ATTR_DB != 0 {
            0xffff_ffff
        } else {
            0xffff
        };
        offset > limit && last <= top && last >= offset
    } else {
        last <= limit && last >= offset
    }
}

/// Whether an operand kind is an integer immediate (sign-extended by the decoder to the
/// operand size where it is narrower).
pub fn is_integer_immediate(kind: OpKind) -> bool {
    matches!(
        kind,
        OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
    )
}

/// Whether `addr` is canonical for 48-bit linear addresses.
#[inline]
pub(crate) fn is_canonical(addr: u64) -> bool {
    ((addr as i64) << 16 >> 16) as u64 == addr
}
