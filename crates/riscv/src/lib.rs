//! RV64GC (+Zba/Zbb/Zbs) guest front end for the `dbt` translator: hart state, declarative
//! decode tables, translation to IR, CSRs and FP helpers.

/// Translate functions (the decode tables' targets) defined by a closure over the context
/// and the decoded operands.
macro_rules! fns {
    ($($name:ident => $body:expr;)*) => {
        $(pub fn $name(c: &mut $crate::ctx::Ctx, a: &$crate::ctx::Args) -> bool {
            #[allow(clippy::redundant_closure_call)]
            ($body)(c, a)
        })*
    };
}

pub mod cpu;
pub mod csr;
pub mod ctx;
pub mod debug;
pub mod decode;
pub mod engine;
pub mod fpmode;
pub mod fpu;
pub mod frontend;
pub mod hostfp;
pub mod softfloat;
pub mod system;
pub mod trans_fp;
pub mod trans_int;

pub use cpu::Cpu;
pub use dbt::{Backend, ExitRequest, Stats};
pub use engine::{fork_lock, request_exit, Engine, EngineConfig, EngineError, Exit};
