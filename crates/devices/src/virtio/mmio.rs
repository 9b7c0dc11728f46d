//! The virtio-mmio transport, version 2 (virtio 1.x section 4.2.2).
//!
//! Registers are 32 bits wide; the device-specific configuration space from 0x100 may be
//! read at any width. Queue registers are writable only between FEATURES_OK and
//! DRIVER_OK: once the device serves a queue its size and addresses are frozen, and a
//! driver's later writes are ignored (and logged).

use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_core::{BusDevice, GuestMemory, Irq};
use vmm_sys_util::eventfd::EventFd;

use super::{
    feature, status, ActivateError, Activation, GuestWrites, Interrupt, QueueState, VirtioDevice,
};

/// Register offsets.
mod reg {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const SHM_LEN_LOW: u64 = 0x0b0;
    pub const SHM_LEN_HIGH: u64 = 0x0b4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    pub const CONFIG: u64 = 0x100;
}

/// "virt" in little-endian ASCII.
const MAGIC: u32 = 0x7472_6976;
/// Tandem's virtio vendor id (any value; Linux does not match on it).
const VENDOR: u32 = 0x544e_4454;
/// Size of the register window a transport needs.
pub const MMIO_SIZE: u64 = 0x1000;
/// Offset of the queue-notify register, where KVM's ioeventfds are registered.
pub const NOTIFY_OFFSET: u64 = reg::QUEUE_NOTIFY;

/// A paused device's transport and queues as plain data: what a snapshot saves and a
/// restore puts back (the next issue serialises it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioState {
    pub device_type: u32,
    pub transport: TransportState,
    /// Every queue, by index: size, ring addresses, ready, and where the device is in the
    /// rings (`next_avail`, `next_used`).
    pub queues: Vec<QueueState>,
    pub needs_reset: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    #[error("the device is running: pause it first")]
    Running,
    #[error("saved state is for device type {saved}, not {this}")]
    WrongDevice { saved: u32, this: u32 },
    #[error("saved state has {saved} queues, the device {this}")]
    WrongQueues { saved: usize, this: usize },
    #[error("saved queue {0} is invalid")]
    BadQueue(usize),
}

/// The transport's registers as plain data (for snapshots).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportState {
    pub status: u32,
    pub device_features_sel: u32,
    pub driver_features_sel: u32,
    pub driver_features: u64,
    pub queue_sel: u32,
    pub interrupt_status: u32,
    pub config_generation: u32,
}

pub struct MmioTransport {
    device: Box<dyn VirtioDevice>,
    memory: GuestMemory,
    writes: Arc<dyn GuestWrites>,
    interrupt: Arc<Interrupt>,
    notify: Vec<Arc<EventFd>>,
    queues: Vec<Queue>,
    state: TransportState,
    active: bool,
    /// Paused while active: the queues as the device left them, to resume with.
    paused: Option<Vec<Option<QueueState>>>,
}

impl MmioTransport {
    pub fn new(
        device: Box<dyn VirtioDevice>,
        memory: GuestMemory,
        line: Arc<dyn Irq>,
        writes: Arc<dyn GuestWrites>,
    ) -> std::io::Result<Self> {
        let queues = device
            .queue_max_sizes()
            .iter()
            .map(|&max| Queue::new(max).map_err(|e| std::io::Error::other(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let notify = queues
            .iter()
            .map(|_| EventFd::new(libc::EFD_NONBLOCK).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MmioTransport {
            device,
            memory,
            writes,
            interrupt: Arc::new(Interrupt::new(line)),
            notify,
            queues,
            state: TransportState::default(),
            active: false,
            paused: None,
        })
    }

    /// The eventfd each queue's notification signals, by queue index: a machine may
    /// register them as KVM ioeventfds at [`NOTIFY_OFFSET`] with the index as data.
    pub fn queue_notify_events(&self) -> &[Arc<EventFd>] {
        &self.notify
    }

    pub fn device_type(&self) -> u32 {
        self.device.device_type()
    }

    pub fn state(&self) -> TransportState {
        TransportState {
            interrupt_status: self.interrupt.status(),
            config_generation: self.interrupt.config_generation(),
            ..self.state.clone()
        }
    }

    fn offered_features(&self) -> u64 {
        self.device.features()
            | feature::VERSION_1
            | feature::RING_EVENT_IDX
            | feature::RING_INDIRECT_DESC
    }

    fn status(&self) -> u32 {
        let mut s = self.state.status;
        if self.interrupt.needs_reset() {
            s |= status::DEVICE_NEEDS_RESET;
        }
        s
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.state.queue_sel as usize)
    }

    /// Queue registers may change only while the driver sets the device up.
    fn queue_writable(&self) -> bool {
        let s = self.state.status;
        s & status::FEATURES_OK != 0 && s & status::DRIVER_OK == 0 && s & status::FAILED == 0
    }

    fn read_reg(&self, offset: u64) -> u32 {
        let queue = self.queues.get(self.state.queue_sel as usize);
        match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => 2,
            reg::DEVICE_ID => self.device.device_type(),
            reg::VENDOR_ID => VENDOR,
            reg::DEVICE_FEATURES => match self.state.device_features_sel {
                0 => self.offered_features() as u32,
                1 => (self.offered_features() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => queue.map_or(0, |q| u32::from(q.max_size())),
            reg::QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready())),
            reg::INTERRUPT_STATUS => self.interrupt.status(),
            reg::STATUS => self.status(),
            reg::QUEUE_DESC_LOW => queue.map_or(0, |q| q.desc_table() as u32),
            reg::QUEUE_DESC_HIGH => queue.map_or(0, |q| (q.desc_table() >> 32) as u32),
            reg::QUEUE_DRIVER_LOW => queue.map_or(0, |q| q.avail_ring() as u32),
            reg::QUEUE_DRIVER_HIGH => queue.map_or(0, |q| (q.avail_ring() >> 32) as u32),
            reg::QUEUE_DEVICE_LOW => queue.map_or(0, |q| q.used_ring() as u32),
            reg::QUEUE_DEVICE_HIGH => queue.map_or(0, |q| (q.used_ring() >> 32) as u32),
            // No shared memory regions: a length of all ones says so.
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH => u32::MAX,
            reg::CONFIG_GENERATION => self.interrupt.config_generation(),
            _ => 0,
        }
    }

    fn write_reg(&mut self, offset: u64, v: u32) {
        match offset {
            reg::DEVICE_FEATURES_SEL => self.state.device_features_sel = v,
            reg::DRIVER_FEATURES_SEL => self.state.driver_features_sel = v,
            reg::DRIVER_FEATURES => {
                let s = self.state.status;
                if s & status::DRIVER == 0 || s & status::FEATURES_OK != 0 {
                    log::debug!("virtio-mmio: driver features written outside negotiation");
                    return;
                }
                let f = &mut self.state.driver_features;
                match self.state.driver_features_sel {
                    0 => *f = (*f & !0xffff_ffff) | u64::from(v),
                    1 => *f = (*f & 0xffff_ffff) | (u64::from(v) << 32),
                    _ => {}
                }
            }
            reg::QUEUE_SEL => self.state.queue_sel = v,
            reg::QUEUE_NOTIFY => {
                if let Some(evt) = self.notify.get(v as usize) {
                    let _ = evt.write(1);
                }
            }
            reg::INTERRUPT_ACK => self.interrupt.ack(v),
            reg::STATUS => self.write_status(v),
            reg::QUEUE_NUM
            | reg::QUEUE_READY
            | reg::QUEUE_DESC_LOW
            | reg::QUEUE_DESC_HIGH
            | reg::QUEUE_DRIVER_LOW
            | reg::QUEUE_DRIVER_HIGH
            | reg::QUEUE_DEVICE_LOW
            | reg::QUEUE_DEVICE_HIGH => self.write_queue_reg(offset, v),
            _ => log::debug!("virtio-mmio: write to read-only or unknown register {offset:#x}"),
        }
    }

    fn write_queue_reg(&mut self, offset: u64, v: u32) {
        if !self.queue_writable() {
            log::debug!("virtio-mmio: queue register {offset:#x} written outside setup; ignored");
            return;
        }
        let Some(q) = self.selected_queue() else {
            return;
        };
        match offset {
            reg::QUEUE_NUM => q.set_size(v as u16),
            reg::QUEUE_READY => q.set_ready(v == 1),
            reg::QUEUE_DESC_LOW => q.set_desc_table_address(Some(v), None),
            reg::QUEUE_DESC_HIGH => q.set_desc_table_address(None, Some(v)),
            reg::QUEUE_DRIVER_LOW => q.set_avail_ring_address(Some(v), None),
            reg::QUEUE_DRIVER_HIGH => q.set_avail_ring_address(None, Some(v)),
            reg::QUEUE_DEVICE_LOW => q.set_used_ring_address(Some(v), None),
            reg::QUEUE_DEVICE_HIGH => q.set_used_ring_address(None, Some(v)),
            _ => {}
        }
    }

    fn write_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let old = self.state.status;
        // Status bits are only ever added, in order (3.1.1); a driver clearing one is
        // confused, and the spec has it reset the device instead.
        if v & old != old {
            log::debug!("virtio-mmio: driver cleared status bits {old:#x} -> {v:#x}");
            return;
        }
        let mut v = v;
        if v & status::FEATURES_OK != 0 && old & status::FEATURES_OK == 0 {
            let accepted = self.state.driver_features;
            let ok = accepted & !self.offered_features() == 0 && accepted & feature::VERSION_1 != 0;
            if !ok {
                // Leaving FEATURES_OK clear tells the driver the subset is unusable.
                v &= !status::FEATURES_OK;
            }
        }
        self.state.status = v;
        if v & status::DRIVER_OK != 0 && old & status::DRIVER_OK == 0 && !self.active {
            self.activate();
        }
    }

    fn activate(&mut self) {
        let event_idx = self.state.driver_features & feature::RING_EVENT_IDX != 0;
        // The device gets its own copies; the transport keeps answering register reads
        // from the frozen originals.
        let states = self
            .queues
            .iter()
            .map(|q| {
                let mut st = q.state();
                st.event_idx_enabled = event_idx;
                Some(st)
            })
            .collect();
        if let Err(e) = self.activate_with(states) {
            log::warn!(
                "virtio-mmio: device type {}: {e}",
                self.device.device_type()
            );
            self.state.status |= status::FAILED;
            self.interrupt.signal_needs_reset();
        }
    }

    fn activate_with(&mut self, states: Vec<Option<QueueState>>) -> Result<(), ActivateError> {
        let memory = &self.memory;
        let queues = states
            .into_iter()
            .map(|st| {
                let q = Queue::try_from(st?).ok()?;
                (q.ready() && q.is_valid(memory)).then_some(q)
            })
            .collect();
        let activation = Activation {
            memory: self.memory.clone(),
            queues,
            notify: self.notify.clone(),
            interrupt: self.interrupt.clone(),
            writes: self.writes.clone(),
            features: self.state.driver_features,
        };
        self.device.activate(activation)?;
        self.active = true;
        Ok(())
    }

    /// Stops the device's worker (the VM is pausing): no request in flight, no access to
    /// guest memory until [`MmioTransport::resume`].
    pub fn pause(&mut self) {
        if self.active {
            self.paused = Some(self.device.pause());
            self.active = false;
        }
    }

    /// Restarts a paused device where it stopped.
    pub fn resume(&mut self) -> Result<(), ActivateError> {
        match self.paused.take() {
            Some(states) => self.activate_with(states),
            None => Ok(()),
        }
    }

    /// The paused (or never started) device's state.
    pub fn save(&self) -> Result<VirtioState, StateError> {
        if self.active {
            return Err(StateError::Running);
        }
        let queues = self
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| {
                // Positions come from the device's copy while it is paused mid-run.
                match self
                    .paused
                    .as_ref()
                    .and_then(|p| p.get(i).copied().flatten())
                {
                    Some(st) => st,
                    None => q.state(),
                }
            })
            .collect();
        Ok(VirtioState {
            device_type: self.device.device_type(),
            transport: self.state(),
            queues,
            needs_reset: self.interrupt.needs_reset(),
        })
    }

    /// Puts saved state back into a transport that has not started (a fresh machine);
    /// a device that was running is left paused: [`MmioTransport::resume`] restarts it.
    pub fn restore(&mut self, saved: &VirtioState) -> Result<(), StateError> {
        if self.active {
            return Err(StateError::Running);
        }
        let this = self.device.device_type();
        if saved.device_type != this {
            return Err(StateError::WrongDevice {
                saved: saved.device_type,
                this,
            });
        }
        if saved.queues.len() != self.queues.len() {
            return Err(StateError::WrongQueues {
                saved: saved.queues.len(),
                this: self.queues.len(),
            });
        }
        let mut queues = Vec::with_capacity(saved.queues.len());
        for (i, st) in saved.queues.iter().enumerate() {
            if st.max_size != self.queues[i].max_size() {
                return Err(StateError::BadQueue(i));
            }
            queues.push(Queue::try_from(*st).map_err(|_| StateError::BadQueue(i))?);
        }
        self.queues = queues;
        let t = &saved.transport;
        self.state = TransportState {
            interrupt_status: 0,
            config_generation: 0,
            ..t.clone()
        };
        self.interrupt
            .restore(t.interrupt_status, t.config_generation, saved.needs_reset);
        self.paused = (t.status & status::DRIVER_OK != 0 && t.status & status::FAILED == 0)
            .then(|| saved.queues.iter().map(|q| Some(*q)).collect());
        Ok(())
    }

    fn reset(&mut self) {
        if self.active {
            self.device.reset();
            self.active = false;
        }
        self.paused = None;
        for q in &mut self.queues {
            q.reset();
        }
        for evt in &self.notify {
            super::worker::drain(evt);
        }
        self.interrupt.reset();
        self.state = TransportState::default();
    }
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= reg::CONFIG {
            self.device.read_config(offset - reg::CONFIG, data);
            return;
        }
        if data.len() != 4 || !offset.is_multiple_of(4) {
            data.fill(0);
            return;
        }
        data.copy_from_slice(&self.read_reg(offset).to_le_bytes());
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= reg::CONFIG {
            self.device.write_config(offset - reg::CONFIG, data);
            return;
        }
        if data.len() != 4 || !offset.is_multiple_of(4) {
            log::debug!(
                "virtio-mmio: {}-byte write at {offset:#x} ignored",
                data.len()
            );
            return;
        }
        let v = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        self.write_reg(offset, v);
    }
}
