//! What the disk tests share: scratch directories, `qemu-img`, patterns.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `qemu-img`'s path, or `None` after printing why the calling test skips.
pub fn qemu_img() -> Option<&'static str> {
    const QEMU_IMG: &str = "qemu-img";
    match Command::new(QEMU_IMG).arg("--version").output() {
        Ok(o) if o.status.success() => Some(QEMU_IMG),
        _ => {
            eprintln!("skipped: qemu-img not found (Debian package qemu-utils)");
            None
        }
    }
}

/// Runs `qemu-img` with `args`; panics with its output if it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .expect("qemu-img runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "qemu-img {args:?} failed:\n{text}");
    text
}

/// `qemu-img check`: no errors, no leaks.
pub fn check_clean(path: &Path) {
    let out = Command::new("qemu-img")
        .args(["check", "-f", "qcow2"])
        .arg(path)
        .output()
        .expect("qemu-img runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("No errors were found") && !text.contains("leak"),
        "qemu-img check {}:\n{text}",
        path.display()
    );
}

/// The image's contents as `qemu-img convert -O raw` sees them.
pub fn convert_to_raw(dir: &Scratch, path: &Path, fmt: &str) -> Vec<u8> {
    let out = dir.path("converted.raw");
    run(&[
        "convert",
        "-f",
        fmt,
        "-O",
        "raw",
        path.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let data = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    data
}

/// A directory removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tandem-disk-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Data that compresses: text with a little noise.
pub fn compressible(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let text = b"Tandem writes this line into a disk image over and over. ";
    (0..len)
        .map(|i| {
            if i % 4096 == 7 {
                rng.next() as u8
            } else {
                text[i % text.len()]
            }
        })
        .collect()
}
