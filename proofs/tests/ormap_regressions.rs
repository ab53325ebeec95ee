//! Named regression tests for the ways a delta ORMap is known to go wrong.
//! Each one fails on a specific broken variant of the join or of
//! `delta_since` (see the comments).

use crdt::{ActorId, DeltaCrdt, ORMap};
use proofs::{meet_all, read};

type Map = ORMap<&'static str, u32>;

fn pull(to: &mut Map, from: &Map) {
    if let Some(answer) = from.delta_since(&to.digest()) {
        to.join_delta(answer);
    }
}

/// Catches: the purge frontier ignored (no full-state answer after a purge).
/// `x` holds k=1 and goes away; `a` removes k, `a` and `b` purge the
/// tombstone without `x`; `x` comes back. Without the full-state answer `x`
/// keeps k forever, and anyone pulling from `x` gets it back.
#[test]
fn replica_away_across_a_purge_does_not_keep_the_removed_value() {
    let (mut a, mut b, mut x) = (
        Map::new(ActorId(1)),
        Map::new(ActorId(2)),
        Map::new(ActorId(3)),
    );
    x.insert("k", 1);
    pull(&mut a, &x);
    pull(&mut b, &x);
    a.remove(&"k");
    pull(&mut b, &a);
    let stable = meet_all([&a.digest(), &b.digest()]);
    assert_eq!(a.purge(&stable), 1);
    assert_eq!(b.purge(&stable), 1);
    for _ in 0..3 {
        for (p, q) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)] {
            let mut reps = [a.clone(), b.clone(), x.clone()];
            let from = reps[q].clone();
            pull(&mut reps[p], &from);
            [a, b, x] = reps;
        }
    }
    assert_eq!(read(&x), vec![]);
    assert_eq!(read(&a), vec![]);
    assert_eq!(read(&b), vec![]);
}

/// Catches: a full-state join that does not bring the purge frontier along.
/// Two replicas are away across the purge; the first to return learns of it
/// from a purger, the second only ever talks to the first.
#[test]
fn second_away_replica_learns_of_the_purge_through_the_first() {
    let (mut a, mut x, mut y) = (
        Map::new(ActorId(1)),
        Map::new(ActorId(2)),
        Map::new(ActorId(3)),
    );
    a.insert("k", 1);
    pull(&mut x, &a);
    pull(&mut y, &a);
    a.remove(&"k");
    let stable = a.digest();
    assert_eq!(a.purge(&stable), 1);
    pull(&mut x, &a);
    assert_eq!(read(&x), vec![]);
    pull(&mut y, &x);
    assert_eq!(
        read(&y),
        vec![],
        "y must not keep k: x has seen its removal"
    );
    pull(&mut y, &a);
    assert_eq!(read(&y), vec![]);
}

/// Catches: removes that mint no dot (rust-crdt #160). A replica whose only
/// change is a remove must differ in its digest and ship the tombstone.
#[test]
fn replica_whose_only_change_is_a_remove_is_pulled() {
    let (mut a, mut b) = (Map::new(ActorId(1)), Map::new(ActorId(2)));
    a.insert("k", 1);
    pull(&mut b, &a);
    let digest_before = a.digest();
    a.remove(&"k");
    assert_ne!(a.digest(), digest_before);
    let answer = a.delta_since(&b.digest()).expect("the remove is news");
    assert_eq!(answer.len(), 1);
    b.join_delta(answer);
    assert_eq!(read(&b), vec![]);
}

/// Catches: `delta_since` shipping only the unseen siblings of a key instead
/// of its whole state. `c` has seen b's sibling but not a's; if `a` ships only
/// its own sibling along with its whole context, `c` drops b's sibling (its
/// dot is in that context and not in the shipped key) and reads a's value
/// although b's wins.
#[test]
fn delta_shipping_part_of_a_keys_siblings_is_caught() {
    let (mut a, mut b, mut c) = (
        Map::new(ActorId(1)),
        Map::new(ActorId(2)),
        Map::new(ActorId(3)),
    );
    a.insert("k", 10);
    b.insert("k", 20);
    pull(&mut a, &b); // a holds both siblings
    pull(&mut c, &b); // c holds only b's
    let answer = a.delta_since(&c.digest()).expect("a's sibling is news");
    let shipped: Vec<_> = answer
        .iter()
        .flat_map(|(_, s)| s.iter().map(|s| s.dot))
        .collect();
    assert_eq!(shipped.len(), 2, "the whole key state is shipped");
    c.join_delta(answer);
    assert_eq!(c.siblings(&"k").len(), 2);
    assert_eq!(c.get(&"k"), Some(&20));
}

/// Catches: a join that ignores the other side's context (keeps every local
/// sibling). An overwrite seen by the other side must replace the old value.
#[test]
fn join_honours_the_other_sides_context() {
    let (mut a, mut b) = (Map::new(ActorId(1)), Map::new(ActorId(2)));
    b.insert("k", 1); // b's actor is higher: its value would win a tie
    pull(&mut a, &b);
    a.insert("k", 2); // overwrites b's value, having seen it
    pull(&mut b, &a);
    assert_eq!(b.siblings(&"k").len(), 1);
    assert_eq!(b.get(&"k"), Some(&2));
}

/// Catches: a purge frontier that travels only with full states. Shrunk from
/// a `delta_since_law` failure (proptest, 20k cases). `b` purges a tombstone;
/// `c` then joins a *partial* answer from `b`, which drops c's copy of that
/// tombstone (b has seen it and no longer holds it). If `c` does not take b's
/// frontier, `x` — away during the purge and still holding the value the
/// tombstone removed — gets only a partial answer from `c`, which ships
/// nothing for the key, and `x` reads the removed value forever.
#[test]
fn partial_answer_from_a_purger_passes_the_frontier_on() {
    let (mut a, mut b, mut c, mut x) = (
        Map::new(ActorId(1)),
        Map::new(ActorId(2)),
        Map::new(ActorId(3)),
        Map::new(ActorId(4)),
    );
    c.insert("k", 30); // 3:1
    a.insert("k", 10); // 1:1, concurrent
    pull(&mut a, &c);
    pull(&mut x, &a); // x holds both siblings and goes away
    assert_eq!(x.get(&"k"), Some(&30));
    c.remove(&"k"); // 3:2 overwrites 3:1
    pull(&mut a, &c);
    pull(&mut b, &c);
    let stable = meet_all([&a.digest(), &b.digest(), &c.digest()]);
    assert_eq!(b.purge(&stable), 1);
    pull(&mut b, &a);
    pull(&mut c, &b); // c drops its tombstone 3:2: b has seen it, holds no copy
    pull(&mut x, &c); // x returns and talks to c only
    assert_eq!(x.get(&"k"), Some(&10), "3:1 was removed by 3:2");
    assert_eq!(read(&x), read(&a));
    assert_eq!(c.purge_frontier(), b.purge_frontier());
}
