//! The virtio-mmio transport driven the way a guest driver drives it: registers through
//! `BusDevice`, rings and buffers laid out by hand in guest memory. Covers the handshake and
//! a misbehaving driver: queue registers written after DRIVER_OK, descriptor loops,
//! buffers outside RAM, nonsense ring indexes. The device must set DEVICE_NEEDS_RESET and
//! go on, never hang or panic, and a reset must make it usable again.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use devices::virtio::rng::Rng;
use devices::virtio::{status, IgnoreWrites, MmioTransport};
use vm_core::{BusDevice, GuestMemory, Irq, IrqError};
use vm_memory::{Bytes, GuestAddress};

const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
const BUF: u64 = 0x10000;
const RAM: u64 = 0x10_0000;
const QSIZE: u16 = 8;

/// Counts interrupts and lets the test wait for the next one.
#[derive(Default)]
struct Line {
    count: Mutex<u32>,
    cv: Condvar,
}

impl Irq for Line {
    fn trigger(&self) -> Result<(), IrqError> {
        *self.count.lock().unwrap() += 1;
        self.cv.notify_all();
        Ok(())
    }
}

impl Line {
    /// Waits until more than `seen` interrupts arrived. The bound only keeps a broken device
    /// from hanging the test; a working one answers at once.
    fn wait_past(&self, seen: u32) -> u32 {
        let g = self.count.lock().unwrap();
        let (g, _) = self
            .cv
            .wait_timeout_while(g, Duration::from_secs(20), |c| *c <= seen)
            .unwrap();
        *g
    }
}

struct Driver {
    mem: GuestMemory,
    dev: MmioTransport,
    line: Arc<Line>,
    avail_idx: u16,
}

impl Driver {
    fn new() -> Driver {
        let mem = vm_core::memory::create(&[(0, RAM)]).unwrap();
        let line = Arc::new(Line::default());
        let dev = MmioTransport::new(
            Box::new(Rng::new()),
            mem.clone(),
            line.clone(),
            Arc::new(IgnoreWrites),
        )
        .unwrap();
        Driver {
            mem,
            dev,
            line,
            avail_idx: 0,
        }
    }

    fn read(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.dev.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    fn write(&mut self, off: u64, v: u32) {
        self.dev.write(off, &v.to_le_bytes());
    }

    /// The driver side of device initialisation (virtio 1.x 3.1.1); returns the status read
    /// back after FEATURES_OK.
    fn negotiate(&mut self, features_hi: u32) -> u32 {
        self.write(0x70, 0);
        self.write(0x70, status::ACKNOWLEDGE);
        self.write(0x70, status::ACKNOWLEDGE | status::DRIVER);
        self.write(0x24, 1);
        self.write(0x20, features_hi);
        self.write(0x24, 0);
        self.write(0x20, 0);
        self.write(
            0x70,
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
        );
        self.read(0x70)
    }

    fn setup_queue(&mut self) {
        self.write(0x30, 0);
        assert_eq!(self.read(0x34), 256, "QueueNumMax");
        self.write(0x38, u32::from(QSIZE));
        self.write(0x80, DESC as u32);
        self.write(0x84, 0);
        self.write(0x90, AVAIL as u32);
        self.write(0x94, 0);
        self.write(0xa0, USED as u32);
        self.write(0xa4, 0);
        self.write(0x44, 1);
    }

    fn start(&mut self) {
        assert_ne!(self.negotiate(1) & status::FEATURES_OK, 0);
        self.setup_queue();
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;
        self.write(0x70, s);
        self.avail_idx = 0;
    }

    fn put_desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = DESC + u64::from(i) * 16;
        self.mem.write_obj(addr, GuestAddress(at)).unwrap();
        self.mem.write_obj(len, GuestAddress(at + 8)).unwrap();
        self.mem.write_obj(flags, GuestAddress(at + 12)).unwrap();
        self.mem.write_obj(next, GuestAddress(at + 14)).unwrap();
    }

    /// Publishes chain `head` and notifies; returns the interrupt count before.
    fn submit(&mut self, head: u16) -> u32 {
        let slot = u64::from(self.avail_idx % QSIZE);
        self.mem
            .write_obj(head, GuestAddress(AVAIL + 4 + slot * 2))
            .unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem
            .write_obj(self.avail_idx, GuestAddress(AVAIL + 2))
            .unwrap();
        let before = *self.line.count.lock().unwrap();
        self.write(0x50, 0);
        before
    }

    fn used_idx(&self) -> u16 {
        self.mem.read_obj(GuestAddress(USED + 2)).unwrap()
    }
}

const WRITE: u16 = 2;
const NEXT: u16 = 1;

#[test]
fn identifies_itself_and_refuses_legacy_drivers() {
    let mut d = Driver::new();
    assert_eq!(d.read(0x000), 0x7472_6976, "magic");
    assert_eq!(d.read(0x004), 2, "version");
    assert_eq!(d.read(0x008), 4, "device id: rng");
    d.write(0x14, 1);
    assert_eq!(d.read(0x10) & 1, 1, "VERSION_1 offered");
    // A driver that does not accept VERSION_1 does not get FEATURES_OK.
    assert_eq!(d.negotiate(0) & status::FEATURES_OK, 0);
    // Nor does one accepting a feature the device never offered.
    assert_eq!(d.negotiate(1 | 1 << 20) & status::FEATURES_OK, 0);
    assert_ne!(d.negotiate(1) & status::FEATURES_OK, 0);
}

#[test]
fn serves_requests_and_freezes_queue_registers() {
    let mut d = Driver::new();
    d.start();
    d.put_desc(0, BUF, 64, WRITE, 0);
    let before = d.submit(0);
    d.line.wait_past(before);
    assert_eq!(d.used_idx(), 1);
    let used_len: u32 = d.mem.read_obj(GuestAddress(USED + 8)).unwrap();
    assert_eq!(used_len, 64);
    let mut got = [0u8; 64];
    d.mem.read_slice(&mut got, GuestAddress(BUF)).unwrap();
    assert_ne!(got, [0u8; 64], "random bytes written");
    assert_eq!(d.read(0x60) & 1, 1, "used-ring interrupt pending");
    d.write(0x64, 1);
    assert_eq!(d.read(0x60) & 1, 0, "acknowledged");

    // After DRIVER_OK the queue's size and addresses stay as they were.
    d.write(0x38, 2);
    d.write(0x80, 0x5000);
    d.write(0x44, 0);
    assert_eq!(d.read(0x80), DESC as u32);
    assert_eq!(d.read(0x44), 1);
    // And the device still serves the queue where it was set up.
    d.put_desc(1, BUF + 0x100, 16, WRITE, 0);
    let before = d.submit(1);
    d.line.wait_past(before);
    assert_eq!(d.used_idx(), 2);
}

fn assert_needs_reset_then_recovers(d: &mut Driver) {
    assert_ne!(d.read(0x70) & status::DEVICE_NEEDS_RESET, 0);
    assert_ne!(d.read(0x60) & 2, 0, "configuration-change interrupt");
    // A reset makes the device usable again.
    d.start();
    assert_eq!(d.read(0x70) & status::DEVICE_NEEDS_RESET, 0);
    d.mem.write_obj(0u16, GuestAddress(USED + 2)).unwrap();
    d.put_desc(0, BUF, 8, WRITE, 0);
    let before = d.submit(0);
    d.line.wait_past(before);
    assert_eq!(d.used_idx(), 1);
}

#[test]
fn a_descriptor_loop_sets_needs_reset() {
    let mut d = Driver::new();
    d.start();
    d.put_desc(0, BUF, 8, WRITE | NEXT, 1);
    d.put_desc(1, BUF + 8, 8, WRITE | NEXT, 0);
    let before = d.submit(0);
    d.line.wait_past(before);
    assert_eq!(d.used_idx(), 0, "the looping chain is not completed");
    assert_needs_reset_then_recovers(&mut d);
}

#[test]
fn a_chain_longer_than_the_queue_sets_needs_reset() {
    let mut d = Driver::new();
    d.start();
    // Eight descriptors each pointing to the next, the last back to 0: never ends.
    for i in 0..QSIZE {
        d.put_desc(i, BUF + u64::from(i) * 8, 8, WRITE | NEXT, (i + 1) % QSIZE);
    }
    let before = d.submit(0);
    d.line.wait_past(before);
    assert_needs_reset_then_recovers(&mut d);
}

#[test]
fn a_buffer_outside_ram_sets_needs_reset() {
    let mut d = Driver::new();
    d.start();
    d.put_desc(0, RAM - 4, 64, WRITE, 0);
    let before = d.submit(0);
    d.line.wait_past(before);
    assert_eq!(d.used_idx(), 0);
    assert_needs_reset_then_recovers(&mut d);
}

#[test]
fn a_bad_head_index_or_avail_index_sets_needs_reset() {
    let mut d = Driver::new();
    d.start();
    let before = d.submit(200); // head beyond the table
    d.line.wait_past(before);
    assert_needs_reset_then_recovers(&mut d);

    // The available index jumping more than a queue's worth ahead.
    d.mem.write_obj(1000u16, GuestAddress(AVAIL + 2)).unwrap();
    let before = *d.line.count.lock().unwrap();
    d.write(0x50, 0);
    d.line.wait_past(before);
    assert_ne!(d.read(0x70) & status::DEVICE_NEEDS_RESET, 0);
}

#[test]
fn nested_indirect_tables_set_needs_reset() {
    let mut d = Driver::new();
    // Offer/accept INDIRECT_DESC (bit 28) along with VERSION_1.
    d.write(0x70, 0);
    d.write(0x70, status::ACKNOWLEDGE | status::DRIVER);
    d.write(0x24, 1);
    d.write(0x20, 1);
    d.write(0x24, 0);
    d.write(0x20, 1 << 28);
    d.write(
        0x70,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    d.setup_queue();
    d.write(
        0x70,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK,
    );
    const INDIRECT: u16 = 4;
    let table = 0x8000u64;
    // The indirect table's only entry is itself indirect.
    d.mem.write_obj(0x9000u64, GuestAddress(table)).unwrap();
    d.mem.write_obj(16u32, GuestAddress(table + 8)).unwrap();
    d.mem.write_obj(INDIRECT, GuestAddress(table + 12)).unwrap();
    d.put_desc(0, table, 16, INDIRECT, 0);
    let before = d.submit(0);
    d.line.wait_past(before);
    assert_eq!(d.used_idx(), 0);
    assert_needs_reset_then_recovers(&mut d);
}

#[test]
fn short_and_odd_register_accesses_are_harmless() {
    let mut d = Driver::new();
    let mut b = [0u8; 2];
    d.dev.read(0x0, &mut b);
    assert_eq!(b, [0, 0]);
    d.dev.write(0x70, &[0xff]);
    assert_eq!(d.read(0x70), 0);
    d.write(0xfff, 1);
    d.write(0x30, 99); // no such queue
    assert_eq!(d.read(0x34), 0);
    d.write(0x50, 99); // notify of no such queue
}

#[test]
fn a_paused_device_is_saved_and_restored_where_it_stopped() {
    let mut d = Driver::new();
    d.start();
    for i in 0..3u16 {
        d.put_desc(i, BUF + u64::from(i) * 64, 64, WRITE, 0);
        let before = d.submit(i);
        d.line.wait_past(before);
    }
    assert_eq!(d.used_idx(), 3);
    assert_eq!(
        d.dev.save(),
        Err(devices::virtio::mmio::StateError::Running)
    );
    d.dev.pause();
    let saved = d.dev.save().unwrap();
    assert_eq!(saved.queues[0].next_avail, 3);
    assert_eq!(saved.queues[0].next_used, 3);
    assert_eq!(saved.queues[0].desc_table, DESC);
    assert_ne!(saved.transport.status & status::DRIVER_OK, 0);

    // A request made while paused waits; a new transport (a restored machine) serves it.
    d.put_desc(3, BUF + 0x400, 64, WRITE, 0);
    d.submit(3);
    let line = Arc::new(Line::default());
    let mut restored = MmioTransport::new(
        Box::new(Rng::new()),
        d.mem.clone(),
        line.clone(),
        Arc::new(IgnoreWrites),
    )
    .unwrap();
    restored.restore(&saved).unwrap();
    assert_eq!(restored.save().unwrap(), saved);
    let mut b = [0u8; 4];
    restored.read(0x70, &mut b);
    assert_eq!(u32::from_le_bytes(b), saved.transport.status);
    restored.resume().unwrap();
    // The old notify went to the old transport's eventfd: notify again, as a driver that
    // finds its request unanswered after a migration would.
    restored.write(0x50, &0u32.to_le_bytes());
    line.wait_past(0);
    assert_eq!(d.used_idx(), 4);
    // State for another device type is refused.
    let mut other = saved.clone();
    other.device_type = 2;
    assert!(restored.restore(&other).is_err());
}

/// Found by the `virtio_blk` fuzz target: a queue whose used ring lies on its available
/// ring, with the used index ahead of the available one, offers one more request with each
/// completion, so it never empties (a guest can get the same from a vCPU that keeps
/// publishing requests). The worker must still go back to epoll between rounds, where a
/// stop request waits: pausing, resetting and exiting wait for it.
#[test]
fn a_queue_that_never_empties_does_not_wedge_pause() {
    let mut d = Driver::new();
    d.start();
    // An empty buffer: the used entries the device writes over the available ring then
    // read as head 0 again, and the queue stays well formed.
    d.put_desc(0, BUF, 0, WRITE, 0);
    d.dev.pause();
    let mut saved = d.dev.save().unwrap();
    saved.queues[0].used_ring = AVAIL;
    saved.queues[0].next_used = 3;
    d.mem.write_obj(1u16, GuestAddress(AVAIL + 2)).unwrap();

    let line = Arc::new(Line::default());
    let mut dev = MmioTransport::new(
        Box::new(Rng::new()),
        d.mem.clone(),
        line.clone(),
        Arc::new(IgnoreWrites),
    )
    .unwrap();
    dev.restore(&saved).unwrap();
    dev.resume().unwrap();
    dev.write(0x50, &0u32.to_le_bytes());
    // The transport lives on a thread of its own from here, so that a test that fails
    // never waits for a wedged worker (dropping the transport stops it).
    let (go, pause) = std::sync::mpsc::channel::<()>();
    let (done, paused) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = pause.recv();
        dev.pause();
        let _ = done.send(());
    });
    // The device keeps answering, a queue's worth of requests per interrupt.
    let mut seen = 0;
    while seen < 10 {
        let now = line.wait_past(seen);
        assert!(now > seen, "the device answered no more requests");
        seen = now;
    }
    go.send(()).unwrap();
    paused
        .recv_timeout(Duration::from_secs(20))
        .expect("pause returns while the queue never empties");
}
