#!/usr/bin/env bash
# Real-I/O benchmarks on the RISC-V virt machine: Tandem beside qemu-system-riscv64 -M virt
# (Debian's qemu-system-misc), same kernel, same initramfs, same images, in one run:
#   1. sequential write and read in the guest with direct I/O (busybox dd, 1 MiB blocks,
#      256 MiB) on a raw image and on a qcow2 image (virtio-blk, host page cache on both);
#   2. TCP throughput over virtio-net on a tap in a network namespace: 256 MiB guest to host
#      (busybox nc into a Python receiver) and host to guest (busybox wget from a Python
#      HTTP server); the host side times each transfer.
# Prints MB/s and Tandem/QEMU ratios (above 1: Tandem faster) and writes
# docs/benchmarks-riscv-io.md. Needs root (network namespace, tap).
# Usage: bench/riscv-io/run.sh   (REPS=3; KERNEL=, INITRD= default to ../shared/guest)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
REPS=${REPS:-3}
guest=${TANDEM_GUEST_DIR:-$repo/../shared/guest}
KERNEL=${KERNEL:-$guest/linux-riscv64.Image}
INITRD=${INITRD:-$guest/initramfs-riscv64.cpio.gz}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out=$target_dir/bench-riscv-io
md=${MD:-$repo/docs/benchmarks-riscv-io.md}
mkdir -p "$out"
for tool in qemu-system-riscv64:qemu-system-misc qemu-img:qemu-utils cpio:cpio ip:iproute2 python3:python3; do
  command -v "${tool%%:*}" >/dev/null || { echo "missing ${tool%%:*}: apt-get install ${tool##*:}" >&2; exit 1; }
done
echo "building tandem (release)..." >&2
(cd "$repo" && CARGO_TARGET_DIR="$target_dir" cargo build --release -q -p tandem --bin tandem)
tandem=$target_dir/release/tandem

# The guest side: /bench.sh in an initramfs overlay. Results are "RESULT name MB/s" lines.
rm -rf "$out/root"; mkdir -p "$out/root"
cat > "$out/root/bench.sh" <<'EOF'
mkdir -p /tmp
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ping -c 1 -W 10 10.0.2.1 >/dev/null
# busybox dd's last line: "N bytes (...) copied, S seconds, R<unit>/s"; recompute MB/s.
rate() { awk '/copied/ { for (i = 1; i <= NF; i++) if ($i ~ /^seconds/) s = $(i-1); printf "%.1f", $1 / s / 1e6 }'; }
for d in vda:raw vdb:qcow2; do
  dev=${d%%:*}; fmt=${d##*:}
  echo "RESULT blk-write-$fmt $(dd if=/dev/zero of=/dev/$dev bs=1M count=256 oflag=direct 2>&1 | rate)"
  echo "RESULT blk-read-$fmt $(dd if=/dev/$dev of=/dev/null bs=1M count=256 iflag=direct 2>&1 | rate)"
done
dd if=/dev/zero bs=64k count=4096 2>/dev/null | nc 10.0.2.1 5000
wget -q -O /dev/null http://10.0.2.1:8000/big
echo BENCH-DONE
EOF
(cd "$out/root" && echo bench.sh | cpio -o -H newc --quiet | gzip) > "$out/bench.cpio.gz"
cat "$INITRD" "$out/bench.cpio.gz" > "$out/initrd.cpio.gz"
cmdline="console=ttyS0 panic=-1 run=sh,/bench.sh"

# The host side: times 256 MiB from the guest on 5000 and 256 MiB to it over HTTP on 8000.
cat > "$out/peer.py" <<'EOF'
import http.server, socket, sys, threading, time
N = 256 << 20
chunk = bytes(1 << 20)
class Send(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', str(N))
        self.end_headers()
        t = time.monotonic()
        for _ in range(N >> 20):
            self.wfile.write(chunk)
        self.wfile.flush()
        print('RESULT net-host-to-guest %.1f' % (N / (time.monotonic() - t) / 1e6), flush=True)
    def log_message(self, *a):
        pass
httpd = http.server.HTTPServer(('10.0.2.1', 8000), Send)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('10.0.2.1', 5000))
s.listen(1)
print('ready', flush=True)
c, _ = s.accept()
n, t = 0, None
# Exactly N bytes, then close: busybox nc waits for the peer to close before it exits.
while n < N:
    b = c.recv(1 << 20)
    if not b:
        break
    if t is None:
        t = time.monotonic()
    n += len(b)
print('RESULT net-guest-to-host %.1f' % (n / (time.monotonic() - t) / 1e6), flush=True)
c.close()
time.sleep(600)
EOF

ns=tandem-bench-$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" tuntap add dev tap0 mode tap
ip -n "$ns" addr add 10.0.2.1/24 dev tap0
ip -n "$ns" link set tap0 up
ip -n "$ns" link set lo up

# run_one NAME: one boot of machine NAME with fresh images; appends RESULT lines to $out/NAME.res
run_one() {
  local name=$1
  rm -f "$out/disk.raw" "$out/disk.qcow2"
  truncate -s 300M "$out/disk.raw"
  qemu-img create -q -f qcow2 "$out/disk.qcow2" 300M
  ip netns exec "$ns" python3 "$out/peer.py" > "$out/peer.log" &
  local peer=$!
  while ! grep -q ready "$out/peer.log" 2>/dev/null; do sleep 0.1; done
  if [ "$name" = tandem ]; then
    ip netns exec "$ns" "$tandem" run --machine riscv-virt --kernel "$KERNEL" --initrd "$out/initrd.cpio.gz" \
      --memory 512M --cmdline "$cmdline" --disk "path=$out/disk.raw,format=raw" \
      --disk "path=$out/disk.qcow2,format=qcow2" --net tap=tap0 </dev/null > "$out/guest.log" 2>&1 || true
  else
    ip netns exec "$ns" qemu-system-riscv64 -M virt -m 512M -nographic -no-reboot -kernel "$KERNEL" \
      -initrd "$out/initrd.cpio.gz" -append "$cmdline" \
      -drive "file=$out/disk.raw,format=raw,if=none,id=d0" -device virtio-blk-device,drive=d0 \
      -drive "file=$out/disk.qcow2,format=qcow2,if=none,id=d1" -device virtio-blk-device,drive=d1 \
      -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-device,netdev=n0 \
      </dev/null > "$out/guest.log" 2>&1 || true
  fi
  kill "$peer" 2>/dev/null || true
  wait "$peer" 2>/dev/null || true
  grep -q BENCH-DONE "$out/guest.log" || { echo "$name: the guest did not finish; see $out/guest.log" >&2; exit 1; }
  grep -ah '^RESULT' "$out/guest.log" "$out/peer.log" | tr -d '\r' >> "$out/$name.res"
}

for m in tandem qemu; do
  : > "$out/$m.res"
  for _ in $(seq "$REPS"); do run_one "$m"; done
done

# best NAME METRIC: the highest MB/s over the repetitions
best() { awk -v k="$2" '$2 == k { if ($3 > b) b = $3 } END { printf "%.1f", b }' "$out/$1.res"; }
metrics=(blk-write-raw blk-read-raw blk-write-qcow2 blk-read-qcow2 net-guest-to-host net-host-to-guest)
{
  echo "| benchmark | Tandem MB/s | QEMU 7.2 MB/s | Tandem/QEMU |"
  echo "|---|---|---|---|"
  for k in "${metrics[@]}"; do
    t=$(best tandem "$k"); q=$(best qemu "$k")
    echo "| $k | $t | $q | $(echo "scale=2; $t / $q" | bc -l)x |"
  done
} > "$out/table.md"
cat "$out/table.md"
{
  echo "# Real-I/O benchmarks (RISC-V virt machine)"
  echo
  echo "\`REPS=$REPS bench/riscv-io/run.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores; best of $REPS boots each."
  echo "Guest: the shared Linux 6.1 + busybox, 512 MiB, 1 hart; 256 MiB per measurement; images"
  echo "on the host's page cache for both (QEMU's default cache mode, Tandem's only one)."
  echo
  cat "$out/table.md"
} > "$md"
