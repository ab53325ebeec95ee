//! A deterministic simulator for the sync [`Engine`]: N engines over a
//! simulated network with virtual time and one seeded RNG.
//!
//! The network delays every message by a random latency (so messages
//! reorder), loses or duplicates a configurable fraction, and drops
//! everything between nodes in different partition groups. Nodes crash and
//! restart, with their state (as after a clean restart from disk) or without
//! (a fresh actor id, an empty replica). Membership is simulated as a perfect
//! view: every node sees the nodes that are up. The same seed always replays
//! the same run.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use crdt::{ActorId, ORMap};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sync::{Engine, EngineConfig, Message, NodeId, Peer, PeerSource};

use crate::oracle::{Event, Oracle};

/// The replicated map every simulated node holds, registered as `"m"`.
pub type SimMap = ORMap<u32, u32>;

/// The name the map is registered under.
pub const REPLICA: &str = "m";

/// Network behaviour and timing of a simulation.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Shortest one-way latency.
    pub latency_min: Duration,
    /// Longest one-way latency.
    pub latency_max: Duration,
    /// Fraction of messages lost.
    pub loss: f64,
    /// Fraction of messages delivered twice.
    pub duplicate: f64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency_min: Duration::from_micros(200),
            latency_max: Duration::from_millis(2),
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// A message in flight, ordered by arrival time then by send order.
struct InFlight {
    at: Duration,
    seq: u64,
    delivery: Delivery,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What is in flight.
#[derive(Debug, Clone)]
enum Delivery {
    Request {
        from: usize,
        to: usize,
        message: Message,
    },
    /// An answer: its messages in order (one stream, as over TCP: lost,
    /// duplicated or delayed as a whole).
    Response {
        from: usize,
        to: usize,
        incarnation: u64,
        messages: Vec<Message>,
    },
}

struct SimNode {
    id: NodeId,
    engine: Option<Engine>,
    /// Bumped on every restart: answers to an earlier incarnation's requests
    /// are lost with its connections.
    incarnation: u64,
    group: u32,
}

/// Peers as a simulated node sees them.
struct View(Vec<Peer>);

impl PeerSource for View {
    fn members(&self) -> Vec<Peer> {
        self.0.clone()
    }
}

/// A simulated cluster. See the module docs.
pub struct Sim {
    base: Instant,
    now: Duration,
    rng: ChaCha8Rng,
    engine_config: EngineConfig,
    /// The network's behaviour; may be changed between steps.
    pub net: NetConfig,
    nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    next_actor: u64,
    /// Every write made through [`Sim::write`].
    pub oracle: Oracle<u32, u32>,
    /// Messages delivered so far.
    pub delivered: u64,
    /// Bytes of messages sent so far (encoded body + 4-byte length prefix).
    pub bytes: u64,
}

impl Sim {
    /// `n` nodes with one empty map each, all up, one partition group.
    pub fn new(n: usize, engine_config: EngineConfig, net: NetConfig, seed: u64) -> Self {
        Self::with_maps((0..n).map(|_| None).collect(), engine_config, net, seed)
    }

    /// One node per entry of `maps`: `Some(map)` starts with that map (its
    /// actor must be unique), `None` with an empty one under a fresh actor.
    pub fn with_maps(
        maps: Vec<Option<SimMap>>,
        engine_config: EngineConfig,
        net: NetConfig,
        seed: u64,
    ) -> Self {
        let used = maps
            .iter()
            .flatten()
            .map(|m| m.actor().0)
            .max()
            .unwrap_or(0);
        let base = Instant::now();
        let mut sim = Sim {
            base,
            now: Duration::ZERO,
            rng: ChaCha8Rng::seed_from_u64(seed),
            engine_config,
            net,
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            next_actor: used + 1,
            oracle: Oracle::default(),
            delivered: 0,
            bytes: 0,
        };
        for (i, map) in maps.into_iter().enumerate() {
            let id = NodeId(format!("n{i}"));
            sim.nodes.push(SimNode {
                id,
                engine: None,
                incarnation: 0,
                group: 0,
            });
            sim.boot(i, map);
        }
        sim
    }

    /// The virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now
    }

    /// The number of nodes (up or down).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the simulation has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether node `i` is up.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].engine.is_some()
    }

    /// Node `i`'s engine, if it is up.
    pub fn engine(&self, i: usize) -> Option<&Engine> {
        self.nodes[i].engine.as_ref()
    }

    /// Node `i`'s map, if it is up.
    pub fn map(&self, i: usize) -> Option<&SimMap> {
        self.engine(i)
            .and_then(|e| e.replica::<SimMap>(REPLICA).ok())
    }

    /// Writes `key` at node `i` (`Some` inserts, `None` removes) and records
    /// the write for the oracle. Does nothing if `i` is down.
    pub fn write(&mut self, i: usize, key: u32, value: Option<u32>) {
        let Some(engine) = self.nodes[i].engine.as_mut() else {
            return;
        };
        let event = engine
            .write::<SimMap, _>(REPLICA, |m| {
                let wrote = match value {
                    Some(v) => Some(m.insert(key, v)),
                    None => m.remove(&key),
                };
                wrote.map(|_| {
                    let s = m.siblings(&key)[0].clone();
                    (s, m.context().clone())
                })
            })
            .ok()
            .flatten();
        if let Some((sibling, seen)) = event {
            self.oracle.record(Event {
                key,
                dot: sibling.dot,
                value: sibling.value,
                seen,
            });
        }
    }

    /// Crashes node `i`: it stops, its connections and what it had in flight
    /// towards it are lost.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].engine = None;
    }

    /// Restarts node `i` (crashing it first if it is up). With `keep_state`
    /// it keeps its map (as restored from disk); without, it starts empty
    /// under a fresh actor id.
    pub fn restart(&mut self, i: usize, keep_state: bool) {
        let state = if keep_state {
            self.map(i).cloned()
        } else {
            None
        };
        self.crash(i);
        self.boot(i, state);
    }

    /// Puts node `i` in partition group `group`; messages between groups are
    /// lost. All nodes start in group 0.
    pub fn partition(&mut self, i: usize, group: u32) {
        self.nodes[i].group = group;
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        for n in &mut self.nodes {
            n.group = 0;
        }
    }

    /// Runs the simulation up to `elapsed() + duration`.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.step_until(end) {}
        self.now = end;
    }

    /// Runs until `done(self)` holds (checked after every event) or until
    /// `limit` of virtual time has passed; returns the virtual time taken,
    /// or `None` on timeout.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        let end = self.now + limit;
        loop {
            if done(self) {
                return Some(self.now - start);
            }
            if !self.step_until(end) {
                self.now = end;
                return done(self).then_some(limit);
            }
        }
    }

    /// Whether every node that is up reads the same map as the first one up.
    pub fn converged(&self) -> bool {
        let mut maps = (0..self.len()).filter_map(|i| self.map(i));
        let Some(first) = maps.next() else {
            return true;
        };
        let first = crate::read(first);
        maps.all(|m| crate::read(m) == first)
    }

    /// Processes the next event (a message or a timer) if it is due by `end`.
    /// Returns false when nothing is due by then.
    fn step_until(&mut self, end: Duration) -> bool {
        let next_message = self.queue.peek().map(|Reverse(m)| m.at);
        let next_timer = (0..self.nodes.len())
            .filter_map(|i| {
                self.nodes[i]
                    .engine
                    .as_ref()
                    .map(|e| (e.poll_timeout().saturating_duration_since(self.base), i))
            })
            .min();
        let timer_first = match (next_message, next_timer) {
            (None, None) => return false,
            (Some(m), Some((t, _))) => t < m,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        if timer_first {
            let (t, i) = next_timer.expect("checked above");
            if t > end {
                return false;
            }
            self.now = self.now.max(t);
            let view = self.view(i);
            let now = self.base + self.now;
            if let Some(engine) = self.nodes[i].engine.as_mut() {
                engine.handle_timeout(now, &view);
            }
            self.drain(i);
        } else {
            if next_message.is_some_and(|t| t > end) {
                return false;
            }
            let Reverse(m) = self.queue.pop().expect("peeked above");
            self.now = self.now.max(m.at);
            self.deliver(m.delivery);
        }
        true
    }

    fn deliver(&mut self, delivery: Delivery) {
        let now = self.base + self.now;
        match delivery {
            Delivery::Request { from, to, message } => {
                if !self.reachable(from, to) || !self.is_up(to) {
                    return;
                }
                self.delivered += 1;
                let view = self.view(to);
                let from_id = self.nodes[from].id.clone();
                let incarnation = self.nodes[from].incarnation;
                let messages = self.nodes[to]
                    .engine
                    .as_mut()
                    .map(|e| {
                        e.handle_request(now, &from_id, message, &view)
                            .into_messages()
                    })
                    .transpose()
                    .expect("simulated answers encode")
                    .unwrap_or_default();
                if !messages.is_empty() {
                    self.send(Delivery::Response {
                        from: to,
                        to: from,
                        incarnation,
                        messages,
                    });
                }
                self.drain(to);
            }
            Delivery::Response {
                from,
                to,
                incarnation,
                messages,
            } => {
                if !self.reachable(from, to) || self.nodes[to].incarnation != incarnation {
                    return;
                }
                self.delivered += 1;
                let from_id = self.nodes[from].id.clone();
                if let Some(engine) = self.nodes[to].engine.as_mut() {
                    // A valid peer's answer always decodes.
                    for message in messages {
                        engine
                            .handle_response(&from_id, message)
                            .expect("simulated answers are well-formed");
                    }
                }
                self.drain(to);
            }
        }
    }

    /// Moves what node `i` wants sent onto the network.
    fn drain(&mut self, i: usize) {
        let mut out = Vec::new();
        if let Some(engine) = self.nodes[i].engine.as_mut() {
            while let Some(t) = engine.poll_transmit() {
                out.push(t);
            }
            while engine.poll_event().is_some() {}
        }
        for t in out {
            let to: usize = t.to.id.0[1..]
                .parse()
                .expect("simulated node names are n<i>");
            self.send(Delivery::Request {
                from: i,
                to,
                message: t.message,
            });
        }
    }

    fn send(&mut self, delivery: Delivery) {
        let (from, to, messages) = match &delivery {
            Delivery::Request { from, to, message } => (from, to, std::slice::from_ref(message)),
            Delivery::Response {
                from, to, messages, ..
            } => (from, to, messages.as_slice()),
        };
        for message in messages {
            if let Ok(body) = sync::encode_message(message) {
                self.bytes += 4 + body.len() as u64;
            }
        }
        if !self.reachable(*from, *to) || self.rng.random_bool(self.net.loss.clamp(0.0, 1.0)) {
            return;
        }
        let copies = if self.rng.random_bool(self.net.duplicate.clamp(0.0, 1.0)) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (lo, hi) = (
                self.net.latency_min,
                self.net.latency_max.max(self.net.latency_min),
            );
            let latency = lo + (hi - lo).mul_f64(self.rng.random_range(0.0..=1.0));
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                at: self.now + latency,
                seq: self.seq,
                delivery: delivery.clone(),
            }));
        }
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.nodes[a].group == self.nodes[b].group
    }

    /// The live view of node `i`: every other node that is up.
    fn view(&self, i: usize) -> View {
        View(
            (0..self.nodes.len())
                .filter(|&j| j != i && self.is_up(j))
                .map(|j| Peer {
                    id: self.nodes[j].id.clone(),
                    addr: SocketAddr::from(([10, 0, (j / 256) as u8, (j % 256) as u8], 7000)),
                })
                .collect(),
        )
    }

    /// Starts node `i` with `state`, or empty under a fresh actor id (a
    /// replica must never reuse a dot).
    fn boot(&mut self, i: usize, state: Option<SimMap>) {
        let map = match state {
            Some(map) => map,
            None => {
                self.next_actor += 1;
                SimMap::new(ActorId(self.next_actor - 1))
            }
        };
        let seed = self.rng.random();
        let mut engine = Engine::new(
            self.nodes[i].id.clone(),
            self.engine_config.clone(),
            seed,
            self.base + self.now,
        );
        engine
            .register(REPLICA, map)
            .expect("one replica per engine");
        self.nodes[i].engine = Some(engine);
        self.nodes[i].incarnation += 1;
    }
}
