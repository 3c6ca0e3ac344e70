#!/usr/bin/env bash
# The checks of an ARM host, run on this x86-64 machine: softvisor is cross-built for
# aarch64-unknown-linux-gnu and every test binary runs under qemu-aarch64-static (user-mode
# emulation), so its Cranelift backend emits and runs aarch64 code.
#
#   scripts/aarch64-check.sh           everything below
#   scripts/aarch64-check.sh --quick   without the Debian boot (the slow part)
#
# 1. The crates' unit tests, the CLI and boot-format tests.
# 2. The differential suite, replaying the golden vectors recorded on x86-64
#    (tests/golden/diff_host.txt) in the interpreter and the JIT: all forms, 0 mismatches.
# 3. Every guest program in tests/guests under the interpreter, the JIT and the lockstep check.
# 4. (not with --quick) The Debian reference boot under `--engine jit` on the aarch64 build,
#    whose serial log must be byte-identical to the x86-64 build's (its last boot's log when
#    newer than its binary, as after `cargo test --release`; else booted here first).
#
# It installs what it needs: the Rust target, Debian's cross linker and qemu-user-static.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
quick=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi
missing=()
for tool in aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu \
            qemu-aarch64-static:qemu-user-static; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
[ -e /usr/aarch64-linux-gnu/lib/libc.so ] || missing+=(libc6-dev-arm64-cross)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

runner="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$runner"
# The tests that start the softvisor binary start it through the same runner.
export SOFTVISOR_TEST_RUNNER="$runner"

cross_test() {
  cargo test --release --target "$target" "$@"
}

echo "aarch64-check: unit, CLI and boot-format tests" >&2
cross_test --workspace --lib --bins --test cli --test boot_formats
echo "aarch64-check: golden-vector differential suite and guest programs" >&2
cross_test --test diff_host --test guests

if [ "$quick" = 1 ]; then
  echo "aarch64-check: --quick, Debian boot skipped" >&2
  exit 0
fi

# The x86-64 build's JIT log, unless `cargo test --release` (as in .ci/run) left one newer
# than that build's binary.
reference="$PWD/target/tmp/debian-boot/jit-x86_64.log"
if [ -f target/release/softvisor ] && [ "$reference" -nt target/release/softvisor ]; then
  echo "aarch64-check: reference log from the x86-64 build's last boot: $reference" >&2
else
  echo "aarch64-check: Debian boot under the x86-64 build's JIT (the reference log)" >&2
  SOFTVISOR_DEBIAN_ENGINES=jit SOFTVISOR_TEST_RUNNER= \
    cargo test --release --test debian_boot -- --nocapture
fi
echo "aarch64-check: Debian boot under the aarch64 build's JIT" >&2
start=$(date +%s)
SOFTVISOR_DEBIAN_ENGINES=jit SOFTVISOR_DEBIAN_REFERENCE="$reference" \
  cross_test --test debian_boot -- --nocapture
echo "aarch64-check: the aarch64 Debian boot took $(( $(date +%s) - start )) s under qemu-user" >&2
