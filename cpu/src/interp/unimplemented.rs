//! Reporting of instructions the interpreter does not implement: each distinct encoding is
//! logged once (with its bytes) to stderr, and the guest gets #UD.

use iced_x86::{Formatter, Instruction, IntelFormatter};
use std::collections::HashSet;
use std::sync::Mutex;

static REPORTED: Mutex<Option<HashSet<Vec<u8>>>> = Mutex::new(None);

/// Logs `bytes` (and the disassembly when it decoded) the first time they are seen.
pub(super) fn report(bytes: &[u8], insn: Option<&Instruction>) {
    let Ok(mut guard) = REPORTED.lock() else {
        return;
    };
    let seen = guard.get_or_insert_with(HashSet::new);
    if !seen.insert(bytes.to_vec()) {
        return;
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let text = match insn {
        Some(insn) => {
            let mut out = String::new();
            IntelFormatter::new().format(insn, &mut out);
            format!("{out} ({:?})", insn.code())
        }
        None => "undecodable".to_string(),
    };
    eprintln!(
        "softvisor: unimplemented instruction {} [{}]: raising #UD",
        text,
        hex.join(" ")
    );
}
