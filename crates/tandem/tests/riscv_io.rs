//! Real I/O on the RISC-V `virt` machine: the shared Linux drives Tandem's virtio devices
//! and the host checks the result with its own tools: e2fsck/debugfs for the file system
//! the guest made, qemu-img for qcow2 images, sha256 for network transfers.
//!
//! The guest runs `/test.sh` (an initramfs overlay made per test) and prints `key=value`
//! lines the tests read.

#[path = "../../../tests/support/riscv_guests.rs"]
mod riscv_guests;

use std::path::{Path, PathBuf};
use std::process::Command;

use riscv_guests::*;

const RUN_SCRIPT: &str = "console=ttyS0 panic=-1 run=sh,/test.sh";

fn host(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256_file(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

/// Deterministic pseudo-random bytes (xorshift), so a test's data is the same every run.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The guest side of the file-system tests: mkfs.ext4 (Debian's), files with known
/// contents, a checksum of what the guest reads back through its page cache, sync.
const MAKE_FS: &str = r#"
set -e
mkfs.ext4 -q -F -L tandem /dev/vda
mkdir -p /mnt
mount -t ext4 /dev/vda /mnt
seq 1 20000 > /mnt/numbers.txt
mkdir /mnt/dir
i=0; while [ $i -lt 50 ]; do echo "file $i" > /mnt/dir/f$i; i=$((i+1)); done
dd if=/dev/urandom of=/mnt/random.bin bs=64k count=64 2>/dev/null
echo random=$(sha256sum /mnt/random.bin | cut -d' ' -f1)
sync
umount /mnt
echo fs-done=1
"#;

fn tools_and_guest(test: &str) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let (k, i) = guest(test)?;
    if !have("e2fsck", test) || !have("debugfs", test) {
        return None;
    }
    Some((k, i, io_tools(test)?))
}

/// Checks the file system the guest made: clean, and the files hold what they should.
fn check_fs(image: &Path, dir: &Path, run: &Run) {
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck found problems:\n{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let numbers = dir.join("numbers.txt");
    let random = dir.join("random.bin");
    host(&format!(
        "debugfs -R 'dump /numbers.txt {}' {} && debugfs -R 'dump /random.bin {}' {}",
        numbers.display(),
        image.display(),
        random.display(),
        image.display()
    ));
    let expected: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert!(
        std::fs::read_to_string(&numbers).unwrap() == expected,
        "numbers.txt differs"
    );
    assert_eq!(
        Some(sha256_file(&random)),
        run.value("random"),
        "{}",
        run.all()
    );
    let listing = host(&format!("debugfs -R 'ls -l /dir' {}", image.display()));
    assert_eq!(listing.matches(" f").count(), 50, "{listing}");
}

#[test]
fn blk_raw_guest_makes_ext4_the_host_checks_it() {
    let Some((k, i, tools)) = tools_and_guest("blk_raw") else {
        return;
    };
    let dir = scratch("blk_raw");
    let disk = dir.join("disk.raw");
    host(&format!("truncate -s 64M {}", disk.display()));
    let initrd = initrd_with_script(&dir, &i, &[tools], MAKE_FS);
    let arg = format!("path={},format=raw", disk.display());
    let run = boot_with(&k, &initrd, RUN_SCRIPT, &["--disk", &arg]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert_eq!(run.value("fs-done").as_deref(), Some("1"), "{}", run.all());
    check_fs(&disk, &dir, &run);
}

#[test]
fn blk_qcow2_guest_makes_ext4_qemu_img_checks_it() {
    let Some((k, i, tools)) = tools_and_guest("blk_qcow2") else {
        return;
    };
    if !have("qemu-img", "blk_qcow2") {
        return;
    }
    let dir = scratch("blk_qcow2");
    let disk = dir.join("disk.qcow2");
    host(&format!(
        "qemu-img create -q -f qcow2 {} 64M",
        disk.display()
    ));
    let script = format!("{MAKE_FS}\necho device=$(sha256sum /dev/vda | cut -d' ' -f1)\n");
    let initrd = initrd_with_script(&dir, &i, &[tools], &script);
    let arg = format!("path={},format=qcow2", disk.display());
    let run = boot_with(&k, &initrd, RUN_SCRIPT, &["--disk", &arg]);
    assert_eq!(run.status, 0, "{}", run.all());
    host(&format!("qemu-img check -q {}", disk.display()));
    let raw = dir.join("converted.raw");
    host(&format!(
        "qemu-img convert -O raw {} {}",
        disk.display(),
        raw.display()
    ));
    // What QEMU's reading of the image gives is byte for byte what the guest read.
    assert_eq!(
        Some(sha256_file(&raw)),
        run.value("device"),
        "{}",
        run.all()
    );
    check_fs(&raw, &dir, &run);
    // The image grew as the guest wrote: allocated clusters, not a preallocated file.
    let size = std::fs::metadata(&disk).unwrap().len();
    assert!(size > (4 << 20) && size < (64 << 20), "qcow2 size {size}");
}

#[test]
fn blk_qcow2_backing_file_reads_base_and_writes_overlay() {
    let Some((k, i)) = guest("blk_backing") else {
        return;
    };
    if !have("qemu-img", "blk_backing") {
        return;
    }
    let dir = scratch("blk_backing");
    let base = dir.join("base.raw");
    let data = pattern(4 << 20, 7);
    std::fs::write(&base, &data).unwrap();
    let base_sum = sha256_file(&base);
    let overlay = dir.join("overlay.qcow2");
    host(&format!(
        "qemu-img create -q -f qcow2 -b {} -F raw {}",
        base.display(),
        overlay.display()
    ));
    // Read the whole device, then overwrite 1 MiB in the middle with a known pattern.
    let script = r#"
echo before=$(sha256sum /dev/vda | cut -d' ' -f1)
dd if=/dev/zero bs=4096 count=256 2>/dev/null | tr '\0' 'T' > /tmp/t
dd if=/tmp/t of=/dev/vda bs=4096 seek=256 conv=notrunc oflag=direct 2>/dev/null
sync
echo after=$(sha256sum /dev/vda | cut -d' ' -f1)
"#;
    let initrd = initrd_with_script(&dir, &i, &[], script);
    let arg = format!("path={}", overlay.display());
    let run = boot_with(&k, &initrd, RUN_SCRIPT, &["--disk", &arg]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert_eq!(run.value("before"), Some(base_sum.clone()), "{}", run.all());
    assert_eq!(sha256_file(&base), base_sum, "the backing file was written");
    let mut expected = data;
    expected[1 << 20..2 << 20].fill(b'T');
    assert_eq!(
        run.value("after"),
        Some(sha256_hex(&expected)),
        "{}",
        run.all()
    );
    host(&format!("qemu-img check -q {}", overlay.display()));
    let raw = dir.join("converted.raw");
    host(&format!(
        "qemu-img convert -O raw {} {}",
        overlay.display(),
        raw.display()
    ));
    assert_eq!(sha256_file(&raw), sha256_hex(&expected));
}

#[test]
fn blk_data_written_before_a_reboot_is_there_after_it() {
    let Some((k, i)) = guest("blk_reboot") else {
        return;
    };
    if !have("qemu-img", "blk_reboot") {
        return;
    }
    let dir = scratch("blk_reboot");
    let disk = dir.join("disk.qcow2");
    host(&format!(
        "qemu-img create -q -f qcow2 {} 16M",
        disk.display()
    ));
    let arg = format!("path={}", disk.display());
    let write = r#"
echo persisted-across-reboot > /tmp/m
dd if=/tmp/m of=/dev/vda bs=512 seek=1000 conv=sync oflag=direct 2>/dev/null
reboot -f
"#;
    let initrd = initrd_with_script(&dir, &i, &[], write);
    let run = boot_with(&k, &initrd, RUN_SCRIPT, &["--disk", &arg]);
    assert_eq!(run.status, 3, "the guest rebooted: {}", run.all());
    let read = "echo marker=$(dd if=/dev/vda bs=512 skip=1000 count=1 2>/dev/null | head -n1)\n";
    let dir2 = dir.join("second");
    std::fs::create_dir_all(&dir2).unwrap();
    let initrd = initrd_with_script(&dir2, &i, &[], read);
    let run = boot_with(&k, &initrd, RUN_SCRIPT, &["--disk", &arg]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert_eq!(
        run.value("marker").as_deref(),
        Some("persisted-across-reboot"),
        "{}",
        run.all()
    );
}

#[test]
fn blk_readonly_refuses_writes_and_leaves_the_file_alone() {
    let Some((k, i)) = guest("blk_readonly") else {
        return;
    };
    let dir = scratch("blk_readonly");
    let disk = dir.join("ro.raw");
    std::fs::write(&disk, pattern(1 << 20, 3)).unwrap();
    let before = sha256_file(&disk);
    let script = r#"
echo ro=$(cat /sys/block/vda/ro)
if dd if=/dev/zero of=/dev/vda bs=512 count=8 oflag=direct 2>/dev/null; then echo write=ok; else echo write=failed; fi
echo read=$(sha256sum /dev/vda | cut -d' ' -f1)
"#;
    let initrd = initrd_with_script(&dir, &i, &[], script);
    let arg = format!("path={},readonly=on", disk.display());
    let run = boot_with(&k, &initrd, RUN_SCRIPT, &["--disk", &arg]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert_eq!(run.value("ro").as_deref(), Some("1"), "{}", run.all());
    assert_eq!(
        run.value("write").as_deref(),
        Some("failed"),
        "{}",
        run.all()
    );
    assert_eq!(run.value("read"), Some(before.clone()), "{}", run.all());
    assert_eq!(sha256_file(&disk), before);
}

#[test]
fn blk_bad_images_are_refused_with_one_line() {
    let Some((k, i)) = guest("blk_bad_images") else {
        return;
    };
    let dir = scratch("blk_bad_images");
    let raw = dir.join("plain.raw");
    std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
    let cases = [
        format!("path={}", dir.join("missing.img").display()),
        format!("path={},format=qcow2", raw.display()),
        format!("path={},format=vmdk", raw.display()),
        "format=raw".to_string(),
    ];
    for disk in &cases {
        let run = Run::from(tandem(&[
            "--kernel",
            k.to_str().unwrap(),
            "--initrd",
            i.to_str().unwrap(),
            "--disk",
            disk,
        ]));
        assert!(
            run.status == 1 || run.status == 2,
            "--disk {disk}: {}",
            run.all()
        );
        let lines: Vec<_> = run
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert!(
            !lines.is_empty() && lines.len() <= 3,
            "--disk {disk}: {}",
            run.all()
        );
        assert!(!run.stdout.contains("BOOT-OK"), "--disk {disk} booted");
    }
    assert_eq!(std::fs::read(&raw).unwrap(), vec![0u8; 1 << 20]);
}

#[test]
fn rng_feeds_hwrng() {
    let Some((k, i)) = guest("rng") else {
        return;
    };
    let dir = scratch("rng");
    let script = r#"
echo current=$(cat /sys/class/misc/hw_random/rng_current)
echo bytes=$(head -c 4096 /dev/hwrng | wc -c)
echo distinct=$(head -c 4096 /dev/hwrng | od -An -tx1 -v | tr ' ' '\n' | grep . | sort -u | wc -l)
"#;
    let initrd = initrd_with_script(&dir, &i, &[], script);
    let run = boot_with(&k, &initrd, RUN_SCRIPT, &["--rng"]);
    assert_eq!(run.status, 0, "{}", run.all());
    assert!(
        run.value("current")
            .is_some_and(|c| c.starts_with("virtio_rng")),
        "{}",
        run.all()
    );
    assert_eq!(run.value("bytes").as_deref(), Some("4096"), "{}", run.all());
    // 4096 random bytes take nearly all 256 values; a device handing out zeros takes one.
    let distinct: u32 = run.value("distinct").unwrap().trim().parse().unwrap();
    assert!(distinct > 200, "{}", run.all());
}

#[test]
fn virtio_console_is_the_guests_shell() {
    let Some((k, i)) = guest("console") else {
        return;
    };
    // The init script starts a shell on the console: type into it through Tandem's stdin.
    // This kernel has the SBI console as hvc0 (as under QEMU), so the virtio one is hvc1.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.args([
        "run",
        "--kernel",
        k.to_str().unwrap(),
        "--initrd",
        i.to_str().unwrap(),
        "--console",
        "virtio",
        "--cmdline",
        "console=hvc1 panic=-1 shell",
    ]);
    let run = interactive(
        cmd,
        "/ # ",
        b"echo answer=$((6*7)) on $(tty)\npoweroff -f\n",
    );
    assert_eq!(run.status, 0, "{}", run.all());
    assert!(run.stdout.contains("BOOT-OK"), "{}", run.all());
    assert!(
        run.stdout.contains("answer=42 on /dev/hvc1"),
        "{}",
        run.all()
    );
}

/// A network namespace with a tap inside, removed when dropped.
struct NetNs {
    name: String,
}

impl NetNs {
    /// None, with a printed reason, where namespaces or taps cannot be made (not root).
    fn new(test: &str) -> Option<NetNs> {
        if !have("ip", test) || !have("python3", test) {
            return None;
        }
        let name = format!("tandem-{test}-{}", std::process::id());
        let setup = format!(
            "ip netns add {name} && ip -n {name} tuntap add dev tap0 mode tap && \
             ip -n {name} addr add 10.0.2.1/24 dev tap0 && ip -n {name} link set tap0 up && \
             ip -n {name} link set lo up"
        );
        let ok = Command::new("sh").arg("-c").arg(&setup).output();
        let ns = NetNs { name };
        match ok {
            Ok(o) if o.status.success() => Some(ns),
            Ok(o) => {
                eprintln!(
                    "{test}: skipped: cannot make a network namespace with a tap (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("{test}: skipped: {e}");
                None
            }
        }
    }

    fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A child process that must not outlive a failed test (it would hold the test's pipes).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The host end: serves the file over HTTP on 8000, then reads back as many bytes from
/// the first connection on 5000 and prints their sha256 and count.
const HOST_PEER: &str = r#"
import functools, hashlib, http.server, os, socket, sys, threading
path = sys.argv[1]
size = os.path.getsize(path)
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=os.path.dirname(path))
httpd = http.server.HTTPServer(('10.0.2.1', 8000), handler)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
back = socket.socket()
back.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
back.bind(('10.0.2.1', 5000))
back.listen(1)
print('ready', flush=True)
c, _ = back.accept()
h, n = hashlib.sha256(), 0
while n < size:
    b = c.recv(1 << 16)
    if not b:
        break
    h.update(b)
    n += len(b)
c.close()
print(h.hexdigest(), n, flush=True)
"#;

#[test]
fn net_tap_ping_and_16_mib_each_way() {
    let Some((k, i)) = guest("net") else {
        return;
    };
    let Some(ns) = NetNs::new("net") else {
        return;
    };
    let dir = scratch("net");
    let data = pattern(16 << 20, 11);
    let data_path = dir.join("data.bin");
    std::fs::write(&data_path, &data).unwrap();
    let expected = sha256_hex(&data);

    let mut peer = KillOnDrop(
        ns.exec("python3")
            .arg("-c")
            .arg(HOST_PEER)
            .arg(&data_path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3"),
    );
    let mut peer_out = std::io::BufReader::new(peer.0.stdout.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    peer_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let script = r#"
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
if ping -c 2 -W 10 10.0.2.1 >/dev/null; then echo ping=ok; else echo ping=failed; fi
wget -q -O /tmp/in http://10.0.2.1:8000/data.bin
echo received=$(sha256sum /tmp/in | cut -d' ' -f1)
nc 10.0.2.1 5000 < /tmp/in
echo sent=done
"#;
    let initrd = initrd_with_script(&dir, &i, &[], script);
    let mut cmd = ns.exec(env!("CARGO_BIN_EXE_tandem"));
    cmd.args([
        "run",
        "--kernel",
        k.to_str().unwrap(),
        "--initrd",
        initrd.to_str().unwrap(),
        "--memory",
        "256M",
        "--cmdline",
        RUN_SCRIPT,
        "--net",
        "tap=tap0,mac=52:54:00:12:34:56",
    ]);
    let run = Run::from(guarded(cmd));
    assert_eq!(run.status, 0, "{}", run.all());
    assert_eq!(run.value("ping").as_deref(), Some("ok"), "{}", run.all());
    assert_eq!(
        run.value("received"),
        Some(expected.clone()),
        "{}",
        run.all()
    );
    line.clear();
    peer_out.read_line(&mut line).unwrap();
    let _ = peer.0.wait();
    assert_eq!(
        line.trim(),
        format!("{expected} {}", data.len()),
        "what came back to the host"
    );
}

#[test]
fn net_tap_that_cannot_be_opened_is_one_line() {
    let Some((k, i)) = guest("net_bad_tap") else {
        return;
    };
    let run = Run::from(tandem(&[
        "--kernel",
        k.to_str().unwrap(),
        "--initrd",
        i.to_str().unwrap(),
        "--net",
        "tap=this-is-too-long-for-a-tap",
    ]));
    assert_eq!(run.status, 2, "{}", run.all());
    // A name the kernel refuses (or a tap we may not open) fails at start, status 1.
    let run = Run::from(tandem(&[
        "--kernel",
        k.to_str().unwrap(),
        "--initrd",
        i.to_str().unwrap(),
        "--net",
        "tap=bad/name",
    ]));
    assert_eq!(run.status, 1, "{}", run.all());
    assert!(
        run.stderr.contains("cannot open tap bad/name"),
        "{}",
        run.all()
    );
}
