//! The join of a state or an answer into a [`Replicated`] replica, key by
//! key.

use std::collections::BTreeMap;

use super::{Embed, Entry, Replicated};
use crate::{CausalContext, Changes, DotStore, Lattice, VersionVector};

impl<K: Ord + Clone, T: Embed> Replicated<K, T> {
    /// Joins `entries` (under `context`) into this replica. A `full` state
    /// also joins every local key it does not ship with nothing (dropping
    /// what it has seen and does not hold). The responder's `frontier`
    /// always comes along and drops the tomb dots it covers.
    ///
    /// Keys whose store changed are reported as changed; keys whose tombs
    /// alone changed, as touched.
    pub(super) fn join_state(
        &mut self,
        entries: &BTreeMap<K, Entry<T::Store>>,
        context: &CausalContext,
        frontier: &VersionVector,
        full: bool,
    ) -> Changes<K> {
        let mut joined_frontier = self.frontier.clone();
        joined_frontier.join(frontier);
        let mut changed = Vec::new();
        let mut touched = Vec::new();
        let mut learned = !context.leq(&self.context);
        let mut record = |key: &K, (entry_changed, store_changed): (bool, bool)| {
            if entry_changed {
                touched.push(key.clone());
            }
            if store_changed {
                changed.push(key.clone());
            }
        };
        for (key, theirs) in entries {
            let r = self.join_key(key, Some(theirs), context, &joined_frontier);
            record(key, r);
        }
        if full {
            let stale: Vec<K> = self
                .entries
                .iter()
                .filter(|(k, e)| {
                    if entries.contains_key(*k) {
                        return false;
                    }
                    let mut seen = false;
                    e.dots(&mut |d| seen |= context.contains(d));
                    seen
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in stale {
                let r = self.join_key(&key, None, context, &joined_frontier);
                record(&key, r);
            }
            changed.sort();
            touched.sort();
        }
        self.context.join(context);
        if joined_frontier != self.frontier {
            // A learned frontier drops the tomb dots it covers under keys
            // this answer did not ship (the peer that purged them holds
            // none): converged replicas are equal as states.
            learned = true;
            let before = std::mem::replace(&mut self.frontier, joined_frontier);
            for key in self.drop_covered_tombs(&before, []) {
                if let Err(at) = touched.binary_search(&key) {
                    touched.insert(at, key);
                }
            }
        }
        learned |= !touched.is_empty();
        Changes::with_touched(changed, touched, learned)
    }

    /// Joins one key's entry with `theirs` (nothing, for a full state that
    /// does not ship it), dropping tomb dots `frontier` covers. Returns
    /// whether the entry changed, and whether its store did.
    fn join_key(
        &mut self,
        key: &K,
        theirs: Option<&Entry<T::Store>>,
        context: &CausalContext,
        frontier: &VersionVector,
    ) -> (bool, bool) {
        let empty = Entry::default();
        let theirs = theirs.unwrap_or(&empty);
        let old = self.entries.remove(key);
        let mut new = old.clone().unwrap_or_default();
        new.join(&self.context, theirs, context);
        if new.tombs.iter().any(|d| frontier.contains(d)) {
            new.tombs = new
                .tombs
                .iter()
                .filter(|d| !frontier.contains(*d))
                .collect();
        }
        let before = old.as_ref().unwrap_or(&empty);
        let entry_changed = &new != before;
        let store_changed = new.value != before.value;
        if entry_changed {
            let new = (!new.is_empty()).then_some(new);
            self.reindex(key, old.as_ref(), new.as_ref());
            if let Some(new) = new {
                self.entries.insert(key.clone(), new);
            }
        } else if let Some(old) = old {
            self.entries.insert(key.clone(), old);
        }
        (entry_changed, store_changed)
    }

    /// Takes `entries`, `context` and `frontier` as this (empty) replica's
    /// state: bottom ⊔ D = D, without copying.
    pub(super) fn adopt(
        &mut self,
        entries: BTreeMap<K, Entry<T::Store>>,
        context: CausalContext,
        frontier: VersionVector,
    ) -> Changes<K> {
        let learned = !context.is_empty() || !frontier.is_empty();
        let mut changed = Vec::new();
        let mut touched = Vec::new();
        for (key, entry) in &entries {
            if entry.is_empty() {
                continue;
            }
            self.reindex(key, None, Some(entry));
            touched.push(key.clone());
            if !entry.value.is_empty() {
                changed.push(key.clone());
            }
        }
        self.entries = entries;
        self.entries.retain(|_, e| !e.is_empty());
        self.context = context;
        self.frontier = frontier;
        Changes::with_touched(changed, touched, learned)
    }
}
