#!/usr/bin/env bash
# Whole-guest benchmark: softvisor --engine jit, --engine interp and QEMU TCG on the
# reference Debian guest, in one run; prints medians and ratios (see whole_guest.py).
# Installs Debian's qemu-system-x86 when missing. Arguments go to whole_guest.py
# (--runs N, --engines jit,interp,qemu).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v qemu-system-x86_64 >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq qemu-system-x86 >/dev/null
fi
command -v python3 >/dev/null || { echo "whole-guest: python3 is needed" >&2; exit 1; }
cargo build --release --manifest-path "$repo/Cargo.toml" --bin softvisor >&2
mapfile -t guest < <(bash "$repo/scripts/debian-guest.sh" fetch)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores;" \
     "$(qemu-system-x86_64 --version | head -1)"
exec python3 "$repo/benches/whole_guest.py" --softvisor "$repo/target/release/softvisor" \
     --kernel "${guest[0]}" --initrd "${guest[1]}" "$@"
