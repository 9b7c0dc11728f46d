//! `tandem run --irqchip userspace`: interrupts through Tandem's 8259A PIC model, injected
//! with KVM_INTERRUPT, observed through the guests' output and `--stats`.

#[path = "../../../tests/support/x86_guests.rs"]
mod x86_guests;

use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn tandem() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.stdin(Stdio::null());
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value of `key` in the `tandem-stats:` line on stderr.
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

fn run_guest(guest: &str, irqchip: &str) -> Output {
    tandem()
        .arg("run")
        .arg("--kernel")
        .arg(x86_guests::build(guest))
        .args(["--memory", "64M", "--stats", "--irqchip", irqchip])
        .output()
        .expect("run tandem")
}

#[test]
fn pic_interrupt_is_injected_when_the_window_opens() {
    if !x86_guests::kvm_usable("pic_interrupt_is_injected_when_the_window_opens") {
        return;
    }
    let out = run_guest("pic_irq", "userspace");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(
        text(&out.stdout),
        "IRQ 4 arrived at vector 0x44, EOI sent\n"
    );
    // The UART raised IRQ 4 while the guest had interrupts disabled: Tandem asked for an
    // interrupt window and injected the vector when KVM reported it open.
    assert!(stat(&stderr, "irq_window_exits") >= 1, "{stderr}");
    assert_eq!(stat(&stderr, "injected_irqs"), 1, "{stderr}");
}

#[test]
fn the_same_guest_runs_on_the_in_kernel_pic() {
    if !x86_guests::kvm_usable("the_same_guest_runs_on_the_in_kernel_pic") {
        return;
    }
    let out = run_guest("pic_irq", "kernel");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(
        text(&out.stdout),
        "IRQ 4 arrived at vector 0x44, EOI sent\n"
    );
    assert_eq!(stat(&stderr, "irq_window_exits"), 0, "{stderr}");
    assert_eq!(stat(&stderr, "injected_irqs"), 0, "{stderr}");
}

/// Reads the child's stdout until it has printed `expected` next.
fn expect_output(child: &mut Child, expected: &str) {
    let mut got = vec![0u8; expected.len()];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("waiting for {expected:?}: {e}"));
    assert_eq!(text(&got), expected);
}

/// Waits for the child, killing it if it takes longer than a minute.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn input_wakes_a_halted_vcpu_and_kicks_a_running_one() {
    if !x86_guests::kvm_usable("input_wakes_a_halted_vcpu_and_kicks_a_running_one") {
        return;
    }
    let mut child = tandem()
        .arg("run")
        .arg("--kernel")
        .arg(x86_guests::build("pic_wait"))
        .args(["--memory", "64M", "--stats", "--irqchip", "userspace"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Each byte is raised on IRQ 4 by Tandem's main thread (stdin), not the vCPU's. The
    // pauses let the guest reach `hlt`, then its exit-free spin loop, before the byte.
    expect_output(&mut child, "halting\n");
    std::thread::sleep(Duration::from_millis(200));
    child.stdin.as_mut().unwrap().write_all(b"x").unwrap();
    expect_output(&mut child, "spinning\n");
    std::thread::sleep(Duration::from_millis(200));
    child.stdin.as_mut().unwrap().write_all(b"y").unwrap();
    let out = finish(child);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(text(&out.stdout), "got xy\n");
    assert_eq!(stat(&stderr, "hlt_exits"), 1, "{stderr}");
    assert_eq!(stat(&stderr, "injected_irqs"), 2, "{stderr}");
}

#[test]
fn a_vcpu_sleeping_in_hlt_stops_with_the_vm() {
    if !x86_guests::kvm_usable("a_vcpu_sleeping_in_hlt_stops_with_the_vm") {
        return;
    }
    let mut child = tandem()
        .arg("run")
        .arg("--kernel")
        .arg(x86_guests::build("pic_wait"))
        .args(["--memory", "64M", "--irqchip", "userspace"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    expect_output(&mut child, "halting\n");
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = finish(child);
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
}

#[test]
fn userspace_irqchip_is_one_vcpu_and_x86_only() {
    let kernel = x86_guests::build("pic_irq");
    let out = tandem()
        .arg("run")
        .arg("--kernel")
        .arg(&kernel)
        .args(["--irqchip", "userspace", "--cpus", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--irqchip userspace runs one vCPU"),
        "{}",
        text(&out.stderr)
    );
    for args in [
        vec!["--irqchip", "bogus"],
        vec!["--machine", "riscv-virt", "--irqchip", "userspace"],
        vec!["--machine", "riscv-virt", "--stats"],
    ] {
        let out = tandem()
            .arg("run")
            .arg("--kernel")
            .arg(&kernel)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
