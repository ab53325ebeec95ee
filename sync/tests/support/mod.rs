//! What sync's integration tests share (each test file has `mod support;`):
//! node configs for 127.0.0.1, a node with the peers it is pointed at, and
//! the wiring of a full mesh. Waiting and temp dirs come from `testkit`.
// Each test file is its own crate and uses part of this.
#![allow(dead_code)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use crdt::{ActorId, ORMap};
use sync::{EngineConfig, Node, NodeConfig, Peer, StaticPeers};

/// Node `name` of cluster `cluster` on 127.0.0.1 (port 0): pulls every
/// 50 ms, reconnects after 10 to 200 ms; everything else the defaults.
pub(crate) fn config(name: &str, cluster: &str) -> NodeConfig {
    let mut c = NodeConfig::new(name, cluster, SocketAddr::from(([127, 0, 0, 1], 0)));
    c.engine = EngineConfig {
        pull_interval: Duration::from_millis(50),
        ..EngineConfig::default()
    };
    c.reconnect_backoff_min = Duration::from_millis(10);
    c.reconnect_backoff_max = Duration::from_millis(200);
    c
}

/// `node` as a peer of the others.
pub(crate) fn peer(node: &Node) -> Peer {
    Peer {
        id: node.id().clone(),
        addr: node.local_addr(),
    }
}

/// A running node and the peers it is pointed at.
pub(crate) struct Member {
    pub(crate) node: Node,
    pub(crate) peers: Arc<StaticPeers>,
}

/// Points every member at all the others.
pub(crate) fn wire(members: &[&Member]) {
    for m in members {
        let others = members
            .iter()
            .filter(|o| o.node.id() != m.node.id())
            .map(|o| peer(&o.node))
            .collect();
        m.peers.set(others);
    }
}

/// A node on `config` with one replica, "kv", an empty
/// `ORMap<String, u64>` of actor `actor`, pointed at no peer yet.
pub(crate) async fn start_kv(config: NodeConfig, actor: u64) -> Member {
    let peers = Arc::new(StaticPeers::default());
    let node = Node::builder(config)
        .replica("kv", ORMap::<String, u64>::new(ActorId(actor)))
        .expect("fresh name")
        .start(peers.clone())
        .await
        .expect("bind 127.0.0.1:0");
    Member { node, peers }
}
