//! `tandem run` end to end: the binary, its exit statuses, its console, and its errors.

#[path = "../../../tests/support/x86_guests.rs"]
mod x86_guests;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn tandem() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.stdin(Stdio::null());
    cmd
}

fn run_guest(guest: &str, extra: &[&str]) -> Output {
    let kernel = x86_guests::build(guest);
    tandem()
        .arg("run")
        .arg("--kernel")
        .arg(kernel)
        .args(["--memory", "64M"])
        .args(extra)
        .output()
        .expect("run tandem")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn guest_console_reaches_stdout_and_boot_timer_logs() {
    if !x86_guests::kvm_usable("guest_console_reaches_stdout_and_boot_timer_logs") {
        return;
    }
    let out = run_guest("serial", &[]);
    assert_eq!(
        text(&out.stdout),
        "Hello from ring 3 of a Tandem test guest\n"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("boot timer: marker 1 reached") && stderr.contains("ms after start"),
        "stderr: {stderr}"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn stdin_reaches_the_guest_through_the_uart() {
    if !x86_guests::kvm_usable("stdin_reaches_the_guest_through_the_uart") {
        return;
    }
    let kernel = x86_guests::build("echo");
    let mut child = tandem()
        .arg("run")
        .arg("--kernel")
        .arg(kernel)
        .args(["--memory", "64M"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // More than the UART's 64-byte receive FIFO, so Tandem must hold input back.
    let line = format!("{}\n", "tandem ".repeat(20));
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), line.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("echo: {line}"));
}

#[test]
fn serial_can_go_to_a_file_or_nowhere() {
    if !x86_guests::kvm_usable("serial_can_go_to_a_file_or_nowhere") {
        return;
    }
    let path = scratch("console.txt");
    let _ = std::fs::remove_file(&path);
    let out = run_guest("serial", &["--serial", &format!("file:{}", path.display())]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "Hello from ring 3 of a Tandem test guest\n"
    );
    let out = run_guest("serial", &["--serial", "none"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), String::new())
    );
}

#[test]
fn debug_port_value_becomes_the_exit_status() {
    if !x86_guests::kvm_usable("debug_port_value_becomes_the_exit_status") {
        return;
    }
    let out = run_guest("exit_code", &[]);
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(
        text(&out.stderr),
        "",
        "a guest-chosen exit needs no explanation"
    );
}

#[test]
fn triple_fault_ends_the_vm_with_status_4() {
    if !x86_guests::kvm_usable("triple_fault_ends_the_vm_with_status_4") {
        return;
    }
    let out = run_guest("triple_fault", &[]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("triple-faulted"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn acpi_poweroff_ends_the_vm_with_status_0() {
    if !x86_guests::kvm_usable("acpi_poweroff_ends_the_vm_with_status_0") {
        return;
    }
    let out = run_guest("poweroff", &["--cpus", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn i8042_reset_ends_the_vm_with_status_3() {
    if !x86_guests::kvm_usable("i8042_reset_ends_the_vm_with_status_3") {
        return;
    }
    let out = run_guest("reset", &["--cpus", "2"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("guest requested a reset"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sigterm_and_sigint_stop_a_running_guest_cleanly() {
    if !x86_guests::kvm_usable("sigterm_and_sigint_stop_a_running_guest_cleanly") {
        return;
    }
    let kernel = x86_guests::build("spin");
    for (signal, status) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let mut child = tandem()
            .arg("run")
            .arg("--kernel")
            .arg(&kernel)
            .args(["--memory", "64M", "--cpus", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the guest runs (it prints once), then signal.
        let mut stdout = child.stdout.take().unwrap();
        let mut line = [0u8; 9];
        std::io::Read::read_exact(&mut stdout, &mut line).unwrap();
        assert_eq!(&line, b"spinning\n");
        // SAFETY: plain kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(status));
        assert!(text(&out.stderr).contains(&format!("stopped by signal {signal}")));
    }
}

/// Runs `tandem run` with `args` and expects exit status 1 with one error line that
/// contains `needle`.
fn expect_error(args: &[&str], needle: &str) {
    let out = tandem().arg("run").args(args).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "args {args:?}: stderr {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    assert!(stderr.starts_with("tandem: "), "{stderr}");
    assert!(stderr.contains(needle), "expected '{needle}' in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_kernels_and_initrds_give_one_clear_line() {
    let missing = "/nonexistent/kernel";
    expect_error(
        &["--kernel", missing],
        "cannot open kernel /nonexistent/kernel",
    );

    let garbage = scratch("garbage.bin");
    std::fs::write(&garbage, vec![0x5au8; 4096]).unwrap();
    let garbage = garbage.to_str().unwrap();
    if !x86_guests::kvm_usable("bad_kernels_and_initrds_give_one_clear_line") {
        return;
    }
    expect_error(&["--kernel", garbage], "is not a Linux kernel");

    let empty = scratch("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    expect_error(
        &["--kernel", empty.to_str().unwrap()],
        "is not a Linux kernel",
    );

    // A real ELF guest cut short: the header promises segments that are not there.
    let elf = std::fs::read(x86_guests::build("serial")).unwrap();
    let truncated = scratch("truncated.elf");
    std::fs::write(&truncated, &elf[..200]).unwrap();
    expect_error(
        &["--kernel", truncated.to_str().unwrap()],
        "cannot load kernel",
    );

    // A bzImage header with nothing behind it.
    let mut fake_bz = vec![0u8; 0x1000];
    fake_bz[0x1f1] = 1; // setup_sects
    fake_bz[0x202..0x206].copy_from_slice(b"HdrS");
    fake_bz[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    let fake = scratch("fake.bzImage");
    std::fs::write(&fake, &fake_bz).unwrap();
    expect_error(&["--kernel", fake.to_str().unwrap()], "cannot load kernel");

    let kernel = x86_guests::build("serial");
    let kernel = kernel.to_str().unwrap();
    expect_error(
        &["--kernel", kernel, "--initrd", "/nonexistent/initrd"],
        "cannot open initrd /nonexistent/initrd",
    );
    // An initrd larger than the guest's RAM.
    let big = scratch("big.initrd");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(40 << 20)
        .unwrap();
    expect_error(
        &[
            "--kernel",
            kernel,
            "--memory",
            "32M",
            "--initrd",
            big.to_str().unwrap(),
        ],
        "does not fit in guest memory",
    );
}

#[test]
fn bad_memory_and_cpu_counts_give_one_clear_line() {
    let kernel = x86_guests::build("serial");
    let kernel = kernel.to_str().unwrap();
    expect_error(&["--kernel", kernel, "--memory", "1M"], "too small");
    expect_error(
        &["--kernel", kernel, "--memory", "64T"],
        "more than this host has",
    );
    expect_error(
        &["--kernel", kernel, "--cpus", "0"],
        "--cpus must be at least 1",
    );
    if !x86_guests::kvm_usable("bad_memory_and_cpu_counts_give_one_clear_line") {
        return;
    }
    expect_error(
        &["--kernel", kernel, "--cpus", "255"],
        "more than this host's KVM allows",
    );
}

#[test]
fn malformed_flags_are_usage_errors() {
    for args in [
        vec!["run"],
        vec!["run", "--kernel", "k", "--memory", "lots"],
        vec!["run", "--kernel", "k", "--serial", "tcp:1234"],
        vec!["run", "--kernel", "k", "--cpus", "-1"],
        vec!["fly"],
    ] {
        let out = tandem().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!text(&out.stderr).contains("panicked"));
    }
}

#[test]
fn missing_kvm_is_reported_clearly() {
    // Hide /dev/kvm in a private mount namespace (needs root and unshare(1)).
    let kernel = x86_guests::build("serial");
    let script = format!(
        "mount -t tmpfs none /dev && exec {} run --kernel {}",
        env!("CARGO_BIN_EXE_tandem"),
        kernel.display()
    );
    let out = match Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if !text(&out.stderr).contains("unshare failed") => out,
        _ => {
            eprintln!(
                "skipping missing_kvm_is_reported_clearly: cannot create a mount namespace here"
            );
            return;
        }
    };
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/dev/kvm does not exist"), "{stderr}");
}

#[test]
fn help_documents_the_exit_statuses() {
    let out = tandem().args(["run", "--help"]).output().unwrap();
    let help = text(&out.stdout);
    for needle in ["Exit status:", "triple-faulted", "130 SIGINT", "debug port"] {
        assert!(help.contains(needle), "missing '{needle}' in help");
    }
}
