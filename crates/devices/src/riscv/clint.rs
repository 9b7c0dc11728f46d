//! The core-local interruptor (SiFive CLINT; the ACLINT MSWI and MTIMER devices at their
//! CLINT-compatible offsets).
//!
//! | offset | register | width |
//! |---|---|---|
//! | `0x0000 + 4 * hart` | `msip`: bit 0 is the hart's machine software interrupt | 32 |
//! | `0x4000 + 8 * hart` | `mtimecmp`: MTIP is pending while `mtime >= mtimecmp` | 64 |
//! | `0xbff8` | `mtime`: the timebase's counter | 64 |
//!
//! Any access of 1 to 8 bytes that lies inside one register works (so both halves of a
//! 64-bit register can be reached with 32-bit accesses, as RV32 software does). Accesses to
//! other offsets, to harts that do not exist, or straddling two registers read 0 and are
//! ignored.
//!
//! The CLINT does not raise MTIP: it hands each new compare value to the hart, which
//! compares it with the same host-clock-derived mtime and sleeps until the deadline.
//! Writes to `mtime` are ignored: mtime follows the host's monotonic clock for every hart
//! and for this device alike, and an offset written here would have to reach them all.
//! Firmware and Linux never write it on this machine.

use std::sync::Arc;

use vm_core::BusDevice;

use super::{le_value, put_le, HartLines, IntcError, Timebase, MIP_MSIP};

const MSIP_BASE: u64 = 0x0;
const MTIMECMP_BASE: u64 = 0x4000;
const MTIME: u64 = 0xbff8;
/// `mtimecmp` registers fit between `MTIMECMP_BASE` and `MTIME`.
pub const CLINT_MAX_HARTS: usize = ((MTIME - MTIMECMP_BASE) / 8) as usize;

pub struct Clint {
    timebase: Timebase,
    msip: Vec<bool>,
    mtimecmp: Vec<u64>,
    lines: Arc<dyn HartLines>,
}

/// One register an access reaches, and where in it.
enum Reg {
    Msip(usize),
    Mtimecmp(usize),
    Mtime,
}

impl Clint {
    /// A CLINT for `harts` harts with no software interrupt pending and every `mtimecmp`
    /// at its reset value, `u64::MAX` (never).
    pub fn new(
        harts: usize,
        timebase: Timebase,
        lines: Arc<dyn HartLines>,
    ) -> Result<Self, IntcError> {
        if harts > CLINT_MAX_HARTS {
            return Err(IntcError::TooManyHarts {
                device: "CLINT",
                harts,
                max: CLINT_MAX_HARTS,
            });
        }
        Ok(Self {
            timebase,
            msip: vec![false; harts],
            mtimecmp: vec![u64::MAX; harts],
            lines,
        })
    }

    /// The register an access of `len` bytes at `offset` reaches and the access's byte
    /// position inside it, if it lies wholly inside one register of an existing hart.
    fn locate(&self, offset: u64, len: usize) -> Option<(Reg, u32)> {
        let len = len as u64;
        let within = |base: u64, width: u64| {
            let index = (offset - base) / width;
            let shift = (offset - base) % width;
            (shift + len <= width).then_some((index as usize, shift as u32))
        };
        match offset {
            MTIME.. => within(MTIME, 8)
                .filter(|&(i, _)| i == 0)
                .map(|(_, s)| (Reg::Mtime, s)),
            MTIMECMP_BASE.. => within(MTIMECMP_BASE, 8)
                .filter(|&(hart, _)| hart < self.mtimecmp.len())
                .map(|(hart, s)| (Reg::Mtimecmp(hart), s)),
            MSIP_BASE.. => within(MSIP_BASE, 4)
                .filter(|&(hart, _)| hart < self.msip.len())
                .map(|(hart, s)| (Reg::Msip(hart), s)),
        }
    }

    fn value(&self, reg: &Reg) -> u64 {
        match *reg {
            Reg::Msip(hart) => u64::from(self.msip[hart]),
            Reg::Mtimecmp(hart) => self.mtimecmp[hart],
            Reg::Mtime => self.timebase.mtime(),
        }
    }
}

impl BusDevice for Clint {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = self
            .locate(offset, data.len())
            .map_or(0, |(reg, shift)| self.value(&reg) >> (8 * shift));
        put_le(data, value);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some((reg, shift)) = self.locate(offset, data.len()) else {
            return;
        };
        // Merge the written bytes into the register's current value.
        let mask = match data.len() {
            8 => u64::MAX,
            n => (1u64 << (8 * n)) - 1,
        } << (8 * shift);
        let merged = (self.value(&reg) & !mask) | ((le_value(data) << (8 * shift)) & mask);
        match reg {
            Reg::Msip(hart) => {
                let level = merged & 1 != 0;
                self.msip[hart] = level;
                self.lines.set_pending(hart, MIP_MSIP, level);
            }
            Reg::Mtimecmp(hart) => {
                self.mtimecmp[hart] = merged;
                self.lines.set_mtimecmp(hart, merged);
            }
            Reg::Mtime => log::debug!("CLINT: ignoring a write to mtime"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::riscv::mock::{Event, RecordingLines};

    fn clint(harts: usize) -> (Clint, Arc<RecordingLines>) {
        let lines = Arc::new(RecordingLines::default());
        let clint = Clint::new(harts, Timebase::now(), lines.clone()).unwrap();
        (clint, lines)
    }

    fn read(clint: &mut Clint, offset: u64, len: usize) -> u64 {
        let mut data = vec![0xaa; len];
        clint.read(offset, &mut data);
        le_value(&data)
    }

    #[test]
    fn msip_sets_and_clears_the_software_interrupt() {
        let (mut clint, lines) = clint(2);
        clint.write(4, &1u32.to_le_bytes());
        assert_eq!(
            lines.take(),
            [Event::Pending {
                hart: 1,
                bit: 3,
                level: true
            }]
        );
        assert_eq!(read(&mut clint, 4, 4), 1);
        assert_eq!(read(&mut clint, 0, 4), 0);
        // Only bit 0 counts.
        clint.write(4, &2u32.to_le_bytes());
        assert_eq!(
            lines.take(),
            [Event::Pending {
                hart: 1,
                bit: 3,
                level: false
            }]
        );
        assert_eq!(read(&mut clint, 4, 4), 0);
        // A hart that does not exist.
        clint.write(8, &1u32.to_le_bytes());
        assert_eq!(lines.take(), []);
        assert_eq!(read(&mut clint, 8, 4), 0);
    }

    #[test]
    fn mtimecmp_takes_64_bit_and_32_bit_writes() {
        let (mut clint, lines) = clint(2);
        assert_eq!(read(&mut clint, 0x4000, 8), u64::MAX);
        clint.write(0x4008, &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(
            lines.take(),
            [Event::Mtimecmp {
                hart: 1,
                value: 0x1122_3344_5566_7788
            }]
        );
        assert_eq!(read(&mut clint, 0x4008, 8), 0x1122_3344_5566_7788);
        assert_eq!(read(&mut clint, 0x400c, 4), 0x1122_3344);

        // Two 32-bit halves on hart 0: high first, the way RV32 code avoids a spurious
        // interrupt in between.
        clint.write(0x4004, &0xdead_beefu32.to_le_bytes());
        clint.write(0x4000, &0x0bad_f00du32.to_le_bytes());
        assert_eq!(
            lines.take(),
            [
                Event::Mtimecmp {
                    hart: 0,
                    value: 0xdead_beef_ffff_ffff
                },
                Event::Mtimecmp {
                    hart: 0,
                    value: 0xdead_beef_0bad_f00d
                },
            ]
        );
        assert_eq!(read(&mut clint, 0x4000, 8), 0xdead_beef_0bad_f00d);
        // Hart 1's register did not change, and a hart that does not exist reads 0.
        assert_eq!(read(&mut clint, 0x4008, 8), 0x1122_3344_5566_7788);
        clint.write(0x4010, &5u64.to_le_bytes());
        assert_eq!(lines.take(), []);
        assert_eq!(read(&mut clint, 0x4010, 8), 0);
    }

    #[test]
    fn mtime_counts_with_the_timebase_and_ignores_writes() {
        let (mut clint, lines) = clint(1);
        let tb = clint.timebase;
        let before = tb.mtime();
        let a = read(&mut clint, 0xbff8, 8);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = read(&mut clint, 0xbff8, 8);
        let after = tb.mtime();
        assert!(
            before <= a && a < b && b <= after,
            "{before} {a} {b} {after}"
        );
        assert!(
            b - a >= 20_000,
            "2 ms at 10 MHz is 20000 ticks, got {}",
            b - a
        );
        // The high half is the high half of the same counter (0 so soon after the epoch).
        assert_eq!(read(&mut clint, 0xbffc, 4), 0);
        clint.write(0xbff8, &0u64.to_le_bytes());
        assert!(read(&mut clint, 0xbff8, 8) >= b);
        assert_eq!(lines.take(), []);
    }

    #[test]
    fn stray_accesses_read_zero() {
        let (mut clint, lines) = clint(1);
        // Straddles msip of hart 0 and 1; inside the gap; past mtime.
        assert_eq!(read(&mut clint, 0x2, 4), 0);
        assert_eq!(read(&mut clint, 0x3000, 4), 0);
        clint.write(0x2, &[1, 0, 0, 0]);
        assert_eq!(lines.take(), []);
        assert!(Clint::new(CLINT_MAX_HARTS + 1, Timebase::now(), lines).is_err());
    }
}
