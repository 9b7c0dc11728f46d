//! `tandem-riscv64 --binfmt register|unregister|status` and running RISC-V programs through
//! binfmt_misc: `./prog a b` with argv[0] kept, a set-user-ID program, an unreadable one, a
//! guest exec, `chroot DIR /prog` with the static build, and the refusals (dynamic build,
//! another handler holding riscv64, not root, binfmt_misc not mounted).
//!
//! binfmt_misc handlers are machine-wide, and other tests here (and other users) must never
//! see one appear. So the checks (`binfmt_scenario.sh`) run in a private user and mount
//! namespace with its own binfmt_misc instance (Linux 6.7+): nothing registered there is
//! visible outside, and it all vanishes with the namespace. Skips with a printed reason
//! without root, without `unshare`/`setpriv`, or on an older kernel.
//!
//! The chroot part needs the static build (`scripts/build-static-riscv64.sh`, which
//! scripts/test.sh runs first); it is skipped, saying so, when that build is missing or
//! older than the dynamic one.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../../tests/support/user_tools.rs"]
mod user_tools;
use user_tools::repo;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-riscv64");
const SCENARIO: &str = include_str!("binfmt_scenario.sh");

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn compile_probe(out: &Path, static_link: bool) {
    let mut cmd = Command::new("riscv64-linux-gnu-gcc");
    cmd.args(["-O2", "-Wall", "-o"])
        .arg(out)
        .arg(repo().join("tests/riscv-programs/binfmt_probe.c"));
    if static_link {
        cmd.arg("-static");
    }
    let o = cmd.output().expect("run riscv64-linux-gnu-gcc");
    assert!(
        o.status.success(),
        "compiling binfmt_probe.c: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The static build: $TANDEM_RISCV64_STATIC (scripts/test.sh builds it and sets it), else
/// the script's output path if it is at least as new as the dynamic build under test.
fn static_tandem() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TANDEM_RISCV64_STATIC") {
        return std::fs::canonicalize(PathBuf::from(p)).ok();
    }
    // CARGO_TARGET_TMPDIR is TARGET_DIR/tmp; the script builds for an explicit target.
    let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("../x86_64-unknown-linux-gnu/release/tandem-riscv64");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(&p), modified(Path::new(TANDEM))) {
        (Some(s), Some(d)) if s >= d => std::fs::canonicalize(&p).ok(),
        (Some(_), _) => {
            eprintln!(
                "binfmt: {} is older than the build under test: rebuild it with scripts/build-static-riscv64.sh",
                p.display()
            );
            None
        }
        _ => None,
    }
}

/// Kills the namespace's process if the test gives up on it (the namespace, and the
/// binfmt_misc instance in it, then go away).
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Maps uids and gids 0-65535 onto themselves in `pid`'s new user namespace, once `unshare`
/// has created it (only a process with CAP_SETUID outside may map more than its own id).
fn map_ids(pid: u32) -> Result<(), String> {
    let ours = std::fs::read_link("/proc/self/ns/user").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::read_link(format!("/proc/{pid}/ns/user")) {
            Ok(ns) if ns != ours => break,
            _ if Instant::now() > deadline => return Err("unshare made no user namespace".into()),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    for map in ["uid_map", "gid_map"] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/{map}"))
            .and_then(|mut f| f.write_all(b"0 0 65536\n"))
            .map_err(|e| format!("writing {map}: {e}"))?;
    }
    Ok(())
}

#[test]
fn binfmt_misc() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("binfmt_misc: skipped: needs root (binfmt_misc, chroot, set-user-ID)");
        return;
    }
    for tool in ["unshare", "setpriv", "chroot", "riscv64-linux-gnu-gcc"] {
        if !have(tool) {
            eprintln!("binfmt_misc: skipped: {tool} not found");
            return;
        }
    }
    // In /tmp, which the unprivileged user of the set-user-ID check can reach.
    let work = std::env::temp_dir().join(format!("tandem-binfmt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755)).unwrap();
    compile_probe(&work.join("probe"), true);
    compile_probe(&work.join("probe-dyn"), false);
    let stat = static_tandem();
    if stat.is_none() {
        eprintln!(
            "binfmt_misc: the chroot part skips: no static build (scripts/build-static-riscv64.sh)"
        );
    }

    // The first shell waits for the id maps, then execs the scenario: an exec after the
    // mapping gives the new shell root's capabilities in the namespace.
    let child = Command::new("unshare")
        .args(["--user", "--mount", "--propagation", "private", "--"])
        .args([
            "bash",
            "-c",
            "until grep -q . /proc/self/uid_map; do sleep 0.01; done; exec bash -c \"$1\"",
            "bash",
            SCENARIO,
        ])
        .env("T", std::fs::canonicalize(TANDEM).unwrap())
        .env("S", stat.unwrap_or_default())
        .env("W", &work)
        .env("N", format!("tandem-test-{}", std::process::id()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unshare");
    let mut guard = KillOnDrop(Some(child));
    let pid = guard.0.as_ref().map_or(0, |c| c.id());
    if let Err(e) = map_ids(pid) {
        eprintln!("binfmt_misc: skipped: cannot set up a user namespace: {e}");
        return;
    }
    let out = guard
        .0
        .take()
        .expect("child")
        .wait_with_output()
        .expect("wait for the scenario");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&work);
    if out.status.code() == Some(77) {
        eprintln!("binfmt_misc: skipped: {stdout}");
        return;
    }
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("ok: all"),
        "binfmt scenario failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

/// scripts/riscv64-chroot.sh: mmdebstrap builds a Debian trixie riscv64 minbase chroot whose
/// maintainer scripts run under the static Tandem (through a private binfmt_misc instance),
/// then bash runs in it. About a minute on the development machine, downloads included.
/// Skips without root, the static build, or the Debian mirror.
#[test]
fn debian_chroot() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("debian_chroot: skipped: needs root (mmdebstrap, binfmt_misc, chroot)");
        return;
    }
    let Some(stat) = static_tandem() else {
        eprintln!("debian_chroot: skipped: no static build (scripts/build-static-riscv64.sh)");
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("debian-chroot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(repo().join("scripts/riscv64-chroot.sh"))
        .arg(&dir)
        .args([
            "--",
            "/bin/bash",
            "-c",
            "echo hello; dpkg --print-architecture; ls /; dpkg -s dpkg | grep '^Status'",
        ])
        .env("TANDEM_RISCV64_STATIC", &stat)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/riscv64-chroot.sh");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = format!("{stdout}{stderr}");
    if !out.status.success()
        && [
            "Failed to fetch",
            "Could not resolve",
            "Temporary failure resolving",
            "no Debian mirror",
        ]
        .iter()
        .any(|m| text.contains(m))
    {
        eprintln!("debian_chroot: skipped: the Debian mirror is unreachable:\n{text}");
        return;
    }
    if out.status.code() == Some(77) {
        eprintln!("debian_chroot: skipped: {text}");
        return;
    }
    eprintln!("{text}");
    assert!(
        out.status.success()
            && stdout.contains("hello\nriscv64\n")
            && stdout.contains("usr\n")
            && stdout.contains("Status: install ok installed"),
        "scripts/riscv64-chroot.sh failed ({}):\n{text}",
        out.status
    );
}
