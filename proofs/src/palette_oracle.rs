//! An oracle for every type of the palette, computed from the history of
//! operations alone: the `oracle` of `proofs/models/dotstore_model.py`.
//!
//! Every mutation is an event: the dot it minted (with the one-dot store it
//! added, which says where the dot sits and what it holds), its scope (what
//! part of its top-level key it removes of what its replica had observed),
//! and the context its replica had right after it. A minted dot survives
//! unless another event under the same top-level key had seen it and holds
//! it within its scope. What a replica holds under a key once every event
//! has reached it is exactly the union of the surviving minted stores;
//! replicas must hold that store, and read what the type's specification
//! ([`Spec::read`]) reads from it.
//!
//! A removal that returned no delta (its replica held nothing in its scope)
//! is an event too: it removes what it observed, which must be nothing
//! still held. So a removal that wrongly does nothing is caught.
//!
//! The scopes and reads are the types' semantics, written out once more
//! apart from the mutators: a counter increment removes its actor's own
//! entries, a write (set add, flag, register) every observed dot where it
//! writes, a removal (of a key, at any depth, or of a set element) every
//! observed dot under it; a counter reads the sum of each actor's latest
//! totals, an enable-wins flag is on if any surviving write enabled it, a
//! disable-wins flag if all did, an LWW register reads the surviving write
//! its tiebreak ranks highest, then the higher dot.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet},
    fmt::Debug,
};

use crdt::{
    ActorId, Candidate, CausalContext, DisableWins, Dot, DotFun, DotMap, DotSet, DotStore, Embed,
    EnableWins, GrowOnly, Lattice, Lww, MapOf, MapOp, MultiValue, PosNeg, Presence, SetOf, SetOp,
    Tiebreak, Timestamped, Totals,
    replicated::{Delta, arbitrary::Domain, arbitrary::Mutation},
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// What the oracle knows of a type: the scope of each operation and how a
/// store reads, by the specification.
pub trait Spec: Embed {
    /// What an operation removes of what its replica observed.
    type Scope: Clone + Debug;

    /// The scope of `op`, done by `actor`.
    fn scope(op: &Self::Op, actor: ActorId) -> Self::Scope;

    /// The scope of a removal of the whole top-level key.
    fn everything() -> Self::Scope;

    /// Whether `op` only removes (mints no value): when it returns no delta,
    /// it observed nothing in its scope.
    fn removes_only(op: &Self::Op) -> bool;

    /// Whether `dot`, held in `store`, lies within `scope`.
    fn within(scope: &Self::Scope, store: &Self::Store, dot: Dot) -> bool;

    /// What `store` reads, by the specification.
    fn read(store: &Self::Store) -> Self::Value;
}

/// The scope of an operation on a leaf store (a counter, a set element, a
/// flag, a register).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafScope {
    /// Every observed dot of the leaf.
    All,
    /// The observed dots of one actor (a counter increment).
    Own(ActorId),
}

fn within_leaf(scope: &LeafScope, dot: Dot) -> bool {
    match scope {
        LeafScope::All => true,
        LeafScope::Own(actor) => dot.actor() == *actor,
    }
}

/// Per actor, the value of its highest dot.
fn latest<V>(store: &DotFun<V>) -> BTreeMap<ActorId, &V> {
    let mut out: BTreeMap<ActorId, (Dot, &V)> = BTreeMap::new();
    for (d, v) in store.iter() {
        let e = out.entry(d.actor()).or_insert((d, v));
        if d > e.0 {
            *e = (d, v);
        }
    }
    out.into_iter().map(|(a, (_, v))| (a, v)).collect()
}

macro_rules! leaf_spec {
    ($([$($generics:tt)*] $ty:ty, scope $scope:expr, read $read:expr;)*) => {$(
        impl<$($generics)*> Spec for $ty {
            type Scope = LeafScope;

            fn scope(_op: &Self::Op, actor: ActorId) -> LeafScope {
                let scope: fn(ActorId) -> LeafScope = $scope;
                scope(actor)
            }

            fn everything() -> LeafScope {
                LeafScope::All
            }

            fn removes_only(_op: &Self::Op) -> bool {
                false
            }

            fn within(scope: &LeafScope, _: &Self::Store, dot: Dot) -> bool {
                within_leaf(scope, dot)
            }

            fn read(store: &Self::Store) -> Self::Value {
                let read: fn(&Self::Store) -> Self::Value = $read;
                read(store)
            }
        }
    )*};
}

leaf_spec! {
    [] GrowOnly, scope LeafScope::Own,
        read |s: &DotFun<u64>| latest(s).values().fold(0u64, |a, v| a.saturating_add(**v));
    [] PosNeg, scope LeafScope::Own,
        read |s: &DotFun<Totals>| latest(s)
            .values()
            .map(|t| i128::from(t.up) - i128::from(t.down))
            .sum();
    [] Presence, scope |_| LeafScope::All, read |_: &DotSet| ();
    [] EnableWins, scope |_| LeafScope::All,
        read |s: &DotFun<bool>| s.values().any(|on| *on);
    [] DisableWins, scope |_| LeafScope::All,
        read |s: &DotFun<bool>| !s.is_empty() && s.values().all(|on| *on);
    [V: Clone + PartialEq + Debug] MultiValue<V>, scope |_| LeafScope::All,
        read |s: &DotFun<V>| s.iter().map(|(_, v)| v.clone()).collect();
    [V: Clone + PartialEq + Debug, B: Tiebreak<(), V> + Default] Lww<V, B>,
        scope |_| LeafScope::All, read lww_read::<V, B>;
}

fn lww_read<V: Clone, B: Tiebreak<(), V> + Default>(store: &DotFun<V>) -> Option<V> {
    let tiebreak = B::default();
    let mut best: Option<(Dot, &V)> = None;
    for (d, v) in store.iter() {
        best = match best {
            None => Some((d, v)),
            Some((bd, bv)) => {
                let order = tiebreak.cmp(
                    &(),
                    Candidate { dot: d, value: v },
                    Candidate { dot: bd, value: bv },
                );
                match order {
                    Ordering::Greater => Some((d, v)),
                    Ordering::Equal if d > bd => Some((d, v)),
                    _ => Some((bd, bv)),
                }
            }
        };
    }
    best.map(|(_, v)| v.clone())
}

/// The scope of an operation on a [`SetOf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetScope<E> {
    /// Every element (the set's removal).
    All,
    /// Every observed dot of one element (its add, or its remove).
    Element(E),
}

impl<E: Ord + Clone + Debug> Spec for SetOf<E> {
    type Scope = SetScope<E>;

    fn scope(op: &SetOp<E>, _: ActorId) -> SetScope<E> {
        match op {
            SetOp::Add(e) | SetOp::Remove(e) => SetScope::Element(e.clone()),
        }
    }

    fn everything() -> SetScope<E> {
        SetScope::All
    }

    fn removes_only(op: &SetOp<E>) -> bool {
        matches!(op, SetOp::Remove(_))
    }

    fn within(scope: &SetScope<E>, store: &DotMap<E, DotSet>, dot: Dot) -> bool {
        match scope {
            SetScope::All => true,
            SetScope::Element(e) => store.get(e).is_some_and(|dots| dots.contains(dot)),
        }
    }

    fn read(store: &DotMap<E, DotSet>) -> BTreeSet<E> {
        store.iter().map(|(e, _)| e.clone()).collect()
    }
}

/// The scope of an operation on a [`MapOf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapScope<K, S> {
    /// Every key (the map's removal).
    All,
    /// Every observed dot under one key (its removal).
    Key(K),
    /// The scope of the value's operation under one key (its update).
    Inner(K, S),
}

impl<K: Ord + Clone + Debug, T: Spec> Spec for MapOf<K, T> {
    type Scope = MapScope<K, T::Scope>;

    fn scope(op: &MapOp<K, T::Op>, actor: ActorId) -> Self::Scope {
        match op {
            MapOp::Update(k, op) => MapScope::Inner(k.clone(), T::scope(op, actor)),
            MapOp::Remove(k) => MapScope::Key(k.clone()),
        }
    }

    fn everything() -> Self::Scope {
        MapScope::All
    }

    fn removes_only(op: &MapOp<K, T::Op>) -> bool {
        match op {
            MapOp::Update(_, op) => T::removes_only(op),
            MapOp::Remove(_) => true,
        }
    }

    fn within(scope: &Self::Scope, store: &DotMap<K, T::Store>, dot: Dot) -> bool {
        match scope {
            MapScope::All => true,
            MapScope::Key(k) => store.get(k).is_some_and(|s| holds(s, dot)),
            MapScope::Inner(k, inner) => store.get(k).is_some_and(|s| T::within(inner, s, dot)),
        }
    }

    fn read(store: &DotMap<K, T::Store>) -> BTreeMap<K, T::Value> {
        store.iter().map(|(k, s)| (k.clone(), T::read(s))).collect()
    }
}

fn holds<S: DotStore>(store: &S, dot: Dot) -> bool {
    let mut found = false;
    store.dots(&mut |d| found |= d == dot);
    found
}

/// A register value that carries its write time, for LWW registers under
/// [`LastWriterWins`](crdt::LastWriterWins): concurrent writes are then not
/// ordered by actor, as they are under [`ActorOrder`](crdt::ActorOrder)
/// (which is dot order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamped {
    /// When it was written.
    pub time: u8,
    /// What was written.
    pub value: u8,
}

impl Timestamped for Stamped {
    type Time = u8;

    fn timestamp(&self) -> u8 {
        self.time
    }
}

impl Domain for Stamped {
    fn small() -> BoxedStrategy<Self> {
        (0u8..4, 0u8..4)
            .prop_map(|(time, value)| Stamped { time, value })
            .boxed()
    }
}

/// One event of the history.
#[derive(Debug, Clone)]
pub struct Event<K, T: Spec> {
    /// The top-level key.
    pub key: K,
    /// The dot minted for a value, with the one-dot store it added; `None`
    /// for a removal.
    pub minted: Option<(Dot, T::Store)>,
    /// What the event removes of what its replica observed.
    pub scope: T::Scope,
    /// The replica's context right after the event.
    pub seen: CausalContext,
}

/// The history of a run's mutations.
#[derive(Debug, Clone)]
pub struct PaletteOracle<K, T: Spec> {
    events: Vec<Event<K, T>>,
}

impl<K, T: Spec> Default for PaletteOracle<K, T> {
    fn default() -> Self {
        PaletteOracle { events: Vec::new() }
    }
}

impl<K: Ord + Clone + Debug, T: Spec> PaletteOracle<K, T> {
    /// The oracle of a replay's log.
    pub fn from_log(log: &[Mutation<K, T::Op, T::Store>]) -> Self {
        let mut oracle = Self::default();
        for m in log {
            oracle.record(
                m.key.clone(),
                m.op.as_ref(),
                m.actor,
                m.delta.as_ref(),
                &m.seen,
            );
        }
        oracle
    }

    /// Records a mutation by `actor` under `key` (`op` `None`: the key's
    /// removal) from the delta it returned (`None`: it changed nothing) and
    /// its replica's context right after it. A mutation that changed
    /// nothing is an event only if it is a removal.
    pub fn record(
        &mut self,
        key: K,
        op: Option<&T::Op>,
        actor: ActorId,
        delta: Option<&Delta<K, T::Store>>,
        seen: &CausalContext,
    ) {
        let removal = op.is_none_or(T::removes_only);
        if delta.is_none() && !removal {
            return;
        }
        let mut minted = None;
        for (_, entry) in delta.into_iter().flat_map(|d| d.iter()) {
            let mut dots = Vec::new();
            entry.value().dots(&mut |d| dots.push(d));
            if let [d] = dots[..] {
                minted = Some((d, entry.value().clone()));
            }
        }
        let scope = op.map_or_else(T::everything, |op| T::scope(op, actor));
        self.events.push(Event {
            key,
            minted,
            scope,
            seen: seen.clone(),
        });
    }

    /// Keeps only the events whose replica's context `known` covers: the
    /// history that survived the lost stores (what only a lost replica had
    /// seen is lost with it, and a replica that saw an event passed it on
    /// with everything it had seen).
    pub fn retain_known(&mut self, known: &CausalContext) {
        self.events.retain(|e| e.seen.leq(known));
    }

    /// The events recorded, in order.
    pub fn events(&self) -> &[Event<K, T>] {
        &self.events
    }

    /// Whether a minted dot survives: no other event under its key saw it
    /// and removes it.
    fn survives(&self, key: &K, dot: Dot, store: &T::Store) -> bool {
        !self.events.iter().any(|f| {
            &f.key == key
                && f.minted.as_ref().is_none_or(|(d, _)| *d != dot)
                && f.seen.contains(dot)
                && T::within(&f.scope, store, dot)
        })
    }

    /// What every replica must hold under each key once every event has
    /// reached it: the union of the surviving minted stores.
    pub fn stores(&self) -> BTreeMap<K, T::Store> {
        let none = CausalContext::new();
        let mut out: BTreeMap<K, T::Store> = BTreeMap::new();
        for e in &self.events {
            let Some((dot, store)) = &e.minted else {
                continue;
            };
            if self.survives(&e.key, *dot, store) {
                // under two empty contexts the join rule is the union
                out.entry(e.key.clone())
                    .or_default()
                    .join(&none, store, &none);
            }
        }
        out
    }

    /// What every replica must read under each key that holds a value.
    pub fn read(&self) -> BTreeMap<K, T::Value> {
        self.stores()
            .into_iter()
            .map(|(k, s)| {
                let v = T::read(&s);
                (k, v)
            })
            .collect()
    }
}
