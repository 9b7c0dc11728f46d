//! Machines: guest memory, a bus of devices and an accelerator put together, vCPU
//! threads, and the way a VM ends.

pub mod config;
mod control;
mod events;
mod exit;
mod host;
pub mod io_config;
pub mod riscv;
mod signals;
mod stdio;
pub mod virtio;
pub mod x86;

pub use config::{parse_size, IrqchipMode, SerialConfig, VmConfig};
pub use control::VmControl;
pub use exit::ExitReason;
pub use io_config::{ConsoleKind, DiskConfig, IoConfig, NetConfig, VsockConfig};
pub use x86::{MachineError, VcpuStats, X86Machine};
