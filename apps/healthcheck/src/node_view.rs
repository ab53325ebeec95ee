//! [`NodeView`]: what `GET /v1/node` answers about this agent, also shown
//! on the status page and read by the demo.

use serde::Serialize;

use crate::shared::Shared;

/// `GET /v1/node`: this agent's counters and state.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    /// The agent's name.
    pub id: String,
    /// Origins this agent checks now.
    pub owned_origins: u64,
    /// Checks run since start.
    pub checks_total: u64,
    /// Of which failed.
    pub checks_failed: u64,
    /// Origins taken over from a silent higher-ranked agent.
    pub takeovers: u64,
    /// Health records written.
    pub records_written: u64,
    /// Origins registered.
    pub origins: usize,
    /// Live members, this agent included.
    pub members_alive: usize,
    /// The actor id this agent's replicas mint dots with (kept across
    /// restarts; a fresh one only for a lost, stale or copied store).
    pub actor: u64,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Whether the agent has caught up with its peers since it started (it
    /// publishes health records only then): a readiness probe.
    pub caught_up: bool,
    /// Per replica, the actors in its causal context: what every digest and
    /// answer carries. One per agent that ever wrote, plus one per lost or
    /// stale store; restarts do not add any.
    pub context_actors: std::collections::BTreeMap<&'static str, usize>,
    /// Sync counters.
    pub sync: sync::Metrics,
}

impl NodeView {
    /// The view of `shared` now.
    pub fn of(shared: &Shared) -> Self {
        let registered = shared.origins_len();
        let members = shared.members();
        Self::with(shared, registered, &members)
    }

    /// The view of `shared` now, given the number of registered origins and
    /// the members (when the caller already has them).
    pub fn with(shared: &Shared, origins: usize, members: &[membership::MemberInfo]) -> Self {
        let s = shared.check_stats();
        NodeView {
            id: shared.me().to_owned(),
            owned_origins: s.owned,
            checks_total: s.checks_ok + s.checks_failed,
            checks_failed: s.checks_failed,
            takeovers: s.takeovers,
            records_written: s.records_written,
            origins,
            members_alive: members
                .iter()
                .filter(|m| m.state != membership::MemberState::Down)
                .count(),
            actor: shared.actor().0,
            uptime_s: shared.started().elapsed().as_secs(),
            caught_up: shared.node().is_caught_up(),
            context_actors: shared.context_actors(),
            sync: shared.node().metrics(),
        }
    }
}
