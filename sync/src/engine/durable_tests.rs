//! Tests of chunked answers, durable replicas and the start-up exchange.

use std::time::Duration;

use crdt::{ActorId, DeltaCrdt, ORMap};

use super::{
    test_support::{exchange, peer, view},
    *,
};
use crate::StaticPeers;

type Map = ORMap<u32, u32>;

fn engine(i: usize, config: EngineConfig, now: Instant) -> Engine {
    Engine::new(peer(i).id, config, i as u64, now)
}

/// Runs `to`'s answer to a pull from `from` of replica "m", and returns its
/// messages.
fn answer(to: &mut Engine, from: &Engine, now: Instant, peers: &dyn PeerSource) -> Vec<Message> {
    let digest = from.replica::<Map>("m").expect("registered").digest();
    let pull = Message::Pull {
        replica: "m".into(),
        digest,
    };
    to.handle_request(now, from.node(), pull, peers)
        .into_messages()
        .expect("encodes")
}

fn big_map(actor: u64, keys: u32) -> Map {
    let mut m = Map::new(ActorId(actor));
    for k in 0..keys {
        m.insert(k, k * 7);
    }
    m
}

#[test]
fn a_large_answer_travels_in_chunks_and_is_joined_as_one() {
    let now = Instant::now();
    let config = EngineConfig {
        chunk_bytes: 256,
        ..EngineConfig::default()
    };
    let mut a = engine(0, config.clone(), now);
    let mut b = engine(1, config, now);
    a.register("m", big_map(1, 1000)).expect("fresh");
    b.register("m", Map::new(ActorId(2))).expect("fresh");
    let messages = answer(&mut a, &b, now, &view(0, 2));
    assert!(messages.len() > 10, "{} parts", messages.len());
    let (last, chunks) = messages.split_last().expect("parts");
    assert!(chunks.iter().all(|m| matches!(m, Message::Chunk { .. })));
    assert!(matches!(last, Message::Delta { delta: Some(_), .. }));
    for m in chunks {
        b.handle_response(a.node(), m.clone()).expect("kept");
        assert_eq!(
            b.replica::<Map>("m").expect("registered").len(),
            0,
            "nothing joined before the last part"
        );
    }
    b.handle_response(a.node(), last.clone()).expect("joined");
    assert_eq!(
        b.replica::<Map>("m").expect("registered"),
        a.replica::<Map>("m").expect("registered")
    );
    assert_eq!(b.stats().chunks_received, chunks.len() as u64);
}

#[test]
fn a_cut_sequence_is_dropped_and_leaves_the_replica_as_it_was() {
    let now = Instant::now();
    let config = EngineConfig {
        chunk_bytes: 256,
        ..EngineConfig::default()
    };
    let mut a = engine(0, config.clone(), now);
    let mut b = engine(1, config, now);
    a.register("m", big_map(1, 500)).expect("fresh");
    let mut mine = Map::new(ActorId(2));
    mine.insert(9999, 1);
    b.register("m", mine.clone()).expect("fresh");
    let messages = answer(&mut a, &b, now, &view(0, 2));
    for m in &messages[..messages.len() / 2] {
        b.handle_response(a.node(), m.clone()).expect("kept");
    }
    b.handle_connection_lost(a.node());
    assert_eq!(b.stats().answers_dropped, 1);
    assert_eq!(b.replica::<Map>("m").expect("registered"), &mine);
    // A later answer's last part is not joined with the dropped chunks.
    let again = answer(&mut a, &b, now, &view(0, 2));
    for m in again {
        b.handle_response(a.node(), m).expect("valid");
    }
    let mut want = mine.clone();
    want.join_delta(
        a.replica::<Map>("m")
            .expect("registered")
            .delta_since(&mine.digest())
            .expect("news"),
    );
    assert_eq!(b.replica::<Map>("m").expect("registered"), &want);
}

#[test]
fn an_answer_above_the_limit_is_refused_and_changes_nothing() {
    let now = Instant::now();
    let config = EngineConfig {
        chunk_bytes: 256,
        max_answer_bytes: 2048,
        ..EngineConfig::default()
    };
    let mut a = engine(0, config.clone(), now);
    let mut b = engine(1, config, now);
    a.register("m", big_map(1, 1000)).expect("fresh");
    b.register("m", Map::new(ActorId(2))).expect("fresh");
    let messages = answer(&mut a, &b, now, &view(0, 2));
    let mut refused = 0;
    for m in messages {
        if matches!(
            b.handle_response(a.node(), m),
            Err(SyncError::AnswerTooLarge { .. })
        ) {
            refused += 1;
        }
    }
    assert!(refused >= 1);
    assert!(b.stats().answers_dropped >= 1);
    // The last part alone is not a complete answer: it joins only its own
    // rows (a valid, smaller delta), never the dropped ones'.
    assert!(b.replica::<Map>("m").expect("registered").len() < 1000);
}

/// A durable engine: "m" registered durable and empty.
fn durable_engine(i: usize, now: Instant) -> Engine {
    let mut e = engine(i, EngineConfig::default(), now);
    e.register_durable("m", Map::new(ActorId(i as u64 + 1)), None)
        .expect("fresh");
    // its first commit writes the (empty) replica
    let (_, ticket) = e.take_commit().expect("encodes").expect("first commit");
    e.handle_committed(ticket);
    e
}

/// A durable engine `a` (replica "m" committed empty), a plain one `b`
/// with an empty "m", and `a`'s view of both.
fn durable_and_plain(now: Instant) -> (Engine, Engine, StaticPeers) {
    let a = durable_engine(0, now);
    let mut b = engine(1, EngineConfig::default(), now);
    b.register("m", Map::new(ActorId(2))).expect("fresh");
    (a, b, view(0, 2))
}

#[test]
fn own_writes_leave_only_once_durable_and_parked_pulls_get_the_cut() {
    let now = Instant::now();
    let (mut a, mut b, peers) = durable_and_plain(now);
    a.write::<Map, _>("m", |m| m.insert(1, 10)).expect("ready");
    assert_eq!(a.write_seq(), 1);
    assert_eq!(a.committed_seq(), 0);
    // a pull now is parked, and no notification goes out
    let digest = b.replica::<Map>("m").expect("registered").digest();
    let pull = Message::Pull {
        replica: "m".into(),
        digest,
    };
    let Reply::Parked(id) = a.handle_request(now, b.node(), pull.clone(), &peers) else {
        panic!("expected the pull to be parked");
    };
    a.handle_timeout(now, &peers);
    assert!(
        std::iter::from_fn(|| a.poll_transmit())
            .all(|t| !matches!(t.message, Message::Notify { .. })),
        "no notification before the write is durable"
    );
    assert!(a.take_parked(id).is_none());
    // the commit's cut; a write after it is not in it
    let (commit, ticket) = a
        .take_commit()
        .expect("encodes")
        .expect("something to commit");
    assert_eq!(commit.replicas.len(), 1);
    assert_eq!(commit.replicas[0].rows.len(), 1);
    a.write::<Map, _>("m", |m| m.insert(2, 20)).expect("ready");
    assert!(
        a.take_parked(id).is_none(),
        "not before the commit is durable"
    );
    a.handle_committed(ticket);
    assert_eq!(a.committed_seq(), 1);
    let parked = a.take_parked(id).expect("answered from the cut");
    for m in parked.into_messages().expect("encodes") {
        b.handle_response(a.node(), m).expect("valid");
    }
    let seen: Vec<(u32, u32)> = b
        .replica::<Map>("m")
        .expect("registered")
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect();
    assert_eq!(
        seen,
        vec![(1, 10)],
        "the cut's state, without the later write"
    );
    a.handle_timeout(now, &peers);
    assert!(
        std::iter::from_fn(|| a.poll_transmit())
            .any(|t| matches!(t.message, Message::Notify { .. })),
        "the durable write is announced"
    );
    // the second write is not durable yet: parked again
    assert!(matches!(
        a.handle_request(now, b.node(), pull, &peers),
        Reply::Parked(_)
    ));
}

/// Found by `healthcheck`'s restart test under load: a pull that arrived
/// while the commit of the write it waited for was in flight stayed parked
/// after that commit was durable (nothing was left to commit, so no later cut
/// answered it), until the session timed out; a restarting peer waiting for
/// that answer took a fresh actor ("unsure").
#[test]
fn regression_a_pull_parked_during_a_commit_is_answered_when_it_is_durable() {
    let now = Instant::now();
    let (mut a, mut b, peers) = durable_and_plain(now);
    a.write::<Map, _>("m", |m| m.insert(1, 10)).expect("ready");
    let (_, ticket) = a.take_commit().expect("encodes").expect("the write");
    let pull = Message::Pull {
        replica: "m".into(),
        digest: b.replica::<Map>("m").expect("registered").digest(),
    };
    let Reply::Parked(id) = a.handle_request(now, b.node(), pull, &peers) else {
        panic!("expected the pull to be parked: the write is not durable yet");
    };
    a.handle_committed(ticket);
    assert!(
        a.take_commit().expect("encodes").is_none(),
        "nothing is left to commit"
    );
    let answer = a
        .take_parked(id)
        .expect("answered once the write it waited for is durable");
    for m in answer.into_messages().expect("encodes") {
        b.handle_response(a.node(), m).expect("valid");
    }
    assert_eq!(
        b.replica::<Map>("m").expect("registered").get(&1),
        Some(&10),
        "the answer holds the durable write"
    );
}

#[test]
fn a_failed_commit_is_retried_with_the_same_rows() {
    let now = Instant::now();
    let mut a = durable_engine(0, now);
    a.write::<Map, _>("m", |m| m.insert(1, 10)).expect("ready");
    a.write::<Map, _>("m", |m| m.insert(2, 20)).expect("ready");
    let (commit, ticket) = a.take_commit().expect("encodes").expect("rows");
    assert!(a.take_commit().expect("encodes").is_none(), "one at a time");
    a.handle_commit_failed(&commit, ticket);
    assert_eq!(a.committed_seq(), 0);
    let (again, ticket) = a.take_commit().expect("encodes").expect("retried");
    let keys = |c: &crate::storage::Commit| -> Vec<Vec<u8>> {
        c.replicas[0].rows.iter().map(|(k, _)| k.clone()).collect()
    };
    assert_eq!(keys(&again), keys(&commit));
    a.handle_committed(ticket);
    assert_eq!(a.committed_seq(), 2);
}

#[test]
fn a_new_member_is_caught_up_from_one_peer_first_then_the_others() {
    let now = Instant::now();
    let mut settled: Vec<Engine> = (0..3)
        .map(|i| {
            let mut e = engine(i, EngineConfig::default(), now);
            let mut m = Map::new(ActorId(i as u64 + 1));
            for k in 0..20 {
                m.insert(i as u32 * 100 + k, k);
            }
            e.register("m", m).expect("fresh");
            e
        })
        .collect();
    let views3: Vec<StaticPeers> = (0..3).map(|i| view(i, 3)).collect();
    exchange(&mut settled, &views3, now);
    let mut fresh = engine(3, EngineConfig::default(), now);
    fresh.register("m", Map::new(ActorId(4))).expect("fresh");
    let peers = view(3, 4);
    fresh.handle_timeout(now, &peers);
    let first: Vec<Transmit> = std::iter::from_fn(|| fresh.poll_transmit()).collect();
    assert_eq!(first.len(), 1, "one peer sends the whole state");
    assert!(!fresh.caught_up());
    let to: usize = first[0].to.id.0[1..].parse().expect("name");
    let reply =
        settled[to].handle_request(now, fresh.node(), first[0].message.clone(), &views3[to]);
    for m in reply.into_messages().expect("encodes") {
        fresh.handle_response(settled[to].node(), m).expect("valid");
    }
    assert_eq!(
        fresh.poll_timeout(),
        Some(now),
        "the next step is due at once"
    );
    fresh.handle_timeout(now, &peers);
    let rest: Vec<Transmit> = std::iter::from_fn(|| fresh.poll_transmit())
        .filter(|t| matches!(t.message, Message::Pull { .. }))
        .collect();
    assert_eq!(rest.len(), 2, "then every other member");
    for t in rest {
        let to: usize = t.to.id.0[1..].parse().expect("name");
        let reply = settled[to].handle_request(now, fresh.node(), t.message, &views3[to]);
        for m in reply.into_messages().expect("encodes") {
            let answer_len = match &m {
                Message::Delta { delta, .. } => delta.as_ref().map_or(0, |d| d.len()),
                _ => 0,
            };
            assert!(
                answer_len < 200,
                "the others send little ({answer_len} bytes)"
            );
            fresh.handle_response(settled[to].node(), m).expect("valid");
        }
    }
    fresh.handle_timeout(now, &peers);
    assert!(fresh.caught_up());
    assert!(
        std::iter::from_fn(|| fresh.poll_event())
            .any(|e| e == Event::CaughtUp(StartupOutcome::CaughtUp))
    );
    assert_eq!(
        fresh.replica::<Map>("m").expect("registered").len(),
        60,
        "everything"
    );
}

/// Node 0 writes `n` keys that node 1 pulls; returns both (settled).
fn writer_and_witness(n: u32, now: Instant) -> (Engine, Engine, Map) {
    let mut engines = vec![
        durable_engine(0, now),
        engine(1, EngineConfig::default(), now),
    ];
    engines[1]
        .register("m", Map::new(ActorId(2)))
        .expect("fresh");
    let views: Vec<StaticPeers> = (0..2).map(|i| view(i, 2)).collect();
    exchange(&mut engines, &views, now);
    let mut early = None;
    for k in 0..n {
        engines[0]
            .write::<Map, _>("m", |m| m.insert(k, k))
            .expect("ready");
        if k == 1 {
            early = Some(engines[0].replica::<Map>("m").expect("registered").clone());
        }
        let (_, ticket) = engines[0].take_commit().expect("encodes").expect("rows");
        engines[0].handle_committed(ticket);
    }
    exchange(&mut engines, &views, now);
    assert_eq!(
        engines[1].replica::<Map>("m").expect("registered").len(),
        n as usize
    );
    let b = engines.pop().expect("two");
    let a = engines.pop().expect("two");
    (a, b, early.expect("at least two writes"))
}

/// Node 0 restarted from `stored` (its actor restored, to be verified).
fn restarted(stored: &Map, now: Instant) -> Engine {
    let mut e = engine(0, EngineConfig::default(), now);
    let parts = crate::storage::StoredReplica {
        head: rmp_serde::to_vec(&crdt::Rows::head(stored)).expect("encodes"),
        rows: crdt::Rows::rows(stored)
            .into_iter()
            .map(|(k, r)| {
                (
                    rmp_serde::to_vec(&k).expect("encodes"),
                    rmp_serde::to_vec(&r).expect("encodes"),
                )
            })
            .collect(),
    };
    e.register_durable("m", Map::new(ActorId(1)), Some(&parts))
        .expect("restores");
    e.verify_restored_actor(ActorId(1));
    e
}

fn pull_all(restarted: &mut Engine, witness: &mut Engine, now: Instant) {
    restarted.handle_timeout(now, &view(0, 2));
    for t in std::iter::from_fn(|| restarted.poll_transmit()).collect::<Vec<_>>() {
        let reply = witness.handle_request(now, restarted.node(), t.message, &view(1, 2));
        for m in reply.into_messages().expect("encodes") {
            restarted.handle_response(witness.node(), m).expect("valid");
        }
    }
    restarted.handle_timeout(now, &view(0, 2));
}

#[test]
fn a_slow_member_that_answers_before_the_verify_bound_keeps_the_actor() {
    let now = Instant::now();
    let (writer, mut witness, _) = writer_and_witness(3, now);
    let current = writer.replica::<Map>("m").expect("registered").clone();
    let mut a = restarted(&current, now);
    let peers = view(0, 2);
    a.handle_timeout(now, &peers);
    let pulls: Vec<Transmit> = std::iter::from_fn(|| a.poll_transmit()).collect();
    // the catch-up bound passes before the member answers
    let later = now + EngineConfig::default().startup_timeout + Duration::from_millis(1);
    a.handle_timeout(later, &peers);
    let _ = std::iter::from_fn(|| a.poll_transmit()).count();
    assert!(a.caught_up() && !a.ready());
    for t in pulls {
        let reply = witness.handle_request(later, a.node(), t.message, &view(1, 2));
        for m in reply.into_messages().expect("encodes") {
            a.handle_response(witness.node(), m).expect("valid");
        }
    }
    a.handle_timeout(later, &peers);
    assert!(a.ready(), "verified by the late answer");
    assert!(
        std::iter::from_fn(|| a.poll_event()).all(|e| !matches!(e, Event::ActorRetired { .. }))
    );
    let delta = a.write::<Map, _>("m", |m| m.insert(50, 1)).expect("ready");
    let dot = delta.iter().next().map(|(_, s)| s[0].dot).expect("one key");
    assert_eq!((dot.actor(), dot.counter()), (ActorId(1), 4));
}

#[test]
fn a_restored_actor_from_a_stale_store_is_retired() {
    let now = Instant::now();
    let (_, mut witness, early) = writer_and_witness(5, now);
    // the data dir came back from a snapshot taken after 2 of the 5 writes
    let mut a = restarted(&early, now);
    assert!(matches!(
        a.write::<Map, _>("m", |m| m.insert(100, 1)),
        Err(SyncError::NotReady)
    ));
    pull_all(&mut a, &mut witness, now);
    let events: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    let retired = events.iter().find_map(|e| match e {
        Event::ActorRetired { old, new, reason } => Some((*old, *new, *reason)),
        _ => None,
    });
    let (old, new, reason) = retired.expect("retired");
    assert_eq!((old, reason), (ActorId(1), "stale store"));
    assert!(a.ready());
    let delta = a
        .write::<Map, _>("m", |m| m.insert(100, 1))
        .expect("ready now");
    let dot = delta.iter().next().map(|(_, s)| s[0].dot).expect("one key");
    assert_eq!(
        (dot.actor(), dot.counter()),
        (new, 1),
        "no dot of actor 1 reused"
    );
    assert_eq!(
        a.replica::<Map>("m").expect("registered").len(),
        6,
        "and nothing lost"
    );
    // the new identity is written with the next commit
    let (commit, _) = a.take_commit().expect("encodes").expect("rows");
    assert_eq!(commit.identity.map(|i| i.actor), Some(new));
}

#[test]
fn a_restored_actor_is_kept_when_the_peers_have_seen_no_more() {
    let now = Instant::now();
    let (writer, mut witness, _) = writer_and_witness(5, now);
    let current = writer.replica::<Map>("m").expect("registered").clone();
    let mut a = restarted(&current, now);
    pull_all(&mut a, &mut witness, now);
    assert!(a.ready() && a.caught_up());
    assert!(
        std::iter::from_fn(|| a.poll_event()).all(|e| !matches!(e, Event::ActorRetired { .. }))
    );
    let delta = a.write::<Map, _>("m", |m| m.insert(100, 1)).expect("ready");
    let dot = delta.iter().next().map(|(_, s)| s[0].dot).expect("one key");
    assert_eq!(
        (dot.actor(), dot.counter()),
        (ActorId(1), 6),
        "the same actor, continued"
    );
}

#[test]
fn unsure_when_a_live_member_does_not_answer_and_alone_trusts_the_store() {
    let now = Instant::now();
    let stored = big_map(1, 3);
    // a member that never answers: unsure, a fresh actor
    let mut a = restarted(&stored, now);
    let peers = view(0, 2);
    a.handle_timeout(now, &peers);
    assert!(!a.ready());
    let later = now + EngineConfig::default().startup_timeout + Duration::from_millis(1);
    a.handle_timeout(later, &peers);
    assert!(a.caught_up(), "caught up as far as the app is concerned");
    assert!(
        !a.ready(),
        "but still verifying: a slow member may yet answer"
    );
    let events: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    assert_eq!(events, vec![Event::CaughtUp(StartupOutcome::TimedOut)]);
    let much_later = now + EngineConfig::default().verify_timeout + Duration::from_millis(1);
    a.handle_timeout(much_later, &peers);
    assert!(a.ready());
    let events: Vec<Event> = std::iter::from_fn(|| a.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::ActorRetired {
            reason: "unsure",
            ..
        }
    )));
    // nobody at all: alone, the store is trusted
    let mut b = restarted(&stored, now);
    let nobody = StaticPeers::new(vec![]);
    b.handle_timeout(later, &nobody);
    assert!(b.caught_up());
    assert!(b.ready());
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert_eq!(events, vec![Event::CaughtUp(StartupOutcome::Alone)]);
    let delta = b.write::<Map, _>("m", |m| m.insert(100, 1)).expect("ready");
    let dot = delta.iter().next().map(|(_, s)| s[0].dot).expect("one key");
    assert_eq!((dot.actor(), dot.counter()), (ActorId(1), 4));
}
