//! The RISC-V `virt` machine on Tandem's translator: guest RAM, the device bus (the same
//! 16550 model as the KVM machine, plus the CLINT, the PLIC and the SiFive test device),
//! one host thread per hart (plus one timer thread each), the built-in SBI or M-mode
//! firmware, and the same console, signal and exit-status handling as the KVM machine.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use devices::riscv::{self as rv, Clint, HartLines, Plic, TestDevice, TestEvent};
use devices::virtio::console::ConsoleInput;
use devices::virtio::{mmio::MMIO_SIZE, GuestWrites};
use devices::Serial;
use riscv::system::{HartEvent, HartShared, Mmio, PhysMem, SystemConfig, SystemHart, Timebase};
use riscv::Backend;
use vm_core::memory::GuestMemoryApi;
use vm_core::{Bus, BusError, GuestMemory};
use vm_memory::GuestAddress;

use super::boot::{self, BootError, BootFiles, Placement};
use super::debug::{self, DebugHarts};
use super::fdt::{self, FdtConfig, FdtError};
use super::gdb_stub;
use super::layout::*;
use super::sbi::{self, After, HartSlot, Sbi};
use crate::io_config::IoConfig;
use crate::stdio::{RawStdout, RawTerminal};
use crate::virtio::{self, VirtioError};
use crate::{events, signals, ExitReason, SerialConfig, VmControl};

/// Harts the machine supports (PLIC contexts and the device tree are sized for it).
pub const MAX_HARTS: u8 = 32;

/// The extensions the translator implements, as the device tree announces them.
pub const ISA: &str = "rv64imafdc_zicsr_zifencei_zba_zbb_zbs_sstc";

#[derive(Debug, Clone)]
pub struct RiscvConfig {
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    pub memory: u64,
    pub cpus: u8,
    pub serial: SerialConfig,
    /// M-mode firmware (e.g. OpenSBI's fw_dynamic.bin); None: Tandem's built-in SBI.
    pub bios: Option<PathBuf>,
    pub backend: Backend,
    /// Serve a debugger there (`--gdb`); the harts wait for it before they start.
    pub gdb: Option<gdb::Addr>,
    /// Disks, network, rng, console and vsock, in the virtio-mmio slots.
    pub io: IoConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum RiscvError {
    #[error("memory size {0} MiB is too small (minimum {min} MiB)", min = MIN_MEMORY >> 20)]
    MemoryTooSmall(u64),
    #[error("memory size {0} MiB is too large (maximum {max} MiB)", max = MAX_MEMORY >> 20)]
    MemoryTooLarge(u64),
    #[error("memory size {asked} MiB is more than this host has ({host} MiB)")]
    MoreThanHost { asked: u64, host: u64 },
    #[error("--cpus must be between 1 and {MAX_HARTS}")]
    Cpus,
    #[error("the riscv-virt machine needs --kernel or --bios")]
    NothingToBoot,
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error(transparent)]
    Memory(#[from] vm_core::MemoryError),
    #[error("cannot place device: {0}")]
    Bus(#[from] BusError),
    #[error("cannot build the interrupt controllers: {0}")]
    Intc(#[from] devices::riscv::IntcError),
    #[error("cannot build the device tree: {0}")]
    Fdt(#[from] FdtError),
    #[error("cannot open serial output {path}: {source}")]
    SerialFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Gdb(#[from] gdb::GdbError),
    #[error(transparent)]
    Virtio(#[from] VirtioError),
    #[error("{what}: {source}")]
    Host {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn host(what: &'static str) -> impl FnOnce(std::io::Error) -> RiscvError {
    move |source| RiscvError::Host { what, source }
}

/// The harts as the interrupt controllers reach them. Filled once the harts exist (the
/// controllers are built first, because the harts' memory bus contains them).
#[derive(Default)]
struct Lines(OnceLock<Vec<Arc<HartShared>>>);

impl HartLines for Lines {
    fn set_pending(&self, hart: usize, mip_bit: u32, level: bool) {
        if let Some(h) = self.0.get().and_then(|v| v.get(hart)) {
            h.set_pending(mip_bit, level);
        }
    }
    fn set_mtimecmp(&self, hart: usize, value: u64) {
        if let Some(h) = self.0.get().and_then(|v| v.get(hart)) {
            h.mtimecmp.store(value, std::sync::atomic::Ordering::SeqCst);
            h.timer_changed();
        }
    }
}

/// Device writes into guest RAM (DMA) drop the code translated from the pages they hit,
/// exactly as a hart's stores do. Weak: the bus holding the devices lives in `PhysMem`.
#[derive(Default)]
struct DmaWrites(OnceLock<Weak<PhysMem>>);

impl GuestWrites for DmaWrites {
    fn wrote(&self, gpa: u64, len: u64) {
        if let Some(phys) = self.0.get().and_then(Weak::upgrade) {
            phys.code_pages().note_write(gpa, len);
        }
    }
}

/// Base address and PLIC source of virtio-mmio slot `slot`.
fn virtio_slot(slot: usize) -> (u64, u32) {
    (
        rv::VIRTIO_BASE + slot as u64 * rv::VIRTIO_STRIDE,
        rv::VIRTIO_IRQ_BASE + slot as u32,
    )
}

/// The device bus as the harts see it.
struct BusMmio(Bus);

impl Mmio for BusMmio {
    fn read(&self, pa: u64, size: usize) -> Option<u64> {
        let mut b = [0u8; 8];
        self.0
            .read(pa, &mut b[..size.min(8)])
            .then(|| u64::from_le_bytes(b))
    }
    fn write(&self, pa: u64, size: usize, value: u64) -> bool {
        self.0.write(pa, &value.to_le_bytes()[..size.min(8)])
    }
}

fn output(serial: &SerialConfig) -> Result<Box<dyn std::io::Write + Send>, RiscvError> {
    Ok(match serial {
        SerialConfig::Stdio => Box::new(RawStdout),
        SerialConfig::None => Box::new(std::io::sink()),
        SerialConfig::File(path) => Box::new(
            File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| RiscvError::SerialFile {
                    path: path.clone(),
                    source,
                })?,
        ),
    })
}

fn check_config(config: &RiscvConfig) -> Result<(), RiscvError> {
    if config.memory < MIN_MEMORY {
        return Err(RiscvError::MemoryTooSmall(config.memory >> 20));
    }
    if config.memory > MAX_MEMORY {
        return Err(RiscvError::MemoryTooLarge(config.memory >> 20));
    }
    let host_ram = crate::host::memory();
    if config.memory > host_ram {
        return Err(RiscvError::MoreThanHost {
            asked: config.memory >> 20,
            host: host_ram >> 20,
        });
    }
    if config.cpus == 0 || config.cpus > MAX_HARTS {
        return Err(RiscvError::Cpus);
    }
    if config.kernel.is_none() && config.bios.is_none() {
        return Err(RiscvError::NothingToBoot);
    }
    Ok(())
}

/// The device tree of a machine with this configuration and boot placement.
fn device_tree(config: &RiscvConfig, placement: &Placement) -> Result<Vec<u8>, RiscvError> {
    Ok(fdt::build(&FdtConfig {
        harts: config.cpus as usize,
        ram_base: RAM_BASE,
        ram_size: config.memory,
        cmdline: &config.cmdline,
        initrd: placement.initrd,
        isa: ISA,
        mmu_type: "riscv,sv48",
        timebase_freq: rv::Timebase::VIRT_FREQ as u32,
        clint: (rv::CLINT_BASE, rv::CLINT_SIZE),
        plic: (rv::PLIC_BASE, rv::PLIC_SIZE),
        plic_ndev: rv::PLIC_NDEV,
        uart: (rv::UART0_BASE, rv::UART0_SIZE),
        uart_irq: rv::UART0_IRQ,
        uart_clock: 3_686_400,
        test: (rv::TEST_BASE, rv::TEST_SIZE),
        virtio: (0..config.io.virtio_count())
            .map(|slot| {
                let (base, irq) = virtio_slot(slot);
                (base, MMIO_SIZE, irq)
            })
            .collect(),
    })?)
}

/// Writes the device tree the machine would give the guest (`--dump-dtb`).
pub fn dump_dtb(config: &RiscvConfig, path: &std::path::Path) -> Result<(), RiscvError> {
    check_config(config)?;
    let files = BootFiles {
        firmware: config.bios.as_deref(),
        kernel: config.kernel.as_deref(),
        initrd: config.initrd.as_deref(),
    };
    let (placement, _) = boot::plan(&files, config.memory)?;
    let dtb = device_tree(config, &placement)?;
    std::fs::write(path, dtb).map_err(host("cannot write the device tree"))
}

pub struct RiscvMachine {
    harts: Vec<SystemHart>,
    timebase: Timebase,
    control: Arc<VmControl>,
    serial: Arc<Mutex<Serial>>,
    /// Console input goes here instead of the UART with `--console virtio`.
    console_input: Option<ConsoleInput>,
    sbi: Arc<Sbi>,
    builtin_sbi: bool,
    console_on_stdio: bool,
    gdb: Option<gdb::Listener>,
    _memory: Arc<GuestMemory>,
}

impl RiscvMachine {
    pub fn new(config: &RiscvConfig) -> Result<Self, RiscvError> {
        check_config(config)?;
        let files = BootFiles {
            firmware: config.bios.as_deref(),
            kernel: config.kernel.as_deref(),
            initrd: config.initrd.as_deref(),
        };
        let (placement, loaded) = boot::plan(&files, config.memory)?;
        let dtb = device_tree(config, &placement)?;
        // Bound now so a bad address fails before anything runs.
        let gdb = config.gdb.as_ref().map(gdb::Listener::bind).transpose()?;
        let memory = Arc::new(vm_core::memory::create(&[(RAM_BASE, config.memory)])?);
        boot::load(&memory, &placement, &loaded, &dtb)?;

        let control = Arc::new(VmControl::new().map_err(host("cannot create an eventfd"))?);
        let harts_n = config.cpus as usize;
        let epoch = riscv::system::hart::monotonic_ns();
        let timebase = Timebase {
            epoch_ns: epoch,
            freq: rv::Timebase::VIRT_FREQ,
        };
        let lines = Arc::new(Lines::default());
        let plic = Plic::new(rv::PLIC_SOURCES, harts_n, lines.clone())?;
        // Both consoles write to the --serial backend; input goes to the one --console names.
        let serial = Arc::new(Mutex::new(Serial::new(
            plic.irq_line(rv::UART0_IRQ)?,
            output(&config.serial)?,
        )));
        let dma = Arc::new(DmaWrites::default());
        let virtio = virtio::build(
            &config.io,
            rv::VIRTIO_COUNT,
            &memory,
            dma.clone(),
            || {
                output(&config.serial).map_err(|e| match e {
                    RiscvError::SerialFile { source, .. } => source,
                    other => std::io::Error::other(other.to_string()),
                })
            },
            |slot| {
                plic.irq_line(virtio_slot(slot).1)
                    .map_err(|e| VirtioError::Host(std::io::Error::other(e.to_string())))
            },
        )?;
        let mut bus = Bus::new();
        bus.insert(serial.clone(), rv::UART0_BASE, rv::UART0_SIZE)?;
        for (slot, t) in virtio.transports.iter().enumerate() {
            bus.insert(t.clone(), virtio_slot(slot).0, MMIO_SIZE)?;
        }
        bus.insert(
            Arc::new(Mutex::new(Clint::new(
                harts_n,
                rv::Timebase {
                    epoch_ns: epoch,
                    freq: rv::Timebase::VIRT_FREQ,
                },
                lines.clone(),
            )?)),
            rv::CLINT_BASE,
            rv::CLINT_SIZE,
        )?;
        bus.insert(Arc::new(Mutex::new(plic)), rv::PLIC_BASE, rv::PLIC_SIZE)?;
        let test_control = control.clone();
        bus.insert(
            Arc::new(Mutex::new(TestDevice::new(move |e| {
                test_control.stop(match e {
                    TestEvent::PowerOff => ExitReason::PowerOff,
                    TestEvent::Reset => ExitReason::Reset,
                    TestEvent::Fail(code) => ExitReason::GuestExit(u32::from(code)),
                })
            }))),
            rv::TEST_BASE,
            rv::TEST_SIZE,
        )?;

        let host_ram = memory
            .get_host_address(GuestAddress(RAM_BASE))
            .map_err(|_| RiscvError::Host {
                what: "guest RAM",
                source: std::io::Error::other("no host mapping"),
            })?;
        let owner: Arc<dyn std::any::Any + Send + Sync> = memory.clone();
        let phys = Arc::new(
            PhysMem::new(
                RAM_BASE,
                config.memory,
                host_ram,
                owner,
                Arc::new(BusMmio(bus)),
            )
            .map_err(|e| RiscvError::Host {
                what: "guest RAM",
                source: std::io::Error::other(e),
            })?,
        );
        let _ = dma.0.set(Arc::downgrade(&phys));
        let builtin_sbi = config.bios.is_none();
        let hart_cfg = SystemConfig {
            backend: config.backend,
            code_size: 64 << 20,
            builtin_sbi,
            compile_after: 2,
        };
        let mut harts = Vec::with_capacity(harts_n);
        for id in 0..harts_n {
            let mut h = SystemHart::new(id, &hart_cfg, phys.clone(), timebase)
                .map_err(host("cannot set up the translator's code buffer"))?;
            let state = h.hart();
            match placement.firmware {
                // Every hart enters the firmware in M-mode (OpenSBI picks the boot hart).
                Some(fw) => {
                    state.cpu.pc = fw;
                    state.cpu.x[10] = id as u64;
                    state.cpu.x[11] = placement.fdt;
                    state.cpu.x[12] = placement.fw_dynamic;
                }
                None if id == 0 => {
                    let entry = placement.kernel.unwrap_or(RAM_BASE);
                    sbi::enter_supervisor(state, entry, 0, placement.fdt);
                }
                None => {}
            }
            harts.push(h);
        }
        let shared: Vec<_> = harts.iter().map(|h| h.shared()).collect();
        let _ = lines.0.set(shared.clone());
        let slots = shared
            .iter()
            .enumerate()
            .map(|(i, s)| Arc::new(HartSlot::new(s.clone(), !builtin_sbi || i == 0)))
            .collect();
        let sbi = Arc::new(Sbi {
            harts: slots,
            control: control.clone(),
            console: Mutex::new(output(&config.serial)?),
        });
        Ok(RiscvMachine {
            harts,
            timebase,
            control,
            serial,
            console_input: virtio.console_input,
            sbi,
            builtin_sbi,
            console_on_stdio: config.serial == SerialConfig::Stdio,
            gdb,
            _memory: memory,
        })
    }

    pub fn control(&self) -> Arc<VmControl> {
        self.control.clone()
    }

    /// Runs the machine until it stops; returns why.
    pub fn run(self) -> Result<ExitReason, RiscvError> {
        let signal_evt = signals::install().map_err(host("cannot install signal handlers"))?;
        let _terminal = if self.console_on_stdio {
            RawTerminal::enable_on_stdin().map_err(host("cannot set the terminal to raw mode"))?
        } else {
            None
        };
        let slots = self.sbi.harts.clone();
        let builtin_sbi = self.builtin_sbi;
        let ctx = |id: usize| HartCtx {
            slot: slots[id].clone(),
            sbi: self.sbi.clone(),
            control: self.control.clone(),
            running: !builtin_sbi || id == 0,
        };
        // Each hart's timer thread and hart thread (and with --gdb, the debugger's).
        let mut bodies: Vec<(String, Box<dyn FnOnce() + Send>)> = Vec::new();
        let tb = self.timebase;
        let debug = match self.gdb {
            None => {
                for (id, hart) in self.harts.into_iter().enumerate() {
                    let shared = hart.shared();
                    let timer = move || riscv::system::engine::timer_thread(shared, tb);
                    bodies.push((format!("hart{id}-timer"), Box::new(timer)));
                    let c = ctx(id);
                    bodies.push((format!("hart{id}"), Box::new(move || hart_thread(hart, c))));
                }
                None
            }
            Some(listener) => {
                let dbg = Arc::new(
                    DebugHarts::new(self.harts, slots.clone())
                        .map_err(host("cannot create an eventfd"))?,
                );
                for (id, slot) in slots.iter().enumerate() {
                    let (d, shared) = (dbg.clone(), slot.shared.clone());
                    let timer = move || debug::timer_thread(shared, tb, d);
                    bodies.push((format!("hart{id}-timer"), Box::new(timer)));
                    let (d, c) = (dbg.clone(), ctx(id));
                    let body = move || debug::hart_thread(id, d, c);
                    bodies.push((format!("hart{id}"), Box::new(body)));
                }
                let (d, control) = (dbg.clone(), self.control.clone());
                let body = move || gdb_stub::serve(listener, d, control);
                bodies.push(("gdb".into(), Box::new(body)));
                Some(dbg)
            }
        };
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        for (name, body) in bodies {
            match std::thread::Builder::new().name(name).spawn(body) {
                Ok(t) => threads.push(t),
                Err(e) => {
                    self.control.stop(ExitReason::Error(e.to_string()));
                    stop_harts(&slots, debug.as_deref(), threads);
                    return Err(host("cannot start a hart thread")(e));
                }
            }
        }
        let console: &dyn events::ConsoleSink = match &self.console_input {
            Some(input) => input,
            None => &*self.serial,
        };
        let result = events::serve(&self.control, signal_evt, console, self.console_on_stdio)
            .map_err(|(what, source)| RiscvError::Host { what, source });
        if let Err(e) = &result {
            self.control.stop(ExitReason::Error(e.to_string()));
        }
        stop_harts(&slots, debug.as_deref(), threads);
        result?;
        Ok(self
            .control
            .reason()
            .unwrap_or_else(|| ExitReason::Error("VM stopped without a reason".into())))
    }
}

fn stop_harts(slots: &[Arc<HartSlot>], debug: Option<&DebugHarts>, threads: Vec<JoinHandle<()>>) {
    // First, so no thread waiting for the debugger takes this stop for a debugger stop.
    if let Some(d) = debug {
        d.shutdown();
    }
    for s in slots {
        s.shared.request_stop();
        s.wake();
    }
    for t in threads {
        let _ = t.join();
    }
}

/// Everything a hart thread serves besides running the hart.
pub(super) struct HartCtx {
    pub slot: Arc<HartSlot>,
    pub sbi: Arc<Sbi>,
    pub control: Arc<VmControl>,
    /// Not waiting for an HSM start.
    pub running: bool,
}

/// A hart's host thread: runs it, serves its SBI calls, waits while it is stopped (HSM).
fn hart_thread(mut hart: SystemHart, ctx: HartCtx) {
    let HartCtx {
        slot,
        sbi,
        control,
        mut running,
    } = ctx;
    let id = slot.shared.id as u64;
    let started = Instant::now();
    loop {
        if !running {
            match slot.wait_for_start() {
                Some((pc, opaque)) => sbi::enter_supervisor(hart.hart(), pc, id, opaque),
                None => break,
            }
            running = true;
        }
        match hart.run() {
            HartEvent::Sbi => {
                if sbi.call(hart.hart()) == After::StopHart {
                    running = false;
                }
            }
            HartEvent::Stopped => break,
            // Only a debugger sets breakpoints or steps.
            HartEvent::Breakpoint | HartEvent::Stepped => {}
            HartEvent::Stuck(why) => {
                control.stop(ExitReason::HartStuck(why));
                break;
            }
        }
    }
    let s = hart.stats();
    log::debug!(
        "hart {id}: {:.2} s, {} blocks ({} guest insns) translated in {:.3} s, {} native",
        started.elapsed().as_secs_f64(),
        s.blocks_translated,
        s.guest_insns_translated,
        s.translate_ns as f64 / 1e9,
        s.native_blocks
    );
}
