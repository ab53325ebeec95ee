//! Causal counters: one dotted entry per actor holding its running total,
//! replaced by each of its increments.
//!
//! An increment by actor `a` removes `a`'s observed entry and adds a new dot
//! with the new total. A peer that has seen the new dot has seen the old one
//! removed, so late, duplicated or dropped answers never count an increment
//! twice or lose one: the value is the sum of the actors' latest totals.

use serde::{Deserialize, Serialize};

use super::{latest_per_actor, own};
use crate::{ActorId, Dot, DotFun, Effect, Embed, Replicated};

/// A grow-only counter embedded under a key (see [`GCounter`] for the top
/// level). Operation: increment by `u64` (0 changes nothing). Totals
/// saturate at `u64::MAX`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrowOnly;

impl Embed for GrowOnly {
    type Store = DotFun<u64>;
    type Op = u64;
    type Value = u64;

    fn value(store: &DotFun<u64>) -> u64 {
        latest_per_actor(store).fold(0u64, |sum, v| sum.saturating_add(*v))
    }

    fn effect(store: &DotFun<u64>, actor: ActorId, dot: Dot, by: u64) -> Effect<DotFun<u64>> {
        if by == 0 {
            return Effect::none();
        }
        let (removes, total) = own(store, actor);
        let total = total.copied().unwrap_or(0).saturating_add(by);
        Effect {
            add: [(dot, total)].into_iter().collect(),
            removes,
        }
    }
}

/// One actor's running totals in a [`PosNeg`] counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Totals {
    /// Everything the actor added.
    pub up: u64,
    /// Everything the actor subtracted.
    pub down: u64,
}

/// An operation on a [`PosNeg`] counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Adds to the counter.
    Up(u64),
    /// Subtracts from the counter.
    Down(u64),
}

/// An increment/decrement counter embedded under a key (see [`PNCounter`]
/// for the top level). Its value is an `i128`: the sum of every actor's
/// `up` minus the sum of every `down`, exactly (each actor's totals saturate
/// at `u64::MAX`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PosNeg;

impl Embed for PosNeg {
    type Store = DotFun<Totals>;
    type Op = Count;
    type Value = i128;

    fn value(store: &DotFun<Totals>) -> i128 {
        latest_per_actor(store).fold(0i128, |sum, t| sum + i128::from(t.up) - i128::from(t.down))
    }

    fn effect(
        store: &DotFun<Totals>,
        actor: ActorId,
        dot: Dot,
        op: Count,
    ) -> Effect<DotFun<Totals>> {
        if matches!(op, Count::Up(0) | Count::Down(0)) {
            return Effect::none();
        }
        let (removes, totals) = own(store, actor);
        let mut totals = totals.copied().unwrap_or_default();
        match op {
            Count::Up(n) => totals.up = totals.up.saturating_add(n),
            Count::Down(n) => totals.down = totals.down.saturating_add(n),
        }
        Effect {
            add: [(dot, totals)].into_iter().collect(),
            removes,
        }
    }
}

/// A replicated grow-only counter.
///
/// ```
/// use crdt::{ActorId, DeltaCrdt, GCounter};
///
/// let mut a = GCounter::new(ActorId(1));
/// let mut b = GCounter::new(ActorId(2));
/// a.increment(3);
/// b.increment(4);
/// let answer = b.delta_since(&a.digest()).expect("news");
/// a.join_delta(answer.clone());
/// a.join_delta(answer); // twice: still counted once
/// assert_eq!(a.value(), 7);
/// ```
pub type GCounter = Replicated<(), GrowOnly>;

impl Replicated<(), GrowOnly> {
    /// Adds `by` and returns the delta; `None` for 0.
    pub fn increment(&mut self, by: u64) -> Option<crate::replicated::Delta<(), DotFun<u64>>> {
        self.apply((), by)
    }

    /// The sum of every actor's increments.
    pub fn value(&self) -> u64 {
        self.get(&()).unwrap_or(0)
    }
}

/// A replicated increment/decrement counter (a rate-limit budget, a gauge
/// of live sessions).
///
/// ```
/// use crdt::{ActorId, DeltaCrdt, PNCounter};
///
/// let mut a = PNCounter::new(ActorId(1));
/// let mut b = PNCounter::new(ActorId(2));
/// a.increment(10);
/// b.decrement(3);
/// a.join_delta(b.delta_since(&a.digest()).expect("news"));
/// assert_eq!(a.value(), 7);
/// ```
pub type PNCounter = Replicated<(), PosNeg>;

impl Replicated<(), PosNeg> {
    /// Adds `by` and returns the delta; `None` for 0.
    pub fn increment(&mut self, by: u64) -> Option<crate::replicated::Delta<(), DotFun<Totals>>> {
        self.apply((), Count::Up(by))
    }

    /// Subtracts `by` and returns the delta; `None` for 0.
    pub fn decrement(&mut self, by: u64) -> Option<crate::replicated::Delta<(), DotFun<Totals>>> {
        self.apply((), Count::Down(by))
    }

    /// Every actor's increments minus every actor's decrements.
    pub fn value(&self) -> i128 {
        self.get(&()).unwrap_or(0)
    }
}
