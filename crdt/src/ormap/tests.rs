use super::*;
use crate::{LastWriterWins, Timestamped};

type Map = ORMap<&'static str, u32>;

fn pull<K: Ord + Clone, V: Clone, T: Tiebreak<K, V>>(
    to: &mut ORMap<K, V, T>,
    from: &ORMap<K, V, T>,
) -> Changes<K> {
    match from.delta_since(&to.digest()) {
        Some(delta) => to.join_delta(delta),
        None => Changes::none(),
    }
}

#[test]
fn insert_overwrites_and_its_delta_names_the_overwritten_dot() {
    let mut a = Map::new(ActorId(1));
    let d1 = a.insert("k", 1);
    let first = d1.iter().next().map(|(_, s)| s[0].dot).expect("one key");
    let d2 = a.insert("k", 2);
    assert_eq!(a.get(&"k"), Some(&2));
    assert_eq!(a.siblings(&"k").len(), 1);
    assert!(
        d2.context().contains(first),
        "delta must carry the overwritten dot"
    );
    assert_eq!(a.len(), 1);
}

#[test]
fn remove_mints_a_tombstone_dot_and_is_none_when_nothing_is_visible() {
    let mut a = Map::new(ActorId(1));
    assert!(a.remove(&"k").is_none());
    a.insert("k", 1);
    let delta = a.remove(&"k").expect("k was live");
    let (_, siblings) = delta.iter().next().expect("one key");
    assert_eq!(siblings[0].value, None);
    assert_eq!(siblings[0].dot.counter(), 2);
    assert!(a.get(&"k").is_none());
    assert_eq!(a.len(), 0);
    assert_eq!(a.stored_keys(), 1, "the tombstone is kept until purged");
    assert!(a.remove(&"k").is_none());
}

#[test]
fn a_replica_whose_only_change_is_a_remove_is_seen_by_a_pull() {
    // rust-crdt #160: removes silently dropped by digest comparison.
    let mut a = Map::new(ActorId(1));
    let mut b = Map::new(ActorId(2));
    a.insert("k", 1);
    pull(&mut b, &a);
    assert_eq!(b.get(&"k"), Some(&1));
    a.remove(&"k");
    let changes = pull(&mut b, &a);
    assert_eq!(changes.keys(), &["k"]);
    assert!(b.get(&"k").is_none());
    assert_eq!(a, b);
}

#[test]
fn concurrent_writes_become_siblings_and_the_tiebreak_picks() {
    let mut a = Map::new(ActorId(1));
    let mut b = Map::new(ActorId(2));
    a.insert("k", 10);
    b.insert("k", 20);
    pull(&mut a, &b);
    pull(&mut b, &a);
    assert_eq!(a.siblings(&"k").len(), 2);
    assert_eq!(a.get(&"k"), Some(&20), "ActorOrder: higher actor wins");
    assert_eq!(b.get(&"k"), Some(&20));
    assert_eq!(a.visible(&"k").map(|s| s.dot.actor()), Some(ActorId(2)));
    // A later write by either side collapses the siblings.
    a.insert("k", 30);
    pull(&mut b, &a);
    assert_eq!(b.siblings(&"k").len(), 1);
    assert_eq!(b.get(&"k"), Some(&30));
}

#[derive(Debug, Clone, PartialEq)]
struct Stamped(u64, &'static str);

impl Timestamped for Stamped {
    type Time = u64;
    fn timestamp(&self) -> u64 {
        self.0
    }
}

#[test]
fn last_writer_wins_uses_the_value_timestamp() {
    let mut a: ORMap<u8, Stamped, LastWriterWins> = ORMap::new(ActorId(9));
    let mut b: ORMap<u8, Stamped, LastWriterWins> = ORMap::new(ActorId(1));
    a.insert(0, Stamped(5, "early"));
    b.insert(0, Stamped(7, "late"));
    pull(&mut a, &b);
    assert_eq!(a.get(&0).map(|s| s.1), Some("late"));
}

#[test]
fn concurrent_remove_loses_to_a_concurrent_insert() {
    let mut a = Map::new(ActorId(1));
    let mut b = Map::new(ActorId(2));
    a.insert("k", 1);
    pull(&mut b, &a);
    a.remove(&"k");
    b.insert("k", 2);
    pull(&mut a, &b);
    pull(&mut b, &a);
    assert_eq!(a.get(&"k"), Some(&2));
    assert_eq!(a, b);
    assert_eq!(
        a.siblings(&"k").len(),
        2,
        "tombstone and live value are siblings"
    );
}

#[test]
fn delta_since_ships_only_keys_with_unseen_dots_and_none_when_up_to_date() {
    let mut a = ORMap::<u32, u32>::new(ActorId(1));
    for k in 0..100 {
        a.insert(k, k);
    }
    let mut b = ORMap::<u32, u32>::new(ActorId(2));
    pull(&mut b, &a);
    assert_eq!(b.len(), 100);
    assert!(a.delta_since(&b.digest()).is_none());
    a.insert(7, 70);
    a.insert(42, 420);
    let delta = a.delta_since(&b.digest()).expect("two changes");
    assert_eq!(
        delta.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        vec![7, 42]
    );
    assert!(!delta.is_full());
    let changes = b.join_delta(delta);
    assert_eq!(changes.keys(), &[7, 42]);
    assert_eq!(a, b);
}

#[test]
fn answers_joined_late_or_twice_change_nothing_more() {
    let mut a = Map::new(ActorId(1));
    let mut b = Map::new(ActorId(2));
    a.insert("x", 1);
    let stale = a.delta_since(&b.digest()).expect("news");
    b.join_delta(stale.clone());
    a.insert("x", 2);
    pull(&mut b, &a);
    let changes = b.join_delta(stale);
    assert!(changes.is_empty() && !changes.learned());
    assert_eq!(b.get(&"x"), Some(&2));
}

#[test]
fn purge_drops_stable_tombstones_and_raises_the_frontier() {
    let mut a = Map::new(ActorId(1));
    let mut b = Map::new(ActorId(2));
    a.insert("k", 1);
    a.insert("j", 1);
    a.remove(&"k");
    pull(&mut b, &a);
    // Not stable yet for an empty stable context.
    assert_eq!(a.purge(&CausalContext::new()), 0);
    let stable = a.digest().meet(&b.digest());
    assert_eq!(a.purge(&stable), 1);
    assert_eq!(a.stored_keys(), 1);
    assert_eq!(a.purge_frontier().get(ActorId(1)), 3);
    // b has seen the purged tombstone: it still gets deltas.
    a.insert("j", 2);
    assert!(!a.delta_since(&b.digest()).expect("news").is_full());
}

#[test]
fn a_replica_away_across_a_purge_drops_the_removed_value() {
    let mut x = Map::new(ActorId(3));
    let mut a = Map::new(ActorId(1));
    let mut b = Map::new(ActorId(2));
    x.insert("k", 1);
    pull(&mut a, &x);
    pull(&mut b, &x);
    a.remove(&"k");
    pull(&mut b, &a);
    let stable = a.digest().meet(&b.digest()); // x is away
    a.purge(&stable);
    b.purge(&stable);
    let answer = a.delta_since(&x.digest()).expect("x is behind");
    assert!(answer.is_full(), "x's digest predates the purge");
    let changes = x.join_delta(answer);
    assert_eq!(changes.keys(), &["k"]);
    assert!(x.get(&"k").is_none());
    // x now carries the frontier: a second away replica pulling from x
    // (not from a purger) is also told.
    assert_eq!(x.purge_frontier(), a.purge_frontier());
}

#[test]
fn lattice_join_of_states_equals_pulls_both_ways() {
    let mut a = Map::new(ActorId(1));
    let mut b = Map::new(ActorId(2));
    a.insert("p", 1);
    b.insert("p", 2);
    b.insert("q", 3);
    a.remove(&"p");
    let joined = a.clone().joined(&b);
    pull(&mut a, &b);
    assert_eq!(joined, a);
    assert!(b.leq(&a));
}

#[test]
fn encoding_is_canonical_and_round_trips() {
    type Named = ORMap<String, u32>;
    let mut a = Named::new(ActorId(1));
    a.insert("x".into(), 1);
    a.insert("y".into(), 2);
    // the same state built by joining into another replica encodes the same
    let mut a2 = Named::new(ActorId(1));
    a2.join_delta(a.state());
    let bytes = rmp_serde::to_vec(&a).expect("encode");
    assert_eq!(bytes, rmp_serde::to_vec(&a2).expect("encode"));
    let back: Named = rmp_serde::from_slice(&bytes).expect("decode");
    assert_eq!(back, a);
    assert_eq!(back.len(), 2);
    assert_eq!(back.actor(), ActorId(1));
    let delta = a.state();
    let bytes = rmp_serde::to_vec(&delta).expect("encode");
    assert_eq!(
        rmp_serde::from_slice::<Delta<String, u32>>(&bytes).expect("decode"),
        delta
    );
}

type RawEntries = Vec<(u8, Vec<(Dot, Option<u8>)>)>;

#[derive(Serialize)]
struct RawDelta {
    entries: RawEntries,
    context: CausalContext,
    frontier: Vec<(u64, u64)>,
    full: bool,
}

fn dot(a: u64, c: u64) -> Dot {
    Dot::new(ActorId(a), c).expect("non-zero")
}

fn decode_raw(raw: &RawDelta) -> Result<Delta<u8, u8>, rmp_serde::decode::Error> {
    rmp_serde::from_slice(&rmp_serde::to_vec(raw).expect("encode"))
}

#[test]
fn decoding_rejects_deltas_that_break_invariants() {
    let mut ctx = CausalContext::new();
    ctx.extend([dot(1, 1), dot(1, 2)]);
    let ok = RawDelta {
        entries: vec![
            (1, vec![(dot(1, 1), Some(1))]),
            (2, vec![(dot(1, 2), None)]),
        ],
        context: ctx.clone(),
        frontier: vec![],
        full: false,
    };
    assert!(decode_raw(&ok).is_ok());
    let cases = [
        (
            "sibling dot not in context",
            vec![(1, vec![(dot(1, 3), Some(1))])],
            vec![],
            false,
        ),
        (
            "dot under two keys",
            vec![
                (1, vec![(dot(1, 1), Some(1))]),
                (2, vec![(dot(1, 1), Some(2))]),
            ],
            vec![],
            false,
        ),
        ("key without sibling", vec![(1, vec![])], vec![], false),
        (
            "unsorted keys",
            vec![
                (2, vec![(dot(1, 1), Some(1))]),
                (1, vec![(dot(1, 2), Some(1))]),
            ],
            vec![],
            false,
        ),
        (
            "duplicate keys",
            vec![
                (1, vec![(dot(1, 1), Some(1))]),
                (1, vec![(dot(1, 2), Some(1))]),
            ],
            vec![],
            false,
        ),
        (
            "unsorted siblings",
            vec![(1, vec![(dot(1, 2), Some(1)), (dot(1, 1), Some(1))])],
            vec![],
            false,
        ),
        (
            "frontier outside the context",
            vec![(1, vec![(dot(1, 1), Some(1))])],
            vec![(1, 9)],
            true,
        ),
    ];
    for (what, entries, frontier, full) in cases {
        let raw = RawDelta {
            entries,
            context: ctx.clone(),
            frontier,
            full,
        };
        assert!(decode_raw(&raw).is_err(), "accepted: {what}");
    }
}

#[test]
fn decoded_maps_rebuild_their_index() {
    let mut a = ORMap::<u8, u8>::new(ActorId(1));
    for k in 0..10 {
        a.insert(k, k);
    }
    a.remove(&3);
    let back: ORMap<u8, u8> =
        rmp_serde::from_slice(&rmp_serde::to_vec(&a).expect("encode")).expect("decode");
    let mut b = ORMap::<u8, u8>::new(ActorId(2));
    b.insert(0, 0);
    // delta_since relies on the rebuilt index
    let delta = back.delta_since(&b.digest()).expect("news");
    assert_eq!(delta.len(), 10);
    assert_eq!(back.len(), 9);
    let stable = back.digest();
    let mut back = back;
    assert_eq!(back.purge(&stable), 1, "the tombstone set was rebuilt");
}

#[test]
fn a_losing_concurrent_sibling_is_touched_but_not_a_visible_change() {
    let mut high = Map::new(ActorId(9));
    let mut low = Map::new(ActorId(1));
    high.insert("k", 9);
    let mut a = Map::new(ActorId(5));
    pull(&mut a, &high);
    low.insert("k", 1); // concurrent, loses to actor 9
    let changes = pull(&mut a, &low);
    assert!(
        changes.keys().is_empty(),
        "the visible value did not change"
    );
    assert_eq!(changes.touched(), &["k"]);
    assert!(changes.learned());
    assert_eq!(a.siblings(&"k").len(), 2);
}

#[test]
fn a_map_rebuilt_from_its_parts_equals_the_original() {
    let mut a = Map::new(ActorId(1));
    a.insert("x", 1);
    a.insert("y", 2);
    a.remove(&"y");
    let entries: Vec<_> = a.entries().map(|(k, s)| (*k, s.to_vec())).collect();
    let delta = Delta::from_parts(
        entries.clone(),
        a.context().clone(),
        a.purge_frontier().clone(),
        true,
    )
    .expect("valid parts");
    let mut b = Map::new(ActorId(2));
    b.join_delta(delta);
    assert_eq!(a, b);
    // parts that break an invariant are refused
    assert!(Delta::from_parts(entries, CausalContext::new(), VersionVector::new(), true).is_err());
}

/// A pull as `sync`'s engine makes it: the `delta_since` answer, or, when
/// that is empty but the puller may lack the responder's purge frontier, the
/// frontier answer.
fn pull_with_frontier(to: &mut Map, from: &Map) -> Changes<&'static str> {
    match from.delta_since(&to.digest()) {
        Some(delta) => to.join_delta(delta),
        None if !from.purge_frontier().leq(to.purge_frontier()) => match from.frontier_answer() {
            Some(answer) => to.join_delta(answer),
            None => Changes::none(),
        },
        None => Changes::none(),
    }
}

fn assert_equal_states(a: &Map, b: &Map) {
    assert_eq!(a, b, "equal as states");
    assert_eq!(
        rmp_serde::to_vec(&(a.entries.clone(), a.context(), a.purge_frontier())).expect("encode"),
        rmp_serde::to_vec(&(b.entries.clone(), b.context(), b.purge_frontier())).expect("encode"),
        "equal encodings"
    );
}

/// Issue 13 case (a): a inserts k, b pulls; a removes k, b pulls; a purges
/// with the meet of both digests, b does not; b inserts k, a pulls. Entries
/// and contexts were equal, but a's frontier held its remove and b's was
/// empty, and b never learned it: its pulls got nothing.
#[test]
fn regression_a_purge_frontier_reaches_a_peer_that_has_every_dot() {
    let mut a = Map::new(ActorId(1));
    let mut b = Map::new(ActorId(2));
    a.insert("k", 1);
    pull(&mut b, &a);
    a.remove(&"k");
    pull(&mut b, &a);
    assert_eq!(a.purge(&a.digest().meet(&b.digest())), 1);
    b.insert("k", 2);
    pull(&mut a, &b);
    // What plain pulls leave: the same reads, different states, for ever.
    assert!(pull(&mut b, &a).keys().is_empty());
    assert_eq!(a.get(&"k"), b.get(&"k"));
    assert_ne!(a, b, "plain pulls never carry the frontier to b");
    // The frontier answer closes the gap.
    assert!(pull_with_frontier(&mut b, &a).learned());
    pull_with_frontier(&mut a, &b);
    assert_equal_states(&a, &b);
    assert!(pull_with_frontier(&mut b, &a).keys().is_empty());
}

/// Issue 13 case (b): p inserts k, m pulls; p removes k; m inserts k = 5
/// concurrently and pulls; p purges, then pulls. m kept the tombstone beside
/// its live value and p did not, until k was written again.
#[test]
fn regression_a_learned_frontier_drops_the_tombstone_beside_a_live_value() {
    let mut p = Map::new(ActorId(1));
    let mut m = Map::new(ActorId(2));
    p.insert("k", 1);
    pull(&mut m, &p);
    p.remove(&"k");
    m.insert("k", 5);
    pull(&mut m, &p);
    assert_eq!(
        m.siblings(&"k").len(),
        2,
        "the live value and the tombstone"
    );
    assert_eq!(p.purge(&p.digest().meet(&m.digest())), 1);
    pull(&mut p, &m);
    assert_eq!(p.siblings(&"k").len(), 1);
    assert_eq!(p.get(&"k"), Some(&5));
    assert!(pull(&mut m, &p).keys().is_empty());
    assert_ne!(p, m, "plain pulls leave m's tombstone for ever");
    pull_with_frontier(&mut m, &p);
    assert_eq!(
        m.siblings(&"k").len(),
        1,
        "the covered tombstone is dropped"
    );
    assert_eq!(m.get(&"k"), Some(&5));
    assert_equal_states(&p, &m);
}

/// A purge that raises an actor's frontier also drops that actor's older
/// tombstones beside live values: they are stable too, and a peer that
/// learns the frontier drops them.
#[test]
fn a_purge_drops_the_covered_tombstones_beside_live_values() {
    let mut a = Map::new(ActorId(1));
    let mut b = Map::new(ActorId(2));
    a.insert("x", 1);
    pull(&mut b, &a);
    a.remove(&"x"); // a's tombstone (1, 2) on x
    b.insert("x", 7); // concurrent: x keeps both
    a.insert("y", 1);
    a.remove(&"y"); // a's tombstone (1, 4), tombstone-only
    pull(&mut a, &b);
    pull(&mut b, &a);
    assert_eq!(a.siblings(&"x").len(), 2);
    let stable = a.digest().meet(&b.digest());
    assert_eq!(a.purge(&stable), 2, "y's key and x's covered tombstone");
    assert_eq!(a.siblings(&"x").len(), 1);
    assert_eq!(a.get(&"x"), Some(&7));
    pull_with_frontier(&mut b, &a);
    assert_equal_states(&a, &b);
}
