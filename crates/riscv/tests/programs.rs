//! Real compiled code: a freestanding C program (sorting, CRC, recursion, jump tables,
//! function pointers, double/float math) built with riscv64-linux-gnu-gcc -O2. Output must
//! match qemu-riscv64-static on both backends.

mod common;
use common::*;
use riscv::Backend;
use std::time::Instant;

#[test]
fn c_program_matches_qemu() {
    let d = scratch("cprog");
    let (elf, img) = build(&d, "programs", include_str!("c/programs.c"));
    let want = qemu(&elf);
    assert!(
        String::from_utf8_lossy(&want).contains("sorted=0000000000000001"),
        "qemu output: {}",
        String::from_utf8_lossy(&want)
    );
    for b in [Backend::Interp, Backend::Native] {
        let t = Instant::now();
        let o = run(&img, b);
        // Informational only (tests never assert on timing).
        eprintln!("{b:?}: {:?}, {:?}", t.elapsed(), o.engine_stats);
        assert_eq!(o.code, 0);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&want),
            "{b:?}"
        );
    }
}
