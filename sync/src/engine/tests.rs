use crdt::{ActorId, ORMap};

use super::{
    test_support::{exchange, peer},
    *,
};
use crate::StaticPeers;

type Map = ORMap<u32, u32>;

/// `n` engines, each seeing all the others, each with one map "m", past
/// their start-up exchange.
fn cluster(n: usize, config: EngineConfig, now: Instant) -> (Vec<Engine>, Vec<StaticPeers>) {
    let mut engines: Vec<Engine> = (0..n)
        .map(|i| {
            let mut e = Engine::new(peer(i).id, config.clone(), i as u64, now);
            e.register("m", Map::new(ActorId(i as u64 + 1)))
                .expect("fresh name");
            e
        })
        .collect();
    let views = (0..n)
        .map(|i| StaticPeers::new((0..n).filter(|&j| j != i).map(peer).collect()))
        .collect::<Vec<_>>();
    exchange(&mut engines, &views, now);
    assert!(
        engines.iter().all(Engine::caught_up),
        "start-up exchange over"
    );
    (engines, views)
}

fn read(e: &Engine) -> Vec<(u32, u32)> {
    e.replica::<Map>("m")
        .expect("registered")
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect()
}

#[test]
fn a_write_spreads_by_notify_then_pull_before_any_round() {
    let now = Instant::now();
    let (mut engines, views) = cluster(8, EngineConfig::default(), now);
    engines[0]
        .write::<Map, _>("m", |m| m.insert(7, 70))
        .expect("registered");
    assert_eq!(engines[0].poll_timeout(), Some(now), "news is due at once");
    exchange(&mut engines, &views, now);
    let reached = engines.iter().filter(|e| read(e) == vec![(7, 70)]).count();
    // 7 peers: fan-out 2 × ⌈log2(7 + 1)⌉ = 6 notified by the writer,
    // and every learner tells 6 more: all reached, no round needed.
    assert_eq!(reached, 8, "all 8 reached by notifications");
    assert_eq!(engines[0].stats().notifies_sent, 6);
    // later notifications carried news the receivers already had
    assert!(
        engines
            .iter()
            .map(|e| e.stats().notifies_redundant)
            .sum::<u64>()
            > 0
    );
    assert_eq!(engines.iter().map(|e| e.stats().rounds).sum::<u64>(), 0);
}

#[test]
fn periodic_rounds_alone_converge_and_steady_state_ships_no_keys() {
    let start = Instant::now();
    let config = EngineConfig {
        notify_fanout: 0,
        ..EngineConfig::default()
    };
    let (mut engines, views) = cluster(5, config, start);
    for (i, e) in engines.iter_mut().enumerate() {
        e.write::<Map, _>("m", |m| m.insert(i as u32, i as u32))
            .expect("registered");
    }
    assert_eq!(
        engines[0].poll_timeout(),
        Some(engines[0].next_round.min(engines[0].next_purge))
    );
    let mut now = start;
    for _ in 0..30 {
        now += Duration::from_millis(1100);
        exchange(&mut engines, &views, now);
    }
    let expected: Vec<(u32, u32)> = (0..5).map(|i| (i, i)).collect();
    for e in &engines {
        assert_eq!(read(e), expected);
        assert_eq!(e.stats().notifies_sent, 0);
    }
    // From now on, answers carry nothing.
    let before: Vec<Metrics> = engines.iter().map(|e| e.stats()).collect();
    for _ in 0..10 {
        now += Duration::from_millis(1100);
        exchange(&mut engines, &views, now);
    }
    for (e, b) in engines.iter().zip(&before) {
        assert_eq!(
            e.stats().deltas_sent,
            b.deltas_sent,
            "steady state moved key states"
        );
    }
    let empty =
        |ms: &mut dyn Iterator<Item = &Metrics>| ms.map(|m| m.empty_answers_sent).sum::<u64>();
    let after: Vec<Metrics> = engines.iter().map(|e| e.stats()).collect();
    let answered = empty(&mut after.iter()) - empty(&mut before.iter());
    assert!(
        answered >= 5 * 10,
        "{answered} empty answers in 10 rounds of 5 nodes"
    );
    assert!(engines.iter().map(|e| e.stats().rounds).sum::<u64>() >= 5 * 30);
}

#[test]
fn stable_tombstones_are_purged_once_every_member_has_pulled() {
    let start = Instant::now();
    let config = EngineConfig {
        purge_interval: Duration::from_secs(5),
        ..EngineConfig::default()
    };
    let (mut engines, views) = cluster(3, config, start);
    engines[0]
        .write::<Map, _>("m", |m| m.insert(1, 1))
        .expect("registered");
    engines[0]
        .write::<Map, _>("m", |m| m.remove(&1))
        .expect("registered");
    let mut now = start;
    for _ in 0..40 {
        now += Duration::from_millis(1100);
        exchange(&mut engines, &views, now);
    }
    for e in &engines {
        let m = e.replica::<Map>("m").expect("registered");
        assert_eq!(m.stored_keys(), 0, "{} kept its tombstone", e.node());
    }
    assert!(engines.iter().map(|e| e.stats().purged).sum::<u64>() >= 1);
}

#[test]
fn a_node_away_across_a_purge_gets_the_full_state_and_drops_the_removed_value() {
    let start = Instant::now();
    let config = EngineConfig {
        notify_fanout: 0,
        purge_interval: Duration::from_secs(3),
        ..EngineConfig::default()
    };
    let (mut engines, mut views) = cluster(3, config, start);
    engines[2]
        .write::<Map, _>("m", |m| m.insert(1, 10))
        .expect("registered");
    let mut now = start;
    for _ in 0..10 {
        now += Duration::from_millis(1100);
        exchange(&mut engines, &views, now);
    }
    assert!(engines.iter().all(|e| read(e) == vec![(1, 10)]));
    // n2 goes away: the others stop seeing it, and it sees no one.
    views[0] = StaticPeers::new(vec![peer(1)]);
    views[1] = StaticPeers::new(vec![peer(0)]);
    views[2] = StaticPeers::new(vec![]);
    engines[0].forget_peer(&peer(2).id);
    engines[1].forget_peer(&peer(2).id);
    engines[0]
        .write::<Map, _>("m", |m| m.remove(&1))
        .expect("registered");
    for _ in 0..20 {
        now += Duration::from_millis(1100);
        exchange(&mut engines, &views, now);
    }
    for e in &engines[..2] {
        let m = e.replica::<Map>("m").expect("registered");
        assert_eq!(m.stored_keys(), 0, "{} purged the tombstone", e.node());
    }
    assert_eq!(
        read(&engines[2]),
        vec![(1, 10)],
        "n2 still holds the removed value"
    );
    // n2 comes back.
    let full_before: u64 = engines
        .iter()
        .map(|e| e.stats().full_state_answers_sent)
        .sum();
    views = (0..3)
        .map(|i| StaticPeers::new((0..3).filter(|&j| j != i).map(peer).collect()))
        .collect();
    for _ in 0..10 {
        now += Duration::from_millis(1100);
        exchange(&mut engines, &views, now);
    }
    let full_after: u64 = engines
        .iter()
        .map(|e| e.stats().full_state_answers_sent)
        .sum();
    assert!(
        full_after > full_before,
        "n2's digest predates the purge: full state"
    );
    assert!(
        engines.iter().all(|e| read(e).is_empty()),
        "the removed value is gone everywhere"
    );
}

#[test]
fn a_notification_from_a_stranger_triggers_nothing() {
    let now = Instant::now();
    let (mut engines, views) = cluster(2, EngineConfig::default(), now);
    let stranger = NodeId("stranger".into());
    let answer = engines[0].handle_request(
        now,
        &stranger,
        Message::Notify {
            replica: "m".into(),
            news: vec![],
        },
        &views[0],
    );
    assert!(matches!(answer, Reply::Nothing));
    engines[0].handle_timeout(now, &views[0]);
    assert!(engines[0].poll_transmit().is_none());
}

#[test]
fn pulls_for_unknown_replicas_get_an_empty_answer_and_grow_nothing() {
    let now = Instant::now();
    let (mut engines, views) = cluster(2, EngineConfig::default(), now);
    let from = engines[1].node().clone();
    for i in 0..100 {
        let answer = engines[0].handle_request(
            now,
            &from,
            Message::Pull {
                replica: format!("nope{i}"),
                digest: CausalContext::new(),
            },
            &views[0],
        );
        let messages = answer.into_messages().expect("encodes");
        assert!(matches!(
            messages.as_slice(),
            [Message::Delta { delta: None, .. }]
        ));
    }
    assert_eq!(engines[0].stats().replicas.len(), 1);
    assert!(engines[0].digests.get(&from).is_none_or(|d| d.len() <= 1));
    // a non-member's pulls are answered but its digest is not kept
    for i in 0..100 {
        let stranger = NodeId(format!("stranger{i}"));
        let pull = Message::Pull {
            replica: "m".into(),
            digest: CausalContext::new(),
        };
        assert!(matches!(
            engines[0].handle_request(now, &stranger, pull, &views[0]),
            Reply::Answer(_)
        ));
    }
    assert!(engines[0].digests.len() <= 1);
}

#[test]
fn an_undecodable_answer_is_an_error_and_changes_nothing() {
    let now = Instant::now();
    let (mut engines, _) = cluster(2, EngineConfig::default(), now);
    let from = engines[1].node().clone();
    let bad = Message::Delta {
        replica: "m".into(),
        delta: Some(bytes::Bytes::from_static(&[0xc1, 0xff, 0x00])),
        full: false,
    };
    assert!(matches!(
        engines[0].handle_response(&from, bad),
        Err(SyncError::Decode { .. })
    ));
    assert_eq!(engines[0].stats().errors, 1);
    assert!(read(&engines[0]).is_empty());
}

/// Runs node `i`'s timers at `now` and delivers what it sends (its pulls)
/// and the answers, and nothing else: one node's round, on its own.
fn step(engines: &mut [Engine], views: &[StaticPeers], i: usize, now: Instant) {
    engines[i].handle_timeout(now, &views[i]);
    let mut sent = Vec::new();
    while let Some(t) = engines[i].poll_transmit() {
        sent.push(t);
    }
    for t in sent {
        let to: usize = t.to.id.0[1..].parse().expect("node name");
        let from_id = engines[i].node().clone();
        let reply = engines[to].handle_request(now, &from_id, t.message, &views[to]);
        let to_id = engines[to].node().clone();
        for answer in reply.into_messages().expect("encodes") {
            engines[i]
                .handle_response(&to_id, answer)
                .expect("valid answer");
        }
    }
}

/// Issue 13 case (b) through the engine: n0 removes k while n1 writes it
/// concurrently; n1 learns the remove, n0 purges its tombstone before it
/// sees n1's write, then pulls it. n1 has every dot n0 has, so its pulls
/// get no delta: only the frontier answer tells it to drop the tombstone
/// that n0 purged. Without it the two read the same and differ as states
/// for ever.
#[test]
fn regression_a_member_with_every_dot_still_learns_the_purge_frontier() {
    let start = Instant::now();
    let config = EngineConfig {
        notify_fanout: 0,
        purge_interval: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    let (mut engines, views) = cluster(2, config, start);
    let mut now = start;
    let mut tick = |engines: &mut [Engine], i: usize| {
        now += Duration::from_millis(1100);
        step(engines, &views, i, now);
    };
    engines[0]
        .write::<Map, _>("m", |m| m.insert(1, 1))
        .expect("registered");
    tick(&mut engines, 1);
    assert_eq!(read(&engines[1]), vec![(1, 1)]);
    engines[0]
        .write::<Map, _>("m", |m| m.remove(&1))
        .expect("registered");
    engines[1]
        .write::<Map, _>("m", |m| m.insert(1, 5))
        .expect("registered");
    tick(&mut engines, 1); // n1 learns the remove: k holds 5 and a tombstone
    tick(&mut engines, 1); // n0 records n1's digest, which has the tombstone
    let m1 = || engines[1].replica::<Map>("m").expect("registered");
    assert_eq!(m1().siblings(&1).len(), 2);
    tick(&mut engines, 0); // n0 purges k, then pulls n1's write
    let m0 = engines[0].replica::<Map>("m").expect("registered");
    assert!(!m0.purge_frontier().is_empty(), "n0 purged");
    assert_eq!(m0.siblings(&1).len(), 1);
    let frontier_before = engines[0].stats().frontier_answers_sent;
    for _ in 0..3 {
        tick(&mut engines, 1);
        tick(&mut engines, 0);
    }
    assert!(engines[0].stats().frontier_answers_sent > frontier_before);
    let (m0, m1) = (
        engines[0].replica::<Map>("m").expect("registered"),
        engines[1].replica::<Map>("m").expect("registered"),
    );
    assert_eq!(m1.siblings(&1).len(), 1, "n1 dropped the purged tombstone");
    assert_eq!(m0, m1, "equal as states");
    assert_eq!(read(&engines[0]), vec![(1, 5)]);
}
