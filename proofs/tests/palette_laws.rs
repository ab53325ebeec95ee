//! Laws of every palette type (`crdt::types`), at the top level and in maps
//! nested two levels deep, on states reached by random histories
//! (`crdt::replicated::arbitrary`): the lattice laws of the full-state join,
//! mutators inflate and obey the δ-mutator law, the `delta_since` law as
//! exact state equality (also across purges with a replica away), canonical
//! encoding round trips, and decoding of random or mutated bytes never
//! panics.
//!
//! A fixed seed and no failure persistence: every run checks the same
//! cases (`PROPTEST_CASES` sets how many); a shrunk failure becomes a named
//! regression test (`palette_regressions.rs`).

use std::collections::BTreeSet;

use crdt::{
    ActorId, CausalContext, DeltaCrdt, DisableWins, Dot, EnableWins, GrowOnly, LastWriterWins,
    Lattice, Lww, MapOf, MultiValue, PosNeg, Presence, Replicated, Rows, SetOf,
    replicated::{
        Delta,
        arbitrary::{ArbitraryEmbed, Domain, Step, history, replay, replicas},
    },
};
use proofs::{
    mutation::{Mutation, mutate, mutation},
    palette_oracle::Stamped,
};
use proptest::prelude::*;
use serde::{Serialize, de::DeserializeOwned};

/// Cases per property unless `PROPTEST_CASES` says otherwise; a fixed seed
/// and no persistence.
fn config() -> ProptestConfig {
    proofs::config::seeded(48, 0x13_4a11)
}

/// What the laws need of a palette type: drawable operations, an
/// encodable store.
trait Palette: ArbitraryEmbed<Store: Serialize + DeserializeOwned + Send> {}

impl<T: ArbitraryEmbed<Store: Serialize + DeserializeOwned + Send>> Palette for T {}

/// Keys: small, encodable.
trait Key: Domain + Serialize + DeserializeOwned + Send {}

impl<K: Domain + Serialize + DeserializeOwned + Send> Key for K {}

fn encode<T: Serialize>(t: &T) -> Vec<u8> {
    rmp_serde::to_vec(t).expect("encoding to a Vec cannot fail")
}

/// `to` pulls from `from`: the answer, or the frontier alone.
fn answer<K: Key, T: Palette>(
    from: &Replicated<K, T>,
    to: &Replicated<K, T>,
) -> Option<Delta<K, T::Store>> {
    from.delta_since(&to.digest())
        .or_else(|| from.frontier_answer())
}

fn pulled<K: Key, T: Palette>(to: &Replicated<K, T>, from: &Replicated<K, T>) -> Replicated<K, T> {
    let mut to = to.clone();
    if let Some(a) = answer(from, &to) {
        to.join_delta(a);
    }
    to
}

fn join_laws<K: Key, T: Palette>(r: &[Replicated<K, T>]) -> Result<(), TestCaseError> {
    let (a, b, c) = (&r[0], &r[1], &r[2]);
    prop_assert_eq!(&a.clone().joined(a), a, "idempotent");
    let ab = a.clone().joined(b);
    prop_assert_eq!(&ab, &b.clone().joined(a), "commutative");
    prop_assert_eq!(
        ab.clone().joined(c),
        a.clone().joined(&b.clone().joined(c)),
        "associative"
    );
    prop_assert_eq!(&ab.clone().joined(a), &ab, "a ⊔ b absorbs a");
    prop_assert!(a.leq(&ab) && b.leq(&ab));
    let bottom = Replicated::<K, T>::new(ActorId(99));
    prop_assert_eq!(&bottom.clone().joined(a), a, "bottom is an identity");
    prop_assert_eq!(&a.clone().joined(&bottom), a, "bottom is an identity");
    Ok(())
}

fn mutator_laws<K: Key, T: Palette>(
    r: &[Replicated<K, T>],
    key: K,
    op: Option<T::Op>,
) -> Result<(), TestCaseError> {
    for s in r {
        let mut m = s.clone();
        let delta = match op.clone() {
            Some(op) => m.apply(key.clone(), op),
            None => m.remove(&key),
        };
        prop_assert!(s.leq(&m), "s ≤ m(s)");
        prop_assert_eq!(&s.clone().joined(&m), &m);
        match delta {
            Some(delta) => {
                // m(s) = s ⊔ mδ(s), as states
                prop_assert!(m != *s, "a mutator that returns a delta changes the state");
                let mut joined = s.clone();
                joined.join_delta(delta.clone());
                prop_assert_eq!(&joined, &m);
                // and the delta is news to s only once
                joined.join_delta(delta);
                prop_assert_eq!(&joined, &m);
            }
            None => prop_assert_eq!(&m, s, "a mutator without a delta changes nothing"),
        }
    }
    Ok(())
}

fn delta_since_law<K: Key, T: Palette>(r: &[Replicated<K, T>]) -> Result<(), TestCaseError> {
    for (i, a) in r.iter().enumerate() {
        for (j, b) in r.iter().enumerate() {
            if i == j {
                continue;
            }
            let full = a.clone().joined(b);
            prop_assert_eq!(pulled(a, b), full, "pair {} <- {}", i, j);
        }
    }
    Ok(())
}

/// Answers that arrive late (after both sides changed) or twice leave the
/// requester at `a ⊔ b`, exactly.
fn late_and_duplicated_answers<K: Key, T: Palette>(
    r: &[Replicated<K, T>],
    (key, b_op): (K, Option<T::Op>),
    (a_key, a_op): (K, Option<T::Op>),
) -> Result<(), TestCaseError> {
    let (mut a, mut b) = (r[0].clone(), r[1].clone());
    let stale = answer(&b, &a);
    for (x, key, op) in [(&mut b, key, b_op), (&mut a, a_key, a_op)] {
        match op {
            Some(op) => x.apply(key, op),
            None => x.remove(&key),
        };
    }
    let fresh = answer(&b, &a);
    let want = a.clone().joined(&b);
    for d in [fresh.clone(), stale.clone(), fresh, stale]
        .into_iter()
        .flatten()
    {
        a.join_delta(d);
    }
    prop_assert_eq!(a, want);
    Ok(())
}

fn delta_since_law_across_a_purge<K: Key, T: Palette>(
    before: &[Step<K, T::Op>],
    after: &[Step<K, T::Op>],
) -> Result<(), TestCaseError> {
    // Replica 2 goes away; the others keep going and purge without it.
    const AWAY: usize = 2;
    let mut h = replay::<K, T>(3, before);
    h.set_away(Some(AWAY));
    for s in after {
        if !matches!(s, Step::Leave { .. } | Step::Return) {
            h.step(s);
        }
    }
    let stable = h.stable_context(None);
    h.replicas[0].purge(&stable);
    let away = &h.replicas[AWAY];
    for b in &h.replicas[..AWAY] {
        if let Some(answer) = answer(b, away) {
            prop_assert!(
                answer.is_full() || away.digest().covers(b.purge_frontier()),
                "a digest that predates a purge gets the full state"
            );
        }
        prop_assert_eq!(pulled(away, b), away.clone().joined(b));
        // and the other way round
        prop_assert_eq!(pulled(b, away), b.clone().joined(away));
    }
    Ok(())
}

fn tomb_dots<K: Key, T: Palette>(r: &Replicated<K, T>) -> BTreeSet<Dot> {
    r.entries().flat_map(|(_, e)| e.tombs().iter()).collect()
}

/// `purge(stable)` drops tomb dots `stable` has seen, and only those; it
/// raises the frontier only to tomb dots it dropped; it changes neither the
/// stores nor the context; and a second purge with the same context, or one
/// with the empty context, drops nothing.
fn purge_laws<K: Key, T: Palette>(
    r: &[Replicated<K, T>],
    members: &[bool],
) -> Result<(), TestCaseError> {
    let digests: Vec<_> = r
        .iter()
        .zip(members)
        .filter(|(_, m)| **m)
        .map(|(x, _)| x.digest())
        .collect();
    let Some((first, rest)) = digests.split_first() else {
        return Ok(());
    };
    let stable = rest.iter().fold(first.clone(), |acc, d| acc.meet(d));
    for x in r {
        let mut y = x.clone();
        prop_assert_eq!(y.purge(&CausalContext::new()), 0);
        prop_assert_eq!(&y, x, "purging with nothing stable changes nothing");
        let dropped = y.purge(&stable);
        prop_assert!(x.iter().eq(y.iter()), "stores unchanged");
        prop_assert_eq!(x.context(), y.context());
        let (before, after) = (tomb_dots(x), tomb_dots(&y));
        prop_assert!(after.is_subset(&before));
        prop_assert_eq!(dropped, before.len() - after.len());
        for d in before.difference(&after) {
            prop_assert!(stable.contains(*d), "dropped {} which is not stable", d);
        }
        for d in &after {
            prop_assert!(!stable.contains(*d), "kept {} which is stable", d);
        }
        for (actor, counter) in y.purge_frontier().iter() {
            if counter > x.purge_frontier().get(actor) {
                let top = Dot::new(actor, counter).expect("a frontier entry is a dot");
                prop_assert!(before.contains(&top) && !after.contains(&top));
            }
        }
        let again = y.clone();
        prop_assert_eq!(y.purge(&stable), 0);
        prop_assert_eq!(y, again);
    }
    Ok(())
}

fn check_delta_round_trip<K: Key, T: Palette>(d: &Delta<K, T::Store>) -> Result<(), TestCaseError> {
    let bytes = encode(d);
    let back: Delta<K, T::Store> = rmp_serde::from_slice(&bytes).expect("decode a delta");
    prop_assert_eq!(&back, d);
    prop_assert_eq!(encode(&back), bytes, "canonical");
    let (head, full, rows) = Replicated::<K, T>::split(d.clone());
    prop_assert_eq!(
        &Replicated::<K, T>::assemble(head, full, rows).expect("reassemble"),
        d
    );
    Ok(())
}

fn encoding<K: Key, T: Palette>(r: &[Replicated<K, T>]) -> Result<(), TestCaseError> {
    for (i, x) in r.iter().enumerate() {
        let bytes = encode(x);
        let back: Replicated<K, T> = rmp_serde::from_slice(&bytes).expect("decode a state");
        prop_assert_eq!(&back, x);
        prop_assert_eq!(back.actor(), x.actor());
        prop_assert_eq!(encode(&back), bytes, "canonical");
        // the rebuilt indexes answer like the original
        for y in r {
            prop_assert_eq!(answer(&back, y), answer(x, y));
        }
        let mut restored = Replicated::<K, T>::new(x.actor());
        restored.restore(x.head(), x.rows()).expect("restore");
        prop_assert_eq!(&restored, x);
        // a state joined into a fresh replica encodes like the original
        let mut copy = Replicated::<K, T>::new(x.actor());
        copy.join_delta(x.state());
        prop_assert_eq!(encode(&copy), encode(x));
        check_delta_round_trip::<K, T>(&x.state())?;
        for (j, y) in r.iter().enumerate() {
            if i != j
                && let Some(a) = answer(x, y)
            {
                check_delta_round_trip::<K, T>(&a)?;
            }
        }
    }
    Ok(())
}

/// Decodes `bytes` as the type's state and delta; what decodes must
/// round-trip, and join into a fresh replica and into `into` without a
/// panic.
fn decode_any<K: Key, T: Palette>(bytes: &[u8], into: &Replicated<K, T>) {
    if let Ok(x) = rmp_serde::from_slice::<Replicated<K, T>>(bytes) {
        let again: Replicated<K, T> = rmp_serde::from_slice(&encode(&x)).expect("re-decode");
        assert_eq!(again, x);
        let mut y = into.clone();
        y.join(&x);
        let _ = x.delta_since(&into.digest());
        let _ = x.delta_since(&crdt::CausalContext::new());
    }
    if let Ok(d) = rmp_serde::from_slice::<Delta<K, T::Store>>(bytes) {
        let again: Delta<K, T::Store> = rmp_serde::from_slice(&encode(&d)).expect("re-decode");
        assert_eq!(again, d);
        let mut fresh = Replicated::<K, T>::new(ActorId(99));
        fresh.join_delta(d.clone());
        let _ = fresh.delta_since(&into.digest());
        let mut y = into.clone();
        y.join_delta(d);
        let _ = y.delta_since(&crdt::CausalContext::new());
    }
}

fn mutated_encodings<K: Key, T: Palette>(
    r: &[Replicated<K, T>],
    mutations: &[Mutation],
    which: usize,
) {
    let mut encodings = [
        encode(&r[0]),
        encode(&r[1].state()),
        encode(&answer(&r[2], &r[0]).unwrap_or_else(|| r[2].state())),
    ];
    let bytes = &mut encodings[which % 3];
    for m in mutations {
        mutate(bytes, m);
    }
    decode_any::<K, T>(bytes, &r[1]);
}

fn key_and_op<K: Domain, T: ArbitraryEmbed>() -> impl Strategy<Value = (K, Option<T::Op>)> {
    (K::small(), prop::option::weighted(0.8, T::op()))
}

macro_rules! laws {
    ($($name:ident: $key:ty => $embed:ty;)*) => {$(
        mod $name {
            use super::*;

            type K = $key;
            type T = $embed;

            proptest! {
                #![proptest_config(config())]

                #[test]
                fn join_is_a_lattice(r in replicas::<K, T>(3, 150)) {
                    join_laws(&r)?;
                }

                #[test]
                fn mutators_inflate_and_obey_the_delta_mutator_law(
                    r in replicas::<K, T>(3, 150),
                    (key, op) in key_and_op::<K, T>(),
                ) {
                    mutator_laws(&r, key, op)?;
                }

                #[test]
                fn delta_since_law(r in replicas::<K, T>(3, 150)) {
                    super::delta_since_law(&r)?;
                }

                #[test]
                fn late_and_duplicated_answers_are_harmless(
                    r in replicas::<K, T>(3, 150),
                    b_op in key_and_op::<K, T>(),
                    a_op in key_and_op::<K, T>(),
                ) {
                    late_and_duplicated_answers(&r, b_op, a_op)?;
                }

                #[test]
                fn delta_since_law_across_a_purge_with_a_replica_away(
                    (_, before) in history::<K, T>(3..=3, 120),
                    (_, after) in history::<K, T>(3..=3, 60),
                ) {
                    super::delta_since_law_across_a_purge::<K, T>(&before, &after)?;
                }

                #[test]
                fn purge_drops_only_stable_tombs(
                    r in replicas::<K, T>(3, 150),
                    members in prop::collection::vec(any::<bool>(), 3),
                ) {
                    purge_laws(&r, &members)?;
                }

                #[test]
                fn encoding_round_trips_canonically(r in replicas::<K, T>(3, 150)) {
                    encoding(&r)?;
                }

                #[test]
                fn decoding_random_bytes_never_panics(
                    bytes in prop::collection::vec(any::<u8>(), 0..256),
                ) {
                    decode_any::<K, T>(&bytes, &Replicated::new(ActorId(1)));
                }

                #[test]
                fn decoding_mutated_encodings_never_panics(
                    r in replicas::<K, T>(3, 150),
                    mutations in prop::collection::vec(mutation(), 1..4),
                    which in 0usize..3,
                ) {
                    mutated_encodings(&r, &mutations, which);
                }
            }
        }
    )*};
}

laws! {
    g_counter: () => GrowOnly;
    pn_counter: () => PosNeg;
    aw_set: u8 => Presence;
    ew_flag: () => EnableWins;
    dw_flag: () => DisableWins;
    mv_reg: () => MultiValue<u8>;
    lww_reg: () => Lww<u8>;
    lww_reg_by_timestamp: () => Lww<Stamped, LastWriterWins>;
    map_of_counters: u8 => PosNeg;
    map_of_sets: u8 => SetOf<u8>;
    map_of_registers: u8 => MultiValue<u8>;
    map_of_maps_of_counters: u8 => MapOf<u8, PosNeg>;
    map_of_maps_of_sets: u8 => MapOf<u8, SetOf<u8>>;
    map_of_maps_of_flags: u8 => MapOf<u8, EnableWins>;
}

/// Laws are only as good as the states they run on: the histories drawn
/// for them (three replicas, up to 150 steps) must reach purged states,
/// full-state and frontier answers, late answers and lost stores.
#[test]
fn random_histories_reach_purges_full_states_and_lost_stores() {
    use proptest::{strategy::ValueTree, test_runner::TestRunner};
    let mut runner = TestRunner::deterministic();
    let mut totals = crdt::replicated::arbitrary::Stats::default();
    for _ in 0..100 {
        let (n, steps) = history::<u8, MapOf<u8, SetOf<u8>>>(3..=3, 150)
            .new_tree(&mut runner)
            .expect("strategy")
            .current();
        totals += replay::<u8, MapOf<u8, SetOf<u8>>>(n, &steps).stats;
    }
    eprintln!("100 histories: {totals:?}");
    assert!(totals.purged > 100, "{totals:?}");
    assert!(totals.full_answers > 10, "{totals:?}");
    assert!(totals.frontier_answers > 50, "{totals:?}");
    assert!(totals.lost_stores > 20, "{totals:?}");
    assert!(totals.late_answers > 100, "{totals:?}");
    assert!(totals.departures > 20, "{totals:?}");
}
