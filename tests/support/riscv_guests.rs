//! Shared by the RISC-V machine's integration tests: where the shared guest is, running
//! `tandem run` with a hang guard, and booting the shared kernel with a command line.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Not a timing assertion: a guard so a broken boot fails instead of hanging CI.
pub const HANG_GUARD: Duration = Duration::from_secs(600);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `TANDEM_GUEST_DIR`, or `../shared/guest` beside the repository.
pub fn guest_dir() -> PathBuf {
    std::env::var_os("TANDEM_GUEST_DIR")
        .map_or_else(|| repo_root().join("../shared/guest"), PathBuf::from)
}

/// The shared kernel and initramfs, or None (with a printed reason) when absent.
pub fn guest(test: &str) -> Option<(PathBuf, PathBuf)> {
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

/// True when `tool` runs; otherwise prints why `test` skips.
pub fn have(tool: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("{test}: skipped: {tool} is not installed (scripts/test.sh installs it)");
    }
    found
}

/// Runs a command to completion, killing it if it outlives the hang guard.
pub fn guarded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Runs `tandem run ARGS` to completion.
pub fn tandem(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.arg("run").args(args);
    guarded(cmd)
}

/// A finished run: exit status, stdout, stderr.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Run {
        let run = Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !run.stderr.contains("panicked"),
            "tandem panicked:\n{}",
            run.stderr
        );
        run
    }

    /// Everything, for assertion messages.
    pub fn all(&self) -> String {
        format!(
            "status {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// The value printed after `key=` on a line of its own (guest scripts print results so).
    pub fn value(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.stdout
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
    }
}

/// Boots the shared kernel with `initrd`, `cmdline` and extra `tandem run` arguments.
pub fn boot_with(kernel: &Path, initrd: &Path, cmdline: &str, extra: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
    cmd.args([
        "run",
        "--machine",
        "riscv-virt",
        "--kernel",
        kernel.to_str().unwrap(),
        "--initrd",
        initrd.to_str().unwrap(),
        "--memory",
        "256M",
        "--cmdline",
        cmdline,
    ])
    .args(extra);
    Run::from(guarded(cmd))
}

/// The hex SHA-256 of `data`, as sha256sum prints it.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut pipe = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = pipe.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A scratch directory for `test`, empty, under the test target's temporary directory.
pub fn scratch(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{test}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch directory");
    d
}

/// An initrd: the shared initramfs, then each of `overlays` (gzip'd cpio archives the
/// kernel unpacks on top), then `/test.sh` holding `script`. Boot it with
/// `run=sh,/test.sh` on the command line.
pub fn initrd_with_script(dir: &Path, base: &Path, overlays: &[PathBuf], script: &str) -> PathBuf {
    let root = dir.join("overlay");
    std::fs::create_dir_all(&root).unwrap();
    // The shared initramfs has no /tmp or /mnt.
    std::fs::write(
        root.join("test.sh"),
        format!("mkdir -p /tmp /mnt\n{script}"),
    )
    .unwrap();
    let archive = dir.join("script.cpio.gz");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && echo test.sh | cpio -o -H newc --quiet | gzip -1 > '{}'",
            root.display(),
            archive.display()
        ))
        .status()
        .expect("cpio");
    assert!(status.success(), "building the script archive failed");
    let mut all = std::fs::read(base).expect("read the shared initramfs");
    for o in overlays.iter().chain(std::iter::once(&archive)) {
        all.extend(std::fs::read(o).expect("read an initramfs overlay"));
    }
    let out = dir.join("initrd.cpio.gz");
    std::fs::write(&out, all).unwrap();
    out
}

/// Builds (once, cached by the script) the overlay with the guest I/O tools (Debian's
/// mke2fs, the vsock test program). None, with a printed reason, when it cannot.
pub fn io_tools(test: &str) -> Option<PathBuf> {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("riscv-io-tools");
    std::fs::create_dir_all(&out_dir).unwrap();
    // Tests in several threads and processes may ask at once: one builds, the rest wait.
    let out = Command::new("flock")
        .arg(out_dir.join(".lock"))
        .arg("bash")
        .arg(repo_root().join("scripts/riscv-io-tools.sh"))
        .arg(&out_dir)
        .output()
        .expect("run scripts/riscv-io-tools.sh");
    let archive = out_dir.join("io-tools-riscv64.cpio.gz");
    if !out.status.success() || !archive.exists() {
        panic!(
            "{test}: scripts/riscv-io-tools.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(archive)
}

/// Runs `cmd`, and once its output contains `prompt`, types `input` into it (as a person at
/// the console would: input sent before the guest's console is open is lost, on Tandem as
/// on real hardware). Returns when it exits (or the hang guard kills it).
pub fn interactive(mut cmd: Command, prompt: &str, input: &[u8]) -> Run {
    use std::io::{Read, Write};
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let (prompt, input) = (prompt.as_bytes().to_vec(), input.to_vec());
    let out_thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut typed = false;
        let mut buf = [0u8; 4096];
        loop {
            let n = match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            seen.extend_from_slice(&buf[..n]);
            if !typed && seen.windows(prompt.len()).any(|w| w == prompt) {
                let _ = stdin.write_all(&input);
                typed = true;
            }
        }
        seen
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code().unwrap_or(-1);
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out_thread.join().unwrap_or_default();
    let err = err_thread.join().unwrap_or_default();
    let run = Run {
        status,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "tandem panicked:\n{}",
        run.stderr
    );
    run
}
