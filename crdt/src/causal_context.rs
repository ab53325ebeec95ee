//! [`CausalContext`]: every dot a replica has seen, kept compact.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{ActorId, Dot, InvariantError, Lattice, VersionVector};

/// The set of dots a replica has seen, stored as a version vector (the
/// contiguous prefix per actor) plus a *dot cloud* (dots seen beyond that
/// prefix).
///
/// It is always kept compact: no cloud dot is covered by the version vector
/// or directly extends it, so equal sets have equal representations and
/// encode to equal bytes. Decoding rejects non-compact, unsorted or duplicate
/// input. Join is set union; `Default` (empty) is bottom.
///
/// This is the digest a replica sends when it pulls (see
/// [`DeltaCrdt::digest`](crate::DeltaCrdt::digest)).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "ContextWire", into = "ContextWire")]
pub struct CausalContext {
    vv: VersionVector,
    cloud: BTreeSet<Dot>,
}

impl CausalContext {
    /// The empty context (bottom).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `dot` has been seen.
    pub fn contains(&self, dot: Dot) -> bool {
        self.vv.contains(dot) || self.cloud.contains(&dot)
    }

    /// Records `dot` as seen, compacting as it goes. Returns whether it was new.
    pub fn insert(&mut self, dot: Dot) -> bool {
        let actor = dot.actor();
        let seen = self.vv.get(actor);
        if dot.counter() <= seen {
            return false;
        }
        if dot.counter() > seen.saturating_add(1) {
            return self.cloud.insert(dot);
        }
        // `dot` extends the prefix: absorb it and any cloud dots now contiguous.
        let mut top = dot.counter();
        while top < u64::MAX && self.cloud.remove(&Dot::new_unchecked(actor, top + 1)) {
            top += 1;
        }
        self.vv.observe(actor, top);
        true
    }

    /// Records many dots; cheaper than repeated [`insert`](Self::insert) for
    /// large batches because it compacts once.
    pub fn extend<I: IntoIterator<Item = Dot>>(&mut self, dots: I) {
        for dot in dots {
            if !self.vv.contains(dot) {
                self.cloud.insert(dot);
            }
        }
        self.compact();
    }

    /// The highest counter seen from `actor` (in the prefix or the cloud).
    pub fn max_counter(&self, actor: ActorId) -> u64 {
        let in_cloud = self
            .cloud
            .range(Dot::new_unchecked(actor, 1)..=Dot::new_unchecked(actor, u64::MAX))
            .next_back()
            .map_or(0, Dot::counter);
        self.vv.get(actor).max(in_cloud)
    }

    /// The dot `actor`'s next event must use: one past the highest counter
    /// seen from it. It is not recorded; insert it when the event happens.
    /// (Decoded counters are at most [`MAX_COUNTER`](crate::MAX_COUNTER),
    /// so this cannot overflow unless an actor mints 2^63 events.)
    pub fn next_dot(&self, actor: ActorId) -> Dot {
        Dot::new_unchecked(actor, self.max_counter(actor).saturating_add(1))
    }

    /// The contiguous prefix.
    pub fn version_vector(&self) -> &VersionVector {
        &self.vv
    }

    /// The dots seen beyond the prefix, in ascending order.
    pub fn cloud(&self) -> impl ExactSizeIterator<Item = Dot> + '_ {
        self.cloud.iter().copied()
    }

    /// The actors with at least one dot in this context, ascending, without
    /// duplicates.
    pub fn actors(&self) -> impl Iterator<Item = ActorId> + '_ {
        let mut prefix = self.vv.iter().map(|(a, _)| a).peekable();
        let mut cloud = self.cloud.iter().map(Dot::actor).peekable();
        let mut last = None;
        std::iter::from_fn(move || {
            loop {
                let next = match (prefix.peek(), cloud.peek()) {
                    (None, None) => return None,
                    (Some(&a), None) => {
                        prefix.next();
                        a
                    }
                    (None, Some(&b)) => {
                        cloud.next();
                        b
                    }
                    (Some(&a), Some(&b)) if a <= b => {
                        prefix.next();
                        a
                    }
                    (Some(_), Some(&b)) => {
                        cloud.next();
                        b
                    }
                };
                if last != Some(next) {
                    last = Some(next);
                    return Some(next);
                }
            }
        })
    }

    /// Whether no dot has been seen (bottom).
    pub fn is_empty(&self) -> bool {
        self.vv.is_empty() && self.cloud.is_empty()
    }

    /// Whether every dot at or below `vv` has been seen.
    pub fn covers(&self, vv: &VersionVector) -> bool {
        // Compactness: if our prefix for `a` stops below `c`, the dot right
        // after the prefix is missing (it would have been absorbed).
        vv.iter()
            .all(|(actor, counter)| self.vv.get(actor) >= counter)
    }

    /// The dots of `self` that `other` lacks, ascending, or `None` when there
    /// are more than `limit` of them. Costs O(actors + cloud + limit).
    pub fn difference(&self, other: &CausalContext, limit: usize) -> Option<Vec<Dot>> {
        let mut out = Vec::new();
        for (actor, top) in self.vv.iter() {
            let mut counter = other.vv.get(actor);
            while counter < top {
                counter += 1;
                let dot = Dot::new_unchecked(actor, counter);
                if !other.cloud.contains(&dot) {
                    if out.len() == limit {
                        return None;
                    }
                    out.push(dot);
                }
            }
        }
        for dot in &self.cloud {
            if !other.contains(*dot) {
                if out.len() == limit {
                    return None;
                }
                out.push(*dot);
            }
        }
        out.sort_unstable();
        Some(out)
    }

    /// The dots both contexts have seen (the greatest lower bound). The
    /// stable context of a group of replicas is the meet of their contexts.
    #[must_use]
    pub fn meet(&self, other: &Self) -> Self {
        let mut out = CausalContext {
            vv: self.vv.meet(&other.vv),
            cloud: BTreeSet::new(),
        };
        let both = self
            .cloud
            .iter()
            .filter(|d| other.contains(**d))
            // covers dots in our prefix above theirs that they hold in their cloud
            .chain(other.cloud.iter().filter(|d| self.contains(**d)))
            .copied()
            .collect::<Vec<_>>();
        out.extend(both);
        out
    }

    /// Restores compactness after bulk changes to the cloud.
    fn compact(&mut self) {
        let vv = &mut self.vv;
        self.cloud.retain(|dot| {
            let seen = vv.get(dot.actor());
            if dot.counter() <= seen {
                false
            } else if dot.counter() == seen + 1 {
                vv.observe(dot.actor(), dot.counter());
                false
            } else {
                true
            }
        });
    }
}

impl Lattice for CausalContext {
    fn join(&mut self, other: &Self) {
        self.vv.join(&other.vv);
        if !other.cloud.is_empty() {
            self.cloud.extend(other.cloud.iter().copied());
        }
        self.compact();
    }

    fn leq(&self, other: &Self) -> bool {
        // Compactness makes the prefix check exact: if our prefix for `a`
        // went past theirs, the dot right after theirs is one they lack.
        self.vv.leq(&other.vv) && self.cloud.iter().all(|d| other.contains(*d))
    }
}

/// The encoded form: the prefix and the sorted cloud.
#[derive(Serialize, Deserialize)]
struct ContextWire {
    vv: VersionVector,
    cloud: Vec<Dot>,
}

impl TryFrom<ContextWire> for CausalContext {
    type Error = InvariantError;

    fn try_from(wire: ContextWire) -> Result<Self, Self::Error> {
        if wire.cloud.windows(2).any(|w| w[0] >= w[1]) {
            return Err(InvariantError::NotStrictlyAscending { what: "cloud dots" });
        }
        if let Some(dot) = wire
            .cloud
            .iter()
            .find(|d| d.counter() <= wire.vv.get(d.actor()).saturating_add(1))
        {
            return Err(InvariantError::NotCompact {
                actor: dot.actor().0,
                counter: dot.counter(),
            });
        }
        Ok(CausalContext {
            vv: wire.vv,
            cloud: wire.cloud.into_iter().collect(),
        })
    }
}

impl From<CausalContext> for ContextWire {
    fn from(ctx: CausalContext) -> Self {
        ContextWire {
            vv: ctx.vv,
            cloud: ctx.cloud.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: u64, c: u64) -> Dot {
        Dot::new(ActorId(a), c).expect("non-zero")
    }

    fn ctx(dots: &[(u64, u64)]) -> CausalContext {
        let mut c = CausalContext::new();
        c.extend(dots.iter().map(|&(a, n)| dot(a, n)));
        c
    }

    #[test]
    fn insert_compacts_gaps_as_they_fill() {
        let mut c = CausalContext::new();
        assert!(c.insert(dot(1, 3)));
        assert!(c.insert(dot(1, 2)));
        assert_eq!(c.version_vector().get(ActorId(1)), 0);
        assert_eq!(c.cloud().count(), 2);
        assert!(c.insert(dot(1, 1)));
        assert_eq!(c.version_vector().get(ActorId(1)), 3);
        assert_eq!(c.cloud().count(), 0);
        assert!(!c.insert(dot(1, 2)));
        assert_eq!(c.next_dot(ActorId(1)), dot(1, 4));
    }

    #[test]
    fn next_dot_skips_past_cloud_dots() {
        let c = ctx(&[(1, 1), (1, 5)]);
        assert_eq!(c.next_dot(ActorId(1)), dot(1, 6));
        assert_eq!(c.next_dot(ActorId(2)), dot(2, 1));
    }

    #[test]
    fn join_meet_and_order_are_set_union_intersection_and_inclusion() {
        let a = ctx(&[(1, 1), (1, 2), (1, 4), (2, 7)]);
        let b = ctx(&[(1, 1), (1, 3), (2, 1), (2, 2)]);
        let u = a.clone().joined(&b);
        assert_eq!(
            u,
            ctx(&[(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 7)])
        );
        assert_eq!(u.version_vector().get(ActorId(1)), 4);
        assert_eq!(a.meet(&b), ctx(&[(1, 1)]));
        assert!(a.leq(&u) && b.leq(&u));
        assert!(!a.leq(&b) && !b.leq(&a));
        // a dot in one prefix and the other's cloud is in the meet
        let c = ctx(&[(3, 1), (3, 2), (3, 3)]);
        let d = ctx(&[(3, 3)]);
        assert_eq!(c.meet(&d), d);
    }

    #[test]
    fn difference_lists_missing_dots_up_to_a_limit() {
        let a = ctx(&[(1, 1), (1, 2), (1, 3), (1, 7), (2, 1)]);
        let b = ctx(&[(1, 1), (1, 3), (2, 1), (2, 2)]);
        assert_eq!(a.difference(&b, 10), Some(vec![dot(1, 2), dot(1, 7)]));
        assert_eq!(a.difference(&b, 1), None);
        assert_eq!(b.difference(&a, 10), Some(vec![dot(2, 2)]));
        assert_eq!(a.difference(&a, 0), Some(vec![]));
        // a huge gap is cut short, not enumerated
        let big = ctx(&[(3, 1)]).joined(&{
            let mut c = CausalContext::new();
            for i in 1..=1_000_000 {
                c.insert(dot(4, i));
            }
            c
        });
        assert_eq!(big.difference(&CausalContext::new(), 16), None);
    }

    #[test]
    fn covers_and_actors() {
        let c = ctx(&[(1, 1), (1, 2), (2, 5)]);
        assert!(c.covers(&[(ActorId(1), 2)].into_iter().collect()));
        assert!(!c.covers(&[(ActorId(2), 5)].into_iter().collect()));
        assert_eq!(c.actors().collect::<Vec<_>>(), vec![ActorId(1), ActorId(2)]);
    }

    #[test]
    fn decoding_rejects_non_compact_and_unsorted_clouds() {
        let vv: VersionVector = [(ActorId(1), 2)].into_iter().collect();
        for cloud in [
            vec![dot(1, 3)],            // extends the prefix
            vec![dot(1, 2)],            // covered by the prefix
            vec![dot(1, 9), dot(1, 5)], // unsorted
            vec![dot(1, 5), dot(1, 5)], // duplicate
        ] {
            let bytes = rmp_serde::to_vec(&ContextWire {
                vv: vv.clone(),
                cloud: cloud.clone(),
            })
            .expect("encode");
            assert!(
                rmp_serde::from_slice::<CausalContext>(&bytes).is_err(),
                "{cloud:?}"
            );
        }
        let good = ctx(&[(1, 1), (1, 2), (1, 5), (4, 2)]);
        let bytes = rmp_serde::to_vec(&good).expect("encode");
        assert_eq!(
            rmp_serde::from_slice::<CausalContext>(&bytes).expect("decode"),
            good
        );
    }
}
