#!/usr/bin/env bash
# Second set-up command of the README, and what CI runs (.ci/run): installs the build and
# test dependencies, fetches the default guest, then checks formatting, lints and runs
# every test. Tests that need KVM skip with a printed reason where /dev/kvm is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

packages=(build-essential cpio busybox-static gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu
          libc6-dev-riscv64-cross qemu-user-static qemu-system-misc opensbi device-tree-compiler
          gdb-multiarch qemu-utils e2fsprogs iproute2 python3 mmdebstrap arch-test bc)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "test.sh: cargo not found; install Rust 1.87 or newer (https://rustup.rs)" >&2
  exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy >/dev/null 2>&1 || true

scripts/fetch-guest.sh

echo "test.sh: cargo fmt --check"
cargo fmt --all -- --check
echo "test.sh: cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# cargo test hides a passing test's output, so say here which KVM tests will skip and why.
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
  echo "test.sh: /dev/kvm is not usable here: every KVM test skips (the translator tests still run)"
elif [ ! -e /sys/module/kvm_intel ] && [ ! -e /sys/module/kvm_amd ]; then
  echo "test.sh: KVM without kvm_intel/kvm_amd (e.g. nested PVM): the full Linux boot to BOOT-OK skips; kernels are checked up to their banner, command line and e820 map"
fi
# The binfmt_misc tests register the static build (it must start inside a chroot).
echo "test.sh: static tandem-riscv64 (scripts/build-static-riscv64.sh)"
TANDEM_RISCV64_STATIC=$(scripts/build-static-riscv64.sh)
export TANDEM_RISCV64_STATIC
echo "test.sh: cargo test"
cargo test --workspace --no-fail-fast
