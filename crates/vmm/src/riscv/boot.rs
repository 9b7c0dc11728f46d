//! Loading the RISC-V machine's boot images into RAM: firmware, kernel `Image`, initrd,
//! device tree and the firmware handoff, each placed where the boot protocol wants it.

use std::path::{Path, PathBuf};

use vm_core::memory::Bytes;
use vm_core::GuestMemory;
use vm_memory::GuestAddress;

use super::image::{self, ImageError};
use super::layout::*;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kernel {path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: ImageError,
    },
    #[error("{what} {path} is empty")]
    Empty { what: &'static str, path: PathBuf },
    #[error("{what} ({size} bytes) does not fit in guest RAM ({ram} MiB): use a larger --memory")]
    TooBig {
        what: &'static str,
        size: u64,
        ram: u64,
    },
    #[error("firmware {path} is not RISC-V firmware: {why}")]
    BadFirmware { path: PathBuf, why: &'static str },
    #[error("cannot write {what} to guest memory")]
    Write { what: &'static str },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, BootError> {
    let bytes = std::fs::read(path).map_err(|source| BootError::Read {
        what,
        path: path.to_owned(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(BootError::Empty {
            what,
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Where everything went.
#[derive(Clone, Copy, Debug, Default)]
pub struct Placement {
    pub firmware: Option<u64>,
    pub kernel: Option<u64>,
    pub initrd: Option<(u64, u64)>,
    pub fdt: u64,
    pub fw_dynamic: u64,
}

pub struct BootFiles<'a> {
    pub firmware: Option<&'a Path>,
    pub kernel: Option<&'a Path>,
    pub initrd: Option<&'a Path>,
}

/// Checks the files and decides where they go (nothing is written yet, so a bad file
/// costs no guest memory); returns the placement and the file contents.
pub fn plan(files: &BootFiles, ram_size: u64) -> Result<(Placement, Loaded), BootError> {
    let ram_end = RAM_BASE + ram_size;
    let too_big = |what, size| BootError::TooBig {
        what,
        size,
        ram: ram_size >> 20,
    };
    let mut p = Placement::default();
    let mut loaded = Loaded::default();
    let mut next = RAM_BASE;
    if let Some(path) = files.firmware {
        let fw = read("firmware", path)?;
        check_firmware(path, &fw)?;
        if fw.len() as u64 > ram_size / 2 {
            return Err(too_big("firmware", fw.len() as u64));
        }
        p.firmware = Some(RAM_BASE);
        next = (RAM_BASE + fw.len() as u64).next_multiple_of(KERNEL_ALIGN);
        loaded.firmware = fw;
    }
    if let Some(path) = files.kernel {
        let k = read("kernel", path)?;
        let h = image::parse(&k).map_err(|source| BootError::Image {
            path: path.to_owned(),
            source,
        })?;
        // At its text offset from the start of RAM (where firmware expects it), or at the
        // next 2 MiB boundary after a firmware larger than that.
        let at = (RAM_BASE + h.text_offset).max(next.next_multiple_of(KERNEL_ALIGN));
        if at + h.image_size + FDT_MAX > ram_end {
            return Err(too_big("kernel", h.image_size));
        }
        p.kernel = Some(at);
        next = at + h.image_size;
        loaded.kernel = k;
    }
    // The device tree and the firmware handoff at the top of RAM, the initrd below them.
    p.fdt = (ram_end - FDT_MAX).next_multiple_of(8);
    p.fw_dynamic = ram_end - 64;
    if let Some(path) = files.initrd {
        let rd = read("initrd", path)?;
        let size = rd.len() as u64;
        let start = (p.fdt.saturating_sub(size)) & !0xfff;
        if start < next || size > ram_size {
            return Err(too_big("initrd", size));
        }
        p.initrd = Some((start, start + size));
        loaded.initrd = rd;
    }
    Ok((p, loaded))
}

/// File contents read by [`plan`].
#[derive(Default)]
pub struct Loaded {
    pub firmware: Vec<u8>,
    pub kernel: Vec<u8>,
    pub initrd: Vec<u8>,
}

/// Rejects files that cannot be RISC-V M-mode firmware: ELF files for another machine,
/// and other well-known formats (x86 kernels, archives) given by mistake.
fn check_firmware(path: &Path, fw: &[u8]) -> Result<(), BootError> {
    let bad = |why| {
        Err(BootError::BadFirmware {
            path: path.to_owned(),
            why,
        })
    };
    if fw.len() < 4 {
        return bad("too short");
    }
    if fw.starts_with(b"\x7fELF") {
        return bad("an ELF file: give the flat binary (e.g. fw_dynamic.bin, not .elf)");
    }
    if fw.len() > 0x206 && &fw[0x202..0x206] == b"HdrS" {
        return bad("an x86 Linux kernel");
    }
    if fw.starts_with(&[0x1f, 0x8b]) || fw.starts_with(b"070701") {
        return bad("a compressed file or cpio archive");
    }
    if fw.iter().take(4096).all(|&b| b == 0) {
        return bad("it starts with 4 KiB of zeros");
    }
    Ok(())
}

/// Writes the planned images and the device tree into guest RAM.
pub fn load(
    memory: &GuestMemory,
    p: &Placement,
    loaded: &Loaded,
    fdt: &[u8],
) -> Result<(), BootError> {
    let write = |what, at: u64, bytes: &[u8]| {
        memory
            .write_slice(bytes, GuestAddress(at))
            .map_err(|_| BootError::Write { what })
    };
    if let Some(at) = p.firmware {
        write("firmware", at, &loaded.firmware)?;
    }
    if let Some(at) = p.kernel {
        write("kernel", at, &loaded.kernel)?;
    }
    if let Some((at, _)) = p.initrd {
        write("initrd", at, &loaded.initrd)?;
    }
    if fdt.len() as u64 > FDT_MAX - 64 {
        return Err(BootError::TooBig {
            what: "device tree",
            size: fdt.len() as u64,
            ram: 0,
        });
    }
    write("device tree", p.fdt, fdt)?;
    // fw_dynamic_info: magic, version, next_addr, next_mode, options, boot_hart (any).
    let next = p.kernel.unwrap_or(0);
    let info = [
        FW_DYNAMIC_MAGIC,
        FW_DYNAMIC_VERSION,
        next,
        FW_DYNAMIC_NEXT_MODE_S,
        0,
        u64::MAX,
    ];
    let bytes: Vec<u8> = info.iter().flat_map(|v| v.to_le_bytes()).collect();
    write("firmware handoff", p.fw_dynamic, &bytes)
}
