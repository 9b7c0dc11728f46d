//! Register state for the first instruction: 64-bit long mode (Linux 64-bit boot
//! protocol, our test guests) or 32-bit protected mode without paging (PVH).

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use vm_core::memory::Bytes;
use vm_core::GuestMemory;
use vm_memory::GuestAddress;

use super::gdt::{self, boot_gdt, CODE32_SELECTOR, CODE64_SELECTOR, DATA_SELECTOR, TSS_SELECTOR};
use super::layout::{BOOT_STACK_TOP, GDT_START, PML4_START};

const CR0_PE: u64 = 1 << 0;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// RFLAGS bit 1 is reserved and always reads as one.
const RFLAGS_RESERVED: u64 = 1 << 1;

/// How the guest is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryMode {
    /// 64-bit long mode, paging on (identity map), `rsi` = boot_params.
    Long64 { boot_params: u64 },
    /// PVH: 32-bit protected mode, paging off, `ebx` = hvm_start_info.
    Pvh { start_info: u64 },
}

/// Writes the boot GDT into guest memory (shared by both entry modes).
pub fn write_gdt(memory: &GuestMemory) -> Result<(), vm_memory::GuestMemoryError> {
    for (i, entry) in boot_gdt().iter().enumerate() {
        memory.write_obj(*entry, GuestAddress(GDT_START + i as u64 * 8))?;
    }
    Ok(())
}

/// Special registers for `mode`, starting from the vCPU's reset state `sregs`.
pub fn sregs_for(mode: EntryMode, mut sregs: kvm_sregs) -> kvm_sregs {
    let table = boot_gdt();
    let code_selector = match mode {
        EntryMode::Long64 { .. } => CODE64_SELECTOR,
        EntryMode::Pvh { .. } => CODE32_SELECTOR,
    };
    let entry = |sel: u16| table[usize::from(sel / 8)];
    let data = gdt::segment(entry(DATA_SELECTOR), DATA_SELECTOR);
    sregs.cs = gdt::segment(entry(code_selector), code_selector);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = gdt::segment(entry(TSS_SELECTOR), TSS_SELECTOR);
    sregs.gdt.base = GDT_START;
    sregs.gdt.limit = (std::mem::size_of_val(&table) - 1) as u16;
    // No IDT: the kernel installs its own before enabling interrupts.
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    match mode {
        EntryMode::Long64 { .. } => {
            sregs.cr3 = PML4_START;
            sregs.cr4 |= CR4_PAE;
            sregs.cr0 |= CR0_PE | CR0_ET | CR0_PG;
            sregs.efer |= EFER_LME | EFER_LMA;
        }
        EntryMode::Pvh { .. } => {
            sregs.cr0 = (sregs.cr0 | CR0_PE | CR0_ET) & !CR0_PG;
            sregs.cr4 = 0;
            sregs.efer = 0;
        }
    }
    sregs
}

/// General registers: entry point, stack, and the pointer the protocol passes.
pub fn regs_for(mode: EntryMode, entry: u64) -> kvm_regs {
    let mut regs = kvm_regs {
        rflags: RFLAGS_RESERVED,
        rip: entry,
        rsp: BOOT_STACK_TOP,
        rbp: BOOT_STACK_TOP,
        ..Default::default()
    };
    match mode {
        EntryMode::Long64 { boot_params } => regs.rsi = boot_params,
        EntryMode::Pvh { start_info } => regs.rbx = start_info,
    }
    regs
}

/// x87 and SSE control words as after `fninit` and a reset MXCSR.
pub fn fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    }
}
