//! [`Tiebreak`]: how a read picks one value among concurrent siblings.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::Dot;

/// A live sibling offered to a [`Tiebreak`]: its dot and its value.
#[derive(Debug)]
pub struct Candidate<'a, V> {
    /// The event that wrote the value.
    pub dot: Dot,
    /// The value written.
    pub value: &'a V,
}

impl<V> Clone for Candidate<'_, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for Candidate<'_, V> {}

/// Orders concurrent live siblings of one key; the greatest is the visible
/// value. It runs at read time only, never at merge time, so it cannot make
/// replicas diverge; but every replica MUST use the same tiebreak, or they
/// read different values from equal states.
///
/// Contract for implementors: `cmp` MUST be a total order on the candidates
/// of a key (reflexive `Equal`, antisymmetric, transitive) and MUST be a pure
/// function of its arguments. Returning `Equal` for distinct candidates is
/// allowed: the map then falls back to dot order (higher [`Dot`] wins), so
/// reads are deterministic on every replica. Tombstones never reach the
/// tiebreak: any live sibling beats a concurrent remove (add-wins).
pub trait Tiebreak<K, V> {
    /// Compares two concurrent live siblings of `key`; `Greater` means `a`
    /// wins.
    fn cmp(&self, key: &K, a: Candidate<'_, V>, b: Candidate<'_, V>) -> Ordering;
}

/// The sibling written by the higher [`ActorId`](crate::ActorId) wins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorOrder;

impl<K, V> Tiebreak<K, V> for ActorOrder {
    fn cmp(&self, _key: &K, a: Candidate<'_, V>, b: Candidate<'_, V>) -> Ordering {
        a.dot.actor().cmp(&b.dot.actor())
    }
}

/// A value that carries the time it was written, for [`LastWriterWins`].
pub trait Timestamped {
    /// The type of the timestamp (e.g. milliseconds since the epoch, or a
    /// hybrid logical clock).
    type Time: Ord;

    /// When this value was written.
    fn timestamp(&self) -> Self::Time;
}

/// The sibling with the later timestamp wins; equal timestamps fall back to
/// dot order. Clocks only break ties between *concurrent* writes here: a
/// write that causally follows another replaces it whatever its timestamp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastWriterWins;

impl<K, V: Timestamped> Tiebreak<K, V> for LastWriterWins {
    fn cmp(&self, _key: &K, a: Candidate<'_, V>, b: Candidate<'_, V>) -> Ordering {
        a.value.timestamp().cmp(&b.value.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActorId;

    struct Stamped(u64);

    impl Timestamped for Stamped {
        type Time = u64;
        fn timestamp(&self) -> u64 {
            self.0
        }
    }

    fn dot(a: u64, c: u64) -> Dot {
        Dot::new(ActorId(a), c).expect("non-zero")
    }

    #[test]
    fn actor_order_prefers_the_higher_actor() {
        let (x, y) = (1u8, 2u8);
        let a = Candidate {
            dot: dot(2, 1),
            value: &x,
        };
        let b = Candidate {
            dot: dot(1, 9),
            value: &y,
        };
        assert_eq!(
            Tiebreak::<(), u8>::cmp(&ActorOrder, &(), a, b),
            Ordering::Greater
        );
    }

    #[test]
    fn last_writer_wins_prefers_the_later_timestamp() {
        let (old, new) = (Stamped(10), Stamped(20));
        let a = Candidate {
            dot: dot(9, 1),
            value: &old,
        };
        let b = Candidate {
            dot: dot(1, 1),
            value: &new,
        };
        assert_eq!(LastWriterWins.cmp(&(), a, b), Ordering::Less);
    }
}
