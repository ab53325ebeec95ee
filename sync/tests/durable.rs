//! Durable nodes, answers of any size and version negotiation over real TCP
//! on 127.0.0.1. Waits are bounded and driven by the nodes' events; nothing
//! sleeps to synchronise.

mod support;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};
use support::peer;
use testkit::TempDir;

use crdt::{ActorId, ORMap};
use futures_util::{SinkExt, StreamExt};
use sync::{
    Event, Hello, MAGIC, Message, MessageCodec, Node, NodeConfig, NodeId, RejectReason,
    StartupOutcome, StaticPeers,
    storage::{MemoryStorage, RedbStorage, Storage},
};
use testkit::wait::until_event;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

type Map = ORMap<String, u64>;
const LIMIT: Duration = Duration::from_secs(60);

fn config(name: &str) -> NodeConfig {
    let mut c = support::config(name, "durable");
    c.engine.startup_timeout = Duration::from_millis(500);
    c
}

async fn durable(name: &str, storage: impl Storage, peers: Arc<StaticPeers>) -> Node {
    Node::builder(config(name))
        .storage(storage)
        .expect("loads")
        .durable("kv", Map::new)
        .expect("restores")
        .start(peers)
        .await
        .expect("binds")
}

async fn in_memory(name: &str, actor: u64, peers: Arc<StaticPeers>) -> Node {
    Node::builder(config(name))
        .replica("kv", Map::new(ActorId(actor)))
        .expect("fresh")
        .start(peers)
        .await
        .expect("binds")
}

fn len(node: &Node) -> usize {
    node.read::<Map, _>("kv", |m| m.len()).expect("registered")
}

fn actor(node: &Node) -> ActorId {
    node.read::<Map, _>("kv", |m| m.actor())
        .expect("registered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_node_comes_back_with_its_actor_and_all_it_acknowledged() {
    let dir = TempDir::new("restart");
    let path = dir.join("node.redb");
    let b_peers = Arc::new(StaticPeers::default());
    let b = in_memory("b", 2, b_peers.clone()).await;
    let a_peers = Arc::new(StaticPeers::new(vec![peer(&b)]));
    let a = durable(
        "a",
        RedbStorage::open(&path).expect("opens"),
        a_peers.clone(),
    )
    .await;
    b_peers.set(vec![peer(&a)]);
    a.ready().await;
    let first = actor(&a);
    for k in 0..100 {
        a.write::<Map, _>("kv", |m| m.insert(format!("k{k}"), k))
            .expect("ready");
    }
    a.flush().await.expect("durable");
    until_event(b.subscribe(), "b has a's writes", LIMIT, || len(&b) == 100).await;
    a.shutdown().await;
    drop(a);

    // Alone (b is not a peer this time): it serves its persisted view and
    // trusts its store.
    let a = durable(
        "a",
        RedbStorage::open(&path).expect("reopens"),
        Arc::new(StaticPeers::default()),
    )
    .await;
    assert_eq!(len(&a), 100, "its persisted view, before any sync");
    a.ready().await;
    assert_eq!(actor(&a), first, "one actor across restarts");
    a.shutdown().await;
    drop(a);

    // With b: verified by b, then it writes on with the same actor.
    let a = durable("a", RedbStorage::open(&path).expect("reopens"), a_peers).await;
    b_peers.set(vec![peer(&a)]);
    a.ready().await;
    assert_eq!(actor(&a), first);
    let delta = a
        .write::<Map, _>("kv", |m| m.insert("after".into(), 1))
        .expect("ready");
    let dot = delta.iter().next().map(|(_, s)| s[0].dot).expect("one key");
    assert_eq!((dot.actor(), dot.counter()), (first, 101));
    a.flush().await.expect("durable");
    until_event(b.subscribe(), "b has the new write", LIMIT, || {
        len(&b) == 101
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_restored_from_an_older_copy_gets_a_fresh_actor_and_loses_nothing() {
    let storage = MemoryStorage::new();
    let b_peers = Arc::new(StaticPeers::default());
    let b = in_memory("b", 2, b_peers.clone()).await;
    let a_peers = Arc::new(StaticPeers::new(vec![peer(&b)]));
    let a = durable("a", storage.clone(), a_peers.clone()).await;
    b_peers.set(vec![peer(&a)]);
    a.ready().await;
    let first = actor(&a);
    a.write::<Map, _>("kv", |m| m.insert("early".into(), 1))
        .expect("ready");
    a.flush().await.expect("durable");
    let snapshot = storage.snapshot();
    for k in 0..10 {
        a.write::<Map, _>("kv", |m| m.insert(format!("late{k}"), k))
            .expect("ready");
    }
    a.flush().await.expect("durable");
    until_event(b.subscribe(), "b has everything", LIMIT, || len(&b) == 11).await;
    a.shutdown().await;
    drop(a);
    storage.replace(snapshot);
    let a = durable("a", storage.clone(), a_peers).await;
    b_peers.set(vec![peer(&a)]);
    let mut events = a.subscribe();
    a.ready().await;
    assert_ne!(actor(&a), first, "the restored actor is not reused");
    let delta = a
        .write::<Map, _>("kv", |m| m.insert("new".into(), 1))
        .expect("ready");
    let dot = delta.iter().next().map(|(_, s)| s[0].dot).expect("one key");
    assert_eq!(dot.counter(), 1, "a fresh actor starts at 1");
    a.flush().await.expect("durable");
    until_event(b.subscribe(), "b has all 12", LIMIT, || len(&b) == 12).await;
    until_event(a.subscribe(), "a has all 12", LIMIT, || len(&a) == 12).await;
    let mut retired = false;
    while let Ok(e) = events.try_recv() {
        retired |= matches!(
            e,
            Event::ActorRetired {
                reason: "stale store",
                ..
            }
        );
    }
    assert!(retired, "said why");
    assert_eq!(
        storage.snapshot().identity.map(|i| i.actor),
        Some(actor(&a)),
        "the fresh actor is persisted"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_reports_a_failed_commit_and_succeeds_once_the_store_recovers() {
    let storage = MemoryStorage::new();
    let a = durable("a", storage.clone(), Arc::new(StaticPeers::default())).await;
    a.ready().await;
    a.flush().await.expect("the first commit");
    storage.fail_commits(1);
    a.write::<Map, _>("kv", |m| m.insert("x".into(), 1))
        .expect("ready");
    let first = a.flush().await;
    assert!(
        matches!(first, Err(sync::SyncError::CommitFailed(_))),
        "{first:?}"
    );
    // retried by the persister: a second flush sees it durable
    tokio::time::timeout(LIMIT, async { while a.flush().await.is_err() {} })
        .await
        .expect("recovers");
    let stored = storage.snapshot();
    assert_eq!(stored.replicas["kv"].rows.len(), 1);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_catches_up_from_a_peer_holding_a_million_keys() {
    const KEYS: u64 = 1_000_000;
    let mut big = Map::new(ActorId(1));
    for k in 0..KEYS {
        big.insert(format!("{k:07}"), k);
    }
    let b_peers = Arc::new(StaticPeers::default());
    let holder = in_memory_with("holder", big, b_peers.clone()).await;
    let fresh_peers = Arc::new(StaticPeers::new(vec![peer(&holder)]));
    let fresh = in_memory("fresh", 2, fresh_peers).await;
    b_peers.set(vec![peer(&fresh)]);
    let t = Instant::now();
    until_event(
        fresh.subscribe(),
        "the fresh node has every key",
        LIMIT,
        || len(&fresh) == KEYS as usize,
    )
    .await;
    let took = t.elapsed();
    let m = fresh.metrics();
    eprintln!(
        "1M keys caught up in {:.1} s: {} chunks, {} bytes received",
        took.as_secs_f64(),
        m.chunks_received,
        m.bytes_received()
    );
    assert!(
        m.chunks_received > 10,
        "sent in chunks ({} of them)",
        m.chunks_received
    );
    assert!(
        m.bytes_received() > sync::DEFAULT_MAX_FRAME_LENGTH as u64,
        "more than one frame could hold"
    );
    assert_eq!(m.answers_dropped, 0);
    assert!(
        fresh
            .read::<Map, _>("kv", |f| holder
                .read::<Map, _>("kv", |h| f == h)
                .expect("registered"))
            .expect("registered"),
        "equal states"
    );
    fresh.shutdown().await;
    holder.shutdown().await;
}

async fn in_memory_with(name: &str, map: Map, peers: Arc<StaticPeers>) -> Node {
    Node::builder(config(name))
        .replica("kv", map)
        .expect("fresh")
        .start(peers)
        .await
        .expect("binds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_a_later_version_joins_and_speaks_this_one() {
    let peers_a = Arc::new(StaticPeers::default());
    let a = in_memory("a", 1, peers_a.clone()).await;
    // a node that speaks a made-up version 3 as well as 2
    let mut later = config("later");
    later.versions = (2, 3);
    let peers_l = Arc::new(StaticPeers::new(vec![peer(&a)]));
    let l = Node::builder(later)
        .replica("kv", Map::new(ActorId(3)))
        .expect("fresh")
        .start(peers_l)
        .await
        .expect("binds");
    peers_a.set(vec![peer(&l)]);
    l.write::<Map, _>("kv", |m| m.insert("from-v3".into(), 3))
        .expect("ready");
    a.write::<Map, _>("kv", |m| m.insert("from-v2".into(), 2))
        .expect("ready");
    until_event(a.subscribe(), "a has the later node's write", LIMIT, || {
        len(&a) == 2
    })
    .await;
    until_event(l.subscribe(), "the later node has a's", LIMIT, || {
        len(&l) == 2
    })
    .await;
    assert!(a.verified_peers().contains(l.id()));
    assert!(l.verified_peers().contains(a.id()));

    // On the wire: a version-3 hello with a field this version does not
    // know gets version 2.
    let later_hello = rmp_serde::to_vec(&std::collections::BTreeMap::from([(
        "Hello",
        (MAGIC, 3u16, "durable", "raw", 2u16, "a version-3 field"),
    )]))
    .expect("encodes");
    let mut stream = TcpStream::connect(a.local_addr()).await.expect("connect");
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(&(later_hello.len() as u32).to_be_bytes())
        .await
        .expect("write");
    stream.write_all(&later_hello).await.expect("write");
    let mut framed = Framed::new(stream, MessageCodec::default());
    match framed.next().await.expect("a reply").expect("a frame") {
        Message::HelloOk(ok) => assert_eq!(ok.version, 2),
        other => panic!("expected hello_ok, got {other:?}"),
    }

    // A node that speaks only version 3 is refused, told the range.
    let stream = TcpStream::connect(a.local_addr()).await.expect("connect");
    let mut framed = Framed::new(stream, MessageCodec::default());
    framed
        .send(Message::Hello(Hello {
            magic: MAGIC,
            max_version: 3,
            cluster: "durable".into(),
            node: NodeId("only-v3".into()),
            min_version: 3,
        }))
        .await
        .expect("send");
    match framed.next().await.expect("a reply").expect("a frame") {
        Message::Reject {
            reason: RejectReason::UnsupportedVersion { min, max },
        } => assert_eq!((min, max), (2, 2)),
        other => panic!("expected a rejection, got {other:?}"),
    }
    a.shutdown().await;
    l.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_handshake_fails_is_not_verified() {
    let peers = Arc::new(StaticPeers::default());
    let a = in_memory("a", 1, peers.clone()).await;
    let mut other = NodeConfig::new(
        "x",
        "another-cluster",
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    other.engine.pull_interval = Duration::from_millis(50);
    let x = Node::builder(other)
        .replica("kv", Map::new(ActorId(9)))
        .expect("fresh")
        .start(Arc::new(StaticPeers::default()))
        .await
        .expect("binds");
    let b = in_memory("b", 2, Arc::new(StaticPeers::default())).await;
    let mut events = a.subscribe();
    peers.set(vec![peer(&x), peer(&b)]);
    let deadline = Instant::now() + LIMIT;
    let (mut failed, mut verified) = (false, false);
    while !(failed && verified) {
        assert!(Instant::now() < deadline, "no verdict for both peers");
        match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Ok(Ok(Event::PeerFailed(id))) if id == *x.id() => failed = true,
            Ok(Ok(Event::PeerVerified(id))) if id == *b.id() => verified = true,
            _ => {}
        }
    }
    let v = a.verified_peers();
    assert!(v.contains(b.id()) && !v.contains(x.id()), "{v:?}");
    a.shutdown().await;
    b.shutdown().await;
    x.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_alone_is_caught_up_after_the_bound() {
    let a = in_memory("a", 1, Arc::new(StaticPeers::default())).await;
    let mut events = a.subscribe();
    tokio::time::timeout(LIMIT, a.caught_up())
        .await
        .expect("caught up");
    let mut outcome = None;
    while let Ok(e) = events.try_recv() {
        if let Event::CaughtUp(o) = e {
            outcome = Some(o);
        }
    }
    assert_eq!(outcome, Some(StartupOutcome::Alone));
    a.shutdown().await;
}
