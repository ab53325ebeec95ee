//! Real UDP on 127.0.0.1 with a cluster key: sealed members form one view;
//! strangers (no key, another key, another cluster), replayed and stale
//! datagrams are refused and counted; a key rotates across running members
//! without refusing a datagram or a false down. Waits are bounded polls.

mod support;

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use membership::{Membership, MembershipEvent};
use seal::{DatagramSealer, Key, Keyring};
use testkit::wait::until;
use tokio::net::UdpSocket;

const LIMIT: Duration = Duration::from_secs(20);

async fn start(
    name: &str,
    cluster: &str,
    keyring: Option<Keyring>,
    seeds: Vec<SocketAddr>,
) -> Membership {
    let mut config = support::config(name, 7100, 4, seeds);
    config.seed = Some(name.len() as u64);
    config.keyring = keyring;
    config.cluster = cluster.into();
    Membership::start(config).await.expect("bind 127.0.0.1:0")
}

async fn sealed_cluster(rings: &[Keyring]) -> Vec<Membership> {
    let first = start("m0", "prod", Some(rings[0].clone()), vec![]).await;
    let seed = first.local_addr();
    let mut members = vec![first];
    for (i, ring) in rings.iter().enumerate().skip(1) {
        members.push(start(&format!("m{i}"), "prod", Some(ring.clone()), vec![seed]).await);
    }
    let n = members.len();
    until("one view of all members", LIMIT, || {
        members.iter().all(|m| m.members().len() == n - 1)
    })
    .await;
    members
}

/// Waits until every member has received `more` datagrams after now.
async fn traffic(members: &[Membership], more: u64) {
    let start: Vec<u64> = members
        .iter()
        .map(|m| m.metrics().datagrams_received)
        .collect();
    until("datagrams flow", LIMIT, || {
        members
            .iter()
            .zip(&start)
            .all(|(m, s)| m.metrics().datagrams_received >= s + more)
    })
    .await;
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_replays_and_stale_datagrams_are_refused_and_counted() {
    let key = Key::generate();
    let rings: Vec<Keyring> = (0..3).map(|_| Keyring::new(key.clone())).collect();
    let members = sealed_cluster(&rings).await;
    let seed = members[0].local_addr();

    let plain = start("plain", "prod", None, vec![seed]).await;
    let wrong = start(
        "wrong",
        "prod",
        Some(Keyring::new(Key::generate())),
        vec![seed],
    )
    .await;
    let other = start(
        "other",
        "staging",
        Some(Keyring::new(key.clone())),
        vec![seed],
    )
    .await;
    until("each kind of stranger is counted", LIMIT, || {
        let r = members[0].rejections();
        r.plaintext > 0 && r.unknown_key > 0 && r.forged > 0
    })
    .await;

    // A datagram sealed with the right key, sent twice, and one too old.
    let raw = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let sealer = DatagramSealer::new(Keyring::new(key.clone()), "prod", 30_000, 16);
    let once = sealer.seal(now_ms(), b"not swim").expect("seal");
    raw.send_to(&once, seed).await.expect("send");
    raw.send_to(&once, seed).await.expect("send");
    let old = sealer.seal(now_ms() - 120_000, b"old").expect("seal");
    raw.send_to(&old, seed).await.expect("send");
    until(
        "the replay and the stale datagram are counted",
        LIMIT,
        || {
            let r = members[0].rejections();
            r.replayed == 1 && r.stale == 1
        },
    )
    .await;

    // Nobody let a stranger in, and the strangers saw nobody.
    for m in &members {
        assert_eq!(m.members().len(), 2, "{:?}", m.members());
    }
    for s in [&plain, &wrong, &other] {
        assert!(s.members().is_empty());
    }
    for m in members.into_iter().chain([plain, wrong, other]) {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotates_across_running_members_without_a_false_down() {
    let (old, new) = (Key::generate(), Key::generate());
    let rings: Vec<Keyring> = (0..4).map(|_| Keyring::new(old.clone())).collect();
    let members = sealed_cluster(&rings).await;
    let mut events: Vec<_> = members.iter().map(Membership::subscribe).collect();
    for ring in &rings {
        ring.install(new.clone());
        traffic(&members, 5).await;
    }
    for ring in &rings {
        ring.use_primary(new.id()).expect("installed");
        traffic(&members, 5).await;
    }
    for ring in &rings {
        ring.remove(old.id()).expect("not primary");
        traffic(&members, 5).await;
    }
    for (m, events) in members.iter().zip(&mut events) {
        assert_eq!(m.rejections().total(), 0, "{:?}", m.rejections());
        assert_eq!(m.members().len(), 3);
        while let Ok(event) = events.try_recv() {
            assert!(
                !matches!(event, MembershipEvent::Down(_)),
                "false down during rotation: {event:?}"
            );
        }
    }
    for m in members {
        m.leave().await;
    }
}
