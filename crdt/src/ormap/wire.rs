//! Encoding of [`ORMap`] and [`Delta`], and the validation of decoded input.
//!
//! Both encode their entries as a sequence of `(key, [siblings])` pairs in
//! ascending key order with siblings in ascending dot order, so equal states
//! encode to equal bytes. Decoding checks every invariant the join relies on
//! and rejects the value as a whole if one fails.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use super::{Delta, ORMap, Sibling, Siblings};
use crate::{ActorId, CausalContext, Dot, InvariantError, Tiebreak, VersionVector};

/// Borrowed entries, encoded as a sequence of `(key, siblings)` pairs.
struct EntriesRef<'a, K, V>(&'a BTreeMap<K, Siblings<V>>);

impl<K: Serialize, V: Serialize> Serialize for EntriesRef<'_, K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(k, v)| (k, v.as_slice())))
    }
}

type EntriesWire<K, V> = Vec<(K, Vec<Sibling<V>>)>;

#[derive(Serialize)]
struct MapRef<'a, K, V> {
    actor: ActorId,
    entries: EntriesRef<'a, K, V>,
    context: &'a CausalContext,
    frontier: &'a VersionVector,
}

#[derive(Deserialize)]
struct MapWire<K, V> {
    actor: ActorId,
    entries: EntriesWire<K, V>,
    context: CausalContext,
    frontier: VersionVector,
}

#[derive(Serialize)]
struct DeltaRef<'a, K, V> {
    entries: EntriesRef<'a, K, V>,
    context: &'a CausalContext,
    frontier: &'a VersionVector,
    full: bool,
}

#[derive(Deserialize)]
struct DeltaWire<K, V> {
    entries: EntriesWire<K, V>,
    context: CausalContext,
    frontier: VersionVector,
    full: bool,
}

impl<K: Serialize, V: Serialize, T> Serialize for ORMap<K, V, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MapRef {
            actor: self.actor,
            entries: EntriesRef(&self.entries),
            context: &self.context,
            frontier: &self.frontier,
        }
        .serialize(s)
    }
}

impl<'de, K, V, T> Deserialize<'de> for ORMap<K, V, T>
where
    K: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de> + Clone,
    T: Tiebreak<K, V> + Default,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = MapWire::<K, V>::deserialize(d)?;
        let entries =
            validate(wire.entries, &wire.context, &wire.frontier).map_err(D::Error::custom)?;
        let mut map = ORMap::with_tiebreak(wire.actor, T::default());
        for (key, siblings) in &entries {
            map.reindex(key, None, Some(siblings));
        }
        map.entries = entries;
        map.context = wire.context;
        map.frontier = wire.frontier;
        Ok(map)
    }
}

impl<K: Serialize, V: Serialize> Serialize for Delta<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DeltaRef {
            entries: EntriesRef(&self.entries),
            context: &self.context,
            frontier: &self.frontier,
            full: self.full,
        }
        .serialize(s)
    }
}

impl<'de, K, V> Deserialize<'de> for Delta<K, V>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = DeltaWire::<K, V>::deserialize(d)?;
        let entries =
            validate(wire.entries, &wire.context, &wire.frontier).map_err(D::Error::custom)?;
        Ok(Delta::new(entries, wire.context, wire.frontier, wire.full))
    }
}

impl<K: Ord, V> Delta<K, V> {
    /// Builds a delta from its parts, e.g. a full state restored from a store
    /// that persists a map key by key (entries from [`ORMap::entries`](super::ORMap::entries),
    /// the map's [`context`](super::ORMap::context) and
    /// [`purge_frontier`](super::ORMap::purge_frontier)). The parts are
    /// checked as a decoded delta would be.
    ///
    /// # Errors
    /// [`InvariantError`] if an invariant fails (unsorted or duplicate keys or
    /// siblings, a key without sibling, a dot outside `context` or under two
    /// keys, a frontier entry outside `context`); nothing is built.
    pub fn from_parts(
        entries: Vec<(K, Vec<Sibling<V>>)>,
        context: CausalContext,
        frontier: VersionVector,
        full: bool,
    ) -> Result<Self, InvariantError> {
        let entries = validate(entries, &context, &frontier)?;
        Ok(Delta::new(entries, context, frontier, full))
    }
}

/// Checks decoded entries against the invariants the join relies on: keys
/// strictly ascending; every key with at least one sibling, strictly
/// ascending by dot; every dot in `context` and under one key only; every
/// purge frontier entry a dot of `context`.
fn validate<K: Ord, V>(
    entries: EntriesWire<K, V>,
    context: &CausalContext,
    frontier: &VersionVector,
) -> Result<BTreeMap<K, Siblings<V>>, InvariantError> {
    if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(InvariantError::NotStrictlyAscending { what: "map keys" });
    }
    let mut dots: Vec<Dot> = Vec::new();
    for (_, siblings) in &entries {
        if siblings.is_empty() {
            return Err(InvariantError::EmptySiblings);
        }
        if siblings.windows(2).any(|w| w[0].dot >= w[1].dot) {
            return Err(InvariantError::NotStrictlyAscending { what: "siblings" });
        }
        for s in siblings {
            if !context.contains(s.dot) {
                return Err(InvariantError::DotNotInContext {
                    actor: s.dot.actor().0,
                    counter: s.dot.counter(),
                });
            }
            dots.push(s.dot);
        }
    }
    crate::error::check_dots(&mut dots, context, frontier)?;
    Ok(entries
        .into_iter()
        .map(|(k, s)| (k, Siblings::from_vec(s)))
        .collect())
}
