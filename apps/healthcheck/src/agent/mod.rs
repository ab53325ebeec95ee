//! [`Agent`]: one health-check agent, wired from the library crates.
//!
//! * a `sync::Node` replicating two maps: `origins` (the registry) and
//!   `health` (the results);
//! * a `membership::Membership` (SWIM) whose live members are the sync
//!   node's peers and the ownership's live view;
//! * its store ([`crate::store`]): both maps and the node's identity,
//!   committed by the sync node in groups; a write to the registry is
//!   acknowledged once durable;
//! * the check loop (`checks`), the only owner of the schedule, the
//!   ownership state and the rise/fall streaks; it writes no health record
//!   before the node has caught up with its peers after starting;
//! * the HTTP API ([`crate::api`]).
//!
//! At start, before checking anything, an agent looks for another live
//! agent with its own name (SWIM shows it at another address): if that one
//! answers a sync handshake under the name, this agent refuses to start
//! ([`StartError::DuplicateName`]), and the running one keeps its origins.

mod checks;

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock, atomic::AtomicU64},
    time::Instant,
};

use crdt::ActorId;
use membership::{MemberInfo, Membership, MembershipConfig, MembershipPeers};
use sync::{Node, NodeConfig, Peer, PeerSource, SyncError};
use tokio::sync::{Mutex, Notify};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    checker::{Checker, CheckerConfig},
    config::AgentConfig,
    record::HealthRecord,
    registry::{HEALTH, HealthMap, ORIGINS, Registered, Registry, now_ms},
    spec::OriginSpec,
    store::StoreError,
};

/// Why a registry change could not be acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The change is applied in memory (and replicated once durable) but
    /// its commit failed; it is retried with the next one.
    #[error("persisting the registry")]
    Store(#[source] SyncError),
    /// The agent is verifying its identity with its peers after a restart;
    /// nothing changed. Retry in a moment.
    #[error("not ready: this agent is verifying its identity with its peers; retry shortly")]
    NotReady,
    /// The agent is shutting down.
    #[error("the agent is stopping")]
    Stopped,
    /// A replica missing or of another type: a bug.
    #[error("internal")]
    Internal(#[source] SyncError),
}

impl From<SyncError> for PersistError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::NotReady => PersistError::NotReady,
            SyncError::Stopped => PersistError::Stopped,
            SyncError::CommitFailed(_) | SyncError::Storage(_) => PersistError::Store(e),
            other => PersistError::Internal(other),
        }
    }
}

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
    #[error("sync")]
    Sync(#[from] sync::SyncError),
    /// The membership could not start.
    #[error("membership")]
    Membership(#[from] membership::MembershipError),
    /// The cluster key file could not be used.
    #[error("cluster key")]
    Keys(#[from] crate::keys::KeyFileError),
    /// The API token file could not be used.
    #[error("api tokens")]
    Tokens(#[from] crate::tokens::TokenFileError),
    /// The API's certificate or key could not be used.
    #[error("api tls")]
    Tls(#[from] crate::api_tls::TlsError),
    /// A listener binds a non-loopback address but a token file or a cluster
    /// key is missing, and the config does not say `insecure = true`.
    #[error(
        "refusing to start: {}; configure them, bind the listeners to loopback, or set insecure = true to accept this",
        .0.join("; ")
    )]
    Insecure(Vec<String>),
    /// Another agent with this agent's name is alive (it answered a sync
    /// handshake under it): names are unique in a cluster. It keeps
    /// running; this one stops.
    #[error(
        "another agent named {name:?} is alive at {theirs} (gossip; sync {their_sync}): this agent \
         (gossip {ours}) refuses to start; give it another name, or stop the other one"
    )]
    DuplicateName {
        /// The name.
        name: String,
        /// This agent's gossip address.
        ours: SocketAddr,
        /// The other agent's gossip address.
        theirs: SocketAddr,
        /// The other agent's sync address.
        their_sync: SocketAddr,
    },
    /// The HTTP client for checks could not be built.
    #[error("checker: {0}")]
    Checker(String),
    /// The descriptor limit cannot hold the connections the config asks
    /// for.
    #[error(transparent)]
    Descriptors(#[from] crate::descriptors::BudgetError),
    /// The config breaks a rule (a config built in code; a file is
    /// checked as it is read).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The `[checks]` allow or deny lists cannot be used.
    #[error("checks")]
    Targets(#[from] crate::targets::TargetsError),
}

/// Refuses a config whose `[[origins]]` include a literal address that
/// this agent's `[checks]` policy denies (judged against the configured
/// listen addresses; an OS-chosen port is judged once bound, at check
/// time). Names are judged at check time.
fn refuse_denied_origins(config: &AgentConfig) -> Result<(), StartError> {
    let own: Vec<(&'static str, SocketAddr)> = [
        ("listen.api", config.api_listen),
        ("listen.sync", config.sync_listen),
        ("listen.gossip", config.gossip_listen),
    ]
    .into_iter()
    .filter(|(_, a)| a.port() != 0)
    .collect();
    let policy = crate::targets::TargetPolicy::new(&config.checks, &own)?;
    for (i, (id, spec)) in config.origins.iter().enumerate() {
        if let Some(Err(denied)) = policy.check_literal(&spec.address) {
            return Err(StartError::Config(crate::config::ConfigError {
                source_name: "config".into(),
                message: format!("origins[{i}] ({id}).address: {denied}"),
            }));
        }
    }
    Ok(())
}

/// Descriptors kept for sync connections to peers (dialled; those accepted
/// are bounded by sync's `max_inbound_sessions`) and SWIM.
pub const CLUSTER_OUTBOUND_RESERVE: u64 = 160;

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
    pub(crate) membership: Mutex<Option<Membership>>,
    members_view: Arc<RwLock<Vec<MemberInfo>>>,
    pub(crate) gossip_addr: SocketAddr,
    /// This agent's SWIM identity bump (its start time in ms).
    pub(crate) bump: u64,
    /// Check counters.
    pub stats: Stats,
    /// Origins migrated from the first release's store at this start.
    pub migrated: usize,
    /// When the agent started.
    pub started: Instant,
    /// Woken when the registry changes locally (the check loop re-reads it).
    pub registry_changed: Notify,
    /// Ids changed locally since the check loop last looked.
    pub(crate) registry_dirty: std::sync::Mutex<Vec<String>>,
    /// The API's cached origins list.
    pub list: crate::api::ListSlot,
    shutdown: CancellationToken,
    /// Set when the agent must stop on its own (see [`Agent::fatal`]).
    fatal: std::sync::Mutex<Option<String>>,
    fatal_signal: CancellationToken,
    /// The cluster keys, if a key file is configured.
    pub keyring: Option<seal::Keyring>,
    /// The API tokens, if a token file is configured (replaced on reload).
    pub tokens: RwLock<Option<crate::tokens::TokenFile>>,
    /// The API's TLS, if configured.
    pub api_tls: Option<crate::api_tls::ApiTls>,
    /// The API's connection limits (its cap from the descriptor budget).
    pub api_limits: crate::api_server::ApiLimits,
    /// The API server's connection counters, once it runs.
    pub api_connections: std::sync::OnceLock<crate::api_server::ServerStats>,
    /// How the descriptor limit is shared.
    pub descriptors: crate::descriptors::Budget,
    /// Where checks may go (what the checker and `PUT` judge).
    pub targets: Arc<crate::targets::TargetPolicy>,
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

    /// Re-reads the token file and replaces the tokens in force; returns
    /// how many it holds.
    ///
    /// # Errors
    /// The file is unreadable or invalid (the tokens in force are kept), or
    /// no token file is configured.
    pub fn reload_tokens(&self) -> Result<usize, crate::tokens::TokenFileError> {
        let Some(path) = &self.config.token_file else {
            return Err(crate::tokens::TokenFileError::NotConfigured);
        };
        let file = crate::tokens::TokenFile::read(path)?;
        let n = file.len();
        match self.tokens.write() {
            Ok(mut t) => *t = Some(file),
            Err(p) => *p.into_inner() = Some(file),
        }
        Ok(n)
    }

    /// Re-reads the API's certificate and key; new connections get them.
    ///
    /// # Errors
    /// They are unreadable or do not fit (the ones in force are kept); or
    /// the API has no TLS (`Ok(false)`).
    pub fn reload_tls(&self) -> Result<bool, crate::api_tls::TlsError> {
        match &self.api_tls {
            Some(tls) => tls.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// The API's base URL (`https://` with TLS).
    pub fn api_url(&self, addr: SocketAddr) -> String {
        let scheme = if self.api_tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{addr}")
    }

    /// The scope `presented` grants: `Some(Write)` for any request while no
    /// token file is configured (the API is open), else the token's scope,
    /// or `None` for no or an unknown token.
    pub fn scope_of(&self, presented: Option<&str>) -> Option<crate::tokens::Scope> {
        let read = |t: &Option<crate::tokens::TokenFile>| match t {
            None => Some(crate::tokens::Scope::Write),
            Some(file) => presented.and_then(|p| file.scope_of(p)),
        };
        match self.tokens.read() {
            Ok(t) => read(&t),
            Err(p) => read(&p.into_inner()),
        }
    }

    /// The agent's name.
    pub fn me(&self) -> &str {
        &self.config.node
    }

    /// The actor this agent's replicas mint dots for: one per data dir,
    /// kept across restarts (a fresh one only for a lost, stale or copied
    /// store).
    pub fn actor(&self) -> ActorId {
        self.node
            .read::<Registry, _>(ORIGINS, |m| m.actor())
            .unwrap_or_default()
    }

    /// Per replica, how many actors its causal context holds (see
    /// [`crate::api::NodeView::context_actors`]).
    pub fn context_actors(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let origins = self
            .node
            .read::<Registry, _>(ORIGINS, |m| m.context().actors().count())
            .unwrap_or_default();
        let health = self
            .node
            .read::<HealthMap, _>(HEALTH, |m| m.context().actors().count())
            .unwrap_or_default();
        [(ORIGINS, origins), (HEALTH, health)].into_iter().collect()
    }

    /// Registers or replaces origin `id` and returns once the change is
    /// durable. Returns whether it was new.
    ///
    /// # Errors
    /// [`PersistError`]: [`NotReady`](PersistError::NotReady) if the agent
    /// is still verifying its identity after the bound; [`Store`](PersistError::Store)
    /// if the commit failed (the change is applied in memory and retried).
    pub async fn put_origin(&self, id: &str, spec: OriginSpec) -> Result<bool, PersistError> {
        self.ready().await?;
        let entry = Registered {
            spec,
            updated_at_ms: now_ms(),
        };
        let created = self.node.write::<Registry, _>(ORIGINS, |m| {
            let created = !m.contains_key(&id.to_owned());
            m.insert(id.to_owned(), entry);
            created
        })?;
        self.local_registry_change(id);
        self.node.flush().await?;
        Ok(created)
    }

    /// Removes origin `id` and returns once that is durable; `false` if it
    /// was not registered.
    ///
    /// # Errors
    /// [`PersistError`], as for [`put_origin`](Self::put_origin).
    pub async fn delete_origin(&self, id: &str) -> Result<bool, PersistError> {
        self.ready().await?;
        let removed = self
            .node
            .write::<Registry, _>(ORIGINS, |m| m.remove(&id.to_owned()).is_some())?;
        if removed {
            self.local_registry_change(id);
            self.node.flush().await?;
        }
        Ok(removed)
    }

    /// Waits (at most the verification bound, plus a margin) for the node
    /// to accept writes.
    async fn ready(&self) -> Result<(), PersistError> {
        let bound = verify_bound(&self.config) + startup_bound(&self.config);
        tokio::time::timeout(bound, self.node.ready())
            .await
            .map_err(|_| PersistError::NotReady)
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
            id: self.config.node.clone().into(),
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

    /// Stops the agent on its own, with `why` (see [`Agent::fatal`]).
    pub(crate) fn fail(&self, why: String) {
        tracing::error!("{why}");
        *self.fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        self.fatal_signal.cancel();
    }
}

/// How long a starting agent waits for its peers' first answers before it
/// counts as caught up anyway (alone, or timed out) and publishes health
/// records.
fn startup_bound(config: &AgentConfig) -> std::time::Duration {
    (config.pull_interval * 3).max(std::time::Duration::from_millis(500))
}

/// How long an agent whose actor was restored waits for every member live
/// at its start to answer before it takes a fresh actor (unsure).
fn verify_bound(config: &AgentConfig) -> std::time::Duration {
    startup_bound(config) * 5
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
        config.validate()?;
        refuse_denied_origins(&config)?;
        let exposures = config.exposures();
        if !exposures.is_empty() {
            if !config.insecure {
                return Err(StartError::Insecure(exposures));
            }
            for what in &exposures {
                tracing::warn!("insecure = true: {what}");
            }
        }
        let keyring = match &config.key_file {
            Some(path) => Some(crate::keys::KeyFile::read(path)?.keyring()),
            None => None,
        };
        let tokens = match &config.token_file {
            Some(path) => Some(crate::tokens::TokenFile::read(path)?),
            None => None,
        };
        let api_tls = match &config.tls {
            Some(files) => Some(crate::api_tls::ApiTls::load(
                &files.cert_file,
                &files.key_file,
            )?),
            None => None,
        };
        let (storage, migrated) = crate::store::open(&config.data_dir)?;
        let peers = Arc::new(LatePeers::default());
        let limit = crate::descriptors::raise().map_err(|source| StartError::Io {
            what: "descriptor limit",
            source,
        })?;
        if let Some(before) = limit.raised_from {
            tracing::info!(
                from = before,
                to = limit.soft,
                "raised the descriptor limit"
            );
        }
        let mut sync_config = NodeConfig::new(
            config.node.clone(),
            config.cluster.clone(),
            config.sync_listen,
        );
        sync_config.engine.pull_interval = config.pull_interval;
        sync_config.engine.startup_timeout = startup_bound(&config);
        sync_config.engine.verify_timeout = verify_bound(&config);
        sync_config.keyring = keyring.clone();
        let descriptors = crate::descriptors::Budget::plan(
            limit.soft,
            sync_config.max_inbound_sessions as u64 + CLUSTER_OUTBOUND_RESERVE,
            crate::descriptors::Wanted {
                api: config.api_max_connections,
                checks_in_flight: config.max_concurrent_checks,
                checks_idle: config.max_idle_connections,
            },
        )?;
        tracing::info!(
            limit = descriptors.limit,
            reserved = descriptors.reserved,
            api = descriptors.api,
            checks_in_flight = descriptors.checks_in_flight,
            checks_idle = descriptors.checks_idle,
            "descriptor budget"
        );
        let api_limits = crate::api_server::ApiLimits {
            max_connections: descriptors.api,
            header_timeout: config.api_header_timeout,
            idle_timeout: config.api_idle_timeout,
        };
        let node = Node::builder(sync_config)
            .storage(storage)?
            .durable(ORIGINS, Registry::new)?
            .durable(HEALTH, HealthMap::new)?
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
        if let Err(e) = refuse_a_duplicate(&config, &node, &membership).await {
            membership.shutdown().await;
            node.shutdown().await;
            return Err(e);
        }
        let gossip_addr = config
            .gossip_advertise
            .unwrap_or_else(|| membership.local_addr());
        let bump = membership.identity().map_or(0, |id| id.bump);
        match peers.0.write() {
            Ok(mut g) => *g = Some(membership.peers()),
            Err(p) => *p.into_inner() = Some(membership.peers()),
        }
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

        let mut own = vec![
            ("listen.api", api_addr),
            ("listen.sync", node.local_addr()),
            ("listen.gossip", membership.local_addr()),
        ];
        own.extend(config.sync_advertise.map(|a| ("advertise.sync", a)));
        own.extend(config.gossip_advertise.map(|a| ("advertise.gossip", a)));
        let targets = Arc::new(crate::targets::TargetPolicy::new(&config.checks, &own)?);
        let checker = Checker::new(CheckerConfig {
            max_concurrency: descriptors.checks_in_flight,
            user_agent: format!(
                "vantage-healthcheck/{} ({})",
                env!("CARGO_PKG_VERSION"),
                config.node
            ),
            targets: targets.clone(),
            max_idle_connections: descriptors.checks_idle,
        })
        .map_err(|e| StartError::Checker(e.to_string()))?;

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
            migrated,
            started: Instant::now(),
            registry_changed: Notify::new(),
            registry_dirty: std::sync::Mutex::new(Vec::new()),
            list: crate::api::ListSlot::default(),
            shutdown: shutdown.clone(),
            fatal: std::sync::Mutex::new(None),
            fatal_signal: CancellationToken::new(),
            keyring,
            tokens: RwLock::new(tokens),
            api_tls,
            api_limits,
            api_connections: std::sync::OnceLock::new(),
            descriptors,
            targets,
            swim_rejections,
            config,
        });
        let tasks = TaskTracker::new();
        tasks.spawn(checks::run(shared.clone(), checker, membership_events));
        tasks.spawn(register_configured(shared.clone()));
        tasks.spawn(crate::api::serve(shared.clone(), api_listener, shutdown));
        tracing::info!(
            node = %shared.config.node, %api_addr, gossip = %gossip_addr,
            sync = %shared.node.local_addr(), actor = %shared.actor(), migrated, "agent started"
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

    /// Returns when the agent has stopped working on its own, with why: it
    /// found another live agent with its name after starting (the later of
    /// the two stops). Never returns otherwise.
    pub async fn fatal(&self) -> String {
        self.shared.fatal_signal.cancelled().await;
        self.shared
            .fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
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

/// Registers the origins of the config file, once the node accepts writes.
async fn register_configured(shared: Arc<Shared>) {
    for (id, spec) in shared.config.origins.clone() {
        if shared.origin(&id).as_ref() == Some(&spec) {
            continue;
        }
        if let Err(e) = shared.put_origin(&id, spec).await {
            tracing::error!(origin = %id, error = %e, "cannot register an origin of the config file");
        }
    }
}

/// Refuses to start if another live agent has this agent's name: SWIM
/// shows a member with the name at another address, and it answers a sync
/// handshake under that name (a node restarted at a new address sees its
/// old identity too, until it is declared down, but that one does not
/// answer). Waits, bounded, for SWIM to hear from the seeds first.
async fn refuse_a_duplicate(
    config: &AgentConfig,
    node: &Node,
    membership: &Membership,
) -> Result<(), StartError> {
    if !config.seeds.is_empty() {
        // A seed that is up answers the first announce within a round trip;
        // give it until the first re-announce, then a moment for the rest of
        // the view (it comes in the same few datagrams).
        let bound = config.preset.announce_interval();
        let mut events = membership.subscribe();
        let deadline = tokio::time::Instant::now() + bound;
        while membership.members().is_empty() && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout_at(deadline, events.recv()).await;
        }
        let settle = std::time::Duration::from_millis(300).min(bound);
        while !membership.members().is_empty()
            && tokio::time::timeout(settle, events.recv()).await.is_ok()
        {}
    }
    let ours = config
        .gossip_advertise
        .unwrap_or_else(|| membership.local_addr());
    for other in membership.name_conflicts() {
        match node.probe(other.sync_addr).await {
            Ok(name) if name.0 == config.node => {
                return Err(StartError::DuplicateName {
                    name: config.node.clone(),
                    ours,
                    theirs: other.gossip_addr,
                    their_sync: other.sync_addr,
                });
            }
            Ok(name) => {
                tracing::warn!(member = %other.gossip_addr, answered_as = %name, "a member with this agent's name answers under another");
            }
            Err(e) => {
                tracing::info!(member = %other.gossip_addr, error = %e, "a member with this agent's name does not answer: a previous run of this agent");
            }
        }
    }
    Ok(())
}
