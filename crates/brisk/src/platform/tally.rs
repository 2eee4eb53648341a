//! [`Tally`]: counts kept in memory by key, for facts too frequent to
//! write one by one (share-link clicks). Whoever owns the counts drains
//! them in batches with [`Tally::take`] and, when a batch could not be
//! written, hands it back with [`Tally::put_back`], so no count is lost or
//! counted twice on this node.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

/// Per-key counts of one node. Cheap to clone (shared).
#[derive(Clone)]
pub struct Tally<K> {
    counts: Arc<Mutex<HashMap<K, u64>>>,
}

impl<K: Hash + Eq> Tally<K> {
    pub fn new() -> Self {
        Tally {
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<K, u64>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (each operation is one insert or one swap), so poison is ignored.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` more for `key`.
    pub fn add(&self, key: K, n: u64) {
        let mut counts = self.counts();
        let count = counts.entry(key).or_insert(0);
        *count = count.saturating_add(n);
    }

    /// Everything counted since the last take; the tally starts again from
    /// empty.
    pub fn take(&self) -> HashMap<K, u64> {
        std::mem::take(&mut *self.counts())
    }

    /// Returns counts that were taken but not written, adding them to
    /// whatever was counted meanwhile.
    pub fn put_back(&self, taken: HashMap<K, u64>) {
        let mut counts = self.counts();
        for (key, n) in taken {
            let count = counts.entry(key).or_insert(0);
            *count = count.saturating_add(n);
        }
    }

    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.counts().is_empty()
    }
}

impl<K: Hash + Eq> Default for Tally<K> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn taken_counts_put_back_add_to_new_ones() {
        let tally = Tally::new();
        tally.add("a", 2);
        tally.add("a", 1);
        let taken = tally.take();
        assert_eq!(taken.get("a"), Some(&3));
        assert!(tally.is_empty());
        tally.add("a", 5);
        tally.put_back(taken);
        assert_eq!(tally.take().get("a"), Some(&8));
    }
}
