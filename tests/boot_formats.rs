//! `softvisor run` with the kernel formats besides bzImage: a multiboot v1 ELF32 kernel and
//! an ELF64 vmlinux, each assembled from `tests/boot_formats/` with GNU as/ld. The guests
//! check inside what the loader handed them (registers, the multiboot information or the
//! zero page, the command line, the initrd) and exit through port 0xf4, so a pass is exit
//! status 1 ((0 << 1) | 1) and the command line appears on the debug console.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn build(source: &str, bits: u32, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boot_formats");
    std::fs::create_dir_all(&dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/boot_formats")
        .join(source);
    let object = dir.join(format!("{source}.o"));
    let elf = dir.join(format!("{source}.elf"));
    let (as_flag, emulation) = if bits == 32 {
        ("--32", "elf_i386")
    } else {
        ("--64", "elf_x86_64")
    };
    let ok = Command::new("as")
        .args([as_flag, "-o"])
        .arg(&object)
        .arg(&src)
        .status()
        .expect("GNU as")
        .success();
    assert!(ok, "assembling {source}");
    let ok = Command::new("ld")
        .args([
            "-m",
            emulation,
            "-e",
            "start",
            &format!("-Ttext={text}"),
            "-o",
        ])
        .arg(&elf)
        .arg(&object)
        .status()
        .expect("GNU ld")
        .success();
    assert!(ok, "linking {source}");
    elf
}

fn run(kernel: &Path, cmdline: &str) -> (i32, String, String) {
    let initrd = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boot_formats/initrd");
    std::fs::write(&initrd, b"MOD!").unwrap();
    let out = support::softvisor()
        .args([
            "run",
            "--memory",
            "32M",
            "--max-insns",
            "1000000",
            "--append",
            cmdline,
        ])
        .arg("--kernel")
        .arg(kernel)
        .arg("--initrd")
        .arg(&initrd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn multiboot_elf32_kernel_boots_with_its_information() {
    let kernel = build("multiboot32.S", 32, "0x100000");
    let (code, stdout, stderr) = run(&kernel, "console=ttyS0 hello-multiboot");
    assert_eq!(code, 1, "guest checks failed: {stdout} {stderr}");
    assert!(stdout.contains("console=ttyS0 hello-multiboot"), "{stdout}");
}

#[test]
fn elf64_vmlinux_boots_with_a_zero_page() {
    let kernel = build("vmlinux64.S", 64, "0x1000000");
    let (code, stdout, stderr) = run(&kernel, "console=ttyS0 hello-vmlinux");
    assert_eq!(code, 1, "guest checks failed: {stdout} {stderr}");
    assert!(stdout.contains("console=ttyS0 hello-vmlinux"), "{stdout}");
}
