//! The driver: feeds the engine its timers, routes what it wants sent to
//! per-peer connections, and publishes its events.

use std::{collections::HashMap, sync::Arc, time::Instant};

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use super::{Shared, outbound};
use crate::{Message, NodeId, Peer, Transmit};

/// A live outbound connection task and the queue that feeds it.
struct Connection {
    addr: std::net::SocketAddr,
    queue: mpsc::Sender<Message>,
}

pub(super) async fn run(shared: Arc<Shared>, tasks: TaskTracker) {
    let mut connections: HashMap<NodeId, Connection> = HashMap::new();
    loop {
        let deadline = shared.engine().poll_timeout();
        tokio::select! {
            () = shared.shutdown.cancelled() => break,
            () = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                shared.engine().handle_timeout(Instant::now(), &*shared.peers);
            }
            () = shared.wake.notified() => {
                shared.engine().handle_timeout(Instant::now(), &*shared.peers);
            }
        }
        let (transmits, events) = {
            let mut engine = shared.engine();
            let transmits: Vec<Transmit> = std::iter::from_fn(|| engine.poll_transmit()).collect();
            let events: Vec<_> = std::iter::from_fn(|| engine.poll_event()).collect();
            shared.publish_startup(&engine);
            shared
                .watchers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .publish(&mut engine);
            (transmits, events)
        };
        for event in events {
            // No subscriber is fine.
            let _ = shared.events.send(event);
        }
        if transmits.is_empty() {
            continue;
        }
        // Drop connections to peers that left (their queue closes, their
        // task ends) before routing new requests.
        let members: Vec<Peer> = shared.peers.members();
        connections.retain(|id, _| members.iter().any(|p| &p.id == id));
        for Transmit { to, message } in transmits {
            let connection = connections
                .entry(to.id.clone())
                .or_insert_with(|| spawn_connection(&shared, &tasks, &to));
            if connection.addr != to.addr {
                // The peer moved (restarted elsewhere): start over.
                *connection = spawn_connection(&shared, &tasks, &to);
            }
            if connection.queue.try_send(message).is_err() {
                tracing::debug!(peer = %to.id, "outbound queue full, dropping a request");
                shared.record_error();
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, tasks: &TaskTracker, peer: &Peer) -> Connection {
    let (queue, requests) = mpsc::channel(shared.config.outbound_queue.max(1));
    tasks.spawn(outbound::run(shared.clone(), peer.clone(), requests));
    Connection {
        addr: peer.addr,
        queue,
    }
}
