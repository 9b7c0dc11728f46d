//! virtio-vsock on the RISC-V `virt` machine, with the shared Linux guest and a small
//! guest tool (`tests/riscv-guest/vsock-echo.c`), both directions at once:
//!
//! - host to guest: the guest echoes on vsock port 5000; the test connects to the
//!   device's socket, says `CONNECT 5000`, gets `OK <port>`, sends 1 MiB, half-closes,
//!   and must read the same bytes back before EOF.
//! - guest to host: the test serves an echo on `PATH_6000`; the guest sends a file
//!   through `vsock-echo connect 2 6000` and prints the sha256 of what came back, which
//!   must be the file's.
//!
//! No timing assumptions: the host retries until the guest listens, and only a generous
//! guard stops a hung run.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Between attempts to reach a guest that is not listening yet.
const RETRY: Duration = Duration::from_millis(250);

#[path = "../../../tests/support/riscv_guests.rs"]
mod riscv_guests;

use riscv_guests::{guest, HANG_GUARD};

/// A scratch directory under Cargo's, or under the system's when that path is too long
/// for the sockets in it (Unix socket paths must stay under 108 bytes).
fn tempdir(name: &str) -> PathBuf {
    let leaf = format!("vs-{}-{name}", std::process::id());
    let mut d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&leaf);
    if d.join("v.sock_6000").as_os_str().len() >= 100 {
        d = std::env::temp_dir().join(leaf);
    }
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles `tests/riscv-guest/NAME.c` static for riscv64, or None (printed) without the
/// cross compiler.
fn guest_program(name: &str, dir: &Path) -> Option<Vec<u8>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/riscv-guest")
        .join(format!("{name}.c"));
    let out = dir.join(name);
    let status = Command::new("riscv64-linux-gnu-gcc")
        .args(["-O2", "-static", "-o"])
        .arg(&out)
        .arg(&src)
        .status();
    match status {
        Ok(s) if s.success() => Some(std::fs::read(&out).expect("compiled program")),
        Ok(s) => panic!("cannot compile {}: {s}", src.display()),
        Err(e) => {
            eprintln!("{name}: skipped: riscv64-linux-gnu-gcc unavailable ({e})");
            None
        }
    }
}

/// A newc cpio archive of `(path, contents, mode)`; Linux unpacks an uncompressed
/// archive appended (at a 4-byte boundary) to the compressed initramfs.
fn cpio(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |name: &str, data: &[u8], mode: u32, ino: usize| {
        let fields = [
            ino,
            mode as usize,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    };
    for (i, (name, data, mode)) in files.iter().enumerate() {
        entry(name, data, *mode, i + 1);
    }
    entry("TRAILER!!!", &[], 0, 0);
    out
}

/// Deterministic bytes that compress badly (xorshift64).
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn host_sha256(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The running machine; killed if the test fails before it exits.
struct Machine {
    child: Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Machine {
    fn start(args: &[&str]) -> Machine {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .arg("run")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tandem");
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = r.read_to_end(&mut v);
                String::from_utf8_lossy(&v).into_owned()
            })
        };
        let stdout = Some(drain(Box::new(child.stdout.take().unwrap())));
        let stderr = Some(drain(Box::new(child.stderr.take().unwrap())));
        Machine {
            child,
            stdout,
            stderr,
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    /// Waits for the exit (killing it past the deadline): status and console output.
    fn finish(&mut self, deadline: Instant) -> (Option<i32>, String) {
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait").code();
        let out = self.stdout.take().unwrap().join().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        (status, format!("{out}\n--- stderr:\n{err}"))
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one `\n`-terminated line, a byte at a time (what follows is connection data).
fn read_line(s: &mut UnixStream) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8];
    loop {
        match s.read(&mut b) {
            Ok(1) if b[0] == b'\n' => return String::from_utf8(line).ok(),
            Ok(1) => line.push(b[0]),
            _ => return None,
        }
    }
}

/// Connects to guest port `port` through the device's socket, retrying while the
/// guest is not listening yet (the device then closes the stream without `OK`).
fn connect_guest(m: &mut Machine, sock: &Path, port: u32, deadline: Instant) -> UnixStream {
    loop {
        assert!(
            Instant::now() < deadline,
            "the guest never accepted port {port}"
        );
        assert!(
            m.running(),
            "tandem exited before the guest accepted port {port}"
        );
        if let Ok(mut s) = UnixStream::connect(sock) {
            // Until the guest's driver is up the request waits: allow the whole boot.
            s.set_read_timeout(Some(deadline - Instant::now())).unwrap();
            s.write_all(format!("CONNECT {port}\n").as_bytes()).unwrap();
            if let Some(line) = read_line(&mut s) {
                let host_port = line.strip_prefix("OK ").expect("OK <port>");
                assert!(host_port.parse::<u32>().is_ok(), "{line}");
                return s;
            }
        }
        std::thread::sleep(RETRY);
    }
}

/// Sends `data` and half-closes while reading the echo until EOF.
fn echo_through(s: UnixStream, data: Vec<u8>) -> Vec<u8> {
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for chunk in data.chunks(7919) {
            w.write_all(chunk).unwrap();
        }
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut r = s;
    let mut back = Vec::new();
    r.read_to_end(&mut back).expect("read the echo");
    writer.join().expect("writer");
    back
}

/// The host service of port 6000: echoes one connection until EOF.
fn serve_echo(listener: UnixListener) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("the guest connects");
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    s.write_all(&buf[..n]).expect("echo");
                    total += n;
                }
                Err(e) => panic!("service read: {e}"),
            }
        }
        total
    })
}

const GUEST_SCRIPT: &str = "#!/bin/sh
/vsock-echo listen 5000 &
echo \"G2H-SHA $(/vsock-echo connect 2 6000 < /vsock-data | sha256sum)\"
wait
echo VSOCK-DONE
";

/// Boots the guest with the vsock tool and runs both directions at once; `extra` are
/// more `tandem run` options.
fn both_ways(name: &str, extra: &[&str]) {
    let Some((kernel, initramfs)) = guest(name) else {
        return;
    };
    let dir = tempdir(name);
    let Some(tool) = guest_program("vsock-echo", &dir) else {
        return;
    };
    let file = pseudo_random(768 * 1024 + 5, 0x1234_5678);
    let mut initrd = std::fs::read(&initramfs).unwrap();
    initrd.resize(initrd.len().next_multiple_of(4), 0);
    initrd.extend(cpio(&[
        ("vsock-echo", &tool, 0o100755),
        ("vsock-run.sh", GUEST_SCRIPT.as_bytes(), 0o100755),
        ("vsock-data", &file, 0o100644),
    ]));
    let initrd_path = dir.join("initrd");
    std::fs::write(&initrd_path, initrd).unwrap();

    let sock = dir.join("v.sock");
    let service = UnixListener::bind(dir.join("v.sock_6000")).unwrap();
    let service = serve_echo(service);
    let vsock = format!("cid=3,socket={}", sock.display());
    let deadline = Instant::now() + HANG_GUARD;
    let mut args = vec![
        "--machine",
        "riscv-virt",
        "--kernel",
        kernel.to_str().unwrap(),
        "--initrd",
        initrd_path.to_str().unwrap(),
        "--memory",
        "256M",
        "--vsock",
        &vsock,
        "--cmdline",
        "console=ttyS0 panic=-1 run=/vsock-run.sh",
    ];
    args.extend_from_slice(extra);
    let mut m = Machine::start(&args);

    let payload = pseudo_random(1 << 20, 0x9e37_79b9_7f4a_7c15);
    let s = connect_guest(&mut m, &sock, 5000, deadline);
    let back = echo_through(s, payload.clone());
    assert_eq!(back.len(), payload.len(), "host to guest: echo length");
    assert!(back == payload, "host to guest: the echo differs");

    let (status, out) = m.finish(deadline);
    assert!(!out.contains("panicked"), "tandem panicked:\n{out}");
    assert_eq!(status, Some(0), "{out}");
    let want = format!("G2H-SHA {}", host_sha256(&file));
    assert!(out.contains(&want), "guest to host: want {want}:\n{out}");
    assert!(out.contains("VSOCK-DONE"), "{out}");
    assert!(out.contains("BOOT-OK"), "{out}");
    assert_eq!(service.join().expect("service"), file.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn streams_both_ways_with_half_close() {
    both_ways("one-hart", &[]);
}

/// Two harts: the guest's sender and receiver run in parallel with the device worker.
#[test]
fn streams_both_ways_on_two_harts() {
    both_ways("two-harts", &["--cpus", "2"]);
}

#[test]
fn vsock_option_refuses_a_socket_in_use() {
    let Some((kernel, _)) = guest("vsock_in_use") else {
        return;
    };
    let dir = tempdir("inuse");
    let sock = dir.join("v.sock");
    let _live = UnixListener::bind(&sock).unwrap();
    let vsock = format!("cid=3,socket={}", sock.display());
    let mut m = Machine::start(&[
        "--machine",
        "riscv-virt",
        "--kernel",
        kernel.to_str().unwrap(),
        "--vsock",
        &vsock,
    ]);
    let (status, out) = m.finish(Instant::now() + HANG_GUARD);
    assert_eq!(status, Some(1), "{out}");
    let err = out.split("--- stderr:\n").nth(1).unwrap_or_default();
    assert_eq!(err.lines().count(), 1, "want one line:\n{err}");
    assert!(err.contains("in use"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
