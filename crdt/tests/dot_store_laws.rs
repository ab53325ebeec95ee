//! The causal dot stores (`crdt::dot_store`): the join rule on hand-made
//! cases, and the lattice laws of `Causal<S>` on reachable states of three
//! shapes — a dot set, a dot fun, and a map of maps of dot funs.
//!
//! The hand-made cases always run. The property tests need the strategies
//! of the `proptest` feature: `cargo test -p crdt --features proptest`.
//! They use a fixed seed and no failure persistence, so every run checks the
//! same cases; a shrunk failure becomes a named test below.

use crdt::{
    ActorId, CausalContext, Dot, InvariantError, Lattice,
    dot_store::{Causal, DotFun, DotMap, DotSet, DotStore},
};

/// An add-wins set of `u8` elements.
type AwSet = DotMap<u8, DotSet>;
/// A map of maps of registers, two levels of nesting.
type Nested = DotMap<u8, DotMap<u8, DotFun<u8>>>;

fn dot(actor: u64, counter: u64) -> Dot {
    Dot::new(ActorId(actor), counter).expect("non-zero counter")
}

fn ctx(dots: &[Dot]) -> CausalContext {
    let mut c = CausalContext::new();
    c.extend(dots.iter().copied());
    c
}

/// A delta (or a state): `store` under a context of `seen`.
fn causal<S: DotStore>(store: S, seen: &[Dot]) -> Causal<S> {
    Causal::from_parts(store, ctx(seen)).expect("the test's dots are in its context")
}

fn aw(elems: &[(u8, &[Dot])]) -> AwSet {
    elems
        .iter()
        .map(|(e, dots)| (*e, dots.iter().copied().collect()))
        .collect()
}

fn nested(writes: &[(u8, u8, Dot, u8)]) -> Nested {
    let mut out = Nested::new();
    for &(k1, k2, d, v) in writes {
        let mut inner = out.get(&k1).cloned().unwrap_or_default();
        let mut leaf = inner.get(&k2).cloned().unwrap_or_default();
        leaf.insert(d, v);
        inner.insert(k2, leaf);
        out.insert(k1, inner);
    }
    out
}

fn join_both_ways<S: DotStore + std::fmt::Debug>(a: &Causal<S>, b: &Causal<S>) -> Causal<S> {
    let ab = a.clone().joined(b);
    assert_eq!(ab, b.clone().joined(a), "join is commutative here");
    ab
}

#[test]
fn a_concurrent_add_survives_a_remove_that_did_not_observe_it() {
    // a adds 1 (a1) and then removes it; b adds 1 (b1) concurrently.
    let a1 = dot(1, 1);
    let b1 = dot(2, 1);
    let mut a = causal(aw(&[(1, &[a1])]), &[a1]);
    a.join(&causal(AwSet::new(), &[a1])); // remove: drops the observed a1
    assert!(a.store().is_empty());
    let b = causal(aw(&[(1, &[b1])]), &[b1]);

    let ab = join_both_ways(&a, &b);
    assert_eq!(ab, causal(aw(&[(1, &[b1])]), &[a1, b1]));
}

#[test]
fn an_observed_dot_removed_by_the_other_side_is_dropped() {
    // a adds 1 (a1); b joins a; a removes 1. b still holds a1, but a has
    // seen it and no longer holds it: the removal wins.
    let a1 = dot(1, 1);
    let mut a = causal(aw(&[(1, &[a1])]), &[a1]);
    let b = a.clone();
    a.join(&causal(AwSet::new(), &[a1]));

    let ab = join_both_ways(&a, &b);
    assert!(ab.store().is_empty(), "{ab:?}");
    assert!(!ab.store().contains_key(&1));
    assert_eq!(ab, a);
}

#[test]
fn a_dot_both_hold_survives_even_if_both_have_seen_it() {
    let a1 = dot(1, 1);
    let b1 = dot(2, 1);
    let a = causal(aw(&[(1, &[a1])]), &[a1, b1]);
    let b = causal(aw(&[(1, &[a1]), (2, &[b1])]), &[a1, b1]);
    // b1 is held by b and seen (and so removed) by a: dropped. a1 is held by
    // both: kept.
    assert_eq!(join_both_ways(&a, &b), a);
}

#[test]
fn a_nested_map_key_whose_stores_all_emptied_disappears() {
    // a writes (0, 0) and (0, 1) and (1, 0); b joins a, then removes both
    // leaves under 0, one by one; a writes nothing new under 0.
    let (a1, a2, a3) = (dot(1, 1), dot(1, 2), dot(1, 3));
    let a = causal(
        nested(&[(0, 0, a1, 10), (0, 1, a2, 11), (1, 0, a3, 12)]),
        &[a1, a2, a3],
    );
    let mut b = a.clone();
    b.join(&causal(Nested::new(), &[a1])); // remove leaf (0, 0)
    assert_eq!(
        b.store()
            .get(&0)
            .map(|m| m.keys().copied().collect::<Vec<_>>()),
        Some(vec![1])
    );
    b.join(&causal(Nested::new(), &[a2])); // remove leaf (0, 1)
    assert!(
        !b.store().contains_key(&0),
        "the emptied outer key is dropped"
    );

    let ab = join_both_ways(&a, &b);
    assert_eq!(ab.store().keys().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(ab, b);
}

#[test]
fn a_concurrent_update_inside_a_removed_nested_map_survives() {
    // a writes (0, 0); b joins a; a removes outer key 0 (observing a1); b
    // writes (0, 1) concurrently. Only b's write is left, under key 0.
    let (a1, b1) = (dot(1, 1), dot(2, 1));
    let mut a = causal(nested(&[(0, 0, a1, 5)]), &[a1]);
    let mut b = a.clone();
    a.join(&causal(Nested::new(), &[a1]));
    assert!(a.store().is_empty());
    b.join(&causal(nested(&[(0, 1, b1, 7)]), &[b1]));

    let ab = join_both_ways(&a, &b);
    assert_eq!(ab, causal(nested(&[(0, 1, b1, 7)]), &[a1, b1]));
}

#[test]
fn a_register_write_replaces_what_it_observed_and_keeps_concurrent_writes() {
    // Multi-value register as a DotFun: a writes 1, b writes 2 concurrently,
    // then a (having joined b) writes 3 observing both.
    let (a1, b1, a2) = (dot(1, 1), dot(2, 1), dot(1, 2));
    let a = causal([(a1, 1u8)].into_iter().collect::<DotFun<u8>>(), &[a1]);
    let b = causal([(b1, 2u8)].into_iter().collect::<DotFun<u8>>(), &[b1]);
    let mut ab = join_both_ways(&a, &b);
    assert_eq!(ab.store().values().copied().collect::<Vec<_>>(), vec![1, 2]);
    ab.join(&causal([(a2, 3u8)].into_iter().collect(), &[a1, b1, a2]));
    assert_eq!(ab.store().iter().collect::<Vec<_>>(), vec![(a2, &3)]);
    // b, which has not seen a2, learns it and drops its own observed write.
    assert_eq!(join_both_ways(&b, &ab), ab);
}

#[test]
fn the_context_of_a_join_is_the_union() {
    let (a1, a2, b3) = (dot(1, 1), dot(1, 2), dot(2, 3));
    let a = causal(DotSet::new(), &[a1, a2]);
    let b = causal(std::iter::once(b3).collect::<DotSet>(), &[a1, b3]);
    let ab = join_both_ways(&a, &b);
    assert_eq!(ab.context(), &ctx(&[a1, a2, b3]));
    assert_eq!(ab.store().iter().collect::<Vec<_>>(), vec![b3]);
}

#[test]
fn decoding_rejects_a_store_dot_outside_its_context_without_panicking() {
    let (a1, a2) = (dot(1, 1), dot(1, 2));
    // A nested register two levels down, whose dot the context lacks.
    let bytes = rmp_serde::to_vec(&(nested(&[(3, 4, a2, 9)]), ctx(&[a1]))).expect("encode");
    let err = rmp_serde::from_slice::<Causal<Nested>>(&bytes).expect_err("invalid");
    assert!(err.to_string().contains("1:2"), "{err}");
    assert_eq!(
        Causal::from_parts(nested(&[(3, 4, a2, 9)]), ctx(&[a1])),
        Err(InvariantError::DotNotInContext {
            actor: 1,
            counter: 2
        })
    );
    // The same dot under two keys names two events: rejected too.
    let bytes =
        rmp_serde::to_vec(&(nested(&[(0, 0, a1, 1), (1, 0, a1, 1)]), ctx(&[a1]))).expect("encode");
    assert!(rmp_serde::from_slice::<Causal<Nested>>(&bytes).is_err());
    // An empty nested store is not canonical.
    let bytes = rmp_serde::to_vec(&(vec![(0u8, Vec::<(u8, Vec<(Dot, u8)>)>::new())], ctx(&[])))
        .expect("encode");
    assert!(rmp_serde::from_slice::<Causal<Nested>>(&bytes).is_err());
}

#[cfg(feature = "proptest")]
mod laws {
    use std::fmt::Debug;

    use crdt::dot_store::arbitrary::{PathStore, StoreOp, apply, causal_replicas, delta, store_op};
    use proptest::{
        prelude::*,
        test_runner::{RngAlgorithm, RngSeed},
    };
    use serde::{Serialize, de::DeserializeOwned};

    use super::*;

    /// Replicas per generated history, and its longest length.
    const REPLICAS: usize = 3;
    const OPS: usize = 64;

    /// A fixed seed and no persistence: every run checks the same cases.
    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 256,
            rng_algorithm: RngAlgorithm::ChaCha,
            rng_seed: RngSeed::Fixed(0x13_d075),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    fn join_laws<S: DotStore + Debug>(states: &[Causal<S>]) -> Result<(), TestCaseError> {
        let (a, b, c) = (&states[0], &states[1], &states[2]);
        prop_assert_eq!(&a.clone().joined(a), a, "idempotent");
        let ab = a.clone().joined(b);
        prop_assert_eq!(&ab, &b.clone().joined(a), "commutative");
        prop_assert_eq!(
            ab.clone().joined(c),
            a.clone().joined(&b.clone().joined(c)),
            "associative"
        );
        prop_assert_eq!(&ab.clone().joined(a), &ab, "a ⊔ b absorbs a");
        prop_assert_eq!(&ab.clone().joined(b), &ab, "a ⊔ b absorbs b");
        prop_assert_eq!(&a.clone().joined(&ab), &ab, "a ⊔ (a ⊔ b) = a ⊔ b");
        prop_assert!(a.leq(&ab) && b.leq(&ab));
        let bottom = Causal::<S>::new();
        prop_assert_eq!(&bottom.clone().joined(a), a, "bottom is an identity");
        prop_assert_eq!(&a.clone().joined(&bottom), a, "bottom is an identity");
        prop_assert_eq!(ab.validate(), Ok(()));
        Ok(())
    }

    fn valid_and_round_trip<S>(states: &[Causal<S>]) -> Result<(), TestCaseError>
    where
        S: DotStore + Debug + Serialize + DeserializeOwned,
    {
        for s in states {
            prop_assert_eq!(s.validate(), Ok(()));
            let bytes = rmp_serde::to_vec(s).expect("encode");
            let back: Causal<S> = rmp_serde::from_slice(&bytes).expect("decode");
            prop_assert_eq!(&back, s);
            prop_assert_eq!(rmp_serde::to_vec(&back).expect("encode"), bytes);
        }
        Ok(())
    }

    fn history<S: PathStore>() -> impl Strategy<Value = Vec<StoreOp>> {
        prop::collection::vec(store_op::<S>(REPLICAS, 4), 0..OPS)
    }

    /// Every step of a history leaves each replica at or above where it was,
    /// and every mutation equals the join of its delta (the delta-mutator
    /// law, as states).
    fn steps_inflate_and_match_deltas<S: PathStore>(ops: &[StoreOp]) -> Result<(), TestCaseError> {
        let mut states = vec![Causal::<S>::new(); REPLICAS];
        for op in ops {
            let before = states.clone();
            apply(&mut states, op);
            for (old, new) in before.iter().zip(&states) {
                prop_assert!(old.leq(new), "{:?} deflated a replica", op);
            }
            let replica = match op {
                StoreOp::Write { replica, .. }
                | StoreOp::Bump { replica, .. }
                | StoreOp::Remove { replica, .. } => *replica,
                StoreOp::Sync { .. } => continue,
            };
            let d = delta(&before[replica], op).expect("a mutation has a delta");
            prop_assert_eq!(
                &before[replica].clone().joined(&d),
                &states[replica],
                "{:?}",
                op
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn dot_set_join_laws(states in causal_replicas::<DotSet>(REPLICAS, OPS)) {
            join_laws(&states)?;
        }

        #[test]
        fn dot_fun_join_laws(states in causal_replicas::<DotFun<u8>>(REPLICAS, OPS)) {
            join_laws(&states)?;
        }

        #[test]
        fn nested_map_join_laws(states in causal_replicas::<Nested>(REPLICAS, OPS)) {
            join_laws(&states)?;
        }

        #[test]
        fn dot_set_states_are_valid_and_round_trip(states in causal_replicas::<DotSet>(REPLICAS, OPS)) {
            valid_and_round_trip(&states)?;
        }

        #[test]
        fn dot_fun_states_are_valid_and_round_trip(states in causal_replicas::<DotFun<u8>>(REPLICAS, OPS)) {
            valid_and_round_trip(&states)?;
        }

        #[test]
        fn nested_map_states_are_valid_and_round_trip(states in causal_replicas::<Nested>(REPLICAS, OPS)) {
            valid_and_round_trip(&states)?;
        }

        #[test]
        fn dot_set_steps_inflate_and_mutations_match_their_deltas(ops in history::<DotSet>()) {
            steps_inflate_and_match_deltas::<DotSet>(&ops)?;
        }

        #[test]
        fn dot_fun_steps_inflate_and_mutations_match_their_deltas(ops in history::<DotFun<u8>>()) {
            steps_inflate_and_match_deltas::<DotFun<u8>>(&ops)?;
        }

        #[test]
        fn nested_map_steps_inflate_and_mutations_match_their_deltas(ops in history::<Nested>()) {
            steps_inflate_and_match_deltas::<Nested>(&ops)?;
        }
    }
}
