//! Building and running the x86-64 KVM machine.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use devices::virtio::console::ConsoleInput;
use devices::virtio::IgnoreWrites;
use devices::{AcpiPower, DebugPort, Serial, I8042};
use kvm::x86::boot::{self, BootConfig, BootError};
use kvm::x86::{acpi, cpuid, layout};
use kvm::{Vcpu, Vm, VmError};
use vm_core::bus::SharedDevice;
use vm_core::{Bus, BusError, GuestMemory, Irq};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::signal::Killable;

use super::irqchip::UserIrqchip;
use super::stats::VcpuStats;
use super::vcpu_thread::{self, IoBuses, VcpuContext};
use super::{virtio, COM1_IRQ, COM1_PORT};
use crate::io_config::ConsoleKind;
use crate::stdio::{RawStdout, RawTerminal};
use crate::virtio::VirtioError;
use crate::{events, signals, ExitReason, IrqchipMode, SerialConfig, VmConfig, VmControl};

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("memory size {0} MiB is too small (minimum {min} MiB)", min = layout::MIN_MEMORY >> 20)]
    MemoryTooSmall(u64),
    #[error("memory size {asked} MiB is more than this host has ({host} MiB)")]
    MemoryTooLarge { asked: u64, host: u64 },
    #[error("--cpus must be at least 1")]
    NoCpus,
    #[error("--cpus {asked} is more than this host's KVM allows ({max})")]
    TooManyCpus { asked: u8, max: usize },
    #[error(
        "--irqchip userspace runs one vCPU (there are no local APICs to start others): \
         got --cpus {0}"
    )]
    UserIrqchipSmp(u8),
    #[error("interrupt line {0} does not exist on this machine")]
    NoIrqLine(u32),
    #[error(transparent)]
    Virtio(#[from] VirtioError),
    #[error("cannot open {what} {path}: {source}")]
    Open {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Vm(#[from] VmError),
    #[error(transparent)]
    Memory(#[from] vm_core::MemoryError),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error(transparent)]
    Vcpu(#[from] kvm::VcpuError),
    #[error("cannot place device: {0}")]
    Bus(#[from] BusError),
    #[error("cannot set up the CPUID for the vCPUs: {0:?}")]
    Cpuid(vmm_sys_util::fam::Error),
    #[error("cannot open serial output {path}: {source}")]
    SerialFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Host {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn host(what: &'static str) -> impl FnOnce(std::io::Error) -> MachineError {
    move |source| MachineError::Host { what, source }
}

/// Where console output goes (`--serial`).
fn console_output(serial: &SerialConfig) -> Result<devices::serial::Output, MachineError> {
    Ok(match serial {
        SerialConfig::Stdio => Box::new(RawStdout),
        SerialConfig::None => Box::new(std::io::sink()),
        SerialConfig::File(path) => Box::new(
            File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| MachineError::SerialFile {
                    path: path.clone(),
                    source,
                })?,
        ),
    })
}

fn check_readable(what: &'static str, path: &std::path::Path) -> Result<(), MachineError> {
    File::open(path)
        .map(drop)
        .map_err(|source| MachineError::Open {
            what,
            path: path.to_owned(),
            source,
        })
}

pub struct X86Machine {
    memory: GuestMemory,
    pio: Bus,
    mmio: Bus,
    vcpus: Vec<Vcpu>,
    control: Arc<VmControl>,
    serial: Arc<Mutex<Serial>>,
    /// Console input goes here instead of the UART with `--console virtio`.
    console_input: Option<ConsoleInput>,
    console_on_stdio: bool,
    /// `None`: KVM's in-kernel irqchip.
    user_irqchip: Option<Arc<UserIrqchip>>,
    stats: Arc<VcpuStats>,
    // Keeps the VM fd (and so the in-kernel irqchip and memory slots) alive while vCPUs run.
    vm: Vm,
}

impl X86Machine {
    /// Validates `config`, creates the VM, loads the kernel and wires the devices.
    /// `started` is when Tandem started, for the boot timer.
    pub fn new(config: &VmConfig, started: Instant) -> Result<Self, MachineError> {
        if config.memory < layout::MIN_MEMORY {
            return Err(MachineError::MemoryTooSmall(config.memory >> 20));
        }
        let host_ram = crate::host::memory();
        if config.memory > host_ram {
            return Err(MachineError::MemoryTooLarge {
                asked: config.memory >> 20,
                host: host_ram >> 20,
            });
        }
        if config.cpus == 0 {
            return Err(MachineError::NoCpus);
        }
        if config.irqchip == IrqchipMode::Userspace && config.cpus > 1 {
            return Err(MachineError::UserIrqchipSmp(config.cpus));
        }
        check_readable("kernel", &config.kernel)?;
        if let Some(initrd) = &config.initrd {
            check_readable("initrd", initrd)?;
        }

        let vm = Vm::new()?;
        // APIC IDs are 8 bits and the IOAPIC takes the ID after the last CPU.
        let max = vm.max_vcpus().min(254);
        if usize::from(config.cpus) > max {
            return Err(MachineError::TooManyCpus {
                asked: config.cpus,
                max,
            });
        }
        let memory = vm_core::memory::create(&layout::ram_regions(config.memory))?;
        vm.register_memory(&memory)?;
        vm.set_tss_address()?;
        let user_irqchip = match config.irqchip {
            IrqchipMode::Kernel => {
                vm.create_irqchip()?;
                None
            }
            IrqchipMode::Userspace => Some(UserIrqchip::new()),
        };
        let apic = user_irqchip.is_none();

        // Backends (disk images, taps) open before anything else is built on them.
        let virtio_devices = crate::virtio::build(
            &config.io,
            virtio::SLOT_IRQS.len(),
            &memory,
            Arc::new(IgnoreWrites),
            || {
                console_output(&config.serial).map_err(|e| match e {
                    MachineError::SerialFile { source, .. } => source,
                    other => std::io::Error::other(other.to_string()),
                })
            },
            |slot| {
                irq_line(&vm, user_irqchip.as_ref(), virtio::SLOT_IRQS[slot])
                    .map_err(|e| VirtioError::Host(std::io::Error::other(e.to_string())))
            },
        )?;
        let mut mmio = Bus::new();
        virtio::attach(&vm, &virtio_devices.transports, &mut mmio)?;
        let cmdline = format!(
            "{}{}",
            config.cmdline,
            virtio::cmdline_entries(virtio_devices.transports.len())
        );

        let entry = boot::load(
            &memory,
            &BootConfig {
                kernel: &config.kernel,
                initrd: config.initrd.as_deref(),
                cmdline: cmdline.trim_start(),
                cpus: config.cpus,
                apic,
            },
        )?;

        let control = Arc::new(VmControl::new().map_err(host("cannot create an eventfd"))?);
        // The console backend (--serial) serves whichever device --console names.
        let serial_out = match config.io.console {
            ConsoleKind::Serial => console_output(&config.serial)?,
            ConsoleKind::Virtio => Box::new(std::io::sink()),
        };
        let com1_irq = irq_line(&vm, user_irqchip.as_ref(), COM1_IRQ)?;
        let serial = Arc::new(Mutex::new(Serial::new(com1_irq, serial_out)));
        let mut pio = Bus::new();
        pio.insert(serial.clone(), COM1_PORT, 8)?;
        if let Some(chip) = &user_irqchip {
            for (ports, base) in chip.pic().port_devices() {
                pio.insert(ports, base, devices::pic::PORT_LEN)?;
            }
        }
        let reset_control = control.clone();
        pio.insert(
            Arc::new(Mutex::new(I8042::new(move || {
                reset_control.stop(ExitReason::Reset)
            }))),
            devices::i8042::PORT_BASE,
            devices::i8042::PORT_LEN,
        )?;
        let exit_control = control.clone();
        pio.insert(
            Arc::new(Mutex::new(DebugPort::new(started, move |code| {
                exit_control.stop(ExitReason::GuestExit(code))
            }))),
            devices::debug::PORT_BASE,
            devices::debug::PORT_LEN,
        )?;

        let (off_control, reset_control) = (control.clone(), control.clone());
        pio.insert(
            Arc::new(Mutex::new(AcpiPower::new(
                acpi::S5_SLEEP_TYPE,
                acpi::RESET_VALUE,
                move || off_control.stop(ExitReason::PowerOff),
                move || reset_control.stop(ExitReason::Reset),
            ))),
            u64::from(acpi::SLEEP_CONTROL_PORT),
            devices::acpi_power::PORT_LEN,
        )?;

        let supported = vm.supported_cpuid()?;
        let mut vcpus = Vec::with_capacity(usize::from(config.cpus));
        for id in 0..config.cpus {
            let vcpu = vm.create_vcpu(id)?;
            let mut cpuid = supported.clone();
            cpuid::for_vcpu(&mut cpuid, id, config.cpus).map_err(MachineError::Cpuid)?;
            if !apic {
                cpuid::without_apic(&mut cpuid);
            }
            vcpu.configure(&cpuid, apic)?;
            if id == 0 {
                vcpu.set_boot_state(entry.rip, entry.mode)?;
            }
            vcpus.push(vcpu);
        }

        Ok(Self {
            memory,
            pio,
            mmio,
            vcpus,
            control,
            serial,
            console_input: virtio_devices.console_input,
            console_on_stdio: config.serial == SerialConfig::Stdio,
            user_irqchip,
            stats: Arc::new(VcpuStats::default()),
            vm,
        })
    }

    /// What the vCPUs did; final once [`X86Machine::run`] has returned.
    pub fn stats(&self) -> Arc<VcpuStats> {
        self.stats.clone()
    }

    /// The interrupt line a device on ISA IRQ / GSI `gsi` raises: an irqfd into KVM's
    /// irqchip, or an input of Tandem's PIC with `--irqchip userspace`.
    pub fn irq_line(&self, gsi: u32) -> Result<Arc<dyn Irq>, MachineError> {
        irq_line(&self.vm, self.user_irqchip.as_ref(), gsi)
    }

    /// Makes guest writes to `addr` (4 bytes of `datamatch`, or anything when `None`)
    /// signal `evt` inside the kernel instead of exiting: see [`Vm::register_ioevent`].
    pub fn register_ioevent(
        &self,
        evt: &EventFd,
        addr: u64,
        datamatch: Option<u32>,
    ) -> Result<(), MachineError> {
        Ok(self.vm.register_ioevent(evt, addr, datamatch)?)
    }

    /// Guest RAM, shared with the running guest.
    pub fn memory(&self) -> &GuestMemory {
        &self.memory
    }

    pub fn control(&self) -> Arc<VmControl> {
        self.control.clone()
    }

    /// Adds a device on the port bus (before `run`).
    pub fn add_pio_device(
        &mut self,
        device: SharedDevice,
        base: u16,
        len: u16,
    ) -> Result<(), MachineError> {
        Ok(self.pio.insert(device, u64::from(base), u64::from(len))?)
    }

    /// Adds a device on the MMIO bus (before `run`).
    pub fn add_mmio_device(
        &mut self,
        device: SharedDevice,
        base: u64,
        len: u64,
    ) -> Result<(), MachineError> {
        Ok(self.mmio.insert(device, base, len)?)
    }

    /// Runs the VM until it stops; returns why.
    pub fn run(self) -> Result<ExitReason, MachineError> {
        let signal_evt = signals::install().map_err(host("cannot install signal handlers"))?;
        let _terminal = if self.console_on_stdio {
            RawTerminal::enable_on_stdin().map_err(host("cannot set the terminal to raw mode"))?
        } else {
            None
        };

        let io = Arc::new(IoBuses {
            pio: self.pio,
            mmio: self.mmio,
        });
        let mut threads: Vec<(JoinHandle<()>, Arc<AtomicBool>)> = Vec::new();
        for vcpu in self.vcpus {
            let done = Arc::new(AtomicBool::new(false));
            let ctx = VcpuContext {
                io: io.clone(),
                control: self.control.clone(),
                stats: self.stats.clone(),
                // The PIC's output goes to vCPU 0, as on a PC without APICs.
                irqchip: self.user_irqchip.clone().filter(|_| vcpu.id() == 0),
            };
            let flag = done.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("vcpu{}", vcpu.id()))
                .spawn(move || vcpu_thread::run(vcpu, ctx, flag));
            match spawned {
                Ok(handle) => threads.push((handle, done)),
                Err(e) => {
                    // Do not leave the vCPUs already started running on their own.
                    self.control.stop(ExitReason::Error(e.to_string()));
                    stop_vcpus(threads, self.user_irqchip.as_deref());
                    return Err(host("cannot start a vCPU thread")(e));
                }
            }
        }

        let console: &dyn events::ConsoleSink = match &self.console_input {
            Some(input) => input,
            None => &*self.serial,
        };
        let result = events::serve(&self.control, signal_evt, console, self.console_on_stdio)
            .map_err(|(what, source)| MachineError::Host { what, source });
        if let Err(e) = &result {
            self.control.stop(ExitReason::Error(e.to_string()));
        }
        stop_vcpus(threads, self.user_irqchip.as_deref());
        result?;
        Ok(self
            .control
            .reason()
            .unwrap_or_else(|| ExitReason::Error("VM stopped without a reason".into())))
    }
}

/// The line for `gsi`: an irqfd, or a PIC input when interrupts are Tandem's.
fn irq_line(
    vm: &Vm,
    user_irqchip: Option<&Arc<UserIrqchip>>,
    gsi: u32,
) -> Result<Arc<dyn Irq>, MachineError> {
    match user_irqchip {
        None => Ok(vm.irq_line(gsi)?),
        Some(chip) => match u8::try_from(gsi) {
            Ok(irq) if irq < 16 => Ok(chip.pic().line(irq)),
            _ => Err(MachineError::NoIrqLine(gsi)),
        },
    }
}

/// Kicks every vCPU out of KVM_RUN (or, with a user-space irqchip, out of its `hlt`
/// sleep) until its thread has seen the stop, then joins it. Kicks set the thread's
/// `immediate_exit`, so one is enough; repeating them is cheap insurance.
fn stop_vcpus(threads: Vec<(JoinHandle<()>, Arc<AtomicBool>)>, user_irqchip: Option<&UserIrqchip>) {
    for (handle, done) in threads {
        while !done.load(Ordering::SeqCst) {
            if let Some(chip) = user_irqchip {
                chip.wake_sleeper();
            }
            let _ = handle.kill(signals::kick_signal());
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = handle.join();
    }
}
