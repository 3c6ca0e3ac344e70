//! The command line: a flat image runs to HLT, and bad input gets a one-line error and a
//! non-zero exit, never a panic.

mod support;

fn softvisor(args: &[&str]) -> (i32, String, String) {
    let out = support::softvisor()
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

/// A minimal bzImage header: protocol 2.15 with a 64-bit entry, 4 MiB init size.
fn tiny_bzimage() -> Vec<u8> {
    let mut image = vec![0u8; 0x1000];
    image[0x1f1] = 1;
    image[0x202..0x206].copy_from_slice(b"HdrS");
    image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    image[0x211] = 1;
    image[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    image[0x236..0x238].copy_from_slice(&1u16.to_le_bytes());
    image[0x238..0x23c].copy_from_slice(&2048u32.to_le_bytes());
    image[0x260..0x264].copy_from_slice(&(4u32 << 20).to_le_bytes());
    image
}

#[test]
fn run_rejects_bad_input_with_one_line_errors() {
    let kernel = image("kernel", &tiny_bzimage());
    let not_kernel = image("notkernel", &[0u8; 8192]);
    let big_initrd = image("initrd", &vec![0u8; 20 << 20]);
    let cases: [(&[&str], &str); 9] = [
        (
            &["run", "--kernel", "/nonexistent/bzImage"],
            "cannot read kernel /nonexistent/bzImage",
        ),
        // A directory cannot be read as a file (permissions cannot be tested as root).
        (&["run", "--kernel", "/"], "cannot read kernel /"),
        (
            &[
                "run",
                "--kernel",
                &kernel,
                "--initrd",
                "/nonexistent/initrd",
            ],
            "cannot read initrd /nonexistent/initrd",
        ),
        (&["run", "--kernel", &not_kernel], "not a kernel"),
        (
            &["run", "--kernel", &kernel, "--memory", "lots"],
            "is not a size",
        ),
        (
            &["run", "--kernel", &kernel, "--memory", "8M"],
            "--memory 8 MiB is not supported",
        ),
        (
            &[
                "run",
                "--kernel",
                &kernel,
                "--memory",
                "24M",
                "--initrd",
                &big_initrd,
            ],
            "does not fit in guest memory",
        ),
        (
            &["run", "--kernel", &kernel, "--check"],
            "--check needs --engine jit",
        ),
        (
            &["run", "--kernel", &kernel, "--perf-map"],
            "--perf-map needs --engine jit",
        ),
    ];
    for (args, message) in cases {
        let (code, _, stderr) = softvisor(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn run_reports_a_guest_that_halts_for_good() {
    // The kernel "entry" at 1 MiB + 0x200: cli; hlt.
    let mut bz = tiny_bzimage();
    bz.resize(2 * 512, 0);
    let mut payload = vec![0u8; 0x200];
    payload.extend_from_slice(&[0xfa, 0xf4]);
    bz.extend_from_slice(&payload);
    bz.resize(bz.len().max(0x1000), 0);
    let kernel = image("halting", &bz);
    let (code, _, stderr) = softvisor(&["run", "--kernel", &kernel, "--memory", "32M"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("halted with interrupts disabled"),
        "{stderr}"
    );
}
