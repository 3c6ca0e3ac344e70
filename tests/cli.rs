//! The command line: a flat image runs to HLT, and bad input gets a one-line error and a
//! non-zero exit, never a panic.

use std::process::Command;

fn softvisor(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_softvisor"))
        .args(args)
        .output()
        .expect("softvisor runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn image(name: &str, bytes: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("softvisor-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn runs_an_image_to_hlt() {
    // mov rax, 42 ; add rax, rax ; hlt
    let path = image(
        "ok",
        &[0x48, 0xc7, 0xc0, 0x2a, 0, 0, 0, 0x48, 0x01, 0xc0, 0xf4],
    );
    let (code, stdout, _) = softvisor(&["exec", "--image", &path]);
    assert_eq!(code, 0);
    assert!(stdout.contains("rax=0000000000000054"), "{stdout}");
    assert!(stdout.contains("instructions=3"), "{stdout}");
}

#[test]
fn guest_fault_is_reported() {
    // ud2
    let path = image("ud", &[0x0f, 0x0b]);
    let (code, _, stderr) = softvisor(&["exec", "--image", &path]);
    assert_eq!(code, 1);
    assert!(stderr.contains("InvalidOpcode (vector 6)"), "{stderr}");
}

#[test]
fn bad_input_gets_one_line_errors() {
    let path = image("small", &[0xf4]);
    let cases: [(&[&str], &str); 4] = [
        (
            &["exec", "--image", "/nonexistent/kernel"],
            "cannot read image /nonexistent/kernel",
        ),
        (
            &["exec", "--image", &path, "--memory", "12Q"],
            "is not a size",
        ),
        (&["exec", "--image", &path, "--memory", "4K"], "outside RAM"),
        (
            &["exec", "--image", &path, "--memory", "4097"],
            "must be a non-zero multiple of 4 KiB",
        ),
    ];
    for (args, message) in cases {
        let (code, _, stderr) = softvisor(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let empty = image("empty", &[]);
    let (code, _, stderr) = softvisor(&["exec", "--image", &empty]);
    assert_eq!((code, stderr.lines().count()), (2, 1), "{stderr}");
}
