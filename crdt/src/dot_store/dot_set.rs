//! [`DotSet`]: a set of dots, the simplest dot store.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use smallvec::SmallVec;

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
///
/// Held as a sorted vector with room for one dot inline: almost every set
/// holds one dot (an element's latest add), and then costs no allocation.
/// Lookups are binary searches; a join is a merge of the two sorted
/// sequences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DotSet {
    dots: SmallVec<[Dot; 1]>,
}

impl DotSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set holds `dot`.
    pub fn contains(&self, dot: Dot) -> bool {
        self.dots.binary_search(&dot).is_ok()
    }

    /// Adds `dot`; returns whether it was new.
    pub fn insert(&mut self, dot: Dot) -> bool {
        match self.dots.binary_search(&dot) {
            Ok(_) => false,
            Err(at) => {
                self.dots.insert(at, dot);
                true
            }
        }
    }

    /// Removes `dot`; returns whether it was held.
    pub fn remove(&mut self, dot: Dot) -> bool {
        match self.dots.binary_search(&dot) {
            Ok(at) => {
                self.dots.remove(at);
                true
            }
            Err(_) => false,
        }
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
        if self.dots == other.dots {
            return;
        }
        // A merge of the two sorted sequences: a dot both hold is kept; a dot
        // one side holds is kept if the other has not seen it.
        let (mine, theirs) = (&self.dots, &other.dots);
        let mut out: SmallVec<[Dot; 1]> = SmallVec::with_capacity(mine.len().max(theirs.len()));
        let (mut i, mut j) = (0, 0);
        while i < mine.len() || j < theirs.len() {
            match (mine.get(i), theirs.get(j)) {
                (Some(&a), Some(&b)) if a == b => {
                    out.push(a);
                    i += 1;
                    j += 1;
                }
                (Some(&a), b) if b.is_none_or(|&b| a < b) => {
                    if !their_context.contains(a) {
                        out.push(a);
                    }
                    i += 1;
                }
                (_, Some(&b)) => {
                    if !my_context.contains(b) {
                        out.push(b);
                    }
                    j += 1;
                }
                (_, None) => break,
            }
        }
        self.dots = out;
    }

    fn dot_count(&self) -> usize {
        self.dots.len()
    }
}

impl FromIterator<Dot> for DotSet {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        let mut dots: SmallVec<[Dot; 1]> = iter.into_iter().collect();
        dots.sort_unstable();
        dots.dedup();
        DotSet { dots }
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
            dots: SmallVec::from_vec(dots),
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
