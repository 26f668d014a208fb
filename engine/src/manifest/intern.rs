//! Identical config blocks are stored once: a fleet of a million monitors typically has a
//! handful of distinct `codes` blocks and header sets. Read-only after load, so `Arc` is fine
//! (no shared mutable state).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

use crate::limits::MAX_INTERNED;

/// FxHash (rustc's hasher): a multiply-rotate per word. The interner hashes a `codes` block per
/// monitor, and SipHash's DoS resistance buys nothing for a file the operator wrote.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

pub struct Interner<T: Hash + Eq> {
    set: HashSet<Arc<T>, FxBuildHasher>,
}

impl<T: Hash + Eq> Default for Interner<T> {
    fn default() -> Self {
        Interner { set: HashSet::default() }
    }
}

impl<T: Hash + Eq> Interner<T> {
    pub fn intern(&mut self, value: T) -> Arc<T> {
        if let Some(existing) = self.set.get(&value) {
            return Arc::clone(existing);
        }
        let arc = Arc::new(value);
        if self.set.len() < MAX_INTERNED {
            self.set.insert(Arc::clone(&arc));
        }
        arc
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_arc() {
        let mut i = Interner::default();
        let a = i.intern(vec![1, 2]);
        let b = i.intern(vec![1, 2]);
        let c = i.intern(vec![3]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(i.len(), 2);
    }
}
