//! Laws of `ORMap` states: lattice laws of the full-state join, inflation and
//! the δ-mutator law, the `delta_since` law (with and without purges), read
//! determinism and encoding.

use crdt::{
    ActorId, DeltaCrdt, Lattice, ORMap,
    arbitrary::{MapOp, apply, map_op, replay, replicas, stable_context},
};
use proofs::{describe, read, same_data};
use proptest::prelude::*;

type Map = ORMap<u8, u8>;

proptest! {
    #[test]
    fn join_is_associative_commutative_idempotent(r in replicas(3, 60)) {
        let (a, b, c) = (&r[0], &r[1], &r[2]);
        prop_assert_eq!(a.clone().joined(b).joined(c), a.clone().joined(&b.clone().joined(c)));
        prop_assert_eq!(a.clone().joined(b), b.clone().joined(a));
        prop_assert_eq!(a.clone().joined(a), a.clone());
        prop_assert_eq!(Map::new(ActorId(9)).joined(a), a.clone(), "bottom is identity");
        prop_assert_eq!(a.clone().joined(&Map::new(ActorId(9))), a.clone());
    }

    #[test]
    fn reads_do_not_depend_on_join_order(r in replicas(3, 60)) {
        let (a, b, c) = (&r[0], &r[1], &r[2]);
        let x = a.clone().joined(b).joined(c);
        let y = c.clone().joined(b).joined(a);
        let z = b.clone().joined(&c.clone().joined(a));
        prop_assert_eq!(read(&x), read(&y));
        prop_assert_eq!(read(&y), read(&z));
    }

    #[test]
    fn mutators_inflate_and_obey_the_delta_mutator_law(
        r in replicas(3, 60), key in 0u8..8, value: u8, remove: bool
    ) {
        let s = &r[0];
        let mut m = s.clone();
        let delta = if remove { m.remove(&key) } else { Some(m.insert(key, value)) };
        prop_assert!(s.leq(&m), "s ≤ m(s)");
        match delta {
            Some(delta) => {
                // m(s) = s ⊔ mδ(s)
                let mut joined = s.clone();
                joined.join_delta(delta);
                prop_assert_eq!(&joined, &m);
            }
            None => prop_assert_eq!(&m, s, "a remove of nothing changes nothing"),
        }
        if remove {
            prop_assert!(m.get(&key).is_none());
        } else {
            prop_assert_eq!(m.get(&key), Some(&value));
        }
    }

    #[test]
    fn delta_since_law(r in replicas(3, 80)) {
        // a ⊔ b.delta_since(a.digest()) = a ⊔ b, for every ordered pair,
        // including states that went through purges with a replica away.
        for (i, a) in r.iter().enumerate() {
            for (j, b) in r.iter().enumerate() {
                if i == j { continue; }
                let mut pulled = a.clone();
                // A digest that covers every dot still gets the frontier
                // (the sync engine sends `frontier_answer` then).
                if let Some(answer) = b.delta_since(&a.digest()).or_else(|| b.frontier_answer()) {
                    pulled.join_delta(answer);
                }
                let full = a.clone().joined(b);
                let why = || format!(
                    "pair {i} <- {j}\n a:      {}\n b:      {}\n pulled: {}\n full:   {}",
                    describe(a), describe(b), describe(&pulled), describe(&full)
                );
                prop_assert!(same_data(&pulled, &full), "{}", why());
                prop_assert_eq!(read(&pulled), read(&full));
            }
        }
    }

    #[test]
    fn delta_since_law_across_a_purge(
        before in prop::collection::vec(map_op(3, 8), 0..60),
        after in prop::collection::vec(map_op(3, 8), 0..30),
    ) {
        // Replica 2 goes away; the others keep writing and purge without it.
        let mut maps = replay(3, &before);
        for op in &after {
            let op = match *op {
                MapOp::Pull { from, to } if from == 2 || to == 2 => continue,
                MapOp::Purge { replica, .. } => MapOp::Purge { replica, away: Some(2) },
                ref op => op.clone(),
            };
            apply(&mut maps, &op);
        }
        let stable = stable_context(&maps, Some(2));
        maps[0].purge(&stable);
        let away = &maps[2];
        for b in &maps[..2] {
            let mut pulled = away.clone();
            if let Some(answer) = b.delta_since(&away.digest()).or_else(|| b.frontier_answer()) {
                prop_assert!(
                    answer.is_full() || away.digest().covers(b.purge_frontier()),
                    "a digest that predates a purge gets the full state"
                );
                pulled.join_delta(answer);
            }
            let full = away.clone().joined(b);
            prop_assert!(same_data(&pulled, &full), "away <- {}:\n pulled: {}\n full:   {}", b.actor().0, describe(&pulled), describe(&full));
            prop_assert_eq!(read(&pulled), read(&full));
        }
    }

    #[test]
    fn answers_arriving_late_or_twice_are_harmless(r in replicas(3, 60), key in 0u8..8, value: u8) {
        let (mut a, mut b) = (r[0].clone(), r[1].clone());
        let stale = b.delta_since(&a.digest());
        b.insert(key, value);
        let fresh = b.delta_since(&a.digest());
        for answer in [fresh.clone(), stale.clone(), fresh, stale].into_iter().flatten() {
            a.join_delta(answer);
        }
        let full = r[0].clone().joined(&b);
        prop_assert!(same_data(&a, &full), "a: {}\n full: {}", describe(&a), describe(&full));
        prop_assert_eq!(read(&a), read(&full));
    }

    #[test]
    fn touched_keys_are_exactly_the_keys_whose_siblings_changed(r in replicas(3, 80)) {
        for (i, a) in r.iter().enumerate() {
            for (j, b) in r.iter().enumerate() {
                if i == j { continue; }
                let mut after = a.clone();
                let Some(answer) = b.delta_since(&a.digest()) else { continue };
                let changes = after.join_delta(answer);
                let keys: std::collections::BTreeSet<u8> =
                    a.entries().chain(after.entries()).map(|(k, _)| *k).collect();
                let differ: Vec<u8> = keys
                    .into_iter()
                    .filter(|k| a.siblings(k) != after.siblings(k))
                    .collect();
                prop_assert_eq!(changes.touched(), &differ[..]);
                prop_assert!(changes.keys().iter().all(|k| changes.touched().contains(k)));
            }
        }
    }

    #[test]
    fn encoding_round_trips_and_is_canonical(r in replicas(3, 60)) {
        for m in &r {
            let bytes = rmp_serde::to_vec(m).expect("encode");
            let back: Map = rmp_serde::from_slice(&bytes).expect("decode");
            prop_assert_eq!(&back, m);
            prop_assert_eq!(read(&back), read(m));
            prop_assert_eq!(rmp_serde::to_vec(&back).expect("encode"), bytes);
        }
        // a state joined into a fresh replica encodes like the original
        let mut copy = Map::new(r[0].actor());
        copy.join_delta(r[0].state());
        prop_assert_eq!(
            rmp_serde::to_vec(&copy).expect("encode"),
            rmp_serde::to_vec(&r[0]).expect("encode")
        );
    }
}
