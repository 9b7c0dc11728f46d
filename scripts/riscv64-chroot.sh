#!/usr/bin/env bash
# Builds a Debian trixie riscv64 chroot in DIR with mmdebstrap (variant minbase), whose
# maintainer scripts run under tandem-riscv64 through binfmt_misc, then runs a shell in it:
#
#   scripts/riscv64-chroot.sh [--emulator tandem|qemu] [--tandem PATH] [--reuse] DIR [-- COMMAND...]
#
# COMMAND (default: bash -c 'echo hello; dpkg --print-architecture; ls /') runs in the chroot
# under the same handler (with /proc, /dev and /sys mounted in the private namespace). --emulator qemu does the same with Debian's qemu-user-static (for
# comparison: both print how long mmdebstrap took). --tandem names the static build to
# register (default: $TANDEM_RISCV64_STATIC, else scripts/build-static-riscv64.sh builds it).
# --reuse runs COMMAND in a chroot DIR built before, without mmdebstrap.
#
# Needs root. The handler is registered in a private binfmt_misc instance, in a user, mount and
# PID namespace of its own (Linux 6.7+), so the rest of the machine never sees it and it goes
# away with the namespace; on older kernels the machine's binfmt_misc is used, and the handler
# is removed on exit. The mirror is the one the host's apt sources name.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/debian-riscv64.sh
. "$root/scripts/lib/debian-riscv64.sh"

emu=tandem
reuse=0
tandem=${TANDEM_RISCV64_STATIC:-}
while [ $# -gt 0 ]; do
  case $1 in
    --emulator) emu=${2:?}; shift 2 ;;
    --tandem) tandem=${2:?}; shift 2 ;;
    --reuse) reuse=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) rv64_die "unknown option $1" ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || rv64_die "usage: $0 [--emulator tandem|qemu] [--tandem PATH] [--reuse] DIR [-- COMMAND...]"
dir=$1
shift
[ "${1:-}" != -- ] || shift
if [ $# -eq 0 ]; then
  set -- bash -c 'echo hello; dpkg --print-architecture; ls /'
fi
[ "$(id -u)" = 0 ] || rv64_die "needs root (mmdebstrap's root mode, binfmt_misc, chroot)"
if [ $reuse = 1 ]; then
  [ -x "$dir/bin/sh" ] || rv64_die "$dir is not a chroot built by this script"
elif [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
  rv64_die "$dir exists and is not empty"
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rv64_need mmdebstrap mmdebstrap
rv64_need unshare util-linux
rv64_need arch-test arch-test
mirror=$(rv64_mirror)

case $emu in
  tandem)
    if [ -z "$tandem" ]; then
      echo "$rv64_name: building the static tandem-riscv64"
      tandem=$("$root/scripts/build-static-riscv64.sh")
    fi
    [ -x "$tandem" ] || rv64_die "$tandem is not executable"
    register=("$tandem" --binfmt register)
    unregister=("$tandem" --binfmt unregister)
    ;;
  qemu)
    rv64_need qemu-riscv64-static qemu-user-static
    conf=/usr/lib/binfmt.d/qemu-riscv64.conf
    [ -r "$conf" ] || rv64_die "no $conf (qemu-user-static)"
    # Debian's own entry (flags OPF: the interpreter is opened at registration).
    register=(sh -c "cat $conf > /proc/sys/fs/binfmt_misc/register")
    unregister=(sh -c "echo -1 > /proc/sys/fs/binfmt_misc/qemu-riscv64")
    ;;
  *) rv64_die "--emulator is tandem or qemu" ;;
esac

# What runs with the handler registered: mmdebstrap, timed, then COMMAND in the chroot.
inner() {
  set -euo pipefail
  "${register[@]}"
  local t0 t1
  if [ "$reuse" = 0 ]; then
    t0=$(date +%s.%N)
    mmdebstrap --arch=riscv64 --variant=minbase \
      --keyring=/usr/share/keyrings/debian-archive-keyring.gpg trixie "$dir" "$mirror"
    t1=$(date +%s.%N)
    echo "$rv64_name: mmdebstrap under $emu took $(echo "$t1 - $t0" | bc) s"
  fi
  if [ "${private:-0}" = 1 ]; then
    # The namespace's own mounts, gone with it: /proc of its PID namespace, the host's
    # /dev (terminals, /dev/null) and /sys.
    mount -t proc proc "$dir/proc"
    mount --rbind /dev "$dir/dev"
    mount --rbind /sys "$dir/sys"
  fi
  chroot "$dir" "$@"
  "${unregister[@]}"
}

B=/proc/sys/fs/binfmt_misc
# The namespace's first shell waits for its id maps (written from here: only a process with
# CAP_SETUID outside may map every id), then execs a shell that has root's capabilities in
# the namespace and mounts a binfmt_misc instance of its own.
private_ns() {
  local script pid ours
  script="$(declare -f inner); $(declare -p register unregister dir mirror emu rv64_name reuse)
    mount -t binfmt_misc binfmt_misc $B || exit 77
    private=1
    inner \"\$@\""
  unshare --user --mount --pid --fork --propagation private -- bash -c \
    'until grep -q . /proc/self/uid_map; do sleep 0.01; done; exec bash -c "$1" "$@"' \
    bash "$script" "$@" &
  pid=$!
  ours=$(readlink /proc/self/ns/user)
  for _ in $(seq 1000); do
    [ "$(readlink "/proc/$pid/ns/user" 2>/dev/null)" = "$ours" ] || break
    sleep 0.01
  done
  echo "0 0 4294967295" > "/proc/$pid/uid_map"
  echo "0 0 4294967295" > "/proc/$pid/gid_map"
  wait "$pid"
}

rv64_need bc bc
set +e
private_ns "$@"
rc=$?
set -e
if [ $rc = 77 ]; then
  echo "$rv64_name: no private binfmt_misc here (Linux older than 6.7): using the machine's, for the duration of this script"
  [ -e "$B/register" ] || mount -t binfmt_misc binfmt_misc "$B" \
    || rv64_die "binfmt_misc is not mounted; mount it with: mount -t binfmt_misc binfmt_misc $B"
  trap '"${unregister[@]}" 2>/dev/null || true' EXIT
  inner "$@"
  trap - EXIT
  exit 0
fi
exit $rc
