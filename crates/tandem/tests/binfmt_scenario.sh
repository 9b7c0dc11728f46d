# Run by crates/tandem/tests/binfmt.rs inside a private user and mount namespace (root mapped
# to root, uids 0-65535) where it mounts its own binfmt_misc instance (Linux 6.7+): the
# handlers registered here are never seen by the rest of the machine, and vanish with the
# namespace even if this script dies half-way.
#
# Environment: T dynamic tandem-riscv64, S static one (empty: skip the chroot part), W work
# directory (world-readable) holding the static and dynamic RISC-V binfmt_probe as probe and
# probe-dyn, N handler name.
# Exit 77: cannot mount a private binfmt_misc (skip). Prints "ok: ..." per check, or "FAIL: ...".
set -uo pipefail
B=/proc/sys/fs/binfmt_misc

fail() {
  echo "FAIL: $*"
  exit 1
}
# run CMD...: its combined output in $out, its status in $rc.
run() {
  out=$("$@" 2>&1)
  rc=$?
}
# want WHAT STATUS TEXT...: the last run exited STATUS ("nz": any failure) and printed each TEXT.
want() {
  local what=$1 status=$2 t
  shift 2
  if [ "$status" = nz ]; then
    [ "$rc" != 0 ] || fail "$what: exited 0, wanted a failure; output: $out"
  else
    [ "$rc" = "$status" ] || fail "$what: exited $rc, wanted $status; output: $out"
  fi
  for t in "$@"; do
    grep -qF -- "$t" <<<"$out" || fail "$what: no '$t' in: $out"
  done
  echo "ok: $what"
}

if ! mount -t binfmt_misc binfmt_misc "$B" 2>/dev/null; then
  echo "cannot mount a binfmt_misc instance in a user namespace (needs Linux 6.7 or newer)"
  exit 77
fi
# Never go on with the machine's own instance.
others=$(ls "$B" | grep -vx -e register -e status)
[ -z "$others" ] || fail "the private binfmt_misc instance is not empty: $others"
cd "$W" || fail "no work directory $W"

run "$T" --binfmt status --binfmt-name "$N"
want "status before registering" 1 "handler $N: not registered"

run "$T" --binfmt-name "$N" ./probe
want "--binfmt-name alone is refused" 2 "go with --binfmt"
run "$T" --binfmt register --binfmt-name "bad/name"
want "a bad handler name is refused" 1 "bad handler name"
run "$T" --binfmt register --binfmt-name "$N"
want "a dynamically linked build is refused" 1 "dynamically linked" "build-static-riscv64.sh"

# A handler of another name holding riscv64 ELF (Debian's qemu-user-static magic and mask).
printf '%s' ":$N-rival:M::\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xf3\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/bin/false:OF" \
  >"$B/register" || fail "cannot register the rival handler"
run "$T" --binfmt register --binfmt-allow-dynamic --binfmt-name "$N"
want "another handler holding riscv64 is refused" 1 "$N-rival (interpreter /bin/false) already runs RISC-V 64-bit programs"
run "$T" --binfmt status --binfmt-name "$N"
want "status names the rival" 1 "$N-rival (interpreter /bin/false) also takes RISC-V"
echo -1 >"$B/$N-rival" || fail "cannot remove the rival handler"

run setpriv --reuid=65534 --regid=65534 --clear-groups "$T" --binfmt register --binfmt-allow-dynamic --binfmt-name "$N"
want "registering needs root" 1 "needs root"

run "$T" --binfmt register --binfmt-allow-dynamic --binfmt-name "$N"
want "register" 0 "registered binfmt_misc handler $N"
run "$T" --binfmt register --binfmt-allow-dynamic --binfmt-name "$N"
want "registering again is harmless" 0 "already registered"
run "$T" --binfmt status --binfmt-name "$N"
want "status" 0 "handler $N: enabled, interpreter $T, flags POCF"
run cat "$B/$N"
want "the kernel's entry" 0 "flags: POCF" "offset 0"

run ./probe a b
want "argv through binfmt_misc" 0 "argv[0]=./probe" "argv[1]=a" "argv[2]=b" "exe=$W/probe"
run bash -c 'exec -a custom-name ./probe --help'
want "argv[0] is kept (P flag), options are the program's" 0 "argv[0]=custom-name" "argv[1]=--help"
run "$W/probe" exec ./probe from-exec x
want "a RISC-V program execs a RISC-V program" 0 "argv[0]=$W/probe" "argv[0]=from-exec" "argv[1]=x"
run env QEMU_LD_PREFIX=/usr/riscv64-linux-gnu ./probe-dyn dyn
want "a dynamic program with QEMU_LD_PREFIX" 0 "argv[0]=./probe-dyn" "argv[1]=dyn"
run env TANDEM_STRACE=1 ./probe s
want "TANDEM_STRACE=1 under binfmt_misc" 0 "argv[1]=s" "exit_group("

cp probe suid-probe && chown 0:0 suid-probe && chmod 4755 suid-probe || fail "cannot make suid-probe"
run setpriv --reuid=65534 --regid=65534 --clear-groups ./probe
want "an ordinary program runs as the caller" 0 "uid=65534 euid=65534"
run setpriv --reuid=65534 --regid=65534 --clear-groups ./suid-probe
want "a set-user-ID program gets its owner's euid (C flag)" 0 "uid=65534 euid=0"

run setpriv --reuid=65534 --regid=65534 --clear-groups env TANDEM_STRACE=1 ./suid-probe
want "a set-user-ID program ignores the caller's TANDEM_STRACE" 0 "uid=65534 euid=0"
! grep -q "exit_group(" <<<"$out" || fail "a set-user-ID program was traced for its caller: $out"

chmod 4711 suid-probe || fail "cannot chmod suid-probe"
run setpriv --reuid=65534 --regid=65534 --clear-groups ./suid-probe
want "an unreadable program runs from the kernel's fd (O flag)" 0 "euid=0"

run "$T" --binfmt unregister --binfmt-name "$N"
want "unregister" 0 "removed binfmt_misc handler $N"
run ./probe
want "unregistered: the kernel cannot run it" nz "format error"
run "$T" --binfmt unregister --binfmt-name "$N"
want "unregistering twice" 1 "no binfmt_misc handler named $N"

if [ -n "$S" ]; then
  run "$S" --binfmt register --binfmt-name "$N"
  want "register the static build" 0 "registered binfmt_misc handler $N"
  mkdir -p root && cp probe root/probe || fail "cannot make the chroot"
  # Nothing but the program: no /proc, no libraries, no Tandem (F flag).
  run chroot root /probe exec /probe in-chroot y
  want "chroot DIR /prog, and an exec in it" 0 "argv[0]=/probe" "argv[0]=in-chroot" "argv[1]=y"
  # Tandem run by hand there: its guest's exec cannot re-run Tandem through /proc/self/exe
  # (no /proc), so it goes to the kernel and the handler.
  cp "$S" root/tandem || fail "cannot copy Tandem into the chroot"
  run chroot root /tandem /probe exec /probe by-hand z
  want "exec without /proc falls back to binfmt_misc" 0 "argv[0]=/probe" "argv[0]=by-hand" "argv[1]=z"
  run "$S" --binfmt unregister --binfmt-name "$N"
  want "unregister the static build" 0 "removed"
else
  echo "skipped: the chroot part (no static build: scripts/build-static-riscv64.sh)"
fi

mount -t tmpfs none "$B" || fail "cannot hide binfmt_misc"
run "$T" --binfmt register --binfmt-allow-dynamic --binfmt-name "$N"
want "binfmt_misc not mounted" 1 "not mounted" "mount -t binfmt_misc binfmt_misc $B"
umount "$B"

others=$(ls "$B" | grep -vx -e register -e status)
[ -z "$others" ] || fail "handlers left registered: $others"
echo "ok: all"
