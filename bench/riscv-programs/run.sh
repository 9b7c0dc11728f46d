#!/usr/bin/env bash
# Real Debian programs side by side: Debian trixie's amd64 build run natively, and the
# riscv64 build of the same versions under tandem-riscv64 and under qemu-riscv64-static
# (both with -L on a riscv64 root). Workloads: python3 (work.py, pure Python), perl
# (work.pl, regexes and hashes), sqlite3 (work.sql, in memory), gzip, xz and zstd
# compressing and decompressing a generated text file, and the start-up of python3, perl,
# coreutils' echo and a static C hello world. Every output is compared across the three.
#
# Prints, and writes to docs/benchmarks-riscv-programs.md: wall time (best of $REPS) and
# CPU time (user+sys, least of $REPS), ratios and geometric means, peak RSS (largest of
# $REPS), tandem's translation statistics (--stats), start-up times (mean of
# $STARTUP_RUNS) and the issue's targets with whether each is met.
#
# Usage: bench/riscv-programs/run.sh
#   REPS=3 STARTUP_RUNS=20 DATA_MB=20 COMP_MB=2 PY_SCALE=3 PL_SCALE=2 by default;
#   TANDEM=path skips building tandem-riscv64 (otherwise: cargo build --release);
#   MD=path writes the report elsewhere.
# The roots (some 55 packages per architecture, about 120 MB each unpacked, fetched through
# the mirror the host's apt sources name) and the data files are cached under
# $CARGO_TARGET_DIR (default target/)/bench-riscv-programs.
# Needs: apt-get and dpkg-deb (Debian host), qemu-riscv64-static (qemu-user-static),
# /usr/bin/time (time); riscv64-linux-gnu-gcc and gcc for the static hello row (else skipped).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
REPS=${REPS:-3}
STARTUP_RUNS=${STARTUP_RUNS:-20}
DATA_MB=${DATA_MB:-20}
COMP_MB=${COMP_MB:-2}
PY_SCALE=${PY_SCALE:-3}
PL_SCALE=${PL_SCALE:-2}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out=$target_dir/bench-riscv-programs
md=${MD:-$repo/docs/benchmarks-riscv-programs.md}
cmdline="$(for v in REPS STARTUP_RUNS DATA_MB COMP_MB PY_SCALE PL_SCALE; do printf '%s=%s ' "$v" "${!v}"; done)bench/riscv-programs/run.sh"

. "$repo/scripts/lib/debian-riscv64.sh"
rv64_name=riscv-programs
. "$here/roots.sh"
die() { rv64_die "$@"; }
say() { echo "$rv64_name: $*" >&2; }

case $out in *[[:space:]]*) die "the output directory $out has white space in its path" ;; esac
for tool in qemu-riscv64-static:qemu-user-static awk:gawk; do
  command -v "${tool%%:*}" >/dev/null || die "missing ${tool%%:*}: apt-get install ${tool##*:}"
done
[ -x /usr/bin/time ] || rv64_need /usr/bin/time time
mkdir -p "$out/res"

if [ -n "${TANDEM:-}" ]; then
  tandem=$TANDEM
else
  say "building tandem-riscv64 (release)"
  (cd "$repo" && CARGO_TARGET_DIR="$target_dir" cargo build --release -q -p tandem --bin tandem-riscv64) \
    || die "building tandem-riscv64 failed"
  tandem=$target_dir/release/tandem-riscv64
fi
[ -x "$tandem" ] || die "no tandem-riscv64 at $tandem"

# The roots: same package list, same mirror, one index read each.
packages=(libc6 coreutils python3 perl xz-utils zstd sqlite3 gzip)
nroot=$out/root-amd64
rroot=$out/root-riscv64
bench_root amd64 "$nroot" "${packages[@]}"
bench_root riscv64 "$rroot" "${packages[@]}"
nlib=$nroot/usr/lib/x86_64-linux-gnu
nld=$nroot/usr/lib64/ld-linux-x86-64.so.2
[ -x "$nld" ] || die "the amd64 root has no $nld"
[ -e "$rroot/usr/lib/ld-linux-riscv64-lp64d.so.1" ] || die "the riscv64 root has no loader"
# The native perl looks for its modules where the host's would be; point it into the root.
native_perl_inc=()
for d in "$nlib/perl5/5.40" "$nroot/usr/share/perl5" "$nlib/perl-base" "$nlib/perl/5.40" "$nroot/usr/share/perl/5.40"; do
  [ -d "$d" ] && native_perl_inc+=("-I$d")
done
[ -d "$nlib/perl-base" ] || die "the amd64 root has no $nlib/perl-base"

versions=""
for p in python3.13-minimal perl xz-utils zstd sqlite3 gzip coreutils libc6; do
  va=$(bench_root_version "$nroot" "$p"); vr=$(bench_root_version "$rroot" "$p")
  [ -n "$va" ] && [ -n "$vr" ] || die "package $p missing from a root"
  same=same
  [ "${va%+b[0-9]*}" = "${vr%+b[0-9]*}" ] || { same="DIFFERENT"; say "warning: $p is $va on amd64 but $vr on riscv64"; }
  versions+="| $p | $va | $vr | $same |"$'\n'
done

# Data: a generated text file of DATA_MB MB (words and numbers from a fixed LCG, about
# 3.3:1 compressible), its first COMP_MB MB for the slow compressors, and compressed
# copies (made natively) for the decompression rows.
data=$out/data-${DATA_MB}M.txt
small=$out/data-${COMP_MB}M.txt
if [ ! -s "$data" ] || [ "$data" -ot "$here/run.sh" ]; then
  say "generating $data"
  awk -v bytes=$((DATA_MB * 1000000)) 'BEGIN {
    s = 12345; n = split("the of and to in is was for on that with as by at from his her it an be this are which or had not but", w, " ")
    for (i = 0; total < bytes; i++) {
      line = sprintf("%07d", i); k = 4 + (s % 9)
      for (j = 0; j < k; j++) {
        s = (s * 69069 + 1) % 4294967296; r = int(s / 65536)
        if (r % 5 == 0) line = line " " (r % 10007); else line = line " " w[1 + r % n] (r % 7 == 0 ? "," : "")
      }
      print line; total += length(line) + 1
    } }' > "$data.tmp"
  mv "$data.tmp" "$data"
  rm -f "$data".gz "$data".xz "$data".zst "$small"
fi
[ -s "$small" ] || head -c $((COMP_MB * 1000000)) "$data" > "$small"
native() { "$nld" --library-path "$nlib" "$nroot/usr/bin/$1" "${@:2}"; }
[ -s "$data.gz" ] || native gzip -6 -c "$data" > "$data.gz"
[ -s "$data.xz" ] || native xz -3 -T1 -c "$data" > "$data.xz"
[ -s "$data.zst" ] || native zstd -3 -q --single-thread -c "$data" > "$data.zst"

# The static hello world of bench/riscv, when the cross compiler is here.
have_hello=no
if command -v riscv64-linux-gnu-gcc >/dev/null && command -v gcc >/dev/null; then
  gcc -O2 -o "$out/hello.x86" "$repo/tests/riscv-programs/hello.c"
  riscv64-linux-gnu-gcc -O2 -static -o "$out/hello.rv" "$repo/tests/riscv-programs/hello.c"
  have_hello=yes
else
  say "no riscv64-linux-gnu-gcc: skipping the static hello-world row"
fi

# cmd_for RUNNER PROG ARGS...: sets CMD to the command line running PROG (a program of the
# roots' /usr/bin, or hello-static) natively, under tandem or under qemu.
cmd_for() {
  local runner=$1 prog=$2 path
  shift 2
  case $runner:$prog in
    native:hello-static) CMD=("$out/hello.x86" "$@") ;;
    native:perl) CMD=("$nld" --library-path "$nlib" "$nroot/usr/bin/perl" "${native_perl_inc[@]}" "$@") ;;
    native:*) CMD=("$nld" --library-path "$nlib" "$nroot/usr/bin/$prog" "$@") ;;
    *)
      path=$rroot/usr/bin/$prog
      [ "$prog" = hello-static ] && path=$out/hello.rv
      if [ "$runner" = tandem ]; then
        CMD=("$tandem" ${STATS:+--stats} -L "$rroot" "$path" "$@")
      else
        CMD=(qemu-riscv64-static -L "$rroot" "$path" "$@")
      fi ;;
  esac
}

# children_cpu: CC = user+sys seconds of this shell's finished children, to the millisecond
# (`times` must run in this shell, not in a command substitution's subshell).
children_cpu() {
  times > "$out/times.txt"
  CC=$(tail -1 "$out/times.txt" | awk '{ for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.4f", t }')
}

# timed ID STDIN: runs CMD once under /usr/bin/time, output in $out/res/ID.{out,err,status};
# sets T_WALL (s), T_CPU (user+sys, s; /usr/bin/time's own is a millisecond or less) and
# T_RSS (peak, KB).
timed() {
  local id=$1 in=$2 s e c0 st=0
  children_cpu; c0=$CC
  s=$EPOCHREALTIME
  /usr/bin/time -o "$out/res/$id.time" -f '%M' "${CMD[@]}" <"$in" >"$out/res/$id.out" 2>"$out/res/$id.err" || st=$?
  e=$EPOCHREALTIME
  children_cpu
  echo "$st" > "$out/res/$id.status"
  T_WALL=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }')
  T_CPU=$(awk -v a="$c0" -v b="$CC" 'BEGIN { printf "%.3f", b - a }')
  T_RSS=$(tail -1 "$out/res/$id.time")
}

# same_output NAME: whether the three runs of NAME printed the same (stdout, exit status,
# stderr without tandem's statistics line).
same_output() {
  local n=$1 r
  for r in tandem qemu; do
    cmp -s "$out/res/$n.native.out" "$out/res/$n.$r.out" || { echo "NO: stdout of $r differs"; return; }
    cmp -s "$out/res/$n.native.status" "$out/res/$n.$r.status" \
      || { echo "NO: exit status $(cat "$out/res/$n.$r.status") under $r, $(cat "$out/res/$n.native.status") natively"; return; }
    cmp -s <(grep -v '^tandem-stats:' "$out/res/$n.native.err") <(grep -v '^tandem-stats:' "$out/res/$n.$r.err") \
      || { echo "NO: stderr of $r differs"; return; }
  done
  echo yes
}

# Workloads: name|stdin|program and arguments (word-split; no spaces in paths).
workloads=(
  "python3|/dev/null|python3 $here/work.py $PY_SCALE"
  "perl|/dev/null|perl $here/work.pl $PL_SCALE"
  "sqlite3|$here/work.sql|sqlite3 :memory:"
  "gzip -6 (${DATA_MB} MB)|$data|gzip -6 -c"
  "gzip -d|$data.gz|gzip -d -c"
  "xz -9 (${COMP_MB} MB)|$small|xz -9 -T1 -c"
  "xz -d|$data.xz|xz -d -T1 -c"
  "zstd -19 (${COMP_MB} MB)|$small|zstd -19 -q --single-thread -c"
  "zstd -d|$data.zst|zstd -d -q -c"
)

declare -A WALL CPU RSS STAT SAME
names=()
for w in "${workloads[@]}"; do
  IFS='|' read -r name in cmd <<<"$w"
  read -ra argv <<<"$cmd"
  id=$(tr -c 'a-zA-Z0-9\n' '_' <<<"$name")
  names+=("$name")
  for r in native tandem qemu; do
    STATS=1 cmd_for "$r" "${argv[@]}"
    best=""; bcpu=""; mrss=0
    for i in $(seq "$REPS"); do
      say "$name: $r, run $i of $REPS"
      timed "$id.$r" "$in"
      [ -z "$best" ] || awk -v a="$T_WALL" -v b="$best" 'BEGIN { exit !(a < b) }' && best=$T_WALL
      [ -z "$bcpu" ] || awk -v a="$T_CPU" -v b="$bcpu" 'BEGIN { exit !(a < b) }' && bcpu=$T_CPU
      [ "$T_RSS" -gt "$mrss" ] && mrss=$T_RSS
      if [ "$r" = tandem ]; then
        STAT[$name]=$(sed -n 's/^tandem-stats: //p' "$out/res/$id.$r.err" | tail -1)
      fi
    done
    WALL[$name.$r]=$best; CPU[$name.$r]=$bcpu; RSS[$name.$r]=$mrss
  done
  SAME[$name]=$(same_output "$id")
  say "$name: native ${WALL[$name.native]} s, tandem ${WALL[$name.tandem]} s, qemu ${WALL[$name.qemu]} s; same output: ${SAME[$name]}"
done

# Start-up: mean wall time of STARTUP_RUNS runs each (no /usr/bin/time in the loop), CPU
# from the shell's children times; then one run with /usr/bin/time (and tandem's --stats)
# for peak RSS, the statistics and the output comparison.
startups=("python3 -c pass|python3 -c pass" "perl -e 1|perl -e 1" "echo hello (coreutils)|echo hello")
[ "$have_hello" = yes ] && startups+=("hello world (static C)|hello-static")
declare -A SU SUCPU
su_names=()
for s in "${startups[@]}"; do
  IFS='|' read -r name cmd <<<"$s"
  read -ra argv <<<"$cmd"
  id=su_$(tr -c 'a-zA-Z0-9\n' '_' <<<"$name")
  su_names+=("$name")
  for r in native tandem qemu; do
    say "start-up of $name: $r, $STARTUP_RUNS runs"
    STATS='' cmd_for "$r" "${argv[@]}"
    children_cpu; c0=$CC; t0=$EPOCHREALTIME
    for _ in $(seq "$STARTUP_RUNS"); do "${CMD[@]}" </dev/null >/dev/null 2>&1 || true; done
    t1=$EPOCHREALTIME; children_cpu; c1=$CC
    SU[$name.$r]=$(awk -v a="$t0" -v b="$t1" -v n="$STARTUP_RUNS" 'BEGIN { printf "%.2f", (b - a) * 1000 / n }')
    SUCPU[$name.$r]=$(awk -v a="$c0" -v b="$c1" -v n="$STARTUP_RUNS" 'BEGIN { printf "%.2f", (b - a) * 1000 / n }')
    STATS=1 cmd_for "$r" "${argv[@]}"
    timed "$id.$r" /dev/null
    RSS[$name.$r]=$T_RSS
    [ "$r" = tandem ] && STAT[$name]=$(sed -n 's/^tandem-stats: //p' "$out/res/$id.$r.err" | tail -1)
  done
  SAME[$name]=$(same_output "$id")
done

# ---- report ----
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
geomean() { awk '{ s += log($1); n++ } END { if (n) printf "%.2f", exp(s / n); else printf "-" }'; }
stat_field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"${STAT[$1]:-}"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

t_rows=""; c_rows=""; m_rows=""; tn_list=""; qt_list=""; ctn_list=""; cqt_list=""
nostats=no; rss_met=0; rss_n=0; n3=0; n4=0; nw=0; ins_sum=0; ms_sum=0; bad=""
for n in "${names[@]}"; do
  tn=$(ratio "${WALL[$n.tandem]}" "${WALL[$n.native]}"); qt=$(ratio "${WALL[$n.qemu]}" "${WALL[$n.tandem]}")
  ctn=$(ratio "${CPU[$n.tandem]}" "${CPU[$n.native]}"); cqt=$(ratio "${CPU[$n.qemu]}" "${CPU[$n.tandem]}")
  tn_list+="$tn"$'\n'; qt_list+="$qt"$'\n'; ctn_list+="$ctn"$'\n'; cqt_list+="$cqt"$'\n'
  nw=$((nw + 1))
  awk -v r="$tn" 'BEGIN { exit !(r <= 3) }' && n3=$((n3 + 1))
  awk -v r="$qt" 'BEGIN { exit !(r >= 4) }' && n4=$((n4 + 1))
  t_rows+="| $n | ${WALL[$n.native]} | ${WALL[$n.tandem]} | ${WALL[$n.qemu]} | ${tn}x | ${qt}x | ${SAME[$n]} |"$'\n'
  c_rows+="| $n | ${CPU[$n.native]} | ${CPU[$n.tandem]} | ${CPU[$n.qemu]} | ${ctn}x | ${cqt}x |"$'\n'
done
for n in "${names[@]}" "${su_names[@]}"; do
  rtq=$(ratio "${RSS[$n.tandem]}" "${RSS[$n.qemu]}")
  rss_n=$((rss_n + 1))
  [ "${RSS[$n.tandem]}" -le "${RSS[$n.qemu]}" ] && rss_met=$((rss_met + 1))
  ins=$(stat_field "$n" guest_insns_translated); tms=$(stat_field "$n" translate_ms)
  ins_sum=$(awk -v a="$ins_sum" -v b="${ins:-0}" 'BEGIN { print a + b }')
  ms_sum=$(awk -v a="$ms_sum" -v b="${tms:-0}" 'BEGIN { print a + b }')
  if [ -n "${STAT[$n]:-}" ]; then
    st="$(stat_field "$n" translated_insns_per_sec) | $ins | $tms | $(stat_field "$n" blocks)"
  else
    st="n/a (1) | | |"; nostats=yes
  fi
  m_rows+="| $n | $(mb "${RSS[$n.native]}") | $(mb "${RSS[$n.tandem]}") | $(mb "${RSS[$n.qemu]}") | ${rtq}x | $st |"$'\n'
done
for n in "${names[@]}" "${su_names[@]}"; do
  [ "${SAME[$n]}" = yes ] || bad+="$n (${SAME[$n]}); "
done
g_tn=$(geomean <<<"${tn_list%$'\n'}"); g_qt=$(geomean <<<"${qt_list%$'\n'}")
g_ctn=$(geomean <<<"${ctn_list%$'\n'}"); g_cqt=$(geomean <<<"${cqt_list%$'\n'}")
rate_all=$(awk -v i="$ins_sum" -v m="$ms_sum" 'BEGIN { if (m > 0) printf "%.2f", i / m / 1000; else printf "-" }')
s_rows=""
for n in "${su_names[@]}"; do
  s_rows+="| $n | ${SU[$n.native]} | ${SU[$n.tandem]} | ${SU[$n.qemu]} | $(ratio "${SU[$n.tandem]}" "${SU[$n.qemu]}")x | ${SUCPU[$n.native]} | ${SUCPU[$n.tandem]} | ${SUCPU[$n.qemu]} | ${SAME[$n]} |"$'\n'
done
# met WALL_CONDITION [CPU_CONDITION]: met only when both hold (wall time moves with the load
# of this shared machine, CPU time much less).
met() {
  local w=no c=no
  awk "BEGIN { exit !($1) }" && w=yes
  if [ $# -lt 2 ]; then c=$w; else awk "BEGIN { exit !($2) }" && c=yes; fi
  case $w$c in
    yesyes) echo "**met**" ;;
    yesno) echo "**not met** (wall time only)" ;;
    noyes) echo "**not met** (CPU time only)" ;;
    *) echo "**not met**" ;;
  esac
}
hello=${su_names[-1]}
h_tq=$(ratio "${SU[$hello.tandem]}" "${SU[$hello.qemu]}")
h_ctq=$(ratio "${SUCPU[$hello.tandem]}" "${SUCPU[$hello.qemu]}")

{
  echo "# Real Debian programs: native vs tandem-riscv64 vs qemu-riscv64-static"
  echo
  echo "Generated by \`$cmdline\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
  echo "tandem-riscv64 built from commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo "Host: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) CPUs, shared with"
  echo "other work (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)); $(uname -sr)."
  echo "Native: Debian trixie's amd64 packages unpacked into a private root, run through that"
  echo "root's own loader (\`ld-linux-x86-64.so.2 --library-path\`; perl with \`-I\` into the root)."
  echo "Emulated: trixie's riscv64 packages of the same versions, unpacked the same way, run with"
  echo "\`tandem-riscv64 -L ROOT\` (with \`--stats\`) and \`qemu-riscv64-static -L ROOT\`"
  echo "($(qemu-riscv64-static --version | head -1))."
  echo
  echo "| package | amd64 | riscv64 | |"
  echo "|---|---|---|---|"
  printf "%s" "$versions"
  echo
  echo "Workloads ([bench/riscv-programs](../bench/riscv-programs)): python3 \`work.py $PY_SCALE\` (pure"
  echo "Python: recursion, dicts, str, big ints, objects, sort), perl \`work.pl $PL_SCALE\` (regexes,"
  echo "hashes, sort over generated log lines), \`sqlite3 :memory: < work.sql\` (200 000-row tables,"
  echo "indexes, joins, grouping), and gzip/xz/zstd on a generated ${DATA_MB} MB text file (xz -9 and"
  echo "zstd -19 on its first ${COMP_MB} MB; single-threaded), stdout compared across the three runs."
  echo
  echo "## Time (wall clock, seconds, best of $REPS)"
  echo
  echo "| workload | native | tandem | qemu | tandem / native | qemu / tandem | same output |"
  echo "|---|---|---|---|---|---|---|"
  printf "%s" "$t_rows"
  echo "| **geomean** | | | | **${g_tn}x** | **${g_qt}x** | |"
  echo
  echo "## CPU time (user + sys, seconds, least of $REPS; less sensitive to machine load)"
  echo
  echo "| workload | native | tandem | qemu | tandem / native | qemu / tandem |"
  echo "|---|---|---|---|---|---|"
  printf "%s" "$c_rows"
  echo "| **geomean** | | | | **${g_ctn}x** | **${g_cqt}x** |"
  echo
  echo "## Start-up (milliseconds, mean of $STARTUP_RUNS runs)"
  echo
  echo "| program | native | tandem | qemu | tandem / qemu | CPU native | CPU tandem | CPU qemu | same output |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf "%s" "$s_rows"
  echo
  echo "## Peak RSS (MB, /usr/bin/time %M) and tandem's translation statistics (--stats)"
  echo
  echo "| workload | native | tandem | qemu | tandem / qemu | translated_insns_per_sec | guest_insns_translated | translate_ms | blocks |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf "%s" "$m_rows"
  echo
  if [ "$nostats" = yes ]; then
    echo "(1) No statistics line in tandem's standard error for this run."
    echo
  fi
  echo "All runs together (one run each): $ins_sum guest instructions translated in $ms_sum ms, ${rate_all} million per second."
  echo
  echo "## Targets (issue 14)"
  echo
  echo "A target counts as met when both the wall-clock and the CPU-time figure meet it."
  echo
  echo "| target | measured | |"
  echo "|---|---|---|"
  echo "| real programs at most 3x native | geomean ${g_tn}x (CPU ${g_ctn}x); $n3 of $nw workloads within 3x | $(met "$g_tn <= 3" "$g_ctn <= 3") |"
  echo "| real programs at least 4x faster than QEMU | geomean ${g_qt}x (CPU ${g_cqt}x); $n4 of $nw workloads at 4x or more | $(met "$g_qt >= 4" "$g_cqt >= 4") |"
  echo "| peak RSS no more than QEMU's | $rss_met of $rss_n programs | $(met "$rss_met == $rss_n") |"
  echo "| hello-world start-up at most half of QEMU's | $hello: ${SU[$hello.tandem]} ms vs ${SU[$hello.qemu]} ms (${h_tq}x; CPU ${h_ctq}x) | $(met "$h_tq <= 0.5" "$h_ctq <= 0.5") |"
  echo "| translation at least 5 million guest instructions per second | ${rate_all} million (all runs) | $(met "${rate_all/-/0} >= 5") |"
  echo
  if [ -n "$bad" ]; then
    echo "**Different output:** $bad (files in \`$out/res\`)."
  else
    echo "All outputs identical across native, tandem and qemu."
  fi
} > "$md.tmp"
mv "$md.tmp" "$md"
sed -n '/^## Time/,$p' "$md"
say "wrote $md"
[ -z "$bad" ] || { say "outputs differ: $bad"; exit 1; }
