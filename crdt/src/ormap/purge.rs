//! Tombstone purge: dropping removes that every member has seen.

use std::collections::BTreeSet;

use super::{ORMap, Siblings};
use crate::{CausalContext, Dot, Tiebreak, VersionVector};

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
        let before = self.frontier.clone();
        for key in &ready {
            let old = self.entries.remove(key);
            if let Some(old) = &old {
                for s in old {
                    self.frontier.observe(s.dot.actor(), s.dot.counter());
                }
            }
            self.reindex(key, old.as_ref(), None);
        }
        // The raised frontier also covers older tombstones of the same
        // actors that sit beside live values (stable too: contexts are
        // downward closed per actor); a peer that learns this frontier drops
        // them, so this replica does as well.
        let dropped = self.drop_covered_tombstones(&before);
        ready.len() + dropped.len()
    }

    /// Drops every tombstone sibling that the purge frontier covers and
    /// `before` did not (a frontier raised by a purge or learned from a
    /// peer): it is causally stable, and a replica that purged it holds
    /// neither it nor the key's removed values. Found through the dot
    /// index, actor by actor over the raised range: O(what the frontier
    /// adds). Returns the keys changed (their visible values do not change:
    /// a tombstone never wins over a live sibling).
    pub(super) fn drop_covered_tombstones(&mut self, before: &VersionVector) -> Vec<K> {
        let mut keys: BTreeSet<K> = BTreeSet::new();
        for (actor, to) in self.frontier.iter() {
            let from = before.get(actor);
            if to <= from {
                continue;
            }
            let (Ok(lo), Ok(hi)) = (Dot::new(actor, from + 1), Dot::new(actor, to)) else {
                continue;
            };
            keys.extend(self.index.range(lo..=hi).map(|(_, k)| k.clone()));
        }
        let mut changed = Vec::new();
        for key in keys {
            let Some(old) = self.entries.get(&key) else {
                continue;
            };
            let frontier = &self.frontier;
            let kept: Siblings<V> = old
                .iter()
                .filter(|s| s.value.is_some() || !frontier.contains(s.dot))
                .cloned()
                .collect();
            if kept.len() == old.len() {
                continue;
            }
            let old = self.entries.remove(&key);
            let new = (!kept.is_empty()).then_some(kept);
            self.reindex(&key, old.as_ref(), new.as_ref());
            if let Some(new) = new {
                self.entries.insert(key.clone(), new);
            }
            changed.push(key);
        }
        changed
    }
}
