//! What the engine's tests share: peers named `n<i>`, full views, and a
//! delivery loop over engines in one process.

use std::{net::SocketAddr, time::Instant};

use super::Engine;
use crate::{NodeId, Peer, StaticPeers};

/// Peer `i`: named `n<i>`.
pub(super) fn peer(i: usize) -> Peer {
    Peer {
        id: NodeId(format!("n{i}")),
        addr: SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
    }
}

/// What node `of` of `n` sees: every other node.
pub(super) fn view(of: usize, n: usize) -> StaticPeers {
    StaticPeers::new((0..n).filter(|&j| j != of).map(peer).collect())
}

/// Delivers every queued request among `engines` (node `i` is `engines[i]`,
/// seeing `views[i]`) and its answer, until nothing is queued; requests to
/// nodes not in `engines` are dropped. Returns the number delivered.
pub(super) fn exchange(engines: &mut [Engine], views: &[StaticPeers], now: Instant) -> usize {
    let mut delivered = 0;
    loop {
        let mut queued = Vec::new();
        for (i, e) in engines.iter_mut().enumerate() {
            e.handle_timeout(now, &views[i]);
            while let Some(t) = e.poll_transmit() {
                queued.push((i, t));
            }
        }
        if queued.is_empty() {
            return delivered;
        }
        for (from, t) in queued {
            let to: usize = t.to.id.0[1..].parse().expect("node name");
            if to >= engines.len() {
                continue;
            }
            delivered += 1;
            let from_id = engines[from].node().clone();
            let reply = engines[to].handle_request(now, &from_id, t.message, &views[to]);
            let to_id = engines[to].node().clone();
            for answer in reply.into_messages().expect("encodes") {
                engines[from]
                    .handle_response(&to_id, answer)
                    .expect("valid answer");
            }
        }
    }
}
