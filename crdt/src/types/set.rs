//! The add-wins observed-remove set: each element holds the dots of the adds
//! that were not removed; a remove drops the dots it observed, so an add
//! concurrent with it survives.

use std::collections::BTreeSet;

use crate::{ActorId, Dot, DotMap, DotSet, DotStore, Effect, Embed, Replicated};

/// An element's presence: the dots of its surviving adds. The value type of
/// [`AWSet`], whose top-level keys are the elements. Operation `()`: add
/// (replacing the observed dots with a new one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presence;

impl Embed for Presence {
    type Store = DotSet;
    type Op = ();
    type Value = ();

    fn value(_: &DotSet) {}

    fn effect(store: &DotSet, _: ActorId, dot: Dot, (): ()) -> Effect<DotSet> {
        Effect {
            add: [dot].into_iter().collect(),
            removes: store.iter().collect(),
        }
    }
}

/// A replicated add-wins set of `E`, synced in O(delta): each element is a
/// top-level key.
///
/// ```
/// use crdt::{ActorId, AWSet, DeltaCrdt};
///
/// let mut a: AWSet<&str> = AWSet::new(ActorId(1));
/// let mut b: AWSet<&str> = AWSet::new(ActorId(2));
/// a.insert("s1");
/// b.join_delta(a.delta_since(&b.digest()).expect("news"));
/// b.remove(&"s1"); // removes the add b has seen...
/// a.insert("s1"); // ...not this concurrent one
/// a.join_delta(b.delta_since(&a.digest()).expect("news"));
/// b.join_delta(a.delta_since(&b.digest()).expect("news"));
/// assert!(a.contains(&"s1") && b.contains(&"s1"));
/// assert_eq!(a, b);
/// ```
pub type AWSet<E> = Replicated<E, Presence>;

impl<E: Ord + Clone> Replicated<E, Presence> {
    /// Adds `element` and returns the delta.
    pub fn insert(&mut self, element: E) -> Option<crate::replicated::Delta<E, DotSet>> {
        self.apply(element, ())
    }

    /// Whether `element` is in the set.
    pub fn contains(&self, element: &E) -> bool {
        self.store(element).is_some()
    }

    /// The elements, ascending (also: [`keys`](Self::keys)).
    pub fn elements(&self) -> impl Iterator<Item = &E> + '_ {
        self.keys()
    }
}

/// An operation on a [`SetOf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOp<E> {
    /// Adds the element.
    Add(E),
    /// Removes what was observed of the element.
    Remove(E),
}

/// An add-wins set embedded under a key (a map of sets); see [`AWSet`] for
/// the top level. Its value is the set of elements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetOf<E>(std::marker::PhantomData<fn() -> E>);

impl<E: Ord + Clone + std::fmt::Debug> Embed for SetOf<E> {
    type Store = DotMap<E, DotSet>;
    type Op = SetOp<E>;
    type Value = BTreeSet<E>;

    fn value(store: &DotMap<E, DotSet>) -> BTreeSet<E> {
        store.keys().cloned().collect()
    }

    fn effect(
        store: &DotMap<E, DotSet>,
        actor: ActorId,
        dot: Dot,
        op: SetOp<E>,
    ) -> Effect<DotMap<E, DotSet>> {
        let (element, add) = match op {
            SetOp::Add(e) => (e, true),
            SetOp::Remove(e) => (e, false),
        };
        let mut removes = Vec::new();
        if let Some(dots) = store.get(&element) {
            dots.dots(&mut |d| removes.push(d));
        }
        if !add {
            return Effect {
                add: DotMap::new(),
                removes,
            };
        }
        let inner = Presence::effect(&DotSet::new(), actor, dot, ());
        Effect {
            add: [(element, inner.add)].into_iter().collect(),
            removes,
        }
    }
}
