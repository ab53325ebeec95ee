//! [`Node`]: the tokio transport around an [`Engine`].
//!
//! Thin by design: one driver task feeds the engine its timers and drains the
//! requests it wants sent; one task per inbound session answers requests; one
//! task per peer keeps a persistent outbound connection. The engine sits
//! behind a mutex that is held only around synchronous engine calls, never
//! across an `.await`.

mod driver;
mod inbound;
mod outbound;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use crdt::DeltaCrdt;
use serde::{Serialize, de::DeserializeOwned};
use tokio::{net::TcpListener, sync::Notify};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    DEFAULT_MAX_FRAME_LENGTH, Engine, EngineConfig, Event, Metrics, NodeId, PeerSource, SyncError,
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
        }
    }
}

/// What every task of a node shares.
struct Shared {
    config: NodeConfig,
    engine: Mutex<Engine>,
    /// Wakes the driver: the engine may have something to send.
    wake: Notify,
    peers: Arc<dyn PeerSource>,
    events: tokio::sync::broadcast::Sender<Event>,
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

    fn record_error(&self) {
        self.engine().metrics_mut().errors += 1;
    }

    fn record_rejection(&self) {
        self.engine().metrics_mut().rejections += 1;
    }
}

/// Registers replicas, then starts a [`Node`].
pub struct NodeBuilder {
    config: NodeConfig,
    engine: Engine,
}

impl NodeBuilder {
    /// Registers `replica` under `name` (see [`Engine::register`]).
    ///
    /// # Errors
    /// [`SyncError::DuplicateReplica`] if the name is taken.
    pub fn replica<T>(mut self, name: &str, replica: T) -> Result<Self, SyncError>
    where
        T: DeltaCrdt + Send + 'static,
        T::Delta: Serialize + DeserializeOwned,
        T::Key: Ord + Send + 'static,
    {
        self.engine.register(name, replica)?;
        Ok(self)
    }

    /// Binds the listener and starts the node's tasks. Must be called within
    /// a tokio runtime.
    ///
    /// # Errors
    /// [`SyncError::Io`] if the listener cannot be bound.
    pub async fn start(self, peers: Arc<dyn PeerSource>) -> Result<Node, SyncError> {
        let listener = TcpListener::bind(self.config.listen).await?;
        let local_addr = listener.local_addr()?;
        let (events, _) = tokio::sync::broadcast::channel(256);
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            config: self.config,
            engine: Mutex::new(self.engine),
            wake: Notify::new(),
            peers,
            events,
            shutdown: shutdown.clone(),
            rejections: seal::Rejections::default(),
        });
        let tasks = TaskTracker::new();
        tasks.spawn(driver::run(shared.clone(), tasks.clone()));
        tasks.spawn(inbound::accept(shared.clone(), listener, tasks.clone()));
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
        NodeBuilder { config, engine }
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
    /// notified right after.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn write<T: DeltaCrdt + 'static, R>(
        &self,
        name: &str,
        write: impl FnOnce(&mut T) -> R,
    ) -> Result<R, SyncError> {
        let out = self.shared.engine().write(name, write)?;
        self.shared.wake.notify_one();
        Ok(out)
    }

    /// Reads replica `name`. `read` runs under the engine lock: keep it short.
    ///
    /// # Errors
    /// [`SyncError::UnknownReplica`] or [`SyncError::WrongType`].
    pub fn read<T: DeltaCrdt + 'static, R>(
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
    pub fn take_changes<T: DeltaCrdt + 'static>(
        &self,
        name: &str,
    ) -> Result<Vec<T::Key>, SyncError> {
        self.shared.engine().take_changes::<T>(name)
    }

    /// Runs `f` with the engine locked: for reading a consistent cut of
    /// several things at once (e.g. the keys a join touched, their state and
    /// the replica's context, for a store). Keep it short.
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        f(&mut self.shared.engine())
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

    /// A snapshot of the counters.
    pub fn metrics(&self) -> Metrics {
        self.shared.engine().metrics().clone()
    }

    /// Stops every task of the node and waits for them: the listener closes,
    /// sessions and connections are dropped. Calling it again does nothing.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        tracing::info!(node = %self.shared.config.node, "sync node stopped");
    }
}
