//! [`Node`]: the tokio transport around an [`Engine`].
//!
//! Thin by design: one driver task feeds the engine its timers and drains the
//! requests it wants sent; one task per inbound session answers requests; one
//! task per peer keeps a persistent outbound connection; with a store, one
//! persister task writes the engine's commits (group commit: every change
//! made while a commit is being written goes into the next one). The engine
//! sits behind a mutex that is held only around synchronous engine calls,
//! never across an `.await`.
//!
//! **Durability point.** A write to a durable replica (see
//! [`NodeBuilder::durable`]) is applied in memory at once and readable
//! locally; it is *durable* once a commit holding it has been written by the
//! [`Storage`]: [`Node::flush`] returns then, which is when an app may
//! acknowledge it. Before that, none of this node's own dots leave it: a
//! peer's pull is answered after the commit, notifications wait for it.
//!
//! **Counters.** The transport never changes the engine's counters
//! ([`Engine::stats`] is a copy). What only the transport sees, bytes on the
//! wire per replica, refused connections and its own errors (failed
//! connects, timeouts, bad frames, full queues), it counts in a struct of
//! its own, and [`Node::metrics`] adds it to the engine's copy. That keeps
//! the engine free of inputs that exist only to be counted (it runs in the
//! simulator, where there are no bytes) and keeps counting off the engine
//! lock. What the engine is told anyway, a commit written or failed, it
//! counts itself ([`Engine::handle_committed`]).
//!
//! The listener logs "inbound session limit reached" once, then at most once
//! per 10 s with the number of connections refused since
//! ([`LogThrottle`](crate::LogThrottle)): a connection flood writes a line
//! every 10 s, not one per connection.

mod driver;
mod inbound;
mod outbound;
mod persist;
mod watchers;

pub use watchers::{WATCH_CAPACITY, Watch, WatchEvent};

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use crdt::{ActorId, Rows};
use serde::{Serialize, de::DeserializeOwned};
use tokio::{
    net::TcpListener,
    sync::{Notify, watch},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    DEFAULT_MAX_FRAME_LENGTH, Engine, EngineConfig, Event, MIN_PROTOCOL_VERSION, Metrics, NodeId,
    PROTOCOL_VERSION, PeerSource, ReplicaBytes, SyncError,
    storage::{ActorChoice, FreshBecause, Identity, Storage, Stored},
};

/// Settings of a [`Node`].
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id, sent in every handshake.
    pub node: NodeId,
    /// The cluster name; connections from other clusters are rejected.
    pub cluster: String,
    /// Where to listen for peers (port 0 picks a free port; see
    /// [`Node::local_addr`]).
    pub listen: SocketAddr,
    /// Rounds, fan-outs, purges.
    pub engine: EngineConfig,
    /// Largest frame sent or accepted (default 16 MiB).
    pub max_frame_length: usize,
    /// Time allowed to connect and complete the handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for a frame to be written, and for a pull to be answered.
    pub io_timeout: Duration,
    /// An inbound session with no frame for this long is closed (the peer
    /// reconnects when it next has something to send).
    pub idle_timeout: Duration,
    /// Concurrent inbound sessions; beyond this, connections get an explicit
    /// `Busy` rejection and are closed.
    pub max_inbound_sessions: usize,
    /// First delay before reconnecting to a peer after a failure; doubles on
    /// each further failure up to `reconnect_backoff_max`.
    pub reconnect_backoff_min: Duration,
    /// Longest delay between reconnection attempts.
    pub reconnect_backoff_max: Duration,
    /// Requests queued per peer while its connection is busy or down; beyond
    /// this, new requests to it are dropped (and counted as errors).
    pub outbound_queue: usize,
    /// Seed of the engine's RNG; `None` takes one from the OS.
    pub seed: Option<u64>,
    /// The cluster key: with a keyring every frame is sealed (see
    /// [`seal::StreamSession`]) and frames that do not open are refused,
    /// counted in [`Node::rejections`], and close their connection without
    /// an answer. `None`: plaintext (the cluster name is then a label, not a
    /// secret).
    pub keyring: Option<seal::Keyring>,
    /// The protocol versions spoken, lowest and highest (default
    /// [`MIN_PROTOCOL_VERSION`] to [`PROTOCOL_VERSION`]); each connection
    /// uses the highest version both sides speak. Only changed to test
    /// rolling upgrades.
    pub versions: (u16, u16),
}

impl NodeConfig {
    /// Defaults for a node `node` of cluster `cluster` listening on `listen`.
    pub fn new(node: impl Into<String>, cluster: impl Into<String>, listen: SocketAddr) -> Self {
        NodeConfig {
            node: NodeId(node.into()),
            cluster: cluster.into(),
            listen,
            engine: EngineConfig::default(),
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            handshake_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_inbound_sessions: 256,
            reconnect_backoff_min: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(10),
            outbound_queue: 64,
            seed: None,
            keyring: None,
            versions: (MIN_PROTOCOL_VERSION, PROTOCOL_VERSION),
        }
    }
}

/// What the commits of a node's store have reached, for [`Node::flush`].
#[derive(Debug, Clone, Default)]
struct Committed {
    /// Local writes durable so far (see [`Engine::committed_seq`]).
    seq: u64,
    /// The latest failed commit: the writes it covered (up to this sequence
    /// number) and why.
    failed: Option<(u64, Arc<crate::storage::StorageError>)>,
}

/// The counters only the transport sees (see the module docs), added to the
/// engine's by [`Node::metrics`].
#[derive(Debug, Default)]
struct TransportStats {
    /// Connections refused by this node or by a peer.
    rejections: u64,
    /// Failed connections, timeouts, malformed frames, full queues.
    errors: u64,
    /// Per registered replica, bytes of its frames on the wire.
    replicas: std::collections::BTreeMap<String, ReplicaBytes>,
}

impl TransportStats {
    /// `engine`'s counters with these added.
    fn add_to(&self, mut engine: Metrics) -> Metrics {
        engine.rejections += self.rejections;
        engine.errors += self.errors;
        for (name, bytes) in &self.replicas {
            engine.record_sent(name, bytes.sent);
            engine.record_received(name, bytes.received);
        }
        engine
    }
}

/// What every task of a node shares.
struct Shared {
    config: NodeConfig,
    engine: Mutex<Engine>,
    /// Taken after the engine's lock when both are held, never before.
    transport: Mutex<TransportStats>,
    /// Wakes the driver: the engine may have something to send.
    wake: Notify,
    /// Wakes the persister: the engine may have something to commit.
    persist: Notify,
    /// Woken after every commit (parked pulls may be answered).
    durable_changed: Notify,
    /// Whether a store is configured.
    storage: Option<Arc<dyn Storage>>,
    /// Commits so far (for flush, and for parked pulls).
    committed: watch::Sender<Committed>,
    /// Whether the node may write (a restored actor verified) and has
    /// caught up.
    startup: watch::Sender<(bool, bool)>,
    /// Per peer, whether its last handshake completed.
    verified: Mutex<std::collections::BTreeMap<NodeId, bool>>,
    peers: Arc<dyn PeerSource>,
    events: tokio::sync::broadcast::Sender<Event>,
    /// Watched replicas; taken after the engine's lock, never before.
    watchers: Mutex<watchers::Watchers>,
    shutdown: CancellationToken,
    rejections: seal::Rejections,
}

impl Shared {
    /// A codec for a new connection: sealed if a keyring is configured.
    fn codec(&self, max_frame_length: usize, role: seal::Role) -> crate::MessageCodec {
        match &self.config.keyring {
            Some(keyring) => crate::MessageCodec::sealed(
                max_frame_length,
                seal::StreamSession::new(keyring.clone(), &self.config.cluster, role),
            ),
            None => crate::MessageCodec::new(max_frame_length),
        }
    }

    /// Counts an error; a frame that did not open is counted by reason.
    fn record_failure(&self, error: &SyncError) {
        match error {
            SyncError::Codec(crate::CodecError::Rejected(r)) => self.rejections.record(r),
            SyncError::Rejected(_) => self.record_rejection(),
            _ => self.record_error(),
        }
    }

    /// Locks the engine. A panic while it was held cannot leave it
    /// half-updated in a way later calls would trip on (engine calls either
    /// complete or change nothing), so a poisoned lock is taken over.
    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The transport's counters. Never held while the engine is locked
    /// (the reverse is fine).
    fn transport(&self) -> MutexGuard<'_, TransportStats> {
        self.transport.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record_error(&self) {
        self.transport().errors += 1;
    }

    /// Counts `n` bytes sent for `replica`'s frames.
    fn record_sent(&self, replica: &str, n: u64) {
        self.record_bytes(replica, |b| b.sent += n);
    }

    /// Counts `n` bytes received for `replica`'s frames (call only for a
    /// registered replica: untrusted names must not grow the map).
    fn record_received(&self, replica: &str, n: u64) {
        self.record_bytes(replica, |b| b.received += n);
    }

    fn record_bytes(&self, replica: &str, count: impl FnOnce(&mut ReplicaBytes)) {
        let mut stats = self.transport();
        match stats.replicas.get_mut(replica) {
            Some(bytes) => count(bytes),
            None => {
                let mut bytes = ReplicaBytes {
                    sent: 0,
                    received: 0,
                };
                count(&mut bytes);
                stats.replicas.insert(replica.to_owned(), bytes);
            }
        }
    }

    /// Records the outcome of a handshake with `peer` and tells subscribers
    /// when it changes.
    fn peer_verified(&self, peer: &NodeId, ok: bool) {
        let changed = {
            let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            verified.insert(peer.clone(), ok) != Some(ok)
        };
        if changed {
            let event = if ok {
                Event::PeerVerified(peer.clone())
            } else {
                Event::PeerFailed(peer.clone())
            };
            let _ = self.events.send(event);
        }
    }

    /// Publishes what the engine's start-up has reached.
    fn publish_startup(&self, engine: &Engine) {
        let state = (engine.ready(), engine.caught_up());
        self.startup.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
    }

    fn record_rejection(&self) {
        self.transport().rejections += 1;
    }
}

/// Registers replicas, then starts a [`Node`].
pub struct NodeBuilder {
    config: NodeConfig,
    engine: Engine,
    storage: Option<(Arc<dyn Storage>, Stored)>,
    actor: Option<ActorId>,
    restored: bool,
}

impl NodeBuilder {
    /// Registers `replica` under `name`, in memory only (see
    /// [`Engine::register`]): not persisted, so a restart must give it a
    /// fresh actor (never reuse an `ActorId` whose dots may exist).
    ///
    /// # Errors
    /// [`SyncError::DuplicateReplica`] if the name is taken.
    pub fn replica<T>(mut self, name: &str, replica: T) -> Result<Self, SyncError>
    where
        T: Rows + Send + 'static,
        T::Delta: Serialize + DeserializeOwned,
        T::Key: Ord + Clone + Serialize + DeserializeOwned + Send + 'static,
    {
        self.engine.register(name, replica)?;
        Ok(self)
    }

    /// Persists every durable replica in `storage` and loads what it holds.
    /// The node's actor comes from it: the one it stored (if it was stored
    /// by a node of this name: a store copied to another node gets a fresh
    /// actor), verified with the peers at start (see [`Engine`]); or, for a
    /// new or lost store, a fresh random one, written with the first commit.
    ///
    /// # Errors
    /// [`SyncError::Storage`] if the store cannot be read.
    pub fn storage(mut self, storage: impl Storage) -> Result<Self, SyncError> {
        let stored = storage.load()?;
        let choice =
            ActorChoice::for_store(&stored, &self.config.node.0, storage.repaired(), || {
                ActorId(rand::random())
            });
        let (actor, restored) = match choice {
            ActorChoice::Restored(actor) => (actor, true),
            ActorChoice::Fresh(actor, why) => {
                match why {
                    FreshBecause::NoIdentity => {}
                    FreshBecause::Repaired => tracing::warn!(
                        store = %storage.location(),
                        "the store was repaired at open (its last commits may be lost): taking a fresh actor"
                    ),
                    FreshBecause::OtherNode => tracing::warn!(
                        store = %storage.location(), node = %self.config.node,
                        "the store was written by another node: taking a fresh actor"
                    ),
                }
                self.engine.persist_identity(Identity {
                    node: self.config.node.0.clone(),
                    actor,
                });
                (actor, false)
            }
        };
        self.actor = Some(actor);
        self.restored = restored;
        self.storage = Some((Arc::new(storage), stored));
        Ok(self)
    }

    /// The actor this node's durable replicas mint dots for (after
    /// [`storage`](Self::storage)).
    pub fn actor(&self) -> Option<ActorId> {
        self.actor
    }

    /// Registers a durable replica under `name`: `make` builds it empty for
    /// the node's actor, and it is restored from what the store holds for
    /// `name`. Every change is committed to the store (see the module docs
    /// for the durability point).
    ///
    /// # Errors
    /// [`SyncError::Protocol`] if no storage is configured;
    /// [`SyncError::DuplicateReplica`]; [`SyncError::Restore`] if the stored
    /// state cannot be used.
    pub fn durable<T>(
        mut self,
        name: &str,
        make: impl FnOnce(ActorId) -> T,
    ) -> Result<Self, SyncError>
    where
        T: Rows + Send + 'static,
        T::Delta: Serialize + DeserializeOwned,
        T::Key: Ord + Clone + Serialize + DeserializeOwned + Send + 'static,
    {
        let (Some((_, stored)), Some(actor)) = (&self.storage, self.actor) else {
            return Err(SyncError::Protocol(format!(
                "replica {name:?} is durable but the node has no storage"
            )));
        };
        let replica = make(actor);
        self.engine
            .register_durable(name, replica, stored.replicas.get(name))?;
        Ok(self)
    }

    /// Binds the listener and starts the node's tasks. Must be called within
    /// a tokio runtime.
    ///
    /// # Errors
    /// [`SyncError::Bind`] if the listener cannot be bound.
    pub async fn start(mut self, peers: Arc<dyn PeerSource>) -> Result<Node, SyncError> {
        let listener = TcpListener::bind(self.config.listen)
            .await
            .map_err(|source| SyncError::Bind {
                addr: self.config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| SyncError::Bind {
            addr: self.config.listen,
            source,
        })?;
        if let (true, Some(actor)) = (self.restored, self.actor) {
            self.engine.verify_restored_actor(actor);
        }
        let (events, _) = tokio::sync::broadcast::channel(256);
        let shutdown = CancellationToken::new();
        let storage = self.storage.map(|(s, _)| s);
        let startup = (self.engine.ready(), self.engine.caught_up());
        let shared = Arc::new(Shared {
            config: self.config,
            engine: Mutex::new(self.engine),
            transport: Mutex::new(TransportStats::default()),
            wake: Notify::new(),
            persist: Notify::new(),
            durable_changed: Notify::new(),
            storage: storage.clone(),
            committed: watch::Sender::new(Committed::default()),
            startup: watch::Sender::new(startup),
            verified: Mutex::new(std::collections::BTreeMap::new()),
            peers,
            events,
            watchers: Mutex::new(watchers::Watchers::default()),
            shutdown: shutdown.clone(),
            rejections: seal::Rejections::default(),
        });
        let tasks = TaskTracker::new();
        tasks.spawn(driver::run(shared.clone(), tasks.clone()));
        tasks.spawn(inbound::accept(shared.clone(), listener, tasks.clone()));
        if let Some(storage) = storage {
            tasks.spawn(persist::run(shared.clone(), storage));
        }
        tracing::info!(node = %shared.config.node, %local_addr, "sync node started");
        Ok(Node {
            shared,
            local_addr,
            tasks,
        })
    }
}

/// A running sync node: a handle to write and read its replicas and to watch
/// what changes. Dropping it does not stop the node; call
/// [`shutdown`](Node::shutdown).
pub struct Node {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: TaskTracker,
}

impl Node {
    /// A builder for a node with `config`.
    pub fn builder(config: NodeConfig) -> NodeBuilder {
        let seed = config.seed.unwrap_or_else(rand::random);
        let engine = Engine::new(
            config.node.clone(),
            config.engine.clone(),
            seed,
            std::time::Instant::now(),
        );
        NodeBuilder {
            config,
            engine,
            storage: None,
            actor: None,
            restored: false,
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's id.
    pub fn id(&self) -> &NodeId {
        &self.shared.config.node
    }

    /// Changes replica `name` locally (see [`Engine::write`]); peers are
    /// notified right after (for a durable replica, once the write is
    /// durable: await [`flush`](Self::flush) before acknowledging it).
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`];
    /// [`SyncError::NotReady`] while a restored actor is being verified
    /// (await [`ready`](Self::ready) first).
    pub fn write<T: Rows + 'static, R>(
        &self,
        name: &str,
        write: impl FnOnce(&mut T) -> R,
    ) -> Result<R, SyncError> {
        let out = self.shared.engine().write(name, write)?;
        self.shared.wake.notify_one();
        self.shared.persist.notify_one();
        Ok(out)
    }

    /// Returns once every write made before the call is durable (at once
    /// without a store).
    ///
    /// # Errors
    /// [`SyncError::Storage`] if the commit that held them failed (they stay
    /// applied in memory and are retried with the next commit: call again);
    /// [`SyncError::Stopped`] if the node stopped first.
    pub async fn flush(&self) -> Result<(), SyncError> {
        if self.shared.storage.is_none() {
            return Ok(());
        }
        let target = self.shared.engine().write_seq();
        let mut committed = self.shared.committed.subscribe();
        self.shared.persist.notify_one();
        let seen = committed.borrow_and_update().seq;
        if seen >= target {
            return Ok(());
        }
        loop {
            tokio::select! {
                () = self.shared.shutdown.cancelled() => return Err(SyncError::Stopped),
                changed = committed.changed() => {
                    if changed.is_err() {
                        return Err(SyncError::Stopped);
                    }
                }
            }
            let state = committed.borrow_and_update().clone();
            if state.seq >= target {
                return Ok(());
            }
            if let Some((covered, error)) = state.failed
                && covered >= target
            {
                return Err(SyncError::CommitFailed(error));
            }
        }
    }

    /// Returns once the node may write: at once, unless its actor was
    /// restored from the store and is being verified with the peers (at
    /// most the engine's `startup_timeout`).
    pub async fn ready(&self) {
        let mut startup = self.shared.startup.subscribe();
        let _ = startup.wait_for(|(ready, _)| *ready).await;
    }

    /// Returns once the start-up exchange with the peers is over (see
    /// [`Event::CaughtUp`]): what this node holds is then as recent as what
    /// they held when it started (or it is alone, or it stopped waiting).
    pub async fn caught_up(&self) {
        let mut startup = self.shared.startup.subscribe();
        let _ = startup.wait_for(|(_, caught_up)| *caught_up).await;
    }

    /// Says hello to whatever listens on `addr` (a sync listener of this
    /// cluster, with this node's key and versions) and returns the node id
    /// it answers with; the connection is closed at once. For telling a
    /// live node from a stale record of one.
    ///
    /// # Errors
    /// [`SyncError`] if nothing answers the handshake (unreachable, refused,
    /// another cluster, a timeout).
    pub async fn probe(&self, addr: SocketAddr) -> Result<NodeId, SyncError> {
        let (_, node) = outbound::handshake(&self.shared, addr).await?;
        Ok(node)
    }

    /// Whether the start-up exchange is over (see [`caught_up`](Self::caught_up)).
    pub fn is_caught_up(&self) -> bool {
        self.shared.startup.borrow().1
    }

    /// The peers whose last handshake succeeded: reachable, of this cluster,
    /// of a compatible version, and holding the cluster key if there is one.
    pub fn verified_peers(&self) -> BTreeSet<NodeId> {
        self.shared
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, ok)| **ok)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Reads replica `name`. `read` runs under the engine lock: keep it short.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn read<T: Rows + 'static, R>(
        &self,
        name: &str,
        read: impl FnOnce(&T) -> R,
    ) -> Result<R, SyncError> {
        let engine = self.shared.engine();
        engine.replica::<T>(name).map(read)
    }

    /// Takes the keys of replica `name` whose visible value changed through
    /// sync since the last call (see [`Engine::take_changes`]).
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn take_changes<T: Rows + 'static>(&self, name: &str) -> Result<Vec<T::Key>, SyncError> {
        self.shared.engine().take_changes::<T>(name)
    }

    /// Runs `f` with the engine locked: for reading a consistent cut of
    /// several things at once (e.g. the keys a join touched, their state and
    /// the replica's context, for a store). Keep it short.
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        f(&mut self.shared.engine())
    }

    /// A new subscription to the keys of replica `name` that joins and
    /// local writes change (see [`Watch`]); any number may be open, each
    /// bounded. Changes before the call are not reported: read the replica
    /// after subscribing.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn watch<T>(&self, name: &str) -> Result<Watch<T::Key>, SyncError>
    where
        T: Rows + 'static,
        T::Key: Clone + Send + Sync + 'static,
    {
        let mut engine = self.shared.engine();
        let mut watchers = self
            .shared
            .watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        watchers.subscribe::<T>(&mut engine, name)
    }

    /// A stream of [`Event`]s (a replica changed through sync).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Frames refused because they did not open with the cluster key, by
    /// reason (all zero without a keyring).
    pub fn rejections(&self) -> seal::RejectionCounts {
        self.shared.rejections.snapshot()
    }

    /// A snapshot of the counters: the engine's ([`Engine::stats`]) and the
    /// transport's (rejections, bytes, connection errors) added together.
    pub fn metrics(&self) -> Metrics {
        let engine = self.shared.engine().stats();
        self.shared.transport().add_to(engine)
    }

    /// Stops every task of the node and waits for them: the listener closes,
    /// sessions and connections are dropped, and (with a store) a last
    /// commit writes what is pending. Calling it again does nothing.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        tracing::info!(node = %self.shared.config.node, "sync node stopped");
    }
}
