//! `tandem-riscv64`: runs a RISC-V 64-bit Linux program on this host, like `qemu-riscv64`.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use linux_user::{Backend, Config, Options};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    Native,
    Interp,
}

/// Run a RISC-V 64-bit Linux program (static or dynamic) under the Tandem translator.
#[derive(Parser, Debug)]
#[command(name = "tandem-riscv64", version)]
struct Args {
    /// Sysroot holding the program's interpreter and libraries (also $QEMU_LD_PREFIX).
    #[arg(short = 'L', value_name = "SYSROOT")]
    sysroot: Option<PathBuf>,
    /// Set a variable in the guest environment.
    #[arg(short = 'E', value_name = "VAR=VALUE")]
    set_env: Vec<OsString>,
    /// Remove a variable from the guest environment.
    #[arg(short = 'U', value_name = "VAR")]
    unset_env: Vec<OsString>,
    /// Print one line per guest syscall to stderr.
    #[arg(long)]
    strace: bool,
    /// Translator backend.
    #[arg(long, value_enum, default_value = "native")]
    backend: BackendArg,
    /// Print translation statistics to stderr at exit (also TANDEM_STATS=1).
    #[arg(long)]
    stats: bool,
    /// Wait for gdb on TCP port PORT (localhost) before the first instruction, as
    /// qemu-user's -g; gdb: `target remote :PORT`. Debugs the program's first thread.
    #[arg(short = 'g', value_name = "PORT")]
    gdb_port: Option<u16>,
    /// argv[0] for the guest (default: PROGRAM).
    #[arg(short = '0', long = "argv0", value_name = "NAME")]
    argv0: Option<OsString>,
    /// The RISC-V program and its arguments. Options end at the program, as in qemu-user:
    /// `tandem-riscv64 sed -E -f x` gives sed its `-E` (one trailing positional does this;
    /// with the program a positional of its own, clap would take a later `-E` as ours).
    #[arg(
        value_name = "PROGRAM [ARGS]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<OsString>,
}

/// Runs before `main` (the C library calls `.init_array` entries first), while SIGPIPE still
/// has the disposition Tandem was started with and closed standard descriptors are still
/// closed: the Rust runtime then sets SIGPIPE to "ignore" and opens /dev/null on them, and
/// the guest must not inherit either.
#[used]
#[link_section = ".init_array"]
static RECORD_START_DISPOSITIONS: extern "C" fn() = record_start_dispositions;

extern "C" fn record_start_dispositions() {
    linux_user::hostsig::record_start_dispositions();
    // The runtime also opens /dev/null on closed standard descriptors.
    linux_user::stdfds::record_closed();
}

fn guest_env(args: &Args) -> Vec<Vec<u8>> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for u in &args.unset_env {
        env.retain(|(k, _)| k != u);
    }
    for s in &args.set_env {
        let b = s.as_bytes();
        let (k, v) = match b.iter().position(|&c| c == b'=') {
            Some(i) => (&b[..i], &b[i + 1..]),
            None => (b, &b""[..]),
        };
        let k = OsString::from_vec(k.to_vec());
        env.retain(|(ek, _)| *ek != k);
        env.push((k, OsString::from_vec(v.to_vec())));
    }
    env.into_iter()
        .map(|(k, v)| {
            let mut e = k.into_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect()
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let Some((program, rest)) = args.command.split_first() else {
        // clap requires one value at least; kept as a usage error rather than a panic.
        eprintln!("tandem-riscv64: no program given");
        std::process::exit(2);
    };
    let stats = args.stats || std::env::var_os("TANDEM_STATS").is_some_and(|v| v == "1");
    let mut argv = vec![args
        .argv0
        .clone()
        .unwrap_or_else(|| program.clone())
        .into_vec()];
    argv.extend(rest.iter().map(|a| a.as_bytes().to_vec()));
    let cfg = Config {
        program: program.to_string_lossy().into_owned(),
        argv,
        env: guest_env(&args),
        opts: Options {
            sysroot: args
                .sysroot
                .clone()
                .or_else(|| std::env::var_os("QEMU_LD_PREFIX").map(PathBuf::from))
                .filter(|p| !p.as_os_str().is_empty())
                // Absolute, so guest chdir does not change where paths resolve.
                .map(|p| std::fs::canonicalize(&p).unwrap_or(p)),
            strace: args.strace,
            backend: match args.backend {
                BackendArg::Native => Backend::Native,
                BackendArg::Interp => Backend::Interp,
            },
            stats,
        },
    };
    let result = match args.gdb_port {
        None => linux_user::run(cfg),
        Some(port) => {
            let addr = gdb::Addr::Tcp(format!("localhost:{port}"));
            let listener = gdb::Listener::bind(&addr).unwrap_or_else(|e| {
                eprintln!("tandem-riscv64: {e}");
                std::process::exit(1);
            });
            eprintln!("tandem-riscv64: waiting for gdb on {}", listener.describe());
            linux_user::run_debugged(cfg, listener)
        }
    };
    match result {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("tandem-riscv64: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
