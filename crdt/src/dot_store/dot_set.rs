//! [`DotSet`]: a set of dots, the simplest dot store.

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
///
/// Held in 16 bytes: one dot inline (almost every set holds one, an
/// element's latest add, and then costs no allocation), or a boxed sorted
/// vector of several. Lookups are binary searches; a join is a merge of the
/// two sorted sequences. The form is canonical (no box of fewer than two),
/// so equal sets are equal values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DotSet {
    dots: Repr,
}

/// A [`DotSet`]'s dots: one inline, or several (`None`: none) boxed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    One(Dot),
    // A thin pointer (a `Box<[Dot]>` is two words): the set stays 16 bytes.
    #[allow(clippy::box_collection)]
    Many(Option<Box<Vec<Dot>>>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Many(None)
    }
}

impl Repr {
    /// From a sorted, deduplicated vector.
    fn from_sorted(dots: Vec<Dot>) -> Self {
        match dots.as_slice() {
            [] => Repr::Many(None),
            [one] => Repr::One(*one),
            _ => Repr::Many(Some(Box::new(dots))),
        }
    }

    fn as_slice(&self) -> &[Dot] {
        match self {
            Repr::One(d) => std::slice::from_ref(d),
            Repr::Many(None) => &[],
            Repr::Many(Some(v)) => v,
        }
    }

    /// Changes the dots as a vector (kept sorted by `f`), then stores them
    /// back in canonical form.
    fn modify<R>(&mut self, f: impl FnOnce(&mut Vec<Dot>) -> R) -> R {
        let mut dots = match std::mem::take(self) {
            Repr::Many(Some(v)) => *v,
            other => other.as_slice().to_vec(),
        };
        let out = f(&mut dots);
        *self = Repr::from_sorted(dots);
        out
    }
}

impl DotSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set holds `dot`.
    pub fn contains(&self, dot: Dot) -> bool {
        self.dots.as_slice().binary_search(&dot).is_ok()
    }

    /// Adds `dot`; returns whether it was new.
    pub fn insert(&mut self, dot: Dot) -> bool {
        if self.contains(dot) {
            return false;
        }
        self.dots.modify(|v| match v.binary_search(&dot) {
            Ok(_) => false,
            Err(at) => {
                v.insert(at, dot);
                true
            }
        })
    }

    /// Removes `dot`; returns whether it was held.
    pub fn remove(&mut self, dot: Dot) -> bool {
        if !self.contains(dot) {
            return false;
        }
        self.dots.modify(|v| match v.binary_search(&dot) {
            Ok(at) => {
                v.remove(at);
                true
            }
            Err(_) => false,
        })
    }

    /// The number of dots held.
    pub fn len(&self) -> usize {
        self.dots.as_slice().len()
    }

    /// Whether the set holds no dot.
    pub fn is_empty(&self) -> bool {
        self.dots == Repr::Many(None)
    }

    /// The dots, ascending.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Dot> + '_ {
        self.dots.as_slice().iter().copied()
    }
}

impl DotStore for DotSet {
    fn is_empty(&self) -> bool {
        DotSet::is_empty(self)
    }

    fn dots(&self, out: &mut impl FnMut(Dot)) {
        self.dots.as_slice().iter().copied().for_each(out);
    }

    fn join(&mut self, my_context: &CausalContext, other: &Self, their_context: &CausalContext) {
        if self.dots == other.dots {
            return;
        }
        // A merge of the two sorted sequences: a dot both hold is kept; a dot
        // one side holds is kept if the other has not seen it.
        let (mine, theirs) = (self.dots.as_slice(), other.dots.as_slice());
        let mut out: Vec<Dot> = Vec::with_capacity(mine.len().max(theirs.len()));
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
        self.dots = Repr::from_sorted(out);
    }

    fn dot_count(&self) -> usize {
        self.len()
    }
}

impl FromIterator<Dot> for DotSet {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        let mut dots: Vec<Dot> = iter.into_iter().collect();
        dots.sort_unstable();
        dots.dedup();
        DotSet {
            dots: Repr::from_sorted(dots),
        }
    }
}

impl Serialize for DotSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.dots.as_slice())
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
            dots: Repr::from_sorted(dots),
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

#[cfg(test)]
mod size {
    use super::*;
    use crate::ActorId;

    #[test]
    fn a_set_is_sixteen_bytes_and_its_form_is_canonical() {
        assert_eq!(std::mem::size_of::<DotSet>(), 16);
        let d = |c| Dot::new(ActorId(1), c).expect("non-zero");
        let mut s: DotSet = [d(2), d(1)].into_iter().collect();
        assert!(s.remove(d(2)));
        assert_eq!(s, [d(1)].into_iter().collect::<DotSet>());
        assert!(s.remove(d(1)));
        assert_eq!(s, DotSet::new());
        assert!(s.is_empty());
        assert!(s.insert(d(3)) && !s.insert(d(3)));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![d(3)]);
    }
}
