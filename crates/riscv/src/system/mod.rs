//! Full-system RV64GC: the privileged architecture (M, S and U modes, CSRs, traps and
//! interrupts, Sv39/Sv48 translation) on top of the user-level front end, and the run loop
//! of one hart of a machine. Memory goes through the MMU in helpers called from translated
//! code (`helpers`); translated blocks are found by physical address (`dbt::SystemCode`).

pub mod csrs;
pub mod engine;
pub mod hart;
pub mod helpers;
pub mod mmu;
pub mod phys;
pub mod softtlb;
pub mod trans;
pub mod trap;

pub use engine::{HartEvent, SystemConfig, SystemHart};
pub use hart::{Hart, HartShared, Timebase, PRV_M, PRV_S, PRV_U};
pub use phys::{Mmio, PhysMem};
