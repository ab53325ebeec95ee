//! Laws of `CausalContext`: a compact representation of a set of dots.

use std::collections::BTreeSet;

use crdt::{
    CausalContext, Dot, Lattice,
    arbitrary::{causal_context, dot},
};
use proptest::prelude::*;

/// The dots of a context as a plain set (small counters only).
fn dots(c: &CausalContext) -> BTreeSet<Dot> {
    let mut out: BTreeSet<Dot> = c.cloud().collect();
    for (actor, n) in c.version_vector().iter() {
        for k in 1..=n {
            out.insert(Dot::new(actor, k).expect("k >= 1"));
        }
    }
    out
}

proptest! {
    #[test]
    fn join_is_associative_commutative_idempotent(
        a in causal_context(), b in causal_context(), c in causal_context()
    ) {
        prop_assert_eq!(a.clone().joined(&b).joined(&c), a.clone().joined(&b.clone().joined(&c)));
        prop_assert_eq!(a.clone().joined(&b), b.clone().joined(&a));
        prop_assert_eq!(a.clone().joined(&a), a.clone());
        prop_assert_eq!(CausalContext::new().joined(&a), a, "bottom is identity");
    }

    #[test]
    fn join_meet_and_order_are_union_intersection_and_inclusion(
        a in causal_context(), b in causal_context()
    ) {
        let (da, db) = (dots(&a), dots(&b));
        prop_assert_eq!(dots(&a.clone().joined(&b)), &da | &db);
        prop_assert_eq!(dots(&a.meet(&b)), &da & &db);
        prop_assert_eq!(a.leq(&b), da.is_subset(&db));
        for d in da.iter().chain(db.iter()) {
            prop_assert_eq!(a.contains(*d), da.contains(d));
        }
    }

    #[test]
    fn difference_is_set_difference_within_its_limit(
        a in causal_context(), b in causal_context(), limit in 0usize..40
    ) {
        let expected: Vec<Dot> = dots(&a).difference(&dots(&b)).copied().collect();
        match a.difference(&b, limit) {
            Some(got) => prop_assert_eq!(got, expected),
            None => prop_assert!(expected.len() > limit),
        }
    }

    #[test]
    fn equal_sets_have_equal_representations(a in prop::collection::vec(dot(), 0..40)) {
        // built in two different orders, one dot at a time or in bulk
        let mut one = CausalContext::new();
        for d in &a {
            one.insert(*d);
        }
        let mut bulk = CausalContext::new();
        bulk.extend(a.iter().rev().copied());
        prop_assert_eq!(&one, &bulk);
        prop_assert_eq!(rmp_serde::to_vec(&one).expect("encode"), rmp_serde::to_vec(&bulk).expect("encode"));
    }

    #[test]
    fn insert_inflates_and_next_dot_is_unseen(a in causal_context(), d in dot()) {
        let mut b = a.clone();
        let new = b.insert(d);
        prop_assert_eq!(new, !a.contains(d));
        prop_assert!(a.leq(&b) && b.contains(d));
        let next = a.next_dot(d.actor());
        prop_assert!(!a.contains(next));
        prop_assert!(a.cloud().chain(std::iter::once(next)).filter(|x| x.actor() == d.actor()).all(|x| x.counter() <= next.counter()));
    }

    #[test]
    fn encoding_round_trips(a in causal_context()) {
        let bytes = rmp_serde::to_vec(&a).expect("encode");
        prop_assert_eq!(rmp_serde::from_slice::<CausalContext>(&bytes).expect("decode"), a);
    }
}
