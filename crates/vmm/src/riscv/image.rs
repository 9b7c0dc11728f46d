//! The RISC-V Linux `Image` format: a 64-byte header (optionally also an EFI PE/COFF stub)
//! in front of the flat kernel, loaded at a 2 MiB-aligned address plus `text_offset`.

/// Header fields Tandem uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset of the load address from a 2 MiB boundary (0x200000 for RV64).
    pub text_offset: u64,
    /// Bytes of memory the kernel occupies once loaded (text, data and bss).
    pub image_size: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("{0} bytes is too short for a RISC-V Linux Image header")]
    TooShort(usize),
    #[error("not a RISC-V Linux Image (no \"RSC\\x05\" magic at offset 56)")]
    NotImage,
    #[error(
        "the Image header is inconsistent (text offset {text_offset:#x}, size {image_size:#x})"
    )]
    BadHeader { text_offset: u64, image_size: u64 },
    #[error(
        "the Image is truncated: its EFI header describes {needed} bytes, the file has {have}"
    )]
    Truncated { needed: u64, have: u64 },
}

const MAGIC2: &[u8; 4] = b"RSC\x05";
const MAGIC1: &[u8; 8] = b"RISCV\0\0\0";

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Whether the first bytes of a file look like a RISC-V Image.
pub fn looks_like_image(head: &[u8]) -> bool {
    head.get(56..60) == Some(&MAGIC2[..]) || head.get(48..56) == Some(&MAGIC1[..])
}

/// Checks an Image and reads its header. With an EFI stub, the PE section table says how
/// long the file must be, which catches a truncated kernel before it runs.
pub fn parse(bytes: &[u8]) -> Result<ImageHeader, ImageError> {
    if bytes.len() < 64 {
        return Err(ImageError::TooShort(bytes.len()));
    }
    if !looks_like_image(bytes) {
        return Err(ImageError::NotImage);
    }
    let text_offset = u64_at(bytes, 8).unwrap_or(0);
    let image_size = u64_at(bytes, 16).unwrap_or(0);
    if !text_offset.is_multiple_of(4096) || text_offset >= 1 << 30 || image_size > 1 << 34 {
        return Err(ImageError::BadHeader {
            text_offset,
            image_size,
        });
    }
    if &bytes[0..2] == b"MZ" {
        if let Some(needed) = pe_file_size(bytes) {
            if needed > bytes.len() as u64 {
                return Err(ImageError::Truncated {
                    needed,
                    have: bytes.len() as u64,
                });
            }
        }
    }
    Ok(ImageHeader {
        text_offset,
        // Old kernels leave it 0: the file is all there is (plus an unknown bss).
        image_size: image_size.max(bytes.len() as u64),
    })
}

/// The file size a PE image's section table implies (None if it has no valid PE header).
fn pe_file_size(b: &[u8]) -> Option<u64> {
    let pe = u32_at(b, 0x3c)? as usize;
    if b.get(pe..pe + 4)? != b"PE\0\0" {
        return None;
    }
    let coff = pe + 4;
    let sections = u16_at(b, coff + 2)? as usize;
    let opt_size = u16_at(b, coff + 16)? as usize;
    let table = coff + 20 + opt_size;
    let mut end = 0u64;
    for i in 0..sections.min(96) {
        let s = table + 40 * i;
        let raw_size = u32_at(b, s + 16)? as u64;
        let raw_ptr = u32_at(b, s + 20)? as u64;
        end = end.max(raw_ptr + raw_size);
    }
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, size: u64) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[8..16].copy_from_slice(&text_offset.to_le_bytes());
        b[16..24].copy_from_slice(&size.to_le_bytes());
        b[56..60].copy_from_slice(MAGIC2);
        b
    }

    #[test]
    fn reads_the_header() {
        let h = parse(&header(0x20_0000, 0x10_0000)).unwrap();
        assert_eq!(h.text_offset, 0x20_0000);
        assert_eq!(h.image_size, 0x10_0000);
        assert!(looks_like_image(&header(0, 0)));
    }

    #[test]
    fn rejects_what_is_not_an_image() {
        assert_eq!(parse(&[0u8; 10]), Err(ImageError::TooShort(10)));
        assert_eq!(parse(&[0u8; 100]), Err(ImageError::NotImage));
        assert!(matches!(
            parse(&header(0x123, 0)),
            Err(ImageError::BadHeader { .. })
        ));
    }

    #[test]
    fn the_shared_kernel_is_whole_and_a_truncated_copy_is_not() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/guest");
        let dir = std::env::var_os("TANDEM_GUEST_DIR").map_or(root, Into::into);
        let Ok(bytes) = std::fs::read(dir.join("linux-riscv64.Image")) else {
            eprintln!("skipping: no shared RISC-V kernel");
            return;
        };
        assert!(parse(&bytes).is_ok());
        let cut = &bytes[..bytes.len() / 2];
        assert!(matches!(parse(cut), Err(ImageError::Truncated { .. })));
    }
}
