#!/usr/bin/env python3
"""Side-by-side KVM benchmarks: Tandem vs QEMU (Debian's qemu-system-x86_64 -M microvm).

Both VMMs boot the same PVH ELF guests (bench.S) on this host's /dev/kvm:
  * start-up: whole-process wall time for a guest that exits at once; plus Tandem's own
    boot-timer figure (time from process start to the guest's first instruction);
  * port-I/O and MMIO exit round trips: (wall(N exits) - wall(0 exits)) / N;
  * memory overhead: process RSS minus the resident part of the 128 MiB guest RAM, for a
    1 vCPU guest idling after boot.
Prints a Markdown report (median of --runs runs each) with Tandem/QEMU ratios.

Usage: bench/x86/run.py [--runs 7] [--iters 20000]
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
MEMORY_MIB = 128


def build_guest(out_dir, name, defines):
    out = os.path.join(out_dir, name)
    subprocess.run(
        ["gcc", "-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none",
         "-Wl,-T," + os.path.join(HERE, "bench.ld"), "-o", out, os.path.join(HERE, "bench.S")]
        + ["-D" + d for d in defines],
        check=True)
    return out


def tandem_cmd(kernel):
    return [os.path.join(ROOT, "target", "release", "tandem"), "run", "--kernel", kernel,
            "--memory", f"{MEMORY_MIB}M", "--cpus", "1", "--serial", "none"]


def qemu_cmd(kernel):
    # Default CPU model: "-cpu host" makes QEMU 7.2 abort on this nested-PVM host (MSR 0x10a).
    return ["qemu-system-x86_64", "-accel", "kvm", "-M", "microvm,x-option-roms=off",
            "-smp", "1", "-m", str(MEMORY_MIB), "-nographic", "-nodefaults",
            "-no-user-config", "-kernel", kernel,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]


# The guest writes 0 to port 0xf4: Tandem exits 0, QEMU's isa-debug-exit exits (0 << 1) | 1.
EXPECTED_STATUS = {"tandem": 0, "qemu": 1}


def timed(cmd):
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    vmm = "tandem" if "tandem" in os.path.basename(cmd[0]) else "qemu"
    if proc.returncode != EXPECTED_STATUS[vmm]:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    return elapsed, proc.stderr


def median_wall(cmd, runs):
    times, stderrs = [], []
    for _ in range(runs):
        t, err = timed(cmd)
        times.append(t)
        stderrs.append(err)
    return statistics.median(times), stderrs


def smaps_rss_kib(pid):
    """Total RSS and the RSS of the guest-RAM mapping (the anonymous one sized like it)."""
    total = guest = 0
    size = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
                total += rss
                if size is not None and MEMORY_MIB * 1024 <= size <= (MEMORY_MIB + 4) * 1024:
                    guest += rss
    return total, guest


def memory_overhead_kib(cmd):
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)  # let it boot and settle; the guest then halts forever
        if proc.poll() is not None:
            sys.exit(f"{' '.join(cmd)} ended early with status {proc.returncode}")
        total, guest = smaps_rss_kib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    return total - guest, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--iters", type=int, default=20000)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "tandem", "--bin", "tandem"],
                   cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp(prefix="tandem-bench-")
    empty = build_guest(tmp, "empty", ["MODE_PIO", "ITERS=0"])
    pio = build_guest(tmp, "pio", ["MODE_PIO", f"ITERS={args.iters}"])
    mmio = build_guest(tmp, "mmio", ["MODE_MMIO", f"ITERS={args.iters}"])
    idle = build_guest(tmp, "idle", ["MODE_IDLE"])

    rows = []
    results = {}
    for name, mk in (("tandem", tandem_cmd), ("qemu", qemu_cmd)):
        base, errs = median_wall(mk(empty), args.runs)
        t_pio, _ = median_wall(mk(pio), args.runs)
        t_mmio, _ = median_wall(mk(mmio), args.runs)
        overhead, total = memory_overhead_kib(mk(idle))
        boot = None
        if name == "tandem":
            marks = [float(m) for e in errs for m in re.findall(r"reached ([0-9.]+) ms", e)]
            boot = statistics.median(marks) if marks else None
        results[name] = {
            "start_ms": base * 1e3,
            "first_insn_ms": boot,
            "pio_us": (t_pio - base) / args.iters * 1e6,
            "mmio_us": (t_mmio - base) / args.iters * 1e6,
            "overhead_mib": overhead / 1024,
            "rss_mib": total / 1024,
        }

    t, q = results["tandem"], results["qemu"]

    def ratio(a, b):
        return f"{a / b:.2f}x" if b else "n/a"

    print(f"Median of {args.runs} runs; exit costs from {args.iters} exits per run; guest: "
          f"1 vCPU, {MEMORY_MIB} MiB, PVH entry, 32-bit ring 0.\n")
    print("| metric | Tandem | QEMU microvm | Tandem / QEMU |")
    print("|---|---|---|---|")
    print(f"| process start to guest exit (empty guest) | {t['start_ms']:.1f} ms | {q['start_ms']:.1f} ms | {ratio(t['start_ms'], q['start_ms'])} |")
    fi = f"{t['first_insn_ms']:.2f} ms" if t["first_insn_ms"] is not None else "n/a"
    print(f"| Tandem start to first guest instruction (boot timer) | {fi} | - | - |")
    print(f"| port-I/O exit round trip | {t['pio_us']:.2f} µs | {q['pio_us']:.2f} µs | {ratio(t['pio_us'], q['pio_us'])} |")
    print(f"| MMIO exit round trip | {t['mmio_us']:.2f} µs | {q['mmio_us']:.2f} µs | {ratio(t['mmio_us'], q['mmio_us'])} |")
    print(f"| VMM memory overhead (RSS - guest RAM) | {t['overhead_mib']:.1f} MiB | {q['overhead_mib']:.1f} MiB | {ratio(t['overhead_mib'], q['overhead_mib'])} |")
    print(f"| total RSS, idle guest | {t['rss_mib']:.1f} MiB | {q['rss_mib']:.1f} MiB | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
