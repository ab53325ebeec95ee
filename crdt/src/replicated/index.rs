//! [`DotIndex`]: every dot a replica holds, to its top-level key, grouped
//! by actor; and [`Tombs`], a key's tomb dots, boxed because they are
//! almost always none.

use std::{collections::BTreeMap, ops::Deref, sync::LazyLock};

use serde::{Serialize, Serializer};

use crate::{ActorId, CausalContext, Dot, DotSet, DotStore};

/// Dot → top-level key, per actor and ordered by counter, so that the dots
/// above a digest's prefix are a range walk: what keeps `delta_since`
/// O(delta). The actor is stored once per actor, not once per dot.
#[derive(Debug, Clone)]
pub(super) struct DotIndex<K> {
    by_actor: BTreeMap<ActorId, BTreeMap<u64, K>>,
}

impl<K> Default for DotIndex<K> {
    fn default() -> Self {
        DotIndex {
            by_actor: BTreeMap::new(),
        }
    }
}

impl<K: Clone> DotIndex<K> {
    pub(super) fn insert(&mut self, dot: Dot, key: K) {
        self.by_actor
            .entry(dot.actor())
            .or_default()
            .insert(dot.counter(), key);
    }

    pub(super) fn remove(&mut self, dot: Dot) {
        if let Some(counters) = self.by_actor.get_mut(&dot.actor()) {
            counters.remove(&dot.counter());
            if counters.is_empty() {
                self.by_actor.remove(&dot.actor());
            }
        }
    }

    pub(super) fn get(&self, dot: Dot) -> Option<&K> {
        self.by_actor.get(&dot.actor())?.get(&dot.counter())
    }

    /// The keys of `actor`'s dots with counters in `from..=to`.
    pub(super) fn range(
        &self,
        actor: ActorId,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = (Dot, &K)> + '_ {
        self.by_actor
            .get(&actor)
            .into_iter()
            .flat_map(move |c| c.range(from..=to))
            .filter_map(move |(n, k)| Dot::new(actor, *n).ok().map(|d| (d, k)))
    }
}

static NO_TOMBS: LazyLock<DotSet> = LazyLock::new(DotSet::new);

/// A top-level key's tomb dots: a [`DotSet`] that costs one pointer when
/// empty (the common case). Never holds an empty box, so equality is that of
/// the sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Tombs(Option<Box<DotSet>>);

impl Deref for Tombs {
    type Target = DotSet;

    fn deref(&self) -> &DotSet {
        self.0.as_deref().unwrap_or(&NO_TOMBS)
    }
}

impl From<DotSet> for Tombs {
    fn from(set: DotSet) -> Self {
        Tombs((!set.is_empty()).then(|| Box::new(set)))
    }
}

impl FromIterator<Dot> for Tombs {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        iter.into_iter().collect::<DotSet>().into()
    }
}

impl Tombs {
    /// The join rule of a [`DotSet`].
    pub(crate) fn join(&mut self, mine: &CausalContext, other: &Tombs, theirs: &CausalContext) {
        if self.0.is_none() && other.0.is_none() {
            return;
        }
        let mut set = (**self).clone();
        DotStore::join(&mut set, mine, other, theirs);
        *self = set.into();
    }
}

impl Serialize for Tombs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}
