//! One cluster, unique names, over real UDP on 127.0.0.1 with the local
//! (fast) preset and no cluster key: a node of another cluster sharing the
//! seeds never joins and is counted as `wrong_cluster`; nodes of one cluster
//! still form it through the plaintext framing; a second live node with a
//! member's name is reported on both sides and listed once as a sync peer,
//! the earlier start kept. Waits are bounded and driven by membership
//! events; nothing sleeps to synchronise.

mod support;

use std::{net::SocketAddr, time::Duration};

use membership::{Membership, MembershipEvent};
use sync::PeerSource;
use testkit::wait::until_event;

const LIMIT: Duration = Duration::from_secs(20);

/// A keyless node of cluster `cluster`, its sync address at `sync_port`,
/// and an explicit `bump` (so which of two nodes is the earlier start does
/// not depend on the clock).
async fn start(
    name: &str,
    cluster: &str,
    seeds: Vec<SocketAddr>,
    sync_port: u16,
    bump: u64,
) -> Membership {
    let mut config = support::config(name, sync_port, 4, seeds);
    config.seed = Some(u64::from(sync_port));
    config.bump = Some(bump);
    config.cluster = cluster.into();
    Membership::start(config).await.expect("bind 127.0.0.1:0")
}

fn names(m: &Membership) -> Vec<String> {
    let mut names: Vec<String> = m.members().into_iter().map(|x| x.id.0).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_a_node_of_another_cluster_never_joins_and_is_counted() {
    let it0 = start("it0", "it", vec![], 7300, 1).await;
    let other = start("other", "other", vec![it0.local_addr()], 7301, 1).await;
    // it1 announces to both of its seeds at once: `other` hears from "it" too
    let it1 = start(
        "it1",
        "it",
        vec![it0.local_addr(), other.local_addr()],
        7302,
        1,
    )
    .await;
    until_event(
        it0.subscribe(),
        "cluster it forms and refuses other's announces",
        LIMIT,
        || {
            it0.members().len() == 1
            && it1.members().len() == 1
            // `other` re-announces every 200 ms while isolated
            && it0.rejections().wrong_cluster >= 3
            && other.rejections().wrong_cluster > 0
        },
    )
    .await;
    assert_eq!(names(&it0), ["it1"]);
    assert_eq!(names(&it1), ["it0"]);
    assert!(other.members().is_empty(), "{:?}", other.members());
    assert!(other.all_members().is_empty() && it0.all_members().len() == 1);
    assert_eq!(
        other.metrics().datagrams_received,
        0,
        "foca never saw cluster it's datagram"
    );
    for m in [&it0, &it1, &other] {
        let r = m.rejections();
        assert_eq!(r.total(), r.wrong_cluster, "only wrong_cluster: {r:?}");
    }
    for m in [it0, it1, other] {
        m.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_of_one_cluster_form_it_through_the_framing() {
    let a = start("a", "it", vec![], 7310, 1).await;
    let b = start("b", "it", vec![a.local_addr()], 7311, 1).await;
    until_event(a.subscribe(), "a and b see each other", LIMIT, || {
        a.members().len() == 1 && b.members().len() == 1
    })
    .await;
    // traffic keeps flowing (probes, gossip) and none of it is refused
    let received = a.metrics().datagrams_received;
    until_event(a.subscribe(), "more datagrams reach foca", LIMIT, || {
        a.metrics().datagrams_received >= received + 10
    })
    .await;
    for m in [&a, &b] {
        assert_eq!(m.rejections().total(), 0, "{:?}", m.rejections());
        assert!(m.name_conflicts().is_empty());
    }
    assert_eq!(names(&a), ["b"]);
    let peers = a.peers().members();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].addr.port(), 7311);
    a.leave().await;
    until_event(b.subscribe(), "a's leave is seen", LIMIT, || {
        b.members().is_empty()
    })
    .await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_live_node_with_a_members_name_is_reported_and_listed_once() {
    let seed = start("seed", "it", vec![], 7320, 1).await;
    let older = start("alpha", "it", vec![seed.local_addr()], 7321, 100).await;
    let observer = start("observer", "it", vec![seed.local_addr()], 7323, 50).await;
    until_event(
        seed.subscribe(),
        "seed, alpha and observer see each other",
        LIMIT,
        || {
            [&seed, &older, &observer]
                .iter()
                .all(|m| m.members().len() == 2)
        },
    )
    .await;
    assert!(older.name_conflicts().is_empty());
    let mut older_events = older.subscribe();

    // The same name at another address, started later (higher bump).
    let newcomer = start("alpha", "it", vec![seed.local_addr()], 7322, 200).await;
    until_event(
        observer.subscribe(),
        "both alphas see the conflict",
        LIMIT,
        || {
            newcomer
                .name_conflicts()
                .iter()
                .any(|m| m.gossip_addr == older.local_addr())
                && older
                    .name_conflicts()
                    .iter()
                    .any(|m| m.gossip_addr == newcomer.local_addr())
                && observer
                    .members()
                    .iter()
                    .filter(|m| m.id == "alpha")
                    .count()
                    == 2
        },
    )
    .await;

    // The newcomer learns who was there first, and that it came later.
    let theirs = newcomer.name_conflicts();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(
        (
            theirs[0].gossip_addr,
            theirs[0].sync_addr.port(),
            theirs[0].bump
        ),
        (older.local_addr(), 7321, 100)
    );
    assert!(newcomer.identity().expect("identity").bump > theirs[0].bump);
    assert_eq!(older.name_conflicts().len(), 1);

    // The older one was told once, naming the newcomer's address.
    let mut raised = Vec::new();
    while let Ok(event) = older_events.try_recv() {
        if let MembershipEvent::NameConflict(m) = event {
            raised.push(m.gossip_addr);
        }
    }
    assert_eq!(raised, [newcomer.local_addr()]);

    // An observer lists both identities, but one peer for the name: the
    // earlier start, at its sync address.
    let alphas: Vec<SocketAddr> = observer
        .peers()
        .members()
        .into_iter()
        .filter(|p| p.id.0 == "alpha")
        .map(|p| p.addr)
        .collect();
    assert_eq!(alphas, [SocketAddr::from(([127, 0, 0, 1], 7321))]);
    let distinct: Vec<(String, u16)> = observer
        .distinct_members()
        .into_iter()
        .map(|m| (m.id.0, m.sync_addr.port()))
        .collect();
    assert!(distinct.contains(&("alpha".into(), 7321)), "{distinct:?}");
    assert_eq!(distinct.len(), 2, "{distinct:?}");
    assert_eq!(
        names(&observer),
        ["alpha", "alpha", "seed"],
        "members() lists every live identity"
    );
    // Neither alpha takes the other for a peer (sync would take it for
    // itself).
    for alpha in [&older, &newcomer] {
        assert!(alpha.peers().members().iter().all(|p| p.id.0 != "alpha"));
    }

    for m in [seed, older, observer, newcomer] {
        m.shutdown().await;
    }
}
