//! Shared harness for the RISC-V tests: assembles guest programs with Debian's cross
//! toolchain, runs them on the engine with a tiny syscall layer (write, exit), and runs
//! them under qemu-riscv64-static for differential checks.
#![allow(dead_code)]

use riscv::{Backend, Cpu, Engine, EngineConfig, Exit};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const LOAD: u64 = 0x10000;
pub const MEM: u64 = 0x100_0000;

const LINKER: &str = "ENTRY(_start)\nSECTIONS {\n . = 0x10000;\n .text : { *(.text.start) *(.text*) }\n . = ALIGN(4096);\n .data : { *(.rodata*) *(.srodata*) *(.data*) *(.sdata*) *(.bss*) *(.sbss*) }\n /DISCARD/ : { *(.note*) *(.comment) *(.riscv.attributes) *(.eh_frame*) }\n}\n";

fn tool(name: &str) -> String {
    format!("riscv64-linux-gnu-{name}")
}

/// A fresh directory under the target dir for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    let d =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Assembles (or compiles) `src` into a static ELF; returns (elf path, flat image at LOAD).
pub fn build(dir: &Path, name: &str, src: &str) -> (PathBuf, Vec<u8>) {
    let ext = if src.contains("#include") || src.contains("int main") {
        "c"
    } else {
        "S"
    };
    let s = dir.join(format!("{name}.{ext}"));
    let ld = dir.join("link.ld");
    let elf = dir.join(format!("{name}.elf"));
    let bin = dir.join(format!("{name}.bin"));
    std::fs::write(&s, src).unwrap();
    std::fs::write(&ld, LINKER).unwrap();
    let out = Command::new(tool("gcc"))
        .args(["-nostdlib", "-static", "-march=rv64gc_zba_zbb_zbs", "-mabi=lp64d", "-O2", "-ffreestanding", "-fno-math-errno"])
        .arg("-T")
        .arg(&ld)
        .arg("-o")
        .arg(&elf)
        .arg(&s)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run riscv64-linux-gnu-gcc ({e}); install the Debian package gcc-riscv64-linux-gnu")
        });
    assert!(
        out.status.success(),
        "assembling {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(tool("objcopy"))
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&bin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "objcopy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (elf, std::fs::read(&bin).unwrap())
}

/// Guest address space for tests: MEM bytes of anonymous memory, guarded as the native
/// backend needs.
pub struct Space {
    pub base: usize,
    _reservation: dbt::hostmem::Reservation,
}

impl Space {
    pub fn new(image: &[u8]) -> Space {
        let r = dbt::hostmem::Reservation::new(MEM, libc::PROT_READ | libc::PROT_WRITE).unwrap();
        let base = r.base();
        // SAFETY: the image fits (asserted) inside the reservation's writable part.
        unsafe {
            assert!(LOAD as usize + image.len() < MEM as usize);
            std::ptr::copy_nonoverlapping(
                image.as_ptr(),
                (base + LOAD as usize) as *mut u8,
                image.len(),
            );
        }
        Space {
            base,
            _reservation: r,
        }
    }
    pub fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        assert!(addr + len as u64 <= MEM);
        // SAFETY: within our mapping.
        unsafe {
            std::slice::from_raw_parts((self.base + addr as usize) as *const u8, len).to_vec()
        }
    }
    pub fn write(&self, addr: u64, data: &[u8]) {
        assert!(addr + data.len() as u64 <= MEM);
        // SAFETY: within our mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                (self.base + addr as usize) as *mut u8,
                data.len(),
            )
        }
    }
}

/// A fresh engine on `backend` over a fresh guest space holding `image`, and a CPU whose pc
/// is at the image's start (keep the `Space` alive while the engine runs).
#[allow(dead_code)] // not every test binary uses it
pub fn engine_for(image: &[u8], backend: Backend) -> (Space, Engine, Cpu) {
    let sp = Space::new(image);
    let mut cfg = EngineConfig::new(sp.base, MEM);
    cfg.backend = backend;
    let e = Engine::new(cfg).expect("engine");
    let mut cpu = Cpu::new();
    cpu.pc = LOAD;
    (sp, e, cpu)
}

pub struct Outcome {
    pub stdout: Vec<u8>,
    pub code: i64,
    pub cpu: Cpu,
    pub engine_stats: riscv::Stats,
}

/// Runs a flat image on the engine; supports write(64) and exit(93)/exit_group(94).
pub fn run(image: &[u8], backend: Backend) -> Outcome {
    run_with(image, backend, |_, _| None)
}

/// Like `run`, with a hook called on non-syscall exits (return Some(()) to continue).
pub fn run_with(
    image: &[u8],
    backend: Backend,
    hook: impl FnMut(&mut Cpu, Exit) -> Option<()>,
) -> Outcome {
    run_full(image, backend, |_| {}, hook)
}

/// Like `run_with`, with a chance to change the address space (e.g. protections) first.
pub fn run_full(
    image: &[u8],
    backend: Backend,
    prepare: impl FnOnce(&Space),
    mut hook: impl FnMut(&mut Cpu, Exit) -> Option<()>,
) -> Outcome {
    let sp = Space::new(image);
    prepare(&sp);
    let mut cfg = EngineConfig::new(sp.base, MEM);
    cfg.backend = backend;
    let mut e = Engine::new(cfg).expect("engine");
    let mut cpu = Cpu::new();
    cpu.pc = LOAD;
    cpu.x[2] = MEM - 0x1000;
    let mut stdout = Vec::new();
    let mut steps = 0u64;
    loop {
        steps += 1;
        assert!(steps < 10_000_000, "too many exits");
        match e.run(&mut cpu) {
            Exit::Ecall => {
                let (a0, a1, a2) = (cpu.x[10], cpu.x[11], cpu.x[12]);
                match cpu.x[17] {
                    64 => {
                        stdout.extend(sp.read(a1, a2 as usize));
                        cpu.x[10] = a2;
                    }
                    93 | 94 => {
                        // The address space goes away: drop translations and page watches.
                        e.invalidate(0, MEM);
                        return Outcome {
                            stdout,
                            code: a0 as i64,
                            cpu,
                            engine_stats: e.stats(),
                        };
                    }
                    n => panic!("unexpected syscall {n} at {:#x}", cpu.pc),
                }
                cpu.pc += 4;
            }
            other => {
                if hook(&mut cpu, other).is_none() {
                    panic!("unexpected exit {other:?} at pc {:#x}", cpu.pc);
                }
            }
        }
    }
}

/// Runs an ELF under qemu-riscv64-static and returns its stdout.
pub fn qemu(elf: &Path) -> Vec<u8> {
    let out = Command::new("qemu-riscv64-static")
        .arg(elf)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run qemu-riscv64-static ({e}); install the Debian package qemu-user-static"
            )
        });
    out.stdout
}

pub const BACKENDS: [Backend; 2] = [Backend::Interp, Backend::Native];
