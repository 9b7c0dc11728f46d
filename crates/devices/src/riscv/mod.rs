//! The interrupt controllers and the test finisher of the RISC-V `virt` machine, laid out
//! as QEMU's `virt` board lays them out so that its firmware (OpenSBI) and Linux find them
//! where they expect.
//!
//! | device | base | size | interrupt |
//! |---|---|---|---|
//! | test finisher ([`TestDevice`]) | [`TEST_BASE`] | [`TEST_SIZE`] | — |
//! | CLINT ([`Clint`]) | [`CLINT_BASE`] | [`CLINT_SIZE`] | MSIP, MTIP of each hart |
//! | PLIC ([`Plic`]) | [`PLIC_BASE`] | [`PLIC_SIZE`] | MEIP, SEIP of each hart |
//! | 16550 UART | [`UART0_BASE`] | [`UART0_SIZE`] | PLIC source [`UART0_IRQ`] |
//! | virtio-mmio slot `i` | `VIRTIO_BASE + i * VIRTIO_STRIDE` | [`VIRTIO_STRIDE`] | PLIC source `VIRTIO_IRQ_BASE + i` |
//! | RAM | [`RAM_BASE`] | machine's choice | — |
//!
//! The controllers never call into the machine except through [`HartLines`], which only
//! sets bits and wakes hart threads; that is what lets a device raise a PLIC line while it
//! holds its own lock.

pub mod clint;
pub mod plic;
pub mod test_device;

pub use clint::Clint;
pub use plic::Plic;
pub use test_device::{TestDevice, TestEvent};

/// The SiFive test finisher ("syscon" for Linux's poweroff and reboot drivers).
pub const TEST_BASE: u64 = 0x10_0000;
pub const TEST_SIZE: u64 = 0x1000;
/// The core-local interruptor: software interrupts and timer compare registers.
pub const CLINT_BASE: u64 = 0x0200_0000;
pub const CLINT_SIZE: u64 = 0x1_0000;
/// The platform-level interrupt controller. This size holds the contexts of
/// [`MAX_HARTS`] harts (two each), as QEMU sizes it for its own maximum.
pub const PLIC_BASE: u64 = 0x0c00_0000;
pub const PLIC_SIZE: u64 = 0x60_0000;
/// Interrupt sources of the PLIC, counting the reserved source 0: guests may use 1..=95.
pub const PLIC_SOURCES: usize = 96;
/// The device tree's `riscv,ndev`: the highest usable source id.
pub const PLIC_NDEV: u32 = PLIC_SOURCES as u32 - 1;
/// The 16550 UART (one-byte register stride) and its PLIC source.
pub const UART0_BASE: u64 = 0x1000_0000;
pub const UART0_SIZE: u64 = 0x100;
pub const UART0_IRQ: u32 = 10;
/// virtio-mmio transports: slot `i` sits at `VIRTIO_BASE + i * VIRTIO_STRIDE` and raises
/// PLIC source `VIRTIO_IRQ_BASE + i`.
pub const VIRTIO_BASE: u64 = 0x1000_1000;
pub const VIRTIO_STRIDE: u64 = 0x1000;
pub const VIRTIO_COUNT: usize = 8;
pub const VIRTIO_IRQ_BASE: u32 = 1;
/// Where RAM starts; firmware is loaded here.
pub const RAM_BASE: u64 = 0x8000_0000;
/// The most harts this layout serves: [`PLIC_SIZE`] holds 1024 PLIC contexts.
pub const MAX_HARTS: usize = 512;

/// `mip` bits the controllers drive.
pub const MIP_MSIP: u32 = 3;
pub const MIP_SEIP: u32 = 9;
pub const MIP_MEIP: u32 = 11;

/// How the interrupt controllers reach the harts: the machine implements it.
pub trait HartLines: Send + Sync {
    /// Sets or clears interrupt-pending bit `mip_bit` ([`MIP_MSIP`], [`MIP_SEIP`],
    /// [`MIP_MEIP`]) of hart `hart`, waking it if it waits for an interrupt.
    fn set_pending(&self, hart: usize, mip_bit: u32, level: bool);
    /// The machine-timer compare value of `hart` changed (the hart raises MTIP itself
    /// when mtime reaches it).
    fn set_mtimecmp(&self, hart: usize, value: u64);
}

/// Errors building the controllers; they come from the machine's configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IntcError {
    #[error("the {device} serves at most {max} harts, not {harts}")]
    TooManyHarts {
        device: &'static str,
        harts: usize,
        max: usize,
    },
    #[error("a PLIC has 1 to {max} sources, not {sources}")]
    BadSourceCount { sources: usize, max: usize },
    #[error("PLIC source {id} does not exist (usable sources are 1..{sources})")]
    NoSuchSource { id: u32, sources: usize },
}

/// Nanoseconds of CLOCK_MONOTONIC, the clock the harts compare `mtimecmp` against: the
/// devices and the harts must read the same clock, so this is not `std::time::Instant`
/// (whose origin is private).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass, which lives for the call.
    // CLOCK_MONOTONIC always exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The machine's timebase: mtime counts at `freq` Hz from `epoch_ns` (CLOCK_MONOTONIC
/// nanoseconds), so every hart and the CLINT derive the same mtime from the host clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timebase {
    pub epoch_ns: u64,
    pub freq: u64,
}

impl Timebase {
    /// The frequency QEMU's `virt` machine advertises (`timebase-frequency`).
    pub const VIRT_FREQ: u64 = 10_000_000;

    /// A timebase whose mtime is 0 now and counts at [`Self::VIRT_FREQ`].
    pub fn now() -> Self {
        Self {
            epoch_ns: monotonic_ns(),
            freq: Self::VIRT_FREQ,
        }
    }

    /// The current mtime.
    pub fn mtime(&self) -> u64 {
        self.mtime_at(monotonic_ns())
    }

    /// mtime at CLOCK_MONOTONIC time `monotonic_ns` (0 before the epoch).
    pub fn mtime_at(&self, monotonic_ns: u64) -> u64 {
        let elapsed = u128::from(monotonic_ns.saturating_sub(self.epoch_ns));
        let ticks = elapsed * u128::from(self.freq) / 1_000_000_000;
        u64::try_from(ticks).unwrap_or(u64::MAX)
    }

    /// The first CLOCK_MONOTONIC nanosecond at which mtime has reached `mtime`
    /// (rounded up, so `mtime_at(ns_at(v)) >= v`), or `u64::MAX` if never.
    pub fn ns_at(&self, mtime: u64) -> u64 {
        if mtime == 0 {
            return self.epoch_ns;
        }
        if self.freq == 0 {
            return u64::MAX;
        }
        let ns = (u128::from(mtime) * 1_000_000_000).div_ceil(u128::from(self.freq));
        u64::try_from(ns)
            .map(|ns| self.epoch_ns.saturating_add(ns))
            .unwrap_or(u64::MAX)
    }
}

/// The value of a little-endian access of 1 to 8 bytes.
fn le_value(data: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = data.len().min(8);
    bytes[..n].copy_from_slice(&data[..n]);
    u64::from_le_bytes(bytes)
}

/// Fills a read of 1 to 8 bytes with the low bytes of `value`.
fn put_le(data: &mut [u8], value: u64) {
    data.fill(0);
    let n = data.len().min(8);
    data[..n].copy_from_slice(&value.to_le_bytes()[..n]);
}

#[cfg(test)]
pub(crate) mod mock {
    use std::sync::Mutex;

    use super::HartLines;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Event {
        Pending { hart: usize, bit: u32, level: bool },
        Mtimecmp { hart: usize, value: u64 },
    }

    /// Records every call, in order.
    #[derive(Default)]
    pub struct RecordingLines {
        events: Mutex<Vec<Event>>,
    }

    impl RecordingLines {
        /// The calls since the last `take`.
        pub fn take(&self) -> Vec<Event> {
            std::mem::take(&mut *self.events.lock().unwrap())
        }
    }

    impl HartLines for RecordingLines {
        fn set_pending(&self, hart: usize, bit: u32, level: bool) {
            self.events
                .lock()
                .unwrap()
                .push(Event::Pending { hart, bit, level });
        }
        fn set_mtimecmp(&self, hart: usize, value: u64) {
            self.events
                .lock()
                .unwrap()
                .push(Event::Mtimecmp { hart, value });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timebase_converts_both_ways() {
        let tb = Timebase {
            epoch_ns: 1_000,
            freq: 10_000_000,
        };
        assert_eq!(tb.mtime_at(0), 0);
        assert_eq!(tb.mtime_at(1_000 + 1_000_000_000), 10_000_000);
        assert_eq!(tb.ns_at(10_000_000), 1_000 + 1_000_000_000);
        assert_eq!(tb.ns_at(0), 1_000);
        assert_eq!(tb.ns_at(u64::MAX), u64::MAX);
        // A frequency that does not divide a second: the deadline is rounded up.
        let odd = Timebase {
            epoch_ns: 0,
            freq: 3,
        };
        for v in 1..10 {
            let ns = odd.ns_at(v);
            assert!(odd.mtime_at(ns) >= v && odd.mtime_at(ns - 1) < v);
        }
    }

    #[test]
    fn timebase_follows_the_monotonic_clock() {
        let tb = Timebase::now();
        assert_eq!(tb.freq, 10_000_000);
        let before = monotonic_ns();
        let a = tb.mtime();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = tb.mtime();
        assert!(b >= a + 20_000, "mtime {a} -> {b} over 2 ms");
        assert!(tb.mtime_at(before) <= a);
        assert!(monotonic_ns() >= before);
    }

    #[test]
    fn little_endian_helpers_round_trip() {
        assert_eq!(le_value(&[0x78, 0x56, 0x34, 0x12]), 0x1234_5678);
        let mut two = [0u8; 2];
        put_le(&mut two, 0xaabb_ccdd);
        assert_eq!(two, [0xdd, 0xcc]);
    }
}
