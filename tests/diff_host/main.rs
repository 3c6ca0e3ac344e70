//! The host-differential suite: every covered instruction form, run from random states on
//! the host CPU and in softvisor's interpreter, compared bit for bit (in the spirit of
//! QEMU's risu).
//!
//! Environment:
//! - `DIFF_SEED` (default 0x5f7c0de), `DIFF_CASES` cases per form (default 200);
//! - `DIFF_FILTER=Add_rm32,Pshufb` runs only forms whose `Code` name contains one of the
//!   comma-separated words;
//! - `DIFF_GOLDEN=write` records the host's results as golden digests in
//!   `tests/golden/diff_host.txt`. On a host that is not x86-64 the suite replays the same
//!   generated cases in the interpreter and compares against those digests instead.
//! - The ignored test `soak` runs `DIFF_SOAK_CASES` cases (default 1,000,000) spread over
//!   all forms: `cargo test --release --test diff_host -- --ignored soak --nocapture`.

mod forms;
mod gen;
mod interp;
mod layout;
#[cfg(target_arch = "x86_64")]
mod native;
mod rng;
mod state;

use iced_x86::{Code, Decoder, DecoderOptions, Formatter, IntelFormatter};
use state::{differences, digest, Output};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const DEFAULT_SEED: u64 = 0x5f7_c0de;
const GOLDEN_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/diff_host.txt");

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = if let Some(hex) = v.strip_prefix("0x") {
                u64::from_str_radix(hex, 16)
            } else {
                v.parse()
            };
            parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        }
        Err(_) => default,
    }
}

fn selected_forms() -> Vec<Code> {
    let filter = std::env::var("DIFF_FILTER").unwrap_or_default();
    let words: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    forms::covered()
        .into_iter()
        .filter(|c| words.is_empty() || words.iter().any(|w| format!("{c:?}").contains(w)))
        .collect()
}

fn disassemble(bytes: &[u8]) -> String {
    let insn = Decoder::with_ip(64, bytes, layout::INSN_ADDR, DecoderOptions::NONE).decode();
    let mut text = String::new();
    IntelFormatter::new().format(&insn, &mut text);
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{text} [{}]", hex.join(" "))
}

/// Results of one suite run.
#[derive(Default)]
struct Summary {
    forms: usize,
    cases: u64,
    mismatches: u64,
    /// Cases where the JIT's one-instruction translation disagrees with the reference.
    jit_mismatches: u64,
    failing_forms: BTreeMap<String, u64>,
    report: String,
    digests: BTreeMap<String, u64>,
}

/// The reference result of a case: the host CPU where there is one.
#[cfg(target_arch = "x86_64")]
fn reference(case: &gen::Case) -> Option<Output> {
    Some(native::run(&case.bytes, &case.input))
}

#[cfg(not(target_arch = "x86_64"))]
fn reference(_case: &gen::Case) -> Option<Output> {
    None
}

fn run_suite(forms: &[Code], seed: u64, cases_per_form: u64) -> Summary {
    let mut s = Summary::default();
    let mut jit = softvisor_jit::Jit::new()
        .expect("a JIT for this host")
        .with_max_block_insns(1)
        .with_translate_after(1);
    for &code in forms {
        // One form's translations at a time in executable memory.
        jit.flush();
        let name = format!("{code:?}");
        let mut form_digest: u64 = 0;
        let mut generated = 0;
        for index in 0..cases_per_form {
            let Some(case) = gen::generate(seed, code, index) else {
                continue;
            };
            generated += 1;
            let actual = interp::run(&case.bytes, &case.input, None);
            let translated = interp::run(&case.bytes, &case.input, Some(&mut jit));
            form_digest = form_digest.rotate_left(5) ^ digest(&actual, case.mask);
            let translated_digest = digest(&translated, case.mask);
            let Some(expected) = reference(&case) else {
                // No host CPU to compare with: the JIT must match the interpreter, which
                // the golden digests check.
                if translated_digest != digest(&actual, case.mask) {
                    s.jit_mismatches += 1;
                    record(&mut s, &format!("{name} (jit)"), index, &case, &[]);
                }
                s.cases += 1;
                continue;
            };
            let jit_diffs = differences(&expected, &translated, case.mask);
            if !jit_diffs.is_empty() {
                s.jit_mismatches += 1;
                record(&mut s, &format!("{name} (jit)"), index, &case, &jit_diffs);
            }
            let diffs = differences(&expected, &actual, case.mask);
            if !diffs.is_empty() {
                s.mismatches += 1;
                record(&mut s, &name, index, &case, &diffs);
            }
            s.cases += 1;
        }
        if generated == 0 {
            s.mismatches += 1;
            s.failing_forms.insert(name.clone(), 0);
            let _ = writeln!(
                s.report,
                "UNGENERATABLE {name}: the generator could not encode this form"
            );
        }
        s.digests.insert(name, form_digest);
        s.forms += 1;
    }
    s
}

/// Notes a failing case in the report (two per form at most).
fn record(s: &mut Summary, name: &str, index: u64, case: &gen::Case, diffs: &[String]) {
    let count = s.failing_forms.entry(name.to_owned()).or_insert(0);
    *count += 1;
    if *count > 2 || s.report.len() >= 60_000 {
        return;
    }
    let _ = writeln!(
        s.report,
        "MISMATCH {name} case {index}: {}",
        disassemble(&case.bytes)
    );
    let regs: Vec<String> = case.input.gpr.iter().map(|v| format!("{v:x}")).collect();
    let _ = writeln!(
        s.report,
        "    input gpr [{}] rflags {:#x} mxcsr {:#x}",
        regs.join(" "),
        case.input.rflags,
        case.input.mxcsr()
    );
    for d in diffs.iter().take(6) {
        let _ = writeln!(s.report, "    {d}");
    }
}

fn read_golden() -> Option<(u64, u64, BTreeMap<String, u64>)> {
    let text = std::fs::read_to_string(GOLDEN_PATH).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let (seed, cases) = (
        u64::from_str_radix(header.get(1)?, 16).ok()?,
        header.get(3)?.parse().ok()?,
    );
    let map = lines
        .filter_map(|l| {
            let (name, hash) = l.split_once(' ')?;
            Some((name.to_string(), u64::from_str_radix(hash, 16).ok()?))
        })
        .collect();
    Some((seed, cases, map))
}

fn write_golden(seed: u64, cases: u64, digests: &BTreeMap<String, u64>) {
    let mut text = format!("seed {seed:x} cases {cases}\n");
    for (name, hash) in digests {
        let _ = writeln!(text, "{name} {hash:016x}");
    }
    std::fs::create_dir_all(std::path::Path::new(GOLDEN_PATH).parent().unwrap()).unwrap();
    std::fs::write(GOLDEN_PATH, text).unwrap();
}

/// Forms whose interpreter digest differs from the golden one or has none (same seed and
/// case count), or `None` when the golden file is for another seed or case count.
fn golden_mismatches(
    seed: u64,
    cases: u64,
    digests: &BTreeMap<String, u64>,
) -> Option<Vec<String>> {
    let (g_seed, g_cases, golden) = read_golden()?;
    if g_seed != seed || g_cases != cases {
        return None;
    }
    Some(
        digests
            .iter()
            .filter(|(name, hash)| golden.get(*name) != Some(*hash))
            .map(|(n, _)| n.clone())
            .collect(),
    )
}

/// Prints a summary line on the real stdout, past libtest's capture, so `cargo test` shows it.
fn summary(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

#[test]
fn host_differential() {
    let seed = env_u64("DIFF_SEED", DEFAULT_SEED);
    let cases = env_u64("DIFF_CASES", 200);
    let forms = selected_forms();
    let filtered = std::env::var("DIFF_FILTER").is_ok_and(|f| !f.trim().is_empty());
    let s = run_suite(&forms, seed, cases);
    print!("{}", s.report);
    if !s.failing_forms.is_empty() {
        println!(
            "failing forms ({}): {:?}",
            s.failing_forms.len(),
            s.failing_forms
        );
    }
    let mut mismatches = s.mismatches;
    if std::env::var("DIFF_GOLDEN").as_deref() == Ok("write")
        && !filtered
        && cfg!(target_arch = "x86_64")
        && s.mismatches == 0
    {
        write_golden(seed, cases, &s.digests);
        println!("golden digests written to {GOLDEN_PATH}");
    } else if let Some(bad) = golden_mismatches(seed, cases, &s.digests) {
        // On x86-64 the host CPU agreed, so a differing digest means a stale golden file,
        // which would let the replay on other hosts check the wrong results.
        if !bad.is_empty() {
            println!(
                "forms differing from or missing in the golden digests ({}): {bad:?}; \
                 if the host agrees, rerun with DIFF_GOLDEN=write",
                bad.len()
            );
        }
        mismatches += bad.len() as u64;
    } else if !cfg!(target_arch = "x86_64") {
        panic!("no golden digests for seed {seed:#x} with {cases} cases in {GOLDEN_PATH}");
    }
    summary(&format!(
        "diff-host reference: {}",
        if cfg!(target_arch = "x86_64") {
            "the host CPU, and the golden digests where seed and cases match"
        } else {
            "the golden digests of tests/golden/diff_host.txt, recorded on x86-64"
        }
    ));
    summary(&format!(
        "diff-host: {} forms, {} cases, {} mismatches",
        s.forms, s.cases, mismatches
    ));
    summary(&format!(
        "diff-host (jit): {} forms, {} cases, {} mismatches",
        s.forms, s.cases, s.jit_mismatches
    ));
    assert_eq!(
        mismatches, 0,
        "the interpreter disagrees with the reference"
    );
    assert_eq!(s.jit_mismatches, 0, "the JIT disagrees with the reference");
    if !filtered {
        assert!(
            s.forms >= 600,
            "only {} forms covered; the suite must cover at least 600",
            s.forms
        );
        assert!(
            cases < 200 || s.cases >= 200 * s.forms as u64,
            "some forms produced fewer cases than requested"
        );
    }
}

#[test]
#[ignore = "soak run: set DIFF_SOAK_CASES and DIFF_SEED"]
fn soak() {
    let seed = env_u64("DIFF_SEED", 0x50a_c0de);
    let total = env_u64("DIFF_SOAK_CASES", 1_000_000);
    let forms = selected_forms();
    let per_form = total.div_ceil(forms.len().max(1) as u64);
    let s = run_suite(&forms, seed, per_form);
    print!("{}", s.report);
    summary(&format!(
        "diff-host soak: {} forms, {} cases, {} mismatches",
        s.forms, s.cases, s.mismatches
    ));
    assert_eq!(s.mismatches, 0);
}

#[test]
fn excluded_forms_have_reasons() {
    // Every exclusion is explained; print the tally so the coverage is visible.
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for code in Code::values() {
        if let Some(reason) = forms::exclusion(code) {
            *reasons.entry(reason).or_insert(0) += 1;
        }
    }
    for (reason, count) in &reasons {
        println!("excluded {count:5}: {reason}");
    }
    assert!(reasons.values().sum::<usize>() < Code::values().len());
}
