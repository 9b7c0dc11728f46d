#!/usr/bin/env bash
# What a virtio queue notify costs the vCPU through a KVM ioeventfd, beside an MMIO exit,
# a port-I/O exit, and a PIC register write (in-kernel vs Tandem's PIC), per operation.
# Builds the guest (notify.S, ring 3, with the x86 test guests' prelude), runs it under
# both irqchip modes RUNS times, prints a Markdown table of the best run's per-operation
# cost (boot-timer markers around ITERS operations of each kind).
# Usage: bench/kvm-notify/run.sh   (ITERS=20000 RUNS=3; TANDEM=path skips the release build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ITERS=${ITERS:-20000}
RUNS=${RUNS:-3}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out=$target_dir/bench-kvm-notify
mkdir -p "$out"
if [ -z "${TANDEM:-}" ]; then
  echo "building tandem (release)..." >&2
  (cd "$repo" && CARGO_TARGET_DIR="$target_dir" cargo build --release -q -p tandem --bin tandem)
  TANDEM=$target_dir/release/tandem
fi
gcc -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-T "$repo/tests/guests/x86/guest.ld" \
  -I "$repo/tests/guests/x86" -DITERS="$ITERS" -o "$out/notify" "$here/notify.S"

# One run: prints the four phases' cost per operation in µs, space-separated.
run_once() {
  RUST_LOG=info "$TANDEM" run --kernel "$out/notify" --memory 64M --serial none --rng \
    --irqchip "$1" </dev/null 2>&1 >/dev/null |
    awk -v iters="$ITERS" '
      /boot timer: marker/ { for (i = 1; i < NF; i++) if ($i == "marker") t[$(i + 1)] = $(i + 3) }
      END {
        if (!(1 in t) || !(5 in t)) { print "run failed" > "/dev/stderr"; exit 1 }
        for (k = 1; k <= 4; k++) printf "%.2f ", (t[k + 1] - t[k]) * 1000 / iters
        print ""
      }'
}

# Best (lowest) of RUNS, per phase.
best() {
  local irqchip=$1 i line
  for ((i = 0; i < RUNS; i++)); do run_once "$irqchip"; done |
    awk '{ for (k = 1; k <= 4; k++) if (NR == 1 || $k < b[k]) b[k] = $k }
         END { printf "%s %s %s %s\n", b[1], b[2], b[3], b[4] }'
}

read -r k1 k2 k3 k4 <<<"$(best kernel)"
read -r u1 u2 u3 u4 <<<"$(best userspace)"
echo "Tandem $("$TANDEM" --version 2>/dev/null | awk '{print $2}'), $ITERS operations per kind, best of $RUNS, $(date +%Y-%m-%d)"
echo
echo "| operation (from guest ring 3) | --irqchip kernel | --irqchip userspace |"
echo "|---|---|---|"
echo "| virtio QueueNotify through an ioeventfd | $k1 µs | $u1 µs |"
echo "| the same register, no ioeventfd (MMIO exit to Tandem) | $k2 µs | $u2 µs |"
echo "| port write to an unclaimed port (port-I/O exit to Tandem) | $k3 µs | $u3 µs |"
echo "| PIC mask write (port 0x21) | $k4 µs (in-kernel PIC) | $u4 µs (Tandem's PIC) |"
