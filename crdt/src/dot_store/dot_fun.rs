//! [`DotFun`]: a map from dots to values, the leaf store of registers and
//! counters.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use smallvec::SmallVec;

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
///
/// Held as a vector sorted by dot with room for one entry inline: almost
/// every store holds one write (a register's latest, a counter actor's
/// entry), and then costs no allocation of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DotFun<V> {
    entries: SmallVec<[(Dot, V); 1]>,
}

impl<V> Default for DotFun<V> {
    fn default() -> Self {
        DotFun {
            entries: SmallVec::new(),
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
        self.find(dot).ok().map(|at| &self.entries[at].1)
    }

    fn find(&self, dot: Dot) -> Result<usize, usize> {
        self.entries.binary_search_by(|(d, _)| d.cmp(&dot))
    }

    /// Whether `dot` is held.
    pub fn contains(&self, dot: Dot) -> bool {
        self.find(dot).is_ok()
    }

    /// Sets the value of `dot`; returns the value it replaced, if any.
    pub fn insert(&mut self, dot: Dot, value: V) -> Option<V> {
        match self.find(dot) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (dot, value));
                None
            }
        }
    }

    /// Removes `dot`; returns its value, if it was held.
    pub fn remove(&mut self, dot: Dot) -> Option<V> {
        self.find(dot).ok().map(|at| self.entries.remove(at).1)
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
        self.entries.iter().map(|(_, v)| v)
    }
}

impl<V: Clone + PartialEq> DotStore for DotFun<V> {
    fn is_empty(&self) -> bool {
        DotFun::is_empty(self)
    }

    fn dots(&self, out: &mut impl FnMut(Dot)) {
        self.entries.iter().map(|(d, _)| *d).for_each(out);
    }

    fn join(&mut self, my_context: &CausalContext, other: &Self, their_context: &CausalContext) {
        if self.entries == other.entries {
            return;
        }
        // A merge of the two sorted sequences: a dot both hold is kept with
        // my value; a dot one side holds is kept if the other has not seen it.
        let mine = std::mem::take(&mut self.entries);
        let theirs = &other.entries;
        let mut out: SmallVec<[(Dot, V); 1]> =
            SmallVec::with_capacity(mine.len().max(theirs.len()));
        let mut j = 0;
        for (a, v) in mine {
            while let Some((b, w)) = theirs.get(j).filter(|(b, _)| *b < a) {
                if !my_context.contains(*b) {
                    out.push((*b, w.clone()));
                }
                j += 1;
            }
            if theirs.get(j).is_some_and(|(b, _)| *b == a) {
                out.push((a, v));
                j += 1;
            } else if !their_context.contains(a) {
                out.push((a, v));
            }
        }
        for (b, w) in theirs.iter().skip(j) {
            if !my_context.contains(*b) {
                out.push((*b, w.clone()));
            }
        }
        self.entries = out;
    }

    fn dot_count(&self) -> usize {
        self.entries.len()
    }
}

impl<V> FromIterator<(Dot, V)> for DotFun<V> {
    /// Builds a store from pairs in any order; a later pair for the same dot
    /// replaces an earlier one.
    fn from_iter<I: IntoIterator<Item = (Dot, V)>>(iter: I) -> Self {
        let mut entries: SmallVec<[(Dot, V); 1]> = iter.into_iter().collect();
        // Stable: among pairs of one dot, the last is kept.
        entries.sort_by_key(|e| e.0);
        let mut out: SmallVec<[(Dot, V); 1]> = SmallVec::with_capacity(entries.len());
        for (d, v) in entries {
            match out.last_mut() {
                Some(last) if last.0 == d => *last = (d, v),
                _ => out.push((d, v)),
            }
        }
        DotFun { entries: out }
    }
}

impl<V: Serialize> Serialize for DotFun<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.entries.iter().map(|(d, v)| (d, v)))
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
            entries: SmallVec::from_vec(entries),
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
