//! virtio-mmio devices on the x86 KVM machine.
//!
//! Transport `n` sits at `MMIO_DEVICES_START + n * 4 KiB` and raises ISA IRQ
//! `SLOT_IRQS[n]` (through an irqfd, or an input of Tandem's PIC with `--irqchip
//! userspace`). x86 has no device tree: Linux learns of each one from
//! `virtio_mmio.device=4K@ADDR:IRQ` on its command line. Each queue's notify eventfd is
//! registered as a KVM ioeventfd on the transport's QueueNotify register with the queue
//! index as data, so a notify wakes the device's worker without leaving the kernel.

use std::sync::{Arc, Mutex};

use devices::virtio::mmio::{MmioTransport, MMIO_SIZE, NOTIFY_OFFSET};
use kvm::x86::layout::MMIO_DEVICES_START;
use kvm::Vm;
use vm_core::Bus;

use super::MachineError;

/// ISA IRQs free for virtio-mmio, one per slot. Taken: 0 (PIT), 1 and 12 (i8042, which
/// Linux's driver claims), 2 (cascade), 3 and 4 (COM2/COM4, COM1/COM3), 8 (RTC), 9 (the
/// ACPI SCI our FADT names), 13 (FPU). Below 16 so the same lines exist on the 8259A.
pub const SLOT_IRQS: [u32; 7] = [5, 6, 7, 10, 11, 14, 15];

/// Guest physical address of slot `slot`'s registers.
pub fn slot_base(slot: usize) -> u64 {
    MMIO_DEVICES_START + slot as u64 * MMIO_SIZE
}

/// The kernel command line entries that announce `count` transports.
pub fn cmdline_entries(count: usize) -> String {
    (0..count.min(SLOT_IRQS.len()))
        .map(|slot| {
            format!(
                " virtio_mmio.device=4K@{:#x}:{}",
                slot_base(slot),
                SLOT_IRQS[slot]
            )
        })
        .collect()
}

/// Maps each transport in its slot and routes its queue notifies through ioeventfds.
pub fn attach(
    vm: &Vm,
    transports: &[Arc<Mutex<MmioTransport>>],
    mmio: &mut Bus,
) -> Result<(), MachineError> {
    for (slot, transport) in transports.iter().enumerate() {
        let base = slot_base(slot);
        mmio.insert(transport.clone(), base, MMIO_SIZE)?;
        let t = vm_core::bus::lock_mutex(transport);
        for (queue, evt) in t.queue_notify_events().iter().enumerate() {
            vm.register_ioevent(evt, base + NOTIFY_OFFSET, Some(queue as u32))?;
        }
        log::debug!(
            "virtio-mmio slot {slot}: device type {} at {base:#x}, IRQ {}, {} queue notify ioeventfd(s)",
            t.device_type(),
            SLOT_IRQS[slot],
            t.queue_notify_events().len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announces_each_slot_on_the_command_line() {
        assert_eq!(cmdline_entries(0), "");
        assert_eq!(
            cmdline_entries(2),
            " virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6"
        );
    }
}
