//! The [`Lattice`] trait and a few small lattices: [`Max`], [`Min`] and set
//! union on [`BTreeSet`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A join-semilattice: a set with a least-upper-bound operation.
///
/// Implementors MUST make [`join`](Lattice::join) associative, commutative and
/// idempotent (checked for every type of this crate by the property tests in
/// `proofs/`). The partial order follows from the join: `a ≤ b` exactly when
/// `a ⊔ b = b`. Where a type has a bottom element, its `Default` is that
/// bottom, and joining bottom changes nothing.
///
/// Joins are infallible: values are validated when they are decoded, not when
/// they are joined.
pub trait Lattice: Clone + PartialEq {
    /// Replaces `self` with `self ⊔ other`.
    fn join(&mut self, other: &Self);

    /// Returns `self ⊔ other`, consuming `self`.
    #[must_use]
    fn joined(mut self, other: &Self) -> Self {
        self.join(other);
        self
    }

    /// The lattice order: `true` when `self ≤ other`, that is when
    /// `self ⊔ other = other`.
    ///
    /// The default clones `self`; types override it with a cheaper check.
    fn leq(&self, other: &Self) -> bool {
        self.clone().joined(other) == *other
    }
}

/// The lattice of a totally ordered type under `max`.
///
/// `Default` is bottom only when `T::default()` is the least value of `T`
/// (true for unsigned integers, `bool`, `String`, `Option`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Max<T>(pub T);

impl<T: Ord + Clone> Lattice for Max<T> {
    fn join(&mut self, other: &Self) {
        if other.0 > self.0 {
            self.0 = other.0.clone();
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.0 <= other.0
    }
}

/// The lattice of a totally ordered type under `min`.
///
/// It has no `Default`: the bottom of this lattice is the greatest value of
/// `T`, which most types do not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Min<T>(pub T);

impl<T: Ord + Clone> Lattice for Min<T> {
    fn join(&mut self, other: &Self) {
        if other.0 < self.0 {
            self.0 = other.0.clone();
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.0 >= other.0
    }
}

/// Set union (a grow-only set). The empty set is bottom.
impl<T: Ord + Clone> Lattice for BTreeSet<T> {
    fn join(&mut self, other: &Self) {
        for x in other {
            if !self.contains(x) {
                self.insert(x.clone());
            }
        }
    }

    fn leq(&self, other: &Self) -> bool {
        self.is_subset(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_keeps_the_greatest_and_orders_by_value() {
        let mut a = Max(3u32);
        a.join(&Max(7));
        assert_eq!(a, Max(7));
        a.join(&Max(5));
        assert_eq!(a, Max(7));
        assert!(Max(5).leq(&Max(7)));
        assert!(!Max(8).leq(&Max(7)));
    }

    #[test]
    fn min_keeps_the_least() {
        let mut a = Min(3u32);
        a.join(&Min(1));
        a.join(&Min(2));
        assert_eq!(a, Min(1));
        assert!(Min(4).leq(&Min(1)));
    }

    #[test]
    fn set_union_is_the_join() {
        let mut a: BTreeSet<u8> = [1, 2].into();
        a.join(&[2, 3].into());
        assert_eq!(a, [1, 2, 3].into());
        assert!(BTreeSet::from([1u8]).leq(&a));
        assert!(!BTreeSet::from([9u8]).leq(&a));
    }
}
