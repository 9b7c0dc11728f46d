#!/usr/bin/env bash
# Builds Tandem's default RISC-V guest from Debian's riscv64 packages (trixie), fetched
# through the mirror this machine's apt already uses, with a private apt configuration
# (nothing is installed on the host):
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
command -v cpio >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cpio >/dev/null; }

# The mirror: the first URI of the host's Debian sources (deb822 or one-line format).
uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | grep -v security | head -1 || true)
if [ -z "$uri" ]; then
  uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
        /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$uri" ] || { echo "fetch-riscv-guest: no Debian mirror found in /etc/apt" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
apt_dir="$work/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/etc/preferences.d"
echo "deb [arch=riscv64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" \
  > "$apt_dir/etc/sources.list"
: > "$apt_dir/status"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::Status=$apt_dir/status"
          -o "Dir::Cache=$apt_dir/cache" -o "APT::Architecture=riscv64"
          -o "APT::Architectures::=riscv64" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
echo "fetch-riscv-guest: reading the riscv64 package index of Debian trixie ($uri)"
apt-get "${apt_opts[@]}" -qq update
kpkg=$(apt-cache "${apt_opts[@]}" depends linux-image-riscv64 | awk '/Depends: linux-image-/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "fetch-riscv-guest: cannot resolve linux-image-riscv64" >&2; exit 1; }
cd "$work"
echo "fetch-riscv-guest: downloading $kpkg and busybox-static (riscv64)"
apt-get "${apt_opts[@]}" -qq download "$kpkg:riscv64" "busybox-static:riscv64"
dpkg-deb -x ./linux-image-*.deb kernel
dpkg-deb -x ./busybox-static_*.deb busybox
image=$(ls kernel/boot/vmlinu* | head -1)
cp "$image" "$out/Image.tmp"

echo "fetch-riscv-guest: building the initramfs"
mkdir -p rootfs/{bin,dev,proc,sys,etc,tmp}
bb=$(find busybox -path "*bin/busybox" -type f | head -1)
[ -n "$bb" ] || { echo "fetch-riscv-guest: busybox-static has no busybox binary" >&2; exit 1; }
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
