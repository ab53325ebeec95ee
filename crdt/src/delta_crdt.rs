//! [`DeltaCrdt`]: the contract that pull anti-entropy programs against.

use serde::{Deserialize, Serialize};

use crate::{CausalContext, VersionVector};

/// A replicated value that can say what a peer is missing, given the peer's
/// digest, and absorb such an answer.
///
/// The law that makes pull sync correct, checked in `proofs/`: for replicas
/// `a` and `b`, `a.join_delta(b.delta_since(&a.digest()))` leaves `a` equal to
/// `a ⊔ b` — also when the answer arrives late, twice, or after `a` changed.
///
/// Answers MUST be joined one at a time as they arrive. Two answers must not be
/// merged with each other first: each carries its responder's whole causal
/// context, which covers keys it does not ship.
pub trait DeltaCrdt {
    /// What a change notification names (a map key; `()` for a single value).
    type Key;
    /// An answer to a pull (or a mutator's delta).
    type Delta;

    /// Every event this replica has seen: what it sends when it pulls.
    fn digest(&self) -> CausalContext;

    /// What this replica has that `digest` has not seen, or `None` when it has
    /// nothing new. The cost grows with the answer, not with the state.
    ///
    /// When `digest` predates events this replica has garbage-collected (see
    /// [`purge`](Self::purge)), the answer is the full state, flagged so that
    /// [`join_delta`](Self::join_delta) can drop what the purged events removed.
    fn delta_since(&self, digest: &CausalContext) -> Option<Self::Delta>;

    /// Whether `delta` is a full-state answer (for metrics and the wire flag).
    fn is_full_state(delta: &Self::Delta) -> bool;

    /// Joins an answer into this replica and reports what changed.
    fn join_delta(&mut self, delta: Self::Delta) -> Changes<Self::Key>;

    /// Garbage-collects what every replica in the group has seen: `stable` is
    /// the meet of the current members' digests. Returns how many entries
    /// were dropped. A type with nothing to collect returns 0.
    fn purge(&mut self, stable: &CausalContext) -> usize {
        let _ = stable;
        0
    }

    /// Per actor, the highest counter among the removals this replica has
    /// purged (see [`purge`](Self::purge)), or learned that a peer purged;
    /// empty for a type with nothing to collect. Part of the replicated
    /// state: two converged replicas have the same frontier.
    fn purge_frontier(&self) -> VersionVector {
        VersionVector::new()
    }

    /// An answer that ships no key: this replica's context and purge
    /// frontier. A peer that has seen every dot ([`delta_since`] is `None`)
    /// may still lack the frontier (it did not purge, or purged less); it
    /// needs it to drop the tombstones it covers, or the two replicas read
    /// the same but differ as states forever. The responder sends it when
    /// it cannot tell the peer has it (see `sync`'s engine). `None` when
    /// the frontier is empty or the type has none.
    ///
    /// [`delta_since`]: Self::delta_since
    fn frontier_answer(&self) -> Option<Self::Delta> {
        None
    }
}

/// What a join changed: the keys whose visible value changed, the keys
/// whose stored state changed at all, and whether anything was learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes<K> {
    keys: Vec<K>,
    touched: Vec<K>,
    learned: bool,
}

impl<K> Changes<K> {
    /// Builds a change report: `keys` changed their visible value, `touched`
    /// (a superset) changed their stored state (a losing concurrent sibling,
    /// a tombstone). `learned` is forced to true when `touched` is not empty.
    pub fn with_touched(keys: Vec<K>, touched: Vec<K>, learned: bool) -> Self {
        let learned = learned || !touched.is_empty() || !keys.is_empty();
        Changes {
            keys,
            touched,
            learned,
        }
    }

    /// Nothing changed and nothing was learned.
    pub fn none() -> Self {
        Changes {
            keys: Vec::new(),
            touched: Vec::new(),
            learned: false,
        }
    }

    /// Keys whose stored state changed (visible value or not), ascending.
    /// What a store persisting the replica per key must rewrite.
    pub fn touched(&self) -> &[K] {
        &self.touched
    }

    /// Consumes the report, returning the visible changes and the touched
    /// keys.
    pub fn into_parts(self) -> (Vec<K>, Vec<K>) {
        (self.keys, self.touched)
    }

    /// Keys whose visible value (or its writer) changed, ascending.
    pub fn keys(&self) -> &[K] {
        &self.keys
    }

    /// Consumes the report, returning the changed keys.
    pub fn into_keys(self) -> Vec<K> {
        self.keys
    }

    /// Whether no visible value changed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether the join taught this replica anything (new events seen, even
    /// when no visible value changed). Sync uses this to decide whether to
    /// pass a notification on.
    pub fn learned(&self) -> bool {
        self.learned
    }
}
