//! [`Delta`]: a fragment of a [`Replicated`] state, and how a replica
//! answers a digest with one in O(delta).

use std::collections::{BTreeMap, BTreeSet};

use super::{Embed, Entry, Replicated};
use crate::{CausalContext, DotStore, Lattice, VersionVector};

/// Part of a [`Replicated`] state: some top-level keys with their whole
/// entries, a causal context and a purge frontier.
///
/// Three kinds, all joined with
/// [`DeltaCrdt::join_delta`](crate::DeltaCrdt::join_delta):
/// * a mutator delta: one key, and the context `{new dot} ∪ {dots it
///   removed}`. Exact only under causal delivery (notify, then pull);
///   mutator deltas join into delta groups ([`Lattice`]).
/// * a `delta_since` answer: the whole entry of every key holding a dot the
///   digest lacks, the responder's whole context and its purge frontier.
///   Join answers one at a time; never join two answers with each other.
/// * a full state ([`is_full`](Self::is_full)): every key, the whole context
///   and the purge frontier; its join also drops local dots it has seen but
///   does not hold, under keys it does not ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta<K, S> {
    pub(super) entries: BTreeMap<K, Entry<S>>,
    pub(super) context: CausalContext,
    pub(super) frontier: VersionVector,
    pub(super) full: bool,
}

impl<K, S> Delta<K, S> {
    pub(super) fn new(
        entries: BTreeMap<K, Entry<S>>,
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

    pub(super) fn into_parts(self) -> (BTreeMap<K, Entry<S>>, CausalContext, VersionVector, bool) {
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

    /// Whether no key is shipped (the context and frontier alone may still
    /// teach the receiver something).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The shipped keys with their entries, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &Entry<S>)> + '_ {
        self.entries.iter()
    }
}

impl<K: Ord + Clone, S: DotStore> Lattice for Delta<K, S> {
    /// Joins two mutator deltas into a delta group (the dot-store join over
    /// the keys of both). Not for `delta_since` answers: see the type docs.
    fn join(&mut self, other: &Self) {
        let keys: BTreeSet<&K> = self.entries.keys().chain(other.entries.keys()).collect();
        let empty = Entry::default();
        let mut entries = BTreeMap::new();
        for key in keys {
            let mut mine = self.entries.get(key).cloned().unwrap_or_default();
            let theirs = other.entries.get(key).unwrap_or(&empty);
            mine.join(&self.context, theirs, &other.context);
            if !mine.is_empty() {
                entries.insert(key.clone(), mine);
            }
        }
        self.entries = entries;
        self.context.join(&other.context);
        self.frontier.join(&other.frontier);
        self.full = self.full && other.full;
    }
}

impl<K: Ord + Clone, T: Embed> Replicated<K, T> {
    /// `delta_since`: the whole entry of every key holding a dot that
    /// `digest` lacks, plus the whole context and the frontier; the full
    /// state when `digest` does not cover the purge frontier; `None` when
    /// `digest` has seen everything.
    ///
    /// Walks the dot index per actor from the digest's prefix upward, so the
    /// cost is O(actors · log n + shipped entries), not O(n).
    pub(super) fn answer(&self, digest: &CausalContext) -> Option<Delta<K, T::Store>> {
        if !digest.covers(&self.frontier) {
            return Some(self.state());
        }
        if self.context.leq(digest) {
            return None;
        }
        let mut keys: BTreeSet<&K> = BTreeSet::new();
        for actor in self.context.actors() {
            let seen = digest.version_vector().get(actor);
            for (dot, key) in self
                .index
                .range(actor, seen.saturating_add(1), crate::MAX_COUNTER)
            {
                if !digest.contains(dot) {
                    keys.insert(key);
                }
            }
        }
        let entries = keys
            .into_iter()
            .filter_map(|k| self.entries.get(k).map(|e| (k.clone(), e.clone())))
            .collect();
        Some(Delta::new(
            entries,
            self.context.clone(),
            self.frontier.clone(),
            false,
        ))
    }
}
