//! Architectural state of one RV64 hart, laid out for generated code.

use dbt::ir::{GlobalDef, InexactFlag, Ty};
use std::mem::offset_of;

/// One hart. `#[repr(C)]` so generated code addresses fields at fixed offsets.
#[repr(C)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// Integer registers; `x[0]` is always 0.
    pub x: [u64; 32],
    /// FP registers as raw bits; single-precision values are NaN-boxed.
    pub f: [u64; 32],
    pub pc: u64,
    /// `frm << 5 | fflags`.
    pub fcsr: u32,
    pub _pad: u32,
    /// LR/SC reservation: address (`u64::MAX` when none) and the value LR observed.
    pub res_addr: u64,
    pub res_val: u64,
}

impl Cpu {
    pub fn new() -> Cpu {
        Cpu {
            res_addr: u64::MAX,
            ..Cpu::default()
        }
    }
}

pub const PC_OFFSET: u32 = offset_of!(Cpu, pc) as u32;
pub const RES_ADDR: u32 = 32;
pub const RES_VAL: u32 = 33;
/// Global index of f0 (f0..f31 follow the integer registers and the reservation).
pub const F_BASE: u32 = 34;
/// Global index of `fcsr`, read as 64 bits (with `_pad` above it). Translated code reads it
/// (frm checks, FP CSR instructions) and writes it (FP CSR instructions); helpers that accrue
/// flags list it in their `writes`.
pub const FCSR_G: u32 = F_BASE + 32;

/// Where translated code accrues the inexact flag (fflags.NX in `fcsr`).
pub const INEXACT_FLAG: InexactFlag = InexactFlag {
    offset: offset_of!(Cpu, fcsr) as u32,
    mask: crate::softfloat::NX,
};

/// Globals: x0..x31 (x0 is never read or written through its global), the reservation, then
/// f0..f31 (raw bits; FP helpers read and write them in the env), then fcsr (see [`FCSR_G`]).
pub fn globals() -> Vec<GlobalDef> {
    const NAMES: [&str; 32] = [
        "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
        "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
        "t5", "t6",
    ];
    let mut g: Vec<GlobalDef> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| GlobalDef {
            name: n,
            offset: (offset_of!(Cpu, x) + 8 * i) as u32,
            ty: Ty::I64,
        })
        .collect();
    g.push(GlobalDef {
        name: "res_addr",
        offset: offset_of!(Cpu, res_addr) as u32,
        ty: Ty::I64,
    });
    g.push(GlobalDef {
        name: "res_val",
        offset: offset_of!(Cpu, res_val) as u32,
        ty: Ty::I64,
    });
    for i in 0..32 {
        g.push(GlobalDef {
            name: "f",
            offset: (offset_of!(Cpu, f) + 8 * i) as u32,
            ty: Ty::I64,
        });
    }
    g.push(GlobalDef {
        name: "fcsr",
        offset: offset_of!(Cpu, fcsr) as u32,
        ty: Ty::I64,
    });
    g
}
