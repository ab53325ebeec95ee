//! [`DotFun`]: a map from dots to values, the leaf store of registers and
//! counters.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use super::DotStore;
use crate::{CausalContext, Dot, InvariantError};

/// A function from dots to values: the writes of a register (one per
/// concurrent write; a multi-value register reads them all, an LWW register
/// one of them by a tiebreak), the per-actor entries of a counter.
///
/// Join follows the rule of every [`DotStore`], on dots: a dot survives if
/// both sides hold it or the side lacking it has not seen it. A dot names one
/// event, so a dot held by both sides has the same value on both; if it does
/// not (a reused dot), the join keeps mine (`self`'s value).
///
/// It encodes as the sequence of `(dot, value)` pairs in ascending dot
/// order; decoding rejects unsorted or duplicate dots.
///
/// Mutating it directly is for building states and deltas; inside a
/// [`Causal`](super::Causal) the store changes only by joins.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DotFun<V> {
    entries: BTreeMap<Dot, V>,
}

impl<V> Default for DotFun<V> {
    fn default() -> Self {
        DotFun {
            entries: BTreeMap::new(),
        }
    }
}

impl<V> DotFun<V> {
    /// The empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value written by `dot`, if held.
    pub fn get(&self, dot: Dot) -> Option<&V> {
        self.entries.get(&dot)
    }

    /// Whether `dot` is held.
    pub fn contains(&self, dot: Dot) -> bool {
        self.entries.contains_key(&dot)
    }

    /// Sets the value of `dot`; returns the value it replaced, if any.
    pub fn insert(&mut self, dot: Dot, value: V) -> Option<V> {
        self.entries.insert(dot, value)
    }

    /// Removes `dot`; returns its value, if it was held.
    pub fn remove(&mut self, dot: Dot) -> Option<V> {
        self.entries.remove(&dot)
    }

    /// The number of dots held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no dot is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `(dot, value)` pairs in ascending dot order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Dot, &V)> + '_ {
        self.entries.iter().map(|(d, v)| (*d, v))
    }

    /// The values in ascending dot order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> + '_ {
        self.entries.values()
    }
}

impl<V: Clone + PartialEq> DotStore for DotFun<V> {
    fn is_empty(&self) -> bool {
        DotFun::is_empty(self)
    }

    fn dots(&self, out: &mut impl FnMut(Dot)) {
        self.entries.keys().copied().for_each(out);
    }

    fn join(&mut self, my_context: &CausalContext, other: &Self, their_context: &CausalContext) {
        // Mine: kept (with my value) if they hold it too, or have not seen it.
        self.entries
            .retain(|d, _| other.entries.contains_key(d) || !their_context.contains(*d));
        // Theirs: kept if I hold it (already kept above) or have not seen it.
        for (&d, v) in &other.entries {
            if !my_context.contains(d) {
                self.entries.entry(d).or_insert_with(|| v.clone());
            }
        }
    }

    fn dot_count(&self) -> usize {
        self.entries.len()
    }
}

impl<V> FromIterator<(Dot, V)> for DotFun<V> {
    /// Builds a store from pairs in any order; a later pair for the same dot
    /// replaces an earlier one.
    fn from_iter<I: IntoIterator<Item = (Dot, V)>>(iter: I) -> Self {
        DotFun {
            entries: iter.into_iter().collect(),
        }
    }
}

impl<V: Serialize> Serialize for DotFun<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(&self.entries)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for DotFun<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<(Dot, V)>::deserialize(d)?;
        if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(D::Error::custom(InvariantError::NotStrictlyAscending {
                what: "dot fun dots",
            }));
        }
        Ok(DotFun {
            entries: entries.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActorId;

    fn dot(a: u64, c: u64) -> Dot {
        Dot::new(ActorId(a), c).expect("non-zero")
    }

    #[test]
    fn encodes_sorted_pairs_and_rejects_unsorted_or_duplicate_dots() {
        let fun: DotFun<u8> = [(dot(2, 1), 7), (dot(1, 1), 9)].into_iter().collect();
        let bytes = rmp_serde::to_vec(&fun).expect("encode");
        assert_eq!(
            bytes,
            rmp_serde::to_vec(&vec![(dot(1, 1), 9u8), (dot(2, 1), 7)]).expect("encode")
        );
        assert_eq!(
            rmp_serde::from_slice::<DotFun<u8>>(&bytes).expect("decode"),
            fun
        );
        for bad in [
            vec![(dot(2, 1), 7u8), (dot(1, 1), 9)],
            vec![(dot(1, 1), 7u8), (dot(1, 1), 9)],
        ] {
            let bytes = rmp_serde::to_vec(&bad).expect("encode");
            assert!(
                rmp_serde::from_slice::<DotFun<u8>>(&bytes).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_dot_held_by_both_keeps_my_value() {
        // Unreachable without a reused dot; documented as keep-mine.
        let ctx: CausalContext = {
            let mut c = CausalContext::new();
            c.insert(dot(1, 1));
            c
        };
        let mut mine: DotFun<u8> = [(dot(1, 1), 1)].into_iter().collect();
        let theirs: DotFun<u8> = [(dot(1, 1), 2)].into_iter().collect();
        mine.join(&ctx, &theirs, &ctx);
        assert_eq!(mine.get(dot(1, 1)), Some(&1));
    }
}
