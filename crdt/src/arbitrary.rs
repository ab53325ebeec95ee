//! Proptest strategies for the crate's types (feature `proptest`), shared by
//! `proofs/` and by users testing their own replicated state.
//!
//! ORMap states are not generated field by field: a random map would reuse
//! dots with different values, which no real history can produce. Instead a
//! random history of [`MapOp`]s is replayed over a few replicas, so every
//! generated state is one a real deployment could reach.

use proptest::prelude::*;

use crate::{ActorId, CausalContext, DeltaCrdt, Dot, ORMap, VersionVector};

/// Actor ids from a small range, so that strategies collide often.
pub fn actor_id() -> impl Strategy<Value = ActorId> {
    (1u64..=6).prop_map(ActorId)
}

/// Dots with small counters.
pub fn dot() -> impl Strategy<Value = Dot> {
    (actor_id(), 1u64..=12).prop_map(|(a, c)| Dot::new(a, c).expect("counter range starts at 1"))
}

/// Version vectors over a few actors.
pub fn version_vector() -> impl Strategy<Value = VersionVector> {
    prop::collection::vec((actor_id(), 0u64..=12), 0..6).prop_map(|e| e.into_iter().collect())
}

/// Causal contexts: random dot sets, so both prefixes and clouds occur.
pub fn causal_context() -> impl Strategy<Value = CausalContext> {
    prop::collection::vec(dot(), 0..40).prop_map(|dots| {
        let mut ctx = CausalContext::new();
        ctx.extend(dots);
        ctx
    })
}

/// One step of a replicated history over maps `u8 → u8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapOp {
    /// Replica `replica` sets `key` to `value`.
    Insert {
        /// Index of the writing replica.
        replica: usize,
        /// The key written.
        key: u8,
        /// The value written.
        value: u8,
    },
    /// Replica `replica` removes `key` (a no-op if it sees no value).
    Remove {
        /// Index of the removing replica.
        replica: usize,
        /// The key removed.
        key: u8,
    },
    /// Replica `to` pulls from replica `from`: `from.delta_since(to.digest())`
    /// joined into `to` at once.
    Pull {
        /// The responder.
        from: usize,
        /// The requester.
        to: usize,
    },
    /// Replica `replica` purges the tombstones stable among all replicas but
    /// `away` (a replica that is not a current member and may miss the purge).
    Purge {
        /// The purging replica.
        replica: usize,
        /// A replica left out of the stable context, if any.
        away: Option<usize>,
    },
}

/// A random operation over `replicas` replicas and `keys` keys; pulls are
/// as frequent as writes, purges rarer.
pub fn map_op(replicas: usize, keys: u8) -> impl Strategy<Value = MapOp> {
    let r = 0..replicas.max(1);
    let k = 0..keys.max(1);
    prop_oneof![
        3 => (r.clone(), k.clone(), any::<u8>())
            .prop_map(|(replica, key, value)| MapOp::Insert { replica, key, value }),
        1 => (r.clone(), k).prop_map(|(replica, key)| MapOp::Remove { replica, key }),
        4 => (r.clone(), r.clone()).prop_map(|(from, to)| MapOp::Pull { from, to }),
        1 => (r.clone(), prop::option::of(r)).prop_map(|(replica, away)| MapOp::Purge { replica, away }),
    ]
}

/// Replays `ops` over `replicas` fresh maps owned by actors `1..=replicas`.
pub fn replay(replicas: usize, ops: &[MapOp]) -> Vec<ORMap<u8, u8>> {
    let mut maps: Vec<ORMap<u8, u8>> = (1..=replicas as u64)
        .map(|a| ORMap::new(ActorId(a)))
        .collect();
    for op in ops {
        apply(&mut maps, op);
    }
    maps
}

/// Applies one operation to a set of replicas.
pub fn apply(maps: &mut [ORMap<u8, u8>], op: &MapOp) {
    match *op {
        MapOp::Insert {
            replica,
            key,
            value,
        } => {
            if let Some(m) = maps.get_mut(replica) {
                m.insert(key, value);
            }
        }
        MapOp::Remove { replica, key } => {
            if let Some(m) = maps.get_mut(replica) {
                m.remove(&key);
            }
        }
        MapOp::Pull { from, to } => {
            if from == to || from >= maps.len() || to >= maps.len() {
                return;
            }
            if let Some(delta) = maps[from].delta_since(&maps[to].digest()) {
                maps[to].join_delta(delta);
            }
        }
        MapOp::Purge { replica, away } => {
            let stable = stable_context(maps, away);
            if let Some(m) = maps.get_mut(replica) {
                m.purge(&stable);
            }
        }
    }
}

/// The meet of the digests of every replica except `away`.
pub fn stable_context(maps: &[ORMap<u8, u8>], away: Option<usize>) -> CausalContext {
    let mut members = maps
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != away)
        .map(|(_, m)| m.digest());
    let first = members.next().unwrap_or_default();
    members.fold(first, |acc, d| acc.meet(&d))
}

/// `n` replicas of one random history of up to `len` operations over 8 keys.
/// States drawn together may be joined with each other: they never hold the
/// same dot with different values.
pub fn replicas(n: usize, len: usize) -> impl Strategy<Value = Vec<ORMap<u8, u8>>> {
    prop::collection::vec(map_op(n, 8), 0..len).prop_map(move |ops| replay(n, &ops))
}
