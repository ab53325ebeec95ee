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
//!   random live peers: `Pull{replica, digest}`; the peer answers with the
//!   `delta_since(digest)` rows and head, in `Chunk`s followed by one
//!   `Delta` when the answer is larger than `chunk_bytes`, and the engine
//!   joins the whole answer at once (a cut sequence is dropped);
//! * after a local write it sends `Notify{replica, news}` to
//!   `notify_fanout × ⌈log2(N + 1)⌉` random peers (N live peers; memberlist
//!   scales its retransmissions by log N the same way), which pull from it at
//!   once unless they have already seen the `news` dots; a node whose join
//!   learned something notifies in turn. A single write thus reaches every
//!   node within a few round trips with high probability, where a fixed
//!   fan-out leaves about e^-fanout of the nodes to the next periodic pull.
//!   Mutator deltas are never pushed (they are exact only under causal
//!   delivery); periodic pulls repair whatever notifications miss;
//! * a member seen for the first time is pulled from at once (which also
//!   proves the transport can reach it);
//! * every peer's latest digest (from its pulls) is remembered; every
//!   `purge_interval` the meet of the current members' digests and our own is
//!   the stable context, and stable tombstones are purged. Peers whose digest
//!   predates a purge get the full state.
//!
//! Durable replicas (registered with
//! [`register_durable`](Engine::register_durable)) follow two more rules,
//! checked by the model in `proofs/models/identity_model.py`:
//! * **durable before exposed:** this node's own dots leave it (in an answer,
//!   in a notification) only once a commit holds them. The caller takes
//!   commits with [`take_commit`](Engine::take_commit), writes them to its
//!   [`Storage`](crate::storage::Storage) and reports back with
//!   [`handle_committed`](Engine::handle_committed); a pull that finds own
//!   dots not yet durable is *parked* and answered from the state of the next
//!   commit's cut once that commit is durable;
//! * **catching up, and a reused actor verified:** at start the engine pulls
//!   from one live member, then from all others. With an actor restored from
//!   the store it mints nothing until every member live at start has
//!   answered: an answer holding a dot of its actor above what the store had
//!   means the store is older than what it exposed (restored from a
//!   snapshot), and a member that does not answer within `startup_timeout`
//!   leaves it unsure; either way it takes a fresh actor. Alone, it trusts
//!   its store.
//!
//! Calling order (quinn-proto's `Connection` is the model, and
//! `membership::MembershipCore` has the same shape): feed every input through
//! a `handle_*` method (or a local [`write`](Engine::write)):
//! [`handle_request`](Engine::handle_request) and
//! [`handle_response`](Engine::handle_response) for messages from peers,
//! [`handle_connection_lost`](Engine::handle_connection_lost) and
//! [`handle_peer_failed`](Engine::handle_peer_failed) for what the transport
//! saw, [`handle_committed`](Engine::handle_committed) and
//! [`handle_commit_failed`](Engine::handle_commit_failed) for the store,
//! [`handle_timeout`](Engine::handle_timeout) once
//! [`poll_timeout`](Engine::poll_timeout) is reached. After each, drain
//! [`poll_transmit`](Engine::poll_transmit) (send every [`Transmit`]) and
//! [`poll_event`](Engine::poll_event) (and, with a store,
//! [`take_commit`](Engine::take_commit)), then ask
//! [`poll_timeout`](Engine::poll_timeout) when to call `handle_timeout`
//! next. Read the counters with [`stats`](Engine::stats), a copy; nothing
//! outside the engine changes them (the transport keeps the counters only
//! it can see, bytes and refused connections, and adds them in
//! [`Node::metrics`](crate::Node::metrics)).

mod answer;
mod durable;
mod startup;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    time::{Duration, Instant},
};

use crdt::{ActorId, CausalContext, Dot, Rows, VersionVector};
use rand::{RngExt, SeedableRng, seq::IndexedRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Serialize, de::DeserializeOwned};

pub use answer::{Answer, Reply};
pub use durable::CommitTicket;
pub use startup::StartupOutcome;

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

/// Timing, fan-out and limits of the engine.
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
    /// How long a pull may stay unanswered (with no chunk of its answer
    /// arriving) before another pull of the same replica from the same peer
    /// is sent.
    pub request_timeout: Duration,
    /// An answer whose rows encode to more than this is sent as a sequence
    /// of chunks of about this size, then a last part (each one frame).
    /// Keep it well below the transport's frame limit.
    pub chunk_bytes: usize,
    /// The largest answer accepted in chunks (their bytes summed); a longer
    /// sequence is dropped, and the replica is left as it was.
    pub max_answer_bytes: usize,
    /// How long a starting node waits for its peers' first answers (see the
    /// module docs) before it counts as caught up anyway: alone (no member
    /// seen) or timed out. Each chunk of an awaited answer restarts the
    /// wait.
    pub startup_timeout: Duration,
    /// How long a node whose actor was restored from its store waits, from
    /// its start, for every member live then to answer before it is unsure
    /// and takes a fresh actor. It writes nothing until then.
    pub verify_timeout: Duration,
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
            chunk_bytes: 1024 * 1024,
            max_answer_bytes: 1024 * 1024 * 1024,
            startup_timeout: Duration::from_secs(3),
            verify_timeout: Duration::from_secs(15),
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
    /// The node has caught up with its peers after starting (or decided it
    /// is alone, or stopped waiting): see [`StartupOutcome`].
    CaughtUp(StartupOutcome),
    /// The actor restored from the store could not be trusted; the node
    /// mints with a fresh one from now on (persisted with the next commit).
    ActorRetired {
        /// The restored actor.
        old: ActorId,
        /// The fresh one.
        new: ActorId,
        /// Why: `"stale store"` or `"unsure"`.
        reason: &'static str,
    },
    /// The transport completed a handshake with this peer: it is reachable
    /// and of this cluster (raised by [`crate::Node`], not by the engine).
    PeerVerified(NodeId),
    /// The transport could not complete a handshake with this peer (refused,
    /// unreachable, another cluster or version); raised by [`crate::Node`].
    PeerFailed(NodeId),
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
    /// Per member, per replica: the purge frontier last sent to it in an
    /// answer, and when (see [`Engine::answer`]).
    frontier_sent: HashMap<(NodeId, String), (VersionVector, Instant)>,
    /// Pulls not answered yet, by (peer, replica), and when sent (or when
    /// their last chunk arrived).
    pending: HashMap<(NodeId, String), Instant>,
    /// Replicas with news to announce.
    to_notify: BTreeMap<String, Announcement>,
    /// Dots announced to us that a pull is already fetching, and since when.
    fetching: HashMap<Dot, Instant>,
    /// Live members pulled from since they (re)appeared.
    greeted: HashSet<NodeId>,
    transmits: VecDeque<Transmit>,
    changed: BTreeSet<String>,
    events: VecDeque<Event>,
    metrics: Metrics,
    /// The latest `now` passed in.
    last_now: Instant,
    assembly: answer::Assembly,
    durable: durable::Durability,
    startup: startup::Startup,
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
            frontier_sent: HashMap::new(),
            pending: HashMap::new(),
            to_notify: BTreeMap::new(),
            fetching: HashMap::new(),
            greeted: HashSet::new(),
            transmits: VecDeque::new(),
            changed: BTreeSet::new(),
            events: VecDeque::new(),
            metrics: Metrics::default(),
            last_now: now,
            assembly: answer::Assembly::default(),
            durable: durable::Durability::default(),
            startup: startup::Startup::new(now),
            config,
        };
        engine.next_round = now + engine.jittered_interval();
        engine
    }

    /// This node's id.
    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Registers `replica` under `name`, in memory only: it is not persisted
    /// and its dots are exposed as soon as they exist. One engine serves any
    /// number of replicas of different types.
    ///
    /// # Errors
    /// [`SyncError::DuplicateReplica`] if `name` is taken (nothing changes).
    pub fn register<T>(&mut self, name: &str, replica: T) -> Result<(), SyncError>
    where
        T: Rows + Send + 'static,
        T::Delta: Serialize + DeserializeOwned,
        T::Key: Ord + Clone + Serialize + DeserializeOwned + Send + 'static,
    {
        if self.replicas.contains_key(name) {
            return Err(SyncError::DuplicateReplica(name.to_owned()));
        }
        self.replicas
            .insert(name.to_owned(), Box::new(Slot::new(replica)));
        self.metrics.replicas.entry(name.to_owned()).or_default();
        Ok(())
    }

    /// Reads replica `name` as a `T`.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn replica<T: Rows + 'static>(&self, name: &str) -> Result<&T, SyncError> {
        let slot = self
            .replicas
            .get(name)
            .ok_or_else(|| SyncError::UnknownReplica(name.to_owned()))?;
        slot.as_any()
            .downcast_ref::<Slot<T>>()
            .map(|s| &s.replica)
            .ok_or_else(|| SyncError::WrongType(name.to_owned()))
    }

    fn slot_mut<T: Rows + 'static>(&mut self, name: &str) -> Result<&mut Slot<T>, SyncError> {
        self.replicas
            .get_mut(name)
            .ok_or_else(|| SyncError::UnknownReplica(name.to_owned()))?
            .as_any_mut()
            .downcast_mut::<Slot<T>>()
            .ok_or_else(|| SyncError::WrongType(name.to_owned()))
    }

    /// Changes replica `name` locally with `write` (e.g. `|m| m.insert(k, v)`).
    /// If its digest changed, peers are notified at the next
    /// [`handle_timeout`](Self::handle_timeout) (for a durable replica, once
    /// the write is durable), which [`poll_timeout`](Self::poll_timeout) then
    /// reports as due at once.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`];
    /// [`SyncError::NotReady`] while a restored actor is being verified
    /// (see the module docs; [`ready`](Self::ready) says when it is over).
    /// `write` is not called.
    pub fn write<T: Rows + 'static, R>(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut T) -> R,
    ) -> Result<R, SyncError> {
        if !self.ready() {
            return Err(SyncError::NotReady);
        }
        let durable = self.durable.is_durable(name);
        let slot = self.slot_mut::<T>(name)?;
        let before = slot.replica.digest();
        let out = write(&mut slot.replica);
        let after = slot.replica.digest();
        let own = slot.replica.max_counter(slot.replica.actor());
        if after != before {
            if let Some(replica) = self.replicas.get_mut(name) {
                replica.note_write(&before);
            }
            let news = after.difference(&before, MAX_NEWS).map(BTreeSet::from_iter);
            let announcement = Announcement { except: None, news };
            if durable {
                self.durable.wrote(name, own, announcement);
            } else {
                self.announce(name, announcement);
            }
        }
        Ok(out)
    }

    /// Takes the keys of replica `name` whose visible value changed through
    /// joins since the last call (ascending, each once).
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn take_changes<T: Rows + 'static>(
        &mut self,
        name: &str,
    ) -> Result<Vec<T::Key>, SyncError> {
        let slot = self.slot_mut::<T>(name)?;
        Ok(std::mem::take(&mut slot.changed).into_iter().collect())
    }

    /// Starts collecting, for watchers, the keys of replica `name` that
    /// joins and local writes change (taken with
    /// [`take_watched`](Self::take_watched)); calling it again does nothing.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn watch<T: Rows + 'static>(&mut self, name: &str) -> Result<(), SyncError> {
        let slot = self.slot_mut::<T>(name)?;
        slot.watched.get_or_insert_with(Default::default);
        Ok(())
    }

    /// Takes the keys of watched replica `name` changed since the last call
    /// (ascending, each once; empty if it is not watched). A key may be
    /// reported whose visible value a concurrent write left as it was:
    /// watchers re-read the keys they are given.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn take_watched<T: Rows + 'static>(
        &mut self,
        name: &str,
    ) -> Result<Vec<T::Key>, SyncError> {
        let slot = self.slot_mut::<T>(name)?;
        Ok(slot
            .watched
            .as_mut()
            .map(|w| std::mem::take(w).into_iter().collect())
            .unwrap_or_default())
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    /// Always `Some` (a round is always ahead); an `Option` to match the
    /// other cores.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.to_notify.is_empty() || self.startup.step_due() {
            // Due at once: the latest `now` we were given is not in the future.
            return Some(self.last_now);
        }
        let mut at = self.next_round.min(self.next_purge);
        if let Some(deadline) = self.startup.deadline(&self.config) {
            at = at.min(deadline);
        }
        Some(at)
    }

    /// Runs whatever is due at `now`: notifications for news, the start-up
    /// pulls, greetings of new members, a pull round, a purge. `peers` is
    /// the current live view.
    pub fn handle_timeout(&mut self, now: Instant, peers: &dyn PeerSource) {
        self.last_now = self.last_now.max(now);
        let timeout = self.config.request_timeout;
        self.pending
            .retain(|_, sent| now.saturating_duration_since(*sent) < timeout);
        self.fetching
            .retain(|_, sent| now.saturating_duration_since(*sent) < timeout);
        self.flush_notifications(peers);
        let members = peers.members();
        self.step_startup(now, &members);
        if self.startup.lets_pull() {
            self.greet(now, &members);
            if now >= self.next_round {
                self.run_round(now, peers);
            }
        }
        if now >= self.next_round {
            self.next_round = now + self.jittered_interval();
        }
        if now >= self.next_purge {
            self.purge(peers);
            self.next_purge = now + self.config.purge_interval;
        }
    }

    /// Handles a request from peer `from` (identified by its handshake) and
    /// says what to send back on the same connection: a `Pull` gets an
    /// [`Answer`] (one or more messages), or is [`Reply::Parked`] until a
    /// commit makes this node's own dots durable; a `Notify` gets nothing
    /// but may queue a pull to `from` (if `from` is in `peers`); anything
    /// else gets nothing.
    pub fn handle_request(
        &mut self,
        now: Instant,
        from: &NodeId,
        request: Message,
        peers: &dyn PeerSource,
    ) -> Reply {
        self.last_now = self.last_now.max(now);
        match request {
            Message::Pull { replica, digest } => {
                // Remember the digest for stability, from members only: any
                // node that passes the handshake can pull, and must not be
                // able to grow this map with made-up ids.
                let member = self.replicas.contains_key(&replica)
                    && peers.members().iter().any(|p| &p.id == from);
                if member {
                    self.digests
                        .entry(from.clone())
                        .or_default()
                        .insert(replica.clone(), digest.clone());
                }
                if !self.exposable(&replica) {
                    self.metrics.pulls_parked += 1;
                    return Reply::Parked(self.durable.park(replica, digest));
                }
                self.answer(member.then_some(from), &replica, &digest)
            }
            Message::Notify { replica, news } => {
                self.metrics.notifies_received += 1;
                let Some(slot) = self.replicas.get(&replica) else {
                    return Reply::Nothing;
                };
                // Listed news we have, or are already fetching, needs no pull.
                if !news.is_empty() && news.len() <= MAX_NEWS {
                    let digest = slot.digest();
                    if news.iter().all(|d| digest.contains(*d)) {
                        self.metrics.notifies_redundant += 1;
                        return Reply::Nothing;
                    }
                    if news
                        .iter()
                        .all(|d| digest.contains(*d) || self.fetching.contains_key(d))
                    {
                        return Reply::Nothing;
                    }
                }
                let Some(peer) = peers.members().into_iter().find(|p| &p.id == from) else {
                    return Reply::Nothing;
                };
                if !self.startup.lets_pull() {
                    return Reply::Nothing;
                }
                if self.fetching.len() + news.len() > MAX_FETCHING {
                    self.fetching.clear();
                }
                if news.len() <= MAX_NEWS {
                    self.fetching.extend(news.into_iter().map(|d| (d, now)));
                }
                self.pull(now, &peer, &replica);
                Reply::Nothing
            }
            _ => Reply::Nothing,
        }
    }

    /// The answer to `digest` for `replica`, from the current state.
    ///
    /// A member (`from`) whose digest has seen every dot may still lack this
    /// replica's purge frontier (it purged less, or not at all); without it,
    /// it keeps tombstones this replica dropped and the two differ as states
    /// for ever. So when there is nothing else to send, the member gets an
    /// answer with only the context and the frontier if it has not been sent
    /// one covering the current frontier within the last `purge_interval`
    /// (answers can be lost, and a member restarted from an older store).
    /// Cost in steady state: one such small answer per member and replica
    /// per purge interval, and only while the frontier is not empty.
    pub(super) fn answer(
        &mut self,
        from: Option<&NodeId>,
        replica: &str,
        digest: &CausalContext,
    ) -> Reply {
        self.metrics.pulls_received += 1;
        let Some(slot) = self.replicas.get(replica) else {
            // Not ours (e.g. a newer peer's): nothing to offer.
            self.metrics.empty_answers_sent += 1;
            return Reply::Answer(Answer::empty(replica));
        };
        let now = self.last_now;
        let frontier = slot.frontier();
        let answer = match slot.answer(digest, self.config.chunk_bytes) {
            Some(answer) => Some((answer, false)),
            None => {
                let owed = from.is_some_and(|from| {
                    !frontier.is_empty()
                        && self
                            .frontier_sent
                            .get(&(from.clone(), replica.to_owned()))
                            .is_none_or(|(sent, at)| {
                                !crdt::Lattice::leq(&frontier, sent)
                                    || now.saturating_duration_since(*at)
                                        >= self.config.purge_interval
                            })
                });
                owed.then(|| slot.frontier_answer(self.config.chunk_bytes))
                    .flatten()
                    .map(|answer| (answer, true))
            }
        };
        match answer {
            None => {
                self.metrics.empty_answers_sent += 1;
                Reply::Answer(Answer::empty(replica))
            }
            Some(((parts, full), frontier_only)) => {
                if let Some(from) = from {
                    self.frontier_sent
                        .insert((from.clone(), replica.to_owned()), (frontier, now));
                }
                if frontier_only {
                    self.metrics.frontier_answers_sent += 1;
                } else {
                    self.metrics.deltas_sent += 1;
                    self.metrics.full_state_answers_sent += u64::from(full);
                }
                Reply::Answer(Answer::new(replica, parts))
            }
        }
    }

    /// Handles an answer (or a piece of one) from peer `from` to one of our
    /// pulls. A `Chunk` is kept until its answer's last part, a `Delta`,
    /// arrives; then the whole answer is joined at once, and if that taught
    /// us something, notifications are scheduled (not to `from`).
    ///
    /// # Errors
    /// [`SyncError::Decode`] if the answer cannot be decoded or assembled (the
    /// replica is unchanged); [`SyncError::AnswerTooLarge`] if its chunks
    /// exceed `max_answer_bytes` (dropped; the replica is unchanged);
    /// [`SyncError::Protocol`] if it is not an answer.
    pub fn handle_response(&mut self, from: &NodeId, response: Message) -> Result<(), SyncError> {
        match response {
            Message::Chunk { replica, rows } => {
                if !self.replicas.contains_key(&replica) {
                    return Ok(());
                }
                let key = (from.clone(), replica);
                if let Some(sent) = self.pending.get_mut(&key) {
                    *sent = self.last_now;
                }
                self.metrics.chunks_received += 1;
                self.startup.progress(from, self.last_now);
                let (from, replica) = key;
                self.assembly
                    .push(from, replica, rows, self.config.max_answer_bytes)
                    .inspect_err(|_| {
                        self.metrics.answers_dropped += 1;
                        self.metrics.errors += 1;
                    })
            }
            Message::Delta {
                replica,
                delta,
                full,
            } => {
                self.pending.remove(&(from.clone(), replica.clone()));
                let chunks = self.assembly.finish(from, &replica);
                self.startup.answered(from, &replica);
                let result = match (delta, self.replicas.contains_key(&replica)) {
                    (Some(last), true) => self.join(from, &replica, &chunks, &last, full),
                    _ => Ok(()),
                };
                self.verify_after_join();
                result
            }
            other => Err(SyncError::Protocol(format!(
                "expected an answer, got {}",
                other.kind()
            ))),
        }
    }

    fn join(
        &mut self,
        from: &NodeId,
        replica: &str,
        chunks: &[bytes::Bytes],
        last: &[u8],
        full: bool,
    ) -> Result<(), SyncError> {
        let Some(slot) = self.replicas.get_mut(replica) else {
            return Ok(());
        };
        let before = slot.digest();
        let learned = match slot.join(chunks, last, full) {
            Ok(learned) => learned,
            Err(source) => {
                self.metrics.errors += 1;
                return Err(SyncError::Decode {
                    replica: replica.to_owned(),
                    source: Box::new(source),
                });
            }
        };
        self.metrics.deltas_applied += 1;
        if learned {
            self.metrics.deltas_learned += 1;
            self.changed.insert(replica.to_owned());
            self.durable.joined(replica);
            let news = slot
                .digest()
                .difference(&before, MAX_NEWS)
                .map(BTreeSet::from_iter);
            for dot in news.iter().flatten() {
                self.fetching.remove(dot);
            }
            self.announce(
                replica,
                Announcement {
                    except: Some(from.clone()),
                    news,
                },
            );
        }
        Ok(())
    }

    /// Tells the engine the connection to `peer` is gone: a partly received
    /// answer from it is dropped (the replica is as it was) and its pulls no
    /// longer count as outstanding.
    pub fn handle_connection_lost(&mut self, peer: &NodeId) {
        if self.assembly.drop_peer(peer) {
            self.metrics.answers_dropped += 1;
            tracing::info!(%peer, "connection lost in the middle of an answer: dropped its chunks");
        }
        self.pending.retain(|(p, _), _| p != peer);
    }

    /// The next request to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the app, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        self.changed
            .pop_first()
            .map(|replica| Event::Changed { replica })
    }

    /// Forgets what is known of a peer that left (its digest no longer counts
    /// towards stability, and it no longer blocks a purge).
    pub fn forget_peer(&mut self, peer: &NodeId) {
        self.digests.remove(peer);
        self.frontier_sent.retain(|(id, _), _| id != peer);
        self.pending.retain(|(p, _), _| p != peer);
        self.greeted.remove(peer);
        self.assembly.drop_peer(peer);
    }

    /// A copy of the engine's counters so far. The transport's own ones
    /// (`rejections`, the byte counts, its connection errors) are not here:
    /// [`Node::metrics`](crate::Node::metrics) adds them.
    pub fn stats(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Whether `name` is a registered replica (for attributing bytes of
    /// untrusted messages without growing the metrics per unknown name).
    pub fn is_registered(&self, name: &str) -> bool {
        self.replicas.contains_key(name)
    }

    /// Whether this node may write: false only while an actor restored from
    /// the store is being verified (see the module docs).
    pub fn ready(&self) -> bool {
        !self.startup.verifying()
    }

    /// Whether the start-up exchange with the peers is over (see
    /// [`Event::CaughtUp`]).
    pub fn caught_up(&self) -> bool {
        self.startup.done()
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

    fn run_round(&mut self, now: Instant, peers: &dyn PeerSource) {
        self.metrics.rounds += 1;
        let targets = peers.sample(self.config.pull_fanout, &mut self.rng);
        let names: Vec<String> = self.replicas.keys().cloned().collect();
        for peer in targets {
            for name in &names {
                self.pull(now, &peer, name);
            }
        }
    }

    /// Pulls every replica from each live member not pulled from since it
    /// appeared.
    fn greet(&mut self, now: Instant, members: &[Peer]) {
        let ids: HashSet<&NodeId> = members.iter().map(|p| &p.id).collect();
        self.greeted.retain(|id| ids.contains(id));
        let names: Vec<String> = self.replicas.keys().cloned().collect();
        for peer in members {
            if self.greeted.insert(peer.id.clone()) {
                for name in &names {
                    self.pull(now, peer, name);
                }
            }
        }
    }

    /// Sends a pull of `replica` to `peer`, unless one is outstanding.
    fn pull(&mut self, now: Instant, peer: &Peer, replica: &str) {
        let key = (peer.id.clone(), replica.to_owned());
        if self.pending.contains_key(&key) {
            return;
        }
        let Some(slot) = self.replicas.get(replica) else {
            return;
        };
        self.metrics.pulls_sent += 1;
        self.transmits.push_back(Transmit {
            to: peer.clone(),
            message: Message::Pull {
                replica: replica.to_owned(),
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
        self.frontier_sent.retain(|(id, _), _| ids.contains(id));
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
                let purged = slot.purge(&stable);
                if purged > 0 {
                    self.durable.joined(name);
                }
                self.metrics.purged += purged as u64;
            }
        }
    }
}

#[cfg(test)]
mod durable_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
