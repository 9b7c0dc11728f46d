#!/usr/bin/env bash
# Builds Tandem's default RISC-V guest from Debian's riscv64 packages (trixie), fetched
# through the mirror this machine's apt already uses, with a private apt configuration
# (scripts/lib/debian-riscv64.sh; nothing is installed on the host):
#   guest/riscv64/Image               Debian's kernel (linux-image-riscv64)
#   guest/riscv64/initramfs.cpio.gz   Debian's busybox-static for riscv64 and a small init
#                                     that prints BOOT-OK (and starts a shell with `shell`)
# Cached: a second run finds the files and does nothing.
# Usage: scripts/fetch-riscv-guest.sh [OUTDIR]   (default: guest/riscv64 in the repository)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/guest/riscv64}
mkdir -p "$out"
if [ -s "$out/Image" ] && [ -s "$out/initramfs.cpio.gz" ]; then
  echo "fetch-riscv-guest: $out already has Image and initramfs.cpio.gz"
  exit 0
fi
. "$root/scripts/lib/debian-riscv64.sh"
rv64_need cpio cpio

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rv64_apt_init "$work/apt"
kpkg=$(rv64_apt_cache depends linux-image-riscv64 | awk '/Depends: linux-image-/ {print $2; exit}')
[ -n "$kpkg" ] || rv64_die "cannot resolve linux-image-riscv64"
cd "$work"
echo "fetch-riscv-guest: downloading $kpkg and busybox-static (riscv64)"
rv64_apt_get -qq download "$kpkg:riscv64" "busybox-static:riscv64"
dpkg-deb -x ./linux-image-*.deb kernel
dpkg-deb -x ./busybox-static_*.deb busybox
image=$(ls kernel/boot/vmlinu* | head -1)
cp "$image" "$out/Image.tmp"

echo "fetch-riscv-guest: building the initramfs"
mkdir -p rootfs/{bin,dev,proc,sys,etc,tmp}
bb=$(find busybox -path "*bin/busybox" -type f | head -1)
[ -n "$bb" ] || rv64_die "busybox-static has no busybox binary"
cp "$bb" rootfs/bin/busybox
cat > rootfs/init <<'INIT'
#!/bin/busybox sh
# Prints BOOT-OK with the uptime; `run=<cmd>` words run first (commas stand for spaces);
# `shell` starts a shell on the console; then powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for w in $(cat /proc/cmdline); do
  case "$w" in
    run=*) cmd=$(echo "${w#run=}" | tr ',' ' '); sh -c "$cmd" ;;
  esac
done
echo "BOOT-OK $(cut -d' ' -f1 /proc/uptime)"
if grep -qw shell /proc/cmdline; then
  setsid cttyhack sh
fi
poweroff -f
INIT
chmod +x rootfs/init
(cd rootfs && find . | cpio -o -H newc --quiet | gzip -9) > "$out/initramfs.cpio.gz.tmp"
mv "$out/Image.tmp" "$out/Image"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
echo "fetch-riscv-guest: $out/Image ($kpkg) and $out/initramfs.cpio.gz ready"
