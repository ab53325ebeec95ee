//! [`MemberId`]: how a node is known to SWIM.

use std::{fmt, net::SocketAddr};

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// A member's identity: its name, where it gossips (UDP), where it serves
/// sync (TCP), and a bump that makes a restarted node win over its old self.
///
/// Two identities with the same gossip address are the same member at
/// different times: the one with the higher `bump` wins (foca's address
/// conflict rule). A node takes a fresh bump at every start (its start time
/// in milliseconds, so later starts win) and increments it when it learns it
/// was declared down, to rejoin at once under a renewed identity.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberId {
    /// The node's name, unique in the cluster (e.g. `"hc-1"`): the same
    /// [`NodeId`] sync handshakes check.
    pub node: NodeId,
    /// Where its SWIM socket listens.
    pub gossip: SocketAddr,
    /// Where its sync listener is (carried as metadata for the app).
    pub sync: SocketAddr,
    /// Renewal counter: higher wins over lower at the same gossip address.
    pub bump: u64,
}

impl MemberId {
    /// The placeholder identity a seed is announced to before we know its
    /// name: foca accepts an announce addressed to any identity with its
    /// gossip address.
    pub(crate) fn seed(gossip: SocketAddr) -> Self {
        MemberId {
            node: NodeId(String::new()),
            gossip,
            sync: gossip,
            bump: 0,
        }
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.node, self.gossip, self.bump)
    }
}

impl foca::Identity for MemberId {
    type Addr = SocketAddr;

    /// One more than the current bump, or the wall clock in milliseconds if
    /// that is larger. A forged identity at this node's address with a
    /// higher bump (possible without a cluster key: datagrams are then
    /// unauthenticated) is beaten by the first renewal unless its bump is in
    /// the future; with `+1` alone, each renewal lost again and the node
    /// renewed in a loop (found by the `membership_datagram` fuzz target;
    /// regression test `regression_a_forged_member_at_a_peers_address_with_a_higher_bump`).
    fn renew(&self) -> Option<Self> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Some(MemberId {
            bump: self.bump.saturating_add(1).max(now_ms),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.gossip
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

#[cfg(test)]
mod tests {
    use foca::Identity;

    use super::*;

    #[test]
    fn a_renewed_identity_wins_over_the_old_one() {
        let a = MemberId {
            node: "a".into(),
            gossip: "127.0.0.1:1".parse().expect("addr"),
            sync: "127.0.0.1:2".parse().expect("addr"),
            bump: 5,
        };
        let b = a.renew().expect("always renews");
        assert_eq!(b.addr(), a.addr());
        assert!(b.win_addr_conflict(&a) && !a.win_addr_conflict(&b));
    }
}
