#!/usr/bin/env bash
# Process creation in RISC-V user mode: native x86-64, tandem-riscv64 (release) and
# qemu-riscv64-static side by side, running Debian trixie's riscv64 busybox-static `sh`:
#   subshell   N subshells `x=$(echo x)` (fork, the child runs a builtin and exits)
#   forkexec   N fork+exec of a static RISC-V `true` (bench/riscv/true.c)
#   start      N/10 starts of that `true` from the host (one process start each)
# Prints wall time per iteration (best of $REPS), minor page faults and CPU time per
# iteration (the whole process tree, from /usr/bin/time), ratios, and a Markdown table for
# docs/benchmarks.md.
#
# qemu-user cannot exec a RISC-V program from the guest without binfmt_misc, and this
# script does not register a handler (that is system-wide state). Under QEMU the loop execs
# a native wrapper that execs `qemu-riscv64-static true` instead: what binfmt_misc would do,
# plus one native exec, whose cost is measured by the same loop run natively with a wrapper
# that execs the native `true` and is subtracted ("qemu fork+exec, adjusted").
#
# Usage: bench/riscv/fork.sh     (N=1000 REPS=3; TANDEM=path to use a prebuilt binary)
# Needs: gcc, riscv64-linux-gnu-gcc, qemu-user-static, busybox-static (host, the native
# shell), apt-get + dpkg-deb (to fetch the riscv64 busybox once), cargo.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
N=${N:-1000}
REPS=${REPS:-3}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out=${OUT:-$target_dir/bench-riscv-fork}
mkdir -p "$out"

for tool in gcc:gcc riscv64-linux-gnu-gcc:gcc-riscv64-linux-gnu qemu-riscv64-static:qemu-user-static \
            busybox:busybox-static dpkg-deb:dpkg; do
    command -v "${tool%%:*}" >/dev/null || { echo "missing ${tool%%:*}: apt-get install ${tool##*:}" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time: apt-get install time" >&2; exit 1; }

if [ -z "${TANDEM:-}" ]; then
    echo "building tandem-riscv64 (release)..." >&2
    (cd "$repo" && CARGO_TARGET_DIR="$target_dir" cargo build --release -q -p tandem --bin tandem-riscv64)
    TANDEM=$target_dir/release/tandem-riscv64
fi

rvbb=$out/rv64/usr/bin/busybox
if [ ! -x "$rvbb" ]; then
    # shellcheck source=../../scripts/lib/debian-riscv64.sh
    . "$repo/scripts/lib/debian-riscv64.sh"
    apt_dir=$(mktemp -d)
    trap 'rm -rf "$apt_dir"' EXIT
    rv64_apt_init "$apt_dir"
    (cd "$apt_dir" && rv64_apt_get -qq download busybox-static:riscv64)
    dpkg-deb -x "$apt_dir"/busybox-static_*_riscv64.deb "$out/rv64"
fi

riscv64-linux-gnu-gcc -O2 -static -o "$out/true.rv" "$here/true.c"
gcc -O2 -static -o "$out/true.x86" "$here/true.c"
qemu=$(command -v qemu-riscv64-static)
gcc -O2 -static -DTARGET="\"$qemu\"" -DARG="\"$out/true.rv\"" -o "$out/qemu-true" "$here/execwrap.c"
gcc -O2 -static -DTARGET="\"$out/true.x86\"" -o "$out/wrap-true" "$here/execwrap.c"

subshell="i=0; while [ \$i -lt $N ]; do x=\$(echo x); i=\$((i+1)); done"
forkexec() { echo "i=0; while [ \$i -lt $N ]; do $1; i=\$((i+1)); done"; }
starts=$(( N / 10 > 0 ? N / 10 : 1 ))
start_loop() { echo "i=0; while [ \$i -lt $starts ]; do $1; i=\$((i+1)); done"; }

# measure CMD...: "<best wall seconds> <minor faults of that run> <least CPU seconds>" over
# $REPS runs (wall time from date: /usr/bin/time's %e has a 10 ms resolution; CPU time is
# user + system of the whole process tree, which a busy host disturbs less than wall time).
measure() {
    local best="" flt="" cpu=""
    for _ in $(seq "$REPS"); do
        local s e t f u k c
        s=$(date +%s.%N)
        /usr/bin/time -f "%R %U %S" -o "$out/time" "$@" >/dev/null 2>"$out/err" || {
            echo "failed: $*" >&2; cat "$out/err" >&2; exit 1; }
        e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc -l)
        read -r f u k <"$out/time"
        c=$(echo "$u + $k" | bc -l)
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; flt=$f; fi
        if [ -z "$cpu" ] || [ "$(echo "$c < $cpu" | bc -l)" = 1 ]; then cpu=$c; fi
    done
    echo "$best $flt $cpu"
}
# per N: milliseconds (or faults) per iteration
per() { echo "$1 * ${3:-1000} / $2" | bc -l; }

cd "$out"
echo "N=$N REPS=$REPS; tandem: $TANDEM" >&2
read -r ns_t ns_f ns_c < <(measure busybox sh -c "$subshell")
read -r ts_t ts_f ts_c < <(measure "$TANDEM" "$rvbb" sh -c "$subshell")
read -r qs_t qs_f qs_c < <(measure "$qemu" "$rvbb" sh -c "$subshell")
read -r nx_t nx_f nx_c < <(measure busybox sh -c "$(forkexec ./true.x86)")
read -r nw_t _ nw_c < <(measure busybox sh -c "$(forkexec ./wrap-true)")
read -r tx_t tx_f tx_c < <(measure "$TANDEM" "$rvbb" sh -c "$(forkexec ./true.rv)")
read -r qx_t qx_f qx_c < <(measure "$qemu" "$rvbb" sh -c "$(forkexec ./qemu-true)")
read -r nst_t _ nst_c < <(measure sh -c "$(start_loop ./true.x86)")
read -r tst_t tst_f tst_c < <(measure sh -c "$(start_loop "$TANDEM ./true.rv")")
read -r qst_t qst_f qst_c < <(measure sh -c "$(start_loop "$qemu ./true.rv")")

wrap=$(echo "$nw_t - $nx_t" | bc -l)
qxa_t=$(echo "$qx_t - $wrap" | bc -l)
wrap_c=$(echo "$nw_c - $nx_c" | bc -l)
qxa_c=$(echo "$qx_c - $wrap_c" | bc -l)

row() { # name, wall ms native tandem qemu, faults tandem qemu, CPU ms native tandem qemu
    printf "| %s | %.2f | %.2f | %.2f | %.2f× | %.2f× | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f× |\n" \
        "$1" "$2" "$3" "$4" "$(echo "$3 / $2" | bc -l)" "$(echo "$4 / $3" | bc -l)" "$5" "$6" \
        "$7" "$8" "$9" "$(echo "$9 / $8" | bc -l)"
}
{
    echo "| loop (per iteration) | native (ms) | tandem (ms) | qemu (ms) | tandem / native | qemu / tandem | tandem faults | qemu faults | native CPU (ms) | tandem CPU (ms) | qemu CPU (ms) | qemu / tandem CPU |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    row "\`x=\$(echo x)\` subshell" "$(per "$ns_t" "$N")" "$(per "$ts_t" "$N")" "$(per "$qs_t" "$N")" \
        "$(per "$ts_f" "$N" 1)" "$(per "$qs_f" "$N" 1)" \
        "$(per "$ns_c" "$N")" "$(per "$ts_c" "$N")" "$(per "$qs_c" "$N")"
    row "fork+exec \`true\` (qemu adjusted)" "$(per "$nx_t" "$N")" "$(per "$tx_t" "$N")" "$(per "$qxa_t" "$N")" \
        "$(per "$tx_f" "$N" 1)" "$(per "$qx_f" "$N" 1)" \
        "$(per "$nx_c" "$N")" "$(per "$tx_c" "$N")" "$(per "$qxa_c" "$N")"
    row "start of \`true\` from the host" "$(per "$nst_t" "$starts")" "$(per "$tst_t" "$starts")" \
        "$(per "$qst_t" "$starts")" "$(per "$tst_f" "$starts" 1)" "$(per "$qst_f" "$starts" 1)" \
        "$(per "$nst_c" "$starts")" "$(per "$tst_c" "$starts")" "$(per "$qst_c" "$starts")"
    echo
    printf "qemu fork+exec as measured, through the native wrapper: %.2f ms (CPU %.2f ms) per\n" \
        "$(per "$qx_t" "$N")" "$(per "$qx_c" "$N")"
    printf "iteration; the wrapper's own exec (native loop with and without it), %.2f ms (CPU %.2f ms),\n" \
        "$(per "$wrap" "$N")" "$(per "$wrap_c" "$N")"
    echo "is subtracted above. Faults: minor page faults per iteration of the whole process tree"
    echo "(/usr/bin/time %R); qemu's fork+exec figure includes the wrapper's. CPU: user + system"
    echo "time of the whole process tree, least of the runs."
} | tee "$out/fork.md"
