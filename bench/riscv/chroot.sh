#!/usr/bin/env bash
# Times scripts/riscv64-chroot.sh (mmdebstrap of Debian trixie riscv64 minbase, its
# maintainer scripts under binfmt_misc) with the static tandem-riscv64 and with Debian's
# qemu-riscv64-static, one after the other, ROUNDS times (default 1), and prints mmdebstrap's
# time for each. Needs root and the network (the mirror of the host's apt sources).
#
# Usage: sudo bench/riscv/chroot.sh          (ROUNDS=2 for a second pair)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ROUNDS=${ROUNDS:-1}
tandem=${TANDEM_RISCV64_STATIC:-$("$repo/scripts/build-static-riscv64.sh")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for r in $(seq "$ROUNDS"); do
  for emu in tandem qemu; do
    log="$work/$emu-$r.log"
    TANDEM_RISCV64_STATIC=$tandem "$repo/scripts/riscv64-chroot.sh" --emulator "$emu" \
      "$work/$emu-$r" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    grep -q '^riscv64$' "$log" || { cat "$log" >&2; echo "chroot.sh: no shell in the $emu chroot" >&2; exit 1; }
    echo "round $r: $(grep 'mmdebstrap under' "$log" | sed 's/^riscv64-chroot: //')"
    rm -rf "${work:?}/$emu-$r"
  done
done
