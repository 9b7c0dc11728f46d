//! A host tap device: Ethernet frames in and out of the host's network stack, each one
//! preceded by the virtio-net header (IFF_VNET_HDR), so offloads pass straight through.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

/// `_IOW('T', n, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const IFF_TAP: u16 = 0x0002;
const IFF_NO_PI: u16 = 0x1000;
const IFF_VNET_HDR: u16 = 0x4000;

/// Offloads the host may hand the guest (TUNSETOFFLOAD).
pub const TUN_F_CSUM: u32 = 0x01;
pub const TUN_F_TSO4: u32 = 0x02;
pub const TUN_F_TSO6: u32 = 0x04;

/// The virtio 1.x net header (with `num_buffers`), which the tap reads and writes too.
pub const VNET_HDR_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
#[error("cannot open tap {name}: {source}")]
pub struct TapError {
    pub name: String,
    #[source]
    pub source: io::Error,
}

/// The host side of a virtio-net device: moves frames, each with its virtio-net header,
/// between the device and the host. A [`Tap`] in Tandem; the fuzz targets use an
/// in-process one. The file descriptor is what the device's worker waits on: readable
/// when a frame waits, writable when a refused frame may be retried.
pub trait NetBackend: AsRawFd + Send + 'static {
    /// A name for log messages.
    fn name(&self) -> &str;
    /// Reads one frame (header included) into `buf`; `WouldBlock` when none waits.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes one frame (header included); `WouldBlock` when the host cannot take it now.
    fn write(&mut self, frame: &[u8]) -> io::Result<usize>;
}

pub struct Tap {
    file: File,
    pub name: String,
}

impl Tap {
    /// Attaches to (or creates, with CAP_NET_ADMIN) the tap device `name`.
    pub fn open(name: &str) -> Result<Tap, TapError> {
        let err = |source| TapError {
            name: name.to_owned(),
            source,
        };
        if name.is_empty() || name.len() >= 16 || name.contains('\0') {
            return Err(err(io::Error::from_raw_os_error(libc::EINVAL)));
        }
        // SAFETY: a NUL-terminated path literal; the returned fd is checked.
        let fd = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(err(io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        // struct ifreq: the name, then the flags in the union.
        let mut ifr = [0u8; 40];
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        ifr[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR).to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes a struct ifreq, which `ifr` is large enough for.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) } < 0 {
            return Err(err(io::Error::last_os_error()));
        }
        let hdr = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETVNETHDRSZ, &hdr) } < 0 {
            return Err(err(io::Error::last_os_error()));
        }
        Ok(Tap {
            file,
            name: name.to_owned(),
        })
    }

    /// Which offloads the host may use on frames it gives us.
    pub fn set_offload(&self, flags: u32) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), TUNSETOFFLOAD, flags as libc::c_ulong) } < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads one frame (header included); `WouldBlock` when none waits.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(self.file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Writes one frame (header included); `WouldBlock` when the tap is full.
    pub fn write(&self, frame: &[u8]) -> io::Result<usize> {
        // SAFETY: `frame` is valid for reads of its length.
        let n = unsafe { libc::write(self.file.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

impl NetBackend for Tap {
    fn name(&self) -> &str {
        &self.name
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Tap::read(self, buf)
    }
    fn write(&mut self, frame: &[u8]) -> io::Result<usize> {
        Tap::write(self, frame)
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}
