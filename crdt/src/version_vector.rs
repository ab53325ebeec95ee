//! [`VersionVector`]: the highest counter seen from each actor.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::{ActorId, Dot, InvariantError, Lattice};

/// How two version vectors (or the histories they summarize) relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CausalOrder {
    /// Every entry of the left is ≤ the right's, and one is <.
    Before,
    /// Every entry of the left is ≥ the right's, and one is >.
    After,
    /// The same vector.
    Equal,
    /// Each side has seen something the other has not.
    Concurrent,
}

/// A version vector: for each actor, the counter of the latest event seen, on
/// the understanding that every earlier event of that actor was seen too.
///
/// Stored as a vector of `(actor, counter)` sorted by actor with no
/// duplicates and no zero counters (an absent actor means 0), inline for up to
/// four actors. Join is the pointwise maximum; `Default` (empty) is bottom.
/// It encodes as that sorted sequence of pairs, and decoding rejects unsorted
/// or duplicate actors and zero counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "Vec<(ActorId, u64)>")]
pub struct VersionVector {
    entries: SmallVec<[(ActorId, u64); 4]>,
}

impl VersionVector {
    /// The empty vector (bottom).
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter seen from `actor`, 0 if none.
    pub fn get(&self, actor: ActorId) -> u64 {
        match self.position(actor) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    /// Whether `dot` is at or below this vector's entry for its actor.
    pub fn contains(&self, dot: Dot) -> bool {
        self.get(dot.actor()) >= dot.counter()
    }

    /// Raises `actor`'s entry to `counter` if it is lower; a `counter` of 0 is
    /// a no-op. Returns whether the vector changed.
    pub fn observe(&mut self, actor: ActorId, counter: u64) -> bool {
        if counter == 0 {
            return false;
        }
        match self.position(actor) {
            Ok(i) if self.entries[i].1 >= counter => false,
            Ok(i) => {
                self.entries[i].1 = counter;
                true
            }
            Err(i) => {
                self.entries.insert(i, (actor, counter));
                true
            }
        }
    }

    /// Records and returns the next event of `actor`.
    pub fn increment(&mut self, actor: ActorId) -> Dot {
        let next = self.get(actor).saturating_add(1);
        self.observe(actor, next);
        Dot::new_unchecked(actor, next)
    }

    /// The `(actor, counter)` entries in ascending actor order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (ActorId, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// The number of actors with a non-zero entry.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no event has been seen (bottom).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pointwise minimum (greatest lower bound): the events both have seen.
    #[must_use]
    pub fn meet(&self, other: &Self) -> Self {
        let mut entries = SmallVec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.entries.len() && j < other.entries.len() {
            let (a, x) = self.entries[i];
            let (b, y) = other.entries[j];
            match a.cmp(&b) {
                Ordering::Less => i += 1,
                Ordering::Greater => j += 1,
                Ordering::Equal => {
                    entries.push((a, x.min(y)));
                    i += 1;
                    j += 1;
                }
            }
        }
        VersionVector { entries }
    }

    /// Compares the histories two vectors summarize.
    pub fn causal_cmp(&self, other: &Self) -> CausalOrder {
        let (mut less, mut greater) = (false, false);
        let (mut i, mut j) = (0, 0);
        loop {
            let ord = match (self.entries.get(i), other.entries.get(j)) {
                (None, None) => break,
                (Some(_), None) => Ordering::Greater,
                (None, Some(_)) => Ordering::Less,
                (Some(&(a, x)), Some(&(b, y))) => match a.cmp(&b) {
                    // `a` is absent (0) on the right
                    Ordering::Less => Ordering::Greater,
                    Ordering::Greater => Ordering::Less,
                    Ordering::Equal => {
                        i += 1;
                        j += 1;
                        match x.cmp(&y) {
                            Ordering::Less => less = true,
                            Ordering::Greater => greater = true,
                            Ordering::Equal => {}
                        }
                        continue;
                    }
                },
            };
            if ord == Ordering::Greater {
                greater = true;
                i += 1;
            } else {
                less = true;
                j += 1;
            }
        }
        match (less, greater) {
            (false, false) => CausalOrder::Equal,
            (true, false) => CausalOrder::Before,
            (false, true) => CausalOrder::After,
            (true, true) => CausalOrder::Concurrent,
        }
    }

    fn position(&self, actor: ActorId) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&actor, |&(a, _)| a)
    }
}

impl Lattice for VersionVector {
    fn join(&mut self, other: &Self) {
        // Fast path for the common case of the same actors.
        if self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(a, b)| a.0 == b.0)
        {
            for (a, b) in self.entries.iter_mut().zip(&other.entries) {
                a.1 = a.1.max(b.1);
            }
            return;
        }
        for &(actor, counter) in &other.entries {
            self.observe(actor, counter);
        }
    }

    fn leq(&self, other: &Self) -> bool {
        matches!(
            self.causal_cmp(other),
            CausalOrder::Before | CausalOrder::Equal
        )
    }
}

impl PartialOrd for VersionVector {
    /// The causal order; `None` for concurrent vectors.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.causal_cmp(other) {
            CausalOrder::Before => Some(Ordering::Less),
            CausalOrder::After => Some(Ordering::Greater),
            CausalOrder::Equal => Some(Ordering::Equal),
            CausalOrder::Concurrent => None,
        }
    }
}

impl Serialize for VersionVector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.entries.iter())
    }
}

impl TryFrom<Vec<(ActorId, u64)>> for VersionVector {
    type Error = InvariantError;

    fn try_from(entries: Vec<(ActorId, u64)>) -> Result<Self, Self::Error> {
        if entries.iter().any(|&(_, c)| c == 0) {
            return Err(InvariantError::ZeroCounter);
        }
        if let Some(&(_, counter)) = entries.iter().find(|&&(_, c)| c > crate::MAX_COUNTER) {
            return Err(InvariantError::CounterTooLarge { counter });
        }
        if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(InvariantError::NotStrictlyAscending {
                what: "version vector actors",
            });
        }
        Ok(VersionVector {
            entries: SmallVec::from_vec(entries),
        })
    }
}

impl FromIterator<(ActorId, u64)> for VersionVector {
    /// Builds a vector from entries in any order; the maximum counter per
    /// actor wins and zero counters are ignored.
    fn from_iter<I: IntoIterator<Item = (ActorId, u64)>>(iter: I) -> Self {
        let mut vv = VersionVector::new();
        for (actor, counter) in iter {
            vv.observe(actor, counter);
        }
        vv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vv(entries: &[(u64, u64)]) -> VersionVector {
        entries.iter().map(|&(a, c)| (ActorId(a), c)).collect()
    }

    #[test]
    fn causal_comparison_covers_all_four_cases() {
        assert_eq!(vv(&[(1, 2)]).causal_cmp(&vv(&[(1, 2)])), CausalOrder::Equal);
        assert_eq!(
            vv(&[(1, 1)]).causal_cmp(&vv(&[(1, 2), (2, 1)])),
            CausalOrder::Before
        );
        assert_eq!(
            vv(&[(1, 2), (3, 1)]).causal_cmp(&vv(&[(1, 2)])),
            CausalOrder::After
        );
        assert_eq!(
            vv(&[(1, 2)]).causal_cmp(&vv(&[(2, 1)])),
            CausalOrder::Concurrent
        );
        assert_eq!(vv(&[]).causal_cmp(&vv(&[])), CausalOrder::Equal);
        assert_eq!(vv(&[(1, 3)]).partial_cmp(&vv(&[(2, 3)])), None);
    }

    #[test]
    fn join_is_pointwise_max_and_meet_pointwise_min() {
        let mut a = vv(&[(1, 5), (2, 1)]);
        a.join(&vv(&[(2, 4), (3, 1)]));
        assert_eq!(a, vv(&[(1, 5), (2, 4), (3, 1)]));
        assert_eq!(a.meet(&vv(&[(2, 2), (4, 9)])), vv(&[(2, 2)]));
    }

    #[test]
    fn increment_mints_consecutive_dots() {
        let mut a = VersionVector::new();
        let d1 = a.increment(ActorId(7));
        let d2 = a.increment(ActorId(7));
        assert_eq!((d1.counter(), d2.counter()), (1, 2));
        assert!(a.contains(d2));
        assert!(!a.contains(Dot::new(ActorId(7), 3).expect("non-zero")));
    }

    #[test]
    fn decoding_rejects_unsorted_duplicate_and_zero() {
        for bad in [
            vec![(ActorId(2), 1u64), (ActorId(1), 1)],
            vec![(ActorId(1), 1), (ActorId(1), 2)],
            vec![(ActorId(1), 0)],
        ] {
            let bytes = rmp_serde::to_vec(&bad).expect("encode");
            assert!(
                rmp_serde::from_slice::<VersionVector>(&bytes).is_err(),
                "{bad:?}"
            );
        }
        let good = vv(&[(1, 1), (5, 3)]);
        let bytes = rmp_serde::to_vec(&good).expect("encode");
        assert_eq!(
            rmp_serde::from_slice::<VersionVector>(&bytes).expect("decode"),
            good
        );
    }
}
