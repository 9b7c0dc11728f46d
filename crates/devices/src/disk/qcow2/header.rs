//! A strict reading of the qcow2 header (docs/interop/qcow2.txt in QEMU's tree).
//!
//! Every field that sizes or places something is checked here, before `imago` sees the
//! file: the cluster size, the L1 table against the virtual size and the file's length,
//! the refcount table, the snapshot table, the backing file name, the header extensions,
//! and the feature bits. Nothing here indexes past the buffer or allocates more than the
//! first cluster of the file.

use std::fmt;

use super::super::QCOW2_MAGIC;

/// Smallest and largest cluster sizes (as QEMU): 512 bytes to 2 MiB.
pub const MIN_CLUSTER_BITS: u32 = 9;
pub const MAX_CLUSTER_BITS: u32 = 21;
/// The largest active L1 table QEMU accepts: 32 MiB of entries.
pub const MAX_L1_ENTRIES: u64 = (32 << 20) / 8;
/// The largest refcount table QEMU accepts: 8 MiB.
pub const MAX_REFTABLE_BYTES: u64 = 8 << 20;
/// The most internal snapshots QEMU accepts.
pub const MAX_SNAPSHOTS: u32 = 65536;
/// A backing file name is at most this long (QEMU: 1023 bytes).
pub const MAX_BACKING_NAME: u32 = 1023;

const V2_HEADER_LEN: usize = 72;
const V3_HEADER_LEN: usize = 104;

const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_FEATURE_TABLE: u32 = 0x6803_f857;
const EXT_CRYPTO: u32 = 0x0537_be77;
const EXT_DATA_FILE: u32 = 0x4441_5441;

const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
const INCOMPAT_EXTL2: u64 = 1 << 4;

/// What the header says, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub cluster_bits: u32,
    /// Virtual size in bytes.
    pub size: u64,
    pub l1_entries: u32,
    pub l1_offset: u64,
    pub refcount_table_offset: u64,
    pub refcount_table_clusters: u32,
    pub refcount_order: u32,
    pub snapshots: u32,
    pub backing_file: Option<String>,
    pub backing_format: Option<String>,
}

impl Header {
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }
}

/// Why a header was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Not a qcow2 file at all.
    NotQcow2,
    /// Inconsistent or out-of-bounds metadata.
    Corrupt(String),
    /// Valid, but uses something Tandem does not implement.
    Unsupported(String),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::NotQcow2 => f.write_str("not a qcow2 image"),
            HeaderError::Corrupt(s) => write!(f, "corrupt: {s}"),
            HeaderError::Unsupported(s) => write!(f, "unsupported: {s}"),
        }
    }
}

fn corrupt(s: impl Into<String>) -> HeaderError {
    HeaderError::Corrupt(s.into())
}

fn unsupported(s: impl Into<String>) -> HeaderError {
    HeaderError::Unsupported(s.into())
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    let bytes = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// How many bytes of the file [`parse`] wants: the first cluster, as far as the file goes.
/// `start` is at least the first 104 bytes of the file (fewer if the file is shorter).
pub fn wanted_len(start: &[u8], file_len: u64) -> usize {
    let bits = be32(start, 20).unwrap_or(0);
    let cluster = if (MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&bits) {
        1u64 << bits
    } else {
        V3_HEADER_LEN as u64
    };
    // Both bounds are at most 2 MiB, so the cast is exact.
    cluster.min(file_len) as usize
}

/// Checks the header in `first` (the file's first cluster, or the whole file if shorter)
/// of a file `file_len` bytes long.
pub fn parse(first: &[u8], file_len: u64) -> Result<Header, HeaderError> {
    if first.len() < 4 || first[..4] != QCOW2_MAGIC {
        return Err(HeaderError::NotQcow2);
    }
    let truncated = || corrupt("truncated header");
    let version = be32(first, 4).ok_or_else(truncated)?;
    if version != 2 && version != 3 {
        return Err(unsupported(format!("version {version}")));
    }
    let fixed_len = if version == 2 {
        V2_HEADER_LEN
    } else {
        V3_HEADER_LEN
    };
    if first.len() < fixed_len {
        return Err(truncated());
    }
    let field32 = |at| be32(first, at).ok_or_else(truncated);
    let field64 = |at| be64(first, at).ok_or_else(truncated);

    let backing_offset = field64(8)?;
    let backing_len = field32(16)?;
    let cluster_bits = field32(20)?;
    let size = field64(24)?;
    let crypt_method = field32(32)?;
    let l1_entries = field32(36)?;
    let l1_offset = field64(40)?;
    let refcount_table_offset = field64(48)?;
    let refcount_table_clusters = field32(56)?;
    let snapshots = field32(60)?;
    let snapshots_offset = field64(64)?;
    let (incompat, refcount_order, header_len) = if version == 3 {
        (field64(72)?, field32(96)?, field32(100)?)
    } else {
        (0, 4, V2_HEADER_LEN as u32)
    };

    if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
        return Err(corrupt(format!(
            "cluster_bits {cluster_bits} is outside {MIN_CLUSTER_BITS}..={MAX_CLUSTER_BITS}"
        )));
    }
    let cluster = 1u64 << cluster_bits;
    // The header and its extensions live in the first cluster.
    let first = &first[..first.len().min(cluster as usize)];

    if version == 3 {
        if (header_len as usize) < V3_HEADER_LEN {
            return Err(corrupt(format!("header_length {header_len} < 104")));
        }
        if u64::from(header_len) > cluster {
            return Err(corrupt(format!(
                "header_length {header_len} exceeds the cluster size"
            )));
        }
        if header_len as usize > first.len() {
            return Err(truncated());
        }
    }
    if crypt_method != 0 {
        return Err(unsupported("encrypted"));
    }
    check_features(incompat, first, header_len)?;
    if refcount_order > 6 {
        return Err(corrupt(format!("refcount_order {refcount_order} > 6")));
    }

    // The L1 table must cover the virtual size, and fit the limits and the file.
    let l2_span = cluster * (cluster / 8);
    let needed_l1 = size.div_ceil(l2_span);
    if needed_l1 > MAX_L1_ENTRIES {
        return Err(unsupported(format!("virtual size {size} is too large")));
    }
    if u64::from(l1_entries) > MAX_L1_ENTRIES {
        return Err(corrupt(format!(
            "L1 table of {l1_entries} entries is too large"
        )));
    }
    if u64::from(l1_entries) < needed_l1 {
        return Err(corrupt(format!(
            "L1 table of {l1_entries} entries does not cover the virtual size {size}"
        )));
    }
    if l1_entries > 0 {
        check_table(
            "L1 table",
            l1_offset,
            u64::from(l1_entries) * 8,
            cluster,
            file_len,
        )?;
    }

    if refcount_table_clusters == 0 {
        return Err(corrupt("no refcount table"));
    }
    let reftable_bytes = u64::from(refcount_table_clusters) * cluster;
    if reftable_bytes > MAX_REFTABLE_BYTES {
        return Err(corrupt(format!(
            "refcount table of {refcount_table_clusters} clusters is too large"
        )));
    }
    check_table(
        "refcount table",
        refcount_table_offset,
        reftable_bytes,
        cluster,
        file_len,
    )?;

    if snapshots > MAX_SNAPSHOTS {
        return Err(corrupt(format!("{snapshots} snapshots is too many")));
    }
    if snapshots > 0 {
        // Entries vary in length; at least the offset must be sane.
        check_table("snapshot table", snapshots_offset, 1, cluster, file_len)?;
    }

    let backing_file = if backing_offset != 0 {
        Some(backing_name(first, backing_offset, backing_len, cluster)?)
    } else {
        None
    };
    let ext_start = if version == 2 {
        V2_HEADER_LEN
    } else {
        header_len as usize
    };
    let backing_format = parse_extensions(first, ext_start)?;

    Ok(Header {
        version,
        cluster_bits,
        size,
        l1_entries,
        l1_offset,
        refcount_table_offset,
        refcount_table_clusters,
        refcount_order,
        snapshots,
        backing_file,
        backing_format,
    })
}

/// Checks the refcount table's first entry, `entry` (read from `h.refcount_table_offset`):
/// the refcount block for the header's cluster. Every valid image has one, since the
/// header's cluster is in use; without it `imago` would place a new refcount block at
/// offset 0, which a refcount table cannot express, and recurse without end.
pub fn check_first_refblock(entry: u64, h: &Header, file_len: u64) -> Result<(), HeaderError> {
    let offset = entry & 0x00ff_ffff_ffff_fe00;
    if offset == 0 {
        return Err(corrupt("no refcount block for the header's cluster"));
    }
    check_table(
        "first refcount block",
        offset,
        h.cluster_size(),
        h.cluster_size(),
        file_len,
    )
}

fn check_features(incompat: u64, first: &[u8], header_len: u32) -> Result<(), HeaderError> {
    if incompat & INCOMPAT_CORRUPT != 0 {
        return Err(corrupt(
            "marked corrupt (repair with `qemu-img check -r all`)",
        ));
    }
    if incompat & INCOMPAT_DIRTY != 0 {
        return Err(unsupported(
            "dirty lazy refcounts (repair with `qemu-img check -r all`)",
        ));
    }
    if incompat & INCOMPAT_DATA_FILE != 0 {
        return Err(unsupported("external data file"));
    }
    if incompat & INCOMPAT_EXTL2 != 0 {
        return Err(unsupported("extended L2 entries (subclusters)"));
    }
    if incompat & INCOMPAT_COMPRESSION != 0 {
        // The compression type is byte 104, present when the header is long enough.
        let kind = if header_len > 104 {
            first.get(104).copied()
        } else {
            None
        };
        return Err(match kind {
            Some(1) => unsupported("zstd compression"),
            Some(k) => unsupported(format!("compression type {k}")),
            None => corrupt("compression type bit without the field"),
        });
    }
    let unknown = incompat
        & !(INCOMPAT_DIRTY
            | INCOMPAT_CORRUPT
            | INCOMPAT_DATA_FILE
            | INCOMPAT_COMPRESSION
            | INCOMPAT_EXTL2);
    if unknown != 0 {
        return Err(unsupported(format!(
            "unknown incompatible features {unknown:#x}"
        )));
    }
    Ok(())
}

/// A table at `offset` of `bytes` bytes: cluster aligned, not over the header, in the file.
fn check_table(
    what: &str,
    offset: u64,
    bytes: u64,
    cluster: u64,
    file_len: u64,
) -> Result<(), HeaderError> {
    if offset == 0 {
        return Err(corrupt(format!("{what} at offset 0 overlaps the header")));
    }
    if !offset.is_multiple_of(cluster) {
        return Err(corrupt(format!(
            "{what} offset {offset:#x} is not cluster aligned"
        )));
    }
    let end = offset
        .checked_add(bytes)
        .ok_or_else(|| corrupt(format!("{what} offset {offset:#x} overflows")))?;
    if end > file_len {
        return Err(corrupt(format!(
            "{what} at {offset:#x}..{end:#x} is beyond the end of the file ({file_len:#x})"
        )));
    }
    Ok(())
}

fn backing_name(first: &[u8], offset: u64, len: u32, cluster: u64) -> Result<String, HeaderError> {
    if len == 0 || len > MAX_BACKING_NAME {
        return Err(corrupt(format!("backing file name of {len} bytes")));
    }
    let end = offset.saturating_add(u64::from(len));
    if end > cluster {
        return Err(corrupt("backing file name is beyond the first cluster"));
    }
    // Both within the first cluster (at most 2 MiB), so the casts are exact.
    let bytes = first
        .get(offset as usize..end as usize)
        .ok_or_else(|| corrupt("backing file name is beyond the end of the file"))?;
    let name = std::str::from_utf8(bytes).map_err(|_| corrupt("backing file name is not UTF-8"))?;
    if name.contains('\0') {
        return Err(corrupt("backing file name contains a NUL byte"));
    }
    Ok(name.to_string())
}

/// Walks the header extensions; returns the backing file's format, if named.
fn parse_extensions(first: &[u8], mut at: usize) -> Result<Option<String>, HeaderError> {
    let mut backing_format = None;
    loop {
        // A header whose extensions run to the end of the cluster without an end marker
        // is accepted, as QEMU does.
        let (Some(kind), Some(len)) = (be32(first, at), be32(first, at + 4)) else {
            return Ok(backing_format);
        };
        let data_start = at + 8;
        let data = data_start
            .checked_add(len as usize)
            .and_then(|end| first.get(data_start..end))
            .ok_or_else(|| corrupt(format!("header extension {kind:#x} overruns the cluster")))?;
        match kind {
            EXT_END => return Ok(backing_format),
            EXT_BACKING_FORMAT => {
                let name = std::str::from_utf8(data)
                    .map_err(|_| corrupt("backing format name is not UTF-8"))?;
                backing_format = Some(name.trim_end_matches('\0').to_string());
            }
            EXT_CRYPTO => return Err(unsupported("encrypted")),
            EXT_DATA_FILE => return Err(unsupported("external data file")),
            EXT_FEATURE_TABLE => {}
            _ => {} // Unknown extensions are ignored, as the format says.
        }
        at = data_start + (len as usize).next_multiple_of(8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid v3 header: 64 KiB clusters, 1 GiB, L1 at 3 clusters, reftable at 1 cluster.
    fn good() -> Vec<u8> {
        let mut h = vec![0u8; 65536];
        h[..4].copy_from_slice(&QCOW2_MAGIC);
        h[4..8].copy_from_slice(&3u32.to_be_bytes());
        h[20..24].copy_from_slice(&16u32.to_be_bytes());
        h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
        h[36..40].copy_from_slice(&2u32.to_be_bytes());
        h[40..48].copy_from_slice(&(3u64 << 16).to_be_bytes());
        h[48..56].copy_from_slice(&(1u64 << 16).to_be_bytes());
        h[56..60].copy_from_slice(&1u32.to_be_bytes());
        h[96..100].copy_from_slice(&4u32.to_be_bytes());
        h[100..104].copy_from_slice(&104u32.to_be_bytes());
        h
    }

    const FILE_LEN: u64 = 4 << 16;

    #[test]
    fn accepts_a_good_header() {
        let h = parse(&good(), FILE_LEN).unwrap();
        assert_eq!(h.cluster_bits, 16);
        assert_eq!(h.size, 1 << 30);
        assert_eq!(h.backing_file, None);
    }

    #[test]
    fn refuses_bad_fields() {
        let cases: &[(usize, &[u8])] = &[
            (20, &22u32.to_be_bytes()),         // cluster_bits
            (20, &8u32.to_be_bytes()),          // cluster_bits
            (4, &4u32.to_be_bytes()),           // version
            (32, &1u32.to_be_bytes()),          // crypt_method
            (36, &0u32.to_be_bytes()),          // L1 too small for the size
            (36, &u32::MAX.to_be_bytes()),      // L1 too large
            (40, &(9u64 << 16).to_be_bytes()),  // L1 beyond the file
            (40, &12345u64.to_be_bytes()),      // L1 unaligned
            (48, &0u64.to_be_bytes()),          // reftable at 0
            (56, &0u32.to_be_bytes()),          // no reftable
            (56, &1000u32.to_be_bytes()),       // reftable too large
            (72, &1u64.to_be_bytes()),          // dirty
            (72, &(1u64 << 40).to_be_bytes()),  // unknown feature
            (96, &7u32.to_be_bytes()),          // refcount_order
            (100, &(1u32 << 20).to_be_bytes()), // header_length
            (100, &50u32.to_be_bytes()),        // header_length
            (8, &65530u64.to_be_bytes()),       // backing name beyond the cluster
            (24, &u64::MAX.to_be_bytes()),      // size
        ];
        for (at, bytes) in cases {
            let mut h = good();
            h[*at..*at + bytes.len()].copy_from_slice(bytes);
            if *at == 8 {
                h[16..20].copy_from_slice(&100u32.to_be_bytes());
            }
            assert!(parse(&h, FILE_LEN).is_err(), "field at {at} accepted");
        }
    }

    #[test]
    fn refuses_truncation_and_bad_magic() {
        let h = good();
        for len in [0, 3, 4, 50, 103] {
            assert!(parse(&h[..len], FILE_LEN).is_err());
        }
        let mut h = good();
        h[0] = b'X';
        assert_eq!(parse(&h, FILE_LEN), Err(HeaderError::NotQcow2));
    }

    #[test]
    fn reads_backing_name_and_format() {
        let mut h = good();
        // Backing format extension at 104, end marker after it, name at 200.
        h[104..108].copy_from_slice(&EXT_BACKING_FORMAT.to_be_bytes());
        h[108..112].copy_from_slice(&3u32.to_be_bytes());
        h[112..115].copy_from_slice(b"raw");
        h[8..16].copy_from_slice(&200u64.to_be_bytes());
        h[16..20].copy_from_slice(&8u32.to_be_bytes());
        h[200..208].copy_from_slice(b"base.img");
        let p = parse(&h, FILE_LEN).unwrap();
        assert_eq!(p.backing_file.as_deref(), Some("base.img"));
        assert_eq!(p.backing_format.as_deref(), Some("raw"));
        // An extension overrunning the cluster.
        h[108..112].copy_from_slice(&70000u32.to_be_bytes());
        assert!(parse(&h, FILE_LEN).is_err());
    }
}
