//! Identical config blocks are stored once: a fleet of a million monitors typically has a
//! handful of distinct `codes` blocks and header sets. Read-only after load, so `Arc` is fine
//! (no shared mutable state).

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

/// Most distinct blocks of one kind remembered. Past it, new blocks are still loaded but no
/// longer deduplicated, so memory stays bounded even for a fleet where every block differs.
pub const MAX_INTERNED: usize = 1 << 16;

pub struct Interner<T: Hash + Eq> {
    set: HashSet<Arc<T>>,
}

impl<T: Hash + Eq> Default for Interner<T> {
    fn default() -> Self {
        Interner { set: HashSet::new() }
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
