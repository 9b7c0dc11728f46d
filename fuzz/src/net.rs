//! `virtio_net`: transmit parsing and receive delivery, with an in-process host side in
//! place of the tap.
//!
//! Input: the frames the host sends (a count of at most 8; per frame a length and up to
//! 64 bytes of content, the rest zeros), a mask of how the host answers each transmit
//! attempt, the events to hand the device (as for the console), then both queues (see
//! [`super::harness`]).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use devices::virtio::net;
use devices::virtio::tap::{NetBackend, VNET_HDR_LEN};
use devices::virtio::FuzzEvent;
use vmm_sys_util::eventfd::EventFd;

use super::harness::Setup;
use super::input::Input;

const RX: usize = 0;
const TX: usize = 1;
/// The largest frame the device sends (its own bound).
const MAX_FRAME: usize = 65536 + 14 + VNET_HDR_LEN;

/// How the host answers a transmit attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Sent,
    Full,
    Failed,
}

/// The host side, scripted.
pub struct ScriptedTap {
    /// What the worker waits on; never signalled (events are handed over directly).
    fd: EventFd,
    rx: VecDeque<Vec<u8>>,
    /// Two bits per transmit attempt: 1 full (WouldBlock), 2 failed, else sent.
    tx_script: u32,
    attempts: u32,
    /// Every transmit attempt and its answer.
    sent: Vec<(Vec<u8>, Answer)>,
}

impl AsRawFd for ScriptedTap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl NetBackend for ScriptedTap {
    fn name(&self) -> &str {
        "fuzz"
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let frame = self.rx.pop_front().ok_or(io::ErrorKind::WouldBlock)?;
        // A tap truncates a frame to the buffer, as a datagram read does.
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok(n)
    }
    fn write(&mut self, frame: &[u8]) -> io::Result<usize> {
        let n = self.attempts;
        self.attempts = self.attempts.saturating_add(1);
        let answer = match (n < 16).then(|| (self.tx_script >> (2 * n)) & 3) {
            Some(1) => Answer::Full,
            Some(2) => Answer::Failed,
            _ => Answer::Sent,
        };
        self.sent.push((frame.to_vec(), answer));
        match answer {
            Answer::Sent => Ok(frame.len()),
            Answer::Full => Err(io::ErrorKind::WouldBlock.into()),
            Answer::Failed => Err(io::Error::other("injected failure")),
        }
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let nframes = input.u8() % 9;
    let frames: Vec<Vec<u8>> = (0..nframes)
        .map(|_| {
            let len = usize::from(input.u16());
            let mut f = input.bytes(len.min(64)).to_vec();
            f.resize(len, 0);
            f
        })
        .collect();
    let tx_script = input.u32();
    let events = super::console::events(&mut input);
    let mut setup = Setup::new(&mut input, &[256, 256]);
    if !setup.all_enabled() {
        return;
    }
    let tap = ScriptedTap {
        fd: EventFd::new(libc::EFD_NONBLOCK).expect("an eventfd"),
        rx: frames.iter().cloned().collect(),
        tx_script,
        attempts: 0,
        sent: Vec::new(),
    };
    let tap = net::fuzz_serve(setup.activation(), tap, &events).expect("both queues are enabled");

    // Transmit is served to the end when it ran and the host never pushed back.
    let transmitted = events.iter().any(|e| {
        matches!(
            e,
            FuzzEvent::Notify(TX) | FuzzEvent::Backend { writable: true, .. }
        )
    });
    let pushed_back = tap.sent.iter().any(|s| s.1 == Answer::Full);
    let report = setup.check(&[false, transmitted && !pushed_back]);
    if report.aliased {
        return;
    }

    // Transmit: the host saw each request's readable bytes (up to the bound), in order;
    // a refused frame is retried as it was, and completed only once the host took it
    // (or failed it).
    let model = setup.models[TX].as_ref().expect("enabled");
    let done = usize::from(report.queues[TX].used);
    let mut i = 0;
    for (k, c) in model.chains.iter().enumerate() {
        let want = c.readable_bytes(&setup.mem, MAX_FRAME);
        let mut answered = false;
        while let Some((frame, answer)) = tap.sent.get(i) {
            assert!(
                *frame == want,
                "transmit request {k}: the host got other bytes"
            );
            i += 1;
            if *answer != Answer::Full {
                answered = true;
                break;
            }
        }
        assert_eq!(
            answered,
            k < done,
            "transmit request {k}: answered {answered}"
        );
        if !answered {
            break;
        }
    }
    assert_eq!(i, tap.sent.len(), "the host got frames no request held");

    // Receive: every delivered frame is one the host sent, in order and whole; frames
    // without a whole header, or too large for the buffer on offer, are dropped.
    let model = setup.models[RX].as_ref().expect("enabled");
    let entries = setup.used_entries(RX, report.queues[RX].used);
    let mut k = 0;
    for f in frames.iter().filter(|f| f.len() >= VNET_HDR_LEN) {
        let Some(&(_, len)) = entries.get(k) else {
            break;
        };
        if f.len() as u64 <= model.chains[k].writable_len() {
            assert_eq!(len as usize, f.len(), "receive buffer {k}: wrong length");
            k += 1;
        }
    }
    assert_eq!(
        k,
        entries.len(),
        "receive buffers completed without a frame"
    );
}
