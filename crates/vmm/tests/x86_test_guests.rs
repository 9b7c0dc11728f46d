//! Runs Tandem's own x86-64 test guests on the KVM machine through the library API, with
//! recorder devices on the buses, and checks what the guest did.

#[path = "../../../tests/support/x86_guests.rs"]
mod x86_guests;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use vm_core::memory::Bytes;
use vm_core::BusDevice;
use vm_memory::GuestAddress;
use vmm::{ExitReason, IrqchipMode, SerialConfig, VmConfig, X86Machine};
use vmm_sys_util::eventfd::EventFd;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Access {
    Read { offset: u64, len: usize },
    Write { offset: u64, data: Vec<u8> },
}

/// Records every access with the vCPU thread that made it; reads return
/// 0xa0 + offset + byte index.
#[derive(Default)]
struct Recorder {
    log: Vec<(Access, String)>,
}

impl BusDevice for Recorder {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = 0xa0u8.wrapping_add(offset as u8).wrapping_add(i as u8);
        }
        self.log.push((
            Access::Read {
                offset,
                len: data.len(),
            },
            thread_name(),
        ));
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        self.log.push((
            Access::Write {
                offset,
                data: data.to_vec(),
            },
            thread_name(),
        ));
    }
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

fn config(guest: &str, cpus: u8, serial: SerialConfig) -> VmConfig {
    VmConfig {
        kernel: x86_guests::build(guest),
        initrd: None,
        cmdline: String::new(),
        memory: 64 << 20,
        cpus,
        serial,
        io: Default::default(),
        irqchip: IrqchipMode::Kernel,
    }
}

fn accesses(recorder: &Mutex<Recorder>) -> Vec<Access> {
    recorder
        .lock()
        .unwrap()
        .log
        .iter()
        .map(|(a, _)| a.clone())
        .collect()
}

#[test]
fn port_and_mmio_exits_reach_the_right_device() {
    if !x86_guests::kvm_usable("port_and_mmio_exits_reach_the_right_device") {
        return;
    }
    let mut machine =
        X86Machine::new(&config("io", 1, SerialConfig::None), Instant::now()).unwrap();
    let ports = Arc::new(Mutex::new(Recorder::default()));
    let mmio = Arc::new(Mutex::new(Recorder::default()));
    machine.add_pio_device(ports.clone(), 0x510, 0x10).unwrap();
    machine
        .add_mmio_device(mmio.clone(), 0xd000_0000, 0x1000)
        .unwrap();
    assert_eq!(run(machine), ExitReason::GuestExit(0));

    let w = |offset, data: &[u8]| Access::Write {
        offset,
        data: data.to_vec(),
    };
    let r = |offset, len| Access::Read { offset, len };
    assert_eq!(
        accesses(&ports),
        vec![
            w(0, &[0x11]),
            w(0, &[0x33, 0x22]),
            w(0, &[0x77, 0x66, 0x55, 0x44]),
            r(4, 1),
            r(2, 2),
            r(8, 4),
        ]
    );
    assert_eq!(
        accesses(&mmio),
        vec![
            w(0, &[0x12]),
            w(2, &[0x56, 0x34]),
            w(4, &[0xde, 0xbc, 0x9a, 0x78]),
            w(8, &[0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01]),
            r(0x20, 1),
            r(0x10, 4),
            r(0x18, 8),
        ]
    );
}

#[test]
fn guest_and_vmm_share_memory_both_ways() {
    if !x86_guests::kvm_usable("guest_and_vmm_share_memory_both_ways") {
        return;
    }
    const SHARED: u64 = 0x30_0000;
    let machine =
        X86Machine::new(&config("memory", 1, SerialConfig::None), Instant::now()).unwrap();
    let memory = machine.memory().clone();
    let magic: u64 = 0x0123_4567_89ab_cdef;
    memory.write_obj(magic, GuestAddress(SHARED)).unwrap();
    assert_eq!(run(machine), ExitReason::GuestExit(0));
    let complement: u64 = memory.read_obj(GuestAddress(SHARED + 8)).unwrap();
    assert_eq!(complement, !magic);
    let mut text = [0u8; 21];
    memory
        .read_slice(&mut text, GuestAddress(SHARED + 16))
        .unwrap();
    assert_eq!(&text, b"written by the guest\0");
}

#[test]
fn every_vcpu_runs_on_its_own_thread_and_reports() {
    if !x86_guests::kvm_usable("every_vcpu_runs_on_its_own_thread_and_reports") {
        return;
    }
    let dir = tempdir();
    let console = dir.join("console");
    let mut machine = X86Machine::new(
        &config("smp", 4, SerialConfig::File(console.clone())),
        Instant::now(),
    )
    .unwrap();
    let reports = Arc::new(Mutex::new(Recorder::default()));
    machine.add_pio_device(reports.clone(), 0x520, 4).unwrap();
    assert_eq!(run(machine), ExitReason::GuestExit(0));

    let log = reports.lock().unwrap().log.clone();
    let mut seen: Vec<(u32, String)> = log
        .into_iter()
        .map(|(access, thread)| match access {
            Access::Write { data, .. } => (u32::from_le_bytes(data.try_into().unwrap()), thread),
            other => panic!("unexpected access {other:?}"),
        })
        .collect();
    seen.sort();
    let expected: Vec<(u32, String)> = (0..4).map(|i| (i, format!("vcpu{i}"))).collect();
    assert_eq!(
        seen, expected,
        "each vCPU reports its APIC ID from its own thread"
    );
    assert_eq!(
        std::fs::read_to_string(console).unwrap(),
        "all vCPUs reported\n"
    );
}

#[test]
fn timer_interrupt_reaches_the_guest_handler() {
    if !x86_guests::kvm_usable("timer_interrupt_reaches_the_guest_handler") {
        return;
    }
    let dir = tempdir();
    let console = dir.join("console");
    let machine = X86Machine::new(
        &config("timer_irq", 1, SerialConfig::File(console.clone())),
        Instant::now(),
    )
    .unwrap();
    assert_eq!(run(machine), ExitReason::GuestExit(0));
    assert_eq!(
        std::fs::read_to_string(console).unwrap(),
        "timer interrupt handled in ring 0\n"
    );
}

#[test]
fn ioeventfd_writes_signal_the_eventfd_instead_of_exiting() {
    if !x86_guests::kvm_usable("ioeventfd_writes_signal_the_eventfd_instead_of_exiting") {
        return;
    }
    let mut machine =
        X86Machine::new(&config("ioevent", 1, SerialConfig::None), Instant::now()).unwrap();
    let mmio = Arc::new(Mutex::new(Recorder::default()));
    machine
        .add_mmio_device(mmio.clone(), 0xd000_0000, 0x1000)
        .unwrap();
    let queue1 = EventFd::new(libc::EFD_NONBLOCK).unwrap();
    let any = EventFd::new(libc::EFD_NONBLOCK).unwrap();
    machine
        .register_ioevent(&queue1, 0xd000_0050, Some(1))
        .unwrap();
    machine.register_ioevent(&any, 0xd000_0060, None).unwrap();
    let stats = machine.stats();
    assert_eq!(run(machine), ExitReason::GuestExit(0));

    assert_eq!(queue1.read().unwrap(), 2, "two 4-byte writes of 1");
    assert_eq!(any.read().unwrap(), 2, "both writes, whatever their size");
    let w = |offset, data: &[u8]| Access::Write {
        offset,
        data: data.to_vec(),
    };
    assert_eq!(
        accesses(&mmio),
        vec![
            w(0x50, &[0, 0, 0, 0]),
            w(0x50, &[2, 0, 0, 0]),
            w(0x50, &[1])
        ],
        "only unmatched writes exit"
    );
    // Three MMIO exits and the debug-port write.
    assert_eq!(stats.io_exits(), 4);
}

#[test]
fn userspace_pic_delivers_through_an_interrupt_window() {
    if !x86_guests::kvm_usable("userspace_pic_delivers_through_an_interrupt_window") {
        return;
    }
    let dir = tempdir();
    let console = dir.join("console");
    let mut config = config("pic_irq", 1, SerialConfig::File(console.clone()));
    config.irqchip = IrqchipMode::Userspace;
    let machine = X86Machine::new(&config, Instant::now()).unwrap();
    let stats = machine.stats();
    assert_eq!(run(machine), ExitReason::GuestExit(0));
    assert_eq!(
        std::fs::read_to_string(console).unwrap(),
        "IRQ 4 arrived at vector 0x44, EOI sent\n"
    );
    assert!(stats.irq_window_exits() >= 1);
    assert_eq!(stats.injected_irqs(), 1);
}

/// Runs the machine; a guest that never finishes fails the test instead of hanging it.
fn run(machine: X86Machine) -> ExitReason {
    let control = machine.control();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(120));
        control.stop(ExitReason::Error("test guest did not finish".into()));
    });
    machine.run().unwrap()
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "vmm-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
