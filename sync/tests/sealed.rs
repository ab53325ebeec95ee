//! Real TCP on 127.0.0.1 with a cluster key: sealed nodes converge, a key
//! rotates across a running cluster without losing a write or refusing a
//! frame, and nodes without the key, with another key or of another cluster
//! are refused and counted. Waits are bounded polls of node state.

mod support;

use std::{sync::Arc, time::Duration};
use support::{Member, wire};

use crdt::{ActorId, ORMap};
use sync::{
    Node, Peer, StaticPeers,
    seal::{Key, Keyring},
};
use testkit::wait::until;
use tokio::{io::AsyncWriteExt, net::TcpStream};

type Map = ORMap<String, u64>;
const LIMIT: Duration = Duration::from_secs(20);

async fn start(name: &str, cluster: &str, keyring: Option<Keyring>) -> Member {
    let mut c = support::config(name, cluster);
    c.reconnect_backoff_max = Duration::from_millis(100);
    c.seed = Some(name.len() as u64);
    c.keyring = keyring;
    let peers = Arc::new(StaticPeers::default());
    let actor = name.bytes().map(u64::from).sum::<u64>();
    let node = Node::builder(c)
        .replica("kv", Map::new(ActorId(actor)))
        .expect("fresh name")
        .start(peers.clone())
        .await
        .expect("bind");
    Member { node, peers }
}

fn has(node: &Node, key: &str) -> bool {
    node.read::<Map, _>("kv", |m| m.get(&key.to_owned()).is_some())
        .expect("registered")
}

fn write(node: &Node, key: &str) {
    node.write::<Map, _>("kv", |m| m.insert(key.to_owned(), 1))
        .expect("registered");
}

/// Writes a key on each member and waits until every member has all of them.
async fn round(members: &[&Member], label: &str) {
    for (i, m) in members.iter().enumerate() {
        write(&m.node, &format!("{label}-{i}"));
    }
    until(label, LIMIT, || {
        members
            .iter()
            .all(|m| (0..members.len()).all(|i| has(&m.node, &format!("{label}-{i}"))))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotates_across_a_running_cluster_without_losing_a_write() {
    let old = Key::generate();
    let new = Key::generate();
    let rings: Vec<Keyring> = (0..3).map(|_| Keyring::new(old.clone())).collect();
    let mut members = Vec::new();
    for (i, ring) in rings.iter().enumerate() {
        members.push(start(&format!("n{i}"), "prod", Some(ring.clone())).await);
    }
    let all: Vec<&Member> = members.iter().collect();
    wire(&all);
    round(&all, "before").await;
    // One node at a time, as an operator would, with writes in between.
    for (i, ring) in rings.iter().enumerate() {
        ring.install(new.clone());
        round(&all, &format!("installed{i}")).await;
    }
    for (i, ring) in rings.iter().enumerate() {
        ring.use_primary(new.id()).expect("installed");
        round(&all, &format!("switched{i}")).await;
    }
    for (i, ring) in rings.iter().enumerate() {
        ring.remove(old.id()).expect("not primary");
        round(&all, &format!("removed{i}")).await;
    }
    for m in &members {
        assert_eq!(
            m.node.rejections().total(),
            0,
            "no frame refused during the rotation: {:?}",
            m.node.rejections()
        );
        assert_eq!(m.node.metrics().errors, 0);
    }
    // A node still on the old key alone is now refused.
    let stale = start("stale", "prod", Some(Keyring::new(old.clone()))).await;
    write(&stale.node, "from-stale");
    stale.peers.set(vec![Peer {
        id: members[0].node.id().clone(),
        addr: members[0].node.local_addr(),
    }]);
    until("the old key is refused", LIMIT, || {
        members[0].node.rejections().unknown_key > 0
    })
    .await;
    assert!(!has(&members[0].node, "from-stale"));
    for m in members.iter().chain([&stale]) {
        m.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_other_keys_and_other_clusters_are_refused_and_counted() {
    let key = Key::generate();
    let a = start("a", "prod", Some(Keyring::new(key.clone()))).await;
    let b = start("b", "prod", Some(Keyring::new(key.clone()))).await;
    wire(&[&a, &b]);
    write(&a.node, "shared");
    until("sealed nodes converge", LIMIT, || has(&b.node, "shared")).await;

    // Each intruder holds a secret and pulls from `a`.
    let plain = start("plain", "prod", None).await;
    let wrong_key = start("wrongkey", "prod", Some(Keyring::new(Key::generate()))).await;
    let other_cluster = start("other", "staging", Some(Keyring::new(key.clone()))).await;
    for intruder in [&plain, &wrong_key, &other_cluster] {
        write(&intruder.node, &format!("secret-{}", intruder.node.id()));
        intruder.peers.set(vec![Peer {
            id: a.node.id().clone(),
            addr: a.node.local_addr(),
        }]);
    }
    until("all three kinds are counted", LIMIT, || {
        let r = a.node.rejections();
        r.plaintext > 0 && r.unknown_key > 0 && r.forged > 0
    })
    .await;
    // Garbage that happens to start like a sealed frame is refused too.
    let mut raw = TcpStream::connect(a.node.local_addr())
        .await
        .expect("connect");
    raw.write_all(&[0, 0, 0, 30, 0xC1, 1, 0, 9, 9, 9, 9])
        .await
        .expect("write");
    raw.write_all(&[0u8; 23]).await.expect("write");
    until("the malformed frame is counted", LIMIT, || {
        a.node.rejections().malformed > 0
    })
    .await;
    // Nothing leaked either way.
    for intruder in [&plain, &wrong_key, &other_cluster] {
        assert!(!has(&a.node, &format!("secret-{}", intruder.node.id())));
        assert!(!has(&intruder.node, "shared"));
    }
    // And the cluster still works.
    write(&b.node, "after");
    until("sealed nodes still converge", LIMIT, || {
        has(&a.node, "after")
    })
    .await;
    for m in [&a, &b, &plain, &wrong_key, &other_cluster] {
        m.node.shutdown().await;
    }
}
