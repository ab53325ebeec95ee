//! What the healthcheck tests, the benches and the fuzz mirrors share to run
//! agents: configs for agents on 127.0.0.1, a cluster started seed by seed,
//! and the waits on it (behind the `testing` feature).
//!
//! It lives here and not in `testkit` because it needs the agent's types:
//! `testkit` depends on no crate of the workspace so that every crate can
//! dev-depend on it without a cycle, and this module builds on it (its
//! [`testkit::wait`] and [`testkit::TempDir`]). The crate's own tests reach
//! it through a dev-dependency on the crate itself with this feature on.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use membership::{MemberState, Preset};

use crate::{agent::Agent, config::AgentConfig};

/// How long the cluster waits here may take before they panic.
pub const LIMIT: Duration = Duration::from_secs(30);

/// An agent named `name` of cluster `cluster`, with its data in `data_dir`,
/// every listener on 127.0.0.1 (port 0) and the fast local SWIM preset.
pub fn local_config(name: impl Into<String>, data_dir: PathBuf, cluster: &str) -> AgentConfig {
    let mut c = AgentConfig::local(name, data_dir);
    c.cluster = cluster.into();
    c.preset = Preset::Local;
    c
}

/// Agent `hc-{i}` of cluster `cluster` with its data in `base/hc-{i}`,
/// seeded with `seeds`, on [`local_config`] with the short intervals of the
/// cluster tests: pulls every 200 ms, a takeover grace of 500 ms and records
/// refreshed every 5 s.
pub fn fast_config(i: usize, cluster: &str, base: &Path, seeds: Vec<SocketAddr>) -> AgentConfig {
    let name = format!("hc-{i}");
    let mut c = local_config(name.clone(), base.join(name), cluster);
    c.pull_interval = Duration::from_millis(200);
    c.takeover_grace = Duration::from_millis(500);
    c.record_refresh = Duration::from_secs(5);
    c.seeds = seeds;
    c
}

/// Starts `n` agents one after the other, `config(i, seeds)` each, every one
/// after the first seeded with the first's gossip address. Does not wait
/// for them to see each other ([`cluster`] does).
///
/// # Panics
/// When an agent fails to start.
pub async fn start_seeded(
    n: usize,
    mut config: impl FnMut(usize, Vec<SocketAddr>) -> AgentConfig,
) -> Vec<Agent> {
    let mut agents: Vec<Agent> = Vec::with_capacity(n);
    for i in 0..n {
        let seeds = agents
            .first()
            .map(|a| vec![a.gossip_addr()])
            .unwrap_or_default();
        agents.push(Agent::start(config(i, seeds)).await.expect("agent starts"));
    }
    agents
}

/// Starts agents `hc-0` … `hc-{n-1}` of cluster `cluster` ([`fast_config`],
/// data under `base`), seeded with the first, and waits until each sees all
/// `n` members alive.
///
/// # Panics
/// When an agent fails to start, or not all see each other within [`LIMIT`].
pub async fn cluster(n: usize, cluster: &str, base: &Path) -> Vec<Agent> {
    let agents = start_seeded(n, |i, seeds| fast_config(i, cluster, base, seeds)).await;
    testkit::wait::until("every agent sees all members", LIMIT, || {
        agents.iter().all(|a| alive(a) == n)
    })
    .await;
    agents
}

/// How many members (itself included) `agent` sees alive.
pub fn alive(agent: &Agent) -> usize {
    agent
        .shared()
        .members()
        .iter()
        .filter(|m| m.state == MemberState::Alive)
        .count()
}

/// How many members (itself included) `agent` does not see down (alive or
/// suspect).
pub fn live(agent: &Agent) -> usize {
    agent
        .shared()
        .members()
        .iter()
        .filter(|m| m.state != MemberState::Down)
        .count()
}

/// The value of the first `/metrics` line of `agent` that starts with
/// `needle` (an open API: no token).
///
/// # Panics
/// When the API does not answer or no such line is there.
pub async fn metric(agent: &Agent, needle: &str) -> u64 {
    let body = reqwest::get(format!("http://{}/metrics", agent.api_addr()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    body.lines()
        .find(|l| l.starts_with(needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {needle} in:\n{body}"))
}
