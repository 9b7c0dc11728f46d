//! The platform-level interrupt controller (RISC-V PLIC specification; SiFive layout).
//!
//! Each hart has two contexts: context `2h` is hart `h`'s M mode (drives MEIP), context
//! `2h + 1` its S mode (drives SEIP).
//!
//! | offset | register |
//! |---|---|
//! | `0x0 + 4 * source` | priority (0 never interrupts; source 0 is always 0) |
//! | `0x1000 + 4 * word` | pending bits, read-only |
//! | `0x2000 + 0x80 * context + 4 * word` | enable bits |
//! | `0x20_0000 + 0x1000 * context` | priority threshold |
//! | `0x20_0004 + 0x1000 * context` | read: claim; write: complete |
//!
//! Registers are 32 bits wide and only aligned 32-bit accesses reach them, as the
//! specification defines; other accesses read 0 and are ignored. Priorities and thresholds
//! keep 3 bits, as on QEMU's `virt` machine.
//!
//! A source is pending once raised. A claim hands out the pending, enabled source with the
//! highest priority above the context's threshold (the lowest id among equals), clears its
//! pending bit and keeps it in service until completed: a source in service is never
//! presented, though it may become pending again meanwhile (an edge arriving, or a level
//! still high at completion). A completion of a source that is not in service is ignored;
//! unlike the specification's letter, the source need not be enabled for the completing
//! context (firmware and Linux do not rely on either behaviour).
//!
//! Devices raise sources through [`Plic::irq_line`] (edges) or [`Plic::set_level`] (levels)
//! from any thread, possibly while holding their own locks: the PLIC's lock is never held
//! while calling anything but [`HartLines::set_pending`].

use std::sync::{Arc, Mutex};

use vm_core::bus::lock_mutex;
use vm_core::{BusDevice, Irq, IrqError};

use super::{le_value, put_le, HartLines, IntcError, MIP_MEIP, MIP_SEIP};

/// The specification's limits: 1024 source ids and 15872 contexts.
pub const PLIC_MAX_SOURCES: usize = 1024;
pub const PLIC_MAX_CONTEXTS: usize = 15872;
const PRIORITY_MASK: u32 = 0b111;

const PENDING_BASE: u64 = 0x1000;
const ENABLE_BASE: u64 = 0x2000;
const ENABLE_STRIDE: u64 = 0x80;
const CONTEXT_BASE: u64 = 0x20_0000;
const CONTEXT_STRIDE: u64 = 0x1000;
const THRESHOLD: u64 = 0;
const CLAIM: u64 = 4;

/// The PLIC: a cheap handle to state shared by its bus mapping and its interrupt lines.
/// Clone it to map it on the bus and keep one for wiring devices.
#[derive(Clone)]
pub struct Plic {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    lines: Arc<dyn HartLines>,
}

/// Bitmaps are 32 sources a word, as the guest sees them.
struct State {
    sources: usize,
    words: usize,
    priority: Vec<u32>,
    pending: Vec<u32>,
    /// In service: claimed and not yet completed.
    claimed: Vec<u32>,
    /// Sources whose level input is high (re-pended at completion).
    level: Vec<u32>,
    /// `words` words per context.
    enable: Vec<u32>,
    threshold: Vec<u32>,
    /// What each context's line was last set to.
    line: Vec<bool>,
}

fn bit(id: usize) -> (usize, u32) {
    (id / 32, 1 << (id % 32))
}

impl State {
    /// The source a claim by `ctx` would get now.
    fn best(&self, ctx: usize) -> Option<usize> {
        let enable = &self.enable[ctx * self.words..(ctx + 1) * self.words];
        let mut best: Option<(usize, u32)> = None;
        for (w, &en) in enable.iter().enumerate() {
            let mut ready = self.pending[w] & !self.claimed[w] & en;
            while ready != 0 {
                let id = w * 32 + ready.trailing_zeros() as usize;
                ready &= ready - 1;
                let prio = self.priority[id];
                // Strictly greater: ties go to the lower id, found first.
                if prio > self.threshold[ctx] && best.is_none_or(|(_, p)| prio > p) {
                    best = Some((id, prio));
                }
            }
        }
        best.map(|(id, _)| id)
    }

    /// Brings every context's line in line with the state, telling the harts of changes.
    fn update(&mut self, lines: &dyn HartLines) {
        for ctx in 0..self.line.len() {
            let level = self.best(ctx).is_some();
            if level != self.line[ctx] {
                self.line[ctx] = level;
                let mip_bit = if ctx % 2 == 0 { MIP_MEIP } else { MIP_SEIP };
                lines.set_pending(ctx / 2, mip_bit, level);
            }
        }
    }

    fn claim(&mut self, ctx: usize) -> u32 {
        let Some(id) = self.best(ctx) else {
            return 0;
        };
        let (w, m) = bit(id);
        self.pending[w] &= !m;
        self.claimed[w] |= m;
        id as u32
    }

    fn complete(&mut self, id: usize) {
        if id >= self.sources {
            return;
        }
        let (w, m) = bit(id);
        if self.claimed[w] & m != 0 {
            self.claimed[w] &= !m;
            self.pending[w] |= self.level[w] & m;
        }
    }

    fn read(&mut self, offset: u64) -> u32 {
        let contexts = self.line.len() as u64;
        let words = self.words as u64;
        match offset {
            CONTEXT_BASE.. => {
                let ctx = (offset - CONTEXT_BASE) / CONTEXT_STRIDE;
                match ((offset - CONTEXT_BASE) % CONTEXT_STRIDE, ctx < contexts) {
                    (THRESHOLD, true) => self.threshold[ctx as usize],
                    (CLAIM, true) => self.claim(ctx as usize),
                    _ => 0,
                }
            }
            ENABLE_BASE.. => {
                let ctx = (offset - ENABLE_BASE) / ENABLE_STRIDE;
                let w = (offset - ENABLE_BASE) % ENABLE_STRIDE / 4;
                if ctx < contexts && w < words {
                    self.enable[(ctx * words + w) as usize]
                } else {
                    0
                }
            }
            PENDING_BASE.. => {
                let w = (offset - PENDING_BASE) / 4;
                self.pending.get(w as usize).copied().unwrap_or(0)
            }
            _ => self.priority.get(offset as usize / 4).copied().unwrap_or(0),
        }
    }

    fn write(&mut self, offset: u64, value: u32) {
        let contexts = self.line.len() as u64;
        let words = self.words as u64;
        match offset {
            CONTEXT_BASE.. => {
                let ctx = (offset - CONTEXT_BASE) / CONTEXT_STRIDE;
                match ((offset - CONTEXT_BASE) % CONTEXT_STRIDE, ctx < contexts) {
                    (THRESHOLD, true) => self.threshold[ctx as usize] = value & PRIORITY_MASK,
                    (CLAIM, true) => self.complete(value as usize),
                    _ => {}
                }
            }
            ENABLE_BASE.. => {
                let ctx = (offset - ENABLE_BASE) / ENABLE_STRIDE;
                let w = (offset - ENABLE_BASE) % ENABLE_STRIDE / 4;
                if ctx < contexts && w < words {
                    let valid = self.valid_bits(w as usize);
                    self.enable[(ctx * words + w) as usize] = value & valid;
                }
            }
            // Pending bits are read-only.
            PENDING_BASE.. => {}
            _ => {
                let id = offset as usize / 4;
                if id != 0 && id < self.sources {
                    self.priority[id] = value & PRIORITY_MASK;
                }
            }
        }
    }

    /// The bits of bitmap word `w` that name sources which exist (never source 0).
    fn valid_bits(&self, w: usize) -> u32 {
        let first = w * 32;
        let count = self.sources.saturating_sub(first).min(32);
        let mut mask = if count == 32 {
            u32::MAX
        } else {
            (1u32 << count) - 1
        };
        if w == 0 {
            mask &= !1;
        }
        mask
    }
}

impl Plic {
    /// A PLIC with `sources` source ids (counting the reserved source 0, so guests use
    /// 1..sources) and two contexts for each of `harts` harts; everything starts at 0
    /// (disabled, nothing pending).
    pub fn new(sources: usize, harts: usize, lines: Arc<dyn HartLines>) -> Result<Self, IntcError> {
        if !(1..=PLIC_MAX_SOURCES).contains(&sources) {
            return Err(IntcError::BadSourceCount {
                sources,
                max: PLIC_MAX_SOURCES,
            });
        }
        if harts > PLIC_MAX_CONTEXTS / 2 {
            return Err(IntcError::TooManyHarts {
                device: "PLIC",
                harts,
                max: PLIC_MAX_CONTEXTS / 2,
            });
        }
        let words = sources.div_ceil(32);
        let contexts = 2 * harts;
        let state = State {
            sources,
            words,
            priority: vec![0; sources],
            pending: vec![0; words],
            claimed: vec![0; words],
            level: vec![0; words],
            enable: vec![0; words * contexts],
            threshold: vec![0; contexts],
            line: vec![false; contexts],
        };
        Ok(Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                lines,
            }),
        })
    }

    /// An edge-triggered line into source `id`, for devices that raise an `Irq`.
    pub fn irq_line(&self, id: u32) -> Result<Arc<dyn Irq>, IntcError> {
        let sources = lock_mutex(&self.shared.state).sources;
        if id == 0 || id as usize >= sources {
            return Err(IntcError::NoSuchSource { id, sources });
        }
        Ok(Arc::new(PlicLine {
            plic: self.clone(),
            id,
        }))
    }

    /// Raises an edge on source `id`: it becomes pending (ignored for sources that do
    /// not exist).
    pub fn trigger(&self, id: u32) {
        self.with_source(id, |state, w, m| state.pending[w] |= m);
    }

    /// Sets the level input of source `id`: while high the source is pending, and it is
    /// pending again after each completion; going low withdraws a request not yet claimed.
    pub fn set_level(&self, id: u32, high: bool) {
        self.with_source(id, |state, w, m| {
            if high {
                state.level[w] |= m;
                state.pending[w] |= m;
            } else {
                state.level[w] &= !m;
                state.pending[w] &= !m;
            }
        });
    }

    fn with_source(&self, id: u32, change: impl FnOnce(&mut State, usize, u32)) {
        let mut state = lock_mutex(&self.shared.state);
        let id = id as usize;
        if id == 0 || id >= state.sources {
            log::warn!("PLIC: source {id} does not exist");
            return;
        }
        let (w, m) = bit(id);
        change(&mut state, w, m);
        state.update(self.shared.lines.as_ref());
    }
}

impl BusDevice for Plic {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = if data.len() == 4 && offset.is_multiple_of(4) {
            let mut state = lock_mutex(&self.shared.state);
            let value = state.read(offset);
            // A claim changes what is presented.
            state.update(self.shared.lines.as_ref());
            value
        } else {
            0
        };
        put_le(data, u64::from(value));
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if data.len() == 4 && offset.is_multiple_of(4) {
            let mut state = lock_mutex(&self.shared.state);
            state.write(offset, le_value(data) as u32);
            state.update(self.shared.lines.as_ref());
        }
    }
}

/// One source's edge-triggered input.
struct PlicLine {
    plic: Plic,
    id: u32,
}

impl Irq for PlicLine {
    fn trigger(&self) -> Result<(), IrqError> {
        self.plic.trigger(self.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::riscv::mock::{Event, RecordingLines};

    const UART: u32 = 10;
    const DISK: u32 = 3;

    fn plic(harts: usize) -> (Plic, Arc<RecordingLines>) {
        let lines = Arc::new(RecordingLines::default());
        (Plic::new(96, harts, lines.clone()).unwrap(), lines)
    }

    fn rd(plic: &mut Plic, offset: u64) -> u32 {
        let mut data = [0xaa; 4];
        plic.read(offset, &mut data);
        u32::from_le_bytes(data)
    }

    fn wr(plic: &mut Plic, offset: u64, value: u32) {
        plic.write(offset, &value.to_le_bytes());
    }

    fn priority(plic: &mut Plic, id: u32, prio: u32) {
        wr(plic, 4 * u64::from(id), prio);
    }

    fn enable(plic: &mut Plic, ctx: u64, id: u32) {
        let offset = 0x2000 + 0x80 * ctx + 4 * u64::from(id / 32);
        let old = rd(plic, offset);
        wr(plic, offset, old | 1 << (id % 32));
    }

    fn threshold(plic: &mut Plic, ctx: u64, value: u32) {
        wr(plic, 0x20_0000 + 0x1000 * ctx, value);
    }

    fn claim(plic: &mut Plic, ctx: u64) -> u32 {
        rd(plic, 0x20_0004 + 0x1000 * ctx)
    }

    fn complete(plic: &mut Plic, ctx: u64, id: u32) {
        wr(plic, 0x20_0004 + 0x1000 * ctx, id);
    }

    fn pending(plic: &mut Plic, id: u32) -> bool {
        rd(plic, 0x1000 + 4 * u64::from(id / 32)) & 1 << (id % 32) != 0
    }

    fn line(hart: usize, bit: u32, level: bool) -> Event {
        Event::Pending { hart, bit, level }
    }

    #[test]
    fn priority_enable_and_threshold_gate_the_line() {
        let (mut p, lines) = plic(1);
        p.trigger(UART);
        assert!(pending(&mut p, UART));
        // Priority 0 never interrupts, even when enabled.
        enable(&mut p, 0, UART);
        assert_eq!(lines.take(), []);
        assert_eq!(claim(&mut p, 0), 0);
        // A priority that does not exceed the threshold is masked too.
        threshold(&mut p, 0, 2);
        priority(&mut p, UART, 2);
        assert_eq!(
            lines.take(),
            [],
            "priority equal to the threshold is masked"
        );
        priority(&mut p, UART, 3);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, true)]);
        threshold(&mut p, 0, 3);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, false)]);
        threshold(&mut p, 0, 0);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, true)]);
        // Disabling takes the line down; the source stays pending.
        wr(&mut p, 0x2000, 0);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, false)]);
        assert!(pending(&mut p, UART));
        // Registers read back what was written (priorities and thresholds keep 3 bits).
        priority(&mut p, UART, 0xff);
        assert_eq!(rd(&mut p, 4 * u64::from(UART)), 7);
        threshold(&mut p, 0, 9);
        assert_eq!(rd(&mut p, 0x20_0000), 1);
        assert_eq!(lines.take(), []);
    }

    #[test]
    fn claim_takes_the_source_and_complete_lets_it_back() {
        let (mut p, lines) = plic(1);
        priority(&mut p, UART, 1);
        enable(&mut p, 0, UART);
        p.trigger(UART);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, true)]);
        assert_eq!(claim(&mut p, 0), UART);
        assert!(!pending(&mut p, UART));
        assert_eq!(lines.take(), [line(0, MIP_MEIP, false)]);
        assert_eq!(claim(&mut p, 0), 0, "nothing else is pending");
        complete(&mut p, 0, UART);
        assert_eq!(lines.take(), [], "an edge is not re-pended by completion");
        p.trigger(UART);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, true)]);
        assert_eq!(claim(&mut p, 0), UART);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, false)]);
    }

    #[test]
    fn an_edge_while_in_service_waits_for_completion() {
        let (mut p, lines) = plic(1);
        priority(&mut p, UART, 1);
        enable(&mut p, 0, UART);
        p.trigger(UART);
        assert_eq!(claim(&mut p, 0), UART);
        lines.take();
        p.trigger(UART);
        assert!(pending(&mut p, UART), "remembered");
        assert_eq!(lines.take(), [], "but not presented");
        assert_eq!(claim(&mut p, 0), 0);
        // Completing another, unclaimed id changes nothing.
        complete(&mut p, 0, DISK);
        assert_eq!(lines.take(), []);
        complete(&mut p, 0, UART);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, true)]);
        assert_eq!(claim(&mut p, 0), UART);
    }

    #[test]
    fn sources_are_claimed_in_priority_order() {
        let (mut p, lines) = plic(1);
        priority(&mut p, DISK, 1);
        priority(&mut p, UART, 5);
        priority(&mut p, 40, 5);
        for id in [DISK, UART, 40] {
            enable(&mut p, 0, id);
        }
        p.trigger(DISK);
        p.trigger(40);
        p.trigger(UART);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, true)]);
        // Highest priority first; UART and 40 tie, so the lower id wins.
        assert_eq!(claim(&mut p, 0), UART);
        assert_eq!(claim(&mut p, 0), 40);
        assert_eq!(lines.take(), []);
        assert_eq!(claim(&mut p, 0), DISK);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, false)]);
        assert_eq!(claim(&mut p, 0), 0);
    }

    #[test]
    fn contexts_map_to_each_harts_meip_and_seip() {
        let (mut p, lines) = plic(2);
        priority(&mut p, UART, 1);
        enable(&mut p, 1, UART);
        p.trigger(UART);
        assert_eq!(lines.take(), [line(0, MIP_SEIP, true)]);
        enable(&mut p, 2, UART);
        assert_eq!(lines.take(), [line(1, MIP_MEIP, true)]);
        enable(&mut p, 3, UART);
        assert_eq!(lines.take(), [line(1, MIP_SEIP, true)]);
        // Hart 1's S mode claims it: every context that presented it drops.
        assert_eq!(claim(&mut p, 3), UART);
        assert_eq!(
            lines.take(),
            [
                line(0, MIP_SEIP, false),
                line(1, MIP_MEIP, false),
                line(1, MIP_SEIP, false)
            ]
        );
        // Context 4 does not exist on a two-hart PLIC.
        assert_eq!(claim(&mut p, 4), 0);
    }

    #[test]
    fn a_level_stays_pending_until_it_drops() {
        let (mut p, lines) = plic(1);
        priority(&mut p, DISK, 1);
        enable(&mut p, 0, DISK);
        p.set_level(DISK, true);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, true)]);
        assert_eq!(claim(&mut p, 0), DISK);
        lines.take();
        // Completed while still high: pending again.
        complete(&mut p, 0, DISK);
        assert_eq!(lines.take(), [line(0, MIP_MEIP, true)]);
        assert_eq!(claim(&mut p, 0), DISK);
        lines.take();
        // The device was serviced: the level drops before completion.
        p.set_level(DISK, false);
        complete(&mut p, 0, DISK);
        assert_eq!(lines.take(), []);
        assert!(!pending(&mut p, DISK));
        // A level that drops before the claim withdraws the request.
        p.set_level(DISK, true);
        p.set_level(DISK, false);
        assert_eq!(
            lines.take(),
            [line(0, MIP_MEIP, true), line(0, MIP_MEIP, false)]
        );
        assert_eq!(claim(&mut p, 0), 0);
    }

    #[test]
    fn irq_lines_raise_their_source() {
        let (mut p, lines) = plic(1);
        priority(&mut p, UART, 1);
        enable(&mut p, 0, UART);
        let irq = p.irq_line(UART).unwrap();
        irq.trigger().unwrap();
        assert_eq!(lines.take(), [line(0, MIP_MEIP, true)]);
        assert_eq!(claim(&mut p, 0), UART);
        assert!(p.irq_line(0).is_err());
        assert!(p.irq_line(96).is_err());
        assert!(p.irq_line(95).is_ok());
    }

    #[test]
    fn reserved_and_missing_sources_stay_quiet() {
        let (mut p, lines) = plic(1);
        // Source 0 cannot get a priority or an enable bit; bits past the last source
        // cannot be enabled.
        priority(&mut p, 0, 7);
        assert_eq!(rd(&mut p, 0), 0);
        wr(&mut p, 0x2000, u32::MAX);
        assert_eq!(rd(&mut p, 0x2000), !1);
        wr(&mut p, 0x2008, u32::MAX);
        assert_eq!(rd(&mut p, 0x2008), u32::MAX, "sources 64..96 exist");
        wr(&mut p, 0x200c, u32::MAX);
        assert_eq!(rd(&mut p, 0x200c), 0);
        p.trigger(0);
        p.trigger(96);
        assert_eq!(rd(&mut p, 0x1000), 0);
        // Pending bits are read-only; only aligned 32-bit accesses count.
        wr(&mut p, 0x1000, u32::MAX);
        assert_eq!(rd(&mut p, 0x1000), 0);
        p.write(4 * u64::from(UART), &[1]);
        assert_eq!(rd(&mut p, 4 * u64::from(UART)), 0);
        assert_eq!(lines.take(), []);
        assert!(Plic::new(0, 1, lines.clone()).is_err());
        assert!(Plic::new(1025, 1, lines.clone()).is_err());
        assert!(Plic::new(96, PLIC_MAX_CONTEXTS / 2 + 1, lines).is_err());
    }
}
