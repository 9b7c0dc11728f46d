//! Fuzz target bodies for Tandem's virtio devices and qcow2 parser (docs/fuzzing.md).
//!
//! Each module's `run(&[u8])` is one target: `fuzz_targets/<name>.rs` hands it libFuzzer's
//! inputs, and `crates/devices/tests/fuzz_corpus.rs` (which includes this file as a
//! module, so module paths here are relative) replays the committed corpora through it on
//! stable Rust. A target panics when an invariant breaks.

pub mod blk;
pub mod chain;
pub mod console;
pub mod harness;
pub mod input;
pub mod model;
pub mod net;
pub mod qcow2;
pub mod rng;

/// A target's body: panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz_targets/` file and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("virtio_blk", blk::run),
    ("virtio_chain", chain::run),
    ("virtio_console", console::run),
    ("virtio_net", net::run),
    ("virtio_rng", rng::run),
    ("qcow2_header", qcow2::run),
];
