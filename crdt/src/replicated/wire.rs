//! Encoding of [`Replicated`], [`Delta`] and [`Entry`], and the validation
//! of decoded input.
//!
//! Entries encode as a sequence of `(key, (store, tombs))` pairs in
//! ascending key order, and every store as its sorted sequence (see
//! [`dot_store`](crate::dot_store)), so equal states encode to equal bytes.
//! Decoding checks every invariant the join relies on and rejects the value
//! as a whole if one fails.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use super::{Delta, Embed, Entry, Replicated};
use crate::{ActorId, CausalContext, Dot, DotSet, DotStore, InvariantError, VersionVector};

impl<S: Serialize> Serialize for Entry<S> {
    fn serialize<Ser: Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        (&self.value, &self.tombs).serialize(s)
    }
}

impl<'de, S: Deserialize<'de> + DotStore> Deserialize<'de> for Entry<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (value, tombs) = <(S, DotSet)>::deserialize(d)?;
        let entry = Entry {
            value,
            tombs: tombs.into(),
        };
        if entry.is_empty() {
            return Err(D::Error::custom(InvariantError::EmptySiblings));
        }
        Ok(entry)
    }
}

/// Borrowed entries, encoded as a sequence of `(key, entry)` pairs.
struct EntriesRef<'a, K, S>(&'a BTreeMap<K, Entry<S>>);

impl<K: Serialize, S: Serialize> Serialize for EntriesRef<'_, K, S> {
    fn serialize<Ser: Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        s.collect_seq(self.0.iter())
    }
}

type EntriesWire<K, S> = Vec<(K, Entry<S>)>;

#[derive(Serialize)]
struct StateRef<'a, K, S> {
    actor: ActorId,
    entries: EntriesRef<'a, K, S>,
    context: &'a CausalContext,
    frontier: &'a VersionVector,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "K: Deserialize<'de>, S: Deserialize<'de> + DotStore"))]
struct StateWire<K, S> {
    actor: ActorId,
    entries: EntriesWire<K, S>,
    context: CausalContext,
    frontier: VersionVector,
}

#[derive(Serialize)]
struct DeltaRef<'a, K, S> {
    entries: EntriesRef<'a, K, S>,
    context: &'a CausalContext,
    frontier: &'a VersionVector,
    full: bool,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "K: Deserialize<'de>, S: Deserialize<'de> + DotStore"))]
struct DeltaWire<K, S> {
    entries: EntriesWire<K, S>,
    context: CausalContext,
    frontier: VersionVector,
    full: bool,
}

impl<K: Serialize, T: Embed> Serialize for Replicated<K, T>
where
    T::Store: Serialize,
{
    fn serialize<Ser: Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        StateRef {
            actor: self.actor,
            entries: EntriesRef(&self.entries),
            context: &self.context,
            frontier: &self.frontier,
        }
        .serialize(s)
    }
}

impl<'de, K, T> Deserialize<'de> for Replicated<K, T>
where
    K: Deserialize<'de> + Ord + Clone,
    T: Embed,
    T::Store: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = StateWire::<K, T::Store>::deserialize(d)?;
        let entries =
            validate(wire.entries, &wire.context, &wire.frontier).map_err(D::Error::custom)?;
        let mut replica = Replicated::new(wire.actor);
        replica.adopt(entries, wire.context, wire.frontier);
        Ok(replica)
    }
}

impl<K: Serialize, S: Serialize> Serialize for Delta<K, S> {
    fn serialize<Ser: Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        DeltaRef {
            entries: EntriesRef(&self.entries),
            context: &self.context,
            frontier: &self.frontier,
            full: self.full,
        }
        .serialize(s)
    }
}

impl<'de, K, S> Deserialize<'de> for Delta<K, S>
where
    K: Deserialize<'de> + Ord,
    S: Deserialize<'de> + DotStore,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = DeltaWire::<K, S>::deserialize(d)?;
        let entries =
            validate(wire.entries, &wire.context, &wire.frontier).map_err(D::Error::custom)?;
        Ok(Delta::new(entries, wire.context, wire.frontier, wire.full))
    }
}

impl<K: Ord, S: DotStore> Delta<K, S> {
    /// Builds a delta from its parts (e.g. a state restored from a store that
    /// persists it key by key), checked as a decoded delta would be.
    ///
    /// # Errors
    /// [`InvariantError`] if an invariant fails (unsorted or duplicate keys,
    /// an empty entry, a dot outside `context` or held twice, a frontier
    /// entry outside `context`); nothing is built.
    pub fn from_parts(
        entries: Vec<(K, Entry<S>)>,
        context: CausalContext,
        frontier: VersionVector,
        full: bool,
    ) -> Result<Self, InvariantError> {
        let entries = validate(entries, &context, &frontier)?;
        Ok(Delta::new(entries, context, frontier, full))
    }
}

/// Checks decoded entries against the invariants the join relies on: keys
/// strictly ascending; no empty entry; every dot in `context` and held in
/// one place only; every purge frontier entry a dot of `context`. (Each
/// store's own encoding rules were checked when it was decoded.)
fn validate<K: Ord, S: DotStore>(
    entries: EntriesWire<K, S>,
    context: &CausalContext,
    frontier: &VersionVector,
) -> Result<BTreeMap<K, Entry<S>>, InvariantError> {
    if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(InvariantError::NotStrictlyAscending { what: "map keys" });
    }
    let mut dots: Vec<Dot> = Vec::new();
    for (_, entry) in &entries {
        if entry.is_empty() {
            return Err(InvariantError::EmptySiblings);
        }
        entry.dots(&mut |d| dots.push(d));
    }
    crate::error::check_dots(&mut dots, context, frontier)?;
    Ok(entries.into_iter().collect())
}
