//! `tandem`: the command line. Everything else lives in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use vmm::{IrqchipMode, SerialConfig, VmConfig, X86Machine};

const RUN_EXIT_STATUSES: &str = "\
Exit status:
  0        the guest powered off (or wrote 0 to the debug port)
  N        the guest wrote N to the debug port (x86: port 0xf4; low 8 bits) or failed
           with code N through the SiFive test device (riscv-virt)
  1        Tandem could not start or run the VM (bad kernel, firmware, initrd, memory,
           CPUs, no KVM)
  2        invalid command line
  3        the guest requested a reset (e.g. reboot through the i8042)
  4        the guest crashed: a vCPU triple-faulted
  5        KVM could not run the guest (e.g. an instruction it cannot emulate)
  6        a RISC-V hart stopped in a state Tandem cannot continue from (e.g. it cannot
           fetch its own trap handler)
  128+N    Tandem was stopped by signal N (130 SIGINT, 143 SIGTERM; Ctrl-A x at the console counts as SIGINT;
           137 when gdb's `kill` ended it)";

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Tandem: a virtual machine monitor on KVM and a RISC-V machine emulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot a Linux kernel: x86-64 on KVM, or RISC-V on the `virt` machine (translated).
    #[command(after_help = RUN_EXIT_STATUSES)]
    Run(RunArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum MachineKind {
    /// x86-64 on KVM (bzImage or ELF vmlinux).
    #[value(name = "x86-kvm")]
    X86Kvm,
    /// The RISC-V `virt` machine (QEMU-compatible layout) on Tandem's translator.
    #[value(name = "riscv-virt")]
    RiscvVirt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BackendArg {
    Native,
    Interp,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Machine; by default chosen from the kernel (a RISC-V Image means riscv-virt).
    #[arg(long, value_name = "MACHINE")]
    machine: Option<MachineKind>,
    /// Kernel image: an x86 bzImage or ELF vmlinux (PVH entry when it has the note), or a
    /// RISC-V `Image` (with or without the EFI stub).
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,
    /// riscv-virt: M-mode firmware loaded at 0x80000000 (e.g. OpenSBI's fw_dynamic.bin);
    /// without it Tandem serves the SBI itself and starts the kernel in S-mode.
    #[arg(long, value_name = "PATH")]
    bios: Option<PathBuf>,
    /// riscv-virt: write the generated device tree to PATH and exit.
    #[arg(long, value_name = "PATH")]
    dump_dtb: Option<PathBuf>,
    /// riscv-virt: how translated code runs (interp: the portable IR interpreter).
    #[arg(long, value_name = "BACKEND", default_value = "native")]
    backend: BackendArg,
    /// Initial ramdisk.
    #[arg(long, value_name = "PATH")]
    initrd: Option<PathBuf>,
    /// Kernel command line [default: "console=ttyS0 reboot=k panic=1" on x86-kvm,
    /// "console=ttyS0 panic=-1" on riscv-virt].
    #[arg(long, value_name = "STR")]
    cmdline: Option<String>,
    /// Guest RAM, in MiB or with a K/M/G suffix.
    #[arg(long, short = 'm', value_name = "SIZE", default_value = "256M", value_parser = vmm::parse_size)]
    memory: u64,
    /// Number of vCPUs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    cpus: u8,
    /// Guest console (the 16550: COM1 on x86, 0x10000000 on riscv-virt): stdio, file:PATH
    /// or none.
    #[arg(long, value_name = "BACKEND", default_value = "stdio")]
    serial: SerialConfig,
    /// riscv-virt: wait for a debugger (gdb's `target remote`) on unix:PATH or
    /// tcp:HOST:PORT before the first instruction, then serve it (one gdb thread per hart).
    #[arg(long, value_name = "ADDR")]
    gdb: Option<gdb::Addr>,
    /// A virtio-blk disk (repeatable; the first is /dev/vda): path=FILE[,format=raw|qcow2]
    /// [,readonly=on]. Without format the image is probed.
    #[arg(long, value_name = "OPTIONS")]
    disk: Vec<vmm::DiskConfig>,
    /// A virtio-net interface on a host tap device (repeatable): tap=NAME[,mac=MAC].
    #[arg(long, value_name = "OPTIONS")]
    net: Vec<vmm::NetConfig>,
    /// A virtio-rng device fed from the host's getrandom(2).
    #[arg(long)]
    rng: bool,
    /// Which device console input goes to: serial (the 16550, ttyS0) or virtio (a
    /// virtio-console: hvc0, or hvc1 on a RISC-V kernel that has the SBI console as hvc0;
    /// name it with console= on the command line). Both write to the --serial backend.
    #[arg(long, value_name = "KIND", default_value = "serial")]
    console: vmm::ConsoleKind,
    /// A virtio-vsock device: cid=N,socket=PATH (host programs connect to PATH and send
    /// "CONNECT <port>\n"; guest connections to port P reach PATH_P).
    #[arg(long, value_name = "OPTIONS")]
    vsock: Option<vmm::VsockConfig>,
    /// x86-kvm: where the interrupt controllers live: kernel (KVM's PIC, IOAPIC, local
    /// APICs and PIT) or userspace (Tandem's 8259A PIC; one vCPU, no APICs, no PIT)
    /// [default: kernel].
    #[arg(long, value_name = "MODE")]
    irqchip: Option<IrqchipMode>,
    /// x86-kvm: print the vCPUs' exit and interrupt counters to stderr at the end, as
    /// one `tandem-stats:` line.
    #[arg(long)]
    stats: bool,
}

impl RunArgs {
    fn io(&self) -> vmm::IoConfig {
        vmm::IoConfig {
            disks: self.disk.clone(),
            nets: self.net.clone(),
            rng: self.rng,
            console: self.console,
            vsock: self.vsock.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    X86(#[from] vmm::MachineError),
    #[error(transparent)]
    Riscv(#[from] vmm::riscv::RiscvError),
    /// Bad command line (status 2).
    #[error("{0}")]
    Usage(String),
    /// A kernel for the other machine (status 1, like any unusable kernel).
    #[error("{0}")]
    WrongKernel(String),
}

/// The machine a kernel is for, from its first bytes.
fn detect_machine(kernel: &std::path::Path) -> MachineKind {
    let mut head = [0u8; 64];
    let n = std::fs::File::open(kernel)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    if vmm::riscv::image::looks_like_image(&head[..n]) {
        MachineKind::RiscvVirt
    } else {
        MachineKind::X86Kvm
    }
}

fn run(args: RunArgs, started: Instant) -> Result<i32, RunError> {
    let machine = match (args.machine, &args.kernel) {
        (Some(m), _) => m,
        (None, Some(k)) => detect_machine(k),
        (None, None) if args.bios.is_some() => MachineKind::RiscvVirt,
        (None, None) => return Err(RunError::Usage("--kernel is required".into())),
    };
    let io = args.io();
    let reason = match machine {
        MachineKind::X86Kvm => {
            let Some(kernel) = args.kernel else {
                return Err(RunError::Usage("--kernel is required on x86-kvm".into()));
            };
            if args.bios.is_some() || args.dump_dtb.is_some() || args.gdb.is_some() {
                return Err(RunError::Usage(
                    "--bios, --dump-dtb and --gdb are options of --machine riscv-virt".into(),
                ));
            }
            if detect_machine(&kernel) == MachineKind::RiscvVirt {
                return Err(RunError::WrongKernel(format!(
                    "{} is a RISC-V kernel Image: x86-kvm cannot boot it (use --machine riscv-virt)",
                    kernel.display()
                )));
            }
            let config = VmConfig {
                kernel,
                initrd: args.initrd,
                cmdline: args
                    .cmdline
                    .unwrap_or_else(|| "console=ttyS0 reboot=k panic=1".into()),
                memory: args.memory,
                cpus: args.cpus,
                serial: args.serial,
                io,
                irqchip: args.irqchip.unwrap_or_default(),
            };
            let machine = X86Machine::new(&config, started)?;
            let stats = machine.stats();
            let reason = machine.run()?;
            if args.stats {
                eprintln!("tandem-stats: {}", stats.summary());
            }
            reason
        }
        MachineKind::RiscvVirt => {
            if args.irqchip.is_some() || args.stats {
                return Err(RunError::Usage(
                    "--irqchip and --stats are options of --machine x86-kvm".into(),
                ));
            }
            let config = vmm::riscv::RiscvConfig {
                kernel: args.kernel,
                initrd: args.initrd,
                cmdline: args
                    .cmdline
                    .unwrap_or_else(|| "console=ttyS0 panic=-1".into()),
                memory: args.memory,
                cpus: args.cpus,
                serial: args.serial,
                bios: args.bios,
                backend: match args.backend {
                    BackendArg::Native => riscv::Backend::Native,
                    BackendArg::Interp => riscv::Backend::Interp,
                },
                gdb: args.gdb,
                io,
            };
            if let Some(path) = &args.dump_dtb {
                vmm::riscv::dump_dtb(&config, path)?;
                return Ok(0);
            }
            vmm::riscv::RiscvMachine::new(&config)?.run()?
        }
    };
    if let Some(line) = reason.describe() {
        eprintln!("tandem: {line}");
    }
    Ok(reason.exit_status())
}

fn main() -> ExitCode {
    let started = Instant::now();
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    logger.format_timestamp(None).format_target(false);
    if std::env::var_os("RUST_LOG").is_none() {
        // gdbstub logs every packet it does not implement at info level.
        logger.filter_module("gdbstub", log::LevelFilter::Warn);
    }
    logger.init();
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Run(args) => match run(args, started) {
            Ok(status) => status,
            Err(RunError::Usage(e)) => {
                eprintln!("tandem: {e}");
                2
            }
            Err(e) => {
                eprintln!("tandem: {e}");
                1
            }
        },
    };
    ExitCode::from(status.clamp(0, 255) as u8)
}
