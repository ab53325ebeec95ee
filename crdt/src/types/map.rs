//! Observed-remove maps of any [`Embed`] type, maps of maps included.
//!
//! Semantics: an update of a key applies the value type's operation to what
//! this replica holds under the key. Removing a key removes what this
//! replica has *observed* under it, at every depth, and nothing else: an
//! update made concurrently (a counter increment, a set add, a nested key)
//! survives, and the key reappears holding only that update. So a removed
//! counter that is concurrently incremented comes back with the concurrent
//! increment only (the "reset-remove" of Riak DT maps), unless the
//! incrementing actor's own earlier entry was among what the removal
//! observed: an increment replaces its actor's entry with the actor's new
//! running total, so the counter comes back with that whole total; a
//! removed set comes back with the concurrent adds only.

use std::{collections::BTreeMap, fmt, marker::PhantomData};

use crate::{ActorId, Dot, DotMap, DotStore, Effect, Embed, Replicated};

/// An operation on a [`MapOf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapOp<K, O> {
    /// Applies the value type's operation under the key (creating it).
    Update(K, O),
    /// Removes what was observed under the key.
    Remove(K),
}

/// A map embedded under a key (a map of maps); see [`Map`] for the top
/// level. Its value: each key holding a dot, read by `T`.
pub struct MapOf<K, T>(PhantomData<fn() -> (K, T)>);

impl<K, T> Embed for MapOf<K, T>
where
    K: Ord + Clone + fmt::Debug,
    T: Embed,
{
    type Store = DotMap<K, T::Store>;
    type Op = MapOp<K, T::Op>;
    type Value = BTreeMap<K, T::Value>;

    fn value(store: &DotMap<K, T::Store>) -> BTreeMap<K, T::Value> {
        store
            .iter()
            .map(|(k, s)| (k.clone(), T::value(s)))
            .collect()
    }

    fn effect(
        store: &DotMap<K, T::Store>,
        actor: ActorId,
        dot: Dot,
        op: MapOp<K, T::Op>,
    ) -> Effect<DotMap<K, T::Store>> {
        match op {
            MapOp::Update(key, op) => {
                let empty = T::Store::default();
                let inner = T::effect(store.get(&key).unwrap_or(&empty), actor, dot, op);
                let add = if inner.add.is_empty() {
                    DotMap::new()
                } else {
                    [(key, inner.add)].into_iter().collect()
                };
                Effect {
                    add,
                    removes: inner.removes,
                }
            }
            MapOp::Remove(key) => {
                let mut removes = Vec::new();
                if let Some(s) = store.get(&key) {
                    s.dots(&mut |d| removes.push(d));
                }
                Effect {
                    add: DotMap::new(),
                    removes,
                }
            }
        }
    }
}

/// A replicated observed-remove map from `K` to any [`Embed`] type `T`,
/// synced in O(delta): each key is a top-level key of the replica. Update a
/// key with [`apply`](Replicated::apply), read it with
/// [`get`](Replicated::get), remove it with [`remove`](Replicated::remove)
/// (see the [module docs](self) for what a remove does to a concurrent
/// update).
///
/// ```
/// use crdt::{ActorId, Count, DeltaCrdt, Map, MapOf, MapOp, PosNeg};
///
/// // Per tenant, a budget; per tenant and route, a nested map of budgets.
/// let mut a: Map<String, PosNeg> = Map::new(ActorId(1));
/// let mut b: Map<String, PosNeg> = Map::new(ActorId(2));
/// a.apply("acme".into(), Count::Up(100));
/// b.join_delta(a.delta_since(&b.digest()).expect("news"));
/// a.apply("acme".into(), Count::Down(1));
/// b.apply("acme".into(), Count::Down(2)); // concurrent: both count
/// a.join_delta(b.delta_since(&a.digest()).expect("news"));
/// assert_eq!(a.get(&"acme".to_string()), Some(97));
///
/// let mut routes: Map<String, MapOf<String, PosNeg>> = Map::new(ActorId(1));
/// routes.apply("acme".into(), MapOp::Update("/login".into(), Count::Up(5)));
/// assert_eq!(routes.get(&"acme".to_string()).map(|m| m["/login"]), Some(5));
/// ```
pub type Map<K, T> = Replicated<K, T>;
