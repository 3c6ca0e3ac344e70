#!/usr/bin/env bash
# Sourced by benches/host-instructions.sh and benches/phase-instructions.sh (with `repo`
# set and the script's remaining arguments as binaries): installs valgrind if missing,
# checks for python3, and sets `binaries` (the arguments, or this checkout's release
# build), `guest` (the reference Debian guest's kernel and initramfs, fetched) and `out`
# (a scratch directory removed on exit).
if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq valgrind >/dev/null
fi
command -v python3 >/dev/null || { echo "$(basename "$0"): python3 is needed" >&2; exit 1; }
binaries=("$@")
if [ ${#binaries[@]} -eq 0 ]; then
    cargo build --release --manifest-path "$repo/Cargo.toml" --bin softvisor >&2
    binaries=("$repo/target/release/softvisor")
fi
mapfile -t guest < <(bash "$repo/scripts/debian-guest.sh" fetch)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
