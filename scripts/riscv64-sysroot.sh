#!/usr/bin/env bash
# A riscv64 sysroot of real Debian programs, for running them under tandem-riscv64 (and
# qemu-riscv64-static) with -L DIR: Debian trixie's riscv64 packages of
#   libc6 bash dash (/bin/sh) coreutils sed gawk perl git python3 python3.13-minimal libpython3.13-stdlib
#   libpython3.13-testsuite (CPython's own regression tests, /usr/lib/python3.13/test)
# and everything they depend on, resolved by apt (no Recommends), unpacked with dpkg-deb
# (no maintainer scripts run; /usr/share/doc, man and locale are left out). The tree is
# merged-/usr as trixie's is: /bin, /sbin and /lib are symbolic links into /usr.
#
# Usage: scripts/riscv64-sysroot.sh DIR [EXTRA_PACKAGE...]
# Cached: when DIR/.sysroot-packages lists the same requested packages and is newer than
# this script and scripts/lib/debian-riscv64.sh, nothing is done (no network). Otherwise
# the .debs come through the mirror the host's apt sources name (a private apt
# configuration, scripts/lib/debian-riscv64.sh), the tree is built beside DIR and replaces
# it at the end, so an interrupted run leaves no half-built sysroot. Concurrent runs on the
# same DIR wait for each other (a lock file DIR.lock). Needs apt-get, dpkg-deb and tar.
# 85 packages: 55 MB to download, 190 MB unpacked, 10 to 30 s (mostly the apt index).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
self=$root/scripts/riscv64-sysroot.sh
lib=$root/scripts/lib/debian-riscv64.sh
[ $# -ge 1 ] || { echo "usage: $0 DIR [EXTRA_PACKAGE...]" >&2; exit 2; }
. "$lib"

dir=$1
shift
packages=(libc6 bash dash coreutils sed gawk perl git python3 python3.13-minimal libpython3.13-stdlib
          libpython3.13-testsuite "$@")
want="requested: ${packages[*]}"
stamp=$dir/.sysroot-packages

up_to_date() {
  [ -f "$stamp" ] && [ "$stamp" -nt "$self" ] && [ "$stamp" -nt "$lib" ] \
    && [ "$(head -1 "$stamp")" = "$want" ]
}

mkdir -p "$(dirname "$dir")"
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")
stamp=$dir/.sysroot-packages
if up_to_date; then
  echo "riscv64-sysroot: $dir is up to date"
  exit 0
fi
exec 9>"$dir.lock"
flock 9
# Another run may have built it while this one waited for the lock.
if up_to_date; then
  echo "riscv64-sysroot: $dir is up to date"
  exit 0
fi

command -v apt-get >/dev/null || rv64_die "apt-get missing: this script needs a Debian host"
rv64_need dpkg-deb dpkg
start=$SECONDS
work=$(mktemp -d "$dir.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
rv64_apt_init "$work/apt"
closure=$(rv64_closure "${packages[@]}")
count=$(wc -l <<<"$closure")
echo "riscv64-sysroot: downloading $count packages (riscv64 and all)"
mkdir "$work/debs"
(cd "$work/debs" && rv64_apt_get -qq download $(awk '{ print $1 }' <<<"$closure")) \
  || rv64_die "downloading the packages failed"

tree=$work/tree
echo "riscv64-sysroot: unpacking into $dir"
mkdir -p "$tree/usr/bin" "$tree/usr/sbin" "$tree/usr/lib" "$tree/etc" "$tree/tmp"
for d in bin sbin lib; do ln -s "usr/$d" "$tree/$d"; done
for deb in "$work"/debs/*.deb; do
  # --keep-directory-symlink: a package's ./lib/... goes through the /lib link into /usr/lib.
  dpkg-deb --fsys-tarfile "$deb" \
    | tar -x -C "$tree" --keep-directory-symlink --no-same-owner \
          --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/locale \
    || rv64_die "unpacking $(basename "$deb") failed"
done

# The programs the tests run, and the loader they name, must be there.
for f in usr/bin/bash usr/bin/sh usr/bin/sort usr/bin/sed usr/bin/gawk usr/bin/perl usr/bin/git \
         usr/bin/python3 usr/lib/python3.13/test/regrtest.py lib/ld-linux-riscv64-lp64d.so.1; do
  [ -e "$tree/$f" ] || rv64_die "the unpacked packages have no /$f"
done

{ echo "$want"; echo "$closure"; } > "$tree/.sysroot-packages"
rm -rf "$dir.old"
[ -e "$dir" ] && mv "$dir" "$dir.old"
mv "$tree" "$dir"
rm -rf "$dir.old"
echo "riscv64-sysroot: $dir ready: $count packages, $(du -sm "$dir" | cut -f1) MB, $((SECONDS - start)) s"
