//! qcow2 images made by `qemu-img`, changed through our API, checked by `qemu-img`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use devices::disk::{self, DiskError, DiskImage, Format};

use crate::common::{check_clean, compressible, convert_to_raw, qemu_img, run, Rng, Scratch};

const MIB: u64 = 1 << 20;

/// `qemu-img create -f qcow2 -o OPTS PATH SIZE`.
fn create(dir: &Scratch, name: &str, opts: &str, size: u64) -> PathBuf {
    let path = dir.path(name);
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    let size = size.to_string();
    args.extend([path.to_str().unwrap(), &size]);
    run(&args);
    path
}

/// Writes `count` random extents (unaligned, often across clusters) to `img` and `model`.
fn scatter(img: &mut dyn DiskImage, model: &mut [u8], rng: &mut Rng, count: usize, max: u64) {
    let size = model.len() as u64;
    for _ in 0..count {
        let len = 1 + rng.below(max);
        let offset = rng.below(size - len);
        let data = rng.bytes(len as usize);
        img.write_at(&data, offset).unwrap();
        model[offset as usize..(offset + len) as usize].copy_from_slice(&data);
    }
}

fn read_all(img: &mut dyn DiskImage) -> Vec<u8> {
    let mut back = vec![0u8; img.size() as usize];
    // In uneven pieces, so reads also cross clusters.
    let mut offset = 0;
    let mut rng = Rng::new(99);
    while offset < back.len() {
        let n = (1 + rng.below(300_000) as usize).min(back.len() - offset);
        img.read_at(&mut back[offset..offset + n], offset as u64)
            .unwrap();
        offset += n;
    }
    back
}

/// The image reads as `model` through our API, after reopening, and through `qemu-img`;
/// `qemu-img check` finds it clean.
fn verify(dir: &Scratch, path: &Path, model: &[u8]) {
    let mut img = disk::open(path, None, true).unwrap();
    assert!(read_all(img.as_mut()) == model, "our reopened read differs");
    drop(img);
    check_clean(path);
    assert!(
        convert_to_raw(dir, path, "qcow2") == model,
        "qemu-img convert differs"
    );
}

#[test]
fn qcow2_scattered_writes_several_cluster_sizes() {
    if qemu_img().is_none() {
        return;
    }
    for (i, cluster) in [512u64, 4096, 65536, 2 * MIB].into_iter().enumerate() {
        let dir = Scratch::new("qcow2-rw");
        let size = 24 * MIB + 1536; // not a whole number of clusters
        let path = create(&dir, "a.qcow2", &format!("cluster_size={cluster}"), size);
        let mut model = vec![0u8; size as usize];
        let mut rng = Rng::new(10 + i as u64);
        let mut img = disk::open(&path, None, false).unwrap();
        assert_eq!(img.format(), Format::Qcow2);
        assert_eq!(img.size(), size);
        assert!(read_all(img.as_mut()).iter().all(|&b| b == 0));
        scatter(img.as_mut(), &mut model, &mut rng, 150, 3 * cluster);
        // One long write: many clusters, L2 tables and (small clusters) refcount blocks.
        let long = rng.bytes(9 * MIB as usize);
        img.write_at(&long, MIB + 3).unwrap();
        model[MIB as usize + 3..][..long.len()].copy_from_slice(&long);
        // The very end of the disk.
        img.write_at(&[0xee; 700], size - 700).unwrap();
        model[size as usize - 700..].fill(0xee);
        assert!(read_all(img.as_mut()) == model, "cluster {cluster}");
        img.flush().unwrap();
        drop(img);
        verify(&dir, &path, &model);
    }
}

#[test]
fn qcow2_v2_and_refcount_widths() {
    if qemu_img().is_none() {
        return;
    }
    for (i, opts) in [
        "compat=0.10",
        "refcount_bits=1",
        "refcount_bits=64,cluster_size=1024",
    ]
    .into_iter()
    .enumerate()
    {
        let dir = Scratch::new("qcow2-opts");
        let size = 6 * MIB;
        let path = create(&dir, "a.qcow2", opts, size);
        let mut model = vec![0u8; size as usize];
        let mut rng = Rng::new(20 + i as u64);
        let mut img = disk::open(&path, Some(Format::Qcow2), false).unwrap();
        scatter(img.as_mut(), &mut model, &mut rng, 80, 100_000);
        img.write_zeroes(MIB + 5, 200_000, true).unwrap();
        model[MIB as usize + 5..][..200_000].fill(0);
        img.write_zeroes(3 * MIB, 2 * 65536, false).unwrap();
        model[3 * MIB as usize..][..2 * 65536].fill(0);
        img.discard(4 * MIB, MIB).unwrap(); // unspecified contents: overwrite below
        let data = rng.bytes(MIB as usize);
        img.write_at(&data, 4 * MIB).unwrap();
        model[4 * MIB as usize..][..MIB as usize].copy_from_slice(&data);
        img.flush().unwrap();
        drop(img);
        verify(&dir, &path, &model);
    }
}

#[test]
fn qcow2_reopen_and_write_again() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("qcow2-reopen");
    let size = 8 * MIB;
    let path = create(&dir, "a.qcow2", "cluster_size=4096", size);
    let mut model = vec![0u8; size as usize];
    let mut rng = Rng::new(30);
    for _ in 0..3 {
        let mut img = disk::open(&path, Some(Format::Qcow2), false).unwrap();
        scatter(img.as_mut(), &mut model, &mut rng, 60, 20_000);
        // No explicit flush: dropping the image writes its metadata back.
        drop(img);
        check_clean(&path);
    }
    verify(&dir, &path, &model);
}

#[test]
fn qcow2_out_of_range_and_readonly() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("qcow2-ro");
    let path = create(&dir, "a.qcow2", "", MIB);
    let before = std::fs::read(&path).unwrap();
    let mut img = disk::open(&path, None, true).unwrap();
    assert!(img.readonly());
    let mut buf = [1u8; 512];
    assert!(img.read_at(&mut buf, MIB - 511).is_err());
    assert!(img.read_at(&mut buf, u64::MAX - 1).is_err());
    img.read_at(&mut buf, MIB - 512).unwrap();
    assert_eq!(buf, [0; 512]);
    let e = img.write_at(&buf, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReadOnlyFilesystem);
    assert!(img.write_zeroes(0, 512, true).is_err());
    assert!(img.discard(0, 65536).is_err());
    img.flush().unwrap();
    drop(img);
    assert!(std::fs::read(&path).unwrap() == before);

    let mut img = disk::open(&path, None, false).unwrap();
    assert!(img.write_at(&buf, MIB - 511).is_err());
    assert!(img.write_zeroes(MIB, 1, false).is_err());
    assert!(img.discard(0, u64::MAX).is_err());
}

/// Writes a known pattern into a fresh `base` image of format `fmt`.
fn make_base(dir: &Scratch, fmt: &str, size: u64, seed: u64) -> (PathBuf, Vec<u8>) {
    let data = Rng::new(seed).bytes(size as usize);
    let raw = dir.path("base-data.raw");
    std::fs::write(&raw, &data).unwrap();
    if fmt == "raw" {
        return (raw, data);
    }
    let path = dir.path("base.qcow2");
    run(&[
        "convert",
        "-q",
        "-f",
        "raw",
        "-O",
        "qcow2",
        "-o",
        "cluster_size=4096",
        raw.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    std::fs::remove_file(&raw).unwrap();
    (path, data)
}

/// `qemu-img create -f qcow2 -b BASE -F FMT`, the backing name relative when `relative`.
fn make_overlay(dir: &Scratch, name: &str, base: &Path, fmt: &str, opts: &str) -> PathBuf {
    let path = dir.path(name);
    let base_name = base.file_name().unwrap().to_str().unwrap();
    let mut args = vec!["create", "-q", "-f", "qcow2", "-b", base_name, "-F", fmt];
    if !opts.is_empty() {
        args.extend(["-o", opts]);
    }
    args.push(path.to_str().unwrap());
    run(&args);
    path
}

#[test]
fn qcow2_backing_chain() {
    if qemu_img().is_none() {
        return;
    }
    for (i, fmt) in ["raw", "qcow2"].into_iter().enumerate() {
        let dir = Scratch::new("qcow2-backing");
        let size = 6 * MIB;
        let (base, mut model) = make_base(&dir, fmt, size, 40 + i as u64);
        let base_before = std::fs::read(&base).unwrap();
        let top = make_overlay(&dir, "top.qcow2", &base, fmt, "cluster_size=65536");

        let mut img = disk::open(&top, None, false).unwrap();
        assert_eq!(img.size(), size);
        assert!(
            read_all(img.as_mut()) == model,
            "{fmt}: the base shows through"
        );
        // Small writes inside clusters: the rest of each cluster comes from the base.
        let mut rng = Rng::new(50 + i as u64);
        scatter(img.as_mut(), &mut model, &mut rng, 100, 5000);
        // Zeroes over the base hide it.
        img.write_zeroes(2 * MIB + 100, 300_000, false).unwrap();
        model[2 * MIB as usize + 100..][..300_000].fill(0);
        img.write_zeroes(4 * MIB, 200_000, true).unwrap();
        model[4 * MIB as usize..][..200_000].fill(0);
        assert!(read_all(img.as_mut()) == model, "{fmt}");
        img.flush().unwrap();
        drop(img);

        assert!(
            std::fs::read(&base).unwrap() == base_before,
            "{fmt}: base changed"
        );
        verify(&dir, &top, &model);
    }
}

#[test]
fn qcow2_three_level_chain() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("qcow2-chain3");
    let size = 4 * MIB;
    let (base, mut model) = make_base(&dir, "raw", size, 60);
    let mid = make_overlay(&dir, "mid.qcow2", &base, "raw", "cluster_size=512");
    let mut img = disk::open(&mid, None, false).unwrap();
    scatter(img.as_mut(), &mut model, &mut Rng::new(61), 50, 3000);
    drop(img);
    let top = make_overlay(&dir, "top.qcow2", &mid, "qcow2", "");
    let mid_before = std::fs::read(&mid).unwrap();
    let mut img = disk::open(&top, None, false).unwrap();
    assert!(read_all(img.as_mut()) == model);
    scatter(img.as_mut(), &mut model, &mut Rng::new(62), 50, 70_000);
    drop(img);
    assert!(std::fs::read(&mid).unwrap() == mid_before);
    verify(&dir, &top, &model);
}

#[test]
fn qcow2_missing_backing_file() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("qcow2-nobacking");
    let (base, _) = make_base(&dir, "raw", MIB, 70);
    let top = make_overlay(&dir, "top.qcow2", &base, "raw", "");
    std::fs::remove_file(&base).unwrap();
    let e = disk::open(&top, None, false).err().unwrap();
    assert!(matches!(e, DiskError::BackingMissing { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("top.qcow2") && msg.contains("base-data.raw"),
        "{msg}"
    );
}

#[test]
fn qcow2_zero_clusters() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("qcow2-zero");
    let size = 8 * MIB;
    let mut model = Rng::new(80).bytes(size as usize);
    let raw = dir.path("data.raw");
    std::fs::write(&raw, &model).unwrap();
    let path = dir.path("a.qcow2");
    run(&[
        "convert",
        "-q",
        "-O",
        "qcow2",
        raw.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    let mut img = disk::open(&path, None, false).unwrap();
    for (offset, len, may_unmap) in [
        (0, 2 * MIB, false),
        (3 * MIB, MIB, true),
        (5 * MIB + 1000, 65536 * 3, false), // ragged: partial clusters get written zeros
        (6 * MIB + 17, 100, true),
        (size - 65536, 65536, true),
    ] {
        img.write_zeroes(offset, len, may_unmap).unwrap();
        model[offset as usize..(offset + len) as usize].fill(0);
    }
    // Writing over a zeroed cluster again.
    img.write_at(&[5; 300], MIB + 4000).unwrap();
    model[MIB as usize + 4000..][..300].fill(5);
    img.flush().unwrap();
    drop(img);
    verify(&dir, &path, &model);
    // Whole zeroed clusters are zero clusters in the L2 tables, not written zeros.
    let map = run(&[
        "map",
        "--output=json",
        "-f",
        "qcow2",
        path.to_str().unwrap(),
    ]);
    assert!(map.contains("\"zero\": true"), "{map}");
}

#[test]
fn qcow2_compressed_clusters() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("qcow2-compressed");
    let size = 4 * MIB;
    let mut model = compressible(size as usize, 90);
    let raw = dir.path("data.raw");
    std::fs::write(&raw, &model).unwrap();
    let path = dir.path("c.qcow2");
    run(&[
        "convert",
        "-q",
        "-c",
        "-O",
        "qcow2",
        raw.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert!(
        file_len < size / 4,
        "qemu-img compressed it ({file_len} bytes)"
    );

    let mut img = disk::open(&path, None, false).unwrap();
    assert!(read_all(img.as_mut()) == model);
    // Partial writes into compressed clusters: the rest is decompressed into the new one.
    scatter(img.as_mut(), &mut model, &mut Rng::new(91), 40, 3000);
    img.write_zeroes(MIB + 10, 100_000, true).unwrap();
    model[MIB as usize + 10..][..100_000].fill(0);
    assert!(read_all(img.as_mut()) == model);
    drop(img);
    verify(&dir, &path, &model);
}

#[test]
fn qcow2_internal_snapshot_survives_writes() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("qcow2-snap");
    let size = 2 * MIB;
    let path = create(&dir, "a.qcow2", "cluster_size=4096", size);
    let mut model = vec![0u8; size as usize];
    let mut img = disk::open(&path, None, false).unwrap();
    scatter(img.as_mut(), &mut model, &mut Rng::new(100), 40, 10_000);
    drop(img);
    run(&["snapshot", "-q", "-c", "snap", path.to_str().unwrap()]);
    let snapshot = model.clone();

    // Clusters now shared with the snapshot must be copied, not overwritten.
    let mut img = disk::open(&path, None, false).unwrap();
    scatter(img.as_mut(), &mut model, &mut Rng::new(101), 40, 10_000);
    img.write_zeroes(0, 100_000, true).unwrap();
    model[..100_000].fill(0);
    drop(img);
    verify(&dir, &path, &model);

    let out = dir.path("snap.raw");
    run(&[
        "convert",
        "-q",
        "-l",
        "snap",
        "-O",
        "raw",
        path.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&out).unwrap() == snapshot,
        "the snapshot changed"
    );
}

#[test]
fn format_mismatch_is_refused() {
    if qemu_img().is_none() {
        return;
    }
    let dir = Scratch::new("qcow2-mismatch");
    let q = create(&dir, "a.qcow2", "", MIB);
    assert_eq!(disk::probe(&q).unwrap(), Format::Qcow2);
    let e = disk::open(&q, Some(Format::Raw), false).err().unwrap();
    assert!(matches!(e, DiskError::QcowNamedRaw { .. }), "{e}");
    assert!(e.to_string().contains("is a qcow2 image, not raw"), "{e}");
    assert!(e.to_string().contains("a.qcow2"), "{e}");

    let r = dir.path("b.raw");
    std::fs::write(&r, vec![0u8; 65536]).unwrap();
    let e = disk::open(&r, Some(Format::Qcow2), false).err().unwrap();
    assert!(matches!(e, DiskError::NotQcow2 { .. }), "{e}");
    assert!(e.to_string().contains("b.raw: is not a qcow2 image"), "{e}");
}
