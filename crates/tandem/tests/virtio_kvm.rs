//! virtio-mmio devices on the x86 KVM machine, driven by a ring-3 test guest that is its
//! own virtio driver (tests/guests/x86/virtio_blk.S), under both irqchip modes.

#[path = "../../../tests/support/x86_guests.rs"]
mod x86_guests;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SECTOR: usize = 512;
const DISK_SECTORS: usize = 16;
/// What the host fills the disk with; the guest writes sector 3 only.
const FILL: u8 = 0xee;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("virtio-kvm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn stat(stderr: &str, key: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tandem-stats:"))
        .unwrap_or_else(|| panic!("no statistics line in {stderr:?}"));
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .parse()
        .unwrap()
}

/// The guest's pattern for the sector it writes.
fn pattern() -> Vec<u8> {
    (0..SECTOR).map(|i| (i * 7 + 3) as u8).collect()
}

fn run_blk_guest(disk: &Path, disk_options: &str, irqchip: &str) -> Output {
    std::fs::write(disk, vec![FILL; DISK_SECTORS * SECTOR]).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("run")
        .arg("--kernel")
        .arg(x86_guests::build("virtio_blk"))
        .args(["--memory", "64M", "--stats", "--irqchip", irqchip])
        .arg("--disk")
        .arg(format!("path={}{disk_options}", disk.display()))
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .output()
        .expect("run tandem")
}

fn check_disk(disk: &Path, sector3: &[u8]) {
    let bytes = std::fs::read(disk).unwrap();
    assert_eq!(bytes.len(), DISK_SECTORS * SECTOR);
    for (n, sector) in bytes.chunks(SECTOR).enumerate() {
        if n == 3 {
            assert_eq!(sector, sector3, "sector 3");
        } else {
            assert!(sector.iter().all(|&b| b == FILL), "sector {n} was touched");
        }
    }
}

fn blk_round_trip(irqchip: &str) -> String {
    let disk = scratch(&format!("blk-{irqchip}.img"));
    let out = run_blk_guest(&disk, ",format=raw", irqchip);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "guest check failed (exit status = check number); stderr: {stderr}"
    );
    assert_eq!(
        text(&out.stdout),
        "virtio-blk: sector 3 written, read back and flushed\n"
    );
    check_disk(&disk, &pattern());
    // The queue's notify register is a KVM ioeventfd: notifies reach the worker
    // without an exit to Tandem.
    assert!(
        stderr.contains("device type 2 at 0xd0000000, IRQ 5, 1 queue notify ioeventfd(s)"),
        "{stderr}"
    );
    stderr
}

#[test]
fn virtio_blk_on_the_in_kernel_irqchip() {
    if !x86_guests::kvm_usable("virtio_blk_on_the_in_kernel_irqchip") {
        return;
    }
    let stderr = blk_round_trip("kernel");
    // Interrupts went through irqfds: Tandem injected none.
    assert_eq!(stat(&stderr, "injected_irqs"), 0, "{stderr}");
}

#[test]
fn virtio_blk_on_the_userspace_pic() {
    if !x86_guests::kvm_usable("virtio_blk_on_the_userspace_pic") {
        return;
    }
    let stderr = blk_round_trip("userspace");
    // The first completion's interrupt waited for the guest's window; the other two were
    // raised by the device's worker thread while the vCPU ran, and kicked it.
    assert!(stat(&stderr, "irq_window_exits") >= 1, "{stderr}");
    assert_eq!(stat(&stderr, "injected_irqs"), 3, "{stderr}");
}

#[test]
fn a_readonly_disk_fails_the_write_and_stays_unchanged() {
    if !x86_guests::kvm_usable("a_readonly_disk_fails_the_write_and_stays_unchanged") {
        return;
    }
    let disk = scratch("blk-readonly.img");
    let out = run_blk_guest(&disk, ",format=raw,readonly=on", "kernel");
    // Check 9: the OUT request's status was not VIRTIO_BLK_S_OK.
    assert_eq!(out.status.code(), Some(9), "{}", text(&out.stderr));
    check_disk(&disk, &[FILL; SECTOR]);
}

#[test]
fn virtio_devices_are_announced_until_the_slots_run_out() {
    // Eight devices, seven slots: a clear error before the VM exists.
    let disk = scratch("blk-many.img");
    std::fs::write(&disk, vec![0u8; SECTOR]).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.arg("run")
        .arg("--kernel")
        .arg(x86_guests::build("virtio_blk"))
        .stdin(Stdio::null());
    for _ in 0..8 {
        cmd.arg("--disk")
            .arg(format!("path={},readonly=on", disk.display()));
    }
    if !x86_guests::kvm_usable("virtio_devices_are_announced_until_the_slots_run_out") {
        return;
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("8 virtio devices asked for, but this machine has room for 7"),
        "{}",
        text(&out.stderr)
    );
}
