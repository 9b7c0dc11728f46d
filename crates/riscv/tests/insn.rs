//! Per-instruction tests: hand-written assembly (tests/asm/*.S) assembled with Debian's
//! riscv64-linux-gnu toolchain. Each program checks its own results and exits with the number
//! of the first failing check (0 = all passed). Every program runs on both backends and,
//! to validate the expectations themselves, under qemu-riscv64-static.

mod common;
use common::*;
use std::process::Command;

fn check(name: &str, body: &str) {
    let prelude = include_str!("asm/prelude.S");
    let src = format!("{prelude}\n{body}\n");
    let d = scratch(&format!("insn-{name}"));
    let (elf, img) = build(&d, name, &src);
    for b in BACKENDS {
        let o = run(&img, b);
        assert_eq!(o.code, 0, "{name} on {b:?}: check {} failed", o.code);
    }
    let st = Command::new("qemu-riscv64-static")
        .arg(&elf)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run qemu-riscv64-static ({e}); install the Debian package qemu-user-static"
            )
        });
    assert_eq!(
        st.code(),
        Some(0),
        "{name} under qemu: check {:?} failed (test expectation wrong?)",
        st.code()
    );
}

#[test]
fn alu() {
    check("alu", include_str!("asm/alu.S"));
}
#[test]
fn muldiv() {
    check("muldiv", include_str!("asm/muldiv.S"));
}
#[test]
fn mem_and_branches() {
    check("mem", include_str!("asm/mem.S"));
}
#[test]
fn atomics() {
    check("amo", include_str!("asm/amo.S"));
}
#[test]
fn bitmanip() {
    check("bitmanip", include_str!("asm/bitmanip.S"));
}
#[test]
fn compressed() {
    check("compressed", include_str!("asm/compressed.S"));
}
#[test]
fn fp() {
    check("fp", include_str!("asm/fp.S"));
}
