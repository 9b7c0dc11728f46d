//! ISA-independent dynamic binary translator: a typed IR, an optimiser, an IR interpreter,
//! an x86-64 backend with register allocation, a code buffer that is never writable and
//! executable at once, and a translation-block cache with chaining and invalidation.
//!
//! A guest front end implements [`exec::Frontend`] (decode + lowering to [`ir`]); [`exec::Exec`]
//! does the rest.

pub mod codebuf;
pub mod codegen;
pub mod env;
pub mod eval;
pub mod exec;
mod facts;
pub mod forkwarm;
pub mod fptrap;
pub mod hostmem;
pub mod interp;
pub mod inthash;
pub mod ir;
mod loadcse;
pub mod native;
pub mod opt;
pub mod physcode;
mod sigchain;
pub mod smc;
pub mod x86;

pub use exec::{
    Backend, CodeLoc, Exec, ExecConfig, ExitRequest, Frontend, RunExit, Stats, SystemCode,
};
