use super::*;
use crate::{
    AWSet, Count, GCounter, Map, MapOf, MapOp, PNCounter, PosNeg, Presence, Rows, SetOf, SetOp,
};

/// `to` pulls from `from` (the answer, or the frontier alone, as the sync
/// engine sends it).
fn pull<K: Ord + Clone, T: Embed>(to: &mut Replicated<K, T>, from: &Replicated<K, T>) {
    if let Some(d) = from
        .delta_since(&to.digest())
        .or_else(|| from.frontier_answer())
    {
        to.join_delta(d);
    }
}

fn bytes<K: serde::Serialize + Clone, T: Embed>(r: &Replicated<K, T>) -> Vec<u8>
where
    T::Store: serde::Serialize,
{
    // The actor is encoded too: compare states of different owners without it.
    let mut r = r.clone();
    r.actor = ActorId(0);
    rmp_serde::to_vec(&r).expect("encode")
}

#[test]
fn regression_a_purge_frontier_reaches_a_peer_that_has_every_dot() {
    // a inserts k, b pulls; a removes k, b pulls; a purges with the meet of
    // both digests, b does not; b inserts k, a pulls.
    let mut a: AWSet<u8> = AWSet::new(ActorId(1));
    let mut b: AWSet<u8> = AWSet::new(ActorId(2));
    a.insert(7);
    pull(&mut b, &a);
    a.remove(&7);
    pull(&mut b, &a);
    let stable = a.digest().meet(&b.digest());
    assert_eq!(a.purge(&stable), 1);
    b.insert(7);
    pull(&mut a, &b);
    pull(&mut b, &a);
    assert_eq!(a, b, "equal as states");
    assert_eq!(bytes(&a), bytes(&b), "equal as bytes");
    assert_eq!(b.purge_frontier(), a.purge_frontier());
}

#[test]
fn regression_b_a_learned_frontier_drops_the_tomb_beside_a_live_value() {
    // p inserts k, m pulls; p removes k; m inserts k concurrently and pulls;
    // p purges, then pulls.
    let mut p: AWSet<u8> = AWSet::new(ActorId(1));
    let mut m: AWSet<u8> = AWSet::new(ActorId(2));
    p.insert(5);
    pull(&mut m, &p);
    p.remove(&5);
    m.insert(5);
    pull(&mut m, &p);
    assert!(m.entry(&5).is_some_and(|e| !e.tombs().is_empty()));
    let stable = p.digest().meet(&m.digest());
    assert_eq!(p.purge(&stable), 1);
    pull(&mut p, &m);
    pull(&mut m, &p);
    assert!(m.contains(&5) && p.contains(&5));
    assert_eq!(p, m);
    assert_eq!(bytes(&p), bytes(&m));
    assert!(m.entry(&5).is_some_and(|e| e.tombs().is_empty()));
}

#[test]
fn a_remove_of_a_nested_key_keeps_a_concurrent_update_inside_it() {
    type Tenants = Map<String, MapOf<String, PosNeg>>;
    let mut a: Tenants = Map::new(ActorId(1));
    let mut b: Tenants = Map::new(ActorId(2));
    let acme = || "acme".to_string();
    a.apply(acme(), MapOp::Update("/login".into(), Count::Up(5)));
    pull(&mut b, &a);
    a.remove(&acme());
    b.apply(acme(), MapOp::Update("/login".into(), Count::Up(2)));
    b.apply(acme(), MapOp::Update("/home".into(), Count::Up(1)));
    pull(&mut a, &b);
    pull(&mut b, &a);
    assert_eq!(a, b);
    let read = a.get(&acme()).expect("the concurrent updates survive");
    // a's remove dropped the 5 it had observed; b's concurrent increment is
    // its own entry, which a had not seen: it survives (reset-remove).
    assert_eq!(read.get("/login"), Some(&2));
    assert_eq!(read.get("/home"), Some(&1));
}

#[test]
fn a_remove_drops_what_was_observed_at_every_depth() {
    let mut a: Map<u8, SetOf<u8>> = Map::new(ActorId(1));
    a.apply(1, SetOp::Add(10));
    a.apply(1, SetOp::Add(11));
    a.apply(1, SetOp::Remove(10));
    assert_eq!(a.get(&1), Some([11].into_iter().collect()));
    let delta = a.remove(&1).expect("something to remove");
    assert!(a.get(&1).is_none());
    // The remove shipped a tomb: a peer that saw the adds drops them.
    let mut b: Map<u8, SetOf<u8>> = Map::new(ActorId(2));
    b.join_delta(a.state());
    assert!(
        delta
            .iter()
            .all(|(_, e)| e.value().is_empty() && e.tombs().len() == 1)
    );
    assert!(a.remove(&1).is_none(), "nothing observed: no-op");
}

#[test]
fn counters_never_count_twice_through_late_and_duplicated_answers() {
    let mut a = PNCounter::new(ActorId(1));
    let mut b = PNCounter::new(ActorId(2));
    a.increment(10);
    let stale = a.delta_since(&b.digest());
    a.decrement(3);
    let fresh = a.delta_since(&b.digest());
    b.increment(1);
    for answer in [fresh.clone(), stale.clone(), fresh, stale]
        .into_iter()
        .flatten()
    {
        b.join_delta(answer);
    }
    assert_eq!(b.value(), 8);
    pull(&mut a, &b);
    assert_eq!(a.value(), 8);
    assert_eq!(a, b);
    let mut g = GCounter::new(ActorId(3));
    assert!(g.increment(0).is_none(), "0 changes nothing");
    g.increment(u64::MAX);
    g.increment(1);
    assert_eq!(g.value(), u64::MAX, "saturates");
}

#[test]
fn delta_since_ships_only_the_keys_that_changed() {
    let mut a: AWSet<u32> = AWSet::new(ActorId(1));
    for i in 0..1000 {
        a.insert(i);
    }
    let mut b: AWSet<u32> = AWSet::new(ActorId(2));
    pull(&mut b, &a);
    a.insert(5000);
    a.remove(&3);
    let answer = a.delta_since(&b.digest()).expect("news");
    assert_eq!(
        answer.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        vec![3, 5000]
    );
    b.join_delta(answer);
    assert_eq!(a, b);
    assert!(a.delta_since(&b.digest()).is_none());
}

#[test]
fn a_digest_that_predates_a_purge_gets_the_full_state_and_drops_what_it_removed() {
    let mut a: AWSet<u8> = AWSet::new(ActorId(1));
    let mut b: AWSet<u8> = AWSet::new(ActorId(2));
    let mut away: AWSet<u8> = AWSet::new(ActorId(3));
    a.insert(1);
    a.insert(2);
    pull(&mut b, &a);
    pull(&mut away, &a);
    a.remove(&1);
    pull(&mut b, &a);
    let stable = a.digest().meet(&b.digest());
    a.purge(&stable);
    b.purge(&stable);
    assert!(a.entry(&1).is_none(), "purged");
    let answer = a.delta_since(&away.digest()).expect("news");
    assert!(answer.is_full());
    away.join_delta(answer);
    assert!(!away.contains(&1));
    assert_eq!(away, a);
}

#[test]
fn decoding_rejects_what_breaks_an_invariant() {
    let mut a: Map<u8, PosNeg> = Map::new(ActorId(1));
    a.apply(1, Count::Up(1));
    a.apply(2, Count::Up(2));
    let good = rmp_serde::to_vec(&a.state()).expect("encode");
    assert_eq!(
        rmp_serde::from_slice::<Delta<u8, crate::DotFun<crate::Totals>>>(&good).expect("decode"),
        a.state()
    );
    let (head, full, rows) = Map::<u8, PosNeg>::split(a.state());
    let reversed: Vec<_> = rows.iter().rev().cloned().collect();
    assert!(Map::<u8, PosNeg>::assemble(head.clone(), full, reversed).is_err());
    let twice = vec![(1, rows[0].1.clone()), (2, rows[0].1.clone())];
    let err = Map::<u8, PosNeg>::assemble(head.clone(), full, twice).expect_err("dot twice");
    assert!(
        matches!(err, crate::InvariantError::DuplicateDot { .. }),
        "{err}"
    );
    let empty = vec![(1, Entry::default())];
    assert!(Map::<u8, PosNeg>::assemble(head.clone(), full, empty).is_err());
    let mut small = head.clone();
    small.context = CausalContext::new();
    let err = Map::<u8, PosNeg>::assemble(small, full, rows.clone()).expect_err("outside");
    assert!(
        matches!(err, crate::InvariantError::DotNotInContext { .. }),
        "{err}"
    );
    let mut frontier = head;
    frontier.frontier.observe(ActorId(9), 4);
    let err = Map::<u8, PosNeg>::assemble(frontier, full, rows).expect_err("frontier");
    assert!(
        matches!(err, crate::InvariantError::FrontierNotInContext { .. }),
        "{err}"
    );
    // An entry encoded empty, and garbage, are errors, not panics.
    let bytes = rmp_serde::to_vec(&(Vec::<u8>::new(), Vec::<u8>::new())).expect("encode");
    assert!(rmp_serde::from_slice::<Entry<crate::DotSet>>(&bytes).is_err());
    for cut in 0..good.len() {
        let _ = rmp_serde::from_slice::<Delta<u8, crate::DotFun<crate::Totals>>>(&good[..cut]);
    }
}

#[test]
fn a_replica_round_trips_through_its_encoding_and_its_rows() {
    let mut a: AWSet<String> = AWSet::new(ActorId(4));
    a.insert("x".into());
    a.insert("y".into());
    a.remove(&"x".to_string());
    let bytes = rmp_serde::to_vec(&a).expect("encode");
    let back: AWSet<String> = rmp_serde::from_slice(&bytes).expect("decode");
    assert_eq!(back, a);
    assert_eq!(back.actor(), ActorId(4));
    assert_eq!(
        rmp_serde::to_vec(&back).expect("encode"),
        bytes,
        "canonical"
    );
    let mut restored: AWSet<String> = AWSet::new(ActorId(4));
    restored.restore(a.head(), a.rows()).expect("valid");
    assert_eq!(restored, a);
    // it goes on minting after its restored dots
    restored.insert("z".into());
    assert_eq!(restored.max_counter(ActorId(4)), 4);
}

#[test]
fn touched_keys_cover_mutations_joins_and_purges() {
    let mut a: AWSet<u8> = AWSet::new(ActorId(1));
    a.track_touched(true);
    a.insert(1);
    a.insert(2);
    a.remove(&1);
    assert_eq!(a.take_touched(), vec![1, 2]);
    let mut b: AWSet<u8> = AWSet::new(ActorId(2));
    b.insert(9);
    pull(&mut a, &b);
    assert_eq!(a.take_touched(), vec![9]);
    let stable = a.digest();
    assert_eq!(a.purge(&stable), 1);
    assert_eq!(a.take_touched(), vec![1]);
    assert_eq!(a.row(&1), None);
}

#[test]
fn an_effect_that_mints_a_foreign_dot_is_refused() {
    struct Rogue;
    impl Embed for Rogue {
        type Store = crate::DotSet;
        type Op = ();
        type Value = ();
        fn value(_: &crate::DotSet) {}
        fn effect(_: &crate::DotSet, _: ActorId, dot: Dot, (): ()) -> Effect<crate::DotSet> {
            let other = Dot::new(ActorId(99), dot.counter()).expect("non-zero");
            Effect {
                add: [dot, other].into_iter().collect(),
                removes: Vec::new(),
            }
        }
    }
    let mut r: Replicated<u8, Rogue> = Replicated::new(ActorId(1));
    assert!(r.apply(1, ()).is_none());
    assert!(r.context().is_empty());
    let mut ok: Replicated<u8, Presence> = Replicated::new(ActorId(1));
    assert!(ok.apply(1, ()).is_some());
}
