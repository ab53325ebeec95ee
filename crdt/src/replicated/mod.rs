//! [`Replicated`]: the delta layer on the causal dot-store core, the one
//! replica type every type of the palette is an instance of.
//!
//! A replica is a map from *top-level keys* to [`Entry`]s, each an
//! [`Embed`] type's dot store (a counter's entries, a set's dots, a nested
//! map…) and a set of tomb dots, under **one** causal context, with a purge
//! frontier and a dot index. The rules are those of the executable model
//! `proofs/models/dotstore_model.py`:
//!
//! * **Mutations are effects.** An [`Embed`] type turns an operation into an
//!   [`Effect`]: the observed dots it removes and what it adds (at most one
//!   new dot). The replica mints the dot, builds the delta — the key's new
//!   dots, and a context of the new dot plus the removed ones — and joins it.
//! * **Tomb dots.** An effect that only removes (a set's `remove`, a map
//!   key's removal, at any depth) mints a tomb dot in its top-level key's
//!   tomb set instead, replacing the tombs it observed. So a key whose dots
//!   were only dropped still holds a dot a digest has not seen.
//! * **`delta_since(digest)`** ships the whole entry of every top-level key
//!   holding a dot the digest lacks, found through the dot index (dot →
//!   key) from each actor's prefix upward: O(actors · log n + answer), at
//!   any nesting depth. Joining such an answer applies the join rule to the
//!   shipped keys only; a full state applies it to every key.
//! * **Purge and the frontier.** Tomb dots every member has seen (in the
//!   stable context) are dropped and recorded in the purge frontier; a digest
//!   that does not cover the frontier gets the full state, flagged. The
//!   frontier travels with every answer (and alone, as
//!   [`frontier_answer`](DeltaCrdt::frontier_answer), to a peer that has
//!   every dot), and a join drops every tomb dot the frontier covers, so
//!   converged replicas are equal as states.
//!
//! Costs: a mutation, or the join of a shipped key, costs O(dots under its
//! top-level key); choose top-level keys so that they stay small (a set's
//! elements, a map's keys), as the palette's types do.

#[cfg(feature = "proptest")]
pub mod arbitrary;
mod delta;
mod index;
mod join;
mod purge;
mod rows;
mod wire;

#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    marker::PhantomData,
};

use crate::{
    ActorId, CausalContext, Changes, DeltaCrdt, Dot, DotSet, DotStore, Lattice, VersionVector,
};

pub use delta::Delta;
use index::{DotIndex, Tombs};

/// A type that can live under a key of a [`Replicated`] replica (and, through
/// [`MapOf`](crate::MapOf), under a key of a nested map): its dot store, how
/// it is read, and how an operation on it becomes an [`Effect`].
///
/// Contract for implementors: [`effect`](Embed::effect) MUST be a pure
/// function of its arguments, its `add` MUST hold no dot other than the
/// `dot` it is given (and that one at most once), and its `removes` MUST
/// name dots the `store` holds (others are ignored). An effect that breaks
/// the first rule is refused: the mutator changes nothing and returns `None`.
pub trait Embed {
    /// The dot store holding the type's state.
    type Store: DotStore + fmt::Debug;
    /// An operation ([`Replicated::apply`] takes one).
    type Op;
    /// What a read returns.
    type Value;

    /// Reads a store.
    fn value(store: &Self::Store) -> Self::Value;

    /// What `op`, done by `actor` on `store`, removes and adds; `dot` is the
    /// dot the replica mints if the effect adds something.
    fn effect(store: &Self::Store, actor: ActorId, dot: Dot, op: Self::Op) -> Effect<Self::Store>;
}

/// What an operation does to a dot store: the observed dots it removes and
/// the store it adds (holding at most the one new dot). Both empty: the
/// operation changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect<S> {
    /// The new dot at its place (or an empty store).
    pub add: S,
    /// The observed dots the operation removes.
    pub removes: Vec<Dot>,
}

impl<S: Default> Effect<S> {
    /// An effect that changes nothing.
    pub fn none() -> Self {
        Effect {
            add: S::default(),
            removes: Vec::new(),
        }
    }
}

/// What a replica holds for one top-level key: the [`Embed`] type's store
/// and the key's tomb dots (removals not yet purged). Never both empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Entry<S> {
    pub(crate) value: S,
    pub(crate) tombs: Tombs,
}

impl<S: DotStore> Entry<S> {
    /// The key's store.
    pub fn value(&self) -> &S {
        &self.value
    }

    /// The key's tomb dots.
    pub fn tombs(&self) -> &DotSet {
        &self.tombs
    }

    /// Whether the entry holds no dot at all.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty() && self.tombs.is_empty()
    }

    /// Every dot of the entry: the store's, then the tombs.
    pub fn dots(&self, out: &mut impl FnMut(Dot)) {
        self.value.dots(out);
        self.tombs.dots(out);
    }

    /// The join rule for both parts, under the two top-level contexts.
    pub(crate) fn join(&mut self, mine: &CausalContext, other: &Self, theirs: &CausalContext) {
        self.value.join(mine, &other.value, theirs);
        self.tombs.join(mine, &other.tombs, theirs);
    }
}

/// A replica of a map from top-level keys `K` to [`Embed`] values `T`,
/// owned by one actor; see the [module docs](self) for the rules.
///
/// Every type of the palette is one: [`GCounter`](crate::GCounter) is
/// `Replicated<(), GrowOnly>`, [`AWSet<E>`](crate::AWSet) is
/// `Replicated<E, Presence>`, and a map of counters per tenant is
/// `Replicated<String, PosNeg>`; their inherent methods are the typed
/// mutators and reads. `sync::Node` replicates any of them unchanged.
///
/// Equality and encoding cover the replicated state (entries, causal
/// context, purge frontier); not the owner actor, which is encoded
/// alongside.
pub struct Replicated<K, T: Embed> {
    actor: ActorId,
    entries: BTreeMap<K, Entry<T::Store>>,
    context: CausalContext,
    /// Per actor, the highest counter among purged tomb dots.
    frontier: VersionVector,
    /// Every dot held (stores and tombs) to its top-level key.
    index: DotIndex<K>,
    /// Every tomb dot to its top-level key (the purge candidates).
    tombs: BTreeMap<Dot, K>,
    /// Keys whose entries changed since they were last taken, while tracking
    /// is on (see [`Rows`](crate::Rows)).
    touched: Option<BTreeSet<K>>,
    embed: PhantomData<fn() -> T>,
}

impl<K: Clone, T: Embed> Clone for Replicated<K, T> {
    fn clone(&self) -> Self {
        Replicated {
            actor: self.actor,
            entries: self.entries.clone(),
            context: self.context.clone(),
            frontier: self.frontier.clone(),
            index: self.index.clone(),
            tombs: self.tombs.clone(),
            touched: self.touched.clone(),
            embed: PhantomData,
        }
    }
}

impl<K: fmt::Debug, T: Embed> fmt::Debug for Replicated<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replicated")
            .field("actor", &self.actor)
            .field("entries", &self.entries)
            .field("context", &self.context)
            .field("frontier", &self.frontier)
            .finish()
    }
}

impl<K: PartialEq, T: Embed> PartialEq for Replicated<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
            && self.context == other.context
            && self.frontier == other.frontier
    }
}

impl<K: Eq, T: Embed> Eq for Replicated<K, T> where T::Store: Eq {}

impl<K: Ord + Clone, T: Embed> Replicated<K, T> {
    /// An empty replica owned by `actor`.
    pub fn new(actor: ActorId) -> Self {
        Replicated {
            actor,
            entries: BTreeMap::new(),
            context: CausalContext::new(),
            frontier: VersionVector::new(),
            index: DotIndex::default(),
            tombs: BTreeMap::new(),
            touched: None,
            embed: PhantomData,
        }
    }

    /// The actor this replica mints dots for.
    pub fn actor(&self) -> ActorId {
        self.actor
    }

    /// Every dot this replica has seen.
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Per actor, the highest counter among the tomb dots purged here or by
    /// a peer this replica learned it from.
    pub fn purge_frontier(&self) -> &VersionVector {
        &self.frontier
    }

    /// Whether this replica's actor has used up its counters (see
    /// [`ORMap::exhausted`](crate::ORMap::exhausted)): mutators then change
    /// nothing and return `None`.
    pub fn exhausted(&self) -> bool {
        self.context.max_counter(self.actor) >= crate::MAX_COUNTER
    }

    /// Applies `op` to the value under `key` and returns the delta; `None`
    /// when it changes nothing (or the actor is [exhausted](Self::exhausted)).
    pub fn apply(&mut self, key: K, op: T::Op) -> Option<Delta<K, T::Store>> {
        if self.exhausted() {
            return None;
        }
        let dot = self.context.next_dot(self.actor);
        let effect = {
            let empty = T::Store::default();
            let store = self.entries.get(&key).map_or(&empty, |e| &e.value);
            T::effect(store, self.actor, dot, op)
        };
        self.commit(key, dot, effect)
    }

    /// Removes what this replica has observed under `key` (a concurrent
    /// update elsewhere survives) and returns the delta; `None` when the key
    /// holds nothing.
    pub fn remove(&mut self, key: &K) -> Option<Delta<K, T::Store>> {
        if self.exhausted() {
            return None;
        }
        let mut removes = Vec::new();
        self.entries.get(key)?.value.dots(&mut |d| removes.push(d));
        let dot = self.context.next_dot(self.actor);
        let effect = Effect {
            add: T::Store::default(),
            removes,
        };
        self.commit(key.clone(), dot, effect)
    }

    /// Turns an effect on `key` into a delta and joins it.
    fn commit(&mut self, key: K, dot: Dot, effect: Effect<T::Store>) -> Option<Delta<K, T::Store>> {
        let mut added = 0usize;
        let mut foreign = false;
        effect.add.dots(&mut |d| {
            added += 1;
            foreign |= d != dot;
        });
        if foreign || added > 1 {
            return None;
        }
        let removed: Vec<Dot> = effect
            .removes
            .iter()
            .copied()
            .filter(|d| self.index.get(*d) == Some(&key) && !self.tombs.contains_key(d))
            .collect();
        if added == 0 && removed.is_empty() {
            return None;
        }
        let mut context = CausalContext::new();
        context.extend(removed);
        context.insert(dot);
        let entry = if added == 1 {
            Entry {
                value: effect.add,
                tombs: Tombs::default(),
            }
        } else {
            // A pure removal: a tomb dot replacing the tombs it observed.
            if let Some(e) = self.entries.get(&key) {
                context.extend(e.tombs.iter());
            }
            Entry {
                value: T::Store::default(),
                tombs: [dot].into_iter().collect(),
            }
        };
        let delta = Delta::new(
            BTreeMap::from([(key, entry)]),
            context,
            VersionVector::new(),
            false,
        );
        self.join_delta(delta.clone());
        Some(delta)
    }

    /// The entry under `key` (its store and tombs), if the replica holds
    /// anything for it.
    pub fn entry(&self, key: &K) -> Option<&Entry<T::Store>> {
        self.entries.get(key)
    }

    /// The store under `key`, if it holds any dot.
    pub fn store(&self, key: &K) -> Option<&T::Store> {
        self.entries
            .get(key)
            .map(|e| &e.value)
            .filter(|s| !s.is_empty())
    }

    /// The value under `key`, read by `T`; `None` when the key holds no dot
    /// (never written, or removed).
    pub fn get(&self, key: &K) -> Option<T::Value> {
        self.store(key).map(T::value)
    }

    /// Keys holding a value (not only tombs), ascending, with their stores.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &T::Store)> + '_ {
        self.entries
            .iter()
            .filter(|(_, e)| !e.value.is_empty())
            .map(|(k, e)| (k, &e.value))
    }

    /// Keys holding a value, ascending.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// The number of keys holding a value. O(keys).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no key holds a value.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Every stored entry (tomb-only keys included), ascending: the
    /// replicated data, for inspection and comparison.
    pub fn entries(&self) -> impl Iterator<Item = (&K, &Entry<T::Store>)> + '_ {
        self.entries.iter()
    }

    /// The number of keys stored, tomb-only keys included.
    pub fn stored_keys(&self) -> usize {
        self.entries.len()
    }

    /// The whole state as a full-state delta (what a peer whose digest
    /// predates a purge receives).
    pub fn state(&self) -> Delta<K, T::Store> {
        Delta::new(
            self.entries.clone(),
            self.context.clone(),
            self.frontier.clone(),
            true,
        )
    }

    /// Moves `key`'s dots in the indexes from `old` to `new`, and records
    /// the key as touched.
    fn reindex(&mut self, key: &K, old: Option<&Entry<T::Store>>, new: Option<&Entry<T::Store>>) {
        if let Some(old) = old {
            old.value.dots(&mut |d| {
                self.index.remove(d);
            });
            for d in old.tombs.iter() {
                self.index.remove(d);
                self.tombs.remove(&d);
            }
        }
        if let Some(new) = new {
            new.value.dots(&mut |d| {
                self.index.insert(d, key.clone());
            });
            for d in new.tombs.iter() {
                self.index.insert(d, key.clone());
                self.tombs.insert(d, key.clone());
            }
        }
        if let Some(touched) = &mut self.touched {
            touched.insert(key.clone());
        }
    }
}

impl<K: Ord + Clone, T: Embed> Lattice for Replicated<K, T> {
    /// The full-state join (every key of both sides).
    fn join(&mut self, other: &Self) {
        self.join_state(&other.entries, &other.context, &other.frontier, true);
    }
}

impl<K: Ord + Clone, T: Embed> DeltaCrdt for Replicated<K, T> {
    type Key = K;
    type Delta = Delta<K, T::Store>;

    fn digest(&self) -> CausalContext {
        self.context.clone()
    }

    fn delta_since(&self, digest: &CausalContext) -> Option<Self::Delta> {
        self.answer(digest)
    }

    fn is_full_state(delta: &Self::Delta) -> bool {
        delta.is_full()
    }

    fn join_delta(&mut self, delta: Self::Delta) -> Changes<K> {
        let (entries, context, frontier, full) = delta.into_parts();
        if self.context.is_empty() && self.entries.is_empty() && self.frontier.is_empty() {
            // Bottom ⊔ D = D: adopt it without copying.
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

    fn frontier_answer(&self) -> Option<Self::Delta> {
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
