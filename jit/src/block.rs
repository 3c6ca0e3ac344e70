//! Block formation: the guest instructions one translated block covers, decoded with
//! iced-x86 from CS:RIP up to the first instruction that must end a block.
//!
//! A block ends after a control transfer (any instruction whose flow is not "next"), after
//! an instruction that changes how later ones decode or translate (mode, paging, segment,
//! interrupt-flag and MSR writes, HLT, port I/O, which may stop the machine), before an
//! instruction that would leave the first page or not decode, and at a size cap. Keeping a
//! block inside one page lets the cache key it by one physical page and drop it when that
//! page is written.

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, Register};
use softvisor_cpu::interp::{decode_at, MAX_INSN_LEN};
use softvisor_cpu::{CpuState, Exception, SegReg};
use softvisor_mmu::{Memory, PAGE_SIZE};

/// The most instructions in one block.
pub const MAX_BLOCK_INSNS: usize = 64;

/// Bytes [`decode_block`] fetches first: enough for most blocks.
const SHORT_WINDOW: usize = 128;
/// Bytes it fetches when the block goes on: enough for any block.
const LONG_WINDOW: usize = MAX_BLOCK_INSNS * MAX_INSN_LEN;

/// Why a block ends where it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockEnd {
    /// Its last instruction transfers control (jump, call, return, interrupt, ...).
    ControlTransfer,
    /// Its last instruction changes state later instructions depend on.
    StateChange,
    /// The next instruction would leave the block's page.
    PageEnd,
    /// The next bytes do not decode (the interpreter raises the fault when it gets there).
    Undecodable,
    /// [`MAX_BLOCK_INSNS`] reached.
    SizeCap,
}

/// A decoded guest block.
#[derive(Clone, Debug)]
pub struct GuestBlock {
    /// RIP of the first instruction.
    pub rip: u64,
    /// Code size (16, 32, 64).
    pub bitness: u32,
    /// The instructions, in order.
    pub insns: Vec<Instruction>,
    /// Why it ends.
    pub end: BlockEnd,
}

/// Whether `insn` must be the last instruction of its block.
pub fn ends_block(insn: &Instruction) -> Option<BlockEnd> {
    if insn.flow_control() != FlowControl::Next {
        return Some(BlockEnd::ControlTransfer);
    }
    let changes_state = match insn.mnemonic() {
        Mnemonic::Mov => {
            let dest = insn.op0_register();
            dest.is_cr() || dest.is_dr() || dest == Register::SS || dest == Register::CS
        }
        Mnemonic::Pop => insn.op0_register() == Register::SS,
        // CLI goes on: it only masks interrupts, and none can become pending inside a
        // block (devices run between blocks), so the dispatcher's check after it would
        // find nothing to deliver. (Linux's `local_irq_save` had sent every spinlock taken
        // with interrupts off through the dispatcher.)
        Mnemonic::Hlt
        | Mnemonic::Sti
        | Mnemonic::Popf
        | Mnemonic::Popfd
        | Mnemonic::Popfq
        | Mnemonic::Wrmsr
        | Mnemonic::Lgdt
        | Mnemonic::Lidt
        | Mnemonic::Lldt
        | Mnemonic::Ltr
        | Mnemonic::Lmsw
        | Mnemonic::Clts
        | Mnemonic::Invlpg
        | Mnemonic::Xsetbv
        | Mnemonic::Xrstor
        | Mnemonic::Xrstor64
        | Mnemonic::Fxrstor
        | Mnemonic::Fxrstor64
        | Mnemonic::Swapgs
        | Mnemonic::Stac
        | Mnemonic::Clac => true,
        m => is_port_io(m),
    };
    // The interpreter runs a REP string instruction one iteration at a time, leaving RIP
    // on it until the count runs out; the block must stop there.
    (changes_state || is_repeated_string(insn)).then_some(BlockEnd::StateChange)
}

/// Whether a block whose last instruction is `last` can only end in a way after which no
/// interrupt can have become deliverable and the mode is unchanged: a near jump, call,
/// return or loop, or an ordinary instruction (the block ended at the page or size cap).
/// What chaining relies on for translated blocks; the engine uses it to go from one cold
/// block to the next without a pass through the dispatcher.
pub(crate) fn ends_quietly(last: &Instruction) -> bool {
    match ends_block(last) {
        None => true,
        Some(BlockEnd::ControlTransfer) => {
            last.is_jcc_short_or_near()
                || last.is_jmp_short_or_near()
                || last.is_jmp_near_indirect()
                || last.is_call_near()
                || last.is_call_near_indirect()
                || last.is_loop()
                || last.is_loopcc()
                || last.is_jcx_short()
                || last.mnemonic() == Mnemonic::Ret
        }
        Some(_) => false,
    }
}

/// Whether `insn`, in code of `bitness`, crosses into the next page: the one kind of
/// instruction translated (as a block of its own, 64-bit mode only) that is decoded again
/// each time it runs, since its block does not track the second page.
pub(crate) fn runs_fetched(insn: &Instruction, bitness: u32) -> bool {
    bitness == 64 && (insn.ip() & (PAGE_SIZE - 1)) + insn.len() as u64 > PAGE_SIZE
}

/// Whether `m` accesses an I/O port.
pub fn is_port_io(m: Mnemonic) -> bool {
    matches!(
        m,
        Mnemonic::In
            | Mnemonic::Out
            | Mnemonic::Insb
            | Mnemonic::Insw
            | Mnemonic::Insd
            | Mnemonic::Outsb
            | Mnemonic::Outsw
            | Mnemonic::Outsd
    )
}

/// A string instruction with a REP/REPE/REPNE prefix.
pub(crate) fn is_repeated_string(insn: &Instruction) -> bool {
    use iced_x86::OpKind;
    (insn.has_rep_prefix() || insn.has_repne_prefix())
        && (0..insn.op_count()).any(|op| {
            matches!(
                insn.op_kind(op),
                OpKind::MemorySegSI
                    | OpKind::MemorySegESI
                    | OpKind::MemorySegRSI
                    | OpKind::MemoryESDI
                    | OpKind::MemoryESEDI
                    | OpKind::MemoryESRDI
            )
        })
}

/// Decodes the block at CS:RIP. Faults only if the first instruction cannot be fetched or
/// decoded, exactly as the interpreter would.
///
/// In 64-bit code a direct JMP to the same page does not end the block: decoding goes on at
/// its target (the JMP stays in the block, an instruction like any other), unless the
/// target is inside the block already (a loop), its first instruction crosses into the
/// next page, or it does not decode. One page still holds all of the block's code, so the
/// cache keys it and a write drops it as before (its span covers every part).
pub fn decode_block(cpu: &CpuState, mem: &mut dyn Memory) -> Result<GuestBlock, Exception> {
    let mut block = decode_straight(cpu, mem, MAX_BLOCK_INSNS)?;
    if block.bitness == 64 {
        follow_jumps(cpu, mem, &mut block);
    }
    Ok(block)
}

/// Appends to `block` the code its last instruction jumps to, as [`decode_block`] says.
fn follow_jumps(cpu: &CpuState, mem: &mut dyn Memory, block: &mut GuestBlock) {
    // Long mode ignores CS's base: linear addresses are RIPs.
    let page = block.rip & !(PAGE_SIZE - 1);
    let mut at: Option<Box<CpuState>> = None;
    while let Some(last) = block.insns.last() {
        let room = MAX_BLOCK_INSNS - block.insns.len();
        let target = last.near_branch_target();
        let inside = |i: &Instruction| (i.ip()..i.next_ip()).contains(&target);
        // (A JMP crossing into the next page is a block of its own, whose bytes there its
        // translation checks when it runs: it must stay the block's last instruction.)
        if !last.is_jmp_short_or_near()
            || runs_fetched(last, 64)
            || target & !(PAGE_SIZE - 1) != page
            || room == 0
            || block.insns.iter().any(inside)
        {
            return;
        }
        let at = at.get_or_insert_with(|| Box::new(cpu.clone()));
        at.rip = target;
        let Ok(rest) = decode_straight(at, mem, room) else {
            return;
        };
        if runs_fetched(&rest.insns[0], 64) {
            return;
        }
        block.insns.extend(rest.insns);
        block.end = rest.end;
    }
}

/// Whether `insn`, in a block that goes on after it, is a JMP [`decode_block`] followed.
pub(crate) fn is_followed_jump(insn: &Instruction, next: Option<&Instruction>) -> bool {
    insn.is_jmp_short_or_near() && next.is_some_and(|next| next.ip() == insn.near_branch_target())
}

/// The straight-line block at CS:RIP, at most `max_insns` long.
fn decode_straight(
    cpu: &CpuState,
    mem: &mut dyn Memory,
    max_insns: usize,
) -> Result<GuestBlock, Exception> {
    let first = decode_at(cpu, mem)?;
    let bitness = cpu.bitness();
    let linear = cpu.segment(SegReg::Cs).base.wrapping_add(cpu.rip);
    let page_left = (PAGE_SIZE - (linear & (PAGE_SIZE - 1))) as usize;
    let mut block = GuestBlock {
        rip: cpu.rip,
        bitness,
        insns: vec![first],
        end: BlockEnd::SizeCap,
    };
    if let Some(end) = ends_block(&first) {
        block.end = end;
        return Ok(block);
    }
    if first.len() >= page_left {
        block.end = BlockEnd::PageEnd;
        return Ok(block);
    }
    // The rest of the page, fetched in a short window first and a long one if the block
    // goes on: most blocks are a few instructions, and fetching (and zeroing) the whole
    // rest of the page for each one was a visible cost of cold code.
    let mut bytes = [0u8; LONG_WINDOW];
    let mut window = page_left.min(SHORT_WINDOW);
    let mut offset = first.len();
    let mut ip = first.next_ip();
    'fetch: loop {
        let got = mem.fetch(linear, &mut bytes[..window]).unwrap_or(0);
        // Whether running out of bytes here means fetching more (else it is the page's
        // end; the long window holds any block, so it never runs out before the cap).
        let can_grow = got == window && window < page_left.min(LONG_WINDOW);
        let mut decoder = Decoder::with_ip(bitness, &bytes[..got], ip, DecoderOptions::NONE);
        decoder
            .set_position(offset)
            .expect("the first instruction lies within the fetched bytes");
        while block.insns.len() < max_insns {
            if window - offset < MAX_INSN_LEN && !decoder.can_decode() {
                if can_grow {
                    window = page_left.min(LONG_WINDOW);
                    continue 'fetch;
                }
                block.end = BlockEnd::PageEnd;
                return Ok(block);
            }
            let insn = decoder.decode();
            if insn.is_invalid() {
                // An instruction may reach at most 14 bytes beyond the fetched ones.
                let cut = offset + MAX_INSN_LEN > window;
                if cut && can_grow {
                    window = page_left.min(LONG_WINDOW);
                    continue 'fetch;
                }
                block.end = if cut {
                    BlockEnd::PageEnd
                } else {
                    BlockEnd::Undecodable
                };
                return Ok(block);
            }
            offset += insn.len();
            ip = insn.next_ip();
            block.insns.push(insn);
            if let Some(end) = ends_block(&insn) {
                block.end = end;
                return Ok(block);
            }
            if offset == page_left {
                block.end = BlockEnd::PageEnd;
                return Ok(block);
            }
        }
        return Ok(block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use softvisor_mmu::{FlatMemory, GuestRam};

    fn at(addr: u64, code: &[u8]) -> (CpuState, FlatMemory) {
        let mut mem = FlatMemory::new(GuestRam::new(0x10000).unwrap());
        mem.ram.write_bytes(addr, code).unwrap();
        let mut cpu = CpuState::new_long_mode();
        cpu.rip = addr;
        (cpu, mem)
    }

    fn mnemonics(block: &GuestBlock) -> Vec<Mnemonic> {
        block.insns.iter().map(|i| i.mnemonic()).collect()
    }

    #[test]
    fn straight_line_code_ends_at_the_branch() {
        // mov eax, 1 ; add eax, ebx ; cmp eax, 5 ; jne -2 ; nop
        let code = [
            0xb8, 1, 0, 0, 0, 0x01, 0xd8, 0x83, 0xf8, 0x05, 0x75, 0xfe, 0x90,
        ];
        let (cpu, mut mem) = at(0x1000, &code);
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!(
            mnemonics(&block),
            [Mnemonic::Mov, Mnemonic::Add, Mnemonic::Cmp, Mnemonic::Jne]
        );
        assert_eq!(block.end, BlockEnd::ControlTransfer);
        assert_eq!(block.insns[3].near_branch_target(), 0x100a);
    }

    #[test]
    fn a_jump_within_the_page_is_followed_unless_it_loops() {
        // 0x1000: inc eax; jmp 0x1010 | 0x1010: inc ebx; jmp 0x1008 | 0x1008: inc ecx;
        // jmp 0x1010 (back into the block: it ends there).
        let (cpu, mut mem) = at(0x1000, &[0xff, 0xc0, 0xeb, 0x0c]);
        mem.ram
            .write_bytes(0x1010, &[0xff, 0xc3, 0xeb, 0xf4])
            .unwrap();
        mem.ram
            .write_bytes(0x1008, &[0xff, 0xc1, 0xeb, 0x04])
            .unwrap();
        let block = decode_block(&cpu, &mut mem).unwrap();
        let ips: Vec<u64> = block.insns.iter().map(|i| i.ip()).collect();
        assert_eq!(ips, [0x1000, 0x1002, 0x1010, 0x1012, 0x1008, 0x100a]);
        assert_eq!(block.end, BlockEnd::ControlTransfer);
        assert!(is_followed_jump(&block.insns[1], block.insns.get(2)));
        assert!(!is_followed_jump(&block.insns[5], None));
        // A jump to another page ends the block.
        let (cpu, mut mem) = at(0x1000, &[0xe9, 0xfb, 0x0f, 0x00, 0x00]); // jmp 0x2000
        mem.ram.write_bytes(0x2000, &[0x90, 0xc3]).unwrap();
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!(mnemonics(&block), [Mnemonic::Jmp]);
        // So does a jump crossing into the next page, even back to its own page:
        // jmp 0x1f00 from 0x1ffe (its displacement on the next page).
        let (cpu, mut mem) = at(0x1ffe, &[0xe9, 0xfd, 0xfe, 0xff, 0xff]);
        mem.ram.write_bytes(0x1f00, &[0x90, 0xc3]).unwrap();
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!(block.insns[0].near_branch_target(), 0x1f00);
        assert_eq!(mnemonics(&block), [Mnemonic::Jmp]);
    }

    #[test]
    fn state_changes_end_a_block_after_them() {
        // mov cr3, rax ; nop
        let (cpu, mut mem) = at(0x1000, &[0x0f, 0x22, 0xd8, 0x90]);
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!((block.insns.len(), block.end), (1, BlockEnd::StateChange));
        // nop ; out 0x80, al ; nop
        let (cpu, mut mem) = at(0x1000, &[0x90, 0xe6, 0x80, 0x90]);
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!(mnemonics(&block), [Mnemonic::Nop, Mnemonic::Out]);
        // pushfq ; cli ; nop ; sti ; nop: CLI masks interrupts and goes on, STI ends.
        let (cpu, mut mem) = at(0x1000, &[0x9c, 0xfa, 0x90, 0xfb, 0x90]);
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!(
            mnemonics(&block),
            [
                Mnemonic::Pushfq,
                Mnemonic::Cli,
                Mnemonic::Nop,
                Mnemonic::Sti
            ]
        );
    }

    #[test]
    fn only_near_transfers_and_plain_instructions_end_a_block_quietly() {
        let decode = |bytes: &[u8]| {
            let mut decoder = Decoder::with_ip(64, bytes, 0x1000, DecoderOptions::NONE);
            decoder.decode()
        };
        let quiet: [&[u8]; 8] = [
            &[0x75, 0x02],       // jne
            &[0xeb, 0x02],       // jmp short
            &[0xff, 0xe0],       // jmp rax
            &[0xe8, 0, 0, 0, 0], // call near
            &[0xff, 0xd0],       // call rax
            &[0xc3],             // ret
            &[0xe2, 0xfe],       // loop
            &[0x48, 0x01, 0xd8], // add rax, rbx (a capped block)
        ];
        for bytes in quiet {
            assert!(ends_quietly(&decode(bytes)), "{bytes:02x?}");
        }
        let loud: [&[u8]; 9] = [
            &[0xcb],             // retf
            &[0x48, 0xcf],       // iretq
            &[0xcd, 0x80],       // int 0x80
            &[0x0f, 0x05],       // syscall
            &[0x0f, 0x07],       // sysret
            &[0xff, 0x28],       // jmp far [rax]
            &[0xfb],             // sti
            &[0xe6, 0x80],       // out 0x80, al
            &[0xf3, 0x48, 0xa5], // rep movsq
        ];
        for bytes in loud {
            assert!(!ends_quietly(&decode(bytes)), "{bytes:02x?}");
        }
    }

    #[test]
    fn blocks_stay_in_their_page_and_under_the_cap() {
        // nops up to the page end, then more on the next page.
        let (cpu, mut mem) = at(0x1ffc, &[0x90; 8]);
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!((block.insns.len(), block.end), (4, BlockEnd::PageEnd));
        let (cpu, mut mem) = at(0x1000, &[0x90; 200]);
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!(
            (block.insns.len(), block.end),
            (MAX_BLOCK_INSNS, BlockEnd::SizeCap)
        );
    }

    #[test]
    fn blocks_longer_than_the_first_fetch_decode_whole() {
        // 63 x `mov rax, imm64` (10 bytes): instructions straddle the short window's end,
        // and the block reaches the cap far beyond it.
        let code: Vec<u8> = (0..70u8)
            .flat_map(|i| [0x48, 0xb8, i, 0, 0, 0, 0, 0, 0, 0])
            .collect();
        let (cpu, mut mem) = at(0x1000, &code);
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!(
            (block.insns.len(), block.end),
            (MAX_BLOCK_INSNS, BlockEnd::SizeCap)
        );
        for (i, insn) in block.insns.iter().enumerate() {
            assert_eq!(
                (insn.ip(), insn.immediate64()),
                (0x1000 + 10 * i as u64, i as u64)
            );
        }
        // 300 bytes from the page's end: 29 movs, then one crossing into the next page.
        let (cpu, mut mem) = at(0x1ed4, &code);
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!((block.insns.len(), block.end), (30, BlockEnd::PageEnd));
        // An undecodable instruction after the short window ends the block there.
        let mut code = vec![0x90; 200];
        code.extend_from_slice(&[0x06, 0x90]); // push es: invalid in 64-bit mode
        let (cpu, mut mem) = at(0x1000, &code[130..]);
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!(
            (block.insns.len(), block.end),
            (MAX_BLOCK_INSNS, BlockEnd::SizeCap)
        );
        let (mut cpu, mut mem) = at(0x1000, &code);
        cpu.rip = 0x1000 + 150;
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!((block.insns.len(), block.end), (50, BlockEnd::Undecodable));
    }

    #[test]
    fn an_instruction_crossing_the_page_is_left_for_the_next_block() {
        // nop at 0x1ffa, then a 10-byte mov rax, imm64 from 0x1ffb crossing into 0x2000.
        let mut code = vec![0x90, 0x48, 0xb8];
        code.extend_from_slice(&[0x11; 8]);
        let (cpu, mut mem) = at(0x1ffa, &code);
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!((block.insns.len(), block.end), (1, BlockEnd::PageEnd));
        // Started on it, the block is just that instruction... and then the page ends.
        let (mut cpu, mut mem) = at(0x1ffa, &code);
        cpu.rip = 0x1ffb;
        let block = decode_block(&cpu, &mut mem).unwrap();
        assert_eq!(mnemonics(&block), [Mnemonic::Mov]);
    }

    #[test]
    fn a_first_instruction_that_faults_faults_like_the_interpreter() {
        let (cpu, mut mem) = at(0x1000, &[0x0f, 0x0b]); // ud2 decodes (and raises #UD later)
        assert!(decode_block(&cpu, &mut mem).is_ok());
        let (cpu, mut mem) = at(0x1000, &[0x06]); // push es: invalid in 64-bit mode
        assert_eq!(
            decode_block(&cpu, &mut mem).unwrap_err(),
            Exception::InvalidOpcode
        );
    }
}
