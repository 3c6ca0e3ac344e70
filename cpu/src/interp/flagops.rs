//! Flag instructions: CLC, STC, CMC, CLD, STD, CLI, STI, LAHF, SAHF.

use super::operand::{Ctx, Exec};
use crate::flags::{AF, CF, DF, FIXED1, IF, IOPL, PF, SF, ZF};
use crate::Exception;
use iced_x86::Mnemonic;

/// Executes a flag instruction.
pub(super) fn flag_op(ctx: &mut Ctx, m: Mnemonic) -> Exec {
    let flags = &mut ctx.cpu.flags;
    match m {
        Mnemonic::Clc => flags.update(CF, 0),
        Mnemonic::Stc => flags.update(CF, CF),
        Mnemonic::Cmc => {
            let cf = flags.get() & CF;
            flags.update(CF, cf ^ CF);
        }
        Mnemonic::Cld => flags.update(DF, 0),
        Mnemonic::Std => flags.update(DF, DF),
        Mnemonic::Lahf => {
            let low = flags.get() & (SF | ZF | AF | PF | CF | FIXED1);
            ctx.cpu.set_reg(iced_x86::Register::AH, low);
        }
        Mnemonic::Sahf => {
            let ah = ctx.cpu.reg(iced_x86::Register::AH);
            ctx.cpu.flags.update(SF | ZF | AF | PF | CF, ah);
        }
        Mnemonic::Cli | Mnemonic::Sti => {
            let iopl = ((flags.get() & IOPL) >> 12) as u8;
            if ctx.cpu.cpl() > iopl {
                return Err(Exception::GeneralProtection(0));
            }
            let value = if m == Mnemonic::Sti { IF } else { 0 };
            // STI that sets IF delays interrupts by one instruction.
            if value != 0 && !ctx.cpu.flags.test(IF) {
                ctx.cpu.interrupt_shadow = true;
            }
            ctx.cpu.flags.update(IF, value);
        }
        _ => return Err(Exception::InvalidOpcode),
    }
    Ok(())
}
