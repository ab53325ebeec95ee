//! `healthcheck demo`: a whole cluster in one process on 127.0.0.1, with its
//! own fake origins (healthy, dead, failing, flapping), a live summary, and
//! one agent killed midway to show the takeover.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    time::{Duration, Instant},
};

use membership::Preset;

use crate::{
    agent::Agent,
    config::AgentConfig,
    fake_origin::{Behaviour, FakeOrigin},
    record::Status,
    spec::OriginSpec,
};

/// Settings of the demo.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Agents to run.
    pub nodes: usize,
    /// Fake origins to check.
    pub origins: usize,
    /// How long to run.
    pub duration: Duration,
    /// Check interval of every origin.
    pub interval: Duration,
}

/// What the demo measured.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    /// The agent killed midway, if any.
    pub killed: Option<String>,
    /// Origins it was checking when killed.
    pub orphaned: usize,
    /// Per orphaned origin, time from its last check by the killed agent to
    /// its first check by another agent.
    pub gaps: Vec<Duration>,
    /// Orphaned origins that no other agent checked before the end.
    pub never_taken_over: usize,
    /// Summary windows in steady state with an origin checked by two agents.
    pub duplicate_windows: usize,
    /// Checks per second, averaged over the run.
    pub checks_per_second: f64,
    /// Checks made as a second opinion before an origin was called down
    /// (not counted as a second checker).
    pub second_opinions: u64,
}

fn behaviour(i: usize) -> Behaviour {
    match i % 10 {
        0..=5 => Behaviour::Healthy,
        6 => Behaviour::Down,
        7 => Behaviour::Failing,
        _ => Behaviour::Flapping {
            period: Duration::from_secs(6 + (i % 5) as u64),
        },
    }
}

fn user_agent_node(ua: &str) -> Option<&str> {
    ua.rsplit_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
}

/// Who checked each origin since the last call (by agent name), and resets;
/// the checks made as a second opinion are only counted (into
/// `second_opinions`): they are not a second checker.
fn window(
    origins: &[(String, FakeOrigin)],
    second_opinions: &mut u64,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    origins
        .iter()
        .map(|(id, o)| {
            let mut by: BTreeMap<String, u64> = BTreeMap::new();
            for (ua, n) in o.hits_by() {
                if ua.ends_with("; second opinion)") {
                    *second_opinions += n;
                } else if let Some(node) = user_agent_node(&ua) {
                    *by.entry(node.to_owned()).or_default() += n;
                }
            }
            o.reset_hits();
            (id.clone(), by)
        })
        .collect()
}

/// Runs the demo, printing as it goes.
///
/// # Errors
/// If an agent or a fake origin cannot start.
pub async fn run(config: DemoConfig) -> anyhow::Result<DemoReport> {
    let base = std::env::temp_dir().join(format!("vantage-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    println!(
        "starting {} fake origins and {} agents on 127.0.0.1 …",
        config.origins, config.nodes
    );
    let origins = start_origins(config.origins).await?;
    let secrets = Secrets::write(&base)?;
    let agents = start_cluster(&config, &base, &secrets).await?;
    register(&agents[0], &origins, config.interval).await?;
    print_intro(&config, agents[0].api_addr(), &secrets);
    let (report, agents) = watch(&config, agents, &origins).await;
    print_outcome(&report);
    for a in agents {
        a.shutdown().await;
    }
    for (_, o) in origins {
        o.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&base);
    Ok(report)
}

/// The fake origins, `origin-000` up, behaving as [`behaviour`] says.
async fn start_origins(n: usize) -> anyhow::Result<Vec<(String, FakeOrigin)>> {
    let mut origins = Vec::with_capacity(n);
    for i in 0..n {
        origins.push((
            format!("origin-{i:03}"),
            FakeOrigin::start(behaviour(i)).await?,
        ));
    }
    Ok(origins)
}

/// The demo's secrets: its cluster traffic is sealed with a fresh cluster
/// key, and its API asks for a token, as a production cluster's should.
struct Secrets {
    key_file: PathBuf,
    token_file: PathBuf,
    token: String,
}

impl Secrets {
    fn write(base: &std::path::Path) -> anyhow::Result<Secrets> {
        std::fs::create_dir_all(base)?;
        let key_file = base.join("cluster.keys");
        std::fs::write(
            &key_file,
            format!("{}\n", seal::Key::generate().to_base64()),
        )?;
        let token = crate::tokens::generate();
        let token_file = base.join("api.tokens");
        std::fs::write(&token_file, format!("write {token}\n"))?;
        Ok(Secrets {
            key_file,
            token_file,
            token,
        })
    }
}

/// Starts `config.nodes` agents, each seeded with the first.
async fn start_cluster(
    config: &DemoConfig,
    base: &std::path::Path,
    secrets: &Secrets,
) -> anyhow::Result<Vec<Agent>> {
    let mut agents: Vec<Agent> = Vec::new();
    for i in 0..config.nodes {
        let mut c = AgentConfig::local(format!("hc-{i}"), data_dir(base, i));
        c.cluster = "demo".into();
        c.key_file = Some(secrets.key_file.clone());
        c.token_file = Some(secrets.token_file.clone());
        c.preset = Preset::Local;
        c.pull_interval = Duration::from_millis(500);
        c.takeover_grace = Duration::from_secs(1);
        c.record_refresh = Duration::from_secs(10);
        c.seeds = agents
            .first()
            .map(|a: &Agent| vec![a.gossip_addr()])
            .unwrap_or_default();
        agents.push(Agent::start(c).await?);
    }
    Ok(agents)
}

/// Registers every fake origin through `agent`.
async fn register(
    agent: &Agent,
    origins: &[(String, FakeOrigin)],
    interval: Duration,
) -> anyhow::Result<()> {
    for (id, origin) in origins {
        let mut spec = OriginSpec::new(origin.addr().to_string());
        spec.path = "/health".into();
        spec.interval_ms = interval.as_millis() as u64;
        spec.timeout_ms = (interval.as_millis() as u64 / 2).max(10);
        spec.rise = 2;
        spec.fall = 2;
        agent.shared().put_origin(id, spec).await?;
    }
    Ok(())
}

fn print_intro(config: &DemoConfig, api: std::net::SocketAddr, secrets: &Secrets) {
    let token = &secrets.token;
    println!(
        "status page of hc-0: http://{api}/   (API: http://{api}/v1/origins, metrics: http://{api}/metrics)"
    );
    println!(
        "API token: {token}   (curl -H 'Authorization: Bearer {token}' …; in a browser, any user name and the token as the password)"
    );
    println!(
        "cluster traffic sealed with a fresh cluster key ({})",
        secrets.key_file.display()
    );
    let dead = (0..config.origins)
        .filter(|i| matches!(behaviour(*i), Behaviour::Down))
        .count();
    println!(
        "origins: 60% healthy, {dead} dead (refusing connections), 10% failing (503), 20% flapping; checked every {:?}",
        config.interval
    );
    println!(
        "killing one agent at {:?}; running for {:?}\n",
        config.duration / 2,
        config.duration
    );
}

/// The takeover being timed: when the victim was killed, the last time it
/// checked each of its origins, and when another agent first did.
#[derive(Default)]
struct Takeover {
    killed_at: Option<Instant>,
    victim: Option<String>,
    last_by_victim: HashMap<String, Instant>,
    taken_over: HashMap<String, Instant>,
}

impl Takeover {
    /// Whether origins of the victim are still waiting for another checker.
    fn pending(&self) -> bool {
        self.killed_at.is_some() && self.taken_over.len() < self.last_by_victim.len()
    }

    /// Notes the origins checked by someone other than the victim.
    fn observe(&mut self, seen: &BTreeMap<String, BTreeMap<String, u64>>) {
        let Some(victim) = &self.victim else {
            return;
        };
        let now = Instant::now();
        for (id, by) in seen {
            if self.last_by_victim.contains_key(id)
                && !self.taken_over.contains_key(id)
                && by.keys().any(|n| n != victim)
            {
                self.taken_over.insert(id.clone(), now);
            }
        }
    }

    /// Kills the agent checking the most origins (never hc-0: it serves the
    /// page), noting what it was checking in the last window.
    async fn kill_busiest(
        &mut self,
        agents: &mut Vec<Agent>,
        seen: &BTreeMap<String, BTreeMap<String, u64>>,
    ) {
        let victim = (1..agents.len())
            .max_by_key(|&i| agents[i].shared().check_stats().owned)
            .unwrap_or(1);
        let name = agents[victim].node().to_owned();
        for (id, by) in seen {
            if by.contains_key(&name) {
                self.last_by_victim.insert(id.clone(), Instant::now());
            }
        }
        let agent = agents.remove(victim);
        println!(
            ">>> killing {name} (it was checking {} origins)",
            self.last_by_victim.len()
        );
        agent.kill().await;
        self.killed_at = Some(Instant::now());
        self.victim = Some(name);
    }

    /// Puts the victim, its orphans and their gaps into `report`.
    fn report(&self, report: &mut DemoReport) {
        report.killed = self.victim.clone();
        report.orphaned = self.last_by_victim.len();
        for (id, last) in &self.last_by_victim {
            match self.taken_over.get(id) {
                Some(t) => report.gaps.push(t.saturating_duration_since(*last)),
                None => report.never_taken_over += 1,
            }
        }
        report.gaps.sort();
    }
}

/// Watches the cluster for `config.duration`, printing a summary line per
/// tick and killing one agent halfway; returns the report and the agents
/// still running.
async fn watch(
    config: &DemoConfig,
    mut agents: Vec<Agent>,
    origins: &[(String, FakeOrigin)],
) -> (DemoReport, Vec<Agent>) {
    let mut report = DemoReport::default();
    let start = Instant::now();
    let tick = Duration::from_secs(2);
    let mut total_checks = 0u64;
    let mut takeover = Takeover::default();
    // What came before the watch is not counted.
    window(origins, &mut 0);
    let mut last_tick = Instant::now();
    // Checkers per origin since the last summary line.
    let mut acc: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let dead: Vec<bool> = (0..config.origins)
        .map(|i| matches!(behaviour(i), Behaviour::Down))
        .collect();
    while start.elapsed() < config.duration {
        // Poll fast around the kill to time the takeover; otherwise per tick.
        let step = if takeover.pending() {
            Duration::from_millis(50)
        } else {
            tick
        };
        tokio::time::sleep(step).await;
        let seen = window(origins, &mut report.second_opinions);
        total_checks += seen.values().flat_map(|by| by.values()).sum::<u64>();
        for (id, by) in &seen {
            let entry = acc.entry(id.clone()).or_default();
            for (node, n) in by {
                *entry.entry(node.clone()).or_default() += n;
            }
        }
        takeover.observe(&seen);
        if takeover.killed_at.is_none()
            && start.elapsed() >= config.duration / 2
            && agents.len() > 1
        {
            takeover.kill_busiest(&mut agents, &seen).await;
            continue;
        }
        if last_tick.elapsed() >= tick {
            let elapsed = last_tick.elapsed();
            last_tick = Instant::now();
            print_summary(
                &agents,
                &acc,
                &dead,
                elapsed,
                start.elapsed(),
                &mut report,
                takeover.killed_at.is_some(),
            );
            acc.clear();
        }
    }
    takeover.report(&mut report);
    report.checks_per_second = total_checks as f64 / start.elapsed().as_secs_f64();
    (report, agents)
}

fn print_outcome(report: &DemoReport) {
    println!();
    if let Some(k) = &report.killed {
        let max = report.gaps.last().copied().unwrap_or_default();
        let median = report
            .gaps
            .get(report.gaps.len() / 2)
            .copied()
            .unwrap_or_default();
        println!(
            "{k} was killed while checking {} origins: every one was checked by another agent after at most {:.1} s (median {:.1} s){}",
            report.orphaned,
            max.as_secs_f64(),
            median.as_secs_f64(),
            if report.never_taken_over > 0 {
                format!("; {} never taken over!", report.never_taken_over)
            } else {
                String::new()
            }
        );
    }
    println!(
        "{:.0} checks/s on average; {} two-second windows had an origin checked by two agents; {} checks were second opinions on failing and flapping origins (not a second checker)",
        report.checks_per_second, report.duplicate_windows, report.second_opinions
    );
}

fn data_dir(base: &std::path::Path, i: usize) -> PathBuf {
    base.join(format!("hc-{i}"))
}

fn print_summary(
    agents: &[Agent],
    seen: &BTreeMap<String, BTreeMap<String, u64>>,
    dead: &[bool],
    window: Duration,
    elapsed: Duration,
    report: &mut DemoReport,
    after_kill: bool,
) {
    let checks: u64 = seen.values().flat_map(|by| by.values()).sum();
    let duplicates = seen.values().filter(|by| by.len() > 1).count();
    if duplicates > 0 && !after_kill && elapsed > Duration::from_secs(6) {
        report.duplicate_windows += 1;
    }
    // A dead origin refuses connections: no check of it can be counted here.
    let unchecked = seen
        .values()
        .zip(dead)
        .filter(|(by, dead)| by.is_empty() && !**dead)
        .count();
    let health = agents[0].shared().all_health();
    let count = |s: Status| health.values().filter(|r| r.status == s).count();
    let owners: Vec<String> = agents
        .iter()
        .map(|a| format!("{}:{}", a.node(), a.shared().check_stats().owned))
        .collect();
    let alive = agents[0]
        .shared()
        .members()
        .iter()
        .filter(|m| m.state != membership::MemberState::Down)
        .count();
    println!(
        "[{:>4.1}s] members {alive} | origins per agent {} | {:.0} checks/s (listening origins) | checked by 2+: {duplicates}, by none: {unchecked} | up {} down {} unknown {}",
        elapsed.as_secs_f64(),
        owners.join(" "),
        checks as f64 / window.as_secs_f64(),
        count(Status::Up),
        count(Status::Down),
        seen.len()
            .saturating_sub(count(Status::Up) + count(Status::Down)),
    );
}
