//! The GDB stubs with Debian's gdb-multiarch: `tandem run --machine riscv-virt --gdb` on
//! the shared RISC-V kernel (breakpoints on physical and virtual addresses, single steps,
//! memory, CSRs, Ctrl-C, kill, the guest's power-off reported as an exit) and
//! `tandem-riscv64 -g PORT` on C programs (break at main, step, strings, Ctrl-C, memory
//! writes, the exit code).
//!
//! Skipped with a printed reason when gdb-multiarch, the RISC-V compiler or the shared
//! guest is missing. Every wait is on an event (a line printed, a socket appearing); the
//! only time limit is a generous guard against hangs.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Not a timing assertion: a guard so a broken stub fails instead of hanging CI.
const HANG_GUARD: Duration = Duration::from_secs(300);
const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const TANDEM_USER: &str = env!("CARGO_BIN_EXE_tandem-riscv64");

fn have(tool: &str, test: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("{test}: skipped: {tool} is not installed");
    }
    ok
}

fn guest_dir() -> PathBuf {
    std::env::var_os("TANDEM_GUEST_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/guest"),
        PathBuf::from,
    )
}

/// The shared kernel and initramfs, or None (with a printed reason).
fn guest(test: &str) -> Option<(PathBuf, PathBuf)> {
    let d = guest_dir();
    let (k, i) = (
        d.join("linux-riscv64.Image"),
        d.join("initramfs-riscv64.cpio.gz"),
    );
    if k.exists() && i.exists() {
        Some((k, i))
    } else {
        eprintln!("{test}: skipped: no shared RISC-V guest in {}", d.display());
        None
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gdb-tests");
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Text a child prints, collected by a thread as it comes.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<String>>);

impl Output {
    fn collect(stream: impl Read + Send + 'static) -> Output {
        let out = Output::default();
        let o = out.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.0.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        out
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits until `what` has been printed (after byte `from`); the text from there.
    fn wait_for(&self, what: &str, from: usize, label: &str) -> String {
        let start = Instant::now();
        loop {
            let t = self.text();
            if let Some(i) = t.get(from..).and_then(|s| s.find(what)) {
                return t[from..from + i + what.len()].to_string();
            }
            assert!(
                start.elapsed() < HANG_GUARD,
                "{label}: `{what}` never came; so far:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// Waits for a child to end (killing it past the hang guard); its exit code.
fn wait_exit(child: &mut Child, label: &str) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s.code();
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            panic!("{label}: did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_path(p: &Path, child: &mut Child) {
    let start = Instant::now();
    while !p.exists() {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("tandem ended ({s}) before listening on {}", p.display());
        }
        assert!(start.elapsed() < HANG_GUARD, "no socket {}", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `tandem run` on the shared kernel with `--gdb unix:SOCK`, once it listens.
struct Machine {
    child: Child,
    stdin: ChildStdin,
    stdout: Output,
    stderr: Output,
    sock: PathBuf,
}

fn start_machine(name: &str, kernel: &Path, initrd: &Path, cmdline: &str, cpus: u8) -> Machine {
    // Short and in /tmp: a socket path must fit in 108 bytes.
    let sock = std::env::temp_dir().join(format!("tandem-gdb-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let mut child = Command::new(TANDEM)
        .args(["run", "--machine", "riscv-virt", "--memory", "256M"])
        .arg("--kernel")
        .arg(kernel)
        .arg("--initrd")
        .arg(initrd)
        .args(["--cmdline", cmdline])
        .args(["--cpus", &cpus.to_string()])
        .arg("--gdb")
        .arg(format!("unix:{}", sock.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tandem");
    let stdout = Output::collect(child.stdout.take().unwrap());
    let stderr = Output::collect(child.stderr.take().unwrap());
    let stdin = child.stdin.take().unwrap();
    wait_for_path(&sock, &mut child);
    Machine {
        child,
        stdin,
        stdout,
        stderr,
        sock,
    }
}

/// gdb-multiarch --batch with these commands; its output.
fn gdb_batch(cmds: &[&str]) -> String {
    let mut c = Command::new("gdb-multiarch");
    c.args(["--batch", "-nx"]);
    for cmd in cmds {
        c.arg("-ex").arg(cmd);
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gdb");
    let out = Output::collect(child.stdout.take().unwrap());
    let err = Output::collect(child.stderr.take().unwrap());
    wait_exit(&mut child, "gdb --batch");
    // The reader threads finish with the pipes.
    std::thread::sleep(Duration::from_millis(100));
    format!("{}{}", out.text(), err.text())
}

/// An interactive gdb fed through its stdin, so a test can interrupt it (SIGINT, as
/// Ctrl-C at a terminal) while the target runs.
struct Gdb {
    child: Child,
    stdin: ChildStdin,
    out: Output,
}

impl Gdb {
    fn start(setup: &[&str]) -> Gdb {
        let mut c = Command::new("gdb-multiarch");
        c.args(["-q", "-nx"]);
        for cmd in setup {
            c.arg("-ex").arg(cmd);
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gdb");
        // One stream: the order of messages matters to the waits.
        let out = Output::collect(child.stdout.take().unwrap());
        let err = child.stderr.take().unwrap();
        let o = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                o.0.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let stdin = child.stdin.take().unwrap();
        Gdb { child, stdin, out }
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Runs `cmd` and waits for its output to end (a marker echoed after it).
    fn run(&mut self, cmd: &str) -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let mark = format!(
            "@@done{}@@",
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let from = self.out.len();
        self.send(cmd);
        self.send(&format!("echo {mark}\\n"));
        self.out.wait_for(&mark, from, cmd)
    }

    fn interrupt(&self) {
        // SAFETY: kill with a valid pid of our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
    }
}

impl Drop for Gdb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `info registers pc` output's value.
fn pc_of(out: &str) -> u64 {
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with("pc "))
        .unwrap_or_else(|| panic!("no pc in:\n{out}"));
    let hex = line.split_whitespace().nth(1).unwrap();
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn virt_breakpoint_step_memory_then_poweroff() {
    let test = "virt_breakpoint_step_memory_then_poweroff";
    let Some((k, i)) = guest(test) else { return };
    if !have("gdb-multiarch", test) {
        return;
    }
    let mut m = start_machine("virt-steps", &k, &i, "console=ttyS0 panic=-1", 1);
    let sock = m.sock.display().to_string();
    // The built-in SBI starts hart 0 at the kernel's first instruction (0x80200000, MMU
    // off), where GDB finds it; 0x80200002 is the jump over the Image header.
    let out = gdb_batch(&[
        "set architecture riscv:rv64",
        &format!("target remote {sock}"),
        "info registers pc",
        "break *0x80200002",
        "continue",
        "info registers pc",
        "x/2i $pc",
        "stepi",
        "info registers pc",
        "p $sp",
        "stepi 5",
        "info registers pc",
        "x/4xw 0x80200000",
        "info registers priv satp",
        "info threads",
        "delete",
        "continue",
    ]);
    let status = wait_exit(&mut m.child, "tandem");
    let log = format!(
        "{out}\n--- tandem stdout:\n{}\n--- tandem stderr:\n{}",
        m.stdout.text(),
        m.stderr.text()
    );
    assert!(out.contains("pc             0x80200000"), "{log}");
    assert!(
        out.contains("Breakpoint 1, 0x0000000080200002 in ?? ()"),
        "{log}"
    );
    // pc after the breakpoint, the jump and five more instructions.
    let pc_lines: Vec<u64> = out
        .lines()
        .filter(|l| l.starts_with("pc "))
        .map(pc_of)
        .collect();
    assert_eq!(pc_lines.len(), 4, "{log}");
    assert_eq!(pc_lines[1], 0x8020_0002, "{log}");
    assert!(out.contains("=> 0x80200002:\tj\t0x"), "{log}");
    let target = out
        .split("=> 0x80200002:\tj\t0x")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .map(|h| u64::from_str_radix(h, 16).unwrap())
        .unwrap();
    assert_eq!(pc_lines[2], target, "stepi follows the jump\n{log}");
    assert!(
        pc_lines[3] > target && pc_lines[3] <= target + 5 * 4,
        "stepi 5 advances\n{log}"
    );
    // Memory through the hart's translation (bare): the Image's first 16 bytes.
    let image = std::fs::read(&k).unwrap();
    let words: Vec<String> = image[..16]
        .chunks(4)
        .map(|w| format!("0x{:08x}", u32::from_le_bytes(w.try_into().unwrap())))
        .collect();
    assert!(
        out.contains(&format!("0x80200000:\t{}", words.join("\t"))),
        "x/4xw shows {words:?}\n{log}"
    );
    assert!(out.contains("prv:1 [Supervisor]"), "{log}");
    assert!(out.contains("satp           0x0"), "{log}");
    assert!(out.contains("(hart 0)"), "{log}");
    // The guest booted and powered off: GDB saw the exit, Tandem the power-off.
    assert!(out.contains("exited normally"), "{log}");
    assert!(m.stdout.text().contains("BOOT-OK"), "{log}");
    assert_eq!(status, Some(0), "{log}");
}

#[test]
fn virt_ctrl_c_virtual_breakpoint_and_kill() {
    let test = "virt_ctrl_c_virtual_breakpoint_and_kill";
    let Some((k, i)) = guest(test) else { return };
    if !have("gdb-multiarch", test) {
        return;
    }
    // Two harts; after booting, init waits in a shell on the console.
    let mut m = start_machine("virt-ctrl-c", &k, &i, "console=ttyS0 panic=-1 shell", 2);
    let mut g = Gdb::start(&[
        "set architecture riscv:rv64",
        "set confirm off",
        "set pagination off",
        &format!("target remote {}", m.sock.display()),
    ]);
    g.send("continue");
    m.stdout.wait_for("BOOT-OK", 0, "guest boot");
    let from = g.out.len();
    g.interrupt();
    g.out.wait_for("SIGINT", from, "gdb's Ctrl-C");
    let threads = g.run("info threads");
    assert!(
        threads.contains("(hart 0)") && threads.contains("(hart 1)"),
        "{threads}"
    );
    // The kernel runs with paging on; its trap vector is a virtual address.
    let satp = g.run("p/x $satp");
    assert!(!satp.contains("= 0x0\n"), "{satp}");
    let stvec = g.run("p/x $stvec");
    assert!(stvec.contains("= 0xffff"), "{stvec}");
    g.run("break *$stvec");
    let from = g.out.len();
    g.send("continue");
    // A key on the console interrupts the hart, if its timer has not already.
    m.stdin.write_all(b"\n").unwrap();
    m.stdin.flush().unwrap();
    let hit = g.out.wait_for("in ?? ()", from, "breakpoint at stvec");
    assert!(hit.contains("Breakpoint 1, 0xffff"), "{hit}");
    let pc = g.run("p/x $pc == $stvec");
    assert!(pc.contains("= 0x1"), "{pc}");
    let prv = g.run("info registers priv");
    assert!(prv.contains("Supervisor"), "{prv}");
    g.send("kill");
    g.send("quit");
    let status = wait_exit(&mut m.child, "tandem");
    assert_eq!(
        status,
        Some(137),
        "gdb's kill ends tandem as SIGKILL would\n{}\n--- tandem stderr:\n{}",
        g.out.text(),
        m.stderr.text()
    );
    assert!(m.stderr.text().contains("killed from gdb"));
}

/// Compiles C source (a file of tests/riscv-programs or text) statically.
fn compile(name: &str, source: Option<&str>) -> PathBuf {
    let src = match source {
        Some(text) => {
            let p = tmp(&format!("{name}.c"));
            std::fs::write(&p, text).unwrap();
            p
        }
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/riscv-programs")
            .join(format!("{name}.c")),
    };
    let out = tmp(name);
    let o = Command::new("riscv64-linux-gnu-gcc")
        .args(["-O1", "-g", "-static", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("run riscv64-linux-gnu-gcc");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn symbol(prog: &Path, name: &str) -> u64 {
    let o = Command::new("riscv64-linux-gnu-nm")
        .arg(prog)
        .output()
        .expect("nm");
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.ends_with(&format!(" T {name}")))
        .unwrap_or_else(|| panic!("no {name} in {}", prog.display()));
    u64::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `tandem-riscv64 -g PORT prog`, once it listens.
fn start_user(prog: &Path) -> (Child, Output, Output, u16) {
    // A port another test took in between fails the bind: take another one.
    for _ in 0..10 {
        let port = free_port();
        let mut child = Command::new(TANDEM_USER)
            .arg("-g")
            .arg(port.to_string())
            .arg(prog)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tandem-riscv64");
        let stdout = Output::collect(child.stdout.take().unwrap());
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let _ = err.read_line(&mut line);
        if line.contains("waiting for gdb") {
            let stderr = Output::collect(err);
            return (child, stdout, stderr, port);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("tandem-riscv64 -g never listened");
}

#[test]
fn user_break_main_step_and_exit() {
    let test = "user_break_main_step_and_exit";
    if !have("gdb-multiarch", test) || !have("riscv64-linux-gnu-gcc", test) {
        return;
    }
    let prog = compile("hello", None);
    let main = symbol(&prog, "main");
    let (mut child, stdout, stderr, port) = start_user(&prog);
    let path = prog.display().to_string();
    let out = gdb_batch(&[
        &format!("file {path}"),
        &format!("target remote :{port}"),
        "break main",
        "continue",
        "info registers pc",
        "stepi",
        "info registers pc",
        // argv[0]: a string in guest memory.
        "x/s *(char **)$a1",
        "p $fcsr",
        "continue",
    ]);
    let status = wait_exit(&mut child, "tandem-riscv64");
    let log = format!(
        "{out}\n--- stdout:\n{}\n--- stderr:\n{}",
        stdout.text(),
        stderr.text()
    );
    let pcs: Vec<u64> = out
        .lines()
        .filter(|l| l.starts_with("pc "))
        .map(pc_of)
        .collect();
    assert_eq!(pcs.len(), 2, "{log}");
    assert_eq!(pcs[0], main, "stopped at main\n{log}");
    assert!(pcs[1] == main + 2 || pcs[1] == main + 4, "one step\n{log}");
    assert!(out.contains(&format!("\"{path}\"")), "{log}");
    assert!(out.contains("exited with code 03"), "{log}");
    assert_eq!(status, Some(3), "{log}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(stdout.text().contains("hello from riscv: argc=1"), "{log}");
}

const SPIN: &str = r#"
#include <stdio.h>
volatile int stop;
int main(void) {
    puts("spinning");
    fflush(stdout);
    while (!stop) {}
    puts("stopped");
    return 7;
}
"#;

#[test]
fn user_ctrl_c_and_memory_write() {
    let test = "user_ctrl_c_and_memory_write";
    if !have("gdb-multiarch", test) || !have("riscv64-linux-gnu-gcc", test) {
        return;
    }
    let prog = compile("spin", Some(SPIN));
    let (mut child, stdout, stderr, port) = start_user(&prog);
    let mut g = Gdb::start(&[
        "set confirm off",
        "set pagination off",
        &format!("file {}", prog.display()),
        &format!("target remote :{port}"),
    ]);
    g.send("continue");
    stdout.wait_for("spinning", 0, "guest output");
    let from = g.out.len();
    g.interrupt();
    g.out.wait_for("SIGINT", from, "gdb's Ctrl-C");
    let set = g.run("set var stop = 1");
    assert!(!set.contains("Cannot access"), "{set}");
    let from = g.out.len();
    g.send("continue");
    let end = g.out.wait_for("exited with code 07", from, "exit");
    g.send("quit");
    let status = wait_exit(&mut child, "tandem-riscv64");
    assert_eq!(status, Some(7), "{end}\n{}", stderr.text());
    std::thread::sleep(Duration::from_millis(100));
    assert!(stdout.text().contains("stopped"));
}
