#!/usr/bin/env bash
# First set-up command of the README: installs what Tandem needs, builds it, fetches the
# default guest and boots it with the console on this terminal (Ctrl-A x quits):
#  - with hardware virtualisation (kvm_intel/kvm_amd and a usable /dev/kvm): Debian's
#    x86-64 cloud kernel + a busybox initramfs on KVM (scripts/fetch-guest.sh);
#  - otherwise (no KVM, or nested PVM where a guest kernel's ring 0 is emulated and cannot
#    finish booting): Debian's riscv64 kernel + busybox on Tandem's RISC-V `virt` machine
#    (scripts/fetch-riscv-guest.sh), translated, which runs on any host.
# Either guest prints BOOT-OK and powers off. Extra arguments go to `tandem run`, e.g.
# --cmdline "console=ttyS0 shell" for a shell; TANDEM_MACHINE=riscv-virt|x86-kvm forces one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v cargo >/dev/null; then
  echo "run-default-guest: cargo not found; install Rust 1.87 or newer (https://rustup.rs)" >&2
  exit 1
fi
command -v gcc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null; }

machine=${TANDEM_MACHINE:-}
if [ -z "$machine" ]; then
  if [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -e /sys/module/kvm_intel ] || [ -e /sys/module/kvm_amd ]; }; then
    machine=x86-kvm
  else
    machine=riscv-virt
    echo "run-default-guest: no hardware virtualisation here: booting the RISC-V guest on Tandem's translator"
  fi
fi
cargo build --release --manifest-path "$root/Cargo.toml" -p tandem --bin tandem
case "$machine" in
  x86-kvm)
    "$root/scripts/fetch-guest.sh"
    exec "$root/target/release/tandem" run \
      --kernel "$root/guest/vmlinuz" --initrd "$root/guest/initramfs.cpio.gz" \
      --cmdline "console=ttyS0 earlyprintk=serial reboot=k panic=1" "$@" ;;
  riscv-virt)
    "$root/scripts/fetch-riscv-guest.sh"
    exec "$root/target/release/tandem" run --machine riscv-virt \
      --kernel "$root/guest/riscv64/Image" --initrd "$root/guest/riscv64/initramfs.cpio.gz" \
      --cmdline "console=ttyS0 panic=-1" "$@" ;;
  *) echo "run-default-guest: unknown TANDEM_MACHINE '$machine' (riscv-virt or x86-kvm)" >&2; exit 2 ;;
esac
