//! tandem-riscv64 against qemu-riscv64-static on C programs from tests/riscv-programs,
//! compiled here with riscv64-linux-gnu-gcc, both static and dynamic. Stdout and the exit
//! status (code or terminating signal) must be identical. Also the bad-input exit codes.
//!
//! Needs Debian's gcc-riscv64-linux-gnu and qemu-user-static; missing tools fail the test with
//! a message naming the package.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

#[path = "../../../tests/support/user_tools.rs"]
mod user_tools;
use user_tools::{need, repo, status_str};

const SYSROOT: &str = "/usr/riscv64-linux-gnu";
const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-riscv64");

/// Compiles tests/riscv-programs/NAME.c once per test run (tests run in parallel and share
/// programs, so compilation is serialised and cached).
fn compile(name: &str, static_link: bool) -> PathBuf {
    static CACHE: Mutex<Vec<(String, bool, PathBuf)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, p)) = cache
        .iter()
        .find(|(n, s, _)| n == name && *s == static_link)
    {
        return p.clone();
    }
    let p = compile_uncached(name, static_link);
    cache.push((name.to_string(), static_link, p.clone()));
    p
}

fn compile_uncached(name: &str, static_link: bool) -> PathBuf {
    need("riscv64-linux-gnu-gcc", "gcc-riscv64-linux-gnu");
    let src = repo()
        .join("tests/riscv-programs")
        .join(format!("{name}.c"));
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("riscv-programs");
    std::fs::create_dir_all(&out_dir).unwrap();
    let kind = if static_link { "static" } else { "dyn" };
    let out = out_dir.join(format!("{name}-{kind}"));
    let mut cmd = Command::new("riscv64-linux-gnu-gcc");
    cmd.args(["-O2", "-g", "-Wall", "-o"]).arg(&out).arg(&src);
    if static_link {
        cmd.arg("-static");
    }
    cmd.args(["-lm", "-pthread", "-lrt"]);
    let o = cmd.output().expect("run riscv64-linux-gnu-gcc");
    assert!(
        o.status.success(),
        "compiling {}: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("spawn")
}

fn tandem(prog: &Path, args: &[&str]) -> Output {
    run(Command::new(TANDEM)
        .arg("-L")
        .arg(SYSROOT)
        .arg(prog)
        .args(args)
        .env_remove("QEMU_LD_PREFIX"))
}

fn qemu(prog: &Path, args: &[&str]) -> Output {
    need("qemu-riscv64-static", "qemu-user-static");
    run(Command::new("qemu-riscv64-static")
        .arg("-L")
        .arg(SYSROOT)
        .arg(prog)
        .args(args))
}

fn tandem_interp(prog: &Path) -> Output {
    run(Command::new(TANDEM)
        .args(["--backend", "interp", "-L", SYSROOT])
        .arg(prog)
        .env_remove("QEMU_LD_PREFIX"))
}

/// Static and dynamic builds on the default (native) backend, and the static build on the IR
/// interpreter: user mode must behave the same whichever backend runs the code.
fn compare(name: &str) {
    for (static_link, interp) in [(true, false), (false, false), (true, true)] {
        let prog = compile(name, static_link);
        let want = qemu(&prog, &[]);
        let got = if interp {
            tandem_interp(&prog)
        } else {
            tandem(&prog, &[])
        };
        let label = format!(
            "{name} ({}{})",
            if static_link { "static" } else { "dynamic" },
            if interp { ", --backend interp" } else { "" }
        );
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&want.stdout),
            "{label}: stdout differs from qemu; tandem stderr:\n{}",
            String::from_utf8_lossy(&got.stderr)
        );
        assert_eq!(
            status_str(&got),
            status_str(&want),
            "{label}: exit status differs from qemu; tandem stderr:\n{}",
            String::from_utf8_lossy(&got.stderr)
        );
    }
}

macro_rules! same_as_qemu {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            compare(stringify!($name));
        }
    )*};
}

same_as_qemu!(
    hello,
    prctl_caps,
    setxid_threads,
    sigpipe,
    reserved_sigs,
    ioctls,
    execerrors,
    files,
    threads,
    signals,
    setjmp,
    malloc,
    floats,
    jit,
    jit_nofence,
    jump_garbage,
    jump_illegal,
    procmaps,
    misc,
    mainexit,
    sigbus,
    spawn,
    auxv,
    net,
    ucontext,
    altstack,
    jit_read,
    raise,
    timers,
    rtqueue,
    spin,
    misaligned_amo,
    fpmodes,
    fpthreads,
    litmus,
    forkjit
);

/// Runs test program `name` (static and dynamic) under tandem, expecting exactly `stdout`
/// and exit status 0: for programs qemu-user cannot be the reference for.
fn expect_output(name: &str, stdout: &str) {
    for static_link in [true, false] {
        let prog = compile(name, static_link);
        let o = tandem(&prog, &[]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            stdout,
            "{name} (static {static_link}): stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(status_str(&o), "exit 0", "{name} (static {static_link})");
    }
}

/// qemu-user needs binfmt_misc to run a RISC-V program the guest execs, so this one checks
/// the expected output directly.
#[test]
fn forkexec() {
    expect_output(
        "forkexec",
        "child: argc=3 arg2=two env=passed\nparent: child exited=1 code=7\n",
    );
}

/// Descriptors 0 and 2 closed at start stay closed for the guest, as under qemu-user (the
/// Rust runtime opens /dev/null on them; Tandem closes those before the guest runs).
#[test]
fn closed_standard_fds() {
    use std::os::unix::process::CommandExt;
    need("qemu-riscv64-static", "qemu-user-static");
    for static_link in [true, false] {
        let prog = compile("closedfds", static_link);
        let with = |tool: &str| {
            let mut cmd = Command::new(tool);
            cmd.arg("-L").arg(SYSROOT).arg(&prog).stdout(Stdio::piped());
            // SAFETY: only close() between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::close(0);
                    libc::close(2);
                    Ok(())
                });
            }
            cmd.output().expect("spawn")
        };
        let want = with("qemu-riscv64-static");
        let got = with(TANDEM);
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&want.stdout),
            "static {static_link}"
        );
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            "fd 0: closed\nfd 1: open\nfd 2: closed\nnext open: 0\n"
        );
    }
}

/// /proc/self/cmdline is the guest's argv, also after an exec with arguments (which
/// qemu-user, without binfmt_misc, cannot do).
#[test]
fn cmdline() {
    let line = |n| {
        format!(
            "/proc/self/cmdline: {n} entries, same as argv\n/proc/PID/cmdline: {n} entries, same as argv\n"
        )
    };
    expect_output("cmdline", &(line(1) + &line(4)));
}

/// fork + execve from a multithreaded parent whose other threads keep translating code
/// (qemu-user cannot exec the RISC-V child without binfmt_misc).
#[test]
fn forkexec_threads() {
    expect_output(
        "forkexec_threads",
        "exec'd child 0: work 48484\nchild 0 exited 20\n\
         exec'd child 1: work 58435\nchild 1 exited 21\n\
         exec'd child 2: work 40833\nchild 2 exited 22\n\
         exec'd child 3: work 64359\nchild 3 exited 23\n\
         parent done 3380897\n",
    );
}

/// A forked child keeps the translations it inherited: with `--stats` each process prints
/// its own line, and the child forked after the parent ran `work()` (32 functions)
/// translates at least 32 blocks fewer than the one forked before. Counts, no timing.
#[test]
fn forked_child_keeps_translations() {
    let blocks = |line: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix("blocks="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no blocks= in {line:?}"))
    };
    for (static_link, backend) in [(true, "native"), (false, "native"), (true, "interp")] {
        let prog = compile("forkstats", static_link);
        let o = run(Command::new(TANDEM)
            .args(["--stats", "--backend", backend, "-L", SYSROOT])
            .arg(&prog)
            .env_remove("QEMU_LD_PREFIX"));
        let label = format!("forkstats (static {static_link}, {backend})");
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            out, "child exited 0\nchild exited 0\nparent 376555876\n",
            "{label}"
        );
        let err = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("tandem-stats:"))
            .collect();
        assert_eq!(
            lines.len(),
            3,
            "{label}: one statistics line per process: {err}"
        );
        let (before, after) = (blocks(lines[0]), blocks(lines[1]));
        assert!(
            after + 32 <= before,
            "{label}: the child forked after work() ran translated {after} blocks, the one \
             forked before {before}: inherited translations were not used"
        );
    }
}

/// `#!` scripts whose interpreter is a RISC-V program run under Tandem with Linux's argv
/// (the host would need a binfmt_misc handler; qemu-user without one fails).
#[test]
fn shebang() {
    expect_output(
        "shebang",
        "interp: arg=--interp-arg script=ok rest=x,y argv0=ok\nchild exit 5\n\
         not executable: EACCES\nmissing interpreter: ENOENT\n",
    );
}

/// vfork and posix_spawn share memory with the parent until exec or exit (qemu-user forks
/// instead, so a posix_spawn of a missing program succeeds there).
#[test]
fn vfork() {
    expect_output(
        "vfork",
        "posix_spawn missing: ENOENT\nposix_spawnp missing: ENOENT\n\
         spawned child: spawned\nposix_spawn self: rc=0 exit=9\nvfork: shared=42 exit=3\n\
         vfork exec: ENOENT exit=127\nparent's SIGUSR1 still ignored\n",
    );
}

/// fexecve and execveat run a RISC-V program (qemu-user, without binfmt_misc, cannot).
#[test]
fn fexec() {
    expect_output(
        "fexec",
        "child via fexecve: argv[0]=fexec\nfexecve: exit 7\n\
         child via execveat AT_EMPTY_PATH: argv[0]=fexec\nexecveat AT_EMPTY_PATH: exit 7\n\
         child via execveat dirfd: argv[0]=fexec\nexecveat dirfd: exit 7\n\
         execveat bad flags failed: Invalid argument\nexecveat bad flags: exit 1\n\
         child via fexecve memfd: argv[0]=fexec\nfexecve memfd: exit 7\n",
    );
}

/// The guest starts with the SIGPIPE disposition Tandem was started with: ignored here
/// (the `sigpipe` comparison with QEMU covers the default one).
#[test]
fn sigpipe_ignored_is_inherited() {
    use std::os::unix::process::CommandExt;
    let prog = compile("sigpipe", true);
    let mut cmd = Command::new(TANDEM);
    cmd.arg(&prog);
    // SAFETY: only async-signal-safe signal() between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            Ok(())
        });
    }
    let o = run(&mut cmd);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "SIGPIPE at start: ignored\nwrite survived: -1 Broken pipe\n"
    );
    assert_eq!(status_str(&o), "exit 0");
}

/// SIGFPE sent by another thread and another process reaches the guest's handler, is dropped
/// when ignored and kills by default (Tandem owns SIGFPE on the host for its inline FP
/// arithmetic). Checked against the expected output: qemu-user itself sometimes loses the
/// process to the signal sent from the child.
#[test]
fn fpesent() {
    expect_output(
        "fpesent",
        "from a thread: 1008\nfrom a process: 1008\nignored, still here\ndefault: signaled 1 sig 8\n",
    );
}

#[test]
fn interp_backend_runs_hello() {
    let prog = compile("hello", true);
    let o = run(Command::new(TANDEM)
        .args(["--backend", "interp"])
        .arg(&prog)
        .arg("x"));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello from riscv: argc=2\n"
    );
    assert_eq!(status_str(&o), "exit 3");
}

/// `--stats` reaches the standard error Tandem was started with even when the guest closed
/// its own before exiting.
#[test]
fn stats_survive_the_guest_closing_stderr() {
    let prog = compile("closestderr", true);
    assert_exits_with_stats(&run(Command::new(TANDEM).arg("--stats").arg(&prog)));
}

/// The run exited with status 0 and printed its `--stats` line on Tandem's stderr.
fn assert_exits_with_stats(o: &Output) {
    assert_eq!(status_str(o), "exit 0");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines().any(|l| l.starts_with("tandem-stats: blocks=")),
        "no statistics line in {err:?}"
    );
}

/// ...and never into a file the guest put at the descriptor number Tandem's copy had.
#[test]
fn stats_skip_a_guest_file_at_their_descriptor() {
    let prog = compile("statsfd", true);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("statsfd");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("guest.log");
    assert_exits_with_stats(&run(Command::new(TANDEM)
        .arg("--stats")
        .arg(&prog)
        .arg(&file)));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"",
        "the guest's file got Tandem's output"
    );
}

/// Blocks are interpreted for their first runs and compiled after: start-up code that runs
/// once stays interpreted, a hot loop gets native code (read from `--stats`).
#[test]
fn cold_blocks_are_interpreted_hot_ones_compiled() {
    let stat = |prog: &Path, key: &str| -> u64 {
        let o = run(Command::new(TANDEM).arg("--stats").arg(prog));
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let line = err
            .lines()
            .find(|l| l.starts_with("tandem-stats:"))
            .unwrap_or_else(|| panic!("no statistics line in {err:?}"));
        let field = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"));
        field.parse().unwrap()
    };
    let hello = compile("hello", true);
    let (blocks, native) = (stat(&hello, "blocks"), stat(&hello, "native_blocks"));
    assert!(
        native > 0 && native * 2 < blocks,
        "hello world: {native} of {blocks} blocks compiled (want most left to the interpreter)"
    );
    let spin = compile("spin", true);
    assert!(
        stat(&spin, "native_blocks") > 0,
        "the spin loops were never compiled"
    );
}

fn bad(args: &[&Path]) -> (i32, String) {
    let o = run(Command::new(TANDEM).args(args).env_remove("QEMU_LD_PREFIX"));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("tandem-riscv64: "), "{err:?}");
    (o.status.code().unwrap_or(-1), err)
}

#[test]
fn bad_inputs() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bad-inputs");
    std::fs::create_dir_all(&dir).unwrap();

    let (code, err) = bad(&[&dir.join("does-not-exist")]);
    assert_eq!(code, 127, "{err}");

    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let text = dir.join("text");
    std::fs::write(&text, "just some text\n").unwrap();
    executable(&text);
    let (code, err) = bad(&[&text]);
    assert_eq!(code, 126);
    assert!(err.contains("not an ELF"), "{err}");

    let (code, err) = bad(&[Path::new("/proc/self/exe")]);
    assert_eq!(code, 126);
    assert!(err.contains("not a RISC-V"), "{err}");

    let full = std::fs::read(compile("hello", true)).unwrap();
    let trunc = dir.join("truncated");
    std::fs::write(&trunc, &full[..3000]).unwrap();
    executable(&trunc);
    let (code, err) = bad(&[&trunc]);
    assert_eq!(code, 126);
    assert!(err.contains("truncated"), "{err}");

    // A dynamic program without -L: the interpreter is not on this (x86-64) host.
    let dynamic = compile("hello", false);
    if !Path::new("/lib/ld-linux-riscv64-lp64d.so.1").exists() {
        let (code, err) = bad(&[&dynamic]);
        assert_eq!(code, 127);
        assert!(err.contains("interpreter"), "{err}");
    }

    let (code, _) = bad(&[&dir]);
    assert_eq!(code, 126);

    // A good program without execute permission, as the kernel would refuse it.
    let noexec = dir.join("noexec");
    std::fs::write(&noexec, &full).unwrap();
    let (code, err) = bad(&[&noexec]);
    assert_eq!(code, 126);
    assert!(err.contains("permission denied"), "{err}");
}

/// -E, -U, -0 and QEMU_LD_PREFIX (instead of -L) behave as with qemu-riscv64. Options end at
/// the program: the program's own arguments that look like ours (`-E -f`, `-L`, `--strace`)
/// are its own (once clap took `sed -E -f script` as Tandem's `-E -f`).
#[test]
fn options_like_qemu() {
    need("qemu-riscv64-static", "qemu-user-static");
    let prog = compile("envargs", false);
    let opts = [
        "-E",
        "TANDEM_A=1",
        "-E",
        "TANDEM_B=x=y",
        "-U",
        "TANDEM_GONE",
        "-0",
        "name0",
    ];
    let with = |tool: &str| {
        run(Command::new(tool)
            .args(opts)
            .arg(&prog)
            .args([
                "one", "-two", "-E", "-f", "-L", "x", "--strace", "-0", "--", "-U",
            ])
            .env("QEMU_LD_PREFIX", SYSROOT)
            .env("TANDEM_GONE", "still here"))
    };
    let want = with("qemu-riscv64-static");
    let got = with(TANDEM);
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        String::from_utf8_lossy(&want.stdout),
        "stderr: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(status_str(&got), status_str(&want));
    assert!(String::from_utf8_lossy(&got.stdout).contains("argv[0]=name0"));
}

/// --strace prints one line per syscall on stderr, with the result.
#[test]
fn strace_lines() {
    let prog = compile("hello", true);
    let o = run(Command::new(TANDEM).arg("--strace").arg(&prog));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines()
            .any(|l| l.contains(" write(1,") && l.ends_with(" = 25")),
        "{err}"
    );
    assert!(err.lines().any(|l| l.contains(" exit_group(3)")), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello from riscv: argc=1\n"
    );
}

/// A non-PIE dynamic executable, and the dynamic loader run as the program itself (a static
/// position-independent executable; Debian's cross libc has no rcrt1.o for -static-pie).
#[test]
fn pie_variants() {
    need("riscv64-linux-gnu-gcc", "gcc-riscv64-linux-gnu");
    let src = repo().join("tests/riscv-programs/hello.c");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pie-variants");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("no-pie");
    let o = Command::new("riscv64-linux-gnu-gcc")
        .args(["-O2", "-no-pie", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("run riscv64-linux-gnu-gcc");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ldso = PathBuf::from(SYSROOT).join("lib/ld-linux-riscv64-lp64d.so.1");
    let lib = format!("{SYSROOT}/lib");
    let pie = compile("hello", false);
    let cases: [(&Path, Vec<&str>); 2] = [
        (&out, vec!["a"]),
        (
            &ldso,
            vec!["--library-path", &lib, pie.to_str().unwrap(), "a"],
        ),
    ];
    for (prog, args) in cases {
        let want = qemu(prog, &args);
        let got = tandem(prog, &args);
        assert_eq!(
            got.stdout,
            want.stdout,
            "{}: {}",
            prog.display(),
            String::from_utf8_lossy(&got.stderr)
        );
        assert_eq!(status_str(&got), status_str(&want), "{}", prog.display());
        assert_eq!(
            String::from_utf8_lossy(&got.stdout),
            "hello from riscv: argc=2\n"
        );
    }
}
