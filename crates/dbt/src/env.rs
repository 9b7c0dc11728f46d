//! Access to the guest state structure ("env") by byte offset.
//!
//! Generated code and the interpreter address guest registers as fixed offsets in a
//! `#[repr(C)]` structure owned by the front end. This is the one place that turns such an
//! offset into a memory access from Rust.

/// A raw view of a front end's `#[repr(C)]` state structure.
#[derive(Clone, Copy, Debug)]
pub struct EnvPtr {
    ptr: *mut u8,
    size: usize,
}

impl EnvPtr {
    /// Creates a view of `*state`.
    pub fn new<T>(state: &mut T) -> EnvPtr {
        EnvPtr {
            ptr: state as *mut T as *mut u8,
            size: std::mem::size_of::<T>(),
        }
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Reads the 8-byte field at `off` (out-of-range offsets read as 0: a front-end bug).
    pub fn read(&self, off: u32) -> u64 {
        let off = off as usize;
        if off + 8 > self.size || !off.is_multiple_of(8) {
            debug_assert!(false, "env offset {off} out of range");
            return 0;
        }
        // SAFETY: `ptr` came from a live `&mut T` of `size` bytes (the caller keeps it alive
        // and unaliased while the view is used); the 8-aligned field is inside it.
        unsafe { (self.ptr.add(off) as *const u64).read() }
    }

    /// Writes the 8-byte field at `off`.
    pub fn write(&self, off: u32, v: u64) {
        let off = off as usize;
        if off + 8 > self.size || !off.is_multiple_of(8) {
            debug_assert!(false, "env offset {off} out of range");
            return;
        }
        // SAFETY: as in `read`.
        unsafe { (self.ptr.add(off) as *mut u64).write(v) }
    }
}
