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
mod error;

pub use error::StartError;

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Instant,
};

use membership::{Membership, MembershipConfig, MembershipPeers};
use sync::{Node, NodeConfig, Peer, PeerSource};
use tokio::sync::{Mutex, Notify};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    checker::{Checker, CheckerConfig},
    config::AgentConfig,
    registry::{HEALTH, HealthMap, ORIGINS, Registry},
    shared::{Shared, startup_bound, verify_bound},
};

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
            what: "raising the descriptor limit",
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
            .map_err(|source| StartError::Bind {
                what: "api listener",
                addr: config.api_listen,
                source,
            })?;
        let api_addr = api_listener.local_addr().map_err(|source| StartError::Io {
            what: "reading the api listener's address",
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
        })?;

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
            check_stats: std::sync::Mutex::default(),
            migrated,
            started: Instant::now(),
            registry_changed: Notify::new(),
            registry_dirty: std::sync::Mutex::new(Vec::new()),
            list: crate::list_cache::ListCache::default(),
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
