//! The RISC-V `virt` machine (full-system emulation on the translator).

mod boot;
mod debug;
pub mod fdt;
mod gdb_stub;
pub mod image;
pub mod layout;
mod machine;
mod sbi;

pub use boot::BootError;
pub use machine::{dump_dtb, RiscvConfig, RiscvError, RiscvMachine, ISA, MAX_HARTS};
