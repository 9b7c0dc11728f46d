//! Loading a Linux kernel (bzImage, or ELF vmlinux with or without a PVH note) and
//! everything the boot protocols hand it: command line, initrd, memory map, MP table.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use linux_loader::cmdline::Cmdline;
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use linux_loader::loader::{
    self, BzImage, Elf, KernelLoader, KernelLoaderResult, PvhBootCapability,
};
use vm_core::memory::{Bytes, GuestMemoryApi, GuestMemoryRegion};
use vm_core::GuestMemory;
use vm_memory::{GuestAddress, GuestMemoryError};

use super::layout::*;
use super::regs::EntryMode;
use super::{acpi, mptable, paging, regs};

/// `boot_params.hdr.header`: "HdrS".
const SETUP_HEADER_MAGIC: u32 = 0x5372_6448;
const BOOT_FLAG_MAGIC: u16 = 0xaa55;
/// We are not one of the registered boot loaders.
const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// `xloadflags`: the kernel has a 64-bit entry point at `code32_start + 0x200`.
const XLF_KERNEL_64: u16 = 1;
const STARTUP_64_OFFSET: u64 = 0x200;
const E820_RAM: u32 = 1;
const E820_RESERVED: u32 = 2;
const PVH_START_INFO_MAGIC: u32 = 0x336e_c578;
const PAGE_SIZE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot read kernel {path}: {source}")]
    ReadKernel {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a Linux kernel (neither an ELF vmlinux nor a bzImage)")]
    UnknownKernelFormat { path: PathBuf },
    #[error("cannot load kernel {path}: {source}")]
    LoadKernel {
        path: PathBuf,
        #[source]
        source: loader::Error,
    },
    #[error(
        "kernel {path} has no 64-bit entry point (boot protocol 2.12+ with XLF_KERNEL_64 required)"
    )]
    No64BitEntry { path: PathBuf },
    #[error("cannot read initrd {path}: {source}")]
    ReadInitrd {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("initrd {path} ({size} bytes) does not fit in guest memory above the kernel")]
    InitrdTooLarge { path: PathBuf, size: u64 },
    #[error("invalid kernel command line: {0}")]
    Cmdline(String),
    #[error("cannot write boot structures to guest memory: {0}")]
    Memory(#[from] GuestMemoryError),
    #[error(transparent)]
    MpTable(#[from] mptable::MpTableError),
    #[error(transparent)]
    Acpi(#[from] acpi::AcpiError),
}

/// What to boot.
pub struct BootConfig<'a> {
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    pub cmdline: &'a str,
    pub cpus: u8,
    /// Local APICs and an IOAPIC exist (in-kernel irqchip): announce them in the MP
    /// table and the MADT. Without, the guest finds neither and uses the 8259A PIC.
    pub apic: bool,
}

/// Where and how the boot vCPU starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootEntry {
    pub rip: u64,
    pub mode: EntryMode,
}

enum KernelFormat {
    Elf,
    BzImage,
}

fn detect_format(path: &Path, file: &mut File) -> Result<KernelFormat, BootError> {
    let mut head = [0u8; 0x206];
    let read_err = |source| BootError::ReadKernel {
        path: path.to_owned(),
        source,
    };
    let n = read_up_to(file, &mut head).map_err(read_err)?;
    if n >= 4 && head[..4] == *b"\x7fELF" {
        return Ok(KernelFormat::Elf);
    }
    if n >= 0x206
        && u32::from_le_bytes([head[0x202], head[0x203], head[0x204], head[0x205]])
            == SETUP_HEADER_MAGIC
    {
        return Ok(KernelFormat::BzImage);
    }
    Err(BootError::UnknownKernelFormat {
        path: path.to_owned(),
    })
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The guest's memory map in e820 terms.
fn e820_map(memory: &GuestMemory) -> Vec<(u64, u64, u32)> {
    let mut map = vec![
        (0, EBDA_START, E820_RAM),
        (EBDA_START, HIMEM_START - EBDA_START, E820_RESERVED),
    ];
    for region in memory.iter() {
        let start = region.start_addr().0.max(HIMEM_START);
        let end = region.start_addr().0 + region.len();
        if end > start {
            map.push((start, end - start, E820_RAM));
        }
    }
    map
}

/// The end of the RAM region that starts at 0 (the region the boot structures live in).
fn low_ram_end(memory: &GuestMemory) -> u64 {
    memory.find_region(GuestAddress(0)).map_or(0, |r| r.len())
}

/// Loads the kernel and writes all boot structures. Returns where the boot vCPU starts.
pub fn load(memory: &GuestMemory, config: &BootConfig) -> Result<BootEntry, BootError> {
    let path = config.kernel;
    let mut file = File::open(path).map_err(|source| BootError::ReadKernel {
        path: path.to_owned(),
        source,
    })?;
    let format = detect_format(path, &mut file)?;
    let load_err = |source| BootError::LoadKernel {
        path: path.to_owned(),
        source,
    };
    let loaded: KernelLoaderResult = match format {
        KernelFormat::Elf => Elf::load(memory, None, &mut file, Some(GuestAddress(HIMEM_START))),
        KernelFormat::BzImage => {
            BzImage::load(memory, None, &mut file, Some(GuestAddress(HIMEM_START)))
        }
    }
    .map_err(load_err)?;

    let cmdline = Cmdline::try_from(config.cmdline, CMDLINE_MAX)
        .map_err(|e| BootError::Cmdline(e.to_string()))?;
    loader::load_cmdline(memory, GuestAddress(CMDLINE_START), &cmdline)
        .map_err(|e| BootError::Cmdline(e.to_string()))?;
    let cmdline_len = config.cmdline.len() as u32;

    let initrd_limit = match &loaded.setup_header {
        Some(hdr) if hdr.initrd_addr_max != 0 => {
            low_ram_end(memory).min(u64::from(hdr.initrd_addr_max) + 1)
        }
        _ => low_ram_end(memory).min(MMIO_HOLE_START),
    };
    let initrd = match config.initrd {
        Some(p) => Some(load_initrd(memory, p, loaded.kernel_end, initrd_limit)?),
        None => None,
    };

    regs::write_gdt(memory)?;
    if config.apic {
        mptable::write(memory, MPTABLE_START, config.cpus)?;
    }
    let rsdp = acpi::write(memory, ACPI_START, config.cpus, config.apic)?;
    let e820 = e820_map(memory);

    let entry = match (format, loaded.pvh_boot_cap) {
        (KernelFormat::Elf, PvhBootCapability::PvhEntryPresent(pvh_entry)) => {
            write_pvh_info(memory, &e820, initrd, rsdp)?;
            BootEntry {
                rip: pvh_entry.0,
                mode: EntryMode::Pvh {
                    start_info: PVH_INFO_START,
                },
            }
        }
        (KernelFormat::Elf, _) => {
            let hdr = setup_header {
                boot_flag: BOOT_FLAG_MAGIC,
                header: SETUP_HEADER_MAGIC,
                kernel_alignment: 0x0100_0000,
                ..Default::default()
            };
            write_zero_page(memory, hdr, cmdline_len, initrd, &e820)?;
            paging::write_identity_map(memory)?;
            BootEntry {
                rip: loaded.kernel_load.0,
                mode: EntryMode::Long64 {
                    boot_params: ZERO_PAGE_START,
                },
            }
        }
        (KernelFormat::BzImage, _) => {
            let hdr = loaded.setup_header.unwrap_or_default();
            if hdr.version < 0x020c || hdr.xloadflags & XLF_KERNEL_64 == 0 {
                return Err(BootError::No64BitEntry {
                    path: path.to_owned(),
                });
            }
            write_zero_page(memory, hdr, cmdline_len, initrd, &e820)?;
            paging::write_identity_map(memory)?;
            BootEntry {
                rip: loaded.kernel_load.0 + STARTUP_64_OFFSET,
                mode: EntryMode::Long64 {
                    boot_params: ZERO_PAGE_START,
                },
            }
        }
    };
    Ok(entry)
}

/// Places the initrd at the highest page-aligned address below `limit` and above the
/// kernel, as boot loaders conventionally do. Returns (address, size).
fn load_initrd(
    memory: &GuestMemory,
    path: &Path,
    kernel_end: u64,
    limit: u64,
) -> Result<(u64, u64), BootError> {
    let image = std::fs::read(path).map_err(|source| BootError::ReadInitrd {
        path: path.to_owned(),
        source,
    })?;
    let size = image.len() as u64;
    let too_large = || BootError::InitrdTooLarge {
        path: path.to_owned(),
        size,
    };
    let addr = limit.checked_sub(size).ok_or_else(too_large)? & !(PAGE_SIZE - 1);
    if addr < kernel_end.max(HIMEM_START) {
        return Err(too_large());
    }
    memory.write_slice(&image, GuestAddress(addr))?;
    Ok((addr, size))
}

fn write_zero_page(
    memory: &GuestMemory,
    mut hdr: setup_header,
    cmdline_len: u32,
    initrd: Option<(u64, u64)>,
    e820: &[(u64, u64, u32)],
) -> Result<(), BootError> {
    hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    hdr.cmd_line_ptr = CMDLINE_START as u32;
    hdr.cmdline_size = cmdline_len;
    if let Some((addr, size)) = initrd {
        hdr.ramdisk_image = addr as u32;
        hdr.ramdisk_size = size as u32;
    }
    let mut params = boot_params {
        hdr,
        ..Default::default()
    };
    for (slot, &(addr, size, type_)) in params.e820_table.iter_mut().zip(e820) {
        *slot = boot_e820_entry {
            addr,
            size,
            r#type: type_,
        };
    }
    params.e820_entries = e820.len().min(params.e820_table.len()) as u8;
    memory.write_obj(params, GuestAddress(ZERO_PAGE_START))?;
    Ok(())
}

fn write_pvh_info(
    memory: &GuestMemory,
    e820: &[(u64, u64, u32)],
    initrd: Option<(u64, u64)>,
    rsdp: u64,
) -> Result<(), BootError> {
    for (i, &(addr, size, type_)) in e820.iter().enumerate() {
        let entry = hvm_memmap_table_entry {
            addr,
            size,
            type_,
            reserved: 0,
        };
        let at = PVH_MEMMAP_START + (i * std::mem::size_of::<hvm_memmap_table_entry>()) as u64;
        memory.write_obj(entry, GuestAddress(at))?;
    }
    let mut info = hvm_start_info {
        magic: PVH_START_INFO_MAGIC,
        version: 1,
        cmdline_paddr: CMDLINE_START,
        memmap_paddr: PVH_MEMMAP_START,
        memmap_entries: e820.len() as u32,
        rsdp_paddr: rsdp,
        ..Default::default()
    };
    if let Some((paddr, size)) = initrd {
        let module = hvm_modlist_entry {
            paddr,
            size,
            ..Default::default()
        };
        memory.write_obj(module, GuestAddress(PVH_MODLIST_START))?;
        info.nr_modules = 1;
        info.modlist_paddr = PVH_MODLIST_START;
    }
    memory.write_obj(info, GuestAddress(PVH_INFO_START))?;
    Ok(())
}
