//! The join of a state or delta into an [`ORMap`], key by key.

use std::collections::BTreeMap;

use super::{ORMap, Sibling, Siblings, winner};
use crate::{CausalContext, Changes, Lattice, Tiebreak, VersionVector};

impl<K: Ord + Clone, V: Clone, T: Tiebreak<K, V>> ORMap<K, V, T> {
    /// Joins `entries` (with their `context`) into this map. A `full` state
    /// also drops local siblings of keys it does not ship whose dots it has
    /// seen. The responder's purge `frontier` always comes along.
    pub(crate) fn join_state(
        &mut self,
        entries: &BTreeMap<K, Siblings<V>>,
        context: &CausalContext,
        frontier: &VersionVector,
        full: bool,
    ) -> Changes<K> {
        let mut changed = Vec::new();
        let mut touched = Vec::new();
        let mut learned = !context.leq(&self.context);
        for (key, theirs) in entries {
            let (siblings_changed, visible_changed) = self.join_key(key, theirs, context);
            learned |= siblings_changed;
            if siblings_changed {
                touched.push(key.clone());
            }
            if visible_changed {
                changed.push(key.clone());
            }
        }
        if full {
            let stale: Vec<K> = self
                .entries
                .iter()
                .filter(|(k, s)| {
                    !entries.contains_key(*k) && s.iter().any(|s| context.contains(s.dot))
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in stale {
                let (siblings_changed, visible_changed) = self.join_key(&key, &[], context);
                learned |= siblings_changed;
                if siblings_changed {
                    touched.push(key.clone());
                }
                if visible_changed {
                    changed.push(key);
                }
            }
            changed.sort();
            touched.sort();
        }
        // Whatever the responder purged is now in our context too, and the
        // join above may have dropped our copies of those tombstones (their
        // dots are in `context`, no longer in the shipped keys). A peer that
        // has not seen them must therefore get our full state as well: the
        // frontier travels with every answer, partial ones included.
        let before = self.frontier.clone();
        self.frontier.join(frontier);
        self.context.join(context);
        if self.frontier != before {
            // A learned frontier drops the tombstones it covers (the peer
            // that purged them holds none): converged replicas are then
            // equal as states, not only in what they read.
            learned = true;
            for key in self.drop_covered_tombstones(&before) {
                if !touched.contains(&key) {
                    touched.push(key);
                }
            }
            touched.sort();
        }
        Changes::with_touched(changed, touched, learned)
    }

    /// Applies the join rule to one key. Returns whether its siblings changed
    /// and whether its visible sibling did.
    fn join_key(
        &mut self,
        key: &K,
        theirs: &[Sibling<V>],
        their_context: &CausalContext,
    ) -> (bool, bool) {
        let mine = self.entries.get(key).map_or(&[][..], |s| s.as_slice());
        let merged = merge(mine, &self.context, theirs, their_context);
        if merged.len() == mine.len() && merged.iter().zip(mine).all(|(a, b)| a.dot == b.dot) {
            return (false, false);
        }
        let old_visible = winner(&self.tiebreak, key, mine).map(|s| s.dot);
        let old = self.entries.remove(key);
        let new = (!merged.is_empty()).then_some(merged);
        self.reindex(key, old.as_ref(), new.as_ref());
        let new_visible = new
            .as_ref()
            .and_then(|s| winner(&self.tiebreak, key, s))
            .map(|s| s.dot);
        if let Some(new) = new {
            self.entries.insert(key.clone(), new);
        }
        (true, old_visible != new_visible)
    }
}

/// The join rule for one key: keep a sibling of mine if they hold the same
/// dot or have not seen it; keep a sibling of theirs if I hold it or have not
/// seen it. Both inputs and the output are sorted by dot.
pub(crate) fn merge<V: Clone>(
    mine: &[Sibling<V>],
    my_context: &CausalContext,
    theirs: &[Sibling<V>],
    their_context: &CausalContext,
) -> Siblings<V> {
    let mut out = Siblings::new();
    let (mut i, mut j) = (0, 0);
    while i < mine.len() || j < theirs.len() {
        match (mine.get(i), theirs.get(j)) {
            (Some(a), Some(b)) if a.dot == b.dot => {
                out.push(a.clone());
                i += 1;
                j += 1;
            }
            (Some(a), b) if b.is_none_or(|b| a.dot < b.dot) => {
                if !their_context.contains(a.dot) {
                    out.push(a.clone());
                }
                i += 1;
            }
            (_, Some(b)) => {
                if !my_context.contains(b.dot) {
                    out.push(b.clone());
                }
                j += 1;
            }
            (None, None) | (Some(_), None) => break,
        }
    }
    out
}
