//! Shared by the KVM integration tests: builds Tandem's x86-64 test guests (assembly in
//! tests/guests/x86) with the host's gcc, and decides whether KVM tests can run here.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the guest images are: `TANDEM_GUEST_DIR`, or `../shared/guest` beside the repo.
pub fn shared_guest_dir() -> PathBuf {
    std::env::var_os("TANDEM_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/guest"))
}

/// True when /dev/kvm can be opened read-write. Otherwise prints why the caller skips.
pub fn kvm_usable(test: &str) -> bool {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping {test}: /dev/kvm is not usable here ({e}); this test needs KVM");
            false
        }
    }
}

/// True when the host has hardware virtualisation (not only nested PVM), where guest ring 0
/// runs natively and a full Linux boot finishes.
pub fn hardware_virtualization() -> bool {
    Path::new("/sys/module/kvm_intel").exists() || Path::new("/sys/module/kvm_amd").exists()
}

/// Assembles and links `tests/guests/x86/<name>.S` into an ELF test guest; returns its path.
pub fn build(name: &str) -> PathBuf {
    let src_dir = repo_root().join("tests/guests/x86");
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("x86-guests");
    std::fs::create_dir_all(&out_dir).expect("create guest output directory");
    let out = out_dir.join(name);
    // Tests run in parallel, in several threads and processes, and may build the same
    // guest at once: link to a name private to this call, then rename into place atomically.
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = BUILDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let tmp = out_dir.join(format!("{name}.{}.{call}.tmp", std::process::id()));
    let status = Command::new("gcc")
        .args([
            "-nostdlib",
            "-static",
            "-no-pie",
            "-Wl,--build-id=none",
            "-Wl,-T",
        ])
        .arg(src_dir.join("guest.ld"))
        .arg("-o")
        .arg(&tmp)
        .arg(src_dir.join(format!("{name}.S")))
        .status()
        .expect("run gcc (Debian package gcc) to build the x86 test guests");
    assert!(status.success(), "building test guest {name} failed");
    std::fs::rename(&tmp, &out).expect("move built guest into place");
    out
}
