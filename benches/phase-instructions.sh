#!/usr/bin/env bash
# Host instructions of one phase of the reference Debian guest's workload: softvisor
# --engine jit under callgrind, counting only between two serial markers (by default from
# the md5 line to the shell loop's line: the 20,000-iteration loop), split into generated
# code and everything else. Deterministic like benches/host-instructions.sh (compiles on
# the guest's thread), and aimed at one workload where that script counts from the start.
#
#   benches/phase-instructions.sh [--from MARKER] [--to MARKER] [BINARY...]
#
# MARKERs are the starts of serial lines (default "softvisor-guest: md5 " and
# "softvisor-guest: loop "). With binaries given, measures each (an A/B of two builds);
# else builds and measures this checkout's. About 3 minutes a binary.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
from="softvisor-guest: md5 "
to="softvisor-guest: loop "
while [ $# -gt 0 ]; do
    case "$1" in
        --from) from="${2:?--from takes a marker}"; shift 2 ;;
        --to) to="${2:?--to takes a marker}"; shift 2 ;;
        *) break ;;
    esac
done
source "$repo/benches/valgrind-setup.sh"
echo "phase: from \"$from\" to \"$to\"; $(valgrind --version)"
for n in "${!binaries[@]}"; do
    python3 - "$out/$n" "$from" "$to" "${binaries[$n]}" "${guest[0]}" "${guest[1]}" <<'EOF'
import os, signal, subprocess, sys, time
prefix, start, stop, binary, kernel, initrd = sys.argv[1:7]
# Collection off until the first marker, on until the second; then the counts are dumped
# and the guest stopped.
cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
       f"--callgrind-out-file={prefix}.cg", binary, "run", "--engine", "jit",
       "--no-compile-thread", "--memory", "512M", "--kernel", kernel, "--initrd", initrd,
       "--append", "panic=-1"]
guest = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=open(prefix + ".err", "w"))
markers, actions, seen, pending = [start, stop], [["-i", "on"], ["-d"]], 0, b""
while seen < 2:
    chunk = os.read(guest.stdout.fileno(), 65536)
    if not chunk:
        break
    pending += chunk
    *lines, pending = pending.split(b"\n")
    for line in lines:
        if seen < 2 and line.decode("utf-8", "replace").startswith(markers[seen]):
            subprocess.run(["callgrind_control", *actions[seen], str(guest.pid)],
                           capture_output=True, check=False)
            seen += 1
guest.send_signal(signal.SIGINT)
time.sleep(2)
guest.kill()
guest.wait()
if seen < 2:
    sys.exit(f"phase-instructions: {binary} never printed {markers[seen]!r}")
# The dump taken at the second marker: `fl=(id) name` names a file once (or a call's
# `cfi=`/`cfl=` does), `fl=(id)` refers back; JIT code has no symbols (`???`). Cost lines
# start with a digit or `+`/`-` (relative positions) and end with the instruction count.
dumps = sorted(p for p in os.listdir(os.path.dirname(prefix))
               if p.startswith(os.path.basename(prefix) + ".cg."))
path = os.path.join(os.path.dirname(prefix), dumps[0])
names, generated, total, in_generated, skip_call = {}, 0, 0, False, False
with open(path) as f:
    for line in f:
        if line.startswith(("cfi=", "cfl=")):
            ref, _, name = line[4:].strip().partition(" ")
            if name:
                names[ref] = name
        elif line.startswith(("fl=", "fi=", "fe=")):
            ref, _, name = line[3:].strip().partition(" ")
            if name:
                names[ref] = name
            in_generated = names.get(ref) == "???"
        elif line.startswith("calls="):
            skip_call = True  # the next cost line is the call's inclusive cost
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip_call:
                skip_call = False
                continue
            count = int(line.split()[-1])
            total += count
            if in_generated:
                generated += count
print(f"{binary}: host instructions {total:,}; generated code {generated:,}, "
      f"the rest {total - generated:,}")
EOF
done
