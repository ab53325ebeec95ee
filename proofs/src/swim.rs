//! A deterministic simulator for SWIM membership: N [`MembershipCore`]s (foca
//! inside) over a simulated UDP network with virtual time and one seeded
//! RNG: latency, loss, partitions, crashes, restarts and graceful leaves.
//! Every Up/Down event is recorded with its virtual time, so tests can ask
//! when every node saw a member go down.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap},
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use membership::{
    CoreConfig, MemberId, MemberState, MembershipCore, MembershipEvent, Preset, Transmit,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A datagram in flight, ordered by arrival then send order.
struct Datagram {
    at: Duration,
    seq: u64,
    from: usize,
    to: usize,
    data: Bytes,
}

impl PartialEq for Datagram {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Datagram {}
impl PartialOrd for Datagram {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Datagram {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One Up/Down event as seen by one node.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When.
    pub at: Duration,
    /// Who saw it.
    pub observer: usize,
    /// The member it is about.
    pub member: usize,
    /// Up (`true`) or down.
    pub up: bool,
}

struct SwimNode {
    core: Option<MembershipCore>,
    addr: SocketAddr,
    bump: u64,
    group: u32,
}

/// A simulated SWIM cluster. See the module docs.
pub struct SwimSim {
    base: Instant,
    now: Duration,
    rng: ChaCha8Rng,
    preset: Preset,
    nodes: Vec<SwimNode>,
    by_addr: HashMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<Datagram>>,
    seq: u64,
    /// One-way latency range.
    pub latency: (Duration, Duration),
    /// Fraction of datagrams lost.
    pub loss: f64,
    /// Every Up/Down event, in order.
    pub seen: Vec<Seen>,
    /// Every Suspect event: (when, observer, member).
    pub suspected: Vec<(Duration, usize, usize)>,
    /// Datagrams sent so far.
    pub datagrams: u64,
}

impl SwimSim {
    /// `n` nodes with `preset` timing; every node but the first joins through
    /// node 0. Run for a while (see [`SwimSim::run_for`]) to let them join.
    pub fn new(n: usize, preset: Preset, seed: u64) -> Self {
        let mut sim = SwimSim {
            base: Instant::now(),
            now: Duration::ZERO,
            rng: ChaCha8Rng::seed_from_u64(seed),
            preset,
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            latency: (Duration::from_micros(200), Duration::from_millis(2)),
            loss: 0.0,
            seen: Vec::new(),
            suspected: Vec::new(),
            datagrams: 0,
        };
        for i in 0..n {
            let addr = Self::addr_of(i);
            sim.by_addr.insert(addr, i);
            sim.nodes.push(SwimNode {
                core: None,
                addr,
                bump: 1,
                group: 0,
            });
            sim.boot(i, n);
        }
        sim
    }

    fn addr_of(i: usize) -> SocketAddr {
        SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250) as u8 + 1], 7946))
    }

    /// The virtual time elapsed.
    pub fn elapsed(&self) -> Duration {
        self.now
    }

    /// The number of nodes, up or down.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there is no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether node `i` is running.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].core.is_some()
    }

    /// Node `i`'s core, if it runs.
    pub fn core(&self, i: usize) -> Option<&MembershipCore> {
        self.nodes[i].core.as_ref()
    }

    /// The nodes node `i` sees alive or suspect (by index), if it runs.
    pub fn view(&self, i: usize) -> Option<Vec<usize>> {
        self.core(i).map(|c| {
            let mut v: Vec<usize> = c
                .members()
                .filter(|m| m.state != MemberState::Down)
                .filter_map(|m| self.index_of(m.gossip_addr))
                .collect();
            v.sort_unstable();
            v
        })
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        self.by_addr.get(&addr).copied()
    }

    /// Stops node `i` without a word (a crash).
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].core = None;
    }

    /// Node `i` leaves gracefully: its goodbye datagrams go out, then it stops.
    pub fn leave(&mut self, i: usize) {
        let now = self.base + self.now;
        if let Some(core) = self.nodes[i].core.as_mut() {
            core.leave(now);
        }
        self.drain(i);
        self.nodes[i].core = None;
    }

    /// (Re)starts node `i` at the same address under a higher bump, joining
    /// through the first other running node.
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].bump += 1;
        let n = self.nodes.len();
        self.boot(i, n);
    }

    /// Puts node `i` in partition `group`; datagrams between groups are lost.
    pub fn partition(&mut self, i: usize, group: u32) {
        self.nodes[i].group = group;
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        self.nodes.iter_mut().for_each(|n| n.group = 0);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step_until(end) {}
        self.now = end;
    }

    /// Runs until `done` holds or `limit` passes; returns the time taken.
    /// `done` is checked at most once per millisecond of virtual time (after
    /// the events of that millisecond), so times are exact to 1 ms.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&SwimSim) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        let end = start + limit;
        let mut checked = None;
        loop {
            let tick = self.now.as_millis();
            if checked != Some(tick) {
                checked = Some(tick);
                if done(self) {
                    return Some(self.now - start);
                }
            }
            if !self.step_until(end) {
                self.now = end;
                return done(self).then_some(limit);
            }
        }
    }

    /// Whether every running node other than `member` sees `member` down
    /// (not in its live view).
    pub fn all_see_down(&self, member: usize) -> bool {
        (0..self.len())
            .filter(|&i| i != member)
            .filter_map(|i| self.view(i))
            .all(|v| !v.contains(&member))
    }

    /// Whether every running node sees every other running node alive.
    pub fn one_view(&self) -> bool {
        let up = (0..self.len()).filter(|&i| self.is_up(i)).count();
        (0..self.len())
            .filter_map(|i| self.core(i).map(|c| (i, c)))
            .all(|(i, c)| {
                let mut seen = 0;
                let all_up = c.members().all(|m| {
                    seen += 1;
                    m.state != MemberState::Down
                        && self
                            .index_of(m.gossip_addr)
                            .is_some_and(|j| j != i && self.is_up(j))
                });
                all_up && seen == up - 1
            })
    }

    /// Down events about members that were running and reachable from the
    /// observer at the time: false downs. Counted from `seen`.
    pub fn down_events(&self) -> usize {
        self.seen.iter().filter(|s| !s.up).count()
    }

    fn boot(&mut self, i: usize, cluster_size: usize) {
        let seed_node = (0..self.nodes.len()).find(|&j| j != i && self.nodes[j].core.is_some());
        let seeds = seed_node
            .map(|j| vec![self.nodes[j].addr])
            .unwrap_or_default();
        let id = MemberId {
            node: format!("n{i}").into(),
            gossip: self.nodes[i].addr,
            sync: self.nodes[i].addr,
            bump: self.nodes[i].bump,
        };
        let seed = self.rng.random();
        let config = CoreConfig {
            preset: self.preset,
            initial_cluster_size: cluster_size,
            max_datagram: 1400,
            seeds,
        };
        self.nodes[i].core = Some(MembershipCore::new(id, config, seed, self.base + self.now));
    }

    fn step_until(&mut self, end: Duration) -> bool {
        let next_datagram = self.queue.peek().map(|Reverse(d)| d.at);
        let next_timer = (0..self.nodes.len())
            .filter_map(|i| {
                self.nodes[i]
                    .core
                    .as_ref()
                    .and_then(|c| c.poll_timeout())
                    .map(|t| (t.saturating_duration_since(self.base), i))
            })
            .min();
        let timer_first = match (next_datagram, next_timer) {
            (None, None) => return false,
            (Some(d), Some((t, _))) => t <= d,
            (None, Some(_)) => true,
            (Some(_), None) => false,
        };
        if timer_first {
            let (t, i) = next_timer.expect("checked above");
            if t > end {
                return false;
            }
            self.now = self.now.max(t);
            let now = self.base + self.now;
            if let Some(core) = self.nodes[i].core.as_mut() {
                core.handle_timeout(now);
            }
            self.drain(i);
        } else {
            if next_datagram.is_some_and(|t| t > end) {
                return false;
            }
            let Reverse(d) = self.queue.pop().expect("peeked above");
            self.now = self.now.max(d.at);
            let now = self.base + self.now;
            if self.nodes[d.from].group != self.nodes[d.to].group {
                return true;
            }
            let from = self.nodes[d.from].addr;
            if let Some(core) = self.nodes[d.to].core.as_mut() {
                let _ = core.handle_datagram(now, from, &d.data);
            }
            self.drain(d.to);
        }
        true
    }

    fn drain(&mut self, i: usize) {
        let mut out = Vec::new();
        let mut events = Vec::new();
        if let Some(core) = self.nodes[i].core.as_mut() {
            while let Some(t) = core.poll_transmit() {
                out.push(t);
            }
            while let Some(e) = core.poll_event() {
                events.push(e);
            }
        }
        for e in events {
            let (addr, up) = match e {
                MembershipEvent::Up(m) => (m.gossip_addr, true),
                MembershipEvent::Down(m) => (m.gossip_addr, false),
                MembershipEvent::Suspect(m) => {
                    if let Some(member) = self.index_of(m.gossip_addr) {
                        self.suspected.push((self.now, i, member));
                    }
                    continue;
                }
                MembershipEvent::NameConflict(_) => continue,
            };
            if let Some(member) = self.index_of(addr) {
                self.seen.push(Seen {
                    at: self.now,
                    observer: i,
                    member,
                    up,
                });
            }
        }
        for Transmit { to, data } in out {
            self.datagrams += 1;
            let Some(to) = self.index_of(to) else {
                continue; // a seed placeholder of a node that does not exist
            };
            if self.nodes[i].group != self.nodes[to].group
                || self.rng.random_bool(self.loss.clamp(0.0, 1.0))
            {
                continue;
            }
            let (lo, hi) = self.latency;
            let latency = lo + (hi.max(lo) - lo).mul_f64(self.rng.random_range(0.0..=1.0));
            self.seq += 1;
            self.queue.push(Reverse(Datagram {
                at: self.now + latency,
                seq: self.seq,
                from: i,
                to,
                data,
            }));
        }
    }

    /// Hands node `i` each of `datagrams` as if sent by an unknown address;
    /// returns how many it rejected.
    pub fn inject(&mut self, i: usize, datagrams: &[Vec<u8>]) -> usize {
        let now = self.base + self.now;
        let stranger = SocketAddr::from(([192, 0, 2, 1], 9));
        let mut rejected = 0;
        if let Some(core) = self.nodes[i].core.as_mut() {
            for d in datagrams {
                rejected += usize::from(core.handle_datagram(now, stranger, d).is_err());
            }
        }
        self.drain(i);
        rejected
    }

    /// The last state each observer recorded for each member.
    pub fn last_seen(&self) -> BTreeMap<(usize, usize), bool> {
        let mut out = BTreeMap::new();
        for s in &self.seen {
            out.insert((s.observer, s.member), s.up);
        }
        out
    }
}
