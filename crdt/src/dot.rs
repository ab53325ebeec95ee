//! [`ActorId`] and [`Dot`]: who wrote an event, and which event it was.

use std::{fmt, num::NonZeroU64};

use serde::{Deserialize, Serialize};

use crate::InvariantError;

/// An opaque, compact replica id.
///
/// A replica MUST never reuse a dot: an app that restarts either restores its
/// replicated state (so its causal context still holds every dot it minted)
/// or takes a fresh `ActorId`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ActorId(pub u64);

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for ActorId {
    fn from(id: u64) -> Self {
        ActorId(id)
    }
}

/// One event: the `counter`-th event of `actor`. Counters start at 1.
///
/// Dots order by actor, then counter. That order carries no causal meaning;
/// it is the deterministic last resort for choosing between concurrent
/// siblings (see [`Tiebreak`](crate::Tiebreak)). It encodes as the pair
/// `[actor, counter]`; decoding rejects counter 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "(ActorId, u64)", into = "(ActorId, u64)")]
pub struct Dot {
    actor: ActorId,
    /// Non-zero, so that an `Option<Dot>` (and a one-dot set) costs no tag.
    counter: NonZeroU64,
}

/// The largest counter a dot or a version vector entry may hold: 2^63 − 1.
/// An actor can mint this many events; values above it are refused on
/// decoding, so arithmetic on counters (`seen + 1`) never overflows,
/// whatever a peer sends.
pub const MAX_COUNTER: u64 = i64::MAX as u64;

impl Dot {
    /// The `counter`-th event of `actor`.
    ///
    /// # Errors
    /// [`InvariantError::ZeroCounter`] when `counter` is 0,
    /// [`InvariantError::CounterTooLarge`] above [`MAX_COUNTER`].
    pub fn new(actor: ActorId, counter: u64) -> Result<Self, InvariantError> {
        if counter == 0 {
            return Err(InvariantError::ZeroCounter);
        }
        if counter > MAX_COUNTER {
            return Err(InvariantError::CounterTooLarge { counter });
        }
        let counter = NonZeroU64::new(counter).ok_or(InvariantError::ZeroCounter)?;
        Ok(Dot { actor, counter })
    }

    /// Builds a dot whose counter the caller has already proven non-zero.
    pub(crate) fn new_unchecked(actor: ActorId, counter: u64) -> Self {
        debug_assert!(counter > 0, "dot counters start at 1");
        Dot {
            actor,
            counter: NonZeroU64::new(counter).unwrap_or(NonZeroU64::MIN),
        }
    }

    /// The replica that minted this dot.
    pub fn actor(&self) -> ActorId {
        self.actor
    }

    /// The position of this event among its actor's events (≥ 1).
    pub fn counter(&self) -> u64 {
        self.counter.get()
    }
}

impl fmt::Display for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.actor.0, self.counter)
    }
}

impl TryFrom<(ActorId, u64)> for Dot {
    type Error = InvariantError;

    fn try_from((actor, counter): (ActorId, u64)) -> Result<Self, Self::Error> {
        Dot::new(actor, counter)
    }
}

impl From<Dot> for (ActorId, u64) {
    fn from(dot: Dot) -> Self {
        (dot.actor, dot.counter.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_zero_is_rejected_everywhere() {
        assert_eq!(Dot::new(ActorId(1), 0), Err(InvariantError::ZeroCounter));
        let bytes = rmp_serde::to_vec(&(ActorId(1), 0u64)).expect("encode");
        assert!(rmp_serde::from_slice::<Dot>(&bytes).is_err());
    }

    #[test]
    fn dots_order_by_actor_then_counter_and_round_trip() {
        let a = Dot::new(ActorId(1), 9).expect("non-zero");
        let b = Dot::new(ActorId(2), 1).expect("non-zero");
        assert!(a < b);
        let bytes = rmp_serde::to_vec(&a).expect("encode");
        assert_eq!(rmp_serde::from_slice::<Dot>(&bytes).expect("decode"), a);
        assert_eq!(a.to_string(), "1:9");
    }
}
