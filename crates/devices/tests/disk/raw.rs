//! Raw images.

use std::io::ErrorKind;

use devices::disk::{self, DiskError, Format};

use crate::common::{Rng, Scratch};

const SIZE: u64 = 4 << 20;

fn make_raw(dir: &Scratch, data: &[u8]) -> std::path::PathBuf {
    let path = dir.path("disk.raw");
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn raw_read_write_round_trip() {
    let dir = Scratch::new("raw-rw");
    let mut rng = Rng::new(1);
    let mut model = rng.bytes(SIZE as usize);
    let path = make_raw(&dir, &model);
    assert_eq!(disk::probe(&path).unwrap(), Format::Raw);

    let mut img = disk::open(&path, None, false).unwrap();
    assert_eq!(img.size(), SIZE);
    assert_eq!(img.format(), Format::Raw);
    assert!(!img.readonly());
    for _ in 0..200 {
        let len = 1 + rng.below(70_000) as usize;
        let offset = rng.below(SIZE - len as u64);
        let data = rng.bytes(len);
        img.write_at(&data, offset).unwrap();
        model[offset as usize..offset as usize + len].copy_from_slice(&data);
    }
    let mut back = vec![0u8; SIZE as usize];
    img.read_at(&mut back, 0).unwrap();
    assert!(back == model);
    img.flush().unwrap();
    drop(img);
    assert!(std::fs::read(&path).unwrap() == model);
}

#[test]
fn raw_discard_and_write_zeroes() {
    let dir = Scratch::new("raw-zero");
    let mut model = Rng::new(2).bytes(SIZE as usize);
    let path = make_raw(&dir, &model);
    let mut img = disk::open(&path, Some(Format::Raw), false).unwrap();

    // Whole blocks and ragged edges, both ways.
    let ranges = [
        (0u64, 65536u64, true),
        (70_001, 9_999, true),
        (200_000, 300_000, false),
        (1_000_003, 5, false),
    ];
    for (offset, len, may_unmap) in ranges {
        img.write_zeroes(offset, len, may_unmap).unwrap();
        model[offset as usize..(offset + len) as usize].fill(0);
    }
    // A discard leaves the range unspecified; a raw file reads zeros where it punched.
    img.discard(2 << 20, 1 << 20).unwrap();
    model[2 << 20..3 << 20].fill(0);
    img.write_zeroes(SIZE - 10, 10, true).unwrap();
    model[SIZE as usize - 10..].fill(0);

    let mut back = vec![0u8; SIZE as usize];
    img.read_at(&mut back, 0).unwrap();
    assert!(back == model);
    img.flush().unwrap();
    drop(img);
    let file = std::fs::read(&path).unwrap();
    assert_eq!(file.len() as u64, SIZE, "discard kept the size");
    assert!(file == model);
}

#[test]
fn raw_out_of_range_requests_fail() {
    let dir = Scratch::new("raw-range");
    let path = make_raw(&dir, &vec![7u8; 8192]);
    let mut img = disk::open(&path, None, false).unwrap();
    let mut buf = [0u8; 512];
    assert!(img.read_at(&mut buf, 8192 - 511).is_err());
    assert!(img.read_at(&mut buf, u64::MAX - 10).is_err());
    assert!(img.write_at(&buf, 8192).is_err());
    assert!(img.write_zeroes(4096, 4097, true).is_err());
    assert!(img.discard(u64::MAX, 2).is_err());
    img.read_at(&mut buf, 8192 - 512).unwrap();
    img.read_at(&mut [], 8192).unwrap();
    assert_eq!(buf, [7u8; 512]);
}

#[test]
fn raw_readonly_refuses_writes() {
    let dir = Scratch::new("raw-ro");
    let path = make_raw(&dir, &vec![9u8; 8192]);
    let mut img = disk::open(&path, None, true).unwrap();
    assert!(img.readonly());
    let e = img.write_at(&[1, 2, 3], 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReadOnlyFilesystem);
    assert!(img.discard(0, 4096).is_err());
    assert!(img.write_zeroes(0, 4096, false).is_err());
    img.flush().unwrap();
    let mut buf = [0u8; 3];
    img.read_at(&mut buf, 100).unwrap();
    assert_eq!(buf, [9; 3]);
    drop(img);
    assert_eq!(std::fs::read(&path).unwrap(), vec![9u8; 8192]);
}

#[test]
fn missing_file_is_named() {
    let dir = Scratch::new("raw-missing");
    let path = dir.path("nope.img");
    let e = disk::open(&path, None, false).err().unwrap();
    assert!(matches!(e, DiskError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("nope.img"), "{e}");
}

#[test]
fn format_names_parse() {
    assert_eq!("raw".parse::<Format>().unwrap(), Format::Raw);
    assert_eq!("qcow2".parse::<Format>().unwrap(), Format::Qcow2);
    assert!("vmdk".parse::<Format>().is_err());
    assert_eq!(Format::Qcow2.to_string(), "qcow2");
}
