//! `tandem-riscv64`: runs a RISC-V 64-bit Linux program on this host, like `qemu-riscv64`.
//!
//! Started by binfmt_misc (after `--binfmt register`), it takes no options: the kernel passes
//! `[tandem, path, argv[0], args...]` and the program's fd (see `linux_user::binfmt`).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use linux_user::binfmt::{self, BinfmtError, Registered};
use linux_user::{Backend, Config, Options};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    Native,
    Interp,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BinfmtAction {
    Register,
    Unregister,
    Status,
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
    /// Print translation statistics to stderr at exit (also TANDEM_STATS=1). A copy of
    /// stderr (descriptor 100 or above) is kept for it: programs often close theirs first.
    #[arg(long)]
    stats: bool,
    /// Wait for gdb on TCP port PORT (localhost) before the first instruction, as
    /// qemu-user's -g; gdb: `target remote :PORT`. Debugs the program's first thread.
    #[arg(short = 'g', value_name = "PORT")]
    gdb_port: Option<u16>,
    /// argv[0] for the guest (default: PROGRAM).
    #[arg(short = '0', long = "argv0", value_name = "NAME")]
    argv0: Option<OsString>,
    /// Register this program with the kernel's binfmt_misc as the handler of RISC-V 64-bit
    /// ELF programs (flags POCF: they then run as `./prog`, also in a chroot), remove that
    /// handler, or show it (status exits 1 when it is not registered). Needs root and a
    /// static build for chroots (scripts/build-static-riscv64.sh).
    #[arg(long, value_enum, value_name = "ACTION", conflicts_with = "command")]
    binfmt: Option<BinfmtAction>,
    /// Name of the binfmt_misc handler [default: tandem-riscv64].
    #[arg(long, value_name = "NAME")]
    binfmt_name: Option<String>,
    /// Register even a dynamically linked build (it then cannot start inside a chroot).
    #[arg(long)]
    binfmt_allow_dynamic: bool,
    /// The RISC-V program and its arguments. Options end at the program, as in qemu-user:
    /// `tandem-riscv64 sed -E -f x` gives sed its `-E` (one trailing positional does this;
    /// with the program a positional of its own, clap would take a later `-E` as ours).
    #[arg(
        value_name = "PROGRAM [ARGS]",
        required_unless_present = "binfmt",
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

fn env_is_1(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v == "1")
}

fn sysroot(arg: Option<PathBuf>) -> Option<PathBuf> {
    arg.or_else(|| std::env::var_os("QEMU_LD_PREFIX").map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty())
        // Absolute, so guest chdir does not change where paths resolve.
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
}

fn fail(e: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("tandem-riscv64: {e}");
    std::process::exit(code);
}

/// Started by binfmt_misc with the program open as `file`: no options to parse (they would
/// be the program's own arguments); TANDEM_STRACE=1, TANDEM_STATS=1 and QEMU_LD_PREFIX
/// still apply, except for a set-user-ID program, where they would let the caller choose
/// the dynamic loader run with its owner's rights, or see its syscalls.
fn binfmt_config(file: std::fs::File) -> Config {
    let trusted_env = !binfmt::secure();
    let mut raw = std::env::args_os().skip(1).map(OsString::into_vec);
    let Some(program) = raw.next() else {
        fail("started by binfmt_misc without the program's path", 126);
    };
    // The P flag keeps the original argv[0] after the path; a program exec'd with an empty
    // argv has none, and gets its path as argv[0] as the kernel would give it.
    let mut argv: Vec<Vec<u8>> = raw.collect();
    if argv.is_empty() {
        argv.push(program.clone());
    }
    Config {
        program: String::from_utf8_lossy(&program).into_owned(),
        argv,
        env: std::env::vars_os()
            .map(|(k, v)| {
                let mut e = k.into_vec();
                e.push(b'=');
                e.extend_from_slice(v.as_bytes());
                e
            })
            .collect(),
        opts: Options {
            sysroot: sysroot(None).filter(|_| trusted_env),
            strace: trusted_env && env_is_1("TANDEM_STRACE"),
            backend: Backend::Native,
            stats: trusted_env && env_is_1("TANDEM_STATS"),
            binfmt: true,
        },
        program_file: Some(Arc::new(file)),
    }
}

/// `--binfmt ACTION`: returns the exit status.
fn binfmt_command(action: BinfmtAction, args: &Args) -> Result<i32, BinfmtError> {
    let name = args.binfmt_name.as_deref().unwrap_or(binfmt::DEFAULT_NAME);
    match action {
        BinfmtAction::Register => {
            // Root first: an unprivileged caller may not even be able to resolve our path
            // (a private directory), and "needs root" is the error that helps.
            binfmt::check_root()?;
            let me = std::env::current_exe()
                .and_then(std::fs::canonicalize)
                .map_err(|source| BinfmtError::Io {
                    path: PathBuf::from("/proc/self/exe"),
                    source,
                })?;
            match binfmt::register(name, &me, args.binfmt_allow_dynamic)? {
                Registered::New => println!(
                    "registered binfmt_misc handler {name}: {} runs RISC-V 64-bit programs (flags {})",
                    me.display(),
                    binfmt::FLAGS
                ),
                Registered::Already => println!(
                    "binfmt_misc handler {name} was already registered for {}",
                    me.display()
                ),
            }
            Ok(0)
        }
        BinfmtAction::Unregister => {
            binfmt::unregister(name)?;
            println!("removed binfmt_misc handler {name}");
            Ok(0)
        }
        BinfmtAction::Status => {
            let code = match binfmt::find(name)? {
                Some(e) => {
                    println!(
                        "binfmt_misc handler {name}: {}, interpreter {}, flags {}",
                        if e.enabled { "enabled" } else { "disabled" },
                        e.interpreter,
                        e.flags
                    );
                    0
                }
                None => {
                    println!("binfmt_misc handler {name}: not registered");
                    1
                }
            };
            for r in binfmt::rivals(name)? {
                println!(
                    "binfmt_misc handler {} (interpreter {}) also takes RISC-V 64-bit programs",
                    r.name, r.interpreter
                );
            }
            Ok(code)
        }
    }
}

fn main() {
    let mut log = env_logger::Builder::new();
    log.filter_level(log::LevelFilter::Warn);
    if !binfmt::secure() {
        log.parse_env(env_logger::Env::default());
    }
    log.init();
    if let Some(file) = binfmt::exec_file() {
        match linux_user::run(binfmt_config(file)) {
            Ok(never) => match never {},
            Err(e) => fail(&e, e.exit_code()),
        }
    }
    let args = Args::parse();
    if let Some(action) = args.binfmt {
        match binfmt_command(action, &args) {
            Ok(code) => std::process::exit(code),
            Err(e) => fail(e, 1),
        }
    }
    if args.binfmt_name.is_some() || args.binfmt_allow_dynamic {
        fail(
            "--binfmt-name and --binfmt-allow-dynamic go with --binfmt",
            2,
        );
    }
    let Some((program, rest)) = args.command.split_first() else {
        fail("no program given", 2);
    };
    let stats = args.stats || env_is_1("TANDEM_STATS");
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
            sysroot: sysroot(args.sysroot.clone()),
            strace: args.strace,
            backend: match args.backend {
                BackendArg::Native => Backend::Native,
                BackendArg::Interp => Backend::Interp,
            },
            stats,
            binfmt: false,
        },
        program_file: None,
    };
    let result = match args.gdb_port {
        None => linux_user::run(cfg),
        Some(port) => {
            let addr = gdb::Addr::Tcp(format!("localhost:{port}"));
            let listener = gdb::Listener::bind(&addr).unwrap_or_else(|e| fail(e, 1));
            eprintln!("tandem-riscv64: waiting for gdb on {}", listener.describe());
            linux_user::run_debugged(cfg, listener)
        }
    };
    match result {
        Ok(never) => match never {},
        Err(e) => fail(&e, e.exit_code()),
    }
}
