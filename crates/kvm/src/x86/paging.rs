//! Identity page tables for the 64-bit entry: the boot protocol requires the kernel,
//! boot_params, command line and initrd to be identity-mapped, so we map the whole low
//! 4 GiB with 2 MiB pages.

use vm_core::memory::Bytes;
use vm_core::GuestMemory;
use vm_memory::GuestAddress;

use super::layout::{PDPT_START, PD_COUNT, PD_START, PML4_START};

const PRESENT_WRITABLE: u64 = 0x3;
const HUGE_PAGE: u64 = 0x80;

pub fn write_identity_map(memory: &GuestMemory) -> Result<(), vm_memory::GuestMemoryError> {
    memory.write_obj(PDPT_START | PRESENT_WRITABLE, GuestAddress(PML4_START))?;
    for pd in 0..PD_COUNT {
        let pd_base = PD_START + pd * 0x1000;
        memory.write_obj(
            pd_base | PRESENT_WRITABLE,
            GuestAddress(PDPT_START + pd * 8),
        )?;
        for entry in 0..512u64 {
            let phys = ((pd << 9) + entry) << 21;
            memory.write_obj(
                phys | PRESENT_WRITABLE | HUGE_PAGE,
                GuestAddress(pd_base + entry * 8),
            )?;
        }
    }
    Ok(())
}
