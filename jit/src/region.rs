//! Regions: a hot loop compiled as one host function.
//!
//! A block whose code loops back to it through other blocks of its own page (a decoder's
//! state machine, a scan loop split by a branch) would otherwise leave its function and
//! enter another at every one of those branches: a tail call, a frame set up and torn down,
//! the budget checked. When such a block is translated, the blocks of its page that its
//! direct branches reach are decoded too, and those from which it can be reached again are
//! translated with it; branches between them become jumps inside the function (see
//! `translate::Translator::emit_region`). Everything stays on one page, so the region is
//! dropped with its page like a single block. Entered at one of its other blocks, the
//! engine translates that block alone, chaining into the region (see
//! `Jit::inside_regions`).
//!
//! Every block of a region (a region of one block too) also goes on through a Jcc at its
//! end into the way the Jcc nearly always takes: the Jcc becomes a side exit and the
//! common way stays straight code in one function (see [`form`]).

use iced_x86::{FlowControl, Instruction, OpKind};
use std::ops::Range;

/// The most guest blocks in one region.
pub const MAX_REGION_BLOCKS: usize = 16;
/// The most guest instructions in one region.
pub const MAX_REGION_INSNS: usize = 256;
/// The most guest instructions in one block grown through its Jccs (unless the engine
/// caps blocks lower).
pub const MAX_TRACE_INSNS: usize = 96;

/// The guest blocks translated together, the entered one first.
#[derive(Debug)]
pub struct Region {
    /// Every block's instructions, one after the other.
    pub insns: Vec<Instruction>,
    /// Each block's range in `insns`.
    pub blocks: Vec<Range<usize>>,
}

impl Region {
    /// A region of the one block `insns`.
    pub fn single(insns: Vec<Instruction>) -> Self {
        let blocks = std::iter::once(0..insns.len()).collect();
        Self { insns, blocks }
    }

    /// Instructions of the entered block (what the dispatcher's budget check counts).
    pub fn entry_len(&self) -> usize {
        self.blocks.first().map_or(0, |range| range.len())
    }
}

/// How a block would join a region: what [`form`]'s `decode` is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// As a block of its own, reached by a branch (it joins if it leads back to the entry).
    Branch,
    /// As the continuation of a block whose Jcc goes on to it (either way).
    FallThrough,
}

/// The RIPs a block goes on to directly and the translator chains to: the targets of its
/// side exits, both ways of a Jcc at its end, a direct JMP or CALL target, and the next
/// instruction after a block cut for its size or after a REP string instruction.
pub fn successors(insns: &[Instruction]) -> Vec<u64> {
    let Some(last) = insns.last() else {
        return Vec::new();
    };
    let mut targets: Vec<u64> = insns
        .windows(2)
        .filter(|pair| pair[0].is_jcc_short_or_near())
        .map(|pair| side_exit_target(&pair[0], pair[1].ip()))
        .collect();
    if last.is_jcc_short_or_near() {
        targets.extend([last.near_branch_target(), last.next_ip()]);
        return targets;
    }
    match last.flow_control() {
        FlowControl::UnconditionalBranch | FlowControl::Call
            if last.op_kind(0) == OpKind::NearBranch64 =>
        {
            targets.push(last.near_branch_target())
        }
        FlowControl::Next if crate::translate::may_chain_after(last) => {
            targets.push(last.next_ip())
        }
        _ => {}
    }
    targets
}

/// A block's side exits: the Jccs before its last instruction, after which the block goes
/// on at one of their ways (see [`form`]).
pub fn side_exits(insns: &[Instruction]) -> usize {
    continuations(insns).count()
}

/// The successor slots of each of `blocks` (ranges of `insns`): where its slots start in
/// the region's, two for its end (both ways of a Jcc) and one per side exit; and the
/// region's total.
pub fn slot_bases(insns: &[Instruction], blocks: &[Range<usize>]) -> (Vec<usize>, usize) {
    let mut total = 0;
    let bases = blocks
        .iter()
        .map(|range| {
            let base = total;
            total += 2 + side_exits(&insns[range.clone()]);
            base
        })
        .collect();
    (bases, total)
}

/// Appends to `block` the blocks its Jcc goes on to nearly always, as long as `decode`
/// gives one (it ran often enough: the not-taken way is asked first, then the taken one)
/// that lies in `page`, is neither in the block nor the region's `entry`, and keeps the
/// block within `max_insns` (and the region's `total` within [`MAX_REGION_INSNS`]); a Jcc
/// back into the block or to the entry (a loop's) ends it. The Jcc becomes a side exit to
/// its other way (see [`side_exit_target`]) and the common way runs on in one piece of
/// straight code, with guest registers and flags in host registers and no transition
/// between functions.
fn extend_through_jccs(
    block: &mut Vec<Instruction>,
    max_insns: usize,
    entry: u64,
    page: u64,
    total: &mut usize,
    decode: &mut impl FnMut(u64, Join) -> Option<Vec<Instruction>>,
) {
    let is_jcc = |insn: &&Instruction| {
        insn.is_jcc_short_or_near() && insn.op_kind(0) == OpKind::NearBranch64
    };
    while let Some(last) = block.last().filter(is_jcc) {
        let target = last.near_branch_target();
        let ways = [last.next_ip(), target];
        let in_block = |rip: u64| rip == entry || block.iter().any(|insn| insn.ip() == rip);
        if block.len() >= max_insns || in_block(target) {
            return;
        }
        let joinable = ways.map(|rip| rip & !0xfff == page && !in_block(rip));
        let rest = ways
            .into_iter()
            .zip(joinable)
            .filter(|&(_, joinable)| joinable)
            .find_map(|(rip, _)| decode(rip, Join::FallThrough));
        match rest {
            Some(rest)
                if !rest.is_empty()
                    && block.len() + rest.len() <= max_insns
                    && *total + rest.len() <= MAX_REGION_INSNS =>
            {
                *total += rest.len();
                block.extend(rest);
            }
            _ => return,
        }
    }
}

/// Where the side exit of `jcc` goes when the block goes on at `continues_at`: its other
/// way (the target when the block goes on at the fall-through, else the fall-through).
pub fn side_exit_target(jcc: &Instruction, continues_at: u64) -> u64 {
    if continues_at == jcc.next_ip() {
        jcc.near_branch_target()
    } else {
        jcc.next_ip()
    }
}

/// The RIPs `insns` go on at after their side exits' Jccs (see [`extend_through_jccs`]):
/// the blocks taken in.
pub fn continuations(insns: &[Instruction]) -> impl Iterator<Item = u64> + '_ {
    insns
        .windows(2)
        .filter(|pair| pair[0].is_jcc_short_or_near())
        .map(|pair| pair[1].ip())
}

/// The region entered at `first` (a block of 64-bit code): `decode` gives the in-page
/// block at a RIP, or `None`. Only blocks on `first`'s page from which `first` can be
/// reached again join it; each block (`first` too) goes on through its Jccs into the
/// blocks `decode` gives, up to `max_trace` instructions (see [`extend_through_jccs`]).
pub fn form(
    mut first: Vec<Instruction>,
    max_trace: usize,
    mut decode: impl FnMut(u64, Join) -> Option<Vec<Instruction>>,
) -> Region {
    let Some(entry) = first.first().map(Instruction::ip) else {
        return Region::single(first);
    };
    let page = entry & !0xfff;
    let mut total = first.len();
    extend_through_jccs(&mut first, max_trace, entry, page, &mut total, &mut decode);
    let mut found = vec![first];
    let mut next = 0;
    while next < found.len() {
        for rip in successors(&found[next]) {
            let known = found.iter().any(|block| block[0].ip() == rip);
            if known || rip & !0xfff != page || found.len() >= MAX_REGION_BLOCKS {
                continue;
            }
            match decode(rip, Join::Branch) {
                Some(mut block) if !block.is_empty() && total + block.len() <= MAX_REGION_INSNS => {
                    total += block.len();
                    extend_through_jccs(
                        &mut block,
                        max_trace,
                        entry,
                        page,
                        &mut total,
                        &mut decode,
                    );
                    found.push(block);
                }
                _ => {}
            }
        }
        next += 1;
    }
    let keep = reaching_the_entry(&found);
    let mut region = Region {
        insns: Vec::with_capacity(total),
        blocks: Vec::new(),
    };
    for (block, _) in found.into_iter().zip(keep).filter(|(_, keep)| *keep) {
        let start = region.insns.len();
        region.insns.extend(block);
        region.blocks.push(start..region.insns.len());
    }
    region
}

/// For each block, whether it is the entry (the first) or the entry can be reached from
/// it through direct branches among `blocks`.
fn reaching_the_entry(blocks: &[Vec<Instruction>]) -> Vec<bool> {
    let starts: Vec<u64> = blocks.iter().map(|block| block[0].ip()).collect();
    let edges: Vec<Vec<usize>> = blocks
        .iter()
        .map(|block| {
            successors(block)
                .iter()
                .filter_map(|rip| starts.iter().position(|start| start == rip))
                .collect()
        })
        .collect();
    let mut reaches = vec![false; blocks.len()];
    loop {
        let mut changed = false;
        for (n, targets) in edges.iter().enumerate() {
            if !reaches[n] && targets.iter().any(|&t| t == 0 || reaches[t]) {
                reaches[n] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    reaches[0] = true;
    reaches
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    /// Blocks decoded from `code` placed at `base`: each block runs from a RIP to the first
    /// control transfer.
    fn decoder_for(
        base: u64,
        code: &[u8],
    ) -> impl FnMut(u64, Join) -> Option<Vec<Instruction>> + '_ {
        move |rip, _| {
            let offset = usize::try_from(rip.checked_sub(base)?).ok()?;
            let mut decoder = Decoder::with_ip(64, code.get(offset..)?, rip, DecoderOptions::NONE);
            let mut block = Vec::new();
            while decoder.can_decode() {
                let insn = decoder.decode();
                block.push(insn);
                if crate::block::ends_block(&insn).is_some() {
                    break;
                }
            }
            Some(block)
        }
    }

    fn starts(region: &Region) -> Vec<u64> {
        region
            .blocks
            .iter()
            .map(|range| region.insns[range.start].ip())
            .collect()
    }

    #[test]
    fn a_loop_split_by_a_branch_is_one_region() {
        // 0x1000: movzx edx, byte [r9+rax] ; cmp dl, 0xe8 ; jne 0x100c
        // 0x100a: nop ; nop
        // 0x100c: inc rax ; cmp rax, r10 ; jb 0x1000
        // 0x1014: ret
        let code = [
            0x41, 0x0f, 0xb6, 0x14, 0x01, 0x80, 0xfa, 0xe8, 0x75, 0x02, 0x90, 0x90, 0x48, 0xff,
            0xc0, 0x4c, 0x39, 0xd0, 0x72, 0xec, 0xc3,
        ];
        let mut decode = decoder_for(0x1000, &code);
        let first = decode(0x1000, Join::Branch).unwrap();
        let region = form(first, MAX_TRACE_INSNS, decode);
        // The entry, going on through the jne into the nops and the loop's end (the jb
        // back to the entry ends it), and the jne target (which loops back); not the ret
        // after the loop.
        assert_eq!(starts(&region), [0x1000, 0x100c]);
        assert_eq!(region.entry_len(), 8);
        assert_eq!(region.insns.len(), 8 + 3);
        assert_eq!(side_exits(&region.insns[region.blocks[0].clone()]), 1);
        assert_eq!(slot_bases(&region.insns, &region.blocks), (vec![0, 3], 5));
    }

    #[test]
    fn a_block_goes_on_through_jccs_to_the_blocks_decode_gives() {
        // 0x1000: test eax, eax ; je 0x100a ; 0x1004: inc eax ; jne 0x100a ;
        // 0x1008: nop ; nop ; 0x100a: ret
        let code = [
            0x85, 0xc0, 0x74, 0x06, 0xff, 0xc0, 0x75, 0x02, 0x90, 0x90, 0xc3,
        ];
        let mut decode = decoder_for(0x1000, &code);
        let first = decode(0x1000, Join::Branch).unwrap();
        let region = form(first, MAX_TRACE_INSNS, &mut decode);
        assert_eq!(starts(&region), [0x1000]);
        let ips: Vec<u64> = region.insns.iter().map(Instruction::ip).collect();
        assert_eq!(
            ips,
            [0x1000, 0x1002, 0x1004, 0x1006, 0x1008, 0x1009, 0x100a]
        );
        assert_eq!(side_exits(&region.insns), 2);
        assert_eq!(successors(&region.insns), [0x100a, 0x100a]);
        // A fall-through `decode` does not give (it ran too rarely) stays out: the block
        // goes on at the JNE's target instead, its side exit to the fall-through.
        let mut cold = decoder_for(0x1000, &code);
        let region = form(
            decode(0x1000, Join::Branch).unwrap(),
            MAX_TRACE_INSNS,
            |rip, join| (rip != 0x1008).then(|| cold(rip, join)).flatten(),
        );
        let ips: Vec<u64> = region.insns.iter().map(Instruction::ip).collect();
        assert_eq!(ips, [0x1000, 0x1002, 0x1004, 0x1006, 0x100a]);
        assert_eq!(region.blocks.len(), 1);
        assert_eq!(successors(&region.insns), [0x100a, 0x1008]);
        // Neither way given: the block ends at the JNE.
        let region = form(
            decode(0x1000, Join::Branch).unwrap(),
            MAX_TRACE_INSNS,
            |rip, join| (rip < 0x1008).then(|| cold(rip, join)).flatten(),
        );
        let ips: Vec<u64> = region.insns.iter().map(Instruction::ip).collect();
        assert_eq!(ips, [0x1000, 0x1002, 0x1004, 0x1006]);
    }

    #[test]
    fn straight_code_stays_a_single_block() {
        // 0x1000: add eax, 1 ; jne 0x1008 ; nop x3 ; 0x1008: ret
        let code = [0x83, 0xc0, 0x01, 0x75, 0x03, 0x90, 0x90, 0x90, 0xc3];
        let mut decode = decoder_for(0x1000, &code);
        let first = decode(0x1000, Join::Branch).unwrap();
        let region = form(first, MAX_TRACE_INSNS, decode);
        assert_eq!(starts(&region), [0x1000]);
    }

    #[test]
    fn other_pages_stay_out() {
        // 0x1ffc: jmp 0x2000 (the next page) ... which would jump back.
        let mut code = vec![0x90; 4];
        code[0] = 0xeb;
        code[1] = 0x02;
        code.extend_from_slice(&[0xeb, 0xfa]); // 0x2000: jmp 0x1ffc
        let mut decode = decoder_for(0x1ffc, &code);
        let first = decode(0x1ffc, Join::Branch).unwrap();
        let region = form(first, MAX_TRACE_INSNS, decode);
        assert_eq!(starts(&region), [0x1ffc]);
    }
}
