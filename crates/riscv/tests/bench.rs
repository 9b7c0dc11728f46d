//! Throughput benchmark (not part of the normal test run): `cargo test --release -p riscv
//! --test bench -- --ignored --nocapture`. Runs the C test program with a bigger workload on
//! both backends and under qemu-riscv64-static and prints wall times.

mod common;
use common::*;
use riscv::Backend;
use std::time::Instant;

#[test]
#[ignore = "benchmark; run explicitly with --ignored"]
fn throughput() {
    let d = scratch("bench");
    let src = format!(
        "#define SORTN 200000\n#define STEPS 20000000\n#define NBODY 20000\n#define FIB 30\n{}",
        include_str!("c/programs.c")
    );
    let (elf, img) = build(&d, "bench", &src);
    let t = Instant::now();
    let want = qemu(&elf);
    eprintln!("qemu-riscv64-static: {:?}", t.elapsed());
    // TANDEM_BENCH_BACKEND=native|interp restricts the run (e.g. for profiling).
    let only = std::env::var("TANDEM_BENCH_BACKEND").unwrap_or_default();
    for b in [Backend::Native, Backend::Interp] {
        if !only.is_empty() && !format!("{b:?}").eq_ignore_ascii_case(&only) {
            continue;
        }
        let t = Instant::now();
        let o = run(&img, b);
        eprintln!(
            "{b:?}: {:?} ({} blocks translated, {} guest insns)",
            t.elapsed(),
            o.engine_stats.blocks_translated,
            o.engine_stats.guest_insns_translated
        );
        assert_eq!(o.stdout, want);
    }
}
