//! Real TCP on 127.0.0.1: nodes converge, a restarted node catches up, other
//! clusters are rejected, and garbage on the port closes that connection
//! without disturbing the node. Waits are bounded and driven by the nodes'
//! change events; nothing sleeps to synchronise.

mod support;

use std::{net::SocketAddr, sync::Arc, time::Duration};
use support::{Member, wire};

use bytes::BytesMut;
use crdt::{ActorId, ORMap};
use futures_util::{SinkExt, StreamExt};
use sync::{
    MAGIC, Message, MessageCodec, Node, NodeConfig, NodeId, PROTOCOL_VERSION, Peer, RejectReason,
    StaticPeers,
};
use testkit::wait::until_event;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_util::codec::{Decoder, Framed};

type Map = ORMap<String, u64>;
const LIMIT: Duration = Duration::from_secs(20);

fn config(name: &str, cluster: &str) -> NodeConfig {
    let mut c = support::config(name, cluster);
    c.engine.purge_interval = Duration::from_millis(500);
    c.seed = Some(name.len() as u64);
    c
}

async fn start(name: &str, cluster: &str, actor: u64) -> Member {
    support::start_kv(config(name, cluster), actor).await
}

fn read(node: &Node) -> Vec<(String, u64)> {
    node.read::<Map, _>("kv", |m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .expect("registered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_converge_after_concurrent_writes() {
    let mut members = Vec::new();
    for i in 0..5 {
        members.push(start(&format!("n{i}"), "test", i + 1).await);
    }
    wire(&members.iter().collect::<Vec<_>>());
    for (i, m) in members.iter().enumerate() {
        for k in 0..20 {
            m.node
                .write::<Map, _>("kv", |map| {
                    map.insert(format!("key{k}"), i as u64 * 100 + k)
                })
                .expect("registered");
        }
        m.node
            .write::<Map, _>("kv", |map| map.insert(format!("own{i}"), i as u64))
            .expect("registered");
    }
    for m in &members {
        until_event(
            m.node.subscribe(),
            "every node reads the same map",
            LIMIT,
            || {
                members
                    .iter()
                    .all(|o| read(&o.node) == read(&members[0].node))
                    && read(&m.node).len() == 25
            },
        )
        .await;
    }
    let a = read(&members[0].node);
    // concurrent writes to key{k} resolve to the highest actor (ActorOrder): n4
    assert!(a.iter().any(|(k, v)| k == "key3" && *v == 403), "{a:?}");
    let metrics = members[0].node.metrics();
    assert!(metrics.deltas_applied > 0);
    assert!(metrics.replicas["kv"].sent > 0 && metrics.replicas["kv"].received > 0);
    for m in members {
        m.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_empty_catches_up() {
    let a = start("a", "test", 1).await;
    let b = start("b", "test", 2).await;
    let c = start("c", "test", 3).await;
    wire(&[&a, &b, &c]);
    for k in 0..50 {
        a.node
            .write::<Map, _>("kv", |m| m.insert(format!("k{k}"), k))
            .expect("registered");
    }
    a.node
        .write::<Map, _>("kv", |m| m.remove(&"k0".to_string()))
        .expect("registered");
    until_event(c.node.subscribe(), "c has a's writes", LIMIT, || {
        read(&c.node).len() == 49
    })
    .await;
    c.node.shutdown().await;
    // c comes back empty, with a fresh actor id and on another port.
    let c = start("c", "test", 30).await;
    wire(&[&a, &b, &c]);
    until_event(c.node.subscribe(), "restarted c catches up", LIMIT, || {
        read(&c.node) == read(&a.node)
    })
    .await;
    assert_eq!(read(&c.node).len(), 49);
    // and its own writes reach the others
    c.node
        .write::<Map, _>("kv", |m| m.insert("from-c".into(), 1))
        .expect("registered");
    until_event(a.node.subscribe(), "a sees c's write", LIMIT, || {
        read(&a.node).len() == 50
    })
    .await;
    for m in [a, b, c] {
        m.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_is_rejected() {
    let a = start("a", "prod", 1).await;
    let intruder = start("x", "staging", 9).await;
    wire(&[&a, &intruder]);
    a.node
        .write::<Map, _>("kv", |m| m.insert("secret".into(), 1))
        .expect("registered");
    intruder
        .node
        .write::<Map, _>("kv", |m| m.insert("junk".into(), 1))
        .expect("registered");
    until_event(
        a.node.subscribe(),
        "both sides count rejections",
        LIMIT,
        || a.node.metrics().rejections > 0 && intruder.node.metrics().rejections > 0,
    )
    .await;
    assert!(read(&intruder.node).iter().all(|(k, _)| k != "secret"));
    assert!(read(&a.node).iter().all(|(k, _)| k != "junk"));
    // What the intruder's handshake gets, seen on the wire:
    let stream = TcpStream::connect(a.node.local_addr())
        .await
        .expect("connect");
    let mut framed = Framed::new(stream, MessageCodec::default());
    framed
        .send(Message::Hello(sync::Hello {
            magic: MAGIC,
            max_version: PROTOCOL_VERSION,
            cluster: "staging".into(),
            node: NodeId("x".into()),
            min_version: sync::MIN_PROTOCOL_VERSION,
        }))
        .await
        .expect("send");
    let reply = framed.next().await.expect("a reply").expect("a frame");
    assert_eq!(
        reply,
        Message::Reject {
            reason: RejectReason::WrongCluster {
                expected: "prod".into()
            }
        }
    );
    assert!(framed.next().await.is_none(), "closed after the rejection");
    a.node.shutdown().await;
    intruder.node.shutdown().await;
}

/// Reads until the peer closes; returns what was read. Panics if the
/// connection stays open past `LIMIT`.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(LIMIT, stream.read(&mut buf)).await {
            Err(_) => panic!("connection left open"),
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversize_frames_close_the_connection_not_the_node() {
    let a = start("a", "test", 1).await;
    let b = start("b", "test", 2).await;
    wire(&[&a, &b]);
    let port = a.node.local_addr();

    // 1. plain garbage as the first bytes
    let mut s = TcpStream::connect(port).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let reply = read_until_closed(&mut s).await;
    let mut reply = BytesMut::from(&reply[..]);
    assert_eq!(
        MessageCodec::default().decode(&mut reply).expect("a frame"),
        Some(Message::Reject {
            reason: RejectReason::NotAHello
        })
    );

    // 2. an oversize length prefix as the first frame
    let mut s = TcpStream::connect(port).await.expect("connect");
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0])
        .await
        .expect("write");
    read_until_closed(&mut s).await;

    // 3. a valid handshake, then an oversize length prefix
    let stream = TcpStream::connect(port).await.expect("connect");
    let mut framed = Framed::new(stream, MessageCodec::default());
    framed
        .send(Message::Hello(sync::Hello {
            magic: MAGIC,
            max_version: PROTOCOL_VERSION,
            cluster: "test".into(),
            node: NodeId("b".into()),
            min_version: sync::MIN_PROTOCOL_VERSION,
        }))
        .await
        .expect("send");
    assert!(matches!(framed.next().await, Some(Ok(Message::HelloOk(_)))));
    let mut s = framed.into_inner();
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).await.expect("write");
    read_until_closed(&mut s).await;

    // 4. a valid handshake, then a frame of garbage
    let stream = TcpStream::connect(port).await.expect("connect");
    let mut framed = Framed::new(stream, MessageCodec::default());
    framed
        .send(Message::Hello(sync::Hello {
            magic: MAGIC,
            max_version: PROTOCOL_VERSION,
            cluster: "test".into(),
            node: NodeId("b".into()),
            min_version: sync::MIN_PROTOCOL_VERSION,
        }))
        .await
        .expect("send");
    assert!(matches!(framed.next().await, Some(Ok(Message::HelloOk(_)))));
    let mut s = framed.into_inner();
    s.write_all(&[0, 0, 0, 3, 0xc1, 0xc1, 0xc1])
        .await
        .expect("write");
    read_until_closed(&mut s).await;

    // 5. half a frame, then silence: closed by the handshake timeout? No —
    //    by the idle timeout; not waited for here (60 s by default).

    // The node still serves its peer.
    a.node
        .write::<Map, _>("kv", |m| m.insert("after".into(), 1))
        .expect("registered");
    until_event(b.node.subscribe(), "b still syncs with a", LIMIT, || {
        read(&b.node).len() == 1
    })
    .await;
    assert!(a.node.metrics().errors + a.node.metrics().rejections >= 4);
    a.node.shutdown().await;
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_limit_get_an_explicit_busy() {
    let peers = Arc::new(StaticPeers::default());
    let mut cfg = config("a", "test");
    cfg.max_inbound_sessions = 1;
    let a = Node::builder(cfg)
        .replica("kv", Map::new(ActorId(1)))
        .expect("fresh")
        .start(peers)
        .await
        .expect("bind");
    let hello = || {
        Message::Hello(sync::Hello {
            magic: MAGIC,
            max_version: PROTOCOL_VERSION,
            cluster: "test".into(),
            node: NodeId("b".into()),
            min_version: sync::MIN_PROTOCOL_VERSION,
        })
    };
    let mut first = Framed::new(
        TcpStream::connect(a.local_addr()).await.expect("connect"),
        MessageCodec::default(),
    );
    first.send(hello()).await.expect("send");
    assert!(matches!(first.next().await, Some(Ok(Message::HelloOk(_)))));
    let mut second = Framed::new(
        TcpStream::connect(a.local_addr()).await.expect("connect"),
        MessageCodec::default(),
    );
    let reply = second.next().await.expect("a reply").expect("a frame");
    assert_eq!(
        reply,
        Message::Reject {
            reason: RejectReason::Busy
        }
    );
    // the first session still works
    first
        .send(Message::Pull {
            replica: "kv".into(),
            digest: crdt::CausalContext::new(),
        })
        .await
        .expect("send");
    assert!(matches!(
        first.next().await,
        Some(Ok(Message::Delta { .. }))
    ));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_connections_reconnect_when_the_peer_comes_up() {
    // Reserve a port for b, then leave it closed for a while.
    let b_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let quiet = |name: &str, listen: SocketAddr| {
        let mut c = config(name, "test");
        c.listen = listen;
        c.engine.notify_fanout = 0; // only a's own pulls can teach it
        c
    };
    let a_peers = Arc::new(StaticPeers::new(vec![Peer {
        id: NodeId("b".into()),
        addr: b_addr,
    }]));
    let a = Node::builder(quiet("a", SocketAddr::from(([127, 0, 0, 1], 0))))
        .replica("kv", Map::new(ActorId(1)))
        .expect("fresh")
        .start(a_peers)
        .await
        .expect("bind");
    until_event(a.subscribe(), "a fails to reach b", LIMIT, || {
        a.metrics().errors >= 2
    })
    .await;
    let b = Node::builder(quiet("b", b_addr))
        .replica("kv", Map::new(ActorId(2)))
        .expect("fresh")
        .start(Arc::new(StaticPeers::default()))
        .await
        .expect("bind the reserved port");
    b.write::<Map, _>("kv", |m| m.insert("from-b".into(), 7))
        .expect("registered");
    until_event(
        a.subscribe(),
        "a reconnects and pulls b's write",
        LIMIT,
        || read(&a).len() == 1,
    )
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_by_the_handshake_timeout() {
    let peers = Arc::new(StaticPeers::default());
    let mut cfg = config("a", "test");
    cfg.handshake_timeout = Duration::from_millis(200);
    let a = Node::builder(cfg)
        .replica("kv", Map::new(ActorId(1)))
        .expect("fresh")
        .start(peers)
        .await
        .expect("bind");
    let mut s = TcpStream::connect(a.local_addr()).await.expect("connect");
    let started = tokio::time::Instant::now();
    read_until_closed(&mut s).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    until_event(a.subscribe(), "the timeout is counted", LIMIT, || {
        a.metrics().errors >= 1
    })
    .await;
    a.shutdown().await;
}
