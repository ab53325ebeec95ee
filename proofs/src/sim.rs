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
//!
//! With [`Sim::new_durable`] every node keeps its replica in a
//! [`MemoryStorage`] exactly as `sync::Node` does: commits taken from the
//! engine complete after a simulated fsync delay (a crash before then loses
//! them), pulls parked until a commit are answered from its cut, a restart
//! restores what was committed and verifies the restored actor, and a node
//! may lose its store. The run records which writes were acknowledged
//! (their commit completed).

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use crdt::{ActorId, Dot, ORMap};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sync::{
    CommitTicket, Engine, EngineConfig, Message, NodeId, Peer, PeerSource, Reply,
    storage::{ActorChoice, Commit, Identity, MemoryStorage, Storage},
};

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
    /// A request from `from`'s incarnation `incarnation` (its answer goes
    /// back to that incarnation only: a restarted node's connections are
    /// new).
    Request {
        from: usize,
        to: usize,
        incarnation: u64,
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
    /// Node `node`'s commit (taken in incarnation `incarnation`) is durable.
    Committed { node: usize, incarnation: u64 },
}

struct SimNode {
    id: NodeId,
    engine: Option<Engine>,
    /// Bumped on every restart: answers to an earlier incarnation's requests
    /// are lost with its connections.
    incarnation: u64,
    group: u32,
    /// Durable nodes: the store, which survives crashes.
    storage: Option<MemoryStorage>,
    /// The commit being written, if any.
    committing: Option<(Commit, CommitTicket)>,
    /// Pulls parked here: (ticket, requester, requester's incarnation).
    parked: Vec<(u64, usize, u64)>,
}

/// A write recorded by a durable simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The writing node.
    pub node: usize,
    /// Its incarnation then.
    pub incarnation: u64,
    /// The write's number in that incarnation (`Engine::write_seq`).
    pub seq: u64,
    /// The write's dot.
    pub dot: Dot,
    /// Whether its commit completed (it was acknowledged).
    pub acked: bool,
    /// Whether its node lost its store after it (an acknowledged write
    /// that no peer had pulled is then gone with the store).
    pub store_lost_after: bool,
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
    /// Durable mode: every write, in order.
    pub written: Vec<Written>,
    /// Durable mode: restored actors the engines replaced (stale, unsure).
    pub retired: u64,
    /// Durable mode: of those, the ones replaced because a peer had seen
    /// more of the actor than its store held (only a store restored from an
    /// older copy can cause it; none is, here).
    pub retired_stale: u64,
    /// Durable mode: stores lost with [`Sim::lose_store`].
    pub stores_lost: u64,
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
            written: Vec::new(),
            retired: 0,
            retired_stale: 0,
            stores_lost: 0,
        };
        for (i, map) in maps.into_iter().enumerate() {
            let id = NodeId(format!("n{i}"));
            sim.nodes.push(SimNode {
                id,
                engine: None,
                incarnation: 0,
                group: 0,
                storage: None,
                committing: None,
                parked: Vec::new(),
            });
            sim.boot(i, map);
        }
        sim
    }

    /// `n` durable nodes, each with an empty [`MemoryStorage`] (see the
    /// module docs).
    pub fn new_durable(n: usize, engine_config: EngineConfig, net: NetConfig, seed: u64) -> Self {
        let mut sim = Self::with_maps(Vec::new(), engine_config, net, seed);
        for i in 0..n {
            sim.nodes.push(SimNode {
                id: NodeId(format!("n{i}")),
                engine: None,
                incarnation: 0,
                group: 0,
                storage: Some(MemoryStorage::new()),
                committing: None,
                parked: Vec::new(),
            });
            sim.boot(i, None);
        }
        sim
    }

    /// Durable mode: node `i` crashes and its store is lost (a new, empty
    /// one); restart it with [`restart`](Self::restart).
    pub fn lose_store(&mut self, i: usize) {
        self.crash(i);
        if self.nodes[i].storage.is_some() {
            self.nodes[i].storage = Some(MemoryStorage::new());
            self.stores_lost += 1;
            for w in self.written.iter_mut().filter(|w| w.node == i) {
                w.store_lost_after = true;
            }
        }
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
        let durable = self.nodes[i].storage.is_some();
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
        if let Some((sibling, _)) = &event
            && durable
        {
            let seq = engine.write_seq();
            self.written.push(Written {
                node: i,
                incarnation: self.nodes[i].incarnation,
                seq,
                dot: sibling.dot,
                acked: false,
                store_lost_after: false,
            });
        }
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
        let node = &mut self.nodes[i];
        node.engine = None;
        node.committing = None; // not durable yet: lost
        node.parked.clear();
    }

    /// Restarts node `i` (crashing it first if it is up). With `keep_state`
    /// it keeps its map (as restored from disk); without, it starts empty
    /// under a fresh actor id. A durable node restores what its store holds
    /// (`keep_state: false` loses the store first).
    pub fn restart(&mut self, i: usize, keep_state: bool) {
        if self.nodes[i].storage.is_some() {
            if keep_state {
                self.crash(i);
            } else {
                self.lose_store(i);
            }
            self.boot(i, None);
            return;
        }
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
                    .and_then(|e| e.poll_timeout())
                    .map(|t| (t.saturating_duration_since(self.base), i))
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
            Delivery::Request {
                from,
                to,
                incarnation,
                message,
            } => {
                if !self.reachable(from, to) || !self.is_up(to) {
                    return;
                }
                self.delivered += 1;
                let view = self.view(to);
                let from_id = self.nodes[from].id.clone();
                let reply = self.nodes[to]
                    .engine
                    .as_mut()
                    .map(|e| e.handle_request(now, &from_id, message, &view));
                let messages = match reply {
                    Some(Reply::Parked(ticket)) => {
                        self.nodes[to].parked.push((ticket, from, incarnation));
                        Vec::new()
                    }
                    Some(reply) => reply.into_messages().expect("simulated answers encode"),
                    None => Vec::new(),
                };
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
            Delivery::Committed { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation {
                    return; // crashed meanwhile: the commit was lost
                }
                self.complete_commit(node);
                self.drain(node);
            }
        }
    }

    /// Writes node `i`'s pending commit to its store, acknowledges what it
    /// covers and answers the pulls parked for it.
    fn complete_commit(&mut self, i: usize) {
        let Some((commit, ticket)) = self.nodes[i].committing.take() else {
            return;
        };
        let node = &mut self.nodes[i];
        let (Some(storage), Some(engine)) = (&node.storage, node.engine.as_mut()) else {
            return;
        };
        storage
            .commit(&commit)
            .expect("the simulated store does not fail");
        engine.handle_committed(ticket);
        let committed = engine.committed_seq();
        let incarnation = node.incarnation;
        for w in &mut self.written {
            if w.node == i && w.incarnation == incarnation && w.seq <= committed {
                w.acked = true;
            }
        }
        let mut answers = Vec::new();
        let node = &mut self.nodes[i];
        let Some(engine) = node.engine.as_mut() else {
            return;
        };
        node.parked.retain(
            |&(ticket, from, from_incarnation)| match engine.take_parked(ticket) {
                Some(answer) => {
                    answers.push((from, from_incarnation, answer));
                    false
                }
                None => true,
            },
        );
        for (from, from_incarnation, answer) in answers {
            let messages = answer.into_messages().expect("simulated answers encode");
            self.send(Delivery::Response {
                from: i,
                to: from,
                incarnation: from_incarnation,
                messages,
            });
        }
    }

    /// Moves what node `i` wants sent onto the network.
    fn drain(&mut self, i: usize) {
        let mut out = Vec::new();
        let mut commit = false;
        let takes_commits = self.nodes[i].storage.is_some() && self.nodes[i].committing.is_none();
        if let Some(engine) = self.nodes[i].engine.as_mut() {
            while let Some(t) = engine.poll_transmit() {
                out.push(t);
            }
            while let Some(e) = engine.poll_event() {
                if let sync::Event::ActorRetired { reason, .. } = e {
                    self.retired += 1;
                    self.retired_stale += u64::from(reason == "stale store");
                }
            }
            if takes_commits {
                let taken = engine.take_commit().expect("simulated rows encode");
                commit = taken.is_some();
                self.nodes[i].committing = taken;
            }
        }
        if commit {
            // The fsync: 0.1 to 30 ms (a slow disk widens the window in which
            // a crash loses a commit).
            let delay = Duration::from_micros(self.rng.random_range(100..30_000));
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                at: self.now + delay,
                seq: self.seq,
                delivery: Delivery::Committed {
                    node: i,
                    incarnation: self.nodes[i].incarnation,
                },
            }));
        }
        for t in out {
            let to: usize = t.to.id.0[1..]
                .parse()
                .expect("simulated node names are n<i>");
            self.send(Delivery::Request {
                from: i,
                to,
                incarnation: self.nodes[i].incarnation,
                message: t.message,
            });
        }
    }

    fn send(&mut self, delivery: Delivery) {
        let (from, to, messages) = match &delivery {
            Delivery::Request {
                from, to, message, ..
            } => (from, to, std::slice::from_ref(message)),
            Delivery::Response {
                from, to, messages, ..
            } => (from, to, messages.as_slice()),
            Delivery::Committed { .. } => return,
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
        if let Some(storage) = self.nodes[i].storage.clone() {
            self.boot_durable(i, &storage);
            return;
        }
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

    /// Starts durable node `i` from `storage`, as `sync::Node` does: the
    /// stored actor (verified) or a fresh one, the replica restored.
    fn boot_durable(&mut self, i: usize, storage: &MemoryStorage) {
        let stored = storage.load().expect("the simulated store loads");
        let next = &mut self.next_actor;
        let choice = ActorChoice::for_store(&stored, &self.nodes[i].id.0, false, || {
            *next += 1;
            ActorId(*next - 1)
        });
        let seed = self.rng.random();
        let mut engine = Engine::new(
            self.nodes[i].id.clone(),
            self.engine_config.clone(),
            seed,
            self.base + self.now,
        );
        engine
            .register_durable(
                REPLICA,
                SimMap::new(choice.actor()),
                stored.replicas.get(REPLICA),
            )
            .expect("the simulated store holds a valid replica");
        match choice {
            ActorChoice::Restored(actor) => engine.verify_restored_actor(actor),
            ActorChoice::Fresh(actor, _) => engine.persist_identity(Identity {
                node: self.nodes[i].id.0.clone(),
                actor,
            }),
        }
        self.nodes[i].engine = Some(engine);
        self.nodes[i].incarnation += 1;
    }
}
