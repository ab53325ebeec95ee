//! Who a node can pull from: [`NodeId`], [`Peer`] and the [`PeerSource`]
//! trait, with a [`StaticPeers`] list.

use std::{
    fmt,
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use rand::{Rng, seq::IndexedRandom};
use serde::{Deserialize, Serialize};

/// A node's name in the cluster, unique among its members (e.g. `"hc-1"`).
///
/// The one identity type of the workspace: sync's handshakes check it, and
/// membership carries it in every SWIM identity (`membership::MemberId`'s
/// `node`, `membership::MemberInfo`'s `id`), re-exported as
/// `membership::NodeId`. It serializes as its plain string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl NodeId {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        NodeId(s.to_owned())
    }
}

impl From<String> for NodeId {
    fn from(s: String) -> Self {
        NodeId(s)
    }
}

impl PartialEq<str> for NodeId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for NodeId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A node to pull from: its id and the address of its sync listener.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Peer {
    /// The peer's id; the handshake checks it.
    pub id: NodeId,
    /// Where its sync (TCP) listener is.
    pub addr: SocketAddr,
}

/// The current set of live peers, as seen by this node.
///
/// Implemented by [`StaticPeers`] and, in apps, by SWIM membership.
/// Contract: `members` MUST NOT include the local node, SHOULD return only
/// peers believed alive, and MUST be cheap enough to call once per round.
pub trait PeerSource: Send + Sync {
    /// Every live peer, in any order.
    fn members(&self) -> Vec<Peer>;

    /// Up to `n` distinct live peers chosen uniformly at random with `rng`.
    fn sample(&self, n: usize, rng: &mut dyn Rng) -> Vec<Peer> {
        let members = self.members();
        members.sample(&mut RngAdapter(rng), n).cloned().collect()
    }
}

/// `&mut dyn Rng` does not implement `Rng` itself; this forwards to it.
struct RngAdapter<'a>(&'a mut dyn Rng);

impl rand::TryRng for RngAdapter<'_> {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.0.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        Ok(())
    }
}

impl<P: PeerSource + ?Sized> PeerSource for Arc<P> {
    fn members(&self) -> Vec<Peer> {
        (**self).members()
    }
}

/// A fixed (but replaceable) list of peers, for tests and small static
/// deployments.
#[derive(Debug, Default)]
pub struct StaticPeers {
    peers: RwLock<Vec<Peer>>,
}

impl StaticPeers {
    /// A source that always returns `peers`.
    pub fn new(peers: Vec<Peer>) -> Self {
        StaticPeers {
            peers: RwLock::new(peers),
        }
    }

    /// Replaces the list (e.g. after a config reload).
    pub fn set(&self, peers: Vec<Peer>) {
        match self.peers.write() {
            Ok(mut guard) => *guard = peers,
            Err(poisoned) => *poisoned.into_inner() = peers,
        }
    }
}

impl PeerSource for StaticPeers {
    fn members(&self) -> Vec<Peer> {
        match self.peers.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn peer(i: u16) -> Peer {
        Peer {
            id: NodeId(format!("n{i}")),
            addr: SocketAddr::from(([127, 0, 0, 1], 7000 + i)),
        }
    }

    #[test]
    fn sample_returns_distinct_members_and_at_most_all() {
        let source = StaticPeers::new((0..10).map(peer).collect());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let three = source.sample(3, &mut rng);
        assert_eq!(three.len(), 3);
        assert!(three.iter().all(|p| source.members().contains(p)));
        assert_ne!(three[0], three[1]);
        assert_eq!(source.sample(50, &mut rng).len(), 10);
        source.set(vec![]);
        assert!(source.sample(2, &mut rng).is_empty());
    }
}
