//! `virtio_chain`: descriptor chains alone. Pops every chain the ring offers through
//! `QueueSet` (virtio-queue's ring walk and Tandem's `Chain::parse`), compares each with
//! the model, reads it back with `ChainReader`, fills it with `ChainWriter` and completes
//! it.
//!
//! Input: how many bytes to write into each chain (a u16), then the queue (see
//! [`super::harness`]).

use devices::virtio::chain::Chain;
use devices::virtio::queues::QueueSet;

use super::harness::Setup;
use super::input::Input;

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let write_len = u64::from(input.u16());
    let mut setup = Setup::new(&mut input, &[256]);
    if !setup.all_enabled() {
        return;
    }
    let exact = !setup.rings_alias();
    let model = setup.models[0].clone().expect("enabled");
    let mut queues = QueueSet::new(setup.activation());

    let mut popped: Vec<Chain> = Vec::new();
    while let Some(chain) = queues.pop(0) {
        popped.push(chain);
        assert!(
            !exact || popped.len() <= usize::from(setup.specs[0].size),
            "more chains than the queue holds"
        );
    }
    if exact {
        assert_eq!(popped.len(), model.chains.len(), "chains popped");
        assert_eq!(
            setup.interrupt.needs_reset(),
            model.malformed,
            "DEVICE_NEEDS_RESET for a malformed chain, and only then"
        );
        for (c, m) in popped.iter().zip(&model.chains) {
            assert_eq!(c.head, m.head);
            assert_eq!(
                c.readable, m.readable,
                "readable buffers of chain {}",
                c.head
            );
            assert_eq!(
                c.writable, m.writable,
                "writable buffers of chain {}",
                c.head
            );
        }
    }

    for c in &popped {
        // Reading: all of it, in order, then nothing more.
        let mut r = queues.reader(c);
        let total = c.readable_len();
        assert_eq!(r.remaining(), total);
        let mut first = [0u8; 3];
        let whole = r.read_exact(&mut first);
        assert_eq!(whole, total >= 3);
        let rest = r.read_up_to(1 << 20);
        assert_eq!(r.remaining(), total.saturating_sub(3 + rest.len() as u64));
        if exact && total <= (1 << 20) {
            let m = model
                .chains
                .iter()
                .find(|m| m.head == c.head)
                .expect("modelled");
            let mut got = first[..total.min(3) as usize].to_vec();
            got.extend_from_slice(&rest);
            assert!(
                got == m.readable_bytes(&setup.mem, usize::MAX),
                "bytes read back"
            );
        }

        // Writing: as much as fits, split in two, with a skip between.
        let mut w = queues.writer(c);
        let room = c.writable_len();
        let n = write_len % (room + 2);
        let bytes = vec![0xa5u8; n as usize];
        let half = bytes.len() / 2;
        let a = w.write(&bytes[..half]) as u64;
        assert_eq!(a, (half as u64).min(room));
        w.skip(1);
        let skipped = u64::from(room > a);
        let b = w.write(&bytes[half..]) as u64;
        assert_eq!(b, (n - half as u64).min(room - a - skipped));
        assert_eq!(u64::from(w.written()), a + b);
        queues.complete(0, c.head, w.written());
    }
    queues.notify_driver(0);
    setup.check(&[true]);
}
