//! Purge: dropping the tomb dots every member has seen, and the frontier
//! that records them.

use std::collections::BTreeSet;

use super::{Embed, Replicated};
use crate::{CausalContext, Dot, DotSet, VersionVector};

impl<K: Ord + Clone, T: Embed> Replicated<K, T> {
    /// Drops every tomb dot in `stable` (the meet of the current members'
    /// digests), raising the purge frontier over them, and with it every
    /// tomb dot the raised frontier covers. Costs O(tomb dots). Returns the
    /// number of tomb dots dropped.
    pub(super) fn purge_stable(&mut self, stable: &CausalContext) -> usize {
        let ready: Vec<(Dot, K)> = self
            .tombs
            .iter()
            .filter(|(d, _)| stable.contains(**d))
            .map(|(d, k)| (*d, k.clone()))
            .collect();
        if ready.is_empty() {
            return 0;
        }
        let before = self.frontier.clone();
        for (d, _) in &ready {
            self.frontier.observe(d.actor(), d.counter());
        }
        let count = self.tombs.len();
        self.drop_covered_tombs(&before, ready.into_iter().map(|(_, k)| k));
        count - self.tombs.len()
    }

    /// Drops every tomb dot the purge frontier covers and `before` did not
    /// (a frontier raised by a purge or learned from a peer), found through
    /// the tomb index actor by actor over the raised range: O(what the
    /// frontier adds). A covered tomb is causally stable: the replica that
    /// raised the frontier had seen it (contexts that cover a frontier are
    /// prefixes per actor), and a digest that lacks it does not cover the
    /// frontier, so gets the full state. Returns the keys changed, ascending
    /// (their stores do not change). The tombs of `also` are checked too.
    pub(super) fn drop_covered_tombs(
        &mut self,
        before: &VersionVector,
        also: impl IntoIterator<Item = K>,
    ) -> Vec<K> {
        let mut keys: BTreeSet<K> = also.into_iter().collect();
        for (actor, to) in self.frontier.iter() {
            let from = before.get(actor);
            if to <= from {
                continue;
            }
            let (Ok(lo), Ok(hi)) = (Dot::new(actor, from + 1), Dot::new(actor, to)) else {
                continue;
            };
            keys.extend(self.tombs.range(lo..=hi).map(|(_, k)| k.clone()));
        }
        let mut changed = Vec::new();
        for key in keys {
            let Some(old) = self.entries.remove(&key) else {
                continue;
            };
            let frontier = &self.frontier;
            let kept: DotSet = old
                .tombs
                .iter()
                .filter(|d| !frontier.contains(*d))
                .collect();
            if kept.len() == old.tombs.len() {
                self.entries.insert(key.clone(), old);
                continue;
            }
            let mut new = old.clone();
            new.tombs = kept.into();
            let new = (!new.is_empty()).then_some(new);
            self.reindex(&key, Some(&old), new.as_ref());
            if let Some(new) = new {
                self.entries.insert(key.clone(), new);
            }
            changed.push(key);
        }
        changed
    }
}
