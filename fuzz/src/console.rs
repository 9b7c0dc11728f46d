//! `virtio_console`: the console's receive and transmit queues.
//!
//! Input: host input length (one byte) and bytes, the events to hand the device (a count,
//! then one byte each), then both queues (see [`super::harness`]).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use devices::virtio::{console, FuzzEvent};

use super::harness::Setup;
use super::input::Input;

const RX: usize = 0;
const TX: usize = 1;

/// Guest output, kept for comparing with what the transmit buffers held.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An event from one input byte.
pub fn event(b: u8) -> FuzzEvent {
    match b % 5 {
        0 => FuzzEvent::Notify(0),
        1 => FuzzEvent::Notify(1),
        2 => FuzzEvent::Backend {
            readable: true,
            writable: false,
        },
        3 => FuzzEvent::Backend {
            readable: false,
            writable: true,
        },
        _ => FuzzEvent::Backend {
            readable: true,
            writable: true,
        },
    }
}

/// The events to run: a count (at most 8), then one byte each; none means "transmit,
/// then receive".
pub fn events(input: &mut Input) -> Vec<FuzzEvent> {
    let n = input.u8() % 9;
    let evs: Vec<_> = (0..n).map(|_| event(input.u8())).collect();
    if evs.is_empty() {
        vec![FuzzEvent::Notify(1), FuzzEvent::Notify(0)]
    } else {
        evs
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let len = usize::from(input.u8());
    let host_input = input.bytes(len).to_vec();
    let events = events(&mut input);
    let mut setup = Setup::new(&mut input, &[64, 64]);
    if !setup.all_enabled() {
        return;
    }
    let sink = Sink::default();
    console::fuzz_serve(
        setup.activation(),
        Box::new(sink.clone()),
        &host_input,
        &events,
    )
    .expect("both queues are enabled");
    let transmitted = events.contains(&FuzzEvent::Notify(TX));
    let report = setup.check(&[false, transmitted]);
    if report.aliased {
        return;
    }
    // Output is exactly the transmit buffers' bytes, in order.
    let model = setup.models[TX].as_ref().expect("enabled");
    let sent = usize::from(report.queues[TX].used);
    let want: Vec<u8> = model.chains[..sent]
        .iter()
        .flat_map(|c| c.readable_bytes(&setup.mem, usize::MAX))
        .collect();
    assert!(*sink.0.lock().unwrap() == want, "console output differs");
    // Input arrives in order, each receive buffer filled as far as the input goes.
    let model = setup.models[RX].as_ref().expect("enabled");
    let entries = setup.used_entries(RX, report.queues[RX].used);
    let mut delivered = 0usize;
    for (c, (_, len)) in model.chains.iter().zip(entries) {
        let left = host_input.len() - delivered;
        assert_eq!(u64::from(len), c.writable_len().min(left as u64));
        delivered += len as usize;
    }
}
