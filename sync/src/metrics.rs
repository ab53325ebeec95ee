//! Counters kept by the engine ([`Engine::stats`](crate::Engine::stats))
//! and the transport, added together by [`Node::metrics`](crate::Node::metrics).

use std::collections::BTreeMap;

use serde::Serialize;

/// A snapshot of a node's sync counters (monotonic since start).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// Periodic pull rounds run.
    pub rounds: u64,
    /// `Pull` requests sent (periodic and notify-triggered).
    pub pulls_sent: u64,
    /// `Pull` requests answered.
    pub pulls_received: u64,
    /// `Notify` messages sent.
    pub notifies_sent: u64,
    /// `Notify` messages received.
    pub notifies_received: u64,
    /// `Notify` messages received whose news this node already had (no pull
    /// followed).
    pub notifies_redundant: u64,
    /// Answers sent that carried a delta.
    pub deltas_sent: u64,
    /// Answers sent that carried nothing (the digest covered everything).
    pub empty_answers_sent: u64,
    /// Answers that shipped no key, only the context and the purge frontier,
    /// to a member that may lack the frontier (at most one per member and
    /// replica per frontier change or purge interval).
    pub frontier_answers_sent: u64,
    /// Answers sent that were the full state (the digest predated a purge).
    pub full_state_answers_sent: u64,
    /// Answers received and joined that carried a delta.
    pub deltas_applied: u64,
    /// Answers whose join taught this node something.
    pub deltas_learned: u64,
    /// Tombstones purged.
    pub purged: u64,
    /// Pulls that found this node's own writes not yet durable, answered
    /// after the next commit.
    pub pulls_parked: u64,
    /// Chunks of large answers received.
    pub chunks_received: u64,
    /// Answers dropped before they were complete (their connection was
    /// lost, or they exceeded the size limit): the replica was left as it
    /// was.
    pub answers_dropped: u64,
    /// Commits written to the store.
    pub commits: u64,
    /// Commits the store refused (the changes stay pending and are retried).
    pub commit_failures: u64,
    /// Connections refused by this node or by a peer (wrong cluster, busy, …);
    /// counted by the transport (0 in [`Engine::stats`](crate::Engine::stats)).
    pub rejections: u64,
    /// Failed connections, timeouts, malformed frames (counted by the
    /// transport) and undecodable answers (by the engine).
    pub errors: u64,
    /// Per replica: bytes on the wire, length prefixes included (counted by
    /// the transport; 0 in [`Engine::stats`](crate::Engine::stats), which
    /// lists every registered replica).
    pub replicas: BTreeMap<String, ReplicaBytes>,
}

/// Bytes sent and received for one replica's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplicaBytes {
    /// Bytes of `Pull`, `Delta` and `Notify` frames sent.
    pub sent: u64,
    /// Bytes of such frames received.
    pub received: u64,
}

impl Metrics {
    /// Total bytes sent over all replicas.
    pub fn bytes_sent(&self) -> u64 {
        self.replicas.values().map(|r| r.sent).sum()
    }

    /// Total bytes received over all replicas.
    pub fn bytes_received(&self) -> u64 {
        self.replicas.values().map(|r| r.received).sum()
    }

    /// Adds `n` bytes sent for `replica`'s messages.
    pub fn record_sent(&mut self, replica: &str, n: u64) {
        self.replica_entry(replica).sent += n;
    }

    /// Adds `n` bytes received for `replica`'s messages.
    pub fn record_received(&mut self, replica: &str, n: u64) {
        self.replica_entry(replica).received += n;
    }

    fn replica_entry(&mut self, replica: &str) -> &mut ReplicaBytes {
        if !self.replicas.contains_key(replica) {
            self.replicas
                .insert(replica.to_owned(), ReplicaBytes::default());
        }
        self.replicas
            .get_mut(replica)
            .expect("inserted just above when missing")
    }
}
