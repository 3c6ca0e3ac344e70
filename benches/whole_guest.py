#!/usr/bin/env python3
"""Whole-guest benchmark: softvisor (JIT and interpreter) against QEMU TCG, same run.

Boots the reference Debian kernel and busybox initramfs (scripts/debian-guest.sh) in
`softvisor run --engine jit`, `softvisor run --engine interp` and
`qemu-system-x86_64 -accel tcg`, several times each, timestamps the guest's serial markers
as they arrive, and prints the medians of:
  - boot: wall time from start to "softvisor-guest: init reached";
  - md5:  from the init marker to the md5 of 64 MiB of zeros;
  - loop: from the md5 line to the end of the 20,000-iteration shell loop;
and the ratios of softvisor's times to QEMU's. The emulator is stopped after the loop.

Usage: benches/whole-guest.sh [--runs N] [--engines jit,interp,qemu]
"""

import argparse
import os
import selectors
import statistics
import subprocess
import sys
import time

MARKERS = {
    "init": "softvisor-guest: init reached",
    "md5": "softvisor-guest: md5 ",
    "loop": "softvisor-guest: loop 20000",
}
TIMEOUT_S = 1800


def command(engine, softvisor, kernel, initrd):
    append = "console=ttyS0 panic=-1"
    if engine == "qemu":
        return [
            "qemu-system-x86_64", "-accel", "tcg", "-m", "512M", "-nodefaults",
            "-display", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd, "-append", append,
        ]
    return [
        softvisor, "run", "--engine", engine, "--memory", "512M",
        "--kernel", kernel, "--initrd", initrd, "--append", "panic=-1",
    ]


def one_run(cmd):
    """Runs one boot; returns {marker: seconds since start}."""
    start = time.monotonic()
    # softvisor reads a piped stdin to its end before it starts (scripted console input),
    # so it gets an empty one; QEMU's stdio serial keeps an open pipe.
    stdin = subprocess.PIPE if cmd[0].startswith("qemu") else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    seen = {}
    pending = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while len(seen) < len(MARKERS) and time.monotonic() - start < TIMEOUT_S:
            if not sel.select(timeout=1.0):
                if proc.poll() is not None:
                    break
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            now = time.monotonic() - start
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace")
                for name, marker in MARKERS.items():
                    if name not in seen and text.startswith(marker):
                        seen[name] = now
    finally:
        proc.kill()
        proc.wait()
    if len(seen) < len(MARKERS):
        raise RuntimeError(f"{cmd[0]}: markers missing ({sorted(seen)})")
    return {
        "boot": seen["init"],
        "md5": seen["md5"] - seen["init"],
        "loop": seen["loop"] - seen["md5"],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engines", default="jit,interp,qemu")
    parser.add_argument("--softvisor", required=True)
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--initrd", required=True)
    args = parser.parse_args()
    engines = args.engines.split(",")
    results = {e: [] for e in engines}
    # Interleave engines so machine noise hits them alike.
    for run in range(args.runs):
        for engine in engines:
            r = one_run(command(engine, args.softvisor, args.kernel, args.initrd))
            results[engine].append(r)
            print(f"run {run + 1} {engine:6}: boot {r['boot']:7.2f} s  md5 {r['md5']:6.2f} s"
                  f"  loop {r['loop']:6.2f} s", flush=True)
    medians = {e: {k: statistics.median(r[k] for r in rs) for k in ("boot", "md5", "loop")}
               for e, rs in results.items()}
    print(f"\nmedians of {args.runs} runs (wall seconds)")
    print(f"{'engine':8} {'boot to init':>13} {'md5 64 MiB':>11} {'shell loop':>11}")
    for e, m in medians.items():
        print(f"{e:8} {m['boot']:13.2f} {m['md5']:11.2f} {m['loop']:11.2f}")
    if "qemu" in medians:
        q = medians["qemu"]
        print("\nratio to qemu-system-x86_64 -accel tcg (lower is faster)")
        for e, m in medians.items():
            if e != "qemu":
                print(f"{e:8} {m['boot'] / q['boot']:13.2f} {m['md5'] / q['md5']:11.2f}"
                      f" {m['loop'] / q['loop']:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
