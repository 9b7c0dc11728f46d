#!/usr/bin/env bash
# First set-up command of the README: installs what Tandem needs, builds it, fetches the
# default guest (Debian's cloud kernel + a busybox initramfs) and boots it on KVM.
# Extra arguments go to `tandem run` (e.g. --cmdline "console=ttyS0 shell").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v cargo >/dev/null; then
  echo "run-default-guest: cargo not found; install Rust 1.85 or newer (https://rustup.rs)" >&2
  exit 1
fi
command -v gcc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null; }
"$root/scripts/fetch-guest.sh"
cargo build --release --manifest-path "$root/Cargo.toml" -p tandem --bin tandem
exec "$root/target/release/tandem" run \
  --kernel "$root/guest/vmlinuz" --initrd "$root/guest/initramfs.cpio.gz" \
  --cmdline "console=ttyS0 earlyprintk=serial reboot=k panic=1" "$@"
