//! fork() of a process running the translator (its own test binary: no other test threads).

mod common;
use common::*;
use riscv::Exit;

const EXIT: &str = "    li a7, 93\n    ecall\n";

fn build_prog(name: &str, body: &str) -> Vec<u8> {
    let src = format!("    .text\n    .globl _start\n_start:\n{body}\n");
    build(&scratch(name), name, &src).1
}

#[test]
fn fork_gives_the_child_its_own_code_buffer() {
    // Run until the first ecall, fork the host process, and let parent and child translate
    // different new code afterwards: with a shared code buffer they would overwrite each
    // other's blocks.
    let body = format!(
        "    li a7, 1000\n    ecall\n    beqz a0, 1f\n    li t0, 0\n    li t1, 3000\n2:  addi t0, t0, 2\n    addi t1, t1, -1\n    bnez t1, 2b\n    mv a0, t0\n{EXIT}1:  li t0, 0\n    li t1, 3000\n3:  addi t0, t0, 5\n    addi t1, t1, -1\n    bnez t1, 3b\n    mv a0, t0\n{EXIT}"
    );
    let img = build_prog("fork", &body);
    for b in BACKENDS {
        let (_sp, mut e, mut cpu) = engine_for(&img, b);
        assert_eq!(e.run(&mut cpu), Exit::Ecall);
        let guard = riscv::fork_lock();
        // SAFETY: the child only runs the engine and then _exits.
        let pid = unsafe { libc::fork() };
        drop(guard);
        assert!(pid >= 0);
        cpu.x[10] = pid as u64;
        cpu.pc += 4;
        let r = e.run(&mut cpu);
        if pid == 0 {
            let ok = r == Exit::Ecall && cpu.x[10] == 15000;
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        assert_eq!((r, cpu.x[10]), (Exit::Ecall, 6000), "{b:?} parent");
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{b:?} child status {status:#x}"
        );
        e.invalidate(0, MEM);
    }
}
