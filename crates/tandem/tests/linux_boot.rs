//! Real Linux kernels under `tandem run`. On this project's CI host (nested PVM) a kernel
//! starts, prints its banner, command line and e820 map, then hits an instruction KVM
//! cannot emulate in ring 0; on hosts with hardware virtualisation it boots to the
//! initramfs's BOOT-OK marker.

#[path = "../../../tests/support/x86_guests.rs"]
mod x86_guests;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CMDLINE: &str = "console=ttyS0 earlyprintk=serial tandem.test=cmdline-marker";
/// The e820 map Tandem builds for a 256 MiB guest, as Linux prints it.
const E820_LINES: [&str; 3] = [
    "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
    "BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved",
    "BIOS-e820: [mem 0x0000000000100000-0x000000000fffffff] usable",
];
/// Not a timing assertion: only a guard so a broken boot fails instead of hanging CI.
const HANG_GUARD: Duration = Duration::from_secs(900);

struct Boot {
    output: String,
    status: ExitStatus,
    stderr: String,
    all_markers_seen: bool,
}

/// Boots `kernel` and reads its console until every marker has appeared (then stops
/// Tandem with SIGTERM) or Tandem exits by itself.
fn boot(kernel: &Path, initrd: Option<&Path>, cmdline: &str, markers: &[&str]) -> Boot {
    boot_with(kernel, initrd, cmdline, &[], markers)
}

/// [`boot`] with more `tandem run` arguments.
fn boot_with(
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: &str,
    extra: &[&str],
    markers: &[&str],
) -> Boot {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.arg("run")
        .arg("--kernel")
        .arg(kernel)
        .args(["--cmdline", cmdline, "--memory", "256M"])
        .args(extra);
    if let Some(initrd) = initrd {
        cmd.arg("--initrd").arg(initrd);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tandem");
    let pid = child.id() as i32;
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut output = Vec::new();
    let mut all_markers_seen = false;
    loop {
        match rx.recv_timeout(HANG_GUARD) {
            Ok(chunk) => {
                output.extend_from_slice(&chunk);
                let text = String::from_utf8_lossy(&output);
                if !all_markers_seen && markers.iter().all(|m| text.contains(m)) {
                    all_markers_seen = true;
                    // SAFETY: kill(2) on our own child's pid.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                break;
            }
        }
    }
    reader.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    Boot {
        output: String::from_utf8_lossy(&output).into_owned(),
        status,
        stderr,
        all_markers_seen,
    }
}

fn early_markers() -> Vec<&'static str> {
    let mut m = vec![
        "Linux version",
        "Command line: console=ttyS0 earlyprintk=serial tandem.test=cmdline-marker",
    ];
    m.extend(E820_LINES);
    m
}

fn assert_starts(name: &str, kernel: &Path) {
    let boot = boot(kernel, None, CMDLINE, &early_markers());
    assert!(
        boot.all_markers_seen,
        "{name}: banner, command line or e820 map missing.\nconsole:\n{}\nstderr:\n{}",
        boot.output, boot.stderr
    );
    // Stopped by our SIGTERM (143), or it reached this host's emulation limit first (5).
    let code = boot.status.code();
    assert!(
        matches!(code, Some(143) | Some(5)),
        "{name}: exit {code:?}, stderr {}",
        boot.stderr
    );
    assert!(!boot.stderr.contains("panicked"), "{}", boot.stderr);
}

/// A guest image from `../shared/guest` (or `TANDEM_GUEST_DIR`). `None`, after printing why
/// `test` skips, when there is no such directory at all (a clone without `../shared` beside
/// it); a directory that lacks the image is a broken set-up and fails the test.
fn shared(test: &str, name: &str) -> Option<PathBuf> {
    let dir = x86_guests::shared_guest_dir();
    if !dir.is_dir() {
        eprintln!(
            "skipping {test}: no guest image directory at {} (../shared/guest beside the \
             repository, or TANDEM_GUEST_DIR)",
            dir.display()
        );
        return None;
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing (../shared/guest or TANDEM_GUEST_DIR)",
        path.display()
    );
    Some(path)
}

#[test]
fn elf_vmlinux_starts_through_pvh() {
    if !x86_guests::kvm_usable("elf_vmlinux_starts_through_pvh") {
        return;
    }
    let Some(kernel) = shared("elf_vmlinux_starts_through_pvh", "linux-x86_64.vmlinux") else {
        return;
    };
    assert_starts("vmlinux", &kernel);
}

#[test]
fn lz4_bzimage_starts() {
    if !x86_guests::kvm_usable("lz4_bzimage_starts") {
        return;
    }
    let Some(kernel) = shared("lz4_bzimage_starts", "linux-x86_64.bzImage") else {
        return;
    };
    assert_starts("bzImage", &kernel);
}

/// x86 has no device tree: each virtio-mmio transport is announced on the kernel command
/// line, which the kernel prints. Where the kernel boots fully, it finds the disk.
#[test]
fn virtio_mmio_devices_are_announced_on_the_command_line() {
    let test = "virtio_mmio_devices_are_announced_on_the_command_line";
    if !x86_guests::kvm_usable(test) {
        return;
    }
    let Some(kernel) = shared(test, "linux-x86_64.vmlinux") else {
        return;
    };
    let disk = Path::new(env!("CARGO_TARGET_TMPDIR")).join("linux-boot-virtio.img");
    std::fs::write(&disk, vec![0u8; 64 << 10]).unwrap();
    let disk_arg = format!("path={},format=raw", disk.display());
    let announced = format!(
        "Command line: {CMDLINE} virtio_mmio.device=4K@0xd0000000:5 \
         virtio_mmio.device=4K@0xd0001000:6"
    );
    let mut markers = vec!["Linux version", announced.as_str()];
    if x86_guests::hardware_virtualization() {
        markers.push("[vda] 128 512-byte logical blocks");
    }
    let boot = boot_with(
        &kernel,
        None,
        CMDLINE,
        &["--disk", &disk_arg, "--rng"],
        &markers,
    );
    assert!(
        boot.all_markers_seen,
        "markers {markers:?} missing.\nconsole:\n{}\nstderr:\n{}",
        boot.output, boot.stderr
    );
}

#[test]
fn debian_cloud_kernel_starts() {
    if !x86_guests::kvm_usable("debian_cloud_kernel_starts") {
        return;
    }
    let kernel = std::env::var_os("TANDEM_DEBIAN_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest/vmlinuz"));
    assert!(
        kernel.exists(),
        "{} is missing: run scripts/fetch-guest.sh (Debian's linux-image-cloud-amd64)",
        kernel.display()
    );
    assert_starts("Debian cloud kernel", &kernel);
}

#[test]
fn emulation_limit_is_reported_with_the_guest_rip() {
    if !x86_guests::kvm_usable("emulation_limit_is_reported_with_the_guest_rip") {
        return;
    }
    if x86_guests::hardware_virtualization() {
        eprintln!("skipping emulation_limit_is_reported_with_the_guest_rip: this host has hardware virtualisation, so the kernel does not hit PVM's emulation limits");
        return;
    }
    let test = "emulation_limit_is_reported_with_the_guest_rip";
    let Some(kernel) = shared(test, "linux-x86_64.vmlinux") else {
        return;
    };
    // No markers: run until Tandem ends by itself.
    let boot = boot(&kernel, None, CMDLINE, &["marker that never appears"]);
    assert_eq!(boot.status.code(), Some(5), "stderr: {}", boot.stderr);
    let lines: Vec<&str> = boot
        .stderr
        .lines()
        .filter(|l| l.starts_with("tandem:"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", boot.stderr);
    assert!(
        lines[0].contains("cannot emulate") && lines[0].contains("rip 0x"),
        "{}",
        lines[0]
    );
}

#[test]
fn boots_to_the_initramfs_with_hardware_virtualization() {
    if !x86_guests::kvm_usable("boots_to_the_initramfs_with_hardware_virtualization") {
        return;
    }
    if !x86_guests::hardware_virtualization() {
        eprintln!("skipping boots_to_the_initramfs_with_hardware_virtualization: no kvm_intel/kvm_amd (nested PVM emulates guest ring 0 too slowly and incompletely for a full boot)");
        return;
    }
    let test = "boots_to_the_initramfs_with_hardware_virtualization";
    let (Some(kernel), Some(initramfs)) = (
        shared(test, "linux-x86_64.vmlinux"),
        shared(test, "initramfs-x86_64.cpio.gz"),
    ) else {
        return;
    };
    let boot = boot(
        &kernel,
        Some(&initramfs),
        "console=ttyS0 panic=-1",
        &["BOOT-OK"],
    );
    assert!(
        boot.all_markers_seen,
        "no BOOT-OK.\nconsole:\n{}\nstderr:\n{}",
        boot.output, boot.stderr
    );
}
