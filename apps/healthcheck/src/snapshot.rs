//! [`Snapshot`]: everything the metrics and the status page show, read
//! once from [`Shared`] into plain data. [`crate::metrics`] and
//! [`crate::page`] render from it and import nothing of the agent, so they
//! are pure functions, testable without one.

use std::collections::BTreeMap;

use membership::MemberInfo;

use crate::{
    api_server::ConnectionStats,
    check_core::CheckStats,
    descriptors::Budget,
    maintenance::{Maintenance, Shown},
    node_view::NodeView,
    record::HealthRecord,
    shared::Shared,
    spec::OriginSpec,
};

/// The agent's state at one moment, for rendering.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// What `GET /v1/node` shows.
    pub node: NodeView,
    /// The check core's counters.
    pub checks: CheckStats,
    /// Every member known to SWIM, this agent first.
    pub members: Vec<MemberInfo>,
    /// The registered origins, ascending by id.
    pub origins: Vec<(String, OriginSpec)>,
    /// Every visible health record.
    pub health: BTreeMap<String, HealthRecord>,
    /// Every maintenance in force.
    pub maintenance: BTreeMap<String, Maintenance>,
    /// The API server's connection counters, once it runs.
    pub api_connections: Option<ConnectionStats>,
    /// How the descriptor limit is shared.
    pub descriptors: Budget,
    /// Sync frames refused by the cluster key or name.
    pub sync_rejections: seal::RejectionCounts,
    /// SWIM datagrams refused by the cluster key or name.
    pub swim_rejections: seal::RejectionCounts,
    /// SWIM's counters.
    pub membership: membership::MembershipStats,
    /// When this agent last checked each origin it checks (wall ms).
    pub last_checks: std::collections::HashMap<String, u64>,
    /// Per origin, the transitions this agent saw since it started.
    pub transitions: std::collections::HashMap<String, u64>,
    /// Keys in the cluster keyring (0: plaintext).
    pub cluster_keys: usize,
    /// The wall clock when it was taken (ms since the Unix epoch).
    pub now_ms: u64,
}

impl Snapshot {
    /// What origin `id` shows.
    pub fn shown(&self, id: &str) -> Shown {
        Shown::of(self.health.get(id), self.maintenance.get(id))
    }

    /// Reads `shared` now.
    pub fn of(shared: &Shared) -> Self {
        let origins = shared.origins();
        let members = shared.members();
        Snapshot {
            node: NodeView::with(shared, origins.len(), &members),
            checks: shared.check_stats(),
            members,
            origins,
            health: shared.all_health(),
            maintenance: shared.all_maintenance(),
            api_connections: shared.api_connections.get().map(|c| c.get()),
            descriptors: shared.descriptors,
            sync_rejections: shared.node().rejections(),
            swim_rejections: shared.swim_rejections.snapshot(),
            membership: shared.membership_metrics(),
            last_checks: shared
                .last_checks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            transitions: shared
                .events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .transitions()
                .map(|(o, n)| (o.to_owned(), n))
                .collect(),
            cluster_keys: shared.keyring.as_ref().map_or(0, |k| k.ids().len()),
            now_ms: crate::registry::now_ms(),
        }
    }
}

/// A snapshot of one agent with `origins` origins (`o0000`, …), each with
/// an up record except those at the indexes in `down`.
#[cfg(test)]
pub(crate) fn sample(origins: usize, down: &[usize]) -> Snapshot {
    let origins: Vec<(String, OriginSpec)> = (0..origins)
        .map(|i| {
            (
                format!("o{i:04}"),
                crate::spec::OriginSpec::new("127.0.0.1:9"),
            )
        })
        .collect();
    let health = origins
        .iter()
        .enumerate()
        .map(|(i, (id, _))| {
            let status = if down.contains(&i) {
                crate::record::Status::Down
            } else {
                crate::record::Status::Up
            };
            let record = crate::record::HealthRecord {
                status,
                checked_by: "hc-1".into(),
                checked_at_ms: 1_700_000_000_000,
                since_ms: 1,
                latency_ms: Some(12),
                reason: None,
                confirmation: None,
                suspect: None,
            };
            (id.clone(), record)
        })
        .collect();
    Snapshot {
        node: NodeView {
            id: "hc-1".into(),
            owned_origins: 0,
            checks_total: 0,
            checks_failed: 0,
            takeovers: 0,
            records_written: 0,
            origins: origins.len(),
            members_alive: 1,
            actor: 1,
            uptime_s: 1,
            caught_up: true,
            context_actors: Default::default(),
            sync: sync::Metrics::default(),
        },
        checks: Default::default(),
        members: Vec::new(),
        origins,
        health,
        maintenance: BTreeMap::new(),
        api_connections: None,
        descriptors: crate::descriptors::Budget {
            limit: 1024,
            reserved: 100,
            api: 10,
            checks_in_flight: 10,
            checks_idle: 10,
        },
        sync_rejections: Default::default(),
        swim_rejections: Default::default(),
        membership: Default::default(),
        cluster_keys: 0,
        last_checks: Default::default(),
        transitions: [("o0003".to_owned(), 4)].into(),
        now_ms: 0,
    }
}
