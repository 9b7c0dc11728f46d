#!/usr/bin/env bash
# Builds tandem-riscv64 statically linked (glibc's static libc, from libc6-dev), as the
# binfmt_misc handler must be: with the F flag the kernel opens it once at registration, and
# it then starts in any chroot, which holds none of the host's libraries. Prints its path.
#
#   scripts/build-static-riscv64.sh            release build (CARGO_TARGET_DIR or ./target)
#
# Then: sudo "$(scripts/build-static-riscv64.sh)" --binfmt register
# (glibc warns at link time that getaddrinfo in a static program needs the host's NSS
# libraries at run time: only -g's "localhost" lookup uses it, and falls back to an error.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=x86_64-unknown-linux-gnu
# --target keeps these objects apart from the dynamic build's: RUSTFLAGS would otherwise
# rebuild everything each time one switches between the two.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --target "$target" -p tandem --bin tandem-riscv64 >&2
bin="${CARGO_TARGET_DIR:-$root/target}/$target/release/tandem-riscv64"
if readelf -lW "$bin" | grep -q 'Requesting program interpreter'; then
  echo "build-static-riscv64.sh: $bin is still dynamically linked" >&2
  exit 1
fi
echo "$bin"
