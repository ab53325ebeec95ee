//! The health checker at datacenter scale, simulated: N agents, M origins.
//!
//! Run: `cargo run --release -p benches --bin cluster-sim -- --nodes 168 --origins 100000 [--seed S]`
//!
//! Real code: each simulated agent runs the real `sync::Engine` replicating
//! a real `HealthMap` (ORMap with the `RendezvousPriority` tiebreak) and the
//! agent's own sans-IO `CheckCore` (ownership rule, schedule, streaks, when
//! to write), the one `apps/healthcheck` drives (a check is instantaneous
//! and succeeds). Simulated: the network (0.2–1 ms one-way latency, no loss) and
//! membership: when an agent dies, each other agent removes it from its live
//! view after a delay drawn uniformly from [0.5 s, 2.1 s] (the LAN preset's
//! time to a failed probe, 0.5–1.5 s, plus dissemination; a suspected agent
//! is not live for ownership). Virtual time and one seeded RNG: the same
//! seed gives the same figures.

use std::{
    alloc::System,
    cmp::Reverse,
    collections::BinaryHeap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use crdt::{ActorId, DeltaCrdt};
use healthcheck::{
    check_core::{Action, CheckCore, CheckCoreConfig, Params},
    checker::CheckOutcome,
    ownership::OwnershipConfig,
    record::{HealthRecord, Status},
    registry::{HEALTH, HealthMap},
    rendezvous,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use sync::{Engine, EngineConfig, Message, NodeId, Peer, PeerSource};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const INTERVAL: Duration = Duration::from_secs(5);
const PULL: Duration = Duration::from_secs(1);
const REFRESH: Duration = Duration::from_secs(300);

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn name(i: usize) -> String {
    format!("hc-{i:03}")
}

fn origin(o: usize) -> String {
    format!("o{o}")
}

struct View(Arc<Vec<Peer>>);
impl PeerSource for View {
    fn members(&self) -> Vec<Peer> {
        self.0.as_ref().clone()
    }
}

fn peer(j: usize) -> Peer {
    Peer {
        id: NodeId(name(j)),
        addr: SocketAddr::from(([10, 0, (j / 250) as u8, (j % 250) as u8 + 1], 7947)),
    }
}

fn peers_of(i: usize, live: &[bool]) -> Arc<Vec<Peer>> {
    Arc::new(
        (0..live.len())
            .filter(|&j| j != i && live[j])
            .map(peer)
            .collect(),
    )
}

struct Agent {
    engine: Engine,
    core: CheckCore,
    /// Who this agent considers live (indices), itself excluded.
    live: Vec<bool>,
    /// `live` as sync peers.
    peers: Arc<Vec<Peer>>,
}

/// The spec of every simulated origin.
const PARAMS: Params = Params {
    interval: INTERVAL,
    settling: Duration::from_millis(INTERVAL.as_millis() as u64 / 4),
    down: INTERVAL,
    jitter_percent: 10,
    rise: 1,
    fall: 1,
    initial: Status::Up,
    timeout: Duration::from_millis(500),
    // On, as by default: every check here succeeds, so no round opens.
    confirm: true,
};

/// Every simulated check succeeds at once.
fn success() -> CheckOutcome {
    CheckOutcome::success(Duration::from_millis(1), Some(200))
}

enum Event {
    Engine(usize),
    Checks(usize),
    Request {
        from: usize,
        to: usize,
        message: Message,
    },
    Response {
        from: usize,
        to: usize,
        messages: Vec<Message>,
    },
    Forget {
        observer: usize,
        dead: usize,
    },
}

struct Sim {
    base: Instant,
    now: Duration,
    rng: ChaCha8Rng,
    agents: Vec<Option<Agent>>,
    queue: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    events: Vec<Option<Event>>,
    free: Vec<usize>,
    seq: u64,
    /// Checks per origin since the last reset.
    checks: Vec<u32>,
    /// Last time each origin was checked, by anyone.
    last_check: Vec<Duration>,
    /// Since `mark`, the first time each origin was checked.
    first_since_mark: Vec<Option<Duration>>,
    /// The last agent to check each origin, and how many origins were
    /// checked by two different agents since the last reset.
    last_checker: Vec<u32>,
    multi_checked: Vec<bool>,
    bytes: u64,
}

impl Sim {
    fn at(&self) -> Instant {
        self.base + self.now
    }

    fn push(&mut self, at: Duration, event: Event) {
        let slot = match self.free.pop() {
            Some(i) => {
                self.events[i] = Some(event);
                i
            }
            None => {
                self.events.push(Some(event));
                self.events.len() - 1
            }
        };
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    /// Agent `i`'s live peers (cached; rebuilt when its view changes).
    fn view(&self, i: usize) -> View {
        View(
            self.agents[i]
                .as_ref()
                .map(|a| a.peers.clone())
                .unwrap_or_default(),
        )
    }

    fn latency(&mut self) -> Duration {
        Duration::from_micros(self.rng.random_range(200..=1000))
    }

    fn send(&mut self, from: usize, to: usize, message: Message) {
        if let Ok(body) = sync::encode_message(&message) {
            self.bytes += 4 + body.len() as u64;
        }
        let at = self.now + self.latency();
        self.push(at, Event::Request { from, to, message });
    }

    /// Sends an answer's messages, in order, as one delivery (one stream).
    fn answer(&mut self, from: usize, to: usize, messages: Vec<Message>) {
        for message in &messages {
            if let Ok(body) = sync::encode_message(message) {
                self.bytes += 4 + body.len() as u64;
            }
        }
        let at = self.now + self.latency();
        self.push(at, Event::Response { from, to, messages });
    }

    /// Sends what agent `i`'s engine wants sent, and schedules its timer.
    fn drain(&mut self, i: usize) {
        let mut out = Vec::new();
        let mut next = None;
        if let Some(a) = self.agents[i].as_mut() {
            while let Some(t) = a.engine.poll_transmit() {
                out.push(t);
            }
            while a.engine.poll_event().is_some() {}
            next = a.engine.poll_timeout();
        }
        for t in out {
            let to: usize = t.to.id.0[3..].parse().expect("hc-NNN");
            self.send(i, to, t.message);
        }
        if let Some(at) = next {
            let at = at.saturating_duration_since(self.base).max(self.now);
            self.push(at, Event::Engine(i));
        }
    }

    fn observe_health(&mut self, i: usize) {
        let now = self.at();
        let Some(a) = self.agents[i].as_mut() else {
            return;
        };
        let Ok(keys) = a.engine.take_changes::<HealthMap>(HEALTH) else {
            return;
        };
        let Ok(map) = a.engine.replica::<HealthMap>(HEALTH) else {
            return;
        };
        let seen: Vec<(String, String)> = keys
            .iter()
            .flat_map(|k| {
                map.siblings(k)
                    .iter()
                    .filter_map(|s| s.value.as_ref().map(|r| (k.clone(), r.checked_by.clone())))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (origin, writer) in seen {
            a.core.handle_record_seen(now, &origin, &writer);
        }
    }

    /// Runs agent `i`'s core at its due time: every check it asks for
    /// succeeds at once, and every write it asks for goes to the engine.
    fn run_checks(&mut self, i: usize) {
        let now = self.at();
        let wall_ms = self.now.as_millis() as u64;
        let mut checked = Vec::new();
        let mut next_wake = None;
        if let Some(a) = self.agents[i].as_mut() {
            a.core.handle_timeout(now);
            while let Some(action) = a.core.poll_action() {
                match action {
                    Action::Check { origin } => {
                        let visible = a
                            .engine
                            .replica::<HealthMap>(HEALTH)
                            .ok()
                            .and_then(|m| m.get(&origin).cloned());
                        a.core.handle_result(
                            now,
                            &origin,
                            &success(),
                            visible.as_ref(),
                            true,
                            wall_ms,
                        );
                        checked.push(origin[1..].parse::<usize>().expect("o<n>"));
                    }
                    Action::Write { origin, record } => {
                        let written = a
                            .engine
                            .write::<HealthMap, _>(HEALTH, |m| m.insert(origin.clone(), record));
                        if written.is_ok() {
                            a.core.handle_written(now, &origin);
                        }
                    }
                    // The simulation puts no origin under maintenance, and
                    // its checks never fail (no second opinion is asked).
                    Action::EndMaintenance { .. }
                    | Action::Confirm { .. }
                    | Action::Answer { .. } => {}
                }
            }
            next_wake = a.core.poll_timeout();
        }
        for o in checked {
            if self.checks[o] > 0 && self.last_checker[o] != i as u32 {
                self.multi_checked[o] = true;
            }
            self.last_checker[o] = i as u32;
            self.checks[o] += 1;
            self.last_check[o] = self.now;
            self.first_since_mark[o].get_or_insert(self.now);
        }
        self.drain(i);
        if let Some(at) = next_wake {
            self.push(at.saturating_duration_since(self.base), Event::Checks(i));
        }
    }

    fn step(&mut self, end: Duration) -> bool {
        let Some(Reverse((at, _, slot))) = self.queue.peek().copied() else {
            return false;
        };
        if at > end {
            return false;
        }
        self.queue.pop();
        self.now = self.now.max(at);
        let Some(event) = self.events[slot].take() else {
            return true;
        };
        self.free.push(slot);
        let now = self.at();
        match event {
            Event::Engine(i) => {
                let view = self.view(i);
                if let Some(a) = self.agents[i].as_mut()
                    && a.engine.poll_timeout().is_some_and(|at| at <= now)
                {
                    a.engine.handle_timeout(now, &view);
                    self.drain(i);
                }
            }
            Event::Checks(i) => {
                if self.agents[i]
                    .as_mut()
                    .is_some_and(|a| a.core.poll_timeout().is_some_and(|t| t <= now))
                {
                    self.run_checks(i);
                }
            }
            Event::Request { from, to, message } => {
                let view = self.view(to);
                let messages = self.agents[to]
                    .as_mut()
                    .map(|a| {
                        a.engine
                            .handle_request(now, &NodeId(name(from)), message, &view)
                            .into_messages()
                            .expect("simulated answers encode")
                    })
                    .unwrap_or_default();
                if !messages.is_empty() {
                    self.answer(to, from, messages);
                }
                self.drain(to);
            }
            Event::Response { from, to, messages } => {
                if let Some(a) = self.agents[to].as_mut() {
                    for message in messages {
                        let _ = a.engine.handle_response(&NodeId(name(from)), message);
                    }
                }
                self.observe_health(to);
                self.drain(to);
            }
            Event::Forget { observer, dead } => {
                let mut wake = false;
                if let Some(a) = self.agents[observer].as_mut() {
                    a.live[dead] = false;
                    a.peers = peers_of(observer, &a.live);
                    let live: Vec<String> =
                        (0..a.live.len()).filter(|&j| a.live[j]).map(name).collect();
                    a.engine.forget_peer(&NodeId(name(dead)));
                    // As the agent does: origins it owns now are due at once.
                    a.core.handle_live(now, live);
                    wake = a.core.poll_timeout().is_some_and(|t| t <= now);
                }
                if wake {
                    self.push(self.now, Event::Checks(observer));
                }
            }
        }
        true
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step(end) {}
        self.now = end;
        eprintln!("  simulated {:.0} s", self.now.as_secs_f64());
    }

    fn kill(&mut self, victim: usize) {
        self.agents[victim] = None;
        for observer in 0..self.agents.len() {
            if self.agents[observer].is_some() {
                let delay = Duration::from_millis(self.rng.random_range(500..=2100));
                self.push(
                    self.now + delay,
                    Event::Forget {
                        observer,
                        dead: victim,
                    },
                );
            }
        }
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let nodes = arg("--nodes", 168) as usize;
    let origins = arg("--origins", 100_000) as usize;
    let seed = arg("--seed", 1);
    let writes = arg("--writes", 100) as usize;
    let started = std::time::Instant::now();
    let base = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let names: Vec<String> = (0..nodes).map(name).collect();

    // The cluster after it has run a while: every origin has one record,
    // written by its owner. Built once, then copied into every agent.
    let mut writers: Vec<HealthMap> = (0..nodes)
        .map(|i| HealthMap::new(ActorId(i as u64 + 1)))
        .collect();
    let owners: Vec<&str> = (0..origins)
        .map(|o| rendezvous::owner(&origin(o), &names).expect("nodes"))
        .collect();
    for (o, owner) in owners.iter().enumerate() {
        let id = origin(o);
        let i: usize = owner[3..].parse().expect("hc-NNN");
        writers[i].insert(
            id,
            HealthRecord {
                status: Status::Up,
                checked_by: (*owner).to_owned(),
                checked_at_ms: 0,
                since_ms: 0,
                latency_ms: Some(1),
                reason: None,
                confirmation: None,
                suspect: None,
            },
        );
    }
    let mut initial = HealthMap::new(ActorId(10_000));
    for w in &writers {
        initial.join_delta(w.state());
    }
    drop(writers);
    let state = initial.state();
    drop(initial);

    let engine_config = EngineConfig {
        pull_interval: PULL,
        purge_interval: Duration::from_secs(30),
        ..EngineConfig::default()
    };
    let ownership = OwnershipConfig {
        takeover_grace: Duration::from_secs(2),
        record_refresh: REFRESH,
    };
    let mut memory_per_node = 0isize;
    let mut agents = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let region = Region::new(GLOBAL);
        let mut map = HealthMap::new(ActorId(20_000 + i as u64));
        map.join_delta(state.clone());
        let mut engine = Engine::new(NodeId(name(i)), engine_config.clone(), rng.random(), base);
        engine.register(HEALTH, map).expect("one replica");
        let mut core = CheckCore::new(CheckCoreConfig {
            me: name(i),
            ownership,
            seed: rng.random(),
            round_start: rng.random(),
            confirm_slack: Duration::from_secs(1),
        });
        core.handle_live(base, names.clone());
        // The whole registry at once, as at an agent's start: first checks
        // spread over one interval.
        core.handle_registry(base, (0..origins).map(|o| (origin(o), PARAMS)).collect());
        for (o, owner) in owners.iter().enumerate() {
            let id = origin(o);
            // the agent has seen the owners' records, as after a while, and
            // its own records in `state` were written at `base`
            core.handle_record_seen(base, &id, owner);
            if *owner == name(i) {
                core.handle_written(base, &id);
            }
        }
        let agent = Agent {
            engine,
            core,
            live: vec![true; nodes],
            peers: peers_of(i, &vec![true; nodes]),
        };
        if i == 0 {
            let c = region.change();
            memory_per_node =
                c.bytes_allocated as isize - c.bytes_deallocated as isize + c.bytes_reallocated;
        }
        agents.push(Some(agent));
    }
    drop(state);
    let mut sim = Sim {
        base,
        now: Duration::ZERO,
        rng,
        agents,
        queue: BinaryHeap::new(),
        events: Vec::new(),
        free: Vec::new(),
        seq: 0,

        checks: vec![0; origins],
        last_check: vec![Duration::ZERO; origins],
        first_since_mark: vec![None; origins],
        last_checker: vec![u32::MAX; origins],
        multi_checked: vec![false; origins],
        bytes: 0,
    };
    for i in 0..nodes {
        sim.drain(i);
        let at = sim.agents[i]
            .as_mut()
            .and_then(|a| a.core.poll_timeout())
            .expect("origins");
        sim.push(at.saturating_duration_since(base), Event::Checks(i));
    }
    eprintln!(
        "built {nodes} agents × {origins} origins in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Warm up two intervals, then the steady window.
    sim.run_for(INTERVAL * 2);
    sim.checks.iter_mut().for_each(|c| *c = 0);
    sim.multi_checked.iter_mut().for_each(|m| *m = false);
    let rounds = |sim: &Sim| -> u64 {
        sim.agents
            .iter()
            .flatten()
            .map(|a| a.engine.stats().rounds)
            .sum()
    };
    let (bytes0, rounds0) = (sim.bytes, rounds(&sim));
    let window = 6;
    sim.run_for(INTERVAL * window);
    let per_round = (sim.bytes - bytes0) as f64 / (rounds(&sim) - rounds0) as f64;
    let mut per_interval: Vec<f64> = sim
        .checks
        .iter()
        .map(|c| f64::from(*c) / window as f64)
        .collect();
    per_interval.sort_by(f64::total_cmp);
    let mean = per_interval.iter().sum::<f64>() / per_interval.len() as f64;
    let unchecked = sim.checks.iter().filter(|c| **c == 0).count();
    let multi = sim.multi_checked.iter().filter(|m| **m).count();

    // One write: an owner changes an origin's status; until every agent sees it.
    let mut spread: Vec<f64> = Vec::new();
    for w in 0..writes {
        let o = sim.rng.random_range(0..origins);
        let id = origin(o);
        let owner = rendezvous::owner(&id, &names).expect("nodes");
        let i: usize = owner[3..].parse().expect("hc-NNN");
        let at_ms = sim.now.as_millis() as u64;
        let status = if w % 2 == 0 { Status::Down } else { Status::Up };
        if let Some(a) = sim.agents[i].as_mut() {
            let record = HealthRecord {
                status,
                checked_by: owner.to_owned(),
                checked_at_ms: at_ms,
                since_ms: at_ms,
                latency_ms: None,
                reason: Some("simulated".into()),
                confirmation: None,
                suspect: None,
            };
            let _ = a
                .engine
                .write::<HealthMap, _>(HEALTH, |m| m.insert(id.clone(), record));
        }
        sim.drain(i);
        let start = sim.now;
        let everywhere = |sim: &Sim| {
            sim.agents.iter().flatten().all(|a| {
                a.engine
                    .replica::<HealthMap>(HEALTH)
                    .ok()
                    .and_then(|m| m.get(&id).map(|r| r.checked_at_ms))
                    == Some(at_ms)
            })
        };
        while !everywhere(&sim) {
            let end = sim.now + Duration::from_millis(1);
            while sim.step(end) {}
            sim.now = end;
            assert!(
                sim.now - start < Duration::from_secs(60),
                "write {w} did not spread"
            );
        }
        spread.push((sim.now - start).as_secs_f64());
        sim.run_for(Duration::from_millis(200));
    }
    spread.sort_by(f64::total_cmp);
    eprintln!(
        "steady window and {writes} writes done at {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Kill the busiest owner, then 10 % of the agents; time each orphan.
    let mut gaps_report = Vec::new();
    for (label, count) in [
        ("1 agent", 1usize),
        ("10 % of the agents", (nodes / 10).max(1)),
    ] {
        let alive: Vec<usize> = (0..nodes).filter(|&i| sim.agents[i].is_some()).collect();
        let victims: Vec<usize> = (0..count)
            .map(|k| alive[(k * 7 + 3) % alive.len()])
            .collect();
        let victims: Vec<usize> = {
            let mut v = victims;
            v.sort_unstable();
            v.dedup();
            v
        };
        let live_names: Vec<String> = alive.iter().map(|&i| name(i)).collect();
        let orphans: Vec<usize> = (0..origins)
            .filter(|&o| {
                let owner = rendezvous::owner(&origin(o), &live_names).expect("nodes");
                victims.iter().any(|&v| name(v) == owner)
            })
            .collect();
        let last: Vec<Duration> = orphans.iter().map(|&o| sim.last_check[o]).collect();
        sim.first_since_mark.iter_mut().for_each(|f| *f = None);
        for &v in &victims {
            sim.kill(v);
        }
        sim.run_for(INTERVAL * 3);
        // The unchecked gap: from the orphan's last check by its dead owner
        // to its first check by anyone after the kill.
        let mut gaps: Vec<f64> = orphans
            .iter()
            .zip(&last)
            .map(|(&o, &before)| match sim.first_since_mark[o] {
                Some(after) => (after - before).as_secs_f64(),
                None => f64::INFINITY,
            })
            .collect();
        gaps.sort_by(f64::total_cmp);
        let never = gaps.iter().filter(|g| g.is_infinite()).count();
        gaps_report.push((
            label,
            victims.len(),
            orphans.len(),
            percentile(&gaps, 0.5),
            percentile(&gaps, 0.99),
            percentile(&gaps, 1.0),
            never,
        ));
        sim.run_for(INTERVAL * 2);
        eprintln!("killed {label} at {:.1} s", started.elapsed().as_secs_f64());
    }

    println!(
        "cluster-sim --nodes {nodes} --origins {origins} --seed {seed}: check interval {INTERVAL:?}, pull every {PULL:?}, record refresh {REFRESH:?}\n"
    );
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| one write seen by every agent: p50 | {:.1} ms ({:.3} rounds) |",
        percentile(&spread, 0.5) * 1e3,
        percentile(&spread, 0.5) / PULL.as_secs_f64()
    );
    println!(
        "| one write seen by every agent: p99 | {:.1} ms ({:.3} rounds) |",
        percentile(&spread, 0.99) * 1e3,
        percentile(&spread, 0.99) / PULL.as_secs_f64()
    );
    println!("| steady state: bytes per agent per round | {per_round:.0} |");
    println!("| steady state: checks per origin per interval, mean | {mean:.4} |");
    println!(
        "| steady state: checks per origin per interval, max | {:.2} |",
        percentile(&per_interval, 1.0)
    );
    println!("| steady state: origins not checked in {window} intervals | {unchecked} |");
    println!("| steady state: origins checked by two agents in {window} intervals | {multi} |");
    println!(
        "| memory per agent (health map, ownership, schedule, engine) | {:.1} MB ({:.0} B per origin) |",
        memory_per_node as f64 / 1e6,
        memory_per_node as f64 / origins as f64
    );
    for (label, killed, orphans, p50, p99, max, never) in gaps_report {
        println!(
            "| kill {label} ({killed}): {orphans} orphans, unchecked gap p50 / p99 / max | {p50:.2} s / {p99:.2} s / {max:.2} s{} |",
            if never > 0 {
                format!(" ({never} never rechecked!)")
            } else {
                String::new()
            }
        );
    }
    let full: u64 = sim
        .agents
        .iter()
        .flatten()
        .map(|a| a.engine.stats().full_state_answers_sent)
        .sum();
    eprintln!("full-state answers sent in the whole run: {full}");
    eprintln!(
        "simulated {:.0} s in {:.1} s",
        sim.now.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
