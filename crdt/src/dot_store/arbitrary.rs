//! Proptest strategies for [`Causal`] dot stores (feature `proptest`),
//! shared by `proofs/` and by users testing their own types.
//!
//! States are not generated field by field: random stores would reuse dots
//! with different values or under different keys, and hold dots their
//! context lacks, which no real history produces. Instead a random history
//! of [`StoreOp`]s (writes and removes at random paths, and joins between
//! replicas) is replayed over a few replicas, so every generated state is reachable
//! and keeps the invariant. Mutations change the store directly rather than
//! by joining their delta, so a broken join cannot shape the states it is
//! tested on; [`delta`] gives the delta of each mutation, for the
//! delta-mutator law. States drawn from one history may be joined with each other;
//! states from two histories must not be (their dots collide).
//!
//! For example, three replicas of a map of maps of registers:
//!
//! ```
//! use crdt::dot_store::{arbitrary::causal_replicas, DotFun, DotMap};
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! type Nested = DotMap<u8, DotMap<u8, DotFun<u8>>>;
//! let mut runner = TestRunner::deterministic();
//! let states = causal_replicas::<Nested>(3, 40)
//!     .new_tree(&mut runner)
//!     .expect("a history")
//!     .current();
//! assert_eq!(states.len(), 3);
//! assert!(states.iter().all(|s| s.validate().is_ok()));
//! ```

use std::fmt::Debug;

use proptest::prelude::*;

use super::{Causal, DotFun, DotMap, DotSet, DotStore};
use crate::{ActorId, CausalContext, Dot, Lattice};

/// A dot store whose nested stores are addressed by a path of `u8` keys, one
/// per [`DotMap`] level, so a random history can write and remove at any
/// depth. Implementations mutate the store directly (never through
/// [`DotStore::join`]), so the generated states do not depend on the join
/// they are used to test.
pub trait PathStore: DotStore + Debug {
    /// The number of map levels above the leaf (0 for a leaf).
    const DEPTH: usize;

    /// Calls `out` with every dot under `path`: the whole store for an empty
    /// path, the store under the first key for a longer one, and so on.
    /// Keys past the leaf are ignored.
    fn dots_under(&self, path: &[u8], out: &mut impl FnMut(Dot));

    /// Drops the dots under `path` for which `keep` is false, and the map
    /// keys left empty.
    fn retain_under(&mut self, path: &[u8], keep: &mut impl FnMut(Dot) -> bool);

    /// Adds `dot` (with `value`, for a leaf with values) at `path`; keys
    /// missing from a path too short for the depth are taken as 0.
    fn insert_at(&mut self, path: &[u8], dot: Dot, value: u8);

    /// A store holding only `dot` (with `value`) at `path`.
    fn singleton(path: &[u8], dot: Dot, value: u8) -> Self {
        let mut store = Self::default();
        store.insert_at(path, dot, value);
        store
    }
}

impl PathStore for DotSet {
    const DEPTH: usize = 0;

    fn dots_under(&self, _path: &[u8], out: &mut impl FnMut(Dot)) {
        self.dots(out);
    }

    fn retain_under(&mut self, _path: &[u8], keep: &mut impl FnMut(Dot) -> bool) {
        let dropped: Vec<Dot> = self.iter().filter(|d| !keep(*d)).collect();
        for d in dropped {
            self.remove(d);
        }
    }

    fn insert_at(&mut self, _path: &[u8], dot: Dot, _value: u8) {
        self.insert(dot);
    }
}

impl PathStore for DotFun<u8> {
    const DEPTH: usize = 0;

    fn dots_under(&self, _path: &[u8], out: &mut impl FnMut(Dot)) {
        self.dots(out);
    }

    fn retain_under(&mut self, _path: &[u8], keep: &mut impl FnMut(Dot) -> bool) {
        let dropped: Vec<Dot> = self.iter().map(|(d, _)| d).filter(|d| !keep(*d)).collect();
        for d in dropped {
            self.remove(d);
        }
    }

    fn insert_at(&mut self, _path: &[u8], dot: Dot, value: u8) {
        self.insert(dot, value);
    }
}

impl<S: PathStore> PathStore for DotMap<u8, S> {
    const DEPTH: usize = S::DEPTH + 1;

    fn dots_under(&self, path: &[u8], out: &mut impl FnMut(Dot)) {
        match path.split_first() {
            None => self.dots(out),
            Some((key, rest)) => {
                if let Some(store) = self.get(key) {
                    store.dots_under(rest, out);
                }
            }
        }
    }

    fn retain_under(&mut self, path: &[u8], keep: &mut impl FnMut(Dot) -> bool) {
        let (keys, rest): (Vec<u8>, &[u8]) = match path.split_first() {
            None => (self.keys().copied().collect(), &[]),
            Some((key, rest)) => (vec![*key], rest),
        };
        for key in keys {
            if let Some(mut store) = self.remove(&key) {
                store.retain_under(rest, keep);
                self.insert(key, store); // left out if now empty
            }
        }
    }

    fn insert_at(&mut self, path: &[u8], dot: Dot, value: u8) {
        let (key, rest) = path.split_first().unwrap_or((&0, &[]));
        let mut store = self.remove(key).unwrap_or_default();
        store.insert_at(rest, dot, value);
        self.insert(*key, store);
    }
}

/// One step of a replicated history over [`Causal`] stores. Replica `i` is
/// actor `i + 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Replica `replica` mints a dot at `path` (with `value`) replacing every
    /// dot it observes there: a register write, a set `add`, a flag enable.
    Write {
        /// Index of the writing replica.
        replica: usize,
        /// Where (one key per map level).
        path: Vec<u8>,
        /// The value, for a leaf that holds values.
        value: u8,
    },
    /// Replica `replica` mints a dot at `path` replacing only its own
    /// observed dots there: a counter increment.
    Bump {
        /// Index of the writing replica.
        replica: usize,
        /// Where (one key per map level).
        path: Vec<u8>,
        /// The value, for a leaf that holds values.
        value: u8,
    },
    /// Replica `replica` drops every dot it observes under `path` (a prefix
    /// of a leaf path: a key at any level, or everything): a set `remove`, a
    /// flag disable, a map key removal. Concurrent dots it has not seen
    /// survive.
    Remove {
        /// Index of the removing replica.
        replica: usize,
        /// What (one key per map level, possibly fewer than the depth).
        path: Vec<u8>,
    },
    /// Replica `to` joins replica `from`'s state.
    Sync {
        /// Whose state is joined.
        from: usize,
        /// Who joins it.
        to: usize,
    },
}

/// A random operation over `replicas` replicas with `keys` keys per map
/// level of `S`; joins are as frequent as writes, removes rarer.
pub fn store_op<S: PathStore>(replicas: usize, keys: u8) -> impl Strategy<Value = StoreOp> {
    let r = 0..replicas.max(1);
    let k = 0..keys.max(1);
    let leaf = prop::collection::vec(k.clone(), S::DEPTH);
    let prefix = prop::collection::vec(k, 0..=S::DEPTH);
    prop_oneof![
        3 => (r.clone(), leaf.clone(), any::<u8>())
            .prop_map(|(replica, path, value)| StoreOp::Write { replica, path, value }),
        1 => (r.clone(), leaf.clone(), any::<u8>())
            .prop_map(|(replica, path, value)| StoreOp::Bump { replica, path, value }),
        1 => (r.clone(), leaf).prop_map(|(replica, path)| StoreOp::Remove { replica, path }),
        1 => (r.clone(), prefix).prop_map(|(replica, path)| StoreOp::Remove { replica, path }),
        4 => (r.clone(), r).prop_map(|(from, to)| StoreOp::Sync { from, to }),
    ]
}

/// Replays `ops` over `replicas` empty states.
pub fn replay<S: PathStore>(replicas: usize, ops: &[StoreOp]) -> Vec<Causal<S>> {
    let mut states = vec![Causal::new(); replicas];
    for op in ops {
        apply(&mut states, op);
    }
    states
}

/// Applies one operation; operations naming a replica out of range are
/// skipped.
pub fn apply<S: PathStore>(states: &mut [Causal<S>], op: &StoreOp) {
    match op {
        StoreOp::Write {
            replica,
            path,
            value,
        } => mutate(states, *replica, path, Some(*value), false),
        StoreOp::Bump {
            replica,
            path,
            value,
        } => mutate(states, *replica, path, Some(*value), true),
        StoreOp::Remove { replica, path } => mutate(states, *replica, path, None, false),
        StoreOp::Sync { from, to } => {
            if from != to && *from < states.len() && *to < states.len() {
                let theirs = states[*from].clone();
                states[*to].join(&theirs);
            }
        }
    }
}

/// Mutates `states[replica]` directly: drops the dots it observes under
/// `path` (only its own, if `own_only`) and, with a `value`, adds a new dot
/// there.
fn mutate<S: PathStore>(
    states: &mut [Causal<S>],
    replica: usize,
    path: &[u8],
    value: Option<u8>,
    own_only: bool,
) {
    let Some(state) = states.get_mut(replica) else {
        return;
    };
    let actor = actor_of(replica);
    let (mut store, mut context) = std::mem::take(state).into_parts();
    store.retain_under(path, &mut |d| own_only && d.actor() != actor);
    if let Some(value) = value {
        let dot = context.next_dot(actor);
        context.insert(dot);
        store.insert_at(path, dot, value);
    }
    *state = Causal::from_parts(store, context)
        .expect("a mutation drops dots and adds one that it puts in the context");
}

/// The actor of replica `replica`.
fn actor_of(replica: usize) -> ActorId {
    ActorId(replica as u64 + 1)
}

/// The delta of a mutation (`Write`, `Bump` or `Remove`) by the replica
/// whose state is `state`: the new dot at its path, under a context of that
/// dot and the dots it removes. `None` for a `Sync`.
///
/// The delta-mutator law: `state ⊔ delta(state, op)` equals `state` after
/// [`apply`] of `op`, as states.
pub fn delta<S: PathStore>(state: &Causal<S>, op: &StoreOp) -> Option<Causal<S>> {
    let (replica, path, value, own_only) = match op {
        StoreOp::Write {
            replica,
            path,
            value,
        } => (*replica, path, Some(*value), false),
        StoreOp::Bump {
            replica,
            path,
            value,
        } => (*replica, path, Some(*value), true),
        StoreOp::Remove { replica, path } => (*replica, path, None, false),
        StoreOp::Sync { .. } => return None,
    };
    let actor = actor_of(replica);
    let mut context = CausalContext::new();
    state.store().dots_under(path, &mut |d| {
        if !own_only || d.actor() == actor {
            context.insert(d);
        }
    });
    let store = match value {
        Some(value) => {
            let dot = state.context().next_dot(actor);
            context.insert(dot);
            S::singleton(path, dot, value)
        }
        None => S::default(),
    };
    Some(
        Causal::from_parts(store, context)
            .expect("a delta holds only its new dot, which is in its context"),
    )
}

/// `n` replicas of one random history of up to `len` operations, with four
/// keys per map level. States drawn together may be joined with each other.
pub fn causal_replicas<S: PathStore>(
    n: usize,
    len: usize,
) -> impl Strategy<Value = Vec<Causal<S>>> {
    prop::collection::vec(store_op::<S>(n, 4), 0..len).prop_map(move |ops| replay(n, &ops))
}
