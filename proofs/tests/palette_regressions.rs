//! Named regression tests for the palette (`crdt::types`): what the
//! property tests of `palette_laws.rs` and `palette_convergence.rs` found
//! or assumed wrongly, each pinned with a comment on what it shows; then one
//! directed test per way a type is known to go wrong (each fails on a
//! broken variant of `scripts/mutants.py`, named in its comment), so that a
//! broken type fails a test named after it, not only the random histories.

use crdt::{
    AWSet, ActorId, Count, DWFlag, DeltaCrdt, EWFlag, EnableWins, GCounter, LastWriterWins, LwwReg,
    MVReg, Map, MapOf, MapOp, PNCounter, PosNeg, SetOf, SetOp,
};
use proofs::palette_oracle::Stamped;

fn pull<K: Ord + Clone, T: crdt::Embed>(
    to: &mut crdt::Replicated<K, T>,
    from: &crdt::Replicated<K, T>,
) {
    if let Some(answer) = from
        .delta_since(&to.digest())
        .or_else(|| from.frontier_answer())
    {
        to.join_delta(answer);
    }
}

/// Shows: a counter removed while its writer increments it concurrently
/// comes back with the writer's whole running total, not with the
/// concurrent increment only. Found by
/// `g_counter::replicas_converge_to_the_oracle` (and the PN counter's) when
/// they first checked converged counters against the sum of the increments
/// not observed by a removal, as `crdt::types::map`'s docs describe: an
/// increment replaces its actor's entry with the actor's new total, so
/// the entry the removal did not observe carries the increments it did.
/// This is the observed-remove semantics of the model
/// (`proofs/models/dotstore_model.py`: a removed counter "keeps the entries
/// the removal did not observe"), and the oracle checks it; a counter is
/// checked against the sum of its increments only when it was never
/// removed.
#[test]
fn regression_a_counter_removed_during_its_writers_increment_keeps_the_writers_total() {
    let mut a = PNCounter::new(ActorId(1));
    let mut b = PNCounter::new(ActorId(2));
    a.increment(5);
    pull(&mut b, &a);
    b.remove(&()); // observes a's entry (total 5)
    a.increment(2); // concurrent: a's entry becomes total 7
    pull(&mut a, &b);
    pull(&mut b, &a);
    assert_eq!(a, b);
    assert_eq!(
        a.value(),
        7,
        "a's total, the 5 the removal observed included"
    );

    // With another actor's concurrent increment, only that increment
    // survives (the case the map docs describe).
    let mut c = PNCounter::new(ActorId(3));
    pull(&mut c, &a);
    b.remove(&());
    c.increment(2);
    pull(&mut b, &c);
    pull(&mut c, &b);
    assert_eq!(b, c);
    assert_eq!(b.value(), 2);
}

/// The same, nested two levels deep: the removal of an outer key and an
/// increment by the same writer inside it, concurrently.
#[test]
fn regression_a_nested_counter_removed_during_its_writers_increment_keeps_the_writers_total() {
    type Tenants = Map<u8, MapOf<u8, PosNeg>>;
    let mut a: Tenants = Map::new(ActorId(1));
    let mut b: Tenants = Map::new(ActorId(2));
    a.apply(1, MapOp::Update(7, Count::Up(5)));
    pull(&mut b, &a);
    b.remove(&1);
    a.apply(1, MapOp::Update(7, Count::Down(1)));
    pull(&mut a, &b);
    pull(&mut b, &a);
    assert_eq!(a, b);
    assert_eq!(a.get(&1).map(|m| m[&7]), Some(4));
}

/// Catches: a GCounter increment that keeps its actor's old entry. Each
/// actor holds one entry, its running total.
#[test]
fn a_counter_increment_replaces_its_actors_entry() {
    let mut a = GCounter::new(ActorId(1));
    let mut b = GCounter::new(ActorId(2));
    for _ in 0..3 {
        a.increment(2);
    }
    assert_eq!(a.store(&()).map(|s| s.len()), Some(1));
    pull(&mut b, &a);
    b.increment(1);
    pull(&mut a, &b);
    assert_eq!(a, b);
    assert_eq!(
        a.store(&()).map(|s| s.len()),
        Some(2),
        "one entry per actor"
    );
    assert_eq!(a.value(), 7);
    let mut p = PNCounter::new(ActorId(1));
    p.increment(5);
    p.decrement(2);
    assert_eq!(p.store(&()).map(|s| s.len()), Some(1));
    assert_eq!(p.value(), 3);
}

/// Catches: an AWSet add that keeps the dots it observed. Re-adding an
/// element replaces its observed adds, so a later remove that observed only
/// the new add removes the element everywhere.
#[test]
fn an_aw_set_add_replaces_the_adds_it_observed() {
    let mut a: AWSet<u8> = AWSet::new(ActorId(1));
    let mut b: AWSet<u8> = AWSet::new(ActorId(2));
    a.insert(1);
    pull(&mut b, &a);
    b.insert(1);
    assert_eq!(
        b.store(&1).map(|s| s.len()),
        Some(1),
        "b's add replaced a's"
    );
    let mut c: AWSet<u8> = AWSet::new(ActorId(3));
    pull(&mut c, &b);
    c.remove(&1);
    pull(&mut a, &c);
    assert!(!a.contains(&1), "c observed every add there is");
}

/// Catches: a nested set remove that removes nothing.
#[test]
fn a_nested_set_remove_drops_the_element() {
    let mut a: Map<u8, SetOf<u8>> = Map::new(ActorId(1));
    a.apply(0, SetOp::Add(1));
    a.apply(0, SetOp::Add(2));
    assert!(a.apply(0, SetOp::Remove(1)).is_some());
    assert_eq!(a.get(&0), Some([2].into_iter().collect()));
}

/// Catches: an EWFlag read as disable-wins, a DWFlag read as enable-wins.
/// A concurrent enable and disable: enable wins on one, disable on the other,
/// at the top level and nested.
#[test]
fn flags_resolve_a_concurrent_enable_and_disable_their_way() {
    let (mut a, mut b) = (EWFlag::new(ActorId(1)), EWFlag::new(ActorId(2)));
    a.enable();
    b.disable();
    pull(&mut a, &b);
    assert!(a.is_enabled(), "enable wins");
    let (mut a, mut b) = (DWFlag::new(ActorId(1)), DWFlag::new(ActorId(2)));
    a.enable();
    b.disable();
    pull(&mut a, &b);
    assert!(!a.is_enabled(), "disable wins");
    let mut x: Map<u8, MapOf<u8, EnableWins>> = Map::new(ActorId(1));
    let mut y: Map<u8, MapOf<u8, EnableWins>> = Map::new(ActorId(2));
    x.apply(0, MapOp::Update(0, false));
    y.apply(0, MapOp::Update(0, true));
    pull(&mut x, &y);
    assert_eq!(x.get(&0).map(|m| m[&0]), Some(true));
}

/// Catches: an MVReg write that does not replace the writes it observed.
#[test]
fn an_mv_register_write_replaces_the_writes_it_observed() {
    let mut a: MVReg<u8> = MVReg::new(ActorId(1));
    let mut b: MVReg<u8> = MVReg::new(ActorId(2));
    a.write(1);
    b.write(2);
    pull(&mut a, &b);
    assert_eq!(a.values(), vec![1, 2]);
    a.write(3);
    assert_eq!(a.values(), vec![3]);
    pull(&mut b, &a);
    assert_eq!(b.values(), vec![3]);
}

/// Catches: an LWW read that ignores its tiebreak. Under `LastWriterWins`
/// the later timestamp wins a concurrent write, whichever actor is higher
/// (under `ActorOrder`, the tiebreak is the dot order, so a read that
/// ignores it cannot be told apart there).
#[test]
fn an_lww_register_reads_the_later_timestamp_not_the_higher_actor() {
    let mut a: LwwReg<Stamped, LastWriterWins> = LwwReg::new(ActorId(1));
    let mut b: LwwReg<Stamped, LastWriterWins> = LwwReg::new(ActorId(2));
    a.write(Stamped { time: 9, value: 1 });
    b.write(Stamped { time: 1, value: 2 }); // concurrent, higher actor
    pull(&mut a, &b);
    pull(&mut b, &a);
    assert_eq!(a.read().map(|s| s.value), Some(1));
    assert_eq!(b.read(), a.read());
}

/// Catches: a nested map's `Remove` that removes nothing, and an update of
/// a nested map that drops the removals of its value's operation.
#[test]
fn nested_map_operations_remove_what_they_observed() {
    let mut a: Map<u8, MapOf<u8, SetOf<u8>>> = Map::new(ActorId(1));
    a.apply(0, MapOp::Update(1, SetOp::Add(5)));
    a.apply(0, MapOp::Update(2, SetOp::Add(6)));
    assert!(a.apply(0, MapOp::Remove(1)).is_some());
    assert_eq!(a.get(&0).map(|m| m.len()), Some(1), "key 1 is gone");
    a.apply(0, MapOp::Update(2, SetOp::Add(6)));
    let inner = a.store(&0).and_then(|m| m.get(&2)).and_then(|s| s.get(&6));
    assert_eq!(
        inner.map(|dots| dots.len()),
        Some(1),
        "the re-add replaced the add"
    );
    let mut c: Map<u8, MapOf<u8, PosNeg>> = Map::new(ActorId(1));
    c.apply(0, MapOp::Update(0, Count::Up(2)));
    c.apply(0, MapOp::Update(0, Count::Up(3)));
    assert_eq!(
        c.store(&0).and_then(|m| m.get(&0)).map(|s| s.len()),
        Some(1)
    );
    assert_eq!(c.get(&0).map(|m| m[&0]), Some(5));
}
