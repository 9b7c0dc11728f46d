//! `qcow2_header`: a qcow2 image held in memory, through the disk layer's fuzz entry point
//! (`devices::disk::qcow2::fuzz_image`): Tandem's strict header check, then `imago`
//! loading the L1 and refcount tables and walking L2 tables, refcount blocks and
//! compressed clusters as it reads, writes, zeroes, discards and flushes. Errors are
//! expected; panics, hangs and unbounded allocations are the bugs.

pub fn run(data: &[u8]) {
    let _ = devices::disk::qcow2::fuzz_image(data);
}
