#!/usr/bin/env bash
# Host instructions per guest instruction: softvisor --engine jit on the reference Debian
# guest under cachegrind, for a fixed number of guest instructions, split into generated
# code and everything else (the interpreter, the dispatcher, Cranelift, devices).
#
# Unlike wall time on a shared machine, the count repeats (to a few hundred in billions:
# compiles run on the guest's thread, --no-compile-thread, so which code runs does not
# depend on timing), so a change of 0.1% shows. It counts instructions, not cycles: a change that moves work off the
# critical path, or adds cache misses, shows only in benches/whole-guest.sh.
#
#   benches/host-instructions.sh [--insns N] [BINARY...]
#
# N guest instructions (default 1000000000: the boot into the kernel's XZ decompressor;
# 7000000000 reaches through md5 into the shell loop, about 4 minutes). With binaries
# given, measures each (an A/B of two builds); else builds and measures this checkout's.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
insns=1000000000
if [ "${1:-}" = "--insns" ]; then
    insns="${2:?--insns takes a count}"
    shift 2
fi
source "$repo/benches/valgrind-setup.sh"
echo "guest instructions: $insns; $(valgrind --version)"
for n in "${!binaries[@]}"; do
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$out/$n.cg" \
        "${binaries[$n]}" run --engine jit --no-compile-thread --max-insns "$insns" \
        --memory 512M --kernel "${guest[0]}" --initrd "${guest[1]}" --append panic=-1 \
        >/dev/null 2>"$out/$n.err" || true
    grep -q "instruction limit" "$out/$n.err" ||
        { echo "host-instructions: ${binaries[$n]} stopped early:" >&2; tail -3 "$out/$n.err" >&2; exit 1; }
    python3 - "$out/$n.cg" "$insns" "${binaries[$n]}" <<'EOF'
import sys
# cachegrind's output: `fl=` names a source file (`???` for code without symbols: the
# JIT's), lines that start with a digit give a line number and its instruction count.
path, guest, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
generated = total = 0
in_generated = False
with open(path) as f:
    for line in f:
        if line.startswith("fl="):
            in_generated = line.strip() == "fl=???"
        elif line[:1].isdigit():
            count = int(line.split()[1])
            total += count
            if in_generated:
                generated += count
print(f"{name}: host instructions {total:,} ({total / guest:.3f} per guest instruction); "
      f"generated code {generated:,} ({generated / guest:.3f}), "
      f"the rest {total - generated:,} ({(total - generated) / guest:.3f})")
EOF
done
