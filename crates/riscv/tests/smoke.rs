mod common;
use common::*;
use riscv::Backend;

#[test]
fn hello_and_loop() {
    let src = r#"
    .globl _start
_start:
    li t0, 0
    li t1, 1000
1:  addi t0, t0, 3
    addi t1, t1, -1
    bnez t1, 1b
    li a7, 64
    li a0, 1
    la a1, msg
    li a2, 6
    ecall
    mv a0, t0
    li a7, 93
    ecall
    .data
msg: .ascii "hello\n"
"#;
    let d = scratch("smoke");
    let (_, img) = build(&d, "hello", src);
    let o = run(&img, Backend::Interp);
    assert_eq!(o.stdout, b"hello\n");
    assert_eq!(o.code, 3000);
}
