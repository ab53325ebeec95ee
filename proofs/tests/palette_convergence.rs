//! Convergence of every palette type, at the top level and in maps nested
//! two levels deep: random operations on 2–8 replicas, exchanged by pulls
//! whose answers arrive late, twice or never, with purges (some with a
//! replica away) and lost stores; then a full exchange. Every replica must
//! then equal every other as a state (and as bytes, the owner actor set
//! aside), hold what the oracle computed from the history of operations
//! alone holds (`proofs::palette_oracle`), and read what it reads; after a
//! purge by everyone, too. A converged counter equals the sum of its
//! increments minus its decrements, exactly (also nested in maps).
//!
//! A fixed seed and no failure persistence: every run checks the same
//! cases (`PROPTEST_CASES` sets how many).

use std::{collections::BTreeMap, fmt::Debug};

use crdt::{
    ActorId, CausalContext, Count, DisableWins, EnableWins, GrowOnly, LastWriterWins, Lattice, Lww,
    MapOf, MapOp, MultiValue, PosNeg, Presence, Replicated, Rows, SetOf,
    replicated::arbitrary::{ArbitraryEmbed, Domain, History, Mutation, Step, history, replay},
};
use proofs::palette_oracle::{PaletteOracle, Spec, Stamped};
use proptest::prelude::*;
use serde::{Serialize, de::DeserializeOwned};

/// Cases per property unless `PROPTEST_CASES` says otherwise; a fixed seed
/// and no persistence.
fn config() -> ProptestConfig {
    proofs::config::seeded(64, 0x13_c0de)
}

/// What the checks need of a palette type.
trait Palette:
    ArbitraryEmbed<Store: Serialize + DeserializeOwned + Send, Value: PartialEq + Debug> + Spec
{
}

impl<T> Palette for T where
    T: ArbitraryEmbed<Store: Serialize + DeserializeOwned + Send, Value: PartialEq + Debug> + Spec
{
}

/// Keys: small, encodable.
trait Key: Domain + Serialize + DeserializeOwned + Send {}

impl<K: Domain + Serialize + DeserializeOwned + Send> Key for K {}

/// The encoding of a replica with its owner actor set aside.
fn bytes<K: Key, T: Palette>(r: &Replicated<K, T>) -> Vec<u8> {
    let mut r = r.clone();
    r.set_actor(ActorId(0));
    rmp_serde::to_vec(&r).expect("encoding to a Vec cannot fail")
}

fn all_equal<K: Key, T: Palette>(replicas: &[Replicated<K, T>]) -> Result<(), TestCaseError> {
    let first = &replicas[0];
    for (i, r) in replicas.iter().enumerate() {
        prop_assert_eq!(r, first, "replica {} differs from replica 0 as a state", i);
        prop_assert_eq!(bytes(r), bytes(first), "replica {} differs as bytes", i);
    }
    Ok(())
}

fn matches_oracle<K: Key, T: Palette>(
    r: &Replicated<K, T>,
    oracle: &PaletteOracle<K, T>,
) -> Result<(), TestCaseError> {
    let held: BTreeMap<K, T::Store> = r.iter().map(|(k, s)| (k.clone(), s.clone())).collect();
    prop_assert_eq!(&held, &oracle.stores(), "stores differ from the oracle's");
    let read: BTreeMap<K, T::Value> = r
        .keys()
        .map(|k| (k.clone(), r.get(k).expect("a key holding a value reads")))
        .collect();
    prop_assert_eq!(read, oracle.read(), "reads differ from the oracle's");
    Ok(())
}

/// The mutations whose replica's context `known` covers (the history that
/// survived the lost stores).
fn known<'a, K, O, S>(
    log: &'a [Mutation<K, O, S>],
    known: &CausalContext,
) -> Vec<&'a Mutation<K, O, S>> {
    log.iter().filter(|m| m.seen.leq(known)).collect()
}

/// Replays a history, settles it and checks convergence to the oracle;
/// then every replica purges with the stable context and it checks again.
/// Returns the settled history.
fn converge<K: Key, T: Palette>(
    n: usize,
    steps: &[Step<K, T::Op>],
) -> Result<History<K, T>, TestCaseError> {
    let mut h = replay::<K, T>(n, steps);
    prop_assert!(h.settle(12).is_some(), "no quiescence after 12 rounds");
    all_equal(&h.replicas)?;
    let mut oracle = PaletteOracle::<K, T>::from_log(&h.log);
    oracle.retain_known(h.replicas[0].context());
    matches_oracle(&h.replicas[0], &oracle)?;
    h.purge_all();
    prop_assert!(h.settle(12).is_some(), "no quiescence after the purge");
    all_equal(&h.replicas)?;
    prop_assert!(
        h.replicas[0].entries().all(|(_, e)| e.tombs().is_empty()),
        "every tomb is stable once all replicas are equal"
    );
    matches_oracle(&h.replicas[0], &oracle)?;
    Ok(h)
}

fn no_totals<K, T: Palette>(_: &History<K, T>) -> Result<(), TestCaseError> {
    Ok(())
}

fn count(op: &Count) -> i128 {
    match *op {
        Count::Up(n) => i128::from(n),
        Count::Down(n) => -i128::from(n),
    }
}

/// Whether a known removal of the whole key is in the history: a removed
/// counter keeps the entries its removal did not observe (observed-remove),
/// which the oracle checks; only counters never removed are checked against
/// the sum of their increments.
fn removed<K: PartialEq, O, S>(log: &[&Mutation<K, O, S>], key: &K) -> bool {
    log.iter().any(|m| m.key == *key && m.op.is_none())
}

fn g_counter_totals(h: &History<(), GrowOnly>) -> Result<(), TestCaseError> {
    let r = &h.replicas[0];
    let log = known(&h.log, r.context());
    if !removed(&log, &()) {
        let sum: u64 = log.iter().filter_map(|m| m.op).sum();
        prop_assert_eq!(r.value(), sum);
    }
    Ok(())
}

fn pn_counter_totals(h: &History<(), PosNeg>) -> Result<(), TestCaseError> {
    let r = &h.replicas[0];
    let log = known(&h.log, r.context());
    if !removed(&log, &()) {
        let sum: i128 = log.iter().filter_map(|m| m.op.as_ref().map(count)).sum();
        prop_assert_eq!(r.value(), sum);
    }
    Ok(())
}

fn map_of_counters_totals(h: &History<u8, PosNeg>) -> Result<(), TestCaseError> {
    let r = &h.replicas[0];
    let log = known(&h.log, r.context());
    for key in 0..4u8 {
        if removed(&log, &key) {
            continue;
        }
        let sum: i128 = log
            .iter()
            .filter(|m| m.key == key)
            .filter_map(|m| m.op.as_ref().map(count))
            .sum();
        prop_assert_eq!(r.get(&key).unwrap_or(0), sum, "key {}", key);
    }
    Ok(())
}

fn map_of_maps_of_counters_totals(h: &History<u8, MapOf<u8, PosNeg>>) -> Result<(), TestCaseError> {
    let r = &h.replicas[0];
    let log = known(&h.log, r.context());
    for outer in 0..4u8 {
        for inner in 0..4u8 {
            let here = || log.iter().filter(|m| m.key == outer);
            let removed = removed(&log, &outer)
                || here().any(|m| matches!(&m.op, Some(MapOp::Remove(k)) if *k == inner));
            if removed {
                continue;
            }
            let sum: i128 = here()
                .filter_map(|m| match &m.op {
                    Some(MapOp::Update(k, c)) if *k == inner => Some(count(c)),
                    _ => None,
                })
                .sum();
            let value = r.get(&outer).and_then(|m| m.get(&inner).copied());
            prop_assert_eq!(value.unwrap_or(0), sum, "key {}/{}", outer, inner);
        }
    }
    Ok(())
}

/// A history without removals (of top-level keys or of nested map keys), so
/// that every counter is checked against its sum.
fn without_removals<K: Clone, T>(steps: Vec<Step<K, MapOp<u8, T>>>) -> Vec<Step<K, MapOp<u8, T>>> {
    steps
        .into_iter()
        .filter(|s| {
            !matches!(
                s,
                Step::Remove { .. }
                    | Step::Apply {
                        op: MapOp::Remove(_),
                        ..
                    }
            )
        })
        .collect()
}

fn without_key_removals<K, O>(steps: Vec<Step<K, O>>) -> Vec<Step<K, O>> {
    steps
        .into_iter()
        .filter(|s| !matches!(s, Step::Remove { .. }))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_g_counter_never_removed_equals_the_sum_of_its_increments(
        (n, steps) in history::<(), GrowOnly>(2..=8, 200)
    ) {
        let h = converge::<(), GrowOnly>(n, &without_key_removals(steps))?;
        prop_assert!(!removed(&known(&h.log, h.replicas[0].context()), &()));
        g_counter_totals(&h)?;
    }

    #[test]
    fn a_pn_counter_never_removed_equals_its_increments_minus_its_decrements(
        (n, steps) in history::<(), PosNeg>(2..=8, 200)
    ) {
        let h = converge::<(), PosNeg>(n, &without_key_removals(steps))?;
        pn_counter_totals(&h)?;
    }

    #[test]
    fn counters_in_a_map_never_removed_equal_their_sums(
        (n, steps) in history::<u8, PosNeg>(2..=8, 200)
    ) {
        let h = converge::<u8, PosNeg>(n, &without_key_removals(steps))?;
        map_of_counters_totals(&h)?;
    }

    #[test]
    fn counters_in_a_map_of_maps_never_removed_equal_their_sums(
        (n, steps) in history::<u8, MapOf<u8, PosNeg>>(2..=8, 200)
    ) {
        let h = converge::<u8, MapOf<u8, PosNeg>>(n, &without_removals(steps))?;
        map_of_maps_of_counters_totals(&h)?;
    }
}

macro_rules! convergence {
    ($($name:ident: $key:ty => $embed:ty, $totals:expr;)*) => {$(
        mod $name {
            use super::*;

            type K = $key;
            type T = $embed;

            proptest! {
                #![proptest_config(config())]

                #[test]
                fn replicas_converge_to_the_oracle((n, steps) in history::<K, T>(2..=8, 200)) {
                    let h = converge::<K, T>(n, &steps)?;
                    let totals: fn(&History<K, T>) -> Result<(), TestCaseError> = $totals;
                    totals(&h)?;
                }
            }
        }
    )*};
}

convergence! {
    g_counter: () => GrowOnly, g_counter_totals;
    pn_counter: () => PosNeg, pn_counter_totals;
    aw_set: u8 => Presence, no_totals;
    ew_flag: () => EnableWins, no_totals;
    dw_flag: () => DisableWins, no_totals;
    mv_reg: () => MultiValue<u8>, no_totals;
    lww_reg: () => Lww<u8>, no_totals;
    lww_reg_by_timestamp: () => Lww<Stamped, LastWriterWins>, no_totals;
    map_of_counters: u8 => PosNeg, map_of_counters_totals;
    map_of_sets: u8 => SetOf<u8>, no_totals;
    map_of_registers: u8 => MultiValue<u8>, no_totals;
    map_of_maps_of_counters: u8 => MapOf<u8, PosNeg>, map_of_maps_of_counters_totals;
    map_of_maps_of_sets: u8 => MapOf<u8, SetOf<u8>>, no_totals;
    map_of_maps_of_flags: u8 => MapOf<u8, EnableWins>, no_totals;
}

/// The property above could pass without taking the interesting paths: over
/// many of its histories, purges must happen, digests below a purge must get
/// full states, digests with every dot the frontier alone, answers must
/// arrive late and twice, and stores must be lost.
#[test]
fn random_histories_exercise_purges_full_states_and_lost_stores() {
    use proptest::{strategy::ValueTree, test_runner::TestRunner};
    type T = MapOf<u8, PosNeg>;
    let mut runner = TestRunner::deterministic();
    let mut totals = crdt::replicated::arbitrary::Stats::default();
    for _ in 0..40 {
        let (n, steps) = history::<u8, T>(2..=8, 200)
            .new_tree(&mut runner)
            .expect("strategy")
            .current();
        totals += converge::<u8, T>(n, &steps).expect("converges").stats;
    }
    eprintln!("40 histories: {totals:?}");
    assert!(totals.purged > 100, "{totals:?}");
    assert!(totals.full_answers > 5, "{totals:?}");
    assert!(totals.frontier_answers > 20, "{totals:?}");
    assert!(totals.late_answers > 100, "{totals:?}");
    assert!(totals.duplicated > 20, "{totals:?}");
    assert!(totals.lost_stores > 10, "{totals:?}");
    assert!(totals.departures > 20, "{totals:?}");
}
