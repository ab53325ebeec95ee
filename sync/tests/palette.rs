//! Every type of the crdt palette replicated by `sync::Node` unchanged: over
//! real TCP on 127.0.0.1, durable through a real redb store across a
//! restart, and sent in chunks when large. Waits are bounded and driven by
//! the nodes' events; nothing sleeps to synchronise.

mod support;

use std::{sync::Arc, time::Duration};
use support::peer;
use testkit::TempDir;

use crdt::{
    AWSet, ActorId, Count, DWFlag, EWFlag, GCounter, LwwReg, MVReg, Map, MapOf, MapOp, PNCounter,
    PosNeg, Rows, SetOf, SetOp,
};
use sync::{Node, NodeBuilder, NodeConfig, StaticPeers, storage::RedbStorage};
use testkit::wait::until_event;

type Budgets = Map<String, PosNeg>;
type Routes = Map<String, MapOf<String, SetOf<String>>>;
const LIMIT: Duration = Duration::from_secs(60);

fn config(name: &str) -> NodeConfig {
    let mut c = support::config(name, "palette");
    c.engine.startup_timeout = Duration::from_millis(500);
    c
}

/// Registers one replica of every type, in memory, for `actor`.
fn in_memory(builder: NodeBuilder, actor: u64) -> NodeBuilder {
    let a = ActorId(actor);
    builder
        .replica("g", GCounter::new(a))
        .and_then(|b| b.replica("pn", PNCounter::new(a)))
        .and_then(|b| b.replica("set", AWSet::<String>::new(a)))
        .and_then(|b| b.replica("ew", EWFlag::new(a)))
        .and_then(|b| b.replica("dw", DWFlag::new(a)))
        .and_then(|b| b.replica("mv", MVReg::<String>::new(a)))
        .and_then(|b| b.replica("lww", LwwReg::<u64>::new(a)))
        .and_then(|b| b.replica("budgets", Budgets::new(a)))
        .and_then(|b| b.replica("routes", Routes::new(a)))
        .expect("distinct names")
}

/// Registers one durable replica of every type.
fn durable(builder: NodeBuilder) -> NodeBuilder {
    builder
        .durable("g", GCounter::new)
        .and_then(|b| b.durable("pn", PNCounter::new))
        .and_then(|b| b.durable("set", AWSet::<String>::new))
        .and_then(|b| b.durable("ew", EWFlag::new))
        .and_then(|b| b.durable("dw", DWFlag::new))
        .and_then(|b| b.durable("mv", MVReg::<String>::new))
        .and_then(|b| b.durable("lww", LwwReg::<u64>::new))
        .and_then(|b| b.durable("budgets", Budgets::new))
        .and_then(|b| b.durable("routes", Routes::new))
        .expect("restores")
}

/// The same writes on any node: `who` names it in the values.
fn write_all(node: &Node, who: &str, n: u64) {
    let w = who.to_string();
    node.write::<GCounter, _>("g", |c| c.increment(n))
        .expect("g");
    node.write::<PNCounter, _>("pn", |c| {
        c.increment(10 * n);
        c.decrement(n)
    })
    .expect("pn");
    node.write::<AWSet<String>, _>("set", |s| {
        s.insert(format!("session-{w}"));
        s.insert("shared".into())
    })
    .expect("set");
    node.write::<EWFlag, _>("ew", |f| if n == 1 { f.enable() } else { f.disable() })
        .expect("ew");
    node.write::<DWFlag, _>("dw", |f| if n == 1 { f.enable() } else { f.disable() })
        .expect("dw");
    node.write::<MVReg<String>, _>("mv", |r| r.write(w.clone()))
        .expect("mv");
    node.write::<LwwReg<u64>, _>("lww", |r| r.write(n))
        .expect("lww");
    node.write::<Budgets, _>("budgets", |m| {
        m.apply("acme".into(), Count::Up(100));
        m.apply("acme".into(), Count::Down(n))
    })
    .expect("budgets");
    node.write::<Routes, _>("routes", |m| {
        m.apply(
            "acme".into(),
            MapOp::Update("/login".into(), SetOp::Add(w.clone())),
        )
    })
    .expect("routes");
}

/// Whether two nodes hold equal states of every replica.
fn same(a: &Node, b: &Node) -> bool {
    fn eq<T: Rows + PartialEq + 'static>(a: &Node, b: &Node, name: &str) -> bool {
        a.read::<T, _>(name, |x| {
            b.read::<T, _>(name, |y| x == y).expect("registered")
        })
        .expect("registered")
    }
    eq::<GCounter>(a, b, "g")
        && eq::<PNCounter>(a, b, "pn")
        && eq::<AWSet<String>>(a, b, "set")
        && eq::<EWFlag>(a, b, "ew")
        && eq::<DWFlag>(a, b, "dw")
        && eq::<MVReg<String>>(a, b, "mv")
        && eq::<LwwReg<u64>>(a, b, "lww")
        && eq::<Budgets>(a, b, "budgets")
        && eq::<Routes>(a, b, "routes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_palette_type_replicates_between_two_nodes_over_tcp() {
    let (pa, pb) = (
        Arc::new(StaticPeers::default()),
        Arc::new(StaticPeers::default()),
    );
    let a = in_memory(Node::builder(config("a")), 1)
        .start(pa.clone())
        .await
        .expect("binds");
    let b = in_memory(Node::builder(config("b")), 2)
        .start(pb.clone())
        .await
        .expect("binds");
    // Concurrent writes on both before they know each other.
    write_all(&a, "a", 1);
    write_all(&b, "b", 2);
    pa.set(vec![peer(&b)]);
    pb.set(vec![peer(&a)]);
    until_event(a.subscribe(), "both nodes hold equal states", LIMIT, || {
        same(&a, &b)
    })
    .await;

    assert_eq!(a.read::<GCounter, _>("g", |c| c.value()).ok(), Some(3));
    assert_eq!(a.read::<PNCounter, _>("pn", |c| c.value()).ok(), Some(27));
    let set = a
        .read::<AWSet<String>, _>("set", |s| s.elements().cloned().collect::<Vec<_>>())
        .expect("set");
    assert_eq!(set, ["session-a", "session-b", "shared"]);
    assert_eq!(
        a.read::<EWFlag, _>("ew", |f| f.is_enabled()).ok(),
        Some(true)
    );
    assert_eq!(
        a.read::<DWFlag, _>("dw", |f| f.is_enabled()).ok(),
        Some(false)
    );
    assert_eq!(
        a.read::<MVReg<String>, _>("mv", |r| r.values()).ok(),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    assert_eq!(
        a.read::<LwwReg<u64>, _>("lww", |r| r.read()).ok(),
        Some(Some(2))
    );
    assert_eq!(
        a.read::<Budgets, _>("budgets", |m| m.get(&"acme".to_string()))
            .ok(),
        Some(Some(197))
    );
    let login = a
        .read::<Routes, _>("routes", |m| {
            m.get(&"acme".to_string())
                .and_then(|r| r.get("/login").cloned())
        })
        .expect("routes");
    assert_eq!(
        login.map(|s| s.into_iter().collect::<Vec<_>>()),
        Some(vec!["a".to_string(), "b".to_string()])
    );

    // A remove of a nested key on a, concurrent with an add inside it on b:
    // b's add survives, and the nodes converge again.
    a.write::<Routes, _>("routes", |m| m.remove(&"acme".to_string()))
        .expect("routes");
    b.write::<Routes, _>("routes", |m| {
        m.apply(
            "acme".into(),
            MapOp::Update("/home".into(), SetOp::Add("b".into())),
        )
    })
    .expect("routes");
    until_event(
        a.subscribe(),
        "equal after the concurrent remove",
        LIMIT,
        || {
            same(&a, &b)
                && a.read::<Routes, _>("routes", |m| m.get(&"acme".to_string()))
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.len() == 1 && r.contains_key("/home"))
        },
    )
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_node_comes_back_with_every_palette_replica_it_acknowledged() {
    let dir = TempDir::new("restart");
    let path = dir.join("node.redb");
    std::fs::create_dir_all(&dir).expect("dir");
    let open = || {
        durable(
            Node::builder(config("d"))
                .storage(RedbStorage::open(&path).expect("opens"))
                .expect("loads"),
        )
    };
    let node = open()
        .start(Arc::new(StaticPeers::default()))
        .await
        .expect("binds");
    node.ready().await;
    write_all(&node, "d", 1);
    node.flush().await.expect("durable");
    let actor = node.read::<GCounter, _>("g", |c| c.actor()).expect("g");
    let before: Vec<u8> = node
        .read::<Routes, _>("routes", |m| rmp_serde::to_vec(m).expect("encode"))
        .expect("routes");
    let budget = node
        .read::<Budgets, _>("budgets", |m| m.get(&"acme".to_string()))
        .expect("budgets");
    node.shutdown().await;
    drop(node);

    let again = open()
        .start(Arc::new(StaticPeers::default()))
        .await
        .expect("binds");
    again.ready().await;
    assert_eq!(
        again.read::<GCounter, _>("g", |c| c.actor()).ok(),
        Some(actor)
    );
    assert_eq!(again.read::<GCounter, _>("g", |c| c.value()).ok(), Some(1));
    assert_eq!(
        again.read::<PNCounter, _>("pn", |c| c.value()).ok(),
        Some(9)
    );
    assert_eq!(
        again
            .read::<Budgets, _>("budgets", |m| m.get(&"acme".to_string()))
            .ok(),
        Some(budget)
    );
    assert_eq!(
        again
            .read::<Routes, _>("routes", |m| rmp_serde::to_vec(m).expect("encode"))
            .ok(),
        Some(before),
        "the nested map comes back byte for byte"
    );
    assert_eq!(
        again.read::<EWFlag, _>("ew", |f| f.is_enabled()).ok(),
        Some(true)
    );
    // It goes on counting after its restored dots, under the same actor.
    again
        .write::<PNCounter, _>("pn", |c| c.decrement(4))
        .expect("pn");
    assert_eq!(
        again.read::<PNCounter, _>("pn", |c| c.value()).ok(),
        Some(5)
    );
    again.flush().await.expect("durable");
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_map_of_counters_travels_in_chunks() {
    const TENANTS: usize = 100_000;
    let mut big = Budgets::new(ActorId(1));
    for t in 0..TENANTS {
        big.apply(format!("tenant-{t:06}"), Count::Up(t as u64 + 1));
    }
    let holder_peers = Arc::new(StaticPeers::default());
    let holder = Node::builder(config("holder"))
        .replica("budgets", big)
        .expect("fresh")
        .start(holder_peers.clone())
        .await
        .expect("binds");
    let fresh = Node::builder(config("fresh"))
        .replica("budgets", Budgets::new(ActorId(2)))
        .expect("fresh")
        .start(Arc::new(StaticPeers::new(vec![peer(&holder)])))
        .await
        .expect("binds");
    holder_peers.set(vec![peer(&fresh)]);
    until_event(
        fresh.subscribe(),
        "the fresh node has every tenant",
        LIMIT,
        || {
            fresh
                .read::<Budgets, _>("budgets", |m| m.stored_keys())
                .expect("registered")
                == TENANTS
        },
    )
    .await;
    let m = fresh.metrics();
    assert!(
        m.chunks_received > 1,
        "sent in chunks ({})",
        m.chunks_received
    );
    assert_eq!(m.answers_dropped, 0);
    let equal = fresh
        .read::<Budgets, _>("budgets", |f| {
            holder
                .read::<Budgets, _>("budgets", |h| f == h)
                .expect("registered")
        })
        .expect("registered");
    assert!(equal, "equal states");
    assert_eq!(
        fresh
            .read::<Budgets, _>("budgets", |m| m.get(&"tenant-099999".to_string()))
            .ok(),
        Some(Some(100_000))
    );
    fresh.shutdown().await;
    holder.shutdown().await;
}
