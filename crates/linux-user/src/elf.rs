//! ELF64 RISC-V program loading into the guest address space.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;

use thiserror::Error;

use crate::space::{page_down, page_up, Backing, Space, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE};

const EM_RISCV: u16 = 243;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PHDR_SIZE: usize = 56;
/// Where position-independent main programs go (two thirds of an Sv39 space, like Linux).
const PIE_BASE: u64 = 0x2a_aaaa_a000;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: cannot execute: permission denied")]
    NoExec(String),
    #[error("{0}: cannot execute: not an ELF file")]
    NotElf(String),
    #[error("{0}: cannot execute: not a RISC-V 64-bit little-endian program")]
    WrongArch(String),
    #[error("{0}: cannot execute: truncated or malformed ELF ({1})")]
    Malformed(String, &'static str),
    #[error("{path}: cannot execute: interpreter {interp} not found")]
    NoInterp { path: String, interp: String },
    #[error("{0}: cannot map segment: errno {1}")]
    Map(String, i32),
}

impl LoadError {
    /// Shell convention: 127 "not found", 126 "found but cannot execute".
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::Open { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            LoadError::NoInterp { .. } => 127,
            _ => 126,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

/// A loaded ELF image.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Load bias: runtime address minus link-time address.
    pub bias: u64,
    pub entry: u64,
    pub phdr: u64,
    pub phnum: u64,
    pub phent: u64,
    /// End of the highest segment (start of brk for the main program).
    pub end: u64,
    pub interp: Option<String>,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]))
}

/// Checks whether `path` is a RISC-V 64-bit ELF (used by execve to pick re-exec vs host exec).
pub fn is_riscv_elf(path: &std::path::Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let mut h = [0u8; 20];
    f.read_exact_at(&mut h, 0).is_ok()
        && &h[..4] == b"\x7fELF"
        && h[4] == 2
        && h[5] == 1
        && u16_at(&h, 18) == EM_RISCV
}

/// The interpreter line of a `#!` script, as Linux reads it: the interpreter path, then
/// at most one argument (the rest of the line, surrounding blanks removed). None when the
/// file cannot be read, does not start with `#!`, names no interpreter, or its first line
/// does not end within Linux's 256-byte buffer (a file shorter than that may end without
/// a newline).
pub fn shebang(path: &std::path::Path) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let f = File::open(path).ok()?;
    let mut buf = [0u8; 256];
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_shebang(&buf[..n], n < buf.len())
}

/// `whole`: `head` is the entire file, so its first line may end at the end of the file.
fn parse_shebang(head: &[u8], whole: bool) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let rest = head.strip_prefix(b"#!")?;
    let eol = match rest.iter().position(|&c| c == b'\n') {
        Some(i) => i,
        None if whole => rest.len(),
        None => return None,
    };
    let line = &rest[..eol];
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let start = line.iter().position(|c| !blank(c))?;
    let line = &line[start..];
    let end = line.iter().position(blank).unwrap_or(line.len());
    let (interp, arg) = line.split_at(end);
    let arg = match (
        arg.iter().position(|c| !blank(c)),
        arg.iter().rposition(|c| !blank(c)),
    ) {
        (Some(a), Some(b)) => Some(arg[a..=b].to_vec()),
        _ => None,
    };
    Some((interp.to_vec(), arg))
}

/// The kernel's execute-permission check for a program about to be executed: a regular file
/// the caller may execute (root too needs at least one execute bit). Returns the errno the
/// kernel's execve would (EACCES, ENOENT, ...).
pub fn exec_access(path: &std::path::Path) -> Result<(), i32> {
    use std::os::unix::ffi::OsStrExt;
    let meta = std::fs::metadata(path).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
    if !meta.is_file() {
        return Err(libc::EACCES);
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| libc::ENOENT)?;
    // With the effective ids, as execve checks (a set-user-ID program started through
    // binfmt_misc's C flag runs with ids that differ).
    // SAFETY: a NUL-terminated path; faccessat only reads it.
    if unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) } != 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EACCES));
    }
    Ok(())
}

/// As the command line's program: the execute-permission check of [`exec_access`].
pub fn check_executable(path: &str) -> Result<(), LoadError> {
    match exec_access(std::path::Path::new(path)) {
        Ok(()) => Ok(()),
        Err(libc::EACCES) => Err(LoadError::NoExec(path.to_string())),
        Err(e) => Err(LoadError::Open {
            path: path.to_string(),
            source: std::io::Error::from_raw_os_error(e),
        }),
    }
}

/// Validates a RISC-V program's headers without loading it and returns its interpreter's
/// name: what the guest's execve must know before it commits to replacing the process.
pub fn probe(path: &str) -> Result<Option<String>, LoadError> {
    let f = open(path)?;
    let (_, phdrs) = parse(&f, path)?;
    interp_name(path, &f, &phdrs)
}

fn interp_name(path: &str, f: &File, phdrs: &[Phdr]) -> Result<Option<String>, LoadError> {
    let Some(p) = phdrs.iter().find(|p| p.p_type == PT_INTERP) else {
        return Ok(None);
    };
    let mut b = vec![0u8; p.filesz.min(4096) as usize];
    f.read_exact_at(&mut b, p.offset)
        .map_err(|_| LoadError::Malformed(path.to_string(), "short interpreter name"))?;
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    Ok(Some(String::from_utf8_lossy(&b[..n]).into_owned()))
}

fn open(path: &str) -> Result<File, LoadError> {
    File::open(path).map_err(|source| LoadError::Open {
        path: path.to_string(),
        source,
    })
}

/// Validates an open ELF file (`path` names it in errors), returning its header and program
/// headers.
fn parse(f: &File, path: &str) -> Result<([u8; 64], Vec<Phdr>), LoadError> {
    let meta = f.metadata().map_err(|source| LoadError::Open {
        path: path.to_string(),
        source,
    })?;
    if meta.is_dir() {
        return Err(LoadError::Open {
            path: path.to_string(),
            source: std::io::Error::from_raw_os_error(libc::EISDIR),
        });
    }
    let size = meta.len();
    let mut h = [0u8; 64];
    let n = f.read_at(&mut h, 0).unwrap_or(0);
    if n < 4 || &h[..4] != b"\x7fELF" {
        return Err(LoadError::NotElf(path.to_string()));
    }
    if n < 64 {
        return Err(LoadError::Malformed(path.to_string(), "short header"));
    }
    if h[4] != 2 || h[5] != 1 || u16_at(&h, 18) != EM_RISCV {
        return Err(LoadError::WrongArch(path.to_string()));
    }
    let e_type = u16_at(&h, 16);
    if e_type != ET_EXEC && e_type != ET_DYN {
        return Err(LoadError::Malformed(path.to_string(), "not an executable"));
    }
    let phoff = u64_at(&h, 32);
    let phentsize = u16_at(&h, 54) as usize;
    let phnum = u16_at(&h, 56) as usize;
    if phentsize != PHDR_SIZE || phnum == 0 || phnum > 256 {
        return Err(LoadError::Malformed(
            path.to_string(),
            "bad program headers",
        ));
    }
    let total = (phnum * PHDR_SIZE) as u64;
    if phoff.checked_add(total).is_none_or(|e| e > size) {
        return Err(LoadError::Malformed(
            path.to_string(),
            "program headers past end of file",
        ));
    }
    let mut raw = vec![0u8; phnum * PHDR_SIZE];
    f.read_exact_at(&mut raw, phoff)
        .map_err(|_| LoadError::Malformed(path.to_string(), "short read"))?;
    let mut phdrs = Vec::with_capacity(phnum);
    for c in raw.chunks_exact(PHDR_SIZE) {
        let p = Phdr {
            p_type: u32_at(c, 0),
            flags: u32_at(c, 4),
            offset: u64_at(c, 8),
            vaddr: u64_at(c, 16),
            filesz: u64_at(c, 32),
            memsz: u64_at(c, 40),
            align: u64_at(c, 48),
        };
        if p.p_type == PT_LOAD || p.p_type == PT_INTERP {
            let bad = p.offset.checked_add(p.filesz).is_none_or(|e| e > size)
                || p.filesz > p.memsz
                || p.vaddr.checked_add(p.memsz).is_none();
            if bad {
                return Err(LoadError::Malformed(
                    path.to_string(),
                    "segment past end of file",
                ));
            }
        }
        phdrs.push(p);
    }
    if !phdrs.iter().any(|p| p.p_type == PT_LOAD) {
        return Err(LoadError::Malformed(
            path.to_string(),
            "no loadable segment",
        ));
    }
    Ok((h, phdrs))
}

fn seg_prot(flags: u32) -> u32 {
    // ELF p_flags: X=1, W=2, R=4.
    let mut p = 0;
    if flags & 4 != 0 {
        p |= PROT_READ;
    }
    if flags & 2 != 0 {
        p |= PROT_WRITE;
    }
    if flags & 1 != 0 {
        p |= PROT_EXEC;
    }
    p
}

/// Loads `path` into `space`. `main` selects the fixed PIE base; interpreters go wherever
/// there is room.
pub fn load(space: &Space, path: &str, main: bool) -> Result<Loaded, LoadError> {
    load_file(space, &open(path)?, path, main)
}

/// As [`load`], from a file already open (binfmt_misc's `O` flag hands the program over as
/// an fd, which works even when the program is executable but not readable); `path` only
/// names it in errors. The mappings stay valid after `f` is closed.
pub fn load_file(space: &Space, f: &File, path: &str, main: bool) -> Result<Loaded, LoadError> {
    let (h, phdrs) = parse(f, path)?;
    let malformed = |why| LoadError::Malformed(path.to_string(), why);
    let map_err = |e: crate::errno::Errno| LoadError::Map(path.to_string(), e.0);
    let loads: Vec<&Phdr> = phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    let lo = page_down(loads.iter().map(|p| p.vaddr).min().unwrap_or(0));
    let hi = loads.iter().map(|p| p.vaddr + p.memsz).max().unwrap_or(0);
    let span = page_up(hi.saturating_sub(lo))
        .filter(|s| *s < crate::space::GUEST_ADDR_LIMIT)
        .ok_or(malformed("segments span more than the address space"))?;
    let align = loads
        .iter()
        .map(|p| p.align)
        .filter(|a| a.is_power_of_two())
        .max()
        .unwrap_or(PAGE)
        .clamp(PAGE, 1 << 21);

    let bias = if u16_at(&h, 16) == ET_DYN {
        // Reserve the whole span first so segments land contiguously.
        let want = if main {
            PIE_BASE.next_multiple_of(align)
        } else {
            0
        };
        let at = space
            .mmap(
                want,
                span + align,
                0,
                false,
                false,
                Backing::Anon { shared: false },
            )
            .map_err(map_err)?;
        let start = at.next_multiple_of(align);
        space.munmap(at, span + align).map_err(map_err)?;
        start.wrapping_sub(lo)
    } else {
        0
    };

    let mut phdr_addr = 0;
    let mut end = 0;
    for p in &loads {
        if !p.vaddr.wrapping_sub(p.offset).is_multiple_of(PAGE) {
            return Err(malformed("misaligned segment"));
        }
        let prot = seg_prot(p.flags);
        let start = bias.wrapping_add(p.vaddr);
        let map_start = page_down(start);
        let too_big = || LoadError::Map(path.to_string(), libc::ENOMEM);
        let file_end = start.checked_add(p.filesz).ok_or_else(too_big)?;
        let mem_end = start.checked_add(p.memsz).ok_or_else(too_big)?;
        let file_map_end = page_up(file_end).ok_or(malformed("segment too large"))?;
        if p.filesz > 0 {
            space
                .mmap(
                    map_start,
                    file_map_end - map_start,
                    prot | PROT_WRITE,
                    true,
                    false,
                    Backing::File {
                        fd: f.as_raw_fd(),
                        offset: page_down(p.offset),
                        shared: false,
                    },
                )
                .map_err(map_err)?;
            // The rest of the last file page belongs to bss and must read as zero.
            let tail = (file_map_end - file_end) as usize;
            if p.memsz > p.filesz && tail > 0 {
                space
                    .write_force(file_end, &vec![0u8; tail])
                    .map_err(map_err)?;
            }
            space
                .mprotect(map_start, file_map_end - map_start, prot)
                .map_err(map_err)?;
        }
        let anon_start = if p.filesz > 0 {
            file_map_end
        } else {
            map_start
        };
        let mem_map_end = page_up(mem_end).ok_or(malformed("segment too large"))?;
        if mem_map_end > anon_start {
            space
                .mmap(
                    anon_start,
                    mem_map_end - anon_start,
                    prot,
                    true,
                    false,
                    Backing::Anon { shared: false },
                )
                .map_err(map_err)?;
        }
        let phoff = u64_at(&h, 32);
        if phoff >= p.offset && phoff < p.offset + p.filesz {
            phdr_addr = start + (phoff - p.offset);
        }
        end = end.max(mem_end);
    }
    if let Some(p) = phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        phdr_addr = bias.wrapping_add(p.vaddr);
    }
    let interp = interp_name(path, f, &phdrs)?;
    Ok(Loaded {
        bias,
        entry: bias.wrapping_add(u64_at(&h, 24)),
        phdr: phdr_addr,
        phnum: phdrs.len() as u64,
        phent: PHDR_SIZE as u64,
        end,
        interp,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn shebang_lines_parse_as_linux_does() {
        let p = |s: &[u8]| super::parse_shebang(s, false);
        assert_eq!(p(b"#!/bin/sh\necho"), Some((b"/bin/sh".to_vec(), None)));
        assert_eq!(
            p(b"#! /usr/bin/env  python3 -u \n"),
            Some((b"/usr/bin/env".to_vec(), Some(b"python3 -u".to_vec())))
        );
        assert_eq!(p(b"#!/bin/sh \t\n"), Some((b"/bin/sh".to_vec(), None)));
        assert_eq!(p(b"#!\n"), None);
        assert_eq!(p(b"#!/bin/sh"), None, "no end of line within the buffer");
        assert_eq!(
            super::parse_shebang(b"#!/bin/sh", true),
            Some((b"/bin/sh".to_vec(), None)),
            "a short file may end without a newline"
        );
        assert_eq!(p(b"\x7fELF"), None);
    }
}
