//! [`Engine`]: the sans-IO core of pull anti-entropy.
//!
//! The engine decides when to run a round, whom to ask, what to send and what
//! to do with answers. It does no I/O and reads no clock: the caller passes
//! `now` in, feeds it requests and answers, and drains what it wants sent with
//! [`poll_transmit`](Engine::poll_transmit). Randomness comes from a seeded
//! RNG, so a run is reproducible from its seed. The same engine runs under
//! the tokio transport ([`crate::Node`]) and in the deterministic simulator
//! in `proofs/`.
//!
//! Protocol, per registered replica:
//! * every `pull_interval` (± jitter) the engine pulls from `pull_fanout`
//!   random live peers: `Pull{replica, digest}`; the peer answers
//!   `Delta{replica, delta_since(digest)}` and the engine joins it;
//! * after a local write it sends `Notify{replica, news}` to
//!   `notify_fanout × ⌈log2(N + 1)⌉` random peers (N live peers; memberlist
//!   scales its retransmissions by log N the same way), which pull from it at
//!   once unless they have already seen the `news` dots; a node whose join
//!   learned something notifies in turn. A single write thus reaches every
//!   node within a few round trips with high probability, where a fixed
//!   fan-out leaves about e^-fanout of the nodes to the next periodic pull.
//!   Mutator deltas are never pushed (they are exact only under causal
//!   delivery); periodic pulls repair whatever notifications miss;
//! * every peer's latest digest (from its pulls) is remembered; every
//!   `purge_interval` the meet of the current members' digests and our own is
//!   the stable context, and stable tombstones are purged. Peers whose digest
//!   predates a purge get the full state.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    time::{Duration, Instant},
};

use crdt::{CausalContext, DeltaCrdt, Dot};
use rand::{RngExt, SeedableRng, seq::IndexedRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    MAX_NEWS, Message, Metrics, NodeId, Peer, PeerSource, SyncError,
    replica::{ErasedReplica, Slot},
};

/// News to announce for one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Announcement {
    /// The peer we learned it from (not told again), if there is one.
    except: Option<NodeId>,
    /// The new dots; `None` when there were more than [`MAX_NEWS`].
    news: Option<BTreeSet<Dot>>,
}

impl Announcement {
    fn merge(&mut self, other: Announcement) {
        if self.except != other.except {
            self.except = None;
        }
        self.news = match (self.news.take(), other.news) {
            (Some(mut a), Some(b)) if a.len() + b.len() <= MAX_NEWS => {
                a.extend(b);
                Some(a)
            }
            _ => None,
        };
    }
}

/// Past this many dots being fetched, the oldest bookkeeping is dropped.
const MAX_FETCHING: usize = 4096;

/// Timing and fan-out of the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Time between periodic pull rounds.
    pub pull_interval: Duration,
    /// Each round is scheduled `pull_interval × (1 ± jitter)` after the
    /// previous one, so that nodes do not pull in lockstep. In `[0, 1)`.
    pub pull_jitter: f64,
    /// Peers pulled from per round.
    pub pull_fanout: usize,
    /// Notification fan-out per doubling of the cluster: after a local write,
    /// and after a join that learned something, a node notifies
    /// `notify_fanout × ⌈log2(N + 1)⌉` random live peers (at most all of
    /// them). 0 disables notifications (periodic pulls only).
    pub notify_fanout: usize,
    /// Time between purges of stable tombstones.
    pub purge_interval: Duration,
    /// How long a notify-triggered pull may stay unanswered before another
    /// notification from the same peer triggers a new one.
    pub request_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            pull_interval: Duration::from_secs(1),
            pull_jitter: 0.1,
            pull_fanout: 1,
            notify_fanout: 2,
            purge_interval: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// A request the engine wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The peer to send it to (over this node's connection to it).
    pub to: Peer,
    /// A `Pull` or a `Notify`.
    pub message: Message,
}

/// Something the app may want to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A join changed visible values of this replica; take the keys with
    /// [`Engine::take_changes`].
    Changed {
        /// The replica's registered name.
        replica: String,
    },
}

/// The sans-IO pull anti-entropy engine of one node. See the module docs.
pub struct Engine {
    node: NodeId,
    config: EngineConfig,
    rng: ChaCha8Rng,
    replicas: BTreeMap<String, Box<dyn ErasedReplica>>,
    next_round: Instant,
    next_purge: Instant,
    /// Per peer, per replica: the digest it sent with its latest pull.
    digests: HashMap<NodeId, HashMap<String, CausalContext>>,
    /// Notify-triggered pulls not answered yet, by (peer, replica).
    pending: HashMap<(NodeId, String), Instant>,
    /// Replicas with news to announce.
    to_notify: BTreeMap<String, Announcement>,
    /// Dots announced to us that a pull is already fetching, and since when.
    fetching: HashMap<Dot, Instant>,
    transmits: VecDeque<Transmit>,
    changed: BTreeSet<String>,
    metrics: Metrics,
    /// The latest `now` passed in.
    last_now: Instant,
}

impl Engine {
    /// An engine for node `node`, whose first round is due one jittered
    /// interval after `now`. `seed` drives every random choice.
    pub fn new(node: NodeId, config: EngineConfig, seed: u64, now: Instant) -> Self {
        let mut engine = Engine {
            node,
            rng: ChaCha8Rng::seed_from_u64(seed),
            replicas: BTreeMap::new(),
            next_round: now,
            next_purge: now + config.purge_interval,
            digests: HashMap::new(),
            pending: HashMap::new(),
            to_notify: BTreeMap::new(),
            fetching: HashMap::new(),
            transmits: VecDeque::new(),
            changed: BTreeSet::new(),
            metrics: Metrics::default(),
            last_now: now,
            config,
        };
        engine.next_round = now + engine.jittered_interval();
        engine
    }

    /// This node's id.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Registers `replica` under `name`; one engine serves any number of
    /// replicas of different types.
    ///
    /// # Errors
    /// [`SyncError::DuplicateReplica`] if `name` is taken (nothing changes).
    pub fn register<T>(&mut self, name: &str, replica: T) -> Result<(), SyncError>
    where
        T: DeltaCrdt + Send + 'static,
        T::Delta: Serialize + DeserializeOwned,
        T::Key: Ord + Send + 'static,
    {
        if self.replicas.contains_key(name) {
            return Err(SyncError::DuplicateReplica(name.to_owned()));
        }
        let slot = Slot {
            replica,
            changed: BTreeSet::new(),
            touched: BTreeSet::new(),
        };
        self.replicas.insert(name.to_owned(), Box::new(slot));
        self.metrics.replicas.entry(name.to_owned()).or_default();
        Ok(())
    }

    /// The names of the registered replicas, ascending.
    pub fn replica_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.replicas.keys().map(String::as_str)
    }

    /// Reads replica `name` as a `T`.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn replica<T: DeltaCrdt + 'static>(&self, name: &str) -> Result<&T, SyncError> {
        let slot = self
            .replicas
            .get(name)
            .ok_or_else(|| SyncError::UnknownReplica(name.to_owned()))?;
        slot.as_any()
            .downcast_ref::<Slot<T>>()
            .map(|s| &s.replica)
            .ok_or_else(|| SyncError::WrongType(name.to_owned()))
    }

    /// Changes replica `name` locally with `write` (e.g. `|m| m.insert(k, v)`).
    /// If its digest changed, peers are notified at the next
    /// [`handle_timeout`](Self::handle_timeout), which
    /// [`poll_timeout`](Self::poll_timeout) then reports as due at once.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`]; `write` is
    /// not called.
    pub fn write<T: DeltaCrdt + 'static, R>(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut T) -> R,
    ) -> Result<R, SyncError> {
        let slot = self
            .replicas
            .get_mut(name)
            .ok_or_else(|| SyncError::UnknownReplica(name.to_owned()))?
            .as_any_mut()
            .downcast_mut::<Slot<T>>()
            .ok_or_else(|| SyncError::WrongType(name.to_owned()))?;
        let before = slot.replica.digest();
        let out = write(&mut slot.replica);
        let after = slot.replica.digest();
        if after != before {
            let news = after.difference(&before, MAX_NEWS).map(BTreeSet::from_iter);
            self.announce(name, Announcement { except: None, news });
        }
        Ok(out)
    }

    /// Takes the keys of replica `name` whose visible value changed through
    /// joins since the last call (ascending, each once).
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn take_changes<T: DeltaCrdt + 'static>(
        &mut self,
        name: &str,
    ) -> Result<Vec<T::Key>, SyncError> {
        let slot = self
            .replicas
            .get_mut(name)
            .ok_or_else(|| SyncError::UnknownReplica(name.to_owned()))?
            .as_any_mut()
            .downcast_mut::<Slot<T>>()
            .ok_or_else(|| SyncError::WrongType(name.to_owned()))?;
        Ok(std::mem::take(&mut slot.changed).into_iter().collect())
    }

    /// Takes the keys of replica `name` whose stored state changed through
    /// joins since the last call (a superset of
    /// [`take_changes`](Self::take_changes)): what a store that persists the
    /// replica key by key must rewrite. Local writes are not included (the
    /// writer knows what it wrote); nor are purges.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn take_touched<T: DeltaCrdt + 'static>(
        &mut self,
        name: &str,
    ) -> Result<Vec<T::Key>, SyncError> {
        let slot = self
            .replicas
            .get_mut(name)
            .ok_or_else(|| SyncError::UnknownReplica(name.to_owned()))?
            .as_any_mut()
            .downcast_mut::<Slot<T>>()
            .ok_or_else(|| SyncError::WrongType(name.to_owned()))?;
        Ok(std::mem::take(&mut slot.touched).into_iter().collect())
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Instant {
        if !self.to_notify.is_empty() {
            // Due at once: the latest `now` we were given is not in the future.
            return self.last_now;
        }
        self.next_round.min(self.next_purge)
    }

    /// Runs whatever is due at `now`: notifications for news, a pull round,
    /// a purge. `peers` is the current live view.
    pub fn handle_timeout(&mut self, now: Instant, peers: &dyn PeerSource) {
        self.last_now = self.last_now.max(now);
        self.flush_notifications(peers);
        if now >= self.next_round {
            self.run_round(peers);
            self.next_round = now + self.jittered_interval();
        }
        if now >= self.next_purge {
            self.purge(peers);
            self.next_purge = now + self.config.purge_interval;
        }
        let timeout = self.config.request_timeout;
        self.pending
            .retain(|_, sent| now.saturating_duration_since(*sent) < timeout);
        self.fetching
            .retain(|_, sent| now.saturating_duration_since(*sent) < timeout);
    }

    /// Handles a request from peer `from` (identified by its handshake) and
    /// returns the answer to send back on the same connection, if any:
    /// a `Pull` gets a `Delta`; a `Notify` gets nothing but queues a pull
    /// to `from` (if `from` is in `peers`); anything else gets nothing.
    pub fn handle_request(
        &mut self,
        now: Instant,
        from: &NodeId,
        request: Message,
        peers: &dyn PeerSource,
    ) -> Option<Message> {
        self.last_now = self.last_now.max(now);
        match request {
            Message::Pull { replica, digest } => {
                self.metrics.pulls_received += 1;
                let Some(slot) = self.replicas.get(&replica) else {
                    // Not ours (e.g. a newer peer): nothing to offer.
                    self.metrics.empty_answers_sent += 1;
                    return Some(Message::Delta {
                        replica,
                        delta: None,
                        full: false,
                    });
                };
                let answer = match slot.answer(&digest) {
                    Ok(answer) => answer,
                    Err(e) => {
                        tracing::error!(%replica, error = %e, "cannot encode an answer");
                        self.metrics.errors += 1;
                        None
                    }
                };
                // Remember the digest for stability, from members only: any
                // node that passes the handshake can pull, and must not be
                // able to grow this map with made-up ids.
                if peers.members().iter().any(|p| &p.id == from) {
                    self.digests
                        .entry(from.clone())
                        .or_default()
                        .insert(replica.clone(), digest);
                }
                match &answer {
                    None => self.metrics.empty_answers_sent += 1,
                    Some((_, full)) => {
                        self.metrics.deltas_sent += 1;
                        self.metrics.full_state_answers_sent += u64::from(*full);
                    }
                }
                let (delta, full) = answer.map_or((None, false), |(b, f)| (Some(b), f));
                Some(Message::Delta {
                    replica,
                    delta,
                    full,
                })
            }
            Message::Notify { replica, news } => {
                self.metrics.notifies_received += 1;
                let slot = self.replicas.get(&replica)?;
                // Listed news we have, or are already fetching, needs no pull.
                if !news.is_empty() && news.len() <= MAX_NEWS {
                    let digest = slot.digest();
                    if news.iter().all(|d| digest.contains(*d)) {
                        self.metrics.notifies_redundant += 1;
                        return None;
                    }
                    if news
                        .iter()
                        .all(|d| digest.contains(*d) || self.fetching.contains_key(d))
                    {
                        return None;
                    }
                }
                let peer = peers.members().into_iter().find(|p| &p.id == from)?;
                if self.fetching.len() + news.len() > MAX_FETCHING {
                    self.fetching.clear();
                }
                if news.len() <= MAX_NEWS {
                    self.fetching.extend(news.into_iter().map(|d| (d, now)));
                }
                self.pull_now(now, peer, replica);
                None
            }
            _ => None,
        }
    }

    /// Handles an answer from peer `from` to one of our pulls: joins it, and
    /// if that taught us something, schedules notifications (not to `from`).
    ///
    /// # Errors
    /// [`SyncError::Decode`] if the answer cannot be decoded (the replica is
    /// unchanged); [`SyncError::Protocol`] if it is not an answer.
    pub fn handle_response(&mut self, from: &NodeId, response: Message) -> Result<(), SyncError> {
        let Message::Delta { replica, delta, .. } = response else {
            return Err(SyncError::Protocol(format!(
                "expected an answer, got {}",
                response.kind()
            )));
        };
        self.pending.remove(&(from.clone(), replica.clone()));
        let (Some(bytes), Some(slot)) = (delta, self.replicas.get_mut(&replica)) else {
            return Ok(());
        };
        let before = slot.digest();
        let learned = slot.join(&bytes).map_err(|source| {
            self.metrics.errors += 1;
            SyncError::Decode {
                replica: replica.clone(),
                source,
            }
        })?;
        self.metrics.deltas_applied += 1;
        if learned {
            self.metrics.deltas_learned += 1;
            self.changed.insert(replica.clone());
            let news = slot
                .digest()
                .difference(&before, MAX_NEWS)
                .map(BTreeSet::from_iter);
            for dot in news.iter().flatten() {
                self.fetching.remove(dot);
            }
            self.announce(
                &replica,
                Announcement {
                    except: Some(from.clone()),
                    news,
                },
            );
        }
        Ok(())
    }

    /// The next request to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the app, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.changed
            .pop_first()
            .map(|replica| Event::Changed { replica })
    }

    /// Forgets what is known of a peer that left (its digest no longer counts
    /// towards stability, and it no longer blocks a purge).
    pub fn forget_peer(&mut self, peer: &NodeId) {
        self.digests.remove(peer);
        self.pending.retain(|(p, _), _| p != peer);
    }

    /// The counters so far.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The counters, for the transport to add bytes, rejections and errors.
    pub fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.metrics
    }

    /// Whether `name` is a registered replica (for attributing bytes of
    /// untrusted messages without growing the metrics per unknown name).
    pub fn is_registered(&self, name: &str) -> bool {
        self.replicas.contains_key(name)
    }

    fn jittered_interval(&mut self) -> Duration {
        let jitter = self.config.pull_jitter.clamp(0.0, 0.99);
        let factor = if jitter > 0.0 {
            self.rng.random_range(1.0 - jitter..=1.0 + jitter)
        } else {
            1.0
        };
        self.config.pull_interval.mul_f64(factor)
    }

    fn run_round(&mut self, peers: &dyn PeerSource) {
        self.metrics.rounds += 1;
        let targets = peers.sample(self.config.pull_fanout, &mut self.rng);
        for peer in targets {
            for (name, slot) in &self.replicas {
                self.metrics.pulls_sent += 1;
                self.transmits.push_back(Transmit {
                    to: peer.clone(),
                    message: Message::Pull {
                        replica: name.clone(),
                        digest: slot.digest(),
                    },
                });
            }
        }
    }

    fn pull_now(&mut self, now: Instant, peer: Peer, replica: String) {
        let key = (peer.id.clone(), replica);
        if self.pending.contains_key(&key) {
            return;
        }
        let Some(slot) = self.replicas.get(&key.1) else {
            return;
        };
        self.metrics.pulls_sent += 1;
        self.transmits.push_back(Transmit {
            to: peer,
            message: Message::Pull {
                replica: key.1.clone(),
                digest: slot.digest(),
            },
        });
        self.pending.insert(key, now);
    }

    /// Queues news for the next [`handle_timeout`](Self::handle_timeout).
    fn announce(&mut self, replica: &str, announcement: Announcement) {
        if self.config.notify_fanout == 0 {
            return;
        }
        match self.to_notify.get_mut(replica) {
            Some(queued) => queued.merge(announcement),
            None => {
                self.to_notify.insert(replica.to_owned(), announcement);
            }
        }
    }

    /// How many peers to notify among `members`: the fan-out per doubling of
    /// the cluster, times ⌈log2(members + 1)⌉.
    fn notify_count(&self, members: usize) -> usize {
        let doublings = (usize::BITS - members.leading_zeros()) as usize; // ⌈log2(m + 1)⌉
        (self.config.notify_fanout * doublings.max(1)).min(members)
    }

    fn flush_notifications(&mut self, peers: &dyn PeerSource) {
        if self.to_notify.is_empty() {
            return;
        }
        let members = peers.members();
        for (replica, Announcement { except, news }) in std::mem::take(&mut self.to_notify) {
            let candidates: Vec<&Peer> = members
                .iter()
                .filter(|p| Some(&p.id) != except.as_ref())
                .collect();
            let count = self.notify_count(members.len());
            let chosen: Vec<Peer> = candidates
                .sample(&mut self.rng, count)
                .map(|p| (*p).clone())
                .collect();
            let news: Vec<Dot> = news.map(Vec::from_iter).unwrap_or_default();
            for peer in chosen {
                self.metrics.notifies_sent += 1;
                self.transmits.push_back(Transmit {
                    to: peer,
                    message: Message::Notify {
                        replica: replica.clone(),
                        news: news.clone(),
                    },
                });
            }
        }
    }

    fn purge(&mut self, peers: &dyn PeerSource) {
        let members = peers.members();
        let ids: BTreeSet<&NodeId> = members.iter().map(|p| &p.id).collect();
        self.digests.retain(|id, _| ids.contains(id));
        for (name, slot) in self.replicas.iter_mut() {
            let mut stable = slot.digest();
            let mut complete = true;
            for id in &ids {
                match self.digests.get(*id).and_then(|d| d.get(name)) {
                    Some(digest) => stable = stable.meet(digest),
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                self.metrics.purged += slot.purge(&stable) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use crdt::{ActorId, ORMap};

    use super::*;
    use crate::StaticPeers;

    type Map = ORMap<u32, u32>;

    fn peer(i: usize) -> Peer {
        Peer {
            id: NodeId(format!("n{i}")),
            addr: SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
        }
    }

    /// `n` engines, each seeing all the others, each with one map "m".
    fn cluster(n: usize, config: EngineConfig, now: Instant) -> (Vec<Engine>, Vec<StaticPeers>) {
        let engines = (0..n)
            .map(|i| {
                let mut e = Engine::new(peer(i).id, config.clone(), i as u64, now);
                e.register("m", Map::new(ActorId(i as u64 + 1)))
                    .expect("fresh name");
                e
            })
            .collect();
        let views = (0..n)
            .map(|i| StaticPeers::new((0..n).filter(|&j| j != i).map(peer).collect()))
            .collect();
        (engines, views)
    }

    /// Delivers every queued request and its answer, until nothing is queued.
    /// Returns the number of requests delivered.
    fn exchange(engines: &mut [Engine], views: &[StaticPeers], now: Instant) -> usize {
        let mut delivered = 0;
        loop {
            let mut queued = Vec::new();
            for (i, e) in engines.iter_mut().enumerate() {
                e.handle_timeout(now, &views[i]);
                while let Some(t) = e.poll_transmit() {
                    queued.push((i, t));
                }
            }
            if queued.is_empty() {
                return delivered;
            }
            for (from, t) in queued {
                delivered += 1;
                let to: usize = t.to.id.0[1..].parse().expect("node name");
                let from_id = engines[from].node().clone();
                if let Some(answer) =
                    engines[to].handle_request(now, &from_id, t.message, &views[to])
                {
                    let to_id = engines[to].node().clone();
                    engines[from]
                        .handle_response(&to_id, answer)
                        .expect("valid answer");
                }
            }
        }
    }

    fn read(e: &Engine) -> Vec<(u32, u32)> {
        e.replica::<Map>("m")
            .expect("registered")
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    #[test]
    fn a_write_spreads_by_notify_then_pull_before_any_round() {
        let now = Instant::now();
        let (mut engines, views) = cluster(8, EngineConfig::default(), now);
        engines[0]
            .write::<Map, _>("m", |m| m.insert(7, 70))
            .expect("registered");
        assert_eq!(engines[0].poll_timeout(), now, "news is due at once");
        exchange(&mut engines, &views, now);
        let reached = engines.iter().filter(|e| read(e) == vec![(7, 70)]).count();
        // 7 peers: fan-out 2 × ⌈log2(7 + 1)⌉ = 6 notified by the writer,
        // and every learner tells 6 more: all reached, no round needed.
        assert_eq!(reached, 8, "all 8 reached by notifications");
        assert_eq!(engines[0].metrics().notifies_sent, 6);
        // later notifications carried news the receivers already had
        assert!(
            engines
                .iter()
                .map(|e| e.metrics().notifies_redundant)
                .sum::<u64>()
                > 0
        );
        assert_eq!(engines.iter().map(|e| e.metrics().rounds).sum::<u64>(), 0);
    }

    #[test]
    fn periodic_rounds_alone_converge_and_steady_state_ships_no_keys() {
        let start = Instant::now();
        let config = EngineConfig {
            notify_fanout: 0,
            ..EngineConfig::default()
        };
        let (mut engines, views) = cluster(5, config, start);
        for (i, e) in engines.iter_mut().enumerate() {
            e.write::<Map, _>("m", |m| m.insert(i as u32, i as u32))
                .expect("registered");
        }
        assert_eq!(
            engines[0].poll_timeout(),
            engines[0].next_round.min(engines[0].next_purge)
        );
        let mut now = start;
        for _ in 0..30 {
            now += Duration::from_millis(1100);
            exchange(&mut engines, &views, now);
        }
        let expected: Vec<(u32, u32)> = (0..5).map(|i| (i, i)).collect();
        for e in &engines {
            assert_eq!(read(e), expected);
            assert_eq!(e.metrics().notifies_sent, 0);
        }
        // From now on, answers carry nothing.
        let before: Vec<Metrics> = engines.iter().map(|e| e.metrics().clone()).collect();
        for _ in 0..10 {
            now += Duration::from_millis(1100);
            exchange(&mut engines, &views, now);
        }
        for (e, b) in engines.iter().zip(&before) {
            assert_eq!(
                e.metrics().deltas_sent,
                b.deltas_sent,
                "steady state moved key states"
            );
        }
        let empty =
            |ms: &mut dyn Iterator<Item = &Metrics>| ms.map(|m| m.empty_answers_sent).sum::<u64>();
        let answered = empty(&mut engines.iter().map(|e| e.metrics())) - empty(&mut before.iter());
        assert!(
            answered >= 5 * 10,
            "{answered} empty answers in 10 rounds of 5 nodes"
        );
        assert!(engines.iter().map(|e| e.metrics().rounds).sum::<u64>() >= 5 * 30);
    }

    #[test]
    fn stable_tombstones_are_purged_once_every_member_has_pulled() {
        let start = Instant::now();
        let config = EngineConfig {
            purge_interval: Duration::from_secs(5),
            ..EngineConfig::default()
        };
        let (mut engines, views) = cluster(3, config, start);
        engines[0]
            .write::<Map, _>("m", |m| m.insert(1, 1))
            .expect("registered");
        engines[0]
            .write::<Map, _>("m", |m| m.remove(&1))
            .expect("registered");
        let mut now = start;
        for _ in 0..40 {
            now += Duration::from_millis(1100);
            exchange(&mut engines, &views, now);
        }
        for e in &engines {
            let m = e.replica::<Map>("m").expect("registered");
            assert_eq!(m.stored_keys(), 0, "{} kept its tombstone", e.node());
        }
        assert!(engines.iter().map(|e| e.metrics().purged).sum::<u64>() >= 1);
    }

    #[test]
    fn a_node_away_across_a_purge_gets_the_full_state_and_drops_the_removed_value() {
        let start = Instant::now();
        let config = EngineConfig {
            notify_fanout: 0,
            purge_interval: Duration::from_secs(3),
            ..EngineConfig::default()
        };
        let (mut engines, mut views) = cluster(3, config, start);
        engines[2]
            .write::<Map, _>("m", |m| m.insert(1, 10))
            .expect("registered");
        let mut now = start;
        for _ in 0..10 {
            now += Duration::from_millis(1100);
            exchange(&mut engines, &views, now);
        }
        assert!(engines.iter().all(|e| read(e) == vec![(1, 10)]));
        // n2 goes away: the others stop seeing it, and it sees no one.
        views[0] = StaticPeers::new(vec![peer(1)]);
        views[1] = StaticPeers::new(vec![peer(0)]);
        views[2] = StaticPeers::new(vec![]);
        engines[0].forget_peer(&peer(2).id);
        engines[1].forget_peer(&peer(2).id);
        engines[0]
            .write::<Map, _>("m", |m| m.remove(&1))
            .expect("registered");
        for _ in 0..20 {
            now += Duration::from_millis(1100);
            exchange(&mut engines, &views, now);
        }
        for e in &engines[..2] {
            let m = e.replica::<Map>("m").expect("registered");
            assert_eq!(m.stored_keys(), 0, "{} purged the tombstone", e.node());
        }
        assert_eq!(
            read(&engines[2]),
            vec![(1, 10)],
            "n2 still holds the removed value"
        );
        // n2 comes back.
        let full_before: u64 = engines
            .iter()
            .map(|e| e.metrics().full_state_answers_sent)
            .sum();
        views = (0..3)
            .map(|i| StaticPeers::new((0..3).filter(|&j| j != i).map(peer).collect()))
            .collect();
        for _ in 0..10 {
            now += Duration::from_millis(1100);
            exchange(&mut engines, &views, now);
        }
        let full_after: u64 = engines
            .iter()
            .map(|e| e.metrics().full_state_answers_sent)
            .sum();
        assert!(
            full_after > full_before,
            "n2's digest predates the purge: full state"
        );
        assert!(
            engines.iter().all(|e| read(e).is_empty()),
            "the removed value is gone everywhere"
        );
    }

    #[test]
    fn a_notification_from_a_stranger_triggers_nothing() {
        let now = Instant::now();
        let (mut engines, views) = cluster(2, EngineConfig::default(), now);
        let stranger = NodeId("stranger".into());
        let answer = engines[0].handle_request(
            now,
            &stranger,
            Message::Notify {
                replica: "m".into(),
                news: vec![],
            },
            &views[0],
        );
        assert!(answer.is_none());
        engines[0].handle_timeout(now, &views[0]);
        assert!(engines[0].poll_transmit().is_none());
    }

    #[test]
    fn pulls_for_unknown_replicas_get_an_empty_answer_and_grow_nothing() {
        let now = Instant::now();
        let (mut engines, views) = cluster(2, EngineConfig::default(), now);
        let from = engines[1].node().clone();
        for i in 0..100 {
            let answer = engines[0].handle_request(
                now,
                &from,
                Message::Pull {
                    replica: format!("nope{i}"),
                    digest: CausalContext::new(),
                },
                &views[0],
            );
            assert!(matches!(answer, Some(Message::Delta { delta: None, .. })));
        }
        assert_eq!(engines[0].metrics().replicas.len(), 1);
        assert!(engines[0].digests.get(&from).is_none_or(|d| d.len() <= 1));
        // a non-member's pulls are answered but its digest is not kept
        for i in 0..100 {
            let stranger = NodeId(format!("stranger{i}"));
            let pull = Message::Pull {
                replica: "m".into(),
                digest: CausalContext::new(),
            };
            assert!(
                engines[0]
                    .handle_request(now, &stranger, pull, &views[0])
                    .is_some()
            );
        }
        assert!(engines[0].digests.len() <= 1);
    }

    #[test]
    fn an_undecodable_answer_is_an_error_and_changes_nothing() {
        let now = Instant::now();
        let (mut engines, _) = cluster(2, EngineConfig::default(), now);
        let from = engines[1].node().clone();
        let bad = Message::Delta {
            replica: "m".into(),
            delta: Some(bytes::Bytes::from_static(&[0xc1, 0xff, 0x00])),
            full: false,
        };
        assert!(matches!(
            engines[0].handle_response(&from, bad),
            Err(SyncError::Decode { .. })
        ));
        assert_eq!(engines[0].metrics().errors, 1);
        assert!(read(&engines[0]).is_empty());
    }
}
