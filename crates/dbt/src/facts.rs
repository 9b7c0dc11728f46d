//! Facts the optimiser's forward pass keeps about temporaries ("t holds the constant 5",
//! "t holds base + 8"), invalidated in constant time.
//!
//! A fact about `t` may depend on one other temporary (`t` is a copy of `s`). Giving either a
//! new value, or entering a new region (a label, where control may merge), voids the fact.
//! Instead of scanning every fact at every definition, which made the pass quadratic in the
//! block's length, each temporary carries a version that a definition bumps, the region has
//! an epoch, and a fact records the versions it was learnt under: it holds while they match.
//! The same tables serve block after block without being cleared (a new block is a new
//! region), so translating a block allocates and zeroes nothing here.

use crate::ir::Temp;

/// Versions of every temporary of a block, and the current region.
#[derive(Default)]
pub struct Versions {
    ver: Vec<u32>,
    /// 64 bits: never wraps, so a fact from an old region can never hold again.
    epoch: u64,
}

impl Versions {
    #[cfg(test)]
    pub fn new(ntemps: usize) -> Versions {
        let mut v = Versions::default();
        v.prepare(ntemps);
        v
    }

    /// Ready for a block with `ntemps` temporaries: a new region, room for every temporary.
    pub fn prepare(&mut self, ntemps: usize) {
        if self.ver.len() < ntemps {
            self.ver.resize(ntemps, 0);
        }
        self.new_region();
    }

    /// `t` gets a new value. Out-of-range temporaries (the optimiser's "no destination"
    /// marker) have no facts.
    pub fn redefine(&mut self, t: Temp) {
        if let Some(v) = self.ver.get_mut(t.0 as usize) {
            *v = v.wrapping_add(1);
        }
    }

    /// Every temporary in `[lo, hi)` may have a new value (a helper call's writes).
    pub fn redefine_range(&mut self, lo: u32, hi: u32) {
        let hi = (hi as usize).min(self.ver.len());
        let lo = (lo as usize).min(hi);
        for v in &mut self.ver[lo..hi] {
            *v = v.wrapping_add(1);
        }
    }

    /// A new region: every fact learnt so far is void.
    pub fn new_region(&mut self) {
        self.epoch += 1;
    }

    /// The version stamp of `t` right now (`None` when out of range).
    pub fn stamp(&self, t: Temp) -> Option<u32> {
        self.ver.get(t.0 as usize).copied()
    }

    fn holds(&self, f: &Stamp) -> bool {
        f.epoch == self.epoch
            && self.stamp(f.key) == Some(f.key_ver)
            && f.dep.is_none_or(|(d, v)| self.stamp(d) == Some(v))
    }
}

#[derive(Clone, Copy)]
struct Stamp {
    key: Temp,
    key_ver: u32,
    dep: Option<(Temp, u32)>,
    epoch: u64,
}

/// One fact of type `V` per temporary at most.
pub struct FactMap<V: Copy> {
    slots: Vec<Option<(Stamp, V)>>,
}

impl<V: Copy> Default for FactMap<V> {
    fn default() -> Self {
        FactMap { slots: Vec::new() }
    }
}

impl<V: Copy> FactMap<V> {
    #[cfg(test)]
    pub fn new(ntemps: usize) -> FactMap<V> {
        let mut m = FactMap::default();
        m.prepare(ntemps);
        m
    }

    /// Room for `ntemps` temporaries (what older slots hold is void: see `Versions`).
    pub fn prepare(&mut self, ntemps: usize) {
        if self.slots.len() < ntemps {
            self.slots.resize(ntemps, None);
        }
    }

    /// The fact about `t`, if it still holds.
    pub fn get(&self, vers: &Versions, t: Temp) -> Option<V> {
        match self.slots.get(t.0 as usize) {
            Some(Some((s, v))) if vers.holds(s) => Some(*v),
            _ => None,
        }
    }

    /// Learns `v` about `t`, valid until `t` or `dep` changes or the region ends.
    pub fn insert(&mut self, vers: &Versions, t: Temp, v: V, dep: Option<Temp>) {
        let (Some(slot), Some(key_ver)) = (self.slots.get_mut(t.0 as usize), vers.stamp(t)) else {
            return;
        };
        let dep = match dep {
            Some(d) => match vers.stamp(d) {
                Some(dv) => Some((d, dv)),
                None => return,
            },
            None => None,
        };
        *slot = Some((
            Stamp {
                key: t,
                key_ver,
                dep,
                epoch: vers.epoch,
            },
            v,
        ));
    }
}

/// A fact not attached to one temporary (a load done earlier in the region): valid while the
/// temporaries it names keep their values.
#[derive(Clone, Copy)]
pub struct Witness {
    deps: [Option<(Temp, u32)>; 2],
    epoch: u64,
}

impl Witness {
    pub fn new(vers: &Versions, deps: [Option<Temp>; 2]) -> Witness {
        Witness {
            deps: deps.map(|d| d.and_then(|t| vers.stamp(t).map(|v| (t, v)))),
            epoch: vers.epoch,
        }
    }

    pub fn holds(&self, vers: &Versions) -> bool {
        self.epoch == vers.epoch
            && self
                .deps
                .iter()
                .flatten()
                .all(|&(t, v)| vers.stamp(t) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_die_with_their_temporaries_and_regions() {
        let (a, b, c) = (Temp(0), Temp(1), Temp(2));
        let mut vers = Versions::new(3);
        let mut m: FactMap<u64> = FactMap::new(3);
        m.insert(&vers, a, 1, Some(b));
        m.insert(&vers, c, 2, None);
        assert_eq!(m.get(&vers, a), Some(1));
        vers.redefine(b);
        assert_eq!(m.get(&vers, a), None, "dependency redefined");
        assert_eq!(m.get(&vers, c), Some(2));
        vers.redefine_range(2, 10);
        assert_eq!(m.get(&vers, c), None, "helper wrote it");
        m.insert(&vers, c, 3, None);
        vers.new_region();
        assert_eq!(m.get(&vers, c), None, "new region");
        // Out of range: ignored, never a panic.
        vers.redefine(Temp(u32::MAX));
        m.insert(&vers, Temp(u32::MAX), 4, None);
        assert_eq!(m.get(&vers, Temp(u32::MAX)), None);
    }

    #[test]
    fn witnesses_hold_while_their_temporaries_do() {
        let mut vers = Versions::new(2);
        let w = Witness::new(&vers, [Some(Temp(0)), Some(Temp(1))]);
        assert!(w.holds(&vers));
        vers.redefine(Temp(1));
        assert!(!w.holds(&vers));
    }
}
