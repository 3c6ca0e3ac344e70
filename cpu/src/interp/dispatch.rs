//! Routes a decoded instruction to the handler of its group.

use super::operand::{Ctx, Exec};
use super::{
    alu, atomic, bits, control, data, flagops, io, misc, muldiv, privileged, segment_check, shift,
    simd_fp, simd_int, stack, state_save, string, transfer, x87ops, StepOutcome,
};
use crate::Exception;
use iced_x86::{Mnemonic as M, OpKind};

/// Executes `ctx.insn`. RIP already points past it.
pub(super) fn execute(ctx: &mut Ctx) -> Exec<StepOutcome> {
    let m = ctx.insn.mnemonic();
    match m {
        M::Add | M::Or | M::Adc | M::Sbb | M::And | M::Sub | M::Xor | M::Cmp | M::Test => {
            alu::binary(ctx, m)?
        }
        M::Inc | M::Dec | M::Neg | M::Not => alu::unary(ctx, m)?,
        M::Mov => data::mov(ctx)?,
        M::Movzx | M::Movsx | M::Movsxd => data::extend(ctx, m)?,
        M::Lea => data::lea(ctx)?,
        M::Xchg => data::xchg(ctx)?,
        M::Bswap => data::bswap(ctx)?,
        M::Cbw | M::Cwde | M::Cdqe => data::widen_accumulator(ctx, m)?,
        M::Cwd | M::Cdq | M::Cqo => data::sign_to_rdx(ctx, m)?,
        M::Cmovo
        | M::Cmovno
        | M::Cmovb
        | M::Cmovae
        | M::Cmove
        | M::Cmovne
        | M::Cmovbe
        | M::Cmova => data::cmov(ctx)?,
        M::Cmovs
        | M::Cmovns
        | M::Cmovp
        | M::Cmovnp
        | M::Cmovl
        | M::Cmovge
        | M::Cmovle
        | M::Cmovg => data::cmov(ctx)?,
        M::Seto | M::Setno | M::Setb | M::Setae | M::Sete | M::Setne | M::Setbe | M::Seta => {
            data::setcc(ctx)?
        }
        M::Sets | M::Setns | M::Setp | M::Setnp | M::Setl | M::Setge | M::Setle | M::Setg => {
            data::setcc(ctx)?
        }
        M::Movbe => data::movbe(ctx)?,
        M::Xlatb => data::xlat(ctx)?,
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Rcl | M::Rcr => {
            shift::shift(ctx, m)?
        }
        M::Shld | M::Shrd => shift::double_shift(ctx, m)?,
        M::Sarx | M::Shlx | M::Shrx => shift::shift_x(ctx, m)?,
        M::Rorx => shift::rorx(ctx)?,
        M::Mul => muldiv::mul(ctx)?,
        M::Imul => muldiv::imul(ctx)?,
        M::Div => muldiv::div(ctx)?,
        M::Idiv => muldiv::idiv(ctx)?,
        M::Mulx => muldiv::mulx(ctx)?,
        M::Bt | M::Bts | M::Btr | M::Btc => bits::bit_test(ctx, m)?,
        M::Bsf | M::Bsr => bits::bit_scan(ctx, m)?,
        M::Tzcnt | M::Lzcnt | M::Popcnt => bits::count_bits(ctx, m)?,
        M::Andn | M::Bextr | M::Blsi | M::Blsmsk | M::Blsr | M::Bzhi => bits::bmi(ctx, m)?,
        M::Pdep | M::Pext => bits::deposit_extract(ctx, m)?,
        M::Adcx | M::Adox => bits::adcx_adox(ctx, m)?,
        M::Crc32 => bits::crc32(ctx)?,
        M::Jmp if !is_far(ctx) => control::jmp(ctx)?,
        M::Jo | M::Jno | M::Jb | M::Jae | M::Je | M::Jne | M::Jbe | M::Ja => control::jcc(ctx)?,
        M::Js | M::Jns | M::Jp | M::Jnp | M::Jl | M::Jge | M::Jle | M::Jg => control::jcc(ctx)?,
        M::Call if !is_far(ctx) => control::call(ctx)?,
        M::Ret => control::ret(ctx)?,
        M::Loop | M::Loope | M::Loopne => control::loop_(ctx, m)?,
        M::Jcxz | M::Jecxz | M::Jrcxz => control::jrcxz(ctx)?,
        M::Push => stack::push(ctx)?,
        M::Pop => stack::pop(ctx)?,
        M::Pushf | M::Pushfd | M::Pushfq => stack::pushf(ctx)?,
        M::Popf | M::Popfd | M::Popfq => stack::popf(ctx)?,
        M::Enter => stack::enter(ctx)?,
        M::Leave => stack::leave(ctx)?,
        M::Pusha | M::Pushad => stack::pusha(ctx)?,
        M::Popa | M::Popad => stack::popa(ctx)?,
        M::Xadd => atomic::xadd(ctx)?,
        M::Cmpxchg => atomic::cmpxchg(ctx)?,
        M::Cmpxchg8b | M::Cmpxchg16b => atomic::cmpxchg_wide(ctx)?,
        // MOVSD and CMPSD name both a string instruction and an SSE2 instruction.
        M::Movsd | M::Cmpsd if is_sse_form(ctx) => return dispatch_extensions(ctx),
        M::Movsb | M::Movsw | M::Movsd | M::Movsq | M::Cmpsb | M::Cmpsw | M::Cmpsd | M::Cmpsq => {
            string::string_op(ctx, m)?
        }
        M::Stosb | M::Stosw | M::Stosd | M::Stosq | M::Lodsb | M::Lodsw | M::Lodsd | M::Lodsq => {
            string::string_op(ctx, m)?
        }
        M::Scasb | M::Scasw | M::Scasd | M::Scasq => string::string_op(ctx, m)?,
        M::Clc | M::Stc | M::Cmc | M::Cld | M::Std | M::Lahf | M::Sahf | M::Cli | M::Sti => {
            flagops::flag_op(ctx, m)?
        }
        M::Nop
        | M::Reservednop
        | M::Pause
        | M::Endbr64
        | M::Endbr32
        | M::Lfence
        | M::Mfence
        | M::Sfence => {}
        M::Prefetch
        | M::Prefetchnta
        | M::Prefetcht0
        | M::Prefetcht1
        | M::Prefetcht2
        | M::Prefetchw => {}
        M::Clflush | M::Clflushopt => {
            // Faults like a byte load would.
            let addr = ctx.mem_addr()?;
            ctx.read_mem(addr, 1)?;
        }
        M::Lgdt | M::Lidt | M::Sgdt | M::Sidt | M::Lldt | M::Ltr | M::Sldt | M::Str => {
            privileged::execute(ctx, m)?
        }
        M::Lmsw | M::Smsw | M::Clts | M::Invlpg | M::Invd | M::Wbinvd | M::Wbnoinvd => {
            privileged::execute(ctx, m)?
        }
        M::Rdmsr | M::Wrmsr | M::Swapgs => privileged::execute(ctx, m)?,
        M::Lar | M::Lsl | M::Verr | M::Verw => segment_check::execute(ctx, m)?,
        M::Fxsave | M::Fxsave64 | M::Fxrstor | M::Fxrstor64 => state_save::execute(ctx, m)?,
        M::Xsave
        | M::Xsave64
        | M::Xsaveopt
        | M::Xsaveopt64
        | M::Xrstor
        | M::Xrstor64
        | M::Xgetbv
        | M::Xsetbv => state_save::execute(ctx, m)?,
        M::Stac | M::Clac => misc::stac_clac(ctx, m == M::Stac)?,
        M::Bound => misc::bound(ctx)?,
        M::Cpuid => misc::cpuid(ctx)?,
        M::Rdtsc => misc::rdtsc(ctx, false)?,
        M::Rdtscp => misc::rdtsc(ctx, true)?,
        M::Int | M::Int3 | M::Int1 | M::Into => return transfer::software_interrupt(ctx, m),
        M::Iret | M::Iretd | M::Iretq => transfer::iret(ctx)?,
        M::Retf => transfer::far_return(ctx)?,
        M::Jmp | M::Call if is_far(ctx) => transfer::far_jump_or_call(ctx, m == M::Call)?,
        M::Syscall => transfer::syscall(ctx)?,
        M::Sysret | M::Sysretq => transfer::sysret(ctx)?,
        M::Sysenter => transfer::sysenter(ctx)?,
        M::Sysexit | M::Sysexitq => transfer::sysexit(ctx)?,
        M::In | M::Out | M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd => {
            if matches!(m, M::In | M::Out) {
                io::in_out(ctx, m)?;
            } else {
                io::string_io(ctx, m)?;
            }
            if ctx.platform.stop_requested() {
                return Ok(StepOutcome::Stop);
            }
        }
        M::Ud0 | M::Ud1 | M::Ud2 => return ctx.architectural_ud(),
        M::Hlt => {
            if ctx.cpu.cpl() != 0 {
                return Err(Exception::GeneralProtection(0));
            }
            return Ok(StepOutcome::Halt);
        }
        _ => return dispatch_extensions(ctx),
    }
    Ok(StepOutcome::Continue)
}

/// Whether a JMP/CALL is far (an immediate pointer or an m16:16/32/64 operand).
fn is_far(ctx: &Ctx) -> bool {
    match ctx.insn.op_kind(0) {
        OpKind::FarBranch16 | OpKind::FarBranch32 => true,
        OpKind::Memory => matches!(
            ctx.insn.memory_size(),
            iced_x86::MemorySize::SegPtr16
                | iced_x86::MemorySize::SegPtr32
                | iced_x86::MemorySize::SegPtr64
        ),
        _ => false,
    }
}

/// Whether a MOVSD/CMPSD is the SSE2 form (it names an XMM register).
fn is_sse_form(ctx: &Ctx) -> bool {
    (0..ctx.insn.op_count())
        .any(|op| ctx.insn.op_kind(op) == OpKind::Register && ctx.insn.op_register(op).is_xmm())
}

/// SIMD and x87 groups, each of which claims its own mnemonics.
fn dispatch_extensions(ctx: &mut Ctx) -> Exec<StepOutcome> {
    let result = simd_int::execute(ctx)
        .or_else(|| simd_fp::execute(ctx))
        .or_else(|| x87ops::execute(ctx))
        .unwrap_or(Err(Exception::InvalidOpcode));
    result.map(|()| StepOutcome::Continue)
}
