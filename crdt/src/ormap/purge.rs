//! Tombstone purge: dropping removes that every member has seen.

use super::ORMap;
use crate::{CausalContext, Tiebreak};

impl<K: Ord + Clone, V: Clone, T: Tiebreak<K, V>> ORMap<K, V, T> {
    /// Drops every tombstone-only key whose dots are all in `stable` (the meet
    /// of the current members' digests), raising the purge frontier over
    /// them. Costs O(tombstone-only keys).
    pub(super) fn purge_stable(&mut self, stable: &CausalContext) -> usize {
        let ready: Vec<K> = self
            .tombstoned
            .iter()
            .filter(|k| {
                self.entries
                    .get(*k)
                    .is_some_and(|s| s.iter().all(|s| stable.contains(s.dot)))
            })
            .cloned()
            .collect();
        for key in &ready {
            let old = self.entries.remove(key);
            if let Some(old) = &old {
                for s in old {
                    self.frontier.observe(s.dot.actor(), s.dot.counter());
                }
            }
            self.reindex(key, old.as_ref(), None);
        }
        ready.len()
    }
}
