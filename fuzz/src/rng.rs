//! `virtio_rng`: the entropy device's queue. Input: the queue (see [`super::harness`]).

use devices::virtio::rng;

use super::harness::Setup;
use super::input::Input;

/// The most a request gets (the device's own bound).
const MAX_PER_REQUEST: u64 = 64 << 10;

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut setup = Setup::new(&mut input, &[256]);
    if !setup.all_enabled() {
        return;
    }
    rng::fuzz_serve(setup.activation()).expect("the queue is enabled");
    let report = setup.check(&[true]);
    if report.aliased {
        return;
    }
    // Each request is filled as far as it goes, up to the bound.
    let model = setup.models[0].as_ref().expect("enabled");
    let entries = setup.used_entries(0, report.queues[0].used);
    for (c, (_, len)) in model.chains.iter().zip(entries) {
        assert_eq!(u64::from(len), c.writable_len().min(MAX_PER_REQUEST));
    }
}
