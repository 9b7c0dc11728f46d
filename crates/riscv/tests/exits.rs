//! Exits to user mode: ecall/ebreak/illegal instructions, precise memory faults (both the
//! range check and host SIGSEGV paths), exit requests, and self-modifying code.

mod common;
use common::*;
use riscv::{Backend, Exit};

const EXIT: &str = "    li a7, 93\n    ecall\n";
/// Ends the block (a conditional branch to the next instruction), so register values set
/// before it are not constants to the code after it.
const OPAQUE: &str = "    bnez sp, 9f\n9:\n";

fn build_prog(name: &str, body: &str) -> Vec<u8> {
    let src = format!("    .text\n    .globl _start\n_start:\n{body}\n");
    build(&scratch(name), name, &src).1
}

#[test]
fn ebreak_and_illegal() {
    let img = build_prog("ebrk", &format!("    la s1, 1f\n    li a0, 7\n1:  c.ebreak\n    la s2, 2f\n2:  .word 0xffffffff\n    li a0, 3\n{EXIT}"));
    for b in BACKENDS {
        let mut seen = Vec::new();
        let o = run_with(&img, b, |cpu, e| {
            seen.push(e);
            match e {
                Exit::Ebreak => {
                    assert_eq!(cpu.pc, cpu.x[9]);
                    cpu.pc += 2;
                }
                Exit::IllegalInstruction { insn } => {
                    assert_eq!(insn, 0xffffffff, "{b:?} at {:#x}", cpu.pc);
                    assert_eq!(cpu.pc, cpu.x[18]);
                    cpu.pc += 4;
                }
                _ => return None,
            }
            Some(())
        });
        assert_eq!(o.code, 3);
        assert_eq!(seen.len(), 2, "{b:?}");
    }
}

#[test]
fn illegal_compressed_and_csr() {
    // c.addi4spn with a zero immediate (0x0000) is reserved; an unknown CSR is illegal.
    let img = build_prog(
        "ill",
        &format!(
            "    la s1, 1f\n1:  .half 0\n    la s2, 2f\n2:  csrr a0, 0x7c0\n    li a0, 4\n{EXIT}"
        ),
    );
    for b in BACKENDS {
        let mut n = 0;
        let o = run_with(&img, b, |cpu, e| {
            let Exit::IllegalInstruction { insn } = e else {
                return None;
            };
            n += 1;
            if n == 1 {
                assert_eq!((insn, cpu.pc), (0, cpu.x[9]));
                cpu.pc += 2;
            } else {
                assert_eq!(cpu.pc, cpu.x[18]);
                assert_eq!(insn & 0x7f, 0x73);
                cpu.pc += 4;
            }
            Some(())
        });
        assert_eq!((o.code, n), (4, 2));
    }
}

/// A fault in the middle of a block reports the faulting instruction's pc, with every
/// earlier instruction's effects visible and none of the later ones.
fn precise(addr: u64, write: bool, protect: bool) {
    precise_at(addr, 0, write, protect)
}

/// As [`precise`], for an access at `base + disp`.
fn precise_at(base: u64, disp: i32, write: bool, protect: bool) {
    let addr = base.wrapping_add(disp as i64 as u64);
    let op = if write {
        format!("sd a2, {disp}(t0)")
    } else {
        format!("ld a3, {disp}(t0)")
    };
    let body = format!(
        "    li a0, 1\n    li a1, 2\n    la s1, 1f\n    li t0, {base}\n{OPAQUE}    addi a2, a0, 5\n1:  {op}\n    li a0, 99\n    li a1, 98\n{EXIT}"
    );
    let name = format!("precise{}{}-{base:x}{disp:+}", write as u8, protect as u8);
    let img = build_prog(&name, &body);
    for b in BACKENDS {
        let prep = |sp: &Space| {
            if protect {
                // SAFETY: a page of the test's own mapping.
                unsafe {
                    libc::mprotect(
                        (sp.base as u64 + addr) as *mut libc::c_void,
                        4096,
                        libc::PROT_READ,
                    )
                };
            }
        };
        let mut hit = false;
        let o = run_full(&img, b, prep, |cpu, e| {
            assert_eq!(
                e,
                Exit::MemoryFault {
                    addr,
                    write,
                    exec: false
                },
                "{b:?}"
            );
            assert_eq!(cpu.pc, cpu.x[9], "{b:?}: fault pc");
            assert_eq!(
                (cpu.x[10], cpu.x[11], cpu.x[12]),
                (1, 2, 6),
                "{b:?}: state at fault"
            );
            hit = true;
            cpu.pc += 4;
            Some(())
        });
        assert!(hit);
        assert_eq!(o.code, 99);
    }
}

#[test]
fn precise_fault_out_of_range() {
    precise(0x4000000, false, false);
    precise(0x4000000, true, false);
    // Far outside the guest space (and near the top of the 64-bit range).
    precise(0xffff_ffff_ffff_fff0, true, false);
}

/// An access whose base register is a valid address but whose displacement takes it just
/// outside guest memory (above the end, or below 0 and so wrapping to the top of the 64-bit
/// range) faults at exactly that address: the native backend checks only the base and lets
/// the host's guard pages around guest memory catch these.
#[test]
fn precise_fault_beside_guest_memory() {
    for write in [false, true] {
        precise_at(MEM - 8, 16, write, false);
        precise_at(MEM - 16, 2047, write, false);
        precise_at(8, -16, write, false);
        precise_at(0, -2048, write, false);
    }
}

/// The converse: a base register outside guest memory with a displacement that brings the
/// address back inside is a valid access (the native backend's failed base check retries
/// with the whole address).
#[test]
fn base_outside_guest_memory_address_inside() {
    let top = MEM + 16;
    let body = format!(
        "    li t0, {top}\n    li t1, -16\n    li t2, {}\n{OPAQUE}    li a2, 77\n    sd a2, -24(t0)\n    li a3, 5\n    sd a3, 48(t1)\n    ld a0, 0(t2)\n    ld a1, 32(zero)\n    add a0, a0, a1\n    ld a1, -24(t0)\n    add a0, a0, a1\n    ld a1, 48(t1)\n    add a0, a0, a1\n{EXIT}",
        MEM - 8
    );
    let img = build_prog("base-outside", &body);
    for b in BACKENDS {
        let o = run(&img, b);
        assert_eq!(o.code, 77 + 5 + 77 + 5, "{b:?}");
    }
}

/// A loop the front end unrolls (its body copied several times in one block) walks a pointer
/// off the end of guest memory. Only the first copy checks the pointer (the others rely on
/// the guard pages), and the fault may come in any copy: each must stop at the load with the
/// state of that iteration.
#[test]
fn unrolled_loop_faults_precisely() {
    for n in 197..=204u64 {
        let start = MEM - 8 * n;
        let body = format!(
            "    li a0, {start}\n    li a2, 0\n    li a3, 0\n    li a4, -1\n    la s1, 1f\n    la s2, 2f\n{OPAQUE}1:  ld a1, 0(a0)\n    add a2, a2, a3\n    addi a0, a0, 8\n    addi a3, a3, 1\n    bne a3, a4, 1b\n2:  li a0, 99\n{EXIT}"
        );
        let img = build_prog(&format!("unrolled-fault-{n}"), &body);
        for b in BACKENDS {
            let mut hit = false;
            let o = run_with(&img, b, |cpu, e| {
                assert_eq!(
                    e,
                    Exit::MemoryFault {
                        addr: MEM,
                        write: false,
                        exec: false
                    },
                    "{b:?} n={n}"
                );
                assert_eq!(cpu.pc, cpu.x[9], "{b:?} n={n}: fault pc");
                assert_eq!(
                    (cpu.x[10], cpu.x[12], cpu.x[13]),
                    (MEM, n * (n - 1) / 2, n),
                    "{b:?} n={n}: state at fault"
                );
                hit = true;
                cpu.pc = cpu.x[18];
                Some(())
            });
            assert!(hit, "{b:?} n={n}");
            assert_eq!(o.code, 99);
        }
    }
}

/// Unrolled loops leave from whichever copy of the body the loop ends in: trip counts
/// 1..=9 over an array, summed, against the sum computed here.
#[test]
fn unrolled_loop_exits_from_every_copy() {
    for n in 1..=9u64 {
        // Fill words 1..=n, then sum them back with a pointer-bumping loop.
        let body = format!(
            "    li a0, 0x800000\n    li a3, {n}\n    li a2, 0\n{OPAQUE}1:  addi a2, a2, 1\n    sd a2, 0(a0)\n    addi a0, a0, 8\n    bne a2, a3, 1b\n    li a0, 0x800000\n    slli a4, a3, 3\n    add a4, a4, a0\n    li a5, 0\n{OPAQUE}3:  ld a1, 0(a0)\n    addi a0, a0, 8\n    add a5, a5, a1\n    bne a0, a4, 3b\n    mv a0, a5\n{EXIT}"
        );
        let img = build_prog(&format!("unrolled-exit-{n}"), &body);
        for b in BACKENDS {
            let o = run(&img, b);
            assert_eq!(o.code as u64, n * (n + 1) / 2, "{b:?} n={n}");
        }
    }
}

#[test]
fn precise_fault_host_sigsegv() {
    precise(0x200000, true, true);
}

#[test]
fn exec_fault() {
    let img = build_prog(
        "execf",
        &format!("    li t0, 0x3000000\n    jalr t0\n{EXIT}"),
    );
    for b in BACKENDS {
        let mut hit = false;
        run_with(&img, b, |cpu, e| {
            assert_eq!(
                e,
                Exit::MemoryFault {
                    addr: 0x3000000,
                    write: false,
                    exec: true
                }
            );
            assert_eq!(cpu.pc, 0x3000000);
            hit = true;
            cpu.pc = cpu.x[1];
            Some(())
        });
        assert!(hit);
    }
}

#[test]
fn self_modifying_code() {
    // 1) Patch a function called before (other block), no fence.i.
    // 2) Patch the very next instruction of the running block.
    let body = format!(
        "    la t0, patch\n    li t1, 0x02a00513\n    jal ra, patch\n    mv s2, a0\n    sw t1, 0(t0)\n    jal ra, patch\n    mv s3, a0\n    la t0, 1f\n    li t1, 0x00700593\n    sw t1, 0(t0)\n1:  .word 0x00100593\n    li t2, 100\n    mul a0, s2, t2\n    add a0, a0, s3\n    mul a0, a0, t2\n    add a0, a0, a1\n{EXIT}\npatch:\n    .word 0x00100513\n    ret\n"
    );
    let img = build_prog("smc", &body);
    for b in BACKENDS {
        let o = run(&img, b);
        assert_eq!(o.code, 10000 + 42 * 100 + 7, "{b:?}"); // s2=1, s3=42, a1=7
        assert!(
            o.engine_stats.smc_faults >= 2,
            "{b:?}: {:?}",
            o.engine_stats
        );
    }
}

#[test]
fn jumps_followed_into_code_that_changes() {
    // The loop's block follows `jal ra, back` (a backward jump, into code on the page
    // below) and, in the next block, `jal ra, fwd` (onto the next page): each block then
    // holds a copy of code on another page that the loop patches (no fence.i). The second
    // round must run the new instructions.
    let body = format!(
        "    j main\n    .balign 4096\n    .skip 4064\nback:\n    .word 0x00100513\n    ret\n    .balign 4096\n    .skip 3968\nmain:\n    li s3, 0\n    li s4, 2\nagain:\n    jal ra, back\n    add s3, s3, a0\n    jal ra, fwd\n    add s3, s3, a0\n    la t3, back\n    li t4, 0x00700513\n    sw t4, 0(t3)\n    la t3, fwd_insn\n    li t4, 0x02a00513\n    sw t4, 0(t3)\n    addi s4, s4, -1\n    bnez s4, again\n    mv a0, s3\n{EXIT}\n    .balign 4096\nfwd:\n    j 1f\n    .word 0\n1:\nfwd_insn:\n    .word 0x00200513\n    ret\n"
    );
    let img = build_prog("smcjump", &body);
    for b in BACKENDS {
        let o = run(&img, b);
        // back() returned 1 then 7, fwd() 2 then 42.
        assert_eq!(o.code, 1 + 2 + 7 + 42, "{b:?}");
    }
}

#[test]
fn exit_request_interrupts() {
    let img = build_prog("loop", "1:  j 1b\n");
    for b in BACKENDS {
        let (_sp, mut e, mut cpu) = engine_for(&img, b);
        let h = e.exit_request();
        let t = std::thread::spawn(move || riscv::request_exit(&h));
        t.join().unwrap();
        assert_eq!(e.run(&mut cpu), Exit::Interrupted);
        assert_eq!(cpu.pc, LOAD);
    }
}

#[test]
fn exit_request_stops_endless_chains() {
    // Endless loops made of chained blocks rather than one self-loop: a forward exit (a taken
    // branch) and a backward one between two blocks, an indirect jump to itself, and calls
    // and returns between two functions. An exit request made while they run must stop
    // each, at the start of one of its blocks.
    let loops = [
        ("cycle", "1:  beqz zero, 2f\n    nop\n2:  beqz zero, 1b\n"),
        ("indirect", "    la t0, 1f\n1:  jr t0\n"),
        ("calls", "1:  jal ra, 2f\n    j 1b\n2:  ret\n"),
    ];
    // A loop that never checks would hang the test: fail it instead (only a broken build
    // can take this long).
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(120));
        eprintln!("exit_request_stops_endless_chains: a loop was never interrupted");
        std::process::abort();
    });
    for (name, body) in loops {
        let img = build_prog(name, body);
        for b in BACKENDS {
            let (_sp, mut e, mut cpu) = engine_for(&img, b);
            let h = e.exit_request();
            // Whenever the request lands (before or while the loop runs) the run stops.
            let t = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                riscv::request_exit(&h)
            });
            assert_eq!(e.run(&mut cpu), Exit::Interrupted, "{name} on {b:?}");
            t.join().unwrap();
            assert!(
                (LOAD..LOAD + img.len() as u64).contains(&cpu.pc),
                "{name} on {b:?}: stopped at {:#x}",
                cpu.pc
            );
            // Forget the watched code pages before the mapping goes (the SMC page table is
            // process-wide and keyed by host address, which a later test may reuse).
            e.invalidate(0, MEM);
        }
    }
}

#[test]
fn interp_backend_selectable() {
    let img = build_prog("sel", &format!("    li a0, 5\n{EXIT}"));
    assert_eq!(run(&img, Backend::Interp).code, 5);
    assert_eq!(run(&img, Backend::Native).code, 5);
}

#[test]
fn smc_on_a_page_shared_with_hot_data() {
    // A loop stores to a counter that lives in the same page as the code. After a few SMC
    // faults the page is handled by self-checking blocks instead of write protection; a
    // later real code change must still be seen.
    let body = format!(
        "    la t0, counter\n    li t1, 200\n1:  ld t2, 0(t0)\n    addi t2, t2, 1\n    sd t2, 0(t0)\n    addi t1, t1, -1\n    bnez t1, 1b\n    jal ra, patch\n    mv s2, a0\n    la t3, patch\n    li t4, 0x02a00513\n    sw t4, 0(t3)\n    jal ra, patch\n    li t5, 10000\n    mul a0, a0, t5\n    li t5, 1000\n    mul s2, s2, t5\n    add a0, a0, s2\n    add a0, a0, t2\n{EXIT}\npatch:\n    .word 0x00100513\n    ret\n    .balign 8\ncounter:\n    .dword 0\n"
    );
    let img = build_prog("smchot", &body);
    for b in BACKENDS {
        let o = run(&img, b);
        // patch() returned 1 before and 42 after the code change; the counter reached 200.
        assert_eq!(o.code, 420000 + 1000 + 200, "{b:?}: exit code");
        assert!(
            (8..=12).contains(&o.engine_stats.smc_faults),
            "{b:?}: {:?}",
            o.engine_stats
        );
    }
}

#[test]
fn code_buffer_flush_when_full() {
    // 3000 distinct blocks, run three times, with a 64 KiB code buffer: the native backend
    // must flush and retranslate several times and still compute the right sum. (Taken
    // branches end blocks; plain jumps would be followed.)
    let mut body = String::from("    li s2, 3\n    li a0, 0\n2:\n");
    for i in 0..3000 {
        body.push_str(&format!(
            "    addi a0, a0, {}\n    beqz zero, 1f\n1:\n",
            i % 7
        ));
    }
    body.push_str(&format!("    addi s2, s2, -1\n    bnez s2, 2b\n{EXIT}"));
    let img = build_prog("flush", &body);
    let want: i64 = 3 * (0..3000).map(|i| i % 7).sum::<i64>();
    for b in BACKENDS {
        let sp = Space::new(&img);
        let mut cfg = riscv::EngineConfig::new(sp.base, MEM);
        cfg.backend = b;
        cfg.code_size = 64 << 10;
        let mut e = riscv::Engine::new(cfg).unwrap();
        let mut cpu = riscv::Cpu::new();
        cpu.pc = LOAD;
        assert_eq!(e.run(&mut cpu), Exit::Ecall);
        assert_eq!(cpu.x[10] as i64, want, "{b:?}");
        if b == Backend::Native {
            assert!(e.stats().invalidated_blocks > 3000, "{:?}", e.stats());
        }
        e.invalidate(0, MEM);
    }
}

#[test]
fn atomics_across_host_threads() {
    // Two guest threads (two engines on two host threads, one address space) increment one
    // counter 20000 times each, half with amoadd and half with an LR/SC loop.
    let body = format!(
        "    la t0, counter\n    li t1, 10000\n1:  li t2, 1\n    amoadd.d zero, t2, (t0)\n2:  lr.d t3, (t0)\n    addi t3, t3, 1\n    sc.d t4, t3, (t0)\n    bnez t4, 2b\n    addi t1, t1, -1\n    bnez t1, 1b\n{EXIT}\n    .data\n    .balign 8\ncounter: .dword 0\n"
    );
    let d = scratch("mt");
    let (elf, img) = build(
        &d,
        "mt",
        &format!("    .text\n    .globl _start\n_start:\n{body}"),
    );
    let _ = elf;
    for b in BACKENDS {
        let sp = Space::new(&img);
        let base = sp.base;
        let threads: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut cfg = riscv::EngineConfig::new(base, MEM);
                    cfg.backend = b;
                    let mut e = riscv::Engine::new(cfg).unwrap();
                    let mut cpu = riscv::Cpu::new();
                    cpu.pc = LOAD;
                    let r = e.run(&mut cpu);
                    (r, cpu.x[5])
                })
            })
            .collect();
        let mut counter_addr = 0;
        for t in threads {
            let (r, t0) = t.join().unwrap();
            assert_eq!(r, Exit::Ecall, "{b:?}");
            counter_addr = t0;
        }
        let v = u64::from_le_bytes(sp.read(counter_addr, 8).try_into().unwrap());
        assert_eq!(v, 40000, "{b:?}");
        riscv::Engine::new(riscv::EngineConfig::new(base, MEM))
            .unwrap()
            .invalidate(0, MEM);
    }
}

#[test]
fn exit_request_stops_a_running_chained_loop() {
    // The guest raises a flag in memory and then spins forever in chained blocks; the host
    // waits for the flag (no timing involved), requests an exit and expects `Interrupted`.
    let body = "    la t0, flag\n    li t1, 1\n    sd t1, 0(t0)\n1:  addi t2, t2, 1\n    j 2f\n2:  j 1b\n    .data\n    .balign 8\nflag: .dword 0\n";
    let d = scratch("spin");
    let (_, img) = build(
        &d,
        "spin",
        &format!("    .text\n    .globl _start\n_start:\n{body}"),
    );
    for b in BACKENDS {
        let sp = Space::new(&img);
        let base = sp.base;
        let mut cfg = riscv::EngineConfig::new(base, MEM);
        cfg.backend = b;
        let mut e = riscv::Engine::new(cfg).unwrap();
        let h = e.exit_request();
        let t = std::thread::spawn(move || {
            let mut cpu = riscv::Cpu::new();
            cpu.pc = LOAD;
            let r = e.run(&mut cpu);
            e.invalidate(0, MEM);
            (r, cpu.x[7])
        });
        let flag_addr = LOAD + 0x1000; // .data is page-aligned right after .text
        while sp.read(flag_addr, 8) != 1u64.to_le_bytes() && !t.is_finished() {
            std::hint::spin_loop();
        }
        riscv::request_exit(&h);
        let (r, _) = t.join().unwrap();
        assert_eq!(r, Exit::Interrupted, "{b:?}");
    }
}

#[test]
fn exec_check_refuses_non_executable_pages() {
    // Code on the first page jumps into a second page the check declares non-executable.
    let body = format!(
        "    li a0, 5\n    la t0, far\n    jr t0\n    .balign 4096\nfar:\n    li a0, 9\n{EXIT}"
    );
    let img = build_prog("nx", &body);
    for b in BACKENDS {
        let sp = Space::new(&img);
        let mut cfg = riscv::EngineConfig::new(sp.base, MEM);
        cfg.backend = b;
        cfg.exec_check = Some(std::sync::Arc::new(|page: u64| page == LOAD));
        let mut e = riscv::Engine::new(cfg).unwrap();
        let mut cpu = riscv::Cpu::new();
        cpu.pc = LOAD;
        let far = LOAD + 0x1000;
        assert_eq!(
            e.run(&mut cpu),
            Exit::MemoryFault {
                addr: far,
                write: false,
                exec: true
            },
            "{b:?}"
        );
        assert_eq!((cpu.pc, cpu.x[10]), (far, 5), "{b:?}");
        e.invalidate(0, MEM);
    }
}

#[test]
fn invalid_frm_is_checked_after_csr_writes() {
    // Same block: a dyn-rm add with frm valid, then frm := 5 (reserved), then another dyn-rm
    // add, which must be an illegal instruction.
    let body = format!("    fsrmi 0\n    fadd.d fa0, fa1, fa2\n    fsrmi 5\n    la s1, 1f\n1:  fadd.d fa0, fa1, fa2\n    li a0, 3\n{EXIT}");
    let img = build_prog("frm", &body);
    for b in BACKENDS {
        let mut n = 0;
        let o = run_with(&img, b, |cpu, e| {
            assert!(matches!(e, Exit::IllegalInstruction { .. }), "{b:?}: {e:?}");
            assert_eq!(cpu.pc, cpu.x[9]);
            n += 1;
            cpu.fcsr = 0;
            cpu.pc += 4;
            Some(())
        });
        assert_eq!((o.code, n), (3, 1), "{b:?}");
    }
}

#[test]
fn odd_invalidations_are_harmless() {
    let img = build_prog("inv", &format!("    li a0, 1\n{EXIT}"));
    for b in BACKENDS {
        let (_sp, mut e, mut cpu) = engine_for(&img, b);
        assert_eq!(e.run(&mut cpu), Exit::Ecall);
        e.invalidate(LOAD, 0);
        e.invalidate(u64::MAX - 10, 100);
        e.invalidate(MEM * 4, 1 << 40);
        e.invalidate(0, u64::MAX);
        cpu.pc = LOAD;
        assert_eq!(e.run(&mut cpu), Exit::Ecall);
        e.invalidate(0, MEM);
    }
}
