//! [`Delta`]: a fragment of an [`ORMap`]'s state, and how a map answers a
//! digest with one in O(delta).

use std::collections::{BTreeMap, BTreeSet};

use super::join::merge;
use super::{ORMap, Sibling, Siblings};
use crate::{CausalContext, Dot, Lattice, Tiebreak, VersionVector};

/// Part of an [`ORMap`]'s state: some keys with all their siblings, and a
/// causal context.
///
/// Three kinds, all joined with [`DeltaCrdt::join_delta`](crate::DeltaCrdt::join_delta):
/// * a mutator delta, from [`ORMap::insert`]/[`ORMap::remove`]: one key, and
///   the context `{new dot} ∪ {dots it overwrote}`. Exact only under causal
///   delivery; mutator deltas join into delta groups ([`Lattice`]).
/// * a `delta_since` answer: the whole state of every key with a dot the
///   digest lacks, the responder's whole context and its purge frontier.
///   Join answers one at a time; never join two answers with each other.
/// * a full state ([`is_full`](Self::is_full)): every key, the whole context
///   and the purge frontier; its join also drops local siblings it has seen
///   but does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta<K, V> {
    pub(super) entries: BTreeMap<K, Siblings<V>>,
    pub(super) context: CausalContext,
    pub(super) frontier: VersionVector,
    pub(super) full: bool,
}

impl<K, V> Delta<K, V> {
    pub(super) fn new(
        entries: BTreeMap<K, Siblings<V>>,
        context: CausalContext,
        frontier: VersionVector,
        full: bool,
    ) -> Self {
        Delta {
            entries,
            context,
            frontier,
            full,
        }
    }

    pub(super) fn into_parts(
        self,
    ) -> (BTreeMap<K, Siblings<V>>, CausalContext, VersionVector, bool) {
        (self.entries, self.context, self.frontier, self.full)
    }

    /// Whether this is a full state (see the type docs).
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// The causal context shipped with the entries.
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// The responder's purge frontier (empty for mutator deltas).
    pub fn purge_frontier(&self) -> &VersionVector {
        &self.frontier
    }

    /// The number of keys shipped.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is shipped (the context alone may still teach the
    /// receiver something).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The shipped keys with all their siblings, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &[Sibling<V>])> + '_ {
        self.entries.iter().map(|(k, s)| (k, s.as_slice()))
    }
}

impl<K: Ord + Clone, V: Clone + PartialEq> Lattice for Delta<K, V> {
    /// Joins two mutator deltas into a delta group (the dot-store join over
    /// the keys of both). Not for `delta_since` answers: see the type docs.
    fn join(&mut self, other: &Self) {
        let keys: BTreeSet<&K> = self.entries.keys().chain(other.entries.keys()).collect();
        let mut entries = BTreeMap::new();
        for key in keys {
            let mine = self.entries.get(key).map_or(&[][..], |s| s.as_slice());
            let theirs = other.entries.get(key).map_or(&[][..], |s| s.as_slice());
            let merged = merge(mine, &self.context, theirs, &other.context);
            if !merged.is_empty() {
                entries.insert(key.clone(), merged);
            }
        }
        self.entries = entries;
        self.context.join(&other.context);
        self.frontier.join(&other.frontier);
        self.full = self.full && other.full;
    }
}

impl<K: Ord + Clone, V: Clone, T: Tiebreak<K, V>> ORMap<K, V, T> {
    /// `delta_since`: the whole state of every key holding a dot that `digest`
    /// lacks, plus the whole context; the full state when `digest` does not
    /// cover the purge frontier; `None` when `digest` has seen everything.
    ///
    /// Walks the dot index per actor from the digest's prefix upward, so the
    /// cost is O(actors · log n + shipped siblings), not O(n).
    pub(super) fn answer(&self, digest: &CausalContext) -> Option<Delta<K, V>> {
        if !digest.covers(&self.frontier) {
            return Some(self.state());
        }
        if self.context.leq(digest) {
            return None;
        }
        let mut keys: BTreeSet<&K> = BTreeSet::new();
        for actor in self.context.actors() {
            let seen = digest.version_vector().get(actor);
            let (Ok(from), Ok(to)) = (
                Dot::new(actor, seen.saturating_add(1)),
                Dot::new(actor, crate::MAX_COUNTER),
            ) else {
                continue;
            };
            for (dot, key) in self.index.range(from..=to) {
                if !digest.contains(*dot) {
                    keys.insert(key);
                }
            }
        }
        let entries = keys
            .into_iter()
            .filter_map(|k| self.entries.get(k).map(|s| (k.clone(), s.clone())))
            .collect();
        Some(Delta::new(
            entries,
            self.context.clone(),
            self.frontier.clone(),
            false,
        ))
    }
}
