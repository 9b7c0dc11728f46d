//! The virtio-vsock packet header (virtio 1.x section 5.10.6) and the checks a packet
//! from the guest must pass before the device acts on it.
//!
//! Every packet on the rx and tx queues starts with this 44-byte little-endian header;
//! only `OP_RW` carries a payload (`len` bytes right after it, possibly in other
//! descriptors of the same chain).

/// The host's address: packets from the guest to the host name it as `dst_cid`.
pub const HOST_CID: u64 = 2;
/// Size of the header on the wire (the C struct is packed).
pub const HDR_LEN: usize = 44;
/// The one socket type this device serves.
pub const TYPE_STREAM: u16 = 1;
/// The largest payload the device accepts from the guest in one packet, and puts in one
/// receive buffer. Linux's own limit (`VIRTIO_VSOCK_MAX_PKT_BUF_SIZE`): a longer `len`
/// is a driver bug, refused before the device reads any of it.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// `flags` of OP_SHUTDOWN: the sender will receive no more.
pub const SHUTDOWN_RCV: u32 = 1;
/// `flags` of OP_SHUTDOWN: the sender will send no more.
pub const SHUTDOWN_SEND: u32 = 2;

/// Packet operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Op {
    Request = 1,
    Response = 2,
    Rst = 3,
    Shutdown = 4,
    Rw = 5,
    CreditUpdate = 6,
    CreditRequest = 7,
}

impl Op {
    pub fn from_u16(v: u16) -> Option<Op> {
        Some(match v {
            1 => Op::Request,
            2 => Op::Response,
            3 => Op::Rst,
            4 => Op::Shutdown,
            5 => Op::Rw,
            6 => Op::CreditUpdate,
            7 => Op::CreditRequest,
            _ => return None,
        })
    }
}

/// `struct virtio_vsock_hdr`, decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    pub src_cid: u64,
    pub dst_cid: u64,
    pub src_port: u32,
    pub dst_port: u32,
    pub len: u32,
    pub type_: u16,
    pub op: u16,
    pub flags: u32,
    /// The sender's receive buffer size for this connection.
    pub buf_alloc: u32,
    /// Bytes the sender has taken out of that buffer so far (wrapping).
    pub fwd_cnt: u32,
}

fn u16_at(b: &[u8; HDR_LEN], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8; HDR_LEN], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8; HDR_LEN], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

impl Header {
    pub fn decode(b: &[u8; HDR_LEN]) -> Header {
        Header {
            src_cid: u64_at(b, 0),
            dst_cid: u64_at(b, 8),
            src_port: u32_at(b, 16),
            dst_port: u32_at(b, 20),
            len: u32_at(b, 24),
            type_: u16_at(b, 28),
            op: u16_at(b, 30),
            flags: u32_at(b, 32),
            buf_alloc: u32_at(b, 36),
            fwd_cnt: u32_at(b, 40),
        }
    }

    pub fn encode(&self) -> [u8; HDR_LEN] {
        let mut b = [0u8; HDR_LEN];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.type_.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }

    /// A packet from the host to the guest (`src_cid` is the host's).
    pub fn to_guest(guest_cid: u64, host_port: u32, guest_port: u32, op: Op) -> Header {
        Header {
            src_cid: HOST_CID,
            dst_cid: guest_cid,
            src_port: host_port,
            dst_port: guest_port,
            type_: TYPE_STREAM,
            op: op as u16,
            ..Header::default()
        }
    }

    /// The reset that answers this packet: addresses swapped, so the guest finds the
    /// socket that sent it.
    pub fn reset_reply(&self) -> Header {
        Header {
            src_cid: self.dst_cid,
            dst_cid: self.src_cid,
            src_port: self.dst_port,
            dst_port: self.src_port,
            type_: TYPE_STREAM,
            op: Op::Rst as u16,
            ..Header::default()
        }
    }
}

/// Why a packet from the guest is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("a buffer of {0} bytes is too short for a packet header")]
    ShortHeader(u64),
    #[error("source cid {got} is not the guest's ({want})")]
    WrongSourceCid { got: u64, want: u64 },
    #[error("destination cid {0} is not the host")]
    NotForHost(u64),
    #[error("socket type {0} is not a stream")]
    UnknownType(u16),
    #[error("unknown operation {0}")]
    UnknownOp(u16),
    #[error("payload of {len} bytes, but the buffer holds {available}")]
    PayloadBeyondBuffer { len: u32, available: u64 },
    #[error("payload of {0} bytes is longer than a packet may carry")]
    PayloadTooLong(u32),
}

impl PacketError {
    /// Whether the guest deserves a reset for it. A packet that claims to come from
    /// another address is dropped silently: a reset would go to that address, not to the
    /// sender.
    pub fn answer_with_reset(&self) -> bool {
        !matches!(
            self,
            PacketError::ShortHeader(_) | PacketError::WrongSourceCid { .. }
        )
    }
}

/// Checks a header from the guest's transmit queue; `available` is how many bytes the
/// chain still holds after the header. Returns the operation to act on.
pub fn check(hdr: &Header, guest_cid: u64, available: u64) -> Result<Op, PacketError> {
    if hdr.src_cid != guest_cid {
        return Err(PacketError::WrongSourceCid {
            got: hdr.src_cid,
            want: guest_cid,
        });
    }
    if hdr.dst_cid != HOST_CID {
        return Err(PacketError::NotForHost(hdr.dst_cid));
    }
    if hdr.type_ != TYPE_STREAM {
        return Err(PacketError::UnknownType(hdr.type_));
    }
    let op = Op::from_u16(hdr.op).ok_or(PacketError::UnknownOp(hdr.op))?;
    if op == Op::Rw {
        if hdr.len as usize > MAX_PAYLOAD {
            return Err(PacketError::PayloadTooLong(hdr.len));
        }
        if u64::from(hdr.len) > available {
            return Err(PacketError::PayloadBeyondBuffer {
                len: hdr.len,
                available,
            });
        }
    }
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_guest(op: Op) -> Header {
        Header {
            src_cid: 3,
            dst_cid: HOST_CID,
            src_port: 1234,
            dst_port: 5000,
            type_: TYPE_STREAM,
            op: op as u16,
            ..Header::default()
        }
    }

    #[test]
    fn layout_is_the_specs() {
        let h = Header {
            src_cid: 0x0102_0304_0506_0708,
            dst_cid: 2,
            src_port: 0x1122_3344,
            dst_port: 5000,
            len: 0x55,
            type_: 1,
            op: 5,
            flags: 3,
            buf_alloc: 0x0004_0000,
            fwd_cnt: 0xdead_beef,
        };
        let b = h.encode();
        assert_eq!(&b[0..8], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&b[8..16], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[16..20], &[0x44, 0x33, 0x22, 0x11]);
        assert_eq!(&b[20..24], &5000u32.to_le_bytes());
        assert_eq!(&b[24..28], &[0x55, 0, 0, 0]);
        assert_eq!(&b[28..32], &[1, 0, 5, 0]);
        assert_eq!(&b[32..36], &[3, 0, 0, 0]);
        assert_eq!(&b[36..40], &[0, 0, 4, 0]);
        assert_eq!(&b[40..44], &[0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(Header::decode(&b), h);
    }

    #[test]
    fn reset_reply_swaps_addresses() {
        let r = from_guest(Op::Request).reset_reply();
        assert_eq!((r.src_cid, r.dst_cid), (HOST_CID, 3));
        assert_eq!((r.src_port, r.dst_port), (5000, 1234));
        assert_eq!(r.op, Op::Rst as u16);
        assert_eq!(r.len, 0);
    }

    #[test]
    fn checks_guest_packets() {
        assert_eq!(check(&from_guest(Op::Request), 3, 0), Ok(Op::Request));
        let mut h = from_guest(Op::Rw);
        h.len = 100;
        assert_eq!(check(&h, 3, 100), Ok(Op::Rw));
        assert_eq!(
            check(&h, 3, 99),
            Err(PacketError::PayloadBeyondBuffer {
                len: 100,
                available: 99
            })
        );
        h.len = MAX_PAYLOAD as u32 + 1;
        assert_eq!(
            check(&h, 3, u64::MAX),
            Err(PacketError::PayloadTooLong(h.len))
        );
        // Only OP_RW's length matters; a control packet's is ignored.
        let mut c = from_guest(Op::CreditUpdate);
        c.len = 1 << 30;
        assert_eq!(check(&c, 3, 0), Ok(Op::CreditUpdate));

        let e = check(&from_guest(Op::Rw), 4, 0).unwrap_err();
        assert!(matches!(e, PacketError::WrongSourceCid { got: 3, want: 4 }));
        assert!(!e.answer_with_reset());
        let mut h = from_guest(Op::Request);
        h.dst_cid = 7;
        assert_eq!(check(&h, 3, 0), Err(PacketError::NotForHost(7)));
        h = from_guest(Op::Request);
        h.type_ = 2;
        assert_eq!(check(&h, 3, 0), Err(PacketError::UnknownType(2)));
        h = from_guest(Op::Request);
        h.op = 0;
        assert_eq!(check(&h, 3, 0), Err(PacketError::UnknownOp(0)));
        h.op = 8;
        let e = check(&h, 3, 0).unwrap_err();
        assert_eq!(e, PacketError::UnknownOp(8));
        assert!(e.answer_with_reset());
    }
}
