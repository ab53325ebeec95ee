//! Errors raised when untrusted input breaks an invariant of a crdt type.

use thiserror::Error;

/// A decoded value broke one of the invariants the crate's types keep.
///
/// Returned (wrapped in the serde error of the format in use) when
/// deserializing any public type; the value is rejected as a whole and
/// nothing is constructed. Joins and mutators never return this: they are
/// infallible on values that were validated on the way in.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvariantError {
    /// A dot had counter 0; counters start at 1.
    #[error("dot counter is 0 (counters start at 1)")]
    ZeroCounter,
    /// A counter above [`MAX_COUNTER`](crate::MAX_COUNTER).
    #[error("counter {counter} exceeds the maximum 2^63 - 1")]
    CounterTooLarge {
        /// The counter.
        counter: u64,
    },
    /// A sequence that must be strictly ascending (version vector entries,
    /// cloud dots, map keys, siblings of a key) was out of order or held a
    /// duplicate.
    #[error("{what} are not strictly ascending (unsorted or duplicate)")]
    NotStrictlyAscending {
        /// Which sequence.
        what: &'static str,
    },
    /// A cloud dot was already covered by the version vector, or directly
    /// extends it: the context was not compact.
    #[error(
        "causal context is not compact: cloud dot {actor}:{counter} is at or next to the version vector"
    )]
    NotCompact {
        /// Actor of the offending cloud dot.
        actor: u64,
        /// Counter of the offending cloud dot.
        counter: u64,
    },
    /// A key of a map or delta had no sibling at all (an empty store under
    /// a key: a map never holds one).
    #[error("a key holds an empty store (no sibling)")]
    EmptySiblings,
    /// A dot of a store (an ORMap sibling, a dot-store entry) was not in the
    /// causal context that ships with it.
    #[error("dot {actor}:{counter} is not in the causal context that ships with it")]
    DotNotInContext {
        /// Actor of the offending dot.
        actor: u64,
        /// Counter of the offending dot.
        counter: u64,
    },
    /// The same dot appeared under two keys (a dot names one event).
    #[error("dot {actor}:{counter} appears under more than one key")]
    DuplicateDot {
        /// Actor of the offending dot.
        actor: u64,
        /// Counter of the offending dot.
        counter: u64,
    },
    /// A purge frontier entry named a dot that is not in the causal context.
    #[error("purge frontier dot {actor}:{counter} is not in the causal context")]
    FrontierNotInContext {
        /// Actor of the offending frontier entry.
        actor: u64,
        /// Counter of the offending frontier entry.
        counter: u64,
    },
}

/// The checks every decoded store shares: each of `dots` (every dot the
/// store holds, once per place) is in `context` and held in one place only,
/// and every entry of the purge `frontier` names a dot of `context`. Errors
/// name the least offending dot. Sorts `dots`.
pub(crate) fn check_dots(
    dots: &mut [crate::Dot],
    context: &crate::CausalContext,
    frontier: &crate::VersionVector,
) -> Result<(), InvariantError> {
    dots.sort_unstable();
    if let Some(d) = dots.iter().find(|d| !context.contains(**d)) {
        return Err(InvariantError::DotNotInContext {
            actor: d.actor().0,
            counter: d.counter(),
        });
    }
    if let Some(w) = dots.windows(2).find(|w| w[0] == w[1]) {
        return Err(InvariantError::DuplicateDot {
            actor: w[0].actor().0,
            counter: w[0].counter(),
        });
    }
    for (actor, counter) in frontier.iter() {
        if !context.contains(crate::Dot::new(actor, counter)?) {
            return Err(InvariantError::FrontierNotInContext {
                actor: actor.0,
                counter,
            });
        }
    }
    Ok(())
}
