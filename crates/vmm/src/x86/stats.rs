//! Plain counters of what the vCPUs did, summed over all of them (`tandem run --stats`).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct VcpuStats {
    io_exits: AtomicU64,
    hlt_exits: AtomicU64,
    irq_window_exits: AtomicU64,
    injected_irqs: AtomicU64,
}

/// One counter of [`VcpuStats`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    IoExit,
    HltExit,
    IrqWindowExit,
    InjectedIrq,
}

impl VcpuStats {
    pub(crate) fn count(&self, counter: Counter) {
        let c = match counter {
            Counter::IoExit => &self.io_exits,
            Counter::HltExit => &self.hlt_exits,
            Counter::IrqWindowExit => &self.irq_window_exits,
            Counter::InjectedIrq => &self.injected_irqs,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Port and MMIO exits served in user space.
    pub fn io_exits(&self) -> u64 {
        self.io_exits.load(Ordering::Relaxed)
    }
    /// `hlt` exits (only with `--irqchip userspace`).
    pub fn hlt_exits(&self) -> u64 {
        self.hlt_exits.load(Ordering::Relaxed)
    }
    /// Interrupt-window exits (only with `--irqchip userspace`).
    pub fn irq_window_exits(&self) -> u64 {
        self.irq_window_exits.load(Ordering::Relaxed)
    }
    /// Interrupts Tandem injected with KVM_INTERRUPT (only with `--irqchip userspace`).
    pub fn injected_irqs(&self) -> u64 {
        self.injected_irqs.load(Ordering::Relaxed)
    }

    /// One line, `key=value` pairs, as `tandem-riscv64 --stats` prints them.
    pub fn summary(&self) -> String {
        format!(
            "io_exits={} hlt_exits={} irq_window_exits={} injected_irqs={}",
            self.io_exits(),
            self.hlt_exits(),
            self.irq_window_exits(),
            self.injected_irqs()
        )
    }
}
