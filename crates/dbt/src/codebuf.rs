//! Executable memory that is never writable and executable through the same mapping.
//!
//! One memfd is mapped twice: a read-write view where code is emitted and patched, and a
//! read-execute view from which it runs. Neither mapping is ever W+X.

use std::io;

pub struct CodeBuf {
    rw: *mut u8,
    rx: *mut u8,
    size: usize,
    used: usize,
}

// SAFETY: the buffer is plain memory owned by this struct; callers serialise mutation
// through `&mut self`.
unsafe impl Send for CodeBuf {}

impl CodeBuf {
    pub fn new(size: usize) -> io::Result<CodeBuf> {
        let size = (size + 4095) & !4095;
        // SAFETY: plain syscalls; every result is checked, and the fd is closed once both
        // views exist (the mappings keep the memory alive).
        unsafe {
            let fd = libc::memfd_create(c"tandem-code".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ftruncate(fd, size as libc::off_t) != 0 {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
            let rw = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            let rx = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_SHARED,
                fd,
                0,
            );
            libc::close(fd);
            if rw == libc::MAP_FAILED || rx == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                if rw != libc::MAP_FAILED {
                    libc::munmap(rw, size);
                }
                if rx != libc::MAP_FAILED {
                    libc::munmap(rx, size);
                }
                return Err(e);
            }
            Ok(CodeBuf {
                rw: rw as *mut u8,
                rx: rx as *mut u8,
                size,
                used: 0,
            })
        }
    }

    pub fn used(&self) -> usize {
        self.used
    }
    pub fn capacity(&self) -> usize {
        self.size
    }
    /// Executable address of offset `off`.
    pub fn exec_addr(&self, off: usize) -> usize {
        self.rx as usize + off
    }
    pub fn exec_range(&self) -> (usize, usize) {
        (self.rx as usize, self.rx as usize + self.size)
    }

    /// Appends `code` (aligned to 16); returns its offset, or None when full.
    pub fn append(&mut self, code: &[u8]) -> Option<usize> {
        let off = (self.used + 15) & !15;
        if off + code.len() > self.size {
            return None;
        }
        // SAFETY: [off, off+len) is inside the RW view (checked above) and `code` is a
        // separate Rust slice.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), self.rw.add(off), code.len()) };
        self.used = off + code.len();
        Some(off)
    }

    /// Atomically rewrites the 4-byte aligned field at `off` (a jump displacement).
    pub fn patch_u32(&mut self, off: usize, v: u32) {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.used,
            "bad patch offset {off}"
        );
        // SAFETY: aligned, inside the emitted part of the RW view; an aligned 4-byte store is
        // atomic on x86, so a thread executing the jump sees the old or the new target.
        unsafe {
            (*(self.rw.add(off) as *const std::sync::atomic::AtomicU32))
                .store(v, std::sync::atomic::Ordering::Release)
        };
    }

    /// Forgets all code (callers must guarantee no thread is executing it).
    pub fn reset(&mut self, keep: usize) {
        self.used = keep;
    }
}

impl Drop for CodeBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping the two views this struct created.
        unsafe {
            libc::munmap(self.rw as *mut libc::c_void, self.size);
            libc::munmap(self.rx as *mut libc::c_void, self.size);
        }
    }
}
