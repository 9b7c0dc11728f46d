//! An address bus: a sorted map from address ranges to devices.
//!
//! Each vCPU exit (a port or MMIO access) is one lookup here. Devices are shared between
//! vCPU threads, so each sits behind its own mutex; a device is locked only for the
//! duration of one access.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A device model reachable through a [`Bus`].
///
/// `offset` is relative to the start of the range the device was inserted at, so one
/// model can be mapped at any base. `data.len()` is the access size (1, 2, 4 or 8).
pub trait BusDevice: Send {
    /// Serves a guest read; the device fills `data`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Serves a guest write of `data`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// A device shared between the bus and whoever else needs to reach it (e.g. the VMM
/// feeding stdin into a UART).
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("bus range {base:#x}+{len:#x} is empty or wraps around")]
    InvalidRange { base: u64, len: u64 },
    #[error("bus range {base:#x}+{len:#x} overlaps an existing device")]
    Overlap { base: u64, len: u64 },
}

#[derive(Clone)]
struct Mapping {
    len: u64,
    device: SharedDevice,
}

/// Routes accesses by address. Cloning a `Bus` shares the devices, not the map.
#[derive(Clone, Default)]
pub struct Bus {
    // Keyed by range base; ranges never overlap, so the candidate for an address is the
    // entry with the greatest base <= address.
    ranges: BTreeMap<u64, Mapping>,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `device` at `[base, base + len)`.
    pub fn insert(&mut self, device: SharedDevice, base: u64, len: u64) -> Result<(), BusError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(BusError::InvalidRange { base, len })?;
        let overlaps_previous = self
            .ranges
            .range(..=base)
            .next_back()
            .is_some_and(|(b, m)| b + m.len > base);
        let overlaps_next = self.ranges.range(base..end).next().is_some();
        if overlaps_previous || overlaps_next {
            return Err(BusError::Overlap { base, len });
        }
        self.ranges.insert(base, Mapping { len, device });
        Ok(())
    }

    /// Finds the device covering the whole access `[addr, addr + size)`.
    fn resolve(&self, addr: u64, size: usize) -> Option<(u64, &SharedDevice)> {
        let (base, mapping) = self.ranges.range(..=addr).next_back()?;
        let offset = addr - base;
        let end = offset.checked_add(size as u64)?;
        (end <= mapping.len).then_some((offset, &mapping.device))
    }

    /// Routes a read. Returns false when nothing is mapped there; `data` is then left
    /// as all ones, which is what a read of an empty bus returns on real hardware.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.resolve(addr, data.len()) {
            Some((offset, device)) => {
                lock(device).read(offset, data);
                true
            }
            None => {
                data.fill(0xff);
                false
            }
        }
    }

    /// Routes a write. Returns false when nothing is mapped there.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.resolve(addr, data.len()) {
            Some((offset, device)) => {
                lock(device).write(offset, data);
                true
            }
            None => false,
        }
    }
}

/// Locks a device, recovering from a poisoned lock: a device whose earlier access
/// panicked on one thread must not take every other vCPU down with it.
pub fn lock(device: &SharedDevice) -> std::sync::MutexGuard<'_, dyn BusDevice + 'static> {
    device
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks a concrete device the same way [`lock`] does.
pub fn lock_mutex<T: ?Sized>(device: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    device
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        writes: Vec<(u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.writes.push((offset, data.to_vec()));
        }
    }

    #[test]
    fn routes_by_range_and_offset() {
        let mut bus = Bus::new();
        let a = Arc::new(Mutex::new(Recorder::default()));
        bus.insert(a.clone(), 0x3f8, 8).unwrap();
        let mut buf = [0u8; 1];
        assert!(bus.read(0x3fd, &mut buf));
        assert_eq!(buf, [5]);
        assert!(bus.write(0x3f8, &[0x41]));
        assert_eq!(a.lock().unwrap().writes, vec![(0, vec![0x41])]);
        assert!(!bus.read(0x400, &mut buf));
        assert_eq!(buf, [0xff]);
    }

    #[test]
    fn rejects_overlaps_and_straddling_accesses() {
        let mut bus = Bus::new();
        let dev = || Arc::new(Mutex::new(Recorder::default()));
        bus.insert(dev(), 0x1000, 0x100).unwrap();
        assert_eq!(
            bus.insert(dev(), 0x10ff, 1),
            Err(BusError::Overlap {
                base: 0x10ff,
                len: 1
            })
        );
        assert_eq!(
            bus.insert(dev(), 0xf00, 0x101),
            Err(BusError::Overlap {
                base: 0xf00,
                len: 0x101
            })
        );
        assert!(bus.insert(dev(), 0x1100, 0x10).is_ok());
        assert!(bus.insert(dev(), u64::MAX, 2).is_err());
        let mut buf = [0u8; 4];
        // An access straddling the end of a device is not routed.
        assert!(!bus.read(0x1110 - 2, &mut buf));
    }
}
