//! The guest physical address map of the x86 machine.
//!
//! Low memory holds the boot structures; RAM runs from 0 up to the 32-bit MMIO hole, and
//! continues above 4 GiB when the guest has more than fits below the hole.

/// GDT shared by the 64-bit and PVH (32-bit) entry paths.
pub const GDT_START: u64 = 0x1000;
/// Identity-mapped page tables for the 64-bit entry: PML4, one PDPT, four PDs (4 GiB).
pub const PML4_START: u64 = 0x2000;
pub const PDPT_START: u64 = 0x3000;
pub const PD_START: u64 = 0x4000;
/// Number of page directories, each mapping 1 GiB with 2 MiB pages.
pub const PD_COUNT: u64 = 4;
/// Linux `boot_params` ("zero page") for the 64-bit entry.
pub const ZERO_PAGE_START: u64 = 0x8000;
/// PVH `hvm_start_info`, then its module list and memory map.
pub const PVH_INFO_START: u64 = 0x9000;
pub const PVH_MODLIST_START: u64 = 0x9100;
pub const PVH_MEMMAP_START: u64 = 0x9200;
/// Top of the stack the first instruction sees (grows down through 0xa000..0xf000).
pub const BOOT_STACK_TOP: u64 = 0xfff0;
/// Kernel command line, NUL-terminated.
pub const CMDLINE_START: u64 = 0x20000;
pub const CMDLINE_MAX: usize = 0x10000;
/// ACPI tables (RSDP first): in the BIOS area Linux scans for the RSDP.
pub const ACPI_START: u64 = 0xe_0000;
/// The MP table lives in the BIOS area, where Linux scans for it (64 KiB: room for
/// hundreds of processor entries).
pub const MPTABLE_START: u64 = 0xf_0000;
/// End of conventional memory; [EBDA_START, HIMEM_START) is reserved for the BIOS area.
pub const EBDA_START: u64 = 0x9fc00;
/// Where protected-mode kernels are loaded.
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the 32-bit MMIO hole: RAM below, devices above.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// First address above 4 GiB, where RAM beyond the hole continues.
pub const HIGH_RAM_START: u64 = 0x1_0000_0000;
/// Platform MMIO devices (test devices, virtio-mmio) are placed from here.
pub const MMIO_DEVICES_START: u64 = 0xd000_0000;
pub const IOAPIC_START: u64 = 0xfec0_0000;
pub const LAPIC_START: u64 = 0xfee0_0000;

/// Smallest guest this machine boots: enough for the boot structures and a kernel.
pub const MIN_MEMORY: u64 = 16 << 20;

/// Splits `size` bytes of guest RAM around the MMIO hole.
pub fn ram_regions(size: u64) -> Vec<(u64, u64)> {
    if size <= MMIO_HOLE_START {
        vec![(0, size)]
    } else {
        vec![
            (0, MMIO_HOLE_START),
            (HIGH_RAM_START, size - MMIO_HOLE_START),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_ram_around_the_hole() {
        assert_eq!(ram_regions(256 << 20), vec![(0, 256 << 20)]);
        assert_eq!(
            ram_regions(4 << 30),
            vec![(0, 3 << 30), (HIGH_RAM_START, 1 << 30)]
        );
    }
}
