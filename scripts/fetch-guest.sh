#!/usr/bin/env bash
# Builds Tandem's default x86-64 guest from Debian packages:
#   guest/vmlinuz            Debian's cloud kernel (linux-image-cloud-amd64), a bzImage
#   guest/initramfs.cpio.gz  busybox-static with a small init that prints BOOT-OK, then ends
#                            the VM through Tandem's debug port (0xf4) with status 0
# Usage: scripts/fetch-guest.sh [OUTDIR]   (default: guest/ in the repository)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/guest}
mkdir -p "$out"
if [ -s "$out/vmlinuz" ] && [ -s "$out/initramfs.cpio.gz" ]; then
  echo "fetch-guest: $out already has vmlinuz and initramfs.cpio.gz"
  exit 0
fi

need=()
command -v cpio >/dev/null || need+=(cpio)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "fetch-guest: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# The meta package names the current kernel package; download it without installing it.
kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "fetch-guest: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
echo "fetch-guest: downloading $kpkg"
apt-get download "$kpkg" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$kpkg" >/dev/null; }
dpkg-deb -x ./*.deb pkg
cp pkg/boot/vmlinuz-* "$out/vmlinuz"

mkdir -p rootfs/{bin,dev,proc,sys,etc}
cp /bin/busybox rootfs/bin/busybox
cat > rootfs/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "BOOT-OK $(cut -d' ' -f1 /proc/uptime)"
if grep -qw shell /proc/cmdline; then
  setsid cttyhack sh
fi
# Tandem's debug port 0xf4 (244): writing a byte ends the VM with that exit status.
printf '\000' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
INIT
chmod +x rootfs/init
(cd rootfs && find . | cpio -o -H newc 2>/dev/null | gzip -9) > "$out/initramfs.cpio.gz"
echo "fetch-guest: wrote $out/vmlinuz and $out/initramfs.cpio.gz"
