//! Causal dot stores: the one core every replicated type of the palette is
//! built on, after Almeida, Shoker & Baquero, "Delta State Replicated Data
//! Types" (2018), and the executable model `proofs/models/dotstore_model.py`.
//!
//! A *dot store* holds dots (events, see [`Dot`]), possibly with a value per
//! dot or nested under keys; it always lives under a [`CausalContext`], the
//! set of every dot its replica has seen. Three stores compose into every
//! shape:
//!
//! * [`DotSet`]: a set of dots (the elements of an add-wins set, the
//!   enabling events of a flag);
//! * [`DotFun<V>`](DotFun): dot → value (register writes, a counter's
//!   per-actor entries);
//! * [`DotMap<K, S>`](DotMap): key → nested dot store (observed-remove maps
//!   of any of them, maps of maps included).
//!
//! # The join rule
//!
//! One rule for every store and every nesting: **a dot survives a join if
//! both sides hold it, or if one side holds it and the other side's context
//! has not seen it.** A dot one side has seen but no longer holds was removed
//! there, and the removal wins over the copy that did not observe it; a dot
//! one side has never seen is news and is kept. A [`DotMap`] applies the rule
//! key by key over the union of both sides' keys and drops every key whose
//! nested store ends up empty, so a map holds no empty store and equal
//! states have equal representations.
//!
//! # One context per top-level replica
//!
//! The context is never kept per nested value: a replica has exactly one
//! [`CausalContext`], and [`DotStore::join`] passes the same two top-level
//! contexts down to every key of every level. [`Causal`] is that top-level
//! pair `(store, context)` and the lattice the rest of the crate sees; its
//! invariant is `dots(store) ⊆ context`, with every dot in one place only.
//!
//! # Mutators
//!
//! A type is a set of mutators over this core, each choosing which observed
//! dots it removes and which dot it adds (an add-wins set's `add` replaces the
//! element's observed dots with a new one, its `remove` drops them; a counter
//! increment replaces the actor's own entry; a map key removal drops every
//! dot observed under the key). A mutation is a delta [`Causal`] — the new
//! dot at its path, and a context of the new dot plus the removed ones —
//! joined into the state.
//!
//! # The delta layer
//!
//! [`Replicated`](crate::Replicated) sits on this core exactly as in the
//! model: tomb dots per top-level key, `delta_since` through a dot index in
//! O(delta), purge with a frontier that travels with every answer and drops
//! the tombs it covers; the palette's types ([`crate::types`]) are its
//! instances.
//!
//! # Representation
//!
//! Leaf stores are sorted vectors with room for one entry inline (most hold
//! one dot), a [`DotMap`] an ordered map (`BTreeMap`); all encode as sorted
//! sequences, so equal states encode to equal bytes; decoding rejects
//! unsorted or duplicate entries and, in a [`DotMap`], keys with an empty
//! store. Whether the dots fit the context is a question for the [`Causal`]
//! decoder, which checks it (see [`Causal::validate`]). A [`DotSet`] of many
//! dots per actor could later be compressed per actor, as a
//! [`CausalContext`] is.

#[cfg(feature = "proptest")]
pub mod arbitrary;
mod causal;
mod dot_fun;
mod dot_map;
mod dot_set;

pub use causal::Causal;
pub use dot_fun::DotFun;
pub use dot_map::DotMap;
pub use dot_set::DotSet;

use crate::{CausalContext, Dot};

/// A store of dots under a causal context (see the [module docs](self)).
///
/// Implementors MUST:
///
/// * make [`join`](DotStore::join) apply the join rule: after the call `self`
///   holds exactly the dots that both sides held, plus the dots of one side
///   that the other side's context does not contain (for nested stores, at
///   the same position); a nested store that ends up empty is dropped;
/// * make `Default` the empty store, with [`is_empty`](DotStore::is_empty)
///   true exactly when [`dots`](DotStore::dots) reports no dot;
/// * report from [`dots`](DotStore::dots) every dot they hold, once per place
///   it is held (so a dot wrongly held under two keys is reported twice).
///
/// Joins are infallible. They assume what every reachable state satisfies
/// and [`Causal`]'s decoder checks: each side's dots are in its own context,
/// and a dot names one event, so the same dot never carries two different
/// values or sits under two keys. When two sides hold the same dot with
/// different values anyway (an actor reused a dot, which the crate forbids:
/// see [`ActorId`](crate::ActorId)), the join keeps *mine* (`self`'s); such a
/// join is deterministic but no longer commutative. Decoding rejects a dot
/// held twice within one state; two states that each decode cannot be
/// checked against each other.
pub trait DotStore: Clone + PartialEq + Default {
    /// Whether the store holds no dot.
    fn is_empty(&self) -> bool;

    /// Calls `out` with every dot the store holds, each once (in ascending
    /// order for a leaf; a map reports its keys in ascending order).
    fn dots(&self, out: &mut impl FnMut(Dot));

    /// Replaces `self` with the join of `self` (under `my_context`) and
    /// `other` (under `their_context`).
    ///
    /// The contexts are those of the top-level replicas the two stores belong
    /// to, whatever the nesting depth of the store being joined: a nested
    /// store has no context of its own. The caller joins the contexts
    /// afterwards (see [`Causal`]); `my_context` must still be `self`'s
    /// context from before this join.
    fn join(&mut self, my_context: &CausalContext, other: &Self, their_context: &CausalContext);

    /// The number of dots held, at every depth.
    fn dot_count(&self) -> usize {
        let mut n = 0;
        self.dots(&mut |_| n += 1);
        n
    }
}
