//! Tandem's GDB remote stub, the parts both machines share: the RV64GC register set as
//! GDB sees it (`arch`) and the connection (`conn`). The targets themselves, which know
//! how their guest threads run and stop, live with the machines: `vmm::riscv::gdb` (one
//! GDB thread per hart of the `virt` machine) and `linux_user::gdb` (a user-mode process).
//!
//! The protocol is gdbstub's; see <https://sourceware.org/gdb/current/onlinedocs/gdb.html/Remote-Protocol.html>.

pub mod arch;
pub mod conn;

pub use arch::{Regs, Rv64System, Rv64User};
pub use conn::{Addr, Conn, Listener, Ready};
pub use gdbstub;

#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    #[error("cannot listen for gdb on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot accept gdb's connection: {0}")]
    Accept(#[source] std::io::Error),
}
