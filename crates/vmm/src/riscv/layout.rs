//! Where things go in guest physical memory at boot (the device map is QEMU `virt`'s, see
//! `devices::riscv`).

/// RAM starts here.
pub const RAM_BASE: u64 = 0x8000_0000;
/// Smallest RAM the machine accepts (a kernel, its initrd and the device tree must fit).
pub const MIN_MEMORY: u64 = 16 << 20;
/// Largest RAM: the physical address space up to 2^39 leaves room for it above RAM_BASE.
pub const MAX_MEMORY: u64 = 256 << 30;
/// Firmware (`--bios`) is loaded at the start of RAM; the kernel 2 MiB-aligned after it.
pub const KERNEL_ALIGN: u64 = 2 << 20;
/// Room kept for the device tree and the fw_dynamic info at the top of RAM.
pub const FDT_MAX: u64 = 64 << 10;

/// The `fw_dynamic` handoff OpenSBI reads from `a2`: where the next stage is and in which
/// mode it runs.
pub const FW_DYNAMIC_MAGIC: u64 = 0x4942_534f;
pub const FW_DYNAMIC_VERSION: u64 = 2;
/// Next stage in S-mode.
pub const FW_DYNAMIC_NEXT_MODE_S: u64 = 1;
