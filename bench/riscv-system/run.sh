#!/usr/bin/env bash
# RISC-V full-system benchmarks: Tandem's riscv-virt machine beside qemu-system-riscv64
# -M virt (Debian's qemu-system-misc) on the same kernel and initramfs, in one run:
#   1. wall time from start to poweroff (1 and 4 harts) and the guest's BOOT-OK uptime;
#   2. the user-mode suite (bench/riscv/*.c, static) run inside the guest, timed there;
#   3. the same suite under tandem-riscv64 (user mode), to show what the soft MMU costs.
# Prints ratios and writes docs/benchmarks-riscv-system.md.
# Usage: bench/riscv-system/run.sh   (REPS=3; KERNEL=, INITRD= default to ../shared/guest)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
REPS=${REPS:-3}
guest=${TANDEM_GUEST_DIR:-$repo/../shared/guest}
KERNEL=${KERNEL:-$guest/linux-riscv64.Image}
INITRD=${INITRD:-$guest/initramfs-riscv64.cpio.gz}
out=${CARGO_TARGET_DIR:-$repo/target}/bench-riscv-system
md=${MD:-$repo/docs/benchmarks-riscv-system.md}
mkdir -p "$out"
for tool in riscv64-linux-gnu-gcc:gcc-riscv64-linux-gnu qemu-system-riscv64:qemu-system-misc cpio:cpio bc:bc; do
  command -v "${tool%%:*}" >/dev/null || { echo "missing ${tool%%:*}: apt-get install ${tool##*:}" >&2; exit 1; }
done
target_dir=${CARGO_TARGET_DIR:-$repo/target}
echo "building tandem (release)..." >&2
(cd "$repo" && CARGO_TARGET_DIR="$target_dir" cargo build --release -q -p tandem --bin tandem --bin tandem-riscv64)
tandem=$target_dir/release/tandem
tandem_user=$target_dir/release/tandem-riscv64

# The suite, static, plus the timing wrapper, appended to the initramfs as a second cpio
# archive (Linux unpacks concatenated archives in order).
benches=(crc sort matmul nbody text bytecode memops)
rm -rf "$out/root"; mkdir -p "$out/root/bench"
for b in "${benches[@]}"; do
  riscv64-linux-gnu-gcc -O2 -static -o "$out/root/bench/$b" "$repo/bench/riscv/$b.c" -lm
done
riscv64-linux-gnu-gcc -O2 -static -o "$out/root/bench/timeit" "$here/timeit.c"
(cd "$out/root" && find bench | cpio -o -H newc --quiet | gzip) > "$out/bench.cpio.gz"
cat "$INITRD" "$out/bench.cpio.gz" > "$out/initrd-bench.cpio.gz"
suite_cmd=""
for b in "${benches[@]}"; do suite_cmd="$suite_cmd run=/bench/timeit,/bench/$b"; done

now() { date +%s.%N; }
tandem_run() { "$tandem" run --machine riscv-virt --kernel "$KERNEL" --memory 256M --serial stdio "$@" </dev/null; }
qemu_run() {
  local cpus=1 initrd="$INITRD" cmdline="console=ttyS0 panic=-1"
  while [ $# -gt 0 ]; do
    case "$1" in
      --cpus) cpus=$2; shift 2 ;; --initrd) initrd=$2; shift 2 ;; --cmdline) cmdline=$2; shift 2 ;;
      *) shift ;;
    esac
  done
  qemu-system-riscv64 -M virt -m 256M -smp "$cpus" -nographic -no-reboot -kernel "$KERNEL" \
    -initrd "$initrd" -append "$cmdline" </dev/null
}
# best CMD...: best wall time over $REPS runs; the last run's console in $out/last.log
best() {
  local b=""
  for _ in $(seq "$REPS"); do
    local s e t; s=$(now); "$@" >"$out/last.log" 2>&1 || true; e=$(now)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
  done
  printf "%.3f" "$b"
}
uptime_of() { sed -n 's/.*BOOT-OK \([0-9.]*\).*/\1/p' "$out/last.log" | head -1; }

rows=""
for cpus in 1 4; do
  tt=$(best tandem_run --initrd "$INITRD" --cpus "$cpus" --cmdline "console=ttyS0 panic=-1"); tu=$(uptime_of)
  grep -q BOOT-OK "$out/last.log" || { echo "tandem did not boot:"; tail "$out/last.log"; exit 1; }
  tq=$(best qemu_run --initrd "$INITRD" --cpus "$cpus"); qu=$(uptime_of)
  r=$(echo "$tt / $tq" | bc -l)
  printf "boot to poweroff, %d hart(s): tandem %ss (BOOT-OK at %s) qemu %ss (BOOT-OK at %s): tandem/qemu %.2f\n" \
    "$cpus" "$tt" "$tu" "$tq" "$qu" "$r" >&2
  rows="$rows| boot to poweroff, $cpus hart(s) | $tt s (BOOT-OK $tu) | $tq s (BOOT-OK $qu) | $(printf %.2f "$r") | BOOT-OK is the guest's uptime |\n"
done

# In-guest suite: one boot each, best of $REPS boots per benchmark time.
declare -A gt gq gu
for _ in $(seq "$REPS"); do
  tandem_run --initrd "$out/initrd-bench.cpio.gz" --cmdline "console=ttyS0 panic=-1 $suite_cmd" > "$out/tandem-suite.log" 2>&1 || true
  qemu_run --initrd "$out/initrd-bench.cpio.gz" --cmdline "console=ttyS0 panic=-1 $suite_cmd" > "$out/qemu-suite.log" 2>&1 || true
  for b in "${benches[@]}"; do
    t=$(awk -v b="$b" '$1 == "bench" && $2 == b {print $3}' "$out/tandem-suite.log" | tr -d '\r')
    q=$(awk -v b="$b" '$1 == "bench" && $2 == b {print $3}' "$out/qemu-suite.log" | tr -d '\r')
    [ -n "$t" ] && { [ -z "${gt[$b]:-}" ] || [ "$(echo "$t < ${gt[$b]}" | bc -l)" = 1 ]; } && gt[$b]=$t
    [ -n "$q" ] && { [ -z "${gq[$b]:-}" ] || [ "$(echo "$q < ${gq[$b]}" | bc -l)" = 1 ]; } && gq[$b]=$q
  done
done
for b in "${benches[@]}"; do
  gu[$b]=$(best "$tandem_user" "$out/root/bench/$b")
done
lq=0; lu=0; n=0
printf "%-10s %10s %10s %12s %10s %12s\n" bench tandem qemu qemu/tandem user sys/user >&2
for b in "${benches[@]}"; do
  t=${gt[$b]:-}; q=${gq[$b]:-}; u=${gu[$b]}
  if [ -z "$t" ] || [ -z "$q" ]; then echo "no result for $b (tandem '$t', qemu '$q')" >&2; exit 1; fi
  rq=$(echo "$q / $t" | bc -l); ru=$(echo "$t / $u" | bc -l)
  lq=$(echo "$lq + l($rq)" | bc -l); lu=$(echo "$lu + l($ru)" | bc -l); n=$((n + 1))
  printf "%-10s %10s %10s %12.2f %10s %12.2f\n" "$b" "$t" "$q" "$rq" "$u" "$ru" >&2
  rows="$rows| in-guest $b | $t s | $q s | $(printf %.2f "$(echo "$t / $q" | bc -l)") (qemu/tandem $(printf %.2f "$rq")) | user mode $u s, system/user $(printf %.2f "$ru") |\n"
done
gq_mean=$(echo "e($lq / $n)" | bc -l); gu_mean=$(echo "e($lu / $n)" | bc -l)
printf "geometric mean: qemu/tandem in the guest %.2f; tandem system/user %.2f\n" "$gq_mean" "$gu_mean" >&2
{
  echo "# RISC-V full-system benchmarks"
  echo
  echo "Produced by \`bench/riscv-system/run.sh\` (REPS=$REPS) on $(date -u +%Y-%m-%d), $(nproc) cores,"
  echo "kernel $(basename "$KERNEL"), 256 MiB. QEMU: $(qemu-system-riscv64 --version | head -1)."
  echo
  echo "| what | tandem | qemu | tandem/qemu | notes |"
  echo "|---|---|---|---|---|"
  printf "%b" "$rows"
  echo
  printf "Geometric mean over the in-guest suite: qemu/tandem %.2f; tandem in the guest / tandem-riscv64 %.2f.\n" "$gq_mean" "$gu_mean"
} > "$md"
echo "wrote $md" >&2
