//! `tandem`: the command line. Everything else lives in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use vmm::{SerialConfig, VmConfig, X86Machine};

const RUN_EXIT_STATUSES: &str = "\
Exit status:
  0        the guest powered off (or wrote 0 to the debug port)
  N        the guest wrote N to the debug port (port 0xf4; low 8 bits)
  1        Tandem could not start or run the VM (bad kernel, initrd, memory, CPUs, no KVM)
  2        invalid command line
  3        the guest requested a reset (e.g. reboot through the i8042)
  4        the guest crashed: a vCPU triple-faulted
  5        KVM could not run the guest (e.g. an instruction it cannot emulate)
  128+N    Tandem was stopped by signal N (130 SIGINT, 143 SIGTERM; Ctrl-A x at the console counts as SIGINT)";

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "Tandem: a virtual machine monitor on KVM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot an x86-64 Linux kernel (bzImage or ELF vmlinux) on KVM.
    #[command(after_help = RUN_EXIT_STATUSES)]
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Kernel image: a bzImage, or an ELF vmlinux (entered through PVH when it has the note).
    #[arg(long, value_name = "PATH")]
    kernel: PathBuf,
    /// Initial ramdisk.
    #[arg(long, value_name = "PATH")]
    initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(
        long,
        value_name = "STR",
        default_value = "console=ttyS0 reboot=k panic=1"
    )]
    cmdline: String,
    /// Guest RAM, in MiB or with a K/M/G suffix.
    #[arg(long, short = 'm', value_name = "SIZE", default_value = "256M", value_parser = vmm::parse_size)]
    memory: u64,
    /// Number of vCPUs.
    #[arg(long, value_name = "N", default_value_t = 1)]
    cpus: u8,
    /// Guest console (16550 at COM1): stdio, file:PATH or none.
    #[arg(long, value_name = "BACKEND", default_value = "stdio")]
    serial: SerialConfig,
}

fn run(args: RunArgs, started: Instant) -> Result<i32, vmm::MachineError> {
    let config = VmConfig {
        kernel: args.kernel,
        initrd: args.initrd,
        cmdline: args.cmdline,
        memory: args.memory,
        cpus: args.cpus,
        serial: args.serial,
    };
    let machine = X86Machine::new(&config, started)?;
    let reason = machine.run()?;
    if let Some(line) = reason.describe() {
        eprintln!("tandem: {line}");
    }
    Ok(reason.exit_status())
}

fn main() -> ExitCode {
    let started = Instant::now();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .format_target(false)
        .init();
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Run(args) => match run(args, started) {
            Ok(status) => status,
            Err(e) => {
                eprintln!("tandem: {e}");
                1
            }
        },
    };
    ExitCode::from(status.clamp(0, 255) as u8)
}
