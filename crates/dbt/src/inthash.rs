//! A fast hasher for the translator's maps keyed by small integers it produces itself (guest
//! pcs, page numbers, temporaries). SipHash, std's default, resists hash flooding, which buys
//! nothing here (a guest that made its own pcs collide would only slow itself down) and costs
//! most of a lookup on the dispatcher's path and in the optimiser.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-xorshift over the integer words written.
#[derive(Default, Clone, Copy)]
pub struct IntHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        // The multiply leaves the best-mixed bits high; fold them down for bucket indices.
        self.0 ^ (self.0 >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(K);
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(x as u64)
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64)
    }
}

pub type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_aligned_keys_over_low_bits() {
        // Guest pcs are multiples of 2 or 4: the low bits of their hashes must still vary.
        let mut low = std::collections::HashSet::new();
        for pc in (0x10000u64..0x10400).step_by(4) {
            let mut h = IntHasher::default();
            h.write_u64(pc);
            low.insert(h.finish() & 0xff);
        }
        assert!(low.len() > 150, "only {} distinct low bytes", low.len());
    }
}
