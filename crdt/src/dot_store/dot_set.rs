//! [`DotSet`]: a set of dots, the simplest dot store.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use super::DotStore;
use crate::{CausalContext, Dot, InvariantError};

/// A set of dots: the elements of an add-wins set (one per element, under a
/// [`DotMap`](super::DotMap)), the enabling (or disabling) events of a flag,
/// the tomb dots of a top-level key.
///
/// Join follows the rule of every [`DotStore`]: a dot survives if both sides
/// hold it or the side lacking it has not seen it. It encodes as the sequence
/// of its dots in ascending order; decoding rejects unsorted or duplicate
/// dots.
///
/// Mutating a set directly is for building states and deltas; inside a
/// [`Causal`](super::Causal) the store changes only by joins, so its dots
/// stay inside the context.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DotSet {
    dots: BTreeSet<Dot>,
}

impl DotSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set holds `dot`.
    pub fn contains(&self, dot: Dot) -> bool {
        self.dots.contains(&dot)
    }

    /// Adds `dot`; returns whether it was new.
    pub fn insert(&mut self, dot: Dot) -> bool {
        self.dots.insert(dot)
    }

    /// Removes `dot`; returns whether it was held.
    pub fn remove(&mut self, dot: Dot) -> bool {
        self.dots.remove(&dot)
    }

    /// The number of dots held.
    pub fn len(&self) -> usize {
        self.dots.len()
    }

    /// Whether the set holds no dot.
    pub fn is_empty(&self) -> bool {
        self.dots.is_empty()
    }

    /// The dots, ascending.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Dot> + '_ {
        self.dots.iter().copied()
    }
}

impl DotStore for DotSet {
    fn is_empty(&self) -> bool {
        DotSet::is_empty(self)
    }

    fn dots(&self, out: &mut impl FnMut(Dot)) {
        self.dots.iter().copied().for_each(out);
    }

    fn join(&mut self, my_context: &CausalContext, other: &Self, their_context: &CausalContext) {
        // Mine: kept if they hold it too, or have not seen it.
        self.dots
            .retain(|d| other.dots.contains(d) || !their_context.contains(*d));
        // Theirs: kept if I hold it (already kept above) or have not seen it.
        for &d in &other.dots {
            if !my_context.contains(d) {
                self.dots.insert(d);
            }
        }
    }

    fn dot_count(&self) -> usize {
        self.dots.len()
    }
}

impl FromIterator<Dot> for DotSet {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        DotSet {
            dots: iter.into_iter().collect(),
        }
    }
}

impl Serialize for DotSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(&self.dots)
    }
}

impl<'de> Deserialize<'de> for DotSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let dots = Vec::<Dot>::deserialize(d)?;
        if dots.windows(2).any(|w| w[0] >= w[1]) {
            return Err(D::Error::custom(InvariantError::NotStrictlyAscending {
                what: "dot set dots",
            }));
        }
        Ok(DotSet {
            dots: dots.into_iter().collect(),
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
    fn encodes_sorted_and_rejects_unsorted_or_duplicate_dots() {
        let set: DotSet = [dot(2, 1), dot(1, 3), dot(1, 1)].into_iter().collect();
        let bytes = rmp_serde::to_vec(&set).expect("encode");
        assert_eq!(
            bytes,
            rmp_serde::to_vec(&vec![dot(1, 1), dot(1, 3), dot(2, 1)]).expect("encode")
        );
        assert_eq!(
            rmp_serde::from_slice::<DotSet>(&bytes).expect("decode"),
            set
        );
        for bad in [vec![dot(1, 3), dot(1, 1)], vec![dot(1, 1), dot(1, 1)]] {
            let bytes = rmp_serde::to_vec(&bad).expect("encode");
            assert!(rmp_serde::from_slice::<DotSet>(&bytes).is_err(), "{bad:?}");
        }
    }
}
