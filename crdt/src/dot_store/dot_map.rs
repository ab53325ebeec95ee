//! [`DotMap`]: keys to nested dot stores, the store of observed-remove maps.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use super::DotStore;
use crate::{CausalContext, Dot, InvariantError};

/// A map from keys to nested dot stores (any [`DotStore`], maps of maps
/// included): an add-wins set is a `DotMap<E, DotSet>`, an observed-remove
/// map of registers a `DotMap<K, DotFun<V>>`.
///
/// A key is present exactly when its store holds a dot: the map never holds
/// an empty store. Removing a key means dropping the dots observed under it,
/// so an update inside it that the removal did not observe survives.
///
/// Join applies the rule of every [`DotStore`] key by key over the union of
/// both sides' keys, passing the same two (top-level) contexts down, and
/// drops every key whose store ends up empty.
///
/// It encodes as the sequence of `(key, store)` pairs in ascending key
/// order; decoding rejects unsorted or duplicate keys and keys with an empty
/// store ([`InvariantError::EmptySiblings`]).
///
/// Mutating it directly is for building states and deltas; inside a
/// [`Causal`](super::Causal) the store changes only by joins.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DotMap<K, S> {
    entries: BTreeMap<K, S>,
}

impl<K, S> Default for DotMap<K, S> {
    fn default() -> Self {
        DotMap {
            entries: BTreeMap::new(),
        }
    }
}

impl<K: Ord, S: DotStore> DotMap<K, S> {
    /// The empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The store under `key`, if it holds a dot.
    pub fn get(&self, key: &K) -> Option<&S> {
        self.entries.get(key)
    }

    /// Whether `key` holds a dot.
    pub fn contains_key(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Sets the store under `key` and returns the one it replaced. An empty
    /// `store` removes `key` instead, so the map never holds an empty store.
    pub fn insert(&mut self, key: K, store: S) -> Option<S> {
        if DotStore::is_empty(&store) {
            self.entries.remove(&key)
        } else {
            self.entries.insert(key, store)
        }
    }

    /// Removes `key`; returns its store, if it was present.
    pub fn remove(&mut self, key: &K) -> Option<S> {
        self.entries.remove(key)
    }

    /// The number of keys (each holds at least one dot).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is present (no dot is held).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `(key, store)` pairs in ascending key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&K, &S)> + '_ {
        self.entries.iter()
    }

    /// The keys, ascending.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &K> + '_ {
        self.entries.keys()
    }
}

impl<K: Ord + Clone + PartialEq, S: DotStore> DotStore for DotMap<K, S> {
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn dots(&self, out: &mut impl FnMut(Dot)) {
        for store in self.entries.values() {
            store.dots(out);
        }
    }

    fn join(&mut self, my_context: &CausalContext, other: &Self, their_context: &CausalContext) {
        let empty = S::default();
        // Keys of mine (and keys of both): join with theirs, or with nothing.
        self.entries.retain(|key, mine| {
            let theirs = other.entries.get(key).unwrap_or(&empty);
            mine.join(my_context, theirs, their_context);
            !DotStore::is_empty(mine)
        });
        // Keys only they hold: what of theirs I have not seen.
        for (key, theirs) in &other.entries {
            if self.entries.contains_key(key) {
                continue;
            }
            let mut store = S::default();
            store.join(my_context, theirs, their_context);
            if !DotStore::is_empty(&store) {
                self.entries.insert(key.clone(), store);
            }
        }
    }

    fn dot_count(&self) -> usize {
        self.entries.values().map(DotStore::dot_count).sum()
    }
}

impl<K: Ord, S: DotStore> FromIterator<(K, S)> for DotMap<K, S> {
    /// Builds a map from pairs in any order, as repeated
    /// [`insert`](DotMap::insert)s: a later pair for a key replaces an
    /// earlier one, and empty stores are left out.
    fn from_iter<I: IntoIterator<Item = (K, S)>>(iter: I) -> Self {
        let mut map = DotMap::new();
        for (key, store) in iter {
            map.insert(key, store);
        }
        map
    }
}

impl<K: Serialize, S: Serialize> Serialize for DotMap<K, S> {
    fn serialize<Ser: Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        s.collect_seq(&self.entries)
    }
}

impl<'de, K, S> Deserialize<'de> for DotMap<K, S>
where
    K: Deserialize<'de> + Ord,
    S: Deserialize<'de> + DotStore,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<(K, S)>::deserialize(d)?;
        if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(D::Error::custom(InvariantError::NotStrictlyAscending {
                what: "dot map keys",
            }));
        }
        if entries.iter().any(|(_, s)| DotStore::is_empty(s)) {
            return Err(D::Error::custom(InvariantError::EmptySiblings));
        }
        Ok(DotMap {
            entries: entries.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActorId, dot_store::DotSet};

    fn dot(a: u64, c: u64) -> Dot {
        Dot::new(ActorId(a), c).expect("non-zero")
    }

    fn set(dots: &[Dot]) -> DotSet {
        dots.iter().copied().collect()
    }

    #[test]
    fn inserting_an_empty_store_removes_the_key() {
        let mut map: DotMap<u8, DotSet> = DotMap::new();
        map.insert(1, set(&[dot(1, 1)]));
        assert!(map.contains_key(&1));
        assert_eq!(map.insert(1, DotSet::new()), Some(set(&[dot(1, 1)])));
        assert!(map.is_empty());
        let map: DotMap<u8, DotSet> = [(1, DotSet::new()), (2, set(&[dot(1, 2)]))]
            .into_iter()
            .collect();
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn decoding_rejects_unsorted_keys_and_empty_stores() {
        let good: DotMap<u8, DotSet> = [(1, set(&[dot(1, 1)])), (2, set(&[dot(2, 1)]))]
            .into_iter()
            .collect();
        let bytes = rmp_serde::to_vec(&good).expect("encode");
        assert_eq!(
            rmp_serde::from_slice::<DotMap<u8, DotSet>>(&bytes).expect("decode"),
            good
        );
        for bad in [
            vec![(2u8, vec![dot(2, 1)]), (1, vec![dot(1, 1)])],
            vec![(1u8, vec![dot(2, 1)]), (1, vec![dot(1, 1)])],
            vec![(1u8, vec![])],
        ] {
            let bytes = rmp_serde::to_vec(&bad).expect("encode");
            assert!(
                rmp_serde::from_slice::<DotMap<u8, DotSet>>(&bytes).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn dot_count_and_dots_walk_every_level() {
        let inner: DotMap<u8, DotSet> = [(1, set(&[dot(1, 1), dot(2, 1)]))].into_iter().collect();
        let outer: DotMap<u8, DotMap<u8, DotSet>> =
            [(0, inner.clone()), (5, inner)].into_iter().collect();
        assert_eq!(outer.dot_count(), 4);
        let mut seen = Vec::new();
        outer.dots(&mut |d| seen.push(d));
        assert_eq!(seen, vec![dot(1, 1), dot(2, 1), dot(1, 1), dot(2, 1)]);
    }
}
