//! The reference guest end to end: Debian 12's stock kernel and a busybox initramfs (fetched
//! and built by `scripts/debian-guest.sh`), booted with the command line
//! `console=ttyS0 panic=-1`.
//!
//! One scripted console session is run in the interpreter and in the JIT (side by side, one
//! core each; `SOFTVISOR_DEBIAN_ENGINES` picks others, as `scripts/aarch64-check.sh` does). Each run must reach `/init`, print the workload's results (the md5 of 64 MiB
//! of zeros and a 20,000-iteration shell loop), answer a command typed on the console, and
//! end with `poweroff -f` and exit status 0. The two serial logs must be byte-identical,
//! kernel timestamps included: the engines agree instruction count for instruction count.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// MD5 of 64 MiB of zero bytes.
const MD5_64MIB_ZEROS: &str = "7f614da9329cd3aebf59b91aadc30bf0";
/// What the console session types.
const SCRIPT: &str = "echo hello-from-the-console\npoweroff -f\n";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Kernel and initramfs, fetched on first use.
fn guest() -> (PathBuf, PathBuf) {
    let out = Command::new("bash")
        .arg(repo().join("scripts/debian-guest.sh"))
        .arg("fetch")
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/debian-guest.sh");
    assert!(out.status.success(), "fetching the reference guest failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let kernel = PathBuf::from(lines.next().expect("kernel path"));
    let initrd = PathBuf::from(lines.next().expect("initrd path"));
    (kernel, initrd)
}

/// Boots the guest with the console script on stdin; returns exit code and serial output.
fn boot(kernel: &Path, initrd: &Path, engine: &str) -> (i32, String) {
    let mut child = support::softvisor()
        .args([
            "run", "--engine", engine, "--append", "panic=-1", "--kernel",
        ])
        .arg(kernel)
        .arg("--initrd")
        .arg(initrd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start softvisor");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(SCRIPT.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn has_line(log: &str, wanted: &str) -> bool {
    log.lines()
        .any(|line| line.trim_end_matches('\r') == wanted)
}

fn check_session(code: i32, log: &str) {
    let tail: String = {
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    assert_eq!(
        code, 0,
        "poweroff must end softvisor with 0; log tail:\n{tail}"
    );
    assert!(
        log.contains("Command line: console=ttyS0 panic=-1"),
        "{tail}"
    );
    assert!(
        has_line(log, "softvisor-guest: init reached"),
        "no init marker:\n{tail}"
    );
    assert!(
        has_line(log, &format!("softvisor-guest: md5 {MD5_64MIB_ZEROS}  -")),
        "md5 workload:\n{tail}"
    );
    assert!(
        has_line(log, "softvisor-guest: loop 20000"),
        "loop:\n{tail}"
    );
    assert!(
        has_line(log, "hello-from-the-console"),
        "the shell did not answer the typed command:\n{tail}"
    );
    assert!(log.contains("reboot: Power down"), "{tail}");
}

/// The first line where two logs differ, as a panic message.
fn first_difference(what: &str, a: &str, b: &str) -> String {
    let line = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()));
    format!(
        "{what} differ from line {}:\n  {:?}\n  {:?}",
        line + 1,
        a.lines().nth(line),
        b.lines().nth(line)
    )
}

/// Where each engine's serial log is kept, per host architecture, for comparing builds.
fn log_path(engine: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("debian-boot")
        .join(format!("{engine}-{}.log", std::env::consts::ARCH))
}

/// Boots the guest in each engine (default `interp,jit`, or `SOFTVISOR_DEBIAN_ENGINES`),
/// side by side, and requires byte-identical serial logs; with
/// `SOFTVISOR_DEBIAN_REFERENCE=<log>` also identical to that log (another build's).
#[test]
fn debian_kernel_boots_in_both_engines_with_identical_serial_logs() {
    let (kernel, initrd) = guest();
    let engines = std::env::var("SOFTVISOR_DEBIAN_ENGINES").unwrap_or("interp,jit".into());
    let engines: Vec<String> = engines.split(',').map(|e| e.trim().to_owned()).collect();
    let boots: Vec<_> = engines
        .iter()
        .map(|engine| {
            let (kernel, initrd, engine) = (kernel.clone(), initrd.clone(), engine.clone());
            std::thread::spawn(move || boot(&kernel, &initrd, &engine))
        })
        .collect();
    let logs: Vec<String> = boots
        .into_iter()
        .zip(&engines)
        .map(|(boot, engine)| {
            let (code, log) = boot.join().expect("a boot thread");
            let path = log_path(engine);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &log).unwrap();
            check_session(code, &log);
            log
        })
        .collect();
    for (engine, log) in engines.iter().zip(&logs).skip(1) {
        if *log != logs[0] {
            let what = format!("the {} and {engine} serial logs", engines[0]);
            panic!("{}", first_difference(&what, &logs[0], log));
        }
    }
    let mut verdict = format!("{} serial bytes each, byte-identical", logs[0].len());
    if let Ok(reference) = std::env::var("SOFTVISOR_DEBIAN_REFERENCE") {
        let expected = std::fs::read_to_string(&reference)
            .unwrap_or_else(|e| panic!("reading the reference log {reference}: {e}"));
        if expected != logs[0] {
            let what = format!("this build's log and {reference}");
            panic!("{}", first_difference(&what, &expected, &logs[0]));
        }
        verdict += &format!(" and identical to {reference}");
    }
    // Written past libtest's capture, so the README's test command shows it.
    let _ = writeln!(
        std::io::stderr(),
        "debian-boot ({} host): {} boots to /init, workload and poweroff, {verdict}",
        std::env::consts::ARCH,
        engines.join(" and "),
    );
}
