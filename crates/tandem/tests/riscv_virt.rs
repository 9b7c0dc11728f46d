//! The RISC-V `virt` machine: the shared Linux kernel and initramfs boot on Tandem's
//! translator (built-in SBI with 1 and 4 harts, Debian's OpenSBI, both backends), compute
//! in the guest, power off and reboot; bad input is refused with one line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const OPENSBI: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin";

#[path = "../../../tests/support/riscv_guests.rs"]
mod riscv_guests;

use riscv_guests::{guarded, guest, guest_dir, tandem};

fn boot(kernel: &Path, initrd: &Path, cmdline: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "--machine",
        "riscv-virt",
        "--kernel",
        kernel.to_str().unwrap(),
        "--initrd",
        initrd.to_str().unwrap(),
        "--memory",
        "256M",
        "--cmdline",
        cmdline,
    ];
    args.extend_from_slice(extra);
    let out = tandem(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "tandem panicked:\n{err}");
    (
        out.status.code().unwrap_or(-1),
        format!("{text}\n--- stderr:\n{err}"),
    )
}

fn host_md5(input: &str) -> String {
    let mut child = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("md5sum");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// What `seq 1 N` prints.
fn seq(n: u32) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

#[test]
fn builtin_sbi_boots_computes_and_powers_off() {
    let Some((k, i)) = guest("builtin_sbi") else {
        return;
    };
    let (status, out) = boot(
        &k,
        &i,
        "console=ttyS0 panic=-1 run=seq,1,30000,|,md5sum",
        &[],
    );
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("BOOT-OK"), "{out}");
    assert!(out.contains("SBI specification v2.0 detected"), "{out}");
    let want = host_md5(&seq(30000));
    assert!(
        out.contains(&want),
        "guest md5 differs from the host's {want}:\n{out}"
    );
    assert!(out.contains("reboot: Power down"), "{out}");
}

#[test]
fn four_harts_come_online() {
    let Some((k, i)) = guest("four_harts") else {
        return;
    };
    let (status, out) = boot(
        &k,
        &i,
        "console=ttyS0 panic=-1 run=cat,/sys/devices/system/cpu/online run=seq,1,20000,|,md5sum",
        &["--cpus", "4"],
    );
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("smp: Brought up 1 node, 4 CPUs"), "{out}");
    assert!(out.lines().any(|l| l.trim() == "0-3"), "{out}");
    assert!(out.contains(&host_md5(&seq(20000))), "{out}");
    assert!(out.contains("BOOT-OK"), "{out}");
}

#[test]
fn opensbi_firmware_boots_the_kernel() {
    let Some((k, i)) = guest("opensbi") else {
        return;
    };
    if !Path::new(OPENSBI).exists() {
        eprintln!("opensbi: skipped: {OPENSBI} missing (Debian package opensbi)");
        return;
    }
    let (status, out) = boot(
        &k,
        &i,
        "console=ttyS0 panic=-1 run=seq,1,5000,|,md5sum",
        &["--bios", OPENSBI, "--cpus", "2"],
    );
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("OpenSBI"), "no OpenSBI banner:\n{out}");
    assert!(out.contains("Platform Name"), "{out}");
    assert!(out.contains(&host_md5(&seq(5000))), "{out}");
    assert!(out.contains("BOOT-OK"), "{out}");
}

#[test]
fn interpreter_backend_boots() {
    let Some((k, i)) = guest("interp") else {
        return;
    };
    let (status, out) = boot(
        &k,
        &i,
        "console=ttyS0 panic=-1 run=seq,1,2000,|,md5sum",
        &["--backend", "interp"],
    );
    assert_eq!(status, 0, "{out}");
    assert!(out.contains(&host_md5(&seq(2000))), "{out}");
    assert!(out.contains("BOOT-OK"), "{out}");
}

#[test]
fn guest_reboot_exits_with_status_3() {
    let Some((k, i)) = guest("reboot") else {
        return;
    };
    let (status, out) = boot(&k, &i, "console=ttyS0 panic=-1 run=reboot,-f", &[]);
    assert_eq!(status, 3, "{out}");
}

/// One line on stderr, status 1, no guest started.
fn refused(args: &[&str], what: &str) {
    let out = tandem(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: want one line:\n{err}");
    assert!(err.starts_with("tandem: "), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn bad_input_is_refused_with_one_line() {
    let Some((k, i)) = guest("bad_input") else {
        return;
    };
    let d = tempdir();
    let truncated = d.join("truncated.Image");
    let bytes = std::fs::read(&k).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let k = k.to_str().unwrap();
    let (i, t) = (i.to_str().unwrap(), truncated.to_str().unwrap());
    refused(
        &["--machine", "x86-kvm", "--kernel", k],
        "RISC-V kernel on x86-kvm",
    );
    let x86 = guest_dir().join("linux-x86_64.bzImage");
    if x86.exists() {
        let x = x86.to_str().unwrap();
        refused(
            &["--machine", "riscv-virt", "--kernel", x],
            "x86 kernel on riscv-virt",
        );
    }
    refused(&["--kernel", t], "truncated Image");
    refused(&["--kernel", k, "--bios", i], "firmware that is not one");
    refused(&["--kernel", k, "--memory", "8M"], "memory too small");
    refused(&["--kernel", k, "--cpus", "0"], "no harts");
    refused(
        &["--kernel", k, "--initrd", "/nonexistent"],
        "missing initrd",
    );
}

#[test]
fn dump_dtb_writes_the_device_tree() {
    let Some((k, i)) = guest("dump_dtb") else {
        return;
    };
    let out_path = tempdir().join("virt.dtb");
    let out = tandem(&[
        "--kernel",
        k.to_str().unwrap(),
        "--initrd",
        i.to_str().unwrap(),
        "--cpus",
        "2",
        "--cmdline",
        "console=ttyS0 dtb-marker",
        "--dump-dtb",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let dtb = std::fs::read(&out_path).expect("dtb written");
    assert_eq!(&dtb[..4], &[0xd0, 0x0d, 0xfe, 0xed], "FDT magic");
    let text = String::from_utf8_lossy(&dtb);
    for s in [
        "dtb-marker",
        "ns16550a",
        "riscv,plic0",
        "sifive,test0",
        "rv64imafdc",
    ] {
        assert!(text.contains(s), "{s} missing from the device tree");
    }
}

/// A newc cpio archive of `(path in the archive, file contents, mode)`, gzip-free: Linux
/// unpacks uncompressed archives appended to a compressed initramfs.
fn cpio(files: &[(&str, Vec<u8>, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |name: &str, data: &[u8], mode: u32, ino: u32| {
        let header = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (i, (name, data, mode)) in files.iter().enumerate() {
        entry(name, data, *mode, i as u32 + 1);
    }
    entry("TRAILER!!!", &[], 0, 0);
    out
}

/// Compiles `tests/riscv-guest/NAME.c` static for riscv64, or None (printed) without the
/// cross compiler.
fn guest_program(name: &str) -> Option<Vec<u8>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/riscv-guest")
        .join(format!("{name}.c"));
    let out = tempdir().join(name);
    let status = Command::new("riscv64-linux-gnu-gcc")
        .args(["-O2", "-static", "-o"])
        .arg(&out)
        .arg(&src)
        .status();
    match status {
        Ok(s) if s.success() => Some(std::fs::read(&out).expect("compiled program")),
        Ok(s) => panic!("cannot compile {}: {s}", src.display()),
        Err(e) => {
            eprintln!("{name}: skipped: riscv64-linux-gnu-gcc unavailable ({e})");
            None
        }
    }
}

#[test]
fn self_modifying_user_program_under_the_guest_kernel() {
    let Some((k, i)) = guest("smc_user") else {
        return;
    };
    let Some(prog) = guest_program("smc") else {
        return;
    };
    let mut initrd = std::fs::read(&i).unwrap();
    // The kernel looks for the next archive at a 4-byte boundary (zeros pad up to it).
    initrd.resize(initrd.len().next_multiple_of(4), 0);
    initrd.extend(cpio(&[("smc", prog, 0o100755)]));
    let path = tempdir().join("initrd-smc.cpio");
    std::fs::write(&path, initrd).unwrap();
    for backend in ["native", "interp"] {
        let (status, out) = boot(
            &k,
            &path,
            "console=ttyS0 panic=-1 run=/smc",
            &["--backend", backend],
        );
        assert_eq!(status, 0, "{backend}: {out}");
        assert!(out.contains("SMC-OK"), "{backend}: {out}");
    }
}

/// Builds `tests/riscv-guest/` sources (assembly or freestanding C) into flat M-mode
/// firmware at 0x80000000 named NAME, or None (printed) without the cross toolchain.
fn baremetal_from(name: &str, sources: &[&str]) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/riscv-guest");
    let (elf, bin) = (
        tempdir().join(format!("{name}.elf")),
        tempdir().join(format!("{name}.bin")),
    );
    let built = Command::new("riscv64-linux-gnu-gcc")
        .args([
            "-O1",
            "-ffreestanding",
            "-nostdlib",
            "-nostartfiles",
            "-static",
        ])
        .args([
            "-no-pie",
            "-fno-pic",
            "-mcmodel=medany",
            "-Wl,--build-id=none",
        ])
        .args(["-march=rv64gc", "-mabi=lp64d", "-T"])
        .arg(dir.join("baremetal.ld"))
        .arg("-o")
        .arg(&elf)
        .args(sources.iter().map(|s| dir.join(s)))
        .status();
    match built {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("cannot build {name}: {s}"),
        Err(e) => {
            eprintln!("{name}: skipped: riscv64-linux-gnu-gcc unavailable ({e})");
            return None;
        }
    }
    let copied = Command::new("riscv64-linux-gnu-objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&bin)
        .status()
        .expect("objcopy");
    assert!(copied.success());
    Some(bin)
}

fn baremetal(name: &str) -> Option<PathBuf> {
    baremetal_from(name, &[&format!("{name}.S")])
}

/// The privileged-architecture checks of `tests/riscv-guest/priv.c` (exceptions and their
/// cause/epc/tval, WARL fields, Sv39 page faults of every kind with exact tval, SUM, MXR,
/// A/D updates, sfence.vma, U/S permissions, fetch faults, ecall from S, software and
/// timer interrupts, wfi, a spinning loop taking its timer interrupt) print the same on
/// Tandem, with both backends, as on qemu-system-riscv64.
#[test]
fn privileged_architecture_matches_qemu() {
    let Some(bin) = baremetal_from("priv", &["priv-entry.S", "priv.c"]) else {
        return;
    };
    let firmware = bin.to_str().unwrap();
    let run = |backend: &str| {
        tandem(&[
            "--machine",
            "riscv-virt",
            "--bios",
            firmware,
            "--memory",
            "128M",
            "--backend",
            backend,
        ])
    };
    let native = run("native");
    let text = String::from_utf8_lossy(&native.stdout).into_owned();
    assert_eq!(native.status.code(), Some(0), "{text}");
    assert!(text.ends_with("PRIV-DONE\n"), "{text}");
    for line in [
        "store to read-only page: cause=0xf",
        "S load of U page, SUM=0: cause=0xd",
        "PTE after a store (D): 0xc0",
        "load after sfence.vma: 0x22",
        "fetch from non-X page: cause=0xc epc=+0x0 tval=0x40000000",
        "timer interrupt in a spin loop: 0x8000000000000007",
        "mip.SEIP after the line drops: 0x0",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let interp = run("interp");
    assert_eq!(
        String::from_utf8_lossy(&interp.stdout),
        text,
        "interp differs"
    );
    let Ok(status) = Command::new("qemu-system-riscv64")
        .arg("--version")
        .output()
    else {
        eprintln!("priv: qemu comparison skipped: qemu-system-riscv64 unavailable");
        return;
    };
    assert!(status.status.success());
    let mut qemu = Command::new("qemu-system-riscv64");
    qemu.args(["-M", "virt", "-m", "128M", "-nographic", "-bios", firmware]);
    let q = guarded(qemu);
    assert_eq!(
        String::from_utf8_lossy(&q.stdout),
        text,
        "qemu-system-riscv64 printed otherwise"
    );
}

/// Code rewritten in S-mode and run again, with and without fence.i, including the
/// instruction right after the store in the running block. (QEMU 7.2 runs the stale
/// instruction in that last case, as RISC-V allows without fence.i; Tandem promises more,
/// so this program is checked against its expected output rather than against QEMU.)
#[test]
fn self_modifying_code_in_s_mode() {
    let Some(bin) = baremetal("smc-smode") else {
        return;
    };
    for backend in ["native", "interp"] {
        let out = tandem(&[
            "--machine",
            "riscv-virt",
            "--bios",
            bin.to_str().unwrap(),
            "--memory",
            "64M",
            "--backend",
            backend,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{backend}: {text}");
        assert_eq!(text, "SMODE-SMC-OK\n", "{backend}");
    }
}

/// A directory of this test thread's files, under Cargo's scratch directory for
/// integration tests (in `target/`, so nothing is left in /tmp).
fn tempdir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "tandem-riscv-virt-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
