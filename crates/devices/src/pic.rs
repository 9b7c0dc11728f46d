//! The PC/AT's two cascaded Intel 8259A interrupt controllers, for machines that keep
//! interrupt state in user space (the KVM machine's `--irqchip userspace`).
//!
//! Ports 0x20-0x21 (master) and 0xa0-0xa1 (slave). Modelled: the ICW1-ICW4 init
//! sequence (vector base from ICW2, auto-EOI and special fully nested mode from ICW4),
//! OCW1 masks, OCW2 non-specific and specific EOI, OCW3 reads of IRR/ISR and the poll
//! command, edge-triggered requests, fixed priority (IRQ 0 highest), the slave cascaded
//! on the master's IR2. Not modelled, because no x86 guest we run needs them: priority
//! rotation (rotate commands act as their EOI part), special mask mode, level-triggered
//! mode (ICW1 LTIM and the ELCR ports), 8080 call mode. ICW3 is read and ignored: the
//! cascade is wired as on every PC.
//!
//! [`Pic`] shares the model between the vCPU thread (ports, acknowledge) and device
//! threads (lines raised through `vm_core::Irq`), and tells the machine when the output
//! to the CPU rises so it can get vCPU 0 out of the guest.

use std::sync::{Arc, Mutex};

use vm_core::bus::{lock_mutex, SharedDevice};
use vm_core::{BusDevice, Irq, IrqError};

pub const MASTER_PORT: u64 = 0x20;
pub const SLAVE_PORT: u64 = 0xa0;
/// Each chip has a command port (offset 0) and a data port (offset 1).
pub const PORT_LEN: u64 = 2;
/// The master input the slave's output is wired to.
const CASCADE_IRQ: u8 = 2;
/// ISA IRQ 2 does not exist on a PC/AT: the bus pin is wired to the slave's IR1.
const IRQ2_REDIRECT: u8 = 9;

const ICW1: u8 = 0x10;
const ICW1_IC4: u8 = 0x01;
const ICW1_SINGLE: u8 = 0x02;
const OCW3: u8 = 0x08;
const OCW3_POLL: u8 = 0x04;
const OCW3_READ_REGISTER: u8 = 0x02;
const OCW3_READ_ISR: u8 = 0x01;
const ICW4_AUTO_EOI: u8 = 0x02;
const ICW4_SFNM: u8 = 0x10;
/// Poll command answer: an interrupt is pending, its level in bits 2:0.
const POLL_PENDING: u8 = 0x80;

/// Where a chip is in its initialisation sequence.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Init {
    #[default]
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Debug, Default, Clone)]
struct Chip {
    /// Interrupt request register: inputs that saw an edge and are not acknowledged.
    irr: u8,
    /// In-service register: acknowledged and not yet ended by an EOI.
    isr: u8,
    /// Interrupt mask register (OCW1).
    imr: u8,
    /// ICW2: IRQ n arrives as vector `vector_base + n`.
    vector_base: u8,
    init: Init,
    icw4_needed: bool,
    single: bool,
    auto_eoi: bool,
    special_fully_nested: bool,
    read_isr: bool,
    poll: bool,
}

impl Chip {
    /// The input that would be acknowledged now, if any. `cascade` holds requests from a
    /// slave (only the master gets any): under special fully nested mode a slave's
    /// request is let through even while the cascade input is in service, so the slave
    /// can nest its own higher-priority interrupts.
    fn pending(&self, cascade: u8) -> Option<u8> {
        let requests = (self.irr | cascade) & !self.imr;
        if requests == 0 {
            return None;
        }
        let irq = requests.trailing_zeros() as u8;
        let from_slave = cascade & (1 << irq) != 0;
        let isr = if self.special_fully_nested && from_slave {
            self.isr & !(1 << irq)
        } else {
            self.isr
        };
        // Fixed priority: lower number first; trailing_zeros of 0 is 8, below everything.
        (u32::from(irq) < isr.trailing_zeros()).then_some(irq)
    }

    fn acknowledge(&mut self, irq: u8) {
        self.irr &= !(1 << irq);
        if !self.auto_eoi {
            self.isr |= 1 << irq;
        }
    }

    fn write_command(&mut self, value: u8) {
        if value & ICW1 != 0 {
            // Initialisation clears the mask, in-service and edge state, and reads IRR.
            *self = Self {
                vector_base: self.vector_base,
                init: Init::Icw2,
                icw4_needed: value & ICW1_IC4 != 0,
                single: value & ICW1_SINGLE != 0,
                ..Self::default()
            };
        } else if value & OCW3 != 0 {
            self.poll = value & OCW3_POLL != 0;
            if value & OCW3_READ_REGISTER != 0 {
                self.read_isr = value & OCW3_READ_ISR != 0;
            }
        } else {
            // OCW2: bits 7:5 are R, SL, EOI; bits 2:0 the level for specific commands.
            match value >> 5 {
                // Non-specific EOI (and rotate on it): end the highest in service.
                0b001 | 0b101 => self.isr &= self.isr.wrapping_sub(1),
                // Specific EOI (and rotate on it).
                0b011 | 0b111 => self.isr &= !(1 << (value & 7)),
                // Rotation in auto-EOI mode, set priority, no operation.
                _ => log::debug!("8259A: OCW2 {value:#04x} not modelled (fixed priority)"),
            }
        }
    }

    fn write_data(&mut self, value: u8) {
        self.init = match self.init {
            Init::Ready => {
                self.imr = value;
                Init::Ready
            }
            Init::Icw2 => {
                self.vector_base = value & 0xf8;
                match (self.single, self.icw4_needed) {
                    (false, _) => Init::Icw3,
                    (true, true) => Init::Icw4,
                    (true, false) => Init::Ready,
                }
            }
            Init::Icw3 if self.icw4_needed => Init::Icw4,
            Init::Icw3 => Init::Ready,
            Init::Icw4 => {
                self.auto_eoi = value & ICW4_AUTO_EOI != 0;
                self.special_fully_nested = value & ICW4_SFNM != 0;
                Init::Ready
            }
        }
    }
}

/// The master and the slave: the interrupt state of a PC.
#[derive(Debug, Default, Clone)]
pub struct DualPic {
    master: Chip,
    slave: Chip,
}

impl DualPic {
    pub fn new() -> Self {
        Self::default()
    }

    /// The slave's output, seen by the master as a request on its cascade input.
    fn cascade(&self) -> u8 {
        if self.slave.pending(0).is_some() {
            1 << CASCADE_IRQ
        } else {
            0
        }
    }

    /// An edge on ISA IRQ `irq` (0-15; 2 arrives as 9, as on a PC/AT). Latched in IRR
    /// even while masked, as the 8259A does.
    pub fn raise(&mut self, irq: u8) {
        let irq = if irq == CASCADE_IRQ {
            IRQ2_REDIRECT
        } else {
            irq
        };
        match irq {
            0..=7 => self.master.irr |= 1 << irq,
            8..=15 => self.slave.irr |= 1 << (irq - 8),
            _ => log::warn!("8259A: IRQ {irq} does not exist"),
        }
    }

    /// The INTR output to the CPU: an unmasked request of higher priority than anything
    /// in service.
    pub fn output(&self) -> bool {
        self.master.pending(self.cascade()).is_some()
    }

    /// The CPU's interrupt acknowledge cycle: the vector of the highest-priority request,
    /// which moves from IRR to ISR (on both chips for a slave's interrupt). None when
    /// [`DualPic::output`] is low.
    pub fn acknowledge(&mut self) -> Option<u8> {
        let irq = self.master.pending(self.cascade())?;
        self.master.acknowledge(irq);
        if irq != CASCADE_IRQ {
            return Some(self.master.vector_base.wrapping_add(irq));
        }
        // The cascade input was chosen because the slave's output is high.
        let slave_irq = self.slave.pending(0).unwrap_or(7);
        self.slave.acknowledge(slave_irq);
        Some(self.slave.vector_base.wrapping_add(slave_irq))
    }

    /// A port read; `slave` selects the chip, `offset` its command (0) or data (1) port.
    pub fn read(&mut self, slave: bool, offset: u64) -> u8 {
        let cascade = if slave { 0 } else { self.cascade() };
        let chip = self.chip(slave);
        match offset {
            0 if chip.poll => {
                chip.poll = false;
                match chip.pending(cascade) {
                    Some(irq) => {
                        chip.acknowledge(irq);
                        POLL_PENDING | irq
                    }
                    None => 0,
                }
            }
            0 if chip.read_isr => chip.isr,
            0 => chip.irr,
            _ => chip.imr,
        }
    }

    /// A port write, addressed as [`DualPic::read`].
    pub fn write(&mut self, slave: bool, offset: u64, value: u8) {
        let chip = self.chip(slave);
        if offset == 0 {
            chip.write_command(value);
        } else {
            chip.write_data(value);
        }
    }

    fn chip(&mut self, slave: bool) -> &mut Chip {
        if slave {
            &mut self.slave
        } else {
            &mut self.master
        }
    }
}

type Notify = Box<dyn Fn() + Send + Sync>;

/// A [`DualPic`] shared by the vCPU thread and device threads.
pub struct Pic {
    state: Mutex<DualPic>,
    on_output_rise: Notify,
}

impl Pic {
    /// `on_output_rise` is called, outside the PIC's lock and on whichever thread caused
    /// it, whenever the output to the CPU goes from low to high.
    pub fn new(on_output_rise: impl Fn() + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(DualPic::new()),
            on_output_rise: Box::new(on_output_rise),
        })
    }

    fn update<R>(&self, f: impl FnOnce(&mut DualPic) -> R) -> R {
        let (result, rose) = {
            let mut pic = lock_mutex(&self.state);
            let before = pic.output();
            let result = f(&mut pic);
            (result, !before && pic.output())
        };
        if rose {
            (self.on_output_rise)();
        }
        result
    }

    /// The interrupt line for ISA IRQ `irq`, for a device model.
    pub fn line(self: &Arc<Self>, irq: u8) -> Arc<dyn Irq> {
        Arc::new(PicLine {
            pic: self.clone(),
            irq,
        })
    }

    /// The two chips' port devices with their bases; each is [`PORT_LEN`] ports long.
    pub fn port_devices(self: &Arc<Self>) -> [(SharedDevice, u64); 2] {
        let ports = |slave| -> SharedDevice {
            Arc::new(Mutex::new(PicPorts {
                pic: self.clone(),
                slave,
            }))
        };
        [(ports(false), MASTER_PORT), (ports(true), SLAVE_PORT)]
    }

    /// Whether the output to the CPU is high.
    pub fn has_interrupt(&self) -> bool {
        lock_mutex(&self.state).output()
    }

    /// The CPU takes an interrupt: see [`DualPic::acknowledge`].
    pub fn acknowledge(&self) -> Option<u8> {
        self.update(DualPic::acknowledge)
    }
}

struct PicLine {
    pic: Arc<Pic>,
    irq: u8,
}

impl Irq for PicLine {
    fn trigger(&self) -> Result<(), IrqError> {
        self.pic.update(|pic| pic.raise(self.irq));
        Ok(())
    }
}

/// One chip's two ports on the port bus.
struct PicPorts {
    pic: Arc<Pic>,
    slave: bool,
}

impl BusDevice for PicPorts {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        let value = self.pic.update(|pic| pic.read(self.slave, offset));
        if let Some(first) = data.first_mut() {
            *first = value;
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let Some(&value) = data.first() {
            self.pic.update(|pic| pic.write(self.slave, offset, value));
        }
    }
}

#[cfg(test)]
mod tests;
