//! [`ORMap`]: a delta-state observed-remove map (a causal dot store with one
//! causal context per map) whose concurrent values are resolved at read time
//! by a pluggable [`Tiebreak`].
//!
//! The join rule, for a state or delta `D` with context `C_D` joined into the
//! local state `S` with context `C_S`, applied to every key of `D` (and, when
//! `D` is a full state, to every key of `S` too): keep a local sibling if `D`
//! holds the same dot for that key or its dot is not in `C_D`; keep a sibling
//! of `D` if `S` holds it or its dot is not in `C_S`; a key left with no
//! sibling disappears; then `C_S ∪= C_D`.

mod delta;
mod join;
mod purge;
mod rows;
mod wire;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::{
    ActorId, ActorOrder, CausalContext, Changes, DeltaCrdt, Dot, Lattice, Tiebreak, VersionVector,
    tiebreak::Candidate,
};

pub use delta::Delta;
pub use rows::Head;

/// One write to a key: the dot of the event and the value it wrote, or `None`
/// for a tombstone written by [`ORMap::remove`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sibling<V> {
    /// The event that wrote this sibling.
    pub dot: Dot,
    /// The value, or `None` for a remove.
    pub value: Option<V>,
}

/// The siblings of one key, sorted by dot; almost always exactly one.
pub type Siblings<V> = SmallVec<[Sibling<V>; 1]>;

/// A delta-state observed-remove map from `K` to `V`, owned by one actor.
///
/// * Writes ([`insert`](Self::insert), [`remove`](Self::remove)) are
///   δ-mutators: each mints a dot, changes the map and returns the delta.
///   A remove writes a tombstone with its own dot, so a replica whose only
///   change is a remove still differs in its digest.
/// * Concurrent writes to a key are all kept as siblings. Reads resolve them:
///   [`get`](Self::get) returns the greatest live sibling under the tiebreak
///   (then dot order); a tombstone loses to any concurrent live value
///   (add-wins).
/// * Replicas converge by pulling: send [`digest`](DeltaCrdt::digest), get
///   [`delta_since`](DeltaCrdt::delta_since), [`join_delta`](DeltaCrdt::join_delta)
///   it. Deltas returned by mutators are exact only under causal delivery;
///   do not ship them blindly between replicas (notify, then pull).
/// * Tombstones that every member has seen are dropped by
///   [`purge`](DeltaCrdt::purge); peers whose digest predates a purge get the
///   full state instead of a delta.
///
/// Equality and encoding cover the replicated state (entries, causal context,
/// purge frontier); not the owner actor, which is encoded alongside, nor the
/// tiebreak, which is code.
#[derive(Debug, Clone)]
pub struct ORMap<K, V, T = ActorOrder> {
    actor: ActorId,
    entries: BTreeMap<K, Siblings<V>>,
    context: CausalContext,
    /// Per actor, the highest counter among purged tombstones.
    frontier: VersionVector,
    /// Every sibling's dot (tombstones included) to its key.
    index: BTreeMap<Dot, K>,
    /// Keys whose siblings are all tombstones (the purge candidates).
    tombstoned: BTreeSet<K>,
    /// Keys with at least one live sibling.
    live: usize,
    /// Keys whose siblings changed since they were last taken, while
    /// tracking is on (see [`Rows`](crate::Rows)).
    touched: Option<BTreeSet<K>>,
    tiebreak: T,
}

impl<K: Ord + Clone, V: Clone, T: Tiebreak<K, V> + Default> ORMap<K, V, T> {
    /// An empty map owned by `actor`, with the default tiebreak.
    pub fn new(actor: ActorId) -> Self {
        Self::with_tiebreak(actor, T::default())
    }
}

impl<K: Ord + Clone, V: Clone, T: Tiebreak<K, V>> ORMap<K, V, T> {
    /// An empty map owned by `actor` that resolves siblings with `tiebreak`.
    pub fn with_tiebreak(actor: ActorId, tiebreak: T) -> Self {
        ORMap {
            actor,
            entries: BTreeMap::new(),
            context: CausalContext::new(),
            frontier: VersionVector::new(),
            index: BTreeMap::new(),
            tombstoned: BTreeSet::new(),
            live: 0,
            touched: None,
            tiebreak,
        }
    }

    /// The actor this replica mints dots for.
    pub fn actor(&self) -> ActorId {
        self.actor
    }

    /// The tiebreak in use.
    pub fn tiebreak(&self) -> &T {
        &self.tiebreak
    }

    /// Every dot this replica has seen.
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Per actor, the highest counter among the tombstones purged so far.
    /// A digest that does not cover it gets the full state.
    pub fn purge_frontier(&self) -> &VersionVector {
        &self.frontier
    }

    /// Whether this replica's actor has used up its counters
    /// ([`MAX_COUNTER`](crate::MAX_COUNTER) events, or a peer's state claims
    /// it has): its mutators then change nothing and return an empty delta.
    /// Only reachable through 2^63 writes or a peer sending this actor's
    /// dots at the limit; a fresh actor id writes again.
    pub fn exhausted(&self) -> bool {
        self.context.max_counter(self.actor) >= crate::MAX_COUNTER
    }

    /// Sets `key` to `value` and returns the delta: the key's new state with
    /// context `{new dot} ∪ {dots it overwrote}`. (Nothing, if the actor is
    /// [`exhausted`](Self::exhausted).)
    pub fn insert(&mut self, key: K, value: V) -> Delta<K, V> {
        self.write(key, Some(value))
    }

    /// Removes `key` by writing a tombstone with its own dot, and returns the
    /// delta; `None` (and no change) when `key` has no live value.
    pub fn remove(&mut self, key: &K) -> Option<Delta<K, V>> {
        let has_live = self
            .entries
            .get(key)
            .is_some_and(|s| s.iter().any(|s| s.value.is_some()));
        (has_live && !self.exhausted()).then(|| self.write(key.clone(), None))
    }

    fn write(&mut self, key: K, value: Option<V>) -> Delta<K, V> {
        if self.exhausted() {
            return Delta::new(
                BTreeMap::new(),
                CausalContext::new(),
                VersionVector::new(),
                false,
            );
        }
        let dot = self.context.next_dot(self.actor);
        self.context.insert(dot);
        let new: Siblings<V> = smallvec::smallvec![Sibling { dot, value }];
        let mut delta_context = CausalContext::new();
        delta_context.insert(dot);
        let old = self.entries.remove(&key);
        if let Some(old) = &old {
            delta_context.extend(old.iter().map(|s| s.dot));
        }
        self.reindex(&key, old.as_ref(), Some(&new));
        self.entries.insert(key.clone(), new.clone());
        Delta::new(
            BTreeMap::from([(key, new)]),
            delta_context,
            VersionVector::new(),
            false,
        )
    }

    /// The visible value of `key`: the greatest live sibling under the
    /// tiebreak, then dot order. `None` when absent or removed.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.visible(key).and_then(|s| s.value.as_ref())
    }

    /// The sibling whose value [`get`](Self::get) returns, with its dot (who
    /// wrote it, and which event).
    pub fn visible(&self, key: &K) -> Option<&Sibling<V>> {
        self.entries
            .get_key_value(key)
            .and_then(|(k, s)| winner(&self.tiebreak, k, s))
    }

    /// All siblings of `key` (live and tombstones), sorted by dot; empty when
    /// the map holds nothing for it. For callers who want to see conflicts.
    pub fn siblings(&self, key: &K) -> &[Sibling<V>] {
        self.entries.get(key).map_or(&[], |s| s.as_slice())
    }

    /// Whether `key` has a visible value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Visible entries in ascending key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.entries.iter().filter_map(|(k, s)| {
            winner(&self.tiebreak, k, s).and_then(|w| w.value.as_ref().map(|v| (k, v)))
        })
    }

    /// Keys with a visible value, ascending.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The number of keys with a visible value. O(1).
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no key has a visible value.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every stored key with all its siblings (tombstone-only keys included),
    /// ascending: the replicated data, for inspection and comparison.
    pub fn entries(&self) -> impl Iterator<Item = (&K, &[Sibling<V>])> + '_ {
        self.entries.iter().map(|(k, s)| (k, s.as_slice()))
    }

    /// The number of keys held, tombstone-only keys included.
    pub fn stored_keys(&self) -> usize {
        self.entries.len()
    }

    /// The whole state as a full-state delta (what a peer whose digest
    /// predates a purge receives).
    pub fn state(&self) -> Delta<K, V> {
        Delta::new(
            self.entries.clone(),
            self.context.clone(),
            self.frontier.clone(),
            true,
        )
    }

    /// Takes `entries`, `context` and `frontier` as this (empty) replica's
    /// state.
    fn adopt(
        &mut self,
        entries: BTreeMap<K, Siblings<V>>,
        context: CausalContext,
        frontier: VersionVector,
    ) -> Changes<K> {
        let learned = !context.is_empty();
        let mut changed = Vec::new();
        let mut touched = Vec::with_capacity(entries.len());
        for (key, siblings) in &entries {
            self.reindex(key, None, Some(siblings));
            if siblings.iter().any(|s| s.value.is_some()) {
                changed.push(key.clone());
            }
            touched.push(key.clone());
        }
        self.entries = entries;
        self.context = context;
        self.frontier = frontier;
        Changes::with_touched(changed, touched, learned)
    }

    /// Keeps the dot index, the live count and the purge candidates in step
    /// with a key going from `old` to `new` siblings.
    fn reindex(&mut self, key: &K, old: Option<&Siblings<V>>, new: Option<&Siblings<V>>) {
        let had_live = old.is_some_and(|s| s.iter().any(|s| s.value.is_some()));
        let has_live = new.is_some_and(|s| s.iter().any(|s| s.value.is_some()));
        if let Some(old) = old {
            for s in old {
                if !new.is_some_and(|n| n.iter().any(|t| t.dot == s.dot)) {
                    self.index.remove(&s.dot);
                }
            }
        }
        if let Some(new) = new {
            for s in new {
                if !old.is_some_and(|o| o.iter().any(|t| t.dot == s.dot)) {
                    self.index.insert(s.dot, key.clone());
                }
            }
        }
        if let Some(touched) = &mut self.touched {
            touched.insert(key.clone());
        }
        match (had_live, has_live) {
            (false, true) => self.live += 1,
            (true, false) => self.live -= 1,
            _ => {}
        }
        if new.is_some() && !has_live {
            self.tombstoned.insert(key.clone());
        } else {
            self.tombstoned.remove(key);
        }
    }
}

/// The greatest live sibling of `key` under `tiebreak`, then dot order.
fn winner<'a, K, V, T: Tiebreak<K, V>>(
    tiebreak: &T,
    key: &K,
    siblings: &'a [Sibling<V>],
) -> Option<&'a Sibling<V>> {
    siblings
        .iter()
        .filter(|s| s.value.is_some())
        .max_by(|a, b| {
            let (Some(va), Some(vb)) = (&a.value, &b.value) else {
                return a.dot.cmp(&b.dot);
            };
            tiebreak
                .cmp(
                    key,
                    Candidate {
                        dot: a.dot,
                        value: va,
                    },
                    Candidate {
                        dot: b.dot,
                        value: vb,
                    },
                )
                .then(a.dot.cmp(&b.dot))
        })
}

impl<K: PartialEq, V: PartialEq, T> PartialEq for ORMap<K, V, T> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
            && self.context == other.context
            && self.frontier == other.frontier
    }
}

impl<K: Eq, V: Eq, T> Eq for ORMap<K, V, T> {}

impl<K, V, T> Lattice for ORMap<K, V, T>
where
    K: Ord + Clone,
    V: Clone + PartialEq,
    T: Tiebreak<K, V> + Clone,
{
    /// The full-state join (every key of both sides).
    fn join(&mut self, other: &Self) {
        self.join_state(&other.entries, &other.context, &other.frontier, true);
    }
}

impl<K, V, T> DeltaCrdt for ORMap<K, V, T>
where
    K: Ord + Clone,
    V: Clone,
    T: Tiebreak<K, V>,
{
    type Key = K;
    type Delta = Delta<K, V>;

    fn digest(&self) -> CausalContext {
        self.context.clone()
    }

    fn delta_since(&self, digest: &CausalContext) -> Option<Delta<K, V>> {
        self.answer(digest)
    }

    fn is_full_state(delta: &Delta<K, V>) -> bool {
        delta.is_full()
    }

    fn join_delta(&mut self, delta: Delta<K, V>) -> Changes<K> {
        let (entries, context, frontier, full) = delta.into_parts();
        if self.context.is_empty() && self.entries.is_empty() && self.frontier.is_empty() {
            // Bottom ⊔ D = D: adopt it without copying (a new replica
            // catching up, or one restored from its store).
            return self.adopt(entries, context, frontier);
        }
        self.join_state(&entries, &context, &frontier, full)
    }

    fn purge(&mut self, stable: &CausalContext) -> usize {
        self.purge_stable(stable)
    }

    fn purge_frontier(&self) -> VersionVector {
        self.frontier.clone()
    }

    fn frontier_answer(&self) -> Option<Delta<K, V>> {
        (!self.frontier.is_empty()).then(|| {
            Delta::new(
                BTreeMap::new(),
                self.context.clone(),
                self.frontier.clone(),
                false,
            )
        })
    }
}

#[cfg(test)]
mod tests;
