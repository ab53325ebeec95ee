//! Real UDP on 127.0.0.1 with the local (fast) preset: members form one
//! view, a killed member is declared down by the others, a graceful leave is
//! seen at once, and junk datagrams disturb nothing. Waits are bounded and
//! driven by membership events; nothing sleeps to synchronise.

mod support;

use std::{net::SocketAddr, time::Duration};

use membership::{ClusterTag, Membership, MembershipConfig, MembershipEvent, Preset};
use sync::PeerSource;
use testkit::wait::until_event;
use tokio::net::UdpSocket;

const LIMIT: Duration = Duration::from_secs(20);

async fn start(name: &str, seeds: Vec<SocketAddr>) -> Membership {
    let mut config = support::config(name, 7100, 5, seeds);
    config.seed = Some(name.len() as u64);
    Membership::start(config).await.expect("bind 127.0.0.1:0")
}

async fn cluster(n: usize) -> Vec<Membership> {
    let first = start("m0", vec![]).await;
    let seed = first.local_addr();
    let mut members = vec![first];
    for i in 1..n {
        members.push(start(&format!("m{i}"), vec![seed]).await);
    }
    for m in &members {
        until_event(m.subscribe(), "one view of all members", LIMIT, || {
            m.members().len() == n - 1
        })
        .await;
    }
    members
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_is_declared_down_by_the_others() {
    let mut members = cluster(5).await;
    let victim = members.remove(2);
    let victim_addr = victim.local_addr();
    let mut events = members[0].subscribe();
    victim.shutdown().await; // no goodbye: a crash
    let started = tokio::time::Instant::now();
    for m in &members {
        until_event(m.subscribe(), "the victim is down", LIMIT, || {
            m.members().iter().all(|x| x.gossip_addr != victim_addr)
        })
        .await;
    }
    let took = started.elapsed();
    // The bound is for virtual time; real timers on a shared machine get
    // some slack.
    let bound = Preset::Local.detection_bound(5);
    assert!(took < bound * 3, "took {took:?}, bound {bound:?}");
    let mut saw_down = false;
    while let Ok(event) = events.try_recv() {
        saw_down |= matches!(event, MembershipEvent::Down(ref m) if m.gossip_addr == victim_addr);
    }
    assert!(saw_down, "member 0 published a Down event");
    for m in members {
        m.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_leave_is_seen_at_once_and_peers_follow_the_view() {
    let mut members = cluster(4).await;
    let peers = members[0].peers();
    assert_eq!(peers.members().len(), 3);
    assert!(
        peers.members().iter().all(|p| p.addr.port() == 7100),
        "sync addresses are carried"
    );
    let leaver = members.remove(3);
    let name = leaver.identity().expect("identity").node;
    leaver.leave().await;
    for m in &members {
        until_event(m.subscribe(), "the leaver is gone", LIMIT, || {
            m.members().iter().all(|x| x.id != name)
        })
        .await;
    }
    assert_eq!(peers.members().len(), 2);
    for m in members {
        m.leave().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_and_oversize_datagrams_disturb_nothing() {
    let members = cluster(3).await;
    let target = members[0].local_addr();
    let before = members[0].members();
    // Refused by the core (tagged junk reaches foca) or before it, by the
    // plaintext framing (untagged junk is malformed).
    let refused = |m: &Membership| m.metrics().datagrams_rejected + m.rejections().total();
    let rejected = refused(&members[0]);
    let core_rejected = members[0].metrics().datagrams_rejected;
    // the default cluster's tag, so that half of the junk gets past the
    // framing and is thrown at foca itself
    let tag = ClusterTag::new("vantage");
    let junk = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..200usize {
        // xorshift: reproducible random bytes of random lengths
        let len = if i % 20 == 0 { 65_000 } else { 1 + i % 300 };
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let bytes = if i % 2 == 0 {
            tag.tag_datagram(&bytes)
        } else {
            bytes
        };
        junk.send_to(&bytes, target).await.expect("send");
    }
    until_event(members[0].subscribe(), "the junk is counted", LIMIT, || {
        refused(&members[0]) >= rejected + 150
    })
    .await;
    assert!(
        members[0].metrics().datagrams_rejected > core_rejected
            && members[0].rejections().malformed > 0,
        "junk reached foca and junk was refused before it: {:?}",
        members[0].rejections()
    );
    assert_eq!(members[0].members().len(), before.len());
    // and the member still works: a new member can join through it
    let late = start("late", vec![target]).await;
    until_event(
        members[0].subscribe(),
        "a new member joins through the target",
        LIMIT,
        || members[0].members().len() == 3,
    )
    .await;
    late.leave().await;
    for m in members {
        m.leave().await;
    }
}

/// A member restarted at its address (a crash, then a new process with a
/// later bump) is seen up under its new identity: an `Up` event carries the
/// new bump. Foca reports this as a rename; the app's view of the member
/// (its bump, shown by the health checker's API) went stale without the
/// event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restarted_at_its_address_is_up_under_its_new_identity() {
    let members = cluster(3).await;
    let victim = &members[2];
    let addr = victim.local_addr();
    let old_bump = victim.identity().expect("identity").bump;
    let mut events = members[0].subscribe();
    let mut members = members;
    let victim = members.pop().expect("three");
    victim.shutdown().await; // a crash: no goodbye
    let mut config = MembershipConfig::new("m2", addr, SocketAddr::from(([127, 0, 0, 1], 7100)));
    config.preset = Preset::Local;
    config.initial_cluster_size = 5;
    config.seeds = vec![members[0].local_addr()];
    config.bump = Some(old_bump + 1000);
    let restarted = Membership::start(config)
        .await
        .expect("rebind the same address");
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Up event with the new bump"
        );
        match tokio::time::timeout(Duration::from_millis(100), events.recv()).await {
            Ok(Ok(MembershipEvent::Up(m)))
                if m.gossip_addr == addr && m.bump == old_bump + 1000 =>
            {
                break;
            }
            _ => {}
        }
    }
    assert!(
        members[0]
            .members()
            .iter()
            .any(|m| m.gossip_addr == addr && m.bump == old_bump + 1000)
    );
    restarted.shutdown().await;
    for m in members {
        m.shutdown().await;
    }
}
