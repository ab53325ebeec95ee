//! [`Agent`]: one health-check agent, wired from the library crates.
//!
//! * a `sync::Node` replicating two maps: `origins` (the registry) and
//!   `health` (the results);
//! * a `membership::Membership` (SWIM) whose live members are the sync
//!   node's peers and the ownership's live view;
//! * a [`Store`] persisting the registry and the start generation;
//! * the check loop (`checks`), the only owner of the schedule, the
//!   ownership state and the rise/fall streaks;
//! * the persister (`persist`), committing the registry in groups;
//! * the HTTP API ([`crate::api`]).

mod checks;
mod persist;

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock, atomic::AtomicU64},
    time::Instant,
};

use crdt::{ActorId, DeltaCrdt};
use membership::{MemberInfo, Membership, MembershipConfig, MembershipPeers};
use sync::{Node, NodeConfig, Peer, PeerSource};
use tokio::sync::{Mutex, Notify, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use persist::PersistError;

use crate::{
    checker::{Checker, CheckerConfig},
    config::AgentConfig,
    record::HealthRecord,
    registry::{HEALTH, HealthMap, ORIGINS, Registered, Registry, now_ms},
    spec::OriginSpec,
    store::{Store, StoreError},
};

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data dir's store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listener could not be bound, or another socket error.
    #[error("{what}: {source}")]
    Io {
        /// Which listener.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The sync node could not start.
    #[error("sync: {0}")]
    Sync(#[from] sync::SyncError),
    /// The membership could not start.
    #[error("membership: {0}")]
    Membership(#[from] membership::MembershipError),
    /// The cluster key file could not be used.
    #[error("cluster key: {0}")]
    Keys(#[from] crate::keys::KeyFileError),
    /// The HTTP client for checks could not be built.
    #[error("checker: {0}")]
    Checker(String),
}

/// Counters of the agent's checks (monotonic, except the gauges).
#[derive(Debug, Default)]
pub struct Stats {
    /// Checks that succeeded.
    pub checks_ok: AtomicU64,
    /// Checks that failed.
    pub checks_failed: AtomicU64,
    /// Origins this agent currently checks (gauge).
    pub owned: AtomicU64,
    /// Origins this agent took over from a silent higher-ranked agent (total).
    pub takeovers: AtomicU64,
    /// Health records written.
    pub records_written: AtomicU64,
}

/// A peer source that the membership fills in once it has started (the sync
/// node must start first: its address is part of the SWIM identity).
#[derive(Default)]
struct LatePeers(RwLock<Option<MembershipPeers>>);

impl PeerSource for LatePeers {
    fn members(&self) -> Vec<Peer> {
        match self.0.read() {
            Ok(guard) => guard.as_ref().map(|p| p.members()).unwrap_or_default(),
            Err(poisoned) => poisoned
                .into_inner()
                .as_ref()
                .map(|p| p.members())
                .unwrap_or_default(),
        }
    }
}

/// What the agent's tasks and the API share.
pub struct Shared {
    /// The configuration the agent started with.
    pub config: AgentConfig,
    /// The sync node holding both replicas.
    pub node: Node,
    membership: Mutex<Option<Membership>>,
    members_view: Arc<RwLock<Vec<MemberInfo>>>,
    gossip_addr: SocketAddr,
    /// This agent's SWIM identity bump (its start time in ms).
    bump: u64,
    /// Check counters.
    pub stats: Stats,
    /// This start's actor id (both maps).
    pub actor: ActorId,
    /// This start's generation.
    pub generation: u64,
    /// When the agent started.
    pub started: Instant,
    /// Woken when the registry changes locally (the check loop re-reads it).
    pub registry_changed: Notify,
    /// Ids changed locally since the check loop last looked.
    pub(crate) registry_dirty: std::sync::Mutex<Vec<String>>,
    /// The API's cached origins list.
    pub list: crate::api::ListSlot,
    persist: mpsc::Sender<persist::Request>,
    shutdown: CancellationToken,
    /// The cluster keys, if a key file is configured.
    pub keyring: Option<seal::Keyring>,
    /// SWIM datagrams refused by the cluster key.
    pub swim_rejections: Arc<seal::Rejections>,
}

impl Shared {
    /// Re-reads the key file and makes the keyring match it (see
    /// [`crate::keys`]). Returns the primary key's id and the ids removed.
    ///
    /// # Errors
    /// The file is unreadable or invalid (the keyring is unchanged), or no
    /// key file is configured.
    pub fn reload_keys(
        &self,
    ) -> Result<(seal::KeyId, Vec<seal::KeyId>), crate::keys::KeyFileError> {
        let (Some(path), Some(keyring)) = (&self.config.key_file, &self.keyring) else {
            return Err(crate::keys::KeyFileError::NotConfigured);
        };
        let file = crate::keys::KeyFile::read(path)?;
        Ok(file.apply(keyring))
    }

    /// The agent's name.
    pub fn me(&self) -> &str {
        &self.config.node
    }

    /// Registers or replaces origin `id` and persists the registry before
    /// returning. Returns whether it was new.
    ///
    /// # Errors
    /// [`PersistError`] if the registry could not be persisted (the change
    /// is applied in memory and replicated anyway; it will be persisted with
    /// the next successful commit).
    pub async fn put_origin(&self, id: &str, spec: OriginSpec) -> Result<bool, PersistError> {
        let entry = Registered {
            spec,
            updated_at_ms: now_ms(),
        };
        let created = self
            .node
            .write::<Registry, _>(ORIGINS, |m| {
                let created = !m.contains_key(&id.to_owned());
                m.insert(id.to_owned(), entry);
                created
            })
            .map_err(|e| PersistError::Internal(e.to_string()))?;
        self.local_registry_change(id);
        self.persist_now(id).await?;
        Ok(created)
    }

    /// Removes origin `id` and persists; `false` if it was not registered.
    ///
    /// # Errors
    /// [`PersistError`], as for [`put_origin`](Self::put_origin).
    pub async fn delete_origin(&self, id: &str) -> Result<bool, PersistError> {
        let removed = self
            .node
            .write::<Registry, _>(ORIGINS, |m| m.remove(&id.to_owned()).is_some())
            .map_err(|e| PersistError::Internal(e.to_string()))?;
        if removed {
            self.local_registry_change(id);
            self.persist_now(id).await?;
        }
        Ok(removed)
    }

    fn local_registry_change(&self, id: &str) {
        self.list
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.registry_dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id.to_owned());
        self.registry_changed.notify_one();
    }

    /// The registered origins, ascending by id.
    pub fn origins(&self) -> Vec<(String, OriginSpec)> {
        self.node
            .read::<Registry, _>(ORIGINS, |m| {
                m.iter().map(|(k, v)| (k.clone(), v.spec.clone())).collect()
            })
            .unwrap_or_default()
    }

    /// One registered origin.
    pub fn origin(&self, id: &str) -> Option<OriginSpec> {
        self.node
            .read::<Registry, _>(ORIGINS, |m| m.get(&id.to_owned()).map(|r| r.spec.clone()))
            .ok()
            .flatten()
    }

    /// The visible health record of an origin.
    pub fn health(&self, id: &str) -> Option<HealthRecord> {
        self.node
            .read::<HealthMap, _>(HEALTH, |m| m.get(&id.to_owned()).cloned())
            .ok()
            .flatten()
    }

    /// Every visible health record.
    pub fn all_health(&self) -> std::collections::BTreeMap<String, HealthRecord> {
        self.node
            .read::<HealthMap, _>(HEALTH, |m| {
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            })
            .unwrap_or_default()
    }

    /// Every member known to SWIM (down ones included), this agent first.
    pub fn members(&self) -> Vec<MemberInfo> {
        let mut out = vec![MemberInfo {
            id: self.config.node.clone(),
            gossip_addr: self.gossip_addr,
            sync_addr: self
                .config
                .sync_advertise
                .unwrap_or_else(|| self.node.local_addr()),
            state: membership::MemberState::Alive,
            bump: self.bump,
        }];
        match self.members_view.read() {
            Ok(v) => out.extend(v.iter().cloned()),
            Err(p) => out.extend(p.into_inner().iter().cloned()),
        }
        out
    }

    /// Persists the row of `key` (and whatever sync touched meanwhile),
    /// returning when it is durable.
    async fn persist_now(&self, key: &str) -> Result<(), PersistError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.persist
            .send(persist::Request {
                key: Some(key.to_owned()),
                done: Some(done),
            })
            .await
            .map_err(|_| PersistError::Stopped)?;
        wait.await.map_err(|_| PersistError::Stopped)?
    }

    /// Asks for the keys sync touched to be persisted soon.
    fn persist_later(&self) {
        let _ = self.persist.try_send(persist::Request {
            key: None,
            done: None,
        });
    }
}

/// A running agent.
pub struct Agent {
    shared: Arc<Shared>,
    api_addr: SocketAddr,
    tasks: TaskTracker,
}

impl Agent {
    /// Opens the store, starts sync, membership, the check loop and the API.
    ///
    /// # Errors
    /// [`StartError`] naming what failed; nothing is left running.
    pub async fn start(config: AgentConfig) -> Result<Agent, StartError> {
        let keyring = match &config.key_file {
            Some(path) => Some(crate::keys::KeyFile::read(path)?.keyring()),
            None => None,
        };
        let store = Store::open(&config.data_dir)?;
        let generation = store.next_generation()?;
        // A fresh random actor per start: it cannot repeat, whatever
        // happens to the data dir (a generation kept only in the data dir
        // repeated after the dir was lost, and reused dots).
        let actor = ActorId(rand::random());
        let mut registry = Registry::new(actor);
        if let Some(state) = store.load_registry()? {
            registry.join_delta(state);
        }
        for (id, spec) in &config.origins {
            let current = registry.get(id).map(|r| &r.spec);
            if current != Some(spec) {
                registry.insert(
                    id.clone(),
                    Registered {
                        spec: spec.clone(),
                        updated_at_ms: now_ms(),
                    },
                );
            }
        }
        // Rewrite the registry whole once per start: config origins in, rows
        // of tombstones purged since they were written out.
        store.replace_registry(&registry)?;
        let health = HealthMap::new(actor);

        let peers = Arc::new(LatePeers::default());
        let mut sync_config = NodeConfig::new(
            config.node.clone(),
            config.cluster.clone(),
            config.sync_listen,
        );
        sync_config.engine.pull_interval = config.pull_interval;
        sync_config.keyring = keyring.clone();
        let node = Node::builder(sync_config)
            .replica(ORIGINS, registry)?
            .replica(HEALTH, health)?
            .start(peers.clone())
            .await?;

        let mut m_config = MembershipConfig::new(
            config.node.clone(),
            config.gossip_listen,
            config.sync_advertise.unwrap_or_else(|| node.local_addr()),
        );
        m_config.gossip_advertise = config.gossip_advertise;
        m_config.seeds = config.seeds.clone();
        m_config.preset = config.preset;
        m_config.keyring = keyring.clone();
        m_config.cluster = config.cluster.clone();
        let membership = match Membership::start(m_config).await {
            Ok(m) => m,
            Err(e) => {
                node.shutdown().await;
                return Err(e.into());
            }
        };
        let gossip_addr = config
            .gossip_advertise
            .unwrap_or_else(|| membership.local_addr());
        let bump = membership.identity().map_or(0, |id| id.bump);
        match peers.0.write() {
            Ok(mut g) => *g = Some(membership.peers()),
            Err(p) => *p.into_inner() = Some(membership.peers()),
        }
        let checker = Checker::new(CheckerConfig {
            max_concurrency: config.max_concurrent_checks,
            user_agent: format!(
                "vantage-healthcheck/{} ({})",
                env!("CARGO_PKG_VERSION"),
                config.node
            ),
        })
        .map_err(|e| StartError::Checker(e.to_string()))?;

        let api_listener = tokio::net::TcpListener::bind(config.api_listen)
            .await
            .map_err(|source| StartError::Io {
                what: "api listener",
                source,
            })?;
        let api_addr = api_listener.local_addr().map_err(|source| StartError::Io {
            what: "api listener",
            source,
        })?;

        let (persist_tx, persist_rx) = mpsc::channel(1024);
        let membership_events = membership.subscribe();
        let swim_rejections = membership.rejection_counters();
        let members_view = Arc::new(RwLock::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            node,
            membership: Mutex::new(Some(membership)),
            members_view,
            gossip_addr,
            bump,
            stats: Stats::default(),
            actor,
            generation,
            started: Instant::now(),
            registry_changed: Notify::new(),
            registry_dirty: std::sync::Mutex::new(Vec::new()),
            list: crate::api::ListSlot::default(),
            persist: persist_tx,
            shutdown: shutdown.clone(),
            keyring,
            swim_rejections,
            config,
        });
        let tasks = TaskTracker::new();
        tasks.spawn(persist::run(shared.clone(), store, persist_rx));
        tasks.spawn(checks::run(shared.clone(), checker, membership_events));
        tasks.spawn(crate::api::serve(shared.clone(), api_listener, shutdown));
        tracing::info!(
            node = %shared.config.node, %api_addr, gossip = %gossip_addr,
            sync = %shared.node.local_addr(), generation, "agent started"
        );
        Ok(Agent {
            shared,
            api_addr,
            tasks,
        })
    }

    /// The HTTP API's address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The SWIM (UDP) address.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.shared.gossip_addr
    }

    /// The sync (TCP) address.
    pub fn sync_addr(&self) -> SocketAddr {
        self.shared.node.local_addr()
    }

    /// The agent's name.
    pub fn node(&self) -> &str {
        self.shared.me()
    }

    /// What the tasks share (for the API, the demo and tests).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops gracefully: leaves the SWIM cluster (others learn at once),
    /// finishes persisting, stops every task.
    pub async fn shutdown(self) {
        self.stop(true).await;
    }

    /// Stops abruptly, as a crash would: no goodbye (others detect the
    /// failure), but the store is closed cleanly.
    pub async fn kill(self) {
        self.stop(false).await;
    }

    async fn stop(self, graceful: bool) {
        if let Some(m) = self.shared.membership.lock().await.take() {
            if graceful {
                m.leave().await;
            } else {
                m.shutdown().await;
            }
        }
        self.shared.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.shared.node.shutdown().await;
        tracing::info!(node = %self.shared.config.node, graceful, "agent stopped");
    }
}
