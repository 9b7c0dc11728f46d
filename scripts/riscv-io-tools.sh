#!/usr/bin/env bash
# Guest-side tools for the RISC-V virtio tests, as an initramfs archive to append to the
# shared test initramfs (../shared/guest/initramfs-riscv64.cpio.gz: busybox + init.sh).
#
# Usage: scripts/riscv-io-tools.sh OUT_DIR
# Writes OUT_DIR/io-tools-riscv64.cpio.gz, a gzip'd newc cpio archive holding
#   /sbin/mke2fs, /sbin/mkfs.ext{2,3,4}   Debian trixie riscv64's e2fsprogs (dynamically linked)
#   /etc/mke2fs.conf                      its configuration
#   /lib/riscv64-linux-gnu/*.so.*          every shared library mke2fs needs (libext2fs, libe2p,
#   /lib/ld-linux-riscv64-lp64d.so.1       libcom_err, libblkid, libuuid, glibc) and the loader
#   /bin/vsock-test                       static, from tests/riscv-guest/vsock-test.c
#                                         (listen PORT | connect CID PORT | cid; see the source)
# The .debs come through the mirror the host's apt uses (scripts/lib/debian-riscv64.sh), only
# e2fsprogs and the library packages mke2fs's ELF dependencies lead to. Before publishing the
# archive the script unpacks it and, when qemu-riscv64-static and e2fsck are on the host,
# formats an image with the unpacked mkfs.ext4 and checks it with the host's e2fsck.
# Cached: nothing to do while the archive is newer than this script, its library and the C
# source. Needs riscv64-linux-gnu-gcc, dpkg-deb and cpio (installed when missing).
#
# How tests use it: the Linux kernel unpacks concatenated initramfs archives in order (later
# files override earlier ones), so the test writes the shared archive followed by this one
# to a file and boots that:
#   cat initramfs-riscv64.cpio.gz io-tools-riscv64.cpio.gz > combined.cpio.gz
#   tandem run --machine riscv-virt --kernel linux-riscv64.Image --initrd combined.cpio.gz \
#     --cmdline "console=ttyS0 panic=-1 run=mkfs.ext4,-F,/dev/vda" ...
# (init.sh turns the commas of a run= word into spaces; mkfs.ext4 is found in /sbin, which
# busybox's shell searches before /bin.) Guest-to-host vsock: run=echo,hi|vsock-test,connect,2,PORT;
# host-to-guest: run=vsock-test,listen,PORT, then connect once the console shows VSOCK-LISTEN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
self=$root/scripts/riscv-io-tools.sh
lib=$root/scripts/lib/debian-riscv64.sh
src=$root/tests/riscv-guest/vsock-test.c
[ $# -eq 1 ] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
mkdir -p "$1"
out=$(cd "$1" && pwd)/io-tools-riscv64.cpio.gz
if [ -s "$out" ] && [ "$out" -nt "$self" ] && [ "$out" -nt "$lib" ] && [ "$out" -nt "$src" ]; then
  echo "riscv-io-tools: $out is up to date"
  exit 0
fi
start=$SECONDS
. "$lib"
rv64_need cpio cpio
rv64_need dpkg-deb dpkg
rv64_need riscv64-linux-gnu-gcc gcc-riscv64-linux-gnu
rv64_need riscv64-linux-gnu-readelf binutils-riscv64-linux-gnu

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/stage   # the archive's tree
debs=$work/debs     # downloaded .debs
tree=$work/tree     # all of them unpacked
mkdir -p "$stage"/{bin,sbin,etc,lib/riscv64-linux-gnu} "$debs" "$tree"

echo "riscv-io-tools: compiling vsock-test"
riscv64-linux-gnu-gcc -static -O2 -Wall -Wextra -o "$stage/bin/vsock-test" "$src"

# e2fsprogs, then library packages until every ELF dependency of mke2fs is in the tree.
rv64_apt_init "$work/apt"
fetched=()
fetch() {
  echo "riscv-io-tools: downloading $* (riscv64)"
  (cd "$debs" && rv64_apt_get -qq download "${@/%/:riscv64}")
  local p
  for p in "$@"; do
    dpkg-deb -x "$(ls "$debs/${p}"_*.deb)" "$tree"
    fetched+=("$p")
  done
}
fetch e2fsprogs
mke2fs=
for d in usr/sbin sbin; do
  [ -f "$tree/$d/mke2fs" ] && { mke2fs=$tree/$d/mke2fs; break; }
done
[ -n "$mke2fs" ] || rv64_die "e2fsprogs has no mke2fs"

# A library's file in the tree by its soname, or nothing.
find_lib() {
  local d
  for d in usr/lib/riscv64-linux-gnu lib/riscv64-linux-gnu usr/lib lib; do
    [ -e "$tree/$d/$1" ] && { readlink -f "$tree/$d/$1"; return; }
  done
  return 0
}
needed() {
  riscv64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}
interp=$(riscv64-linux-gnu-readelf -l "$mke2fs" | sed -n 's/.*program interpreter: \(.*\)\]/\1/p')
[ -n "$interp" ] || rv64_die "mke2fs has no program interpreter"
# Sets libs (soname -> file) and missing (sonames not in the tree) for the closure of mke2fs.
declare -A libs
resolve() {
  libs=()
  missing=()
  local queue=("$mke2fs") f so file
  local -A seen=([$(basename "$interp")]=1)
  so=$(basename "$interp")
  file=$(find_lib "$so")
  if [ -n "$file" ]; then libs[$so]=$file; queue+=("$file"); else missing+=("$so"); fi
  while [ ${#queue[@]} -gt 0 ]; do
    f=${queue[0]}
    queue=("${queue[@]:1}")
    for so in $(needed "$f"); do
      [ -n "${seen[$so]:-}" ] && continue
      seen[$so]=1
      file=$(find_lib "$so")
      if [ -n "$file" ]; then libs[$so]=$file; queue+=("$file"); else missing+=("$so"); fi
    done
  done
}
# libcom_err.so.2 and libcom-err2, libext2fs.so.2 and libext2fs2t64 have the same key.
key() { sed -e 's/\.so\././' -e 's/t64$//' -e 's/[-_.]//g' <<<"$1"; }
resolve
while [ ${#missing[@]} -gt 0 ]; do
  candidates=()
  for p in $(rv64_depends "${fetched[@]}"); do
    [[ " ${fetched[*]} " == *" $p "* ]] || candidates+=("$p")
  done
  pick=()
  for p in "${candidates[@]}"; do
    for so in "${missing[@]}"; do
      [ "$(key "$p")" = "$(key "$so")" ] && pick+=("$p")
    done
  done
  # No package named after a missing soname: every library package still to fetch.
  if [ ${#pick[@]} -eq 0 ]; then
    for p in "${candidates[@]}"; do [[ $p == lib* ]] && pick+=("$p"); done
  fi
  [ ${#pick[@]} -gt 0 ] || rv64_die "no package provides ${missing[*]} (needed by mke2fs)"
  fetch $(printf '%s\n' "${pick[@]}" | sort -u)
  resolve
done

cp "$mke2fs" "$stage/sbin/mke2fs"
for t in ext2 ext3 ext4; do ln -s mke2fs "$stage/sbin/mkfs.$t"; done
conf=$(ls "$tree"/etc/mke2fs.conf 2>/dev/null) || rv64_die "e2fsprogs has no /etc/mke2fs.conf"
cp "$conf" "$stage/etc/mke2fs.conf"
for so in "${!libs[@]}"; do
  cp "${libs[$so]}" "$stage/lib/riscv64-linux-gnu/$so"
done
# The loader where the program header asks for it, as Debian has it.
case "$interp" in
  /lib/riscv64-linux-gnu/*) ;;
  /lib/*) ln -s "riscv64-linux-gnu/$(basename "$interp")" "$stage$interp" ;;
  *) rv64_die "unexpected program interpreter $interp" ;;
esac
echo "riscv-io-tools: mke2fs needs $(printf '%s\n' "${!libs[@]}" | sort | tr '\n' ' ')"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n > "$work/out.cpio.gz"

# Check what the archive holds, not the staging tree.
mkdir "$work/check"
(cd "$work/check" && gzip -dc "$work/out.cpio.gz" | cpio -id --quiet)
if command -v qemu-riscv64-static >/dev/null && command -v e2fsck >/dev/null; then
  img=$work/check.img
  : > "$img"
  qemu-riscv64-static -L "$work/check" "$work/check/sbin/mkfs.ext4" -q -F "$img" 8M \
    || rv64_die "the archive's mkfs.ext4 failed under qemu-riscv64-static"
  e2fsck -fn "$img" >/dev/null 2>&1 || rv64_die "e2fsck finds errors in the image the archive's mkfs.ext4 made"
  rc=0
  qemu-riscv64-static "$work/check/bin/vsock-test" 2>/dev/null || rc=$?
  [ $rc -eq 2 ] || rv64_die "vsock-test without arguments: status $rc under qemu-riscv64-static, not 2 (usage)"
  echo "riscv-io-tools: checked: mkfs.ext4 (qemu-riscv64-static) makes an image e2fsck finds clean; vsock-test runs"
else
  echo "riscv-io-tools: qemu-riscv64-static or e2fsck missing: archive not run-checked"
fi
mv "$work/out.cpio.gz" "$out"
echo "riscv-io-tools: $out ready ($(du -k "$out" | cut -f1) KiB, $((SECONDS - start)) s)"
