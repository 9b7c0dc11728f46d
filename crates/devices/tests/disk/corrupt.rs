//! Broken and unsupported qcow2 images: every one is an `Err`, none a panic.

use std::path::{Path, PathBuf};
use std::process::Command;

use devices::disk::qcow2::fuzz_image;
use devices::disk::{self, DiskError, Format};

use crate::common::{compressible, qemu_img, run, Rng, Scratch};

fn fresh(dir: &Scratch, opts: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.path("a.qcow2");
    run(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        opts,
        path.to_str().unwrap(),
        "64M",
    ]);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

fn patch(path: &Path, bytes: &[u8], at: usize, with: &[u8]) {
    let mut b = bytes.to_vec();
    b[at..at + with.len()].copy_from_slice(with);
    std::fs::write(path, b).unwrap();
}

fn open_err(path: &Path) -> DiskError {
    let e = disk::open(path, None, false).err().expect("open fails");
    assert!(
        disk::open(path, Some(Format::Qcow2), true).is_err(),
        "read-only open fails too"
    );
    assert!(e.to_string().contains("a.qcow2"), "names the file: {e}");
    e
}

#[test]
fn broken_headers_are_refused() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("corrupt-hdr");
    let (path, good) = fresh(&dir, "cluster_size=65536");

    for len in [4, 50, 72, 100] {
        std::fs::write(&path, &good[..len]).unwrap();
        let e = open_err(&path);
        assert!(matches!(e, DiskError::Corrupt { .. }), "len {len}: {e}");
    }
    let cases: &[(usize, &[u8], &str)] = &[
        (20, &40u32.to_be_bytes(), "cluster_bits"),
        (20, &5u32.to_be_bytes(), "cluster_bits"),
        (40, &(1u64 << 40).to_be_bytes(), "beyond the end"),
        (40, &0x10001u64.to_be_bytes(), "aligned"),
        (36, &0u32.to_be_bytes(), "does not cover"),
        (48, &(1u64 << 50).to_be_bytes(), "refcount table"),
        (96, &9u32.to_be_bytes(), "refcount_order"),
        (100, &100u32.to_be_bytes(), "header_length"),
    ];
    for (at, with, what) in cases {
        patch(&path, &good, *at, with);
        let e = open_err(&path);
        assert!(matches!(e, DiskError::Corrupt { .. }), "{what}: {e}");
        assert!(e.to_string().contains(what), "{what}: {e}");
    }
}

#[test]
fn unsupported_features_are_refused() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("corrupt-feat");
    let (path, good) = fresh(&dir, "cluster_size=65536");
    let cases: &[(usize, &[u8], &str)] = &[
        (32, &1u32.to_be_bytes(), "encrypted"),
        (32, &2u32.to_be_bytes(), "encrypted"),
        (72, &(1u64 << 20).to_be_bytes(), "unknown incompatible"),
        (72, &1u64.to_be_bytes(), "dirty"),
        (72, &4u64.to_be_bytes(), "external data file"),
        (72, &16u64.to_be_bytes(), "extended L2"),
        (4, &4u32.to_be_bytes(), "version 4"),
    ];
    for (at, with, what) in cases {
        patch(&path, &good, *at, with);
        let e = open_err(&path);
        assert!(matches!(e, DiskError::Unsupported { .. }), "{what}: {e}");
        assert!(e.to_string().contains(what), "{what}: {e}");
    }
    patch(&path, &good, 72, &2u64.to_be_bytes());
    assert!(open_err(&path).to_string().contains("marked corrupt"));

    // Made by qemu-img itself.
    let data = dir.path("a.data");
    std::fs::remove_file(&path).unwrap();
    run(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        &format!("data_file={}", data.display()),
        path.to_str().unwrap(),
        "1M",
    ]);
    let e = open_err(&path);
    assert!(e.to_string().contains("external data file"), "{e}");

    std::fs::remove_file(&path).unwrap();
    let zstd = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-o", "compression_type=zstd"])
        .arg(&path)
        .arg("1M")
        .status()
        .unwrap();
    if zstd.success() {
        let e = open_err(&path);
        assert!(e.to_string().contains("zstd"), "{e}");
    } else {
        eprintln!("qemu-img here cannot make zstd images: that case skipped");
    }
}

#[test]
fn random_bytes_with_the_magic_are_refused() {
    let dir = Scratch::new("corrupt-random");
    let path = dir.path("a.qcow2");
    let mut rng = Rng::new(7);
    for i in 0..300 {
        let len = 4 + rng.below(200_000) as usize;
        let mut b = rng.bytes(len);
        b[..4].copy_from_slice(b"QFI\xfb");
        if i % 2 == 0 && len >= 8 {
            b[4..8].copy_from_slice(&3u32.to_be_bytes());
        }
        if i % 4 == 0 && len >= 24 {
            b[20..24].copy_from_slice(&(9 + rng.below(13) as u32).to_be_bytes());
        }
        assert!(fuzz_image(&b).is_err(), "seed {i}");
        std::fs::write(&path, &b).unwrap();
        assert!(disk::open(&path, None, false).is_err(), "seed {i}");
    }
}

/// Mutates valid images (data, L2 tables, refcount blocks, compressed clusters) and runs
/// the fuzz entry point on each: errors are expected, panics are not.
#[test]
fn mutated_images_never_panic() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("corrupt-mutate");
    let raw = dir.path("data.raw");
    let size = 2 << 20;
    let mut data = compressible(size, 3);
    data[(1 << 20)..].fill(0);
    data[(1 << 20) + 5000..(1 << 20) + 9000].fill(0x5a);
    std::fs::write(&raw, &data).unwrap();
    let mut images = Vec::new();
    for (i, opts) in [
        "cluster_size=512",
        "cluster_size=4096,refcount_bits=1",
        "cluster_size=65536,compat=0.10",
    ]
    .into_iter()
    .enumerate()
    {
        for compressed in [false, true] {
            let out = dir.path(&format!("m{i}{compressed}.qcow2"));
            let mut args = vec!["convert", "-q", "-O", "qcow2", "-o", opts];
            if compressed {
                args.push("-c");
            }
            args.extend([raw.to_str().unwrap(), out.to_str().unwrap()]);
            run(&args);
            images.push(std::fs::read(&out).unwrap());
        }
    }
    // TANDEM_DISK_MUTATIONS=N runs N per image instead (and a seed from TANDEM_DISK_SEED).
    let per_image = std::env::var("TANDEM_DISK_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let seed = std::env::var("TANDEM_DISK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    let mut rng = Rng::new(seed);
    let meta: Vec<_> = images.iter().map(|i| metadata_ranges(i)).collect();
    let mut opened = 0;
    for (n, image) in images.iter().enumerate() {
        assert!(fuzz_image(image).is_ok(), "image {n} is valid");
        for _ in 0..per_image {
            let mut b = image.clone();
            for _ in 0..1 + rng.below(6) {
                // Mostly metadata: entries are big-endian u64s, so hit whole ones too.
                let (start, len) = meta[n][rng.below(meta[n].len() as u64) as usize];
                let at = start + rng.below(len) as usize;
                match rng.below(4) {
                    0 => b[at] = rng.next() as u8,
                    1 => b[at] ^= 1 << rng.below(8),
                    2 => {
                        let at = at & !7;
                        let v = rng.next() >> rng.below(64);
                        b[at..at + 8].copy_from_slice(&v.to_be_bytes());
                    }
                    _ => {
                        // A plausible entry: an aligned offset inside the file, flag bits.
                        let at = at & !7;
                        let v = (rng.below(b.len() as u64) & !511) | (rng.next() & (3 << 62));
                        b[at..at + 8].copy_from_slice(&v.to_be_bytes());
                    }
                }
            }
            if let Ok(dump) = std::env::var("TANDEM_DISK_DUMP") {
                std::fs::write(dump, &b).unwrap();
            }
            if fuzz_image(&b).is_ok() {
                opened += 1;
            }
        }
    }
    eprintln!(
        "{opened} of {} mutated images opened",
        images.len() * per_image
    );
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// Where a valid image keeps its metadata: (offset, length) of the header, the L1 table,
/// the L2 tables, the refcount table and the refcount blocks; and the whole file.
fn metadata_ranges(b: &[u8]) -> Vec<(usize, u64)> {
    let cluster = 1usize << u32::from_be_bytes(b[20..24].try_into().unwrap());
    let l1_len = u32::from_be_bytes(b[36..40].try_into().unwrap()) as usize;
    let l1 = be64(b, 40) as usize;
    let rt = be64(b, 48) as usize;
    let rt_len = u32::from_be_bytes(b[56..60].try_into().unwrap()) as usize * cluster;
    let mut out = vec![
        (0, 112),
        (l1, (l1_len * 8) as u64),
        (rt, rt_len as u64),
        (0, b.len() as u64),
    ];
    let mask = ((1u64 << 56) - 1) & !511;
    for i in 0..l1_len {
        let l2 = (be64(b, l1 + 8 * i) & mask) as usize;
        if l2 != 0 && l2 + cluster <= b.len() {
            out.push((l2, cluster as u64));
        }
    }
    for i in 0..rt_len / 8 {
        let rb = (be64(b, rt + 8 * i) & mask) as usize;
        if rb != 0 && rb + cluster <= b.len() {
            out.push((rb, cluster as u64));
        }
    }
    out
}

/// `TANDEM_DISK_REPRO=FILE` runs the fuzz entry point on FILE (a crash found by
/// `TANDEM_DISK_DUMP`, or by a fuzzer); without it this test does nothing.
#[test]
fn repro_from_env() {
    if let Ok(path) = std::env::var("TANDEM_DISK_REPRO") {
        let data = std::fs::read(&path).unwrap();
        eprintln!("{path}: {:?}", fuzz_image(&data).err());
    }
}
